//! Crash safety with the real binary: kill -9 a headless run at random moments, many times, and
//! every time `latest.safetensors` still loads, metrics.jsonl holds only whole lines, and the run
//! resumes from it. Also: a checkpoint folder that cannot be written is reported, and with
//! `run.on_write_error = "stop"` the run stops cleanly, keeping every earlier checkpoint.

use crate::common;

use std::io::{BufRead, BufReader};
use std::path::Path;
use std::process::Stdio;
use std::thread::sleep;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use common::*;
use gan_tui::train::checkpoint::Checkpoint;

/// A small generator of pseudo-random delays; the seed is printed on failure.
struct Lcg(u64);

impl Lcg {
    fn next_below(&mut self, n: u64) -> u64 {
        self.0 = self
            .0
            .wrapping_mul(6364136223846793005)
            .wrapping_add(1442695040888963407);
        (self.0 >> 33) % n
    }
}

const KILLS: usize = 25;

#[test]
fn kill_9_at_random_moments_never_leaves_a_torn_checkpoint_or_metrics_line() {
    let home = tempfile::tempdir().unwrap();
    let h = home.path();
    // 128 digits: 2 steps an epoch, so a checkpoint is being written most of the time.
    let data = small_mnist(&h.join("digits"), 128);
    let cfg = h.join("c.toml");
    std::fs::write(&cfg, "[run]\nlog_every = 1\neval_count = 0\n").unwrap();
    let run = h.join("run");
    let seed = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_nanos() as u64;
    let mut rng = Lcg(seed);
    let mut checked = 0;
    for kill in 0..KILLS {
        let mut cmd = gan_tui(h);
        cmd.arg("--no-tui");
        if run.join("checkpoints/latest.safetensors").exists() {
            cmd.arg("--resume")
                .arg(run.join("checkpoints/latest.safetensors"));
        } else {
            // Start (or restart) a fresh run; a run killed before its first checkpoint is redone.
            let _ = std::fs::remove_dir_all(&run);
            cmd.args(["--epochs", "10000", "--config"]).arg(&cfg);
            cmd.arg("--data-dir").arg(&data).arg("--run-dir").arg(&run);
        }
        let mut child = Running(
            cmd.stdout(Stdio::piped())
                .stderr(Stdio::null())
                .spawn()
                .unwrap(),
        );
        // Wait for training to be under way, then a random moment more. A fresh run is timed
        // from its first checkpoint (observed progress, not a guess at how fast a loaded
        // machine starts a run), so every kill has a checkpoint to check.
        let mut lines = BufReader::new(child.stdout.take().unwrap()).lines();
        let started = lines.next().is_some();
        let latest = run.join("checkpoints/latest.safetensors");
        let waiting = std::time::Instant::now();
        while started && !latest.exists() && waiting.elapsed() < Duration::from_secs(300) {
            sleep(Duration::from_millis(5));
        }
        sleep(Duration::from_millis(20 + rng.next_below(400)));
        child.kill().unwrap(); // SIGKILL
        child.wait().unwrap();
        assert!(started, "kill {kill}: the run did not start (seed {seed})");
        if latest.exists() {
            let ckpt = Checkpoint::load(&latest)
                .unwrap_or_else(|e| panic!("kill {kill} (seed {seed}): latest does not load: {e}"));
            checked += 1;
            // Every metrics line is whole, and none is past what the trainer reached.
            let text = std::fs::read_to_string(run.join("metrics.jsonl")).unwrap();
            for line in text.lines() {
                serde_json::from_str::<serde_json::Value>(line).unwrap_or_else(|e| {
                    panic!("kill {kill} (seed {seed}): torn line {line:?}: {e}")
                });
            }
            assert!(ckpt.progress.step > 0);
        }
    }
    assert_eq!(
        checked, KILLS,
        "only {checked} of {KILLS} kills left a checkpoint to check"
    );
    // And the run still finishes from where it is.
    let out = gan_tui(h)
        .args(["--no-tui", "--max-steps"])
        .arg("1000000")
        .arg("--epochs")
        .arg("10000")
        .arg("--resume")
        .arg(run.join("checkpoints/latest.safetensors"))
        .stdout(Stdio::piped())
        .spawn()
        .unwrap();
    let mut out = out;
    // Its first line comes after its signal handler is in place: a TERM then stops it cleanly.
    // The pipe stays open (the reader lives to the end) so its last lines have somewhere to go.
    let mut first = String::new();
    let mut reader = BufReader::new(out.stdout.take().unwrap());
    reader.read_line(&mut first).unwrap();
    assert!(!first.is_empty(), "the resumed run printed nothing");
    std::process::Command::new("kill")
        .args(["-TERM", &out.id().to_string()])
        .status()
        .unwrap();
    assert_eq!(out.wait().unwrap().code(), Some(143));
    drop(reader);
    assert!(Checkpoint::load(&run.join("checkpoints/latest.safetensors")).is_ok());
}

