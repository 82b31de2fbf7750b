//! Watching and steering a run from another process: the run's private control socket
//! (`server`), its line protocol (`wire`), the relay that feeds it and `status.json`
//! (`relay`, `status`), and the viewer's side: following a live run (`viewer`) or replaying a
//! run folder (`replay`).

pub mod relay;
pub mod replay;
pub mod server;
pub mod status;
pub mod viewer;
pub mod wire;

use std::path::Path;
use std::sync::mpsc::{self, Receiver, Sender};
use std::thread::JoinHandle;

use crate::protocol::{Command, TrainMsg};
use crate::run::state::{Note, NoteKind};

use self::server::ControlServer;
use self::status::StatusFile;

/// A run's plumbing between the trainer and its front end: the relay, and the control socket
/// if the run has one.
pub struct RunLink {
    /// News for the run's log: first, once, where the control socket is or why there is none;
    /// then each command a viewer sent and each request refused.
    pub log: Receiver<Note>,
    server: Option<ControlServer>,
    relay: Option<JoinHandle<()>>,
}

impl RunLink {
    /// Sets up the relay and (when `control` is on) the socket in `run_dir`. Commands from
    /// viewers go to `commands`. A socket that cannot be made is not an error: the run goes on
    /// without one and `notice` says why. Returns the link, the sender the trainer sends its
    /// messages into, and the receiver the front end reads them from.
    pub fn open(
        run_dir: &Path,
        control: bool,
        commands: &Sender<Command>,
    ) -> std::io::Result<(RunLink, Sender<TrainMsg>, Receiver<TrainMsg>)> {
        let (trainer_msgs, from_trainer) = mpsc::channel();
        let (to_front_end, front_end_msgs) = mpsc::channel();
        let (log_tx, log) = mpsc::channel();
        let (server, (kind, notice)) = if control {
            match ControlServer::start(run_dir, commands.clone(), log_tx.clone()) {
                Ok(server) => {
                    let notice = format!(
                        "control socket: {} (follow and steer with `gan-tui watch {}`)",
                        server.path().display(),
                        run_dir.display()
                    );
                    (Some(server), (NoteKind::Info, notice))
                }
                Err(e) => (
                    None,
                    (
                        NoteKind::Warning,
                        format!(
                            "no control socket: {e}; `gan-tui watch` can only replay this run from its folder"
                        ),
                    ),
                ),
            }
        } else {
            (
                None,
                (
                    NoteKind::Info,
                    "no control socket (run.control = false); `gan-tui watch` can only replay this run from its folder".to_string(),
                ),
            )
        };
        let _ = log_tx.send(Note { kind, text: notice });
        let relay = relay::spawn(
            from_trainer,
            to_front_end,
            server.as_ref().map(ControlServer::hub),
            StatusFile::new(run_dir),
            log_tx,
        )?;
        let link = RunLink {
            log,
            server,
            relay: Some(relay),
        };
        Ok((link, trainer_msgs, front_end_msgs))
    }

    /// Whether viewers can connect.
    pub fn has_socket(&self) -> bool {
        self.server.is_some()
    }

    /// Waits for the relay to pass on the trainer's last message, then closes the socket.
    pub fn close(mut self) {
        if let Some(relay) = self.relay.take() {
            let _ = relay.join();
        }
        drop(self.server.take());
    }
}
