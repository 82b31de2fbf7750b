//! The control socket against real sockets: its mode, stale sockets, garbage, oversized and
//! half-closed connections, several viewers, and commands reaching the trainer's channel.

use std::io::{BufRead, BufReader, Read, Write};
use std::os::unix::fs::PermissionsExt;
use std::os::unix::net::{UnixListener, UnixStream};
use std::sync::mpsc::{self, Receiver};
use std::time::Duration;

use super::*;
use crate::protocol::StepStats;

fn stats(step: u64) -> StepStats {
    StepStats {
        step,
        epoch: 1,
        // Not sent over the socket (the viewer works it out from the step).
        batch: 0,
        d_loss: 1.0,
        g_loss: 2.0,
        d_real: 0.5,
        d_fake: 0.5,
        lr: 2e-4,
        steps_per_s: 10.0,
        elapsed_s: 1.0,
        g_grad_norm: None,
        d_grad_norm: None,
    }
}

/// The server is dropped before its folder.
struct Fixture {
    server: ControlServer,
    commands: Receiver<Command>,
    log: Receiver<Note>,
    _dir: tempfile::TempDir,
}

fn start() -> Fixture {
    let dir = tempfile::tempdir().unwrap();
    let (cmd_tx, commands) = mpsc::channel();
    let (log_tx, log) = mpsc::channel();
    let server = ControlServer::start(dir.path(), cmd_tx, log_tx).unwrap();
    Fixture {
        _dir: dir,
        server,
        commands,
        log,
    }
}

/// A connected viewer whose reads give up after a generous minute (a hung test, not a timing
/// assertion).
fn viewer(f: &Fixture) -> (UnixStream, BufReader<UnixStream>) {
    let stream = UnixStream::connect(f.server.path()).unwrap();
    stream
        .set_read_timeout(Some(Duration::from_secs(60)))
        .unwrap();
    let reader = BufReader::new(stream.try_clone().unwrap());
    (stream, reader)
}

fn next_reply(reader: &mut BufReader<UnixStream>) -> Reply {
    let mut line = String::new();
    reader.read_line(&mut line).unwrap();
    wire::parse_reply(line.trim_end().as_bytes()).unwrap()
}

fn send(stream: &mut UnixStream, request: &Request) {
    stream.write_all(&wire::line(request)).unwrap();
}

/// Subscribes and waits until the hub counts `n` viewers (the subscription is read on the
/// viewer's thread).
fn subscribe(f: &Fixture, stream: &mut UnixStream, n: usize) {
    send(stream, &Request::Subscribe { v: VERSION });
    let hub = f.server.hub();
    while hub.viewers() < n {
        std::thread::yield_now();
    }
}

#[test]
fn the_socket_is_owner_only() {
    let f = start();
    let mode = fs::metadata(f.server.path()).unwrap().permissions().mode();
    assert_eq!(mode & 0o777, 0o600, "{mode:o}");
    // No private folder is left behind.
    let names: Vec<String> = fs::read_dir(f._dir.path())
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    assert_eq!(names, ["control.sock"]);
}

#[test]
fn only_the_runs_own_user_is_let_in() {
    assert!(peer_allowed(own_uid(), own_uid()));
    assert!(!peer_allowed(own_uid().wrapping_add(1), own_uid()));
    // The kernel reports our own uid for a connection of ours.
    let (a, _b) = UnixStream::pair().unwrap();
    assert_eq!(peer_uid(&a).unwrap(), own_uid());
}

#[test]
fn commands_reach_the_trainer_and_are_answered() {
    let f = start();
    let (mut stream, mut reader) = viewer(&f);
    send(
        &mut stream,
        &Request::Command {
            v: VERSION,
            command: Command::Pause,
        },
    );
    assert_eq!(
        next_reply(&mut reader),
        Reply::Accepted {
            v: VERSION,
            command: Command::Pause
        }
    );
    assert_eq!(f.commands.recv().unwrap(), Command::Pause);
    assert!(f.log.iter().any(|n| n.text.ends_with(": pause")));
}

#[test]
fn viewers_get_the_facts_then_every_message() {
    let f = start();
    let hub = f.server.hub();
    hub.publish(&TrainMsg::Step(stats(1)));
    hub.publish(&TrainMsg::Step(stats(2)));
    let (mut first, mut first_reader) = viewer(&f);
    subscribe(&f, &mut first, 1);
    // The latest step only, as a fact.
    assert_eq!(
        next_reply(&mut first_reader),
        Reply::Event {
            v: VERSION,
            msg: Box::new(TrainMsg::Step(stats(2)))
        }
    );
    let (mut second, mut second_reader) = viewer(&f);
    subscribe(&f, &mut second, 2);
    assert!(matches!(
        next_reply(&mut second_reader),
        Reply::Event { .. }
    ));
    hub.publish(&TrainMsg::Paused { step: 2 });
    for reader in [&mut first_reader, &mut second_reader] {
        assert_eq!(
            next_reply(reader),
            Reply::Event {
                v: VERSION,
                msg: Box::new(TrainMsg::Paused { step: 2 })
            }
        );
    }
}