/// Starts a headless run on small data, waits for its first epoch line, then makes the
/// checkpoint folder unwritable (a file where the folder was), keeping the old one aside.
fn run_with_broken_checkpoint_folder(
    h: &Path,
    policy: &str,
) -> (std::process::Output, std::path::PathBuf) {
    let data = small_mnist(&h.join("digits"), 128);
    let cfg = h.join("c.toml");
    std::fs::write(
        &cfg,
        format!("[run]\non_write_error = \"{policy}\"\nkeep_checkpoints = 0\neval_count = 0\n"),
    )
    .unwrap();
    let run = h.join("run");
    let mut child = gan_tui(h)
        .args(["--no-tui", "--epochs", "40", "--config"])
        .arg(&cfg)
        .arg("--data-dir")
        .arg(&data)
        .arg("--run-dir")
        .arg(&run)
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let mut stdout = BufReader::new(child.stdout.take().unwrap());
    let mut seen = String::new();
    while !seen.contains("Epoch [1/") {
        let mut line = String::new();
        assert!(
            stdout.read_line(&mut line).unwrap() > 0,
            "no epoch line: {seen}"
        );
        seen.push_str(&line);
    }
    std::fs::rename(run.join("checkpoints"), run.join("kept")).unwrap();
    std::fs::write(run.join("checkpoints"), "not a folder").unwrap();
    let mut rest = String::new();
    std::io::Read::read_to_string(&mut stdout, &mut rest).unwrap();
    let mut out = child.wait_with_output().unwrap();
    out.stdout = format!("{seen}{rest}").into_bytes();
    (out, run)
}

#[test]
fn an_unwritable_checkpoint_folder_is_reported_and_training_goes_on() {
    let home = tempfile::tempdir().unwrap();
    let (out, run) = run_with_broken_checkpoint_folder(home.path(), "continue");
    assert_eq!(out.status.code(), Some(0), "{}", text(&out));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("could not save the checkpoint") && err.contains("checkpoints/epoch-0"),
        "{err}"
    );
    assert!(
        String::from_utf8_lossy(&out.stdout).contains("Epoch [40/40]"),
        "{}",
        text(&out)
    );
    assert!(Checkpoint::load(&run.join("kept/epoch-001.safetensors")).is_ok());
}

#[test]
fn with_on_write_error_stop_an_unwritable_folder_stops_the_run_cleanly() {
    let home = tempfile::tempdir().unwrap();
    let (out, run) = run_with_broken_checkpoint_folder(home.path(), "stop");
    assert_eq!(out.status.code(), Some(1), "{}", text(&out));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("on_write_error") && err.contains("could not save the checkpoint"),
        "{err}"
    );
    assert!(!String::from_utf8_lossy(&out.stdout).contains("Epoch [40/40]"));
    assert!(Checkpoint::load(&run.join("kept/latest.safetensors")).is_ok());
    assert!(Checkpoint::load(&run.join("kept/epoch-001.safetensors")).is_ok());
}
