//! `gan-tui watch` against the real binary: a headless run in the background, two viewers in
//! tmux following and steering it (pause, resume, save, detach, stop), the socket shrugging off
//! garbage, oversized and half-closed connections, and a replay of the finished run.

use crate::common;

use std::io::Write;
use std::os::unix::fs::PermissionsExt;
use std::os::unix::net::UnixStream;
use std::path::Path;
use std::process::Stdio;
use std::thread::sleep;
use std::time::{Duration, Instant};

use common::*;

/// A tmux session running `gan-tui watch <run>`, writing its exit status to `exit`.
fn viewer(home: &Path, name: &str, run: &Path, exit: &Path, width: u16, height: u16) -> Tmux {
    let command = format!(
        "GAN_TUI_CONFIG_DIR={cfg} GAN_TUI_DATA_DIR={dd} {bin} watch {run}; echo \"EXIT=$?\" > {exit}; sleep 60",
        cfg = sh_quote(&home.join("config")),
        dd = sh_quote(&home.join("data")),
        bin = BIN,
        run = sh_quote(run),
        exit = sh_quote(exit),
    );
    Tmux::start(
        &format!("gan-tui-watch-{name}-{}", std::process::id()),
        width,
        height,
        &command,
    )
}

#[test]
fn viewers_follow_and_steer_a_headless_run_and_replay_it_after() {
    let home = tempfile::tempdir().unwrap();
    let data = small_mnist(&home.path().join("digits"), 256);
    let run = home.path().join("run");
    let cfg = home.path().join("watched.toml");
    // Scores at each epoch's end (4 steps), every step logged.
    std::fs::write(&cfg, "[run]\neval_count = 50\nlog_every = 1\n").unwrap();
    let log = home.path().join("log.txt");
    let mut trainer = Running(
        gan_tui(home.path())
            .args(["--no-tui", "--epochs", "10000", "--seed", "3", "--config"])
            .arg(&cfg)
            .arg("--data-dir")
            .arg(&data)
            .arg("--run-dir")
            .arg(&run)
            .stdout(Stdio::from(std::fs::File::create(&log).unwrap()))
            .stderr(Stdio::from(
                std::fs::File::create(home.path().join("err.txt")).unwrap(),
            ))
            .spawn()
            .unwrap(),
    );
    let socket = run.join("control.sock");
    wait_until(60, "the run to train", || {
        socket.exists() && metrics_lines(&run) > 0
    });
    assert!(read(&log).contains("control socket: "), "{}", read(&log));
    let mode = std::fs::metadata(&socket).unwrap().permissions().mode();
    assert_eq!(mode & 0o777, 0o600, "socket mode {mode:o}");

    // A viewer attaches and sees the steps advance.
    let exit1 = home.path().join("exit1.txt");
    let first = viewer(home.path(), "1", &run, &exit1, 120, 40);
    let screen = first.wait_for(60, "the live view", |s| {
        s.contains("watching live") && shown_step(s).unwrap_or(0) > 0
    });
    let seen = shown_step(&screen).unwrap_or(0);
    first.wait_for(60, "the step to advance", |s| {
        shown_step(s).unwrap_or(0) > seen
    });

    // A second viewer at the same time, at 80x24.
    let exit2 = home.path().join("exit2.txt");
    let second = viewer(home.path(), "2", &run, &exit2, 80, 24);
    second.wait_for(60, "the second live view", |s| {
        s.contains("watching live") && shown_step(s).unwrap_or(0) > 0
    });

    // Garbage, an oversized line and a half-closed connection: refused, the run trains on.
    {
        let mut garbage = UnixStream::connect(&socket).unwrap();
        garbage.write_all(b"\x00\xff{not json\n").unwrap();
        let mut oversized = UnixStream::connect(&socket).unwrap();
        let _ = oversized.write_all(&vec![b'a'; 64 * 1024]);
        let half = UnixStream::connect(&socket).unwrap();
        half.shutdown(std::net::Shutdown::Write).unwrap();
        wait_until(30, "the refusals in the run's log", || {
            read(&home.path().join("err.txt"))
                .matches("refused a request")
                .count()
                >= 2
        });
    }
    let before = metrics_lines(&run);
    wait_until(60, "training to go on after the bad connections", || {
        metrics_lines(&run) > before
    });

    // p pauses the run: both viewers show it, metrics.jsonl stops growing.
    first.keys("p");
    first.wait_for(30, "PAUSED", |s| s.contains("PAUSED"));
    second.wait_for(30, "PAUSED on the second viewer", |s| s.contains("PAUSED"));
    wait_until(30, "the pause in the run's log", || {
        read(&log).contains(": pause")
    });
    let paused_at = metrics_lines(&run);
    sleep(Duration::from_millis(1500));
    assert_eq!(metrics_lines(&run), paused_at, "metrics grew while paused");

    // s saves a checkpoint, which the run's log reports and the viewer confirms.
    first.keys("s");
    wait_until(30, "the checkpoint in the run's log", || {
        read(&log).contains("checkpoint saved: ")
    });
    first.wait_for(30, "the checkpoint note", |s| {
        s.contains("checkpoint saved")
    });

    // p resumes.
    first.keys("p");
    first.wait_for(30, "RUNNING", |s| s.contains("RUNNING"));
    wait_until(60, "training to resume", || metrics_lines(&run) > paused_at);

    // q only detaches: the viewer exits, the run goes on.
    first.keys("q");
    wait_until(30, "the first viewer to exit", || exit1.exists());
    sleep(Duration::from_millis(200));
    assert_eq!(read(&exit1).trim(), "EXIT=0");
    let detached_at = metrics_lines(&run);
    wait_until(60, "training after the viewer left", || {
        metrics_lines(&run) > detached_at
    });
    assert!(
        trainer.try_wait().unwrap().is_none(),
        "the run ended with its viewer"
    );

    // Wait for an epoch's scores (and two epochs' grids, for the filmstrip of the replay), then
    // x twice on the second viewer stops the run.
    wait_until(120, "an epoch's scores", || {
        read(&run.join("metrics.jsonl")).contains("\"score\"")
            && run.join("samples/epoch-002.png").is_file()
    });
    second.keys("x");
    second.wait_for(30, "the confirmation", |s| s.contains("press x again"));
    second.keys("x");
    let deadline = Instant::now() + Duration::from_secs(60);
    let status = loop {
        if let Some(status) = trainer.try_wait().unwrap() {
            break status;
        }
        assert!(Instant::now() < deadline, "the run did not stop");
        sleep(Duration::from_millis(100));
    };
    assert!(status.success(), "{status:?}\n{}", read(&log));
    let log_text = read(&log);
    assert!(log_text.contains(": stop the run"), "{log_text}");
    let final_step: u64 = log_text
        .lines()
        .find_map(|l| l.strip_prefix("finished at step "))
        .and_then(|rest| rest.split_whitespace().next())
        .and_then(|n| n.parse().ok())
        .unwrap_or_else(|| panic!("no final step in the log:\n{log_text}"));
    assert!(log_text.contains("(stopped)"), "{log_text}");
    assert!(!socket.exists(), "the socket outlived the run");

    // A replay of the finished run: its last step, its scores, how it ended.
    let exit3 = home.path().join("exit3.txt");
    let replay = viewer(home.path(), "3", &run, &exit3, 120, 40);
    let screen = replay.wait_for(60, "the replay", |s| {
        s.contains("replay") && s.contains("FINISHED") && s.contains("score ")
    });
    assert_eq!(shown_step(&screen), Some(final_step), "{screen}");
    let unwrapped = replay.unwrapped_screen();
    assert!(
        unwrapped.contains("not running") && unwrapped.contains("was stopped"),
        "{unwrapped}"
    );
    // The filmstrip: [ shows an older epoch's grid, its step and epoch in the digits' title;
    // ] goes back to the newest.
    let grid_title_step = |s: &str| {
        s.match_indices("step ").find_map(|(at, _)| {
            let rest = &s[at + 5..];
            let digits: String = rest.chars().take_while(char::is_ascii_digit).collect();
            let after = &rest[digits.len()..];
            after
                .starts_with(" · epoch ")
                .then(|| digits.parse::<u64>().ok())?
        })
    };
    replay.keys("[");
    let older = replay.wait_for(30, "an older grid", |s| grid_title_step(s).is_some());
    let older_step = grid_title_step(&older).unwrap_or(u64::MAX);
    assert!(older_step < final_step, "{older}");
    replay.keys("]");
    replay.wait_for(30, "the newest grid again", |s| {
        grid_title_step(s).is_none() && s.contains("back to the live digits")
    });
    replay.keys("q");
    wait_until(30, "the replay to exit", || exit3.exists());
}