#[test]
fn garbage_is_refused_and_the_connection_goes_on() {
    let f = start();
    let (mut stream, mut reader) = viewer(&f);
    stream
        .write_all(b"\xff\xfe garbage\n{\"type\":\"command\",\"v\":9,\"command\":\"pause\"}\n{}\n")
        .unwrap();
    for _ in 0..3 {
        assert!(matches!(next_reply(&mut reader), Reply::Refused { .. }));
    }
    send(
        &mut stream,
        &Request::Command {
            v: VERSION,
            command: Command::Resample,
        },
    );
    assert!(matches!(next_reply(&mut reader), Reply::Accepted { .. }));
    assert_eq!(f.commands.recv().unwrap(), Command::Resample);
    let refused = f
        .log
        .try_iter()
        .filter(|n| n.text.contains("refused a request"))
        .count();
    assert_eq!(refused, 3);
}

#[test]
fn an_oversized_request_is_refused_and_closed() {
    let f = start();
    let (stream, mut reader) = viewer(&f);
    // Written from another thread: the server stops reading after its bound.
    let mut writer = stream.try_clone().unwrap();
    let flood = std::thread::spawn(move || {
        let big = vec![b'x'; 1 << 20];
        let _ = writer.write_all(&big);
    });
    assert!(matches!(
        next_reply(&mut reader),
        Reply::Refused { error, .. } if error.contains("at most")
    ));
    // Then the connection ends.
    let mut rest = Vec::new();
    let _ = reader.read_to_end(&mut rest);
    flood.join().unwrap();
    let _ = stream.shutdown(std::net::Shutdown::Both);
    // The server still serves others.
    let (mut other, mut other_reader) = viewer(&f);
    send(
        &mut other,
        &Request::Command {
            v: VERSION,
            command: Command::Evaluate,
        },
    );
    assert!(matches!(
        next_reply(&mut other_reader),
        Reply::Accepted { .. }
    ));
}

#[test]
fn half_closed_and_dead_viewers_change_nothing() {
    let f = start();
    let hub = f.server.hub();
    // A viewer that subscribes and never reads, one that half-closes, one that vanishes.
    let (mut sleeper, _sleeper_reader) = viewer(&f);
    subscribe(&f, &mut sleeper, 1);
    let (mut half, _half_reader) = viewer(&f);
    subscribe(&f, &mut half, 2);
    let (mut gone, gone_reader) = viewer(&f);
    subscribe(&f, &mut gone, 3);
    half.shutdown(std::net::Shutdown::Write).unwrap();
    drop((gone, gone_reader));
    // Far more than any socket buffer: publishing never waits for a viewer that does not read.
    let grid = TrainMsg::Samples(crate::protocol::SampleGrid {
        step: 1,
        width: 28,
        height: 28,
        pixels: vec![200; 64 * 784],
        labels: None,
    });
    for _ in 0..200 {
        hub.publish(&grid);
    }
    // Each was dropped: for its backlog, its hang-up or its half close.
    assert_eq!(hub.viewers(), 0);
    // Commands still pass.
    let (mut stream, mut reader) = viewer(&f);
    send(
        &mut stream,
        &Request::Command {
            v: VERSION,
            command: Command::SaveCheckpoint,
        },
    );
    assert!(matches!(next_reply(&mut reader), Reply::Accepted { .. }));
}

#[test]
fn a_stale_socket_is_replaced_and_a_live_one_left_alone() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join(SOCKET_NAME);
    // A killed run's socket: bound, then its listener gone.
    drop(UnixListener::bind(&path).unwrap());
    assert!(path.exists());
    let (cmd_tx, _commands) = mpsc::channel();
    let (log_tx, _log) = mpsc::channel();
    let server = ControlServer::start(dir.path(), cmd_tx.clone(), log_tx.clone()).unwrap();
    assert!(UnixStream::connect(&path).is_ok());
    // A second run on the same folder is refused while the first answers.
    assert!(matches!(
        ControlServer::start(dir.path(), cmd_tx.clone(), log_tx.clone()),
        Err(ControlError::InUse(_))
    ));
    drop(server);
    assert!(!path.exists(), "the socket outlived its run");
    // Something that is not a socket is never deleted.
    fs::write(&path, "mine").unwrap();
    assert!(matches!(
        ControlServer::start(dir.path(), cmd_tx, log_tx),
        Err(ControlError::NotASocket(_))
    ));
    assert_eq!(fs::read_to_string(&path).unwrap(), "mine");
}
