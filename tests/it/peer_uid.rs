//! The control socket refuses another user: a headless run's socket, its file mode widened so only
//! the peer-credential check stands in the way, gets a valid `pause` from a process running as
//! another user id; the run refuses it, says so in its log, and trains on unpaused.
//!
//! Switching user needs root; run as anyone else the test says why it skips.

use crate::common;

use std::ffi::CString;
use std::os::unix::ffi::OsStrExt;
use std::os::unix::fs::PermissionsExt;
use std::path::Path;
use std::process::{Child, Stdio};

use common::*;
use gan_tui::control::wire::{self, Request};
use gan_tui::protocol::Command;

/// The user and group the foreign peer runs as: `nobody`/`nogroup` on most systems.
const OTHER_ID: libc::uid_t = 65534;

/// Kills the run when the test ends, passed or failed.
struct KillOnDrop(Child);

impl Drop for KillOnDrop {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// Connects to `socket` as user and group `OTHER_ID`, sends `request` and returns what the run
/// answered: its first line (or what came before it closed the connection or went quiet for
/// 20 s), at most 4 KiB. An accepted connection stays open, so the line is what ends the read.
///
/// The connection is made by a forked child that drops to the other user first, since the
/// kernel records the peer's credentials at `connect`. The test binary has other threads, so
/// between `fork` and `_exit` the child only makes system calls on memory prepared before the
/// fork (no allocation, no locks).
fn exchange_as_other_user(socket: &Path, request: &[u8]) -> Vec<u8> {
    let path = CString::new(socket.as_os_str().as_bytes()).unwrap();
    // SAFETY: a zeroed sockaddr_un is a valid (empty) address.
    let mut addr: libc::sockaddr_un = unsafe { std::mem::zeroed() };
    addr.sun_family = libc::AF_UNIX as libc::sa_family_t;
    let bytes = path.as_bytes_with_nul();
    assert!(bytes.len() <= addr.sun_path.len(), "socket path too long");
    for (dst, &src) in addr.sun_path.iter_mut().zip(bytes) {
        *dst = src as libc::c_char;
    }
    let mut pipe = [0 as libc::c_int; 2];
    // SAFETY: `pipe` has room for the two descriptors.
    assert_eq!(unsafe { libc::pipe(pipe.as_mut_ptr()) }, 0, "pipe");
    let (reader, writer) = (pipe[0], pipe[1]);
    let mut answer = [0u8; 4096];
    let quiet = libc::timeval {
        tv_sec: 20,
        tv_usec: 0,
    };

    // SAFETY: the child only calls async-signal-safe functions on memory prepared above, then
    // `_exit`s; it never returns into the test harness.
    let pid = unsafe { libc::fork() };
    assert!(pid >= 0, "fork failed");
    if pid == 0 {
        // SAFETY: plain system calls on valid pointers, ending in `_exit`.
        unsafe {
            libc::close(reader);
            let dropped = libc::setgroups(0, std::ptr::null()) == 0
                && libc::setgid(OTHER_ID) == 0
                && libc::setuid(OTHER_ID) == 0
                && libc::getuid() == OTHER_ID;
            if !dropped {
                libc::_exit(2);
            }
            let fd = libc::socket(libc::AF_UNIX, libc::SOCK_STREAM, 0);
            let len = std::mem::size_of::<libc::sockaddr_un>() as libc::socklen_t;
            if fd < 0 || libc::connect(fd, (&raw const addr).cast(), len) != 0 {
                libc::_exit(3);
            }
            libc::setsockopt(
                fd,
                libc::SOL_SOCKET,
                libc::SO_RCVTIMEO,
                (&raw const quiet).cast(),
                std::mem::size_of::<libc::timeval>() as libc::socklen_t,
            );
            // The run may close before reading; what it answered is what counts.
            libc::write(fd, request.as_ptr().cast(), request.len());
            let mut got = 0usize;
            while got < answer.len() {
                let n = libc::read(fd, answer.as_mut_ptr().add(got).cast(), answer.len() - got);
                if n <= 0 {
                    break;
                }
                got += n as usize;
                if answer[..got].contains(&b'\n') {
                    break;
                }
            }
            libc::write(writer, answer.as_ptr().cast(), got);
            libc::_exit(0);
        }
    }
    // SAFETY: closing our copy of the write end, so reading ends when the child exits.
    unsafe { libc::close(writer) };
    let mut out = Vec::new();
    loop {
        // SAFETY: reading into a buffer we own.
        let n = unsafe { libc::read(reader, answer.as_mut_ptr().cast(), answer.len()) };
        if n <= 0 {
            break;
        }
        out.extend_from_slice(&answer[..n as usize]);
    }
    let mut status = 0;
    // SAFETY: waiting for our own child.
    unsafe {
        libc::close(reader);
        libc::waitpid(pid, &mut status, 0);
    }
    assert!(
        libc::WIFEXITED(status) && libc::WEXITSTATUS(status) == 0,
        "the helper as user {OTHER_ID} failed (exit status {status:#x}: 2 = cannot switch user, 3 = cannot connect)"
    );
    out
}

#[test]
fn another_user_is_refused_even_with_the_socket_open_to_all() {
    // SAFETY: geteuid cannot fail.
    if unsafe { libc::geteuid() } != 0 {
        eprintln!(
            "skipped: switching to another user id needs root; run the suite as root to check \
             that the control socket refuses other users"
        );
        return;
    }
    let home = tempfile::tempdir().unwrap();
    let data = small_mnist(&home.path().join("digits"), 256);
    let run = home.path().join("run");
    let cfg = home.path().join("run.toml");
    std::fs::write(&cfg, "[run]\nlog_every = 1\n").unwrap();
    let log = home.path().join("log.txt");
    let err = home.path().join("err.txt");
    let _trainer = KillOnDrop(
        gan_tui(home.path())
            .args(["--no-tui", "--epochs", "10000", "--seed", "5", "--config"])
            .arg(&cfg)
            .arg("--data-dir")
            .arg(&data)
            .arg("--run-dir")
            .arg(&run)
            .stdout(Stdio::from(std::fs::File::create(&log).unwrap()))
            .stderr(Stdio::from(std::fs::File::create(&err).unwrap()))
            .spawn()
            .unwrap(),
    );
    let socket = run.join("control.sock");
    wait_until(60, "the run to train", || {
        socket.exists() && metrics_lines(&run) > 0
    });

    // Take the file mode out of the way: the socket and the folders to it open to everyone.
    let open = |path: &Path, mode: u32| {
        std::fs::set_permissions(path, std::fs::Permissions::from_mode(mode)).unwrap();
    };
    open(home.path(), 0o755);
    open(&run, 0o755);
    open(&socket, 0o666);

    let pause = wire::line(&Request::Command {
        v: wire::VERSION,
        command: Command::Pause,
    });
    let answer = String::from_utf8_lossy(&exchange_as_other_user(&socket, &pause)).into_owned();
    assert!(
        answer.contains("\"refused\"") && answer.contains(&format!("user id {OTHER_ID}")),
        "the run's answer to user {OTHER_ID}: {answer:?}"
    );
    wait_until(30, "the refusal in the run's log", || {
        read(&err).contains(&format!("refused a connection: user id {OTHER_ID}"))
    });

    // The run did not pause: it keeps writing metrics, and its log has no pause in it.
    let before = metrics_lines(&run);
    wait_until(60, "training to go on after the refusal", || {
        metrics_lines(&run) > before + 2
    });
    let (out, errors) = (read(&log), read(&err));
    assert!(
        !out.contains(": pause") && !errors.contains(": pause"),
        "the run acted on a foreign pause:\n{out}\n{errors}"
    );
}
