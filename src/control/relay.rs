//! The relay between the trainer and the front end: every trainer message passes through it on
//! its way, and it keeps `status.json` current and hands the message to the control socket's
//! viewers. It runs on its own thread, so neither costs the trainer a step.

use std::sync::Arc;
use std::sync::mpsc::{Receiver, RecvTimeoutError, Sender};
use std::thread::JoinHandle;
use std::time::Duration;

use crate::protocol::TrainMsg;
use crate::run::state::{Note, NoteKind};

use super::server::Hub;
use super::status::StatusFile;

/// How often queued bytes for slow viewers are retried while no message comes (a paused run).
const FLUSH_EVERY: Duration = Duration::from_millis(200);

/// Starts the relay: messages from `from_trainer` go to `to_front_end`, to `hub`'s viewers and
/// into `status`. A `status.json` that cannot be written is said once on `log`. The relay ends
/// when the trainer's channel closes or the front end is gone (then the trainer's next send
/// fails, as it would without a relay).
pub fn spawn(
    from_trainer: Receiver<TrainMsg>,
    to_front_end: Sender<TrainMsg>,
    hub: Option<Arc<Hub>>,
    mut status: StatusFile,
    log: Sender<Note>,
) -> std::io::Result<JoinHandle<()>> {
    std::thread::Builder::new()
        .name("relay".into())
        .spawn(move || {
            let mut status_failed = false;
            loop {
                let msg = match from_trainer.recv_timeout(FLUSH_EVERY) {
                    Ok(msg) => msg,
                    Err(RecvTimeoutError::Timeout) => {
                        if let Some(hub) = &hub {
                            hub.flush();
                        }
                        continue;
                    }
                    Err(RecvTimeoutError::Disconnected) => return,
                };
                if let Some(error) = status.on_msg(&msg)
                    && !std::mem::replace(&mut status_failed, true)
                {
                    let _ = log.send(Note {
                        kind: NoteKind::Warning,
                        text: format!("{error}; `gan-tui watch` will know less about this run"),
                    });
                }
                if let Some(hub) = &hub {
                    hub.publish(&msg);
                }
                if to_front_end.send(msg).is_err() {
                    return;
                }
            }
        })
}
