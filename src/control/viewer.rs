//! The viewer's side of the control socket: connect to a live run, catch up from its folder,
//! then follow its messages and pass the dashboard's commands on.

use std::fs;
use std::io::{BufReader, Write};
use std::os::unix::net::UnixStream;
use std::path::{Path, PathBuf};
use std::sync::mpsc::{self, Receiver, Sender};

use crate::protocol::{Command, TrainMsg};
use crate::run::state::{Feed, Note, NoteKind};

use super::replay::Replay;
use super::server::{SOCKET_NAME, command_text};
use super::wire::{self, LineRead, Reply, Request, VERSION};

/// The channels a dashboard watching a live run steers it by.
pub struct LiveFeed {
    pub commands: Sender<Command>,
    /// Commands that could not be sent, for the status line.
    pub notes: Receiver<Note>,
}

/// Connects to the run in `run_dir`; an error means the run is not running (or refuses us).
pub fn connect(run_dir: &Path) -> std::io::Result<UnixStream> {
    UnixStream::connect(run_dir.join(SOCKET_NAME))
}

/// Subscribes on `stream`, then calls `catch_up` (which reads the run folder while the run's
/// messages queue on the socket) and follows the run into `feed`: the folder's messages first,
/// then the run's with its answers to commands, without the steps and scores the folder
/// already held. `feed` closes when the run goes away.
pub fn follow(
    stream: UnixStream,
    catch_up: impl FnOnce() -> anyhow::Result<Replay>,
    feed: Sender<Feed>,
) -> anyhow::Result<LiveFeed> {
    let mut writer = stream.try_clone()?;
    writer.write_all(&wire::line(&Request::Subscribe { v: VERSION }))?;
    let replay = catch_up()?;
    let (note_tx, notes) = mpsc::channel();
    let (commands, command_rx) = mpsc::channel::<Command>();
    for msg in &replay.msgs {
        // Only the folder's history: how the run ends comes from the run itself.
        if !matches!(msg, TrainMsg::Finished { .. } | TrainMsg::Error(_)) {
            let _ = feed.send(Feed::Msg(msg.clone()));
        }
    }
    let (last_step, last_quality) = (replay.last_step, replay.last_quality_step);
    std::thread::Builder::new()
        .name("viewer-read".into())
        .spawn(move || read_events(stream, feed, last_step, last_quality))?;
    std::thread::Builder::new()
        .name("viewer-write".into())
        .spawn(move || {
            for command in command_rx {
                let sent = writer.write_all(&wire::line(&Request::Command {
                    v: VERSION,
                    command,
                }));
                if let Err(e) = sent {
                    let _ = note_tx.send(Note {
                        kind: NoteKind::Error,
                        text: format!("could not send {} to the run: {e}", command_text(command)),
                    });
                }
            }
        })?;
    Ok(LiveFeed { commands, notes })
}

fn read_events(
    stream: UnixStream,
    feed: Sender<Feed>,
    replayed_step: u64,
    replayed_quality: Option<u64>,
) {
    let mut reader = BufReader::new(stream);
    loop {
        let line = match wire::read_line_bounded(&mut reader, wire::MAX_EVENT_BYTES) {
            Ok(LineRead::Line(line)) => line,
            Ok(LineRead::TooLong) => {
                let _ = feed.send(Feed::Note(Note {
                    kind: NoteKind::Error,
                    text: "the run sent a message too large to read; disconnected".to_string(),
                }));
                return;
            }
            Ok(LineRead::Closed) | Err(_) => return,
        };
        let reply = match wire::parse_reply(&line) {
            Ok(reply) => reply,
            Err(e) => {
                let _ = feed.send(Feed::Note(Note {
                    kind: NoteKind::Warning,
                    text: format!("skipped a message from the run that did not read: {e}"),
                }));
                continue;
            }
        };
        let note = match reply {
            Reply::Event { msg, .. } => {
                let msg = *msg;
                let already = match &msg {
                    TrainMsg::Step(s) => s.step <= replayed_step,
                    TrainMsg::Quality(q) => replayed_quality.is_some_and(|at| q.step <= at),
                    _ => false,
                };
                if !already && feed.send(Feed::Msg(msg)).is_err() {
                    return;
                }
                continue;
            }
            Reply::Accepted { command, .. } => Note {
                kind: NoteKind::Ok,
                text: format!("the run took the command: {}", command_text(command)),
            },
            Reply::Refused { error, .. } => Note {
                kind: NoteKind::Error,
                text: format!("the run refused: {error}"),
            },
        };
        if feed.send(Feed::Note(note)).is_err() {
            return;
        }
    }
}

/// The newest run folder under `runs_dir`: the one whose `metrics.jsonl` (or `config.toml`)
/// changed last.
pub fn newest_run(runs_dir: &Path) -> anyhow::Result<PathBuf> {
    let entries = fs::read_dir(runs_dir).map_err(|e| {
        anyhow::anyhow!(
            "cannot list the runs folder {}: {e}; name a run folder: gan-tui watch <RUN_DIR>",
            runs_dir.display()
        )
    })?;
    entries
        .flatten()
        .filter_map(|entry| {
            let dir = entry.path();
            let changed = ["metrics.jsonl", "config.toml"]
                .iter()
                .find_map(|name| fs::metadata(dir.join(name)).and_then(|m| m.modified()).ok())?;
            Some((changed, dir))
        })
        .max()
        .map(|(_, dir)| dir)
        .ok_or_else(|| {
            anyhow::anyhow!(
                "no runs under {}; start one, or name a run folder: gan-tui watch <RUN_DIR>",
                runs_dir.display()
            )
        })
}
