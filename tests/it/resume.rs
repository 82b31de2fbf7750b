//! Exact resume with the real binary: a run interrupted (by a step limit, or by SIGINT at an
//! arbitrary step) and resumed from its checkpoint writes the same metrics, step for step and
//! bit for bit in every loss column, and ends with the same weights as a run never interrupted.

use crate::common;

use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::Stdio;

use common::*;
use gan_tui::train::checkpoint::Checkpoint;

/// A config that logs every step, so every step's losses are compared.
fn log_every_step(home: &Path) -> PathBuf {
    let path = home.join("every-step.toml");
    std::fs::write(
        &path,
        "[run]\nlog_every = 1\nkeep_checkpoints = 0\neval_count = 0\n",
    )
    .unwrap();
    path
}

/// The columns that must match exactly: everything but the timings.
fn loss_columns(run: &Path) -> Vec<String> {
    metrics(run)
        .iter()
        .map(|l| {
            [
                "step", "epoch", "d_loss", "g_loss", "d_real", "d_fake", "lr",
            ]
            .map(|k| l[k].to_string())
            .join(" ")
        })
        .collect()
}

fn train(home: &Path, args: &[&str]) -> std::process::Output {
    let out = gan_tui(home).args(args).output().unwrap();
    assert!(out.status.success(), "{args:?}\n{}", text(&out));
    out
}

fn s(p: &Path) -> &str {
    p.to_str().unwrap()
}

fn final_state(run: &Path) -> Vec<(String, Vec<f32>)> {
    let ckpt = Checkpoint::load(&run.join("checkpoints/latest.safetensors")).unwrap();
    ckpt.state
        .tensors
        .into_iter()
        .map(|t| (t.name, t.data))
        .collect()
}

#[test]
fn a_run_stopped_at_a_step_limit_and_resumed_matches_one_never_stopped() {
    // The default preset (batch norm) and `tuned` (batch norm, and dropout masks from a saved
    // stream).
    for preset in ["cgan", "tuned"] {
        stopped_and_resumed_matches_never_stopped(preset);
    }
}

fn stopped_and_resumed_matches_never_stopped(preset: &str) {
    let home = tempfile::tempdir().unwrap();
    let h = home.path();
    let data = small_mnist(&h.join("digits"), 256);
    let cfg = log_every_step(h);
    let (a, b) = (h.join("a"), h.join("b"));
    let base = [
        "--no-tui",
        "--preset",
        preset,
        "--epochs",
        "3",
        "--seed",
        "5",
        "--config",
        s(&cfg),
        "--data-dir",
        s(&data),
    ];
    train(h, &[&base[..], &["--run-dir", s(&a)]].concat());
    train(
        h,
        &[&base[..], &["--run-dir", s(&b), "--max-steps", "6"]].concat(),
    );
    assert_eq!(metrics(&b).len(), 6);
    let out = train(
        h,
        &[
            "--no-tui",
            "--resume",
            s(&b.join("checkpoints/step-0000006.safetensors")),
            "--max-steps",
            "0",
        ],
    );
    assert!(
        String::from_utf8_lossy(&out.stdout).contains("resuming at step 6"),
        "{}",
        text(&out)
    );
    let (ma, mb) = (loss_columns(&a), loss_columns(&b));
    assert_eq!(ma.len(), 12);
    assert_eq!(ma, mb, "{preset}");
    assert_eq!(final_state(&a), final_state(&b), "{preset}");
    // The resumed run's epoch grids are the same pictures too.
    for f in ["samples/epoch-002.png", "samples/epoch-003.png"] {
        assert_eq!(
            std::fs::read(a.join(f)).unwrap(),
            std::fs::read(b.join(f)).unwrap(),
            "{preset}: {f}"
        );
    }
}

#[test]
fn a_run_interrupted_by_sigint_mid_epoch_resumes_exactly() {
    let home = tempfile::tempdir().unwrap();
    let h = home.path();
    let data = small_mnist(&h.join("digits"), 192);
    let cfg = log_every_step(h);
    let (a, b) = (h.join("a"), h.join("b"));
    let base = [
        "--no-tui",
        "--epochs",
        "40",
        "--seed",
        "9",
        "--config",
        s(&cfg),
        "--data-dir",
        s(&data),
    ];
    train(h, &[&base[..], &["--run-dir", s(&a)]].concat());

    let mut child = gan_tui(h)
        .args(base)
        .args(["--run-dir", s(&b)])
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let mut lines = BufReader::new(child.stdout.take().unwrap()).lines();
    for line in lines.by_ref() {
        if line.unwrap().starts_with("Epoch [2/") {
            break;
        }
    }
    std::process::Command::new("kill")
        .args(["-INT", &child.id().to_string()])
        .status()
        .unwrap();
    let rest: Vec<String> = lines.map(|l| l.unwrap()).collect();
    assert_eq!(child.wait().unwrap().code(), Some(130), "{rest:?}");
    let stopped_at = metrics(&b).len();
    assert!(
        stopped_at < 120,
        "the run finished before the interrupt; make it longer"
    );

    train(
        h,
        &[
            "--no-tui",
            "--resume",
            s(&b.join("checkpoints/latest.safetensors")),
        ],
    );
    let (ma, mb) = (loss_columns(&a), loss_columns(&b));
    assert_eq!(ma.len(), 120);
    assert_eq!(ma, mb, "interrupted after step {stopped_at}");
    assert_eq!(final_state(&a), final_state(&b));
}

#[test]
fn resuming_with_other_settings_is_refused_naming_both() {
    let home = tempfile::tempdir().unwrap();
    let h = home.path();
    let data = small_mnist(&h.join("digits"), 128);
    let run = h.join("r");
    train(
        h,
        &[
            "--no-tui",
            "--epochs",
            "1",
            "--data-dir",
            s(&data),
            "--run-dir",
            s(&run),
        ],
    );
    let ckpt = run.join("checkpoints/latest.safetensors");
    let before = std::fs::read(run.join("metrics.jsonl")).unwrap();
    let out = gan_tui(h)
        .args(["--no-tui", "--resume", s(&ckpt), "--batch-size", "32"])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(1), "{}", text(&out));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("batch size") && err.contains("64") && err.contains("32"),
        "{err}"
    );
    assert_eq!(std::fs::read(run.join("metrics.jsonl")).unwrap(), before);
}

#[test]
fn a_fork_with_the_same_settings_continues_exactly_and_leaves_its_parent_alone() {
    let home = tempfile::tempdir().unwrap();
    let h = home.path();
    let data = small_mnist(&h.join("digits"), 256);
    let cfg = log_every_step(h);
    let (a, b, fork) = (h.join("a"), h.join("b"), h.join("fork"));
    let base = [
        "--no-tui",
        "--epochs",
        "3",
        "--seed",
        "5",
        "--config",
        s(&cfg),
        "--data-dir",
        s(&data),
    ];
    train(h, &[&base[..], &["--run-dir", s(&a)]].concat());
    train(
        h,
        &[&base[..], &["--run-dir", s(&b), "--max-steps", "6"]].concat(),
    );
    let parent_files: Vec<Vec<u8>> = ["metrics.jsonl", "config.toml"]
        .iter()
        .map(|f| std::fs::read(b.join(f)).unwrap())
        .collect();
    let ckpt = b.join("checkpoints/step-0000006.safetensors");
    train(
        h,
        &[
            "--no-tui",
            "--resume",
            s(&ckpt),
            "--fork",
            "--max-steps",
            "0",
            "--run-dir",
            s(&fork),
        ],
    );
    // The fork holds the parent's first six steps and then the steps a plain run takes.
    assert_eq!(loss_columns(&fork), loss_columns(&a));
    assert_eq!(final_state(&fork), final_state(&a));
    let config = std::fs::read_to_string(fork.join("config.toml")).unwrap();
    let parent = std::path::absolute(&b).unwrap();
    assert!(
        config.contains(&format!("forked_from = \"{}\"", parent.display()))
            && config.contains("forked_at_step = 6"),
        "{config}"
    );
    // The parent's folder is as it was: nothing appended, no checkpoint added.
    for (f, before) in ["metrics.jsonl", "config.toml"].iter().zip(&parent_files) {
        assert_eq!(&std::fs::read(b.join(f)).unwrap(), before, "{f}");
    }
    assert!(!b.join("checkpoints/epoch-003.safetensors").exists());
}

#[test]
fn a_fork_trains_at_its_new_rate_in_a_new_folder() {
    let home = tempfile::tempdir().unwrap();
    let h = home.path();
    let data = small_mnist(&h.join("digits"), 128);
    let cfg = log_every_step(h);
    let (parent, fork) = (h.join("parent"), h.join("fork"));
    // At a constant rate (cgan's own schedule is a cosine), so the parent's rate is plain.
    train(
        h,
        &[
            "--no-tui",
            "--epochs",
            "2",
            "--lr-schedule",
            "constant",
            "--config",
            s(&cfg),
            "--data-dir",
            s(&data),
            "--run-dir",
            s(&parent),
        ],
    );
    let ckpt = parent.join("checkpoints/epoch-001.safetensors");
    // A plain resume still refuses another rate, and says how to fork.
    let out = gan_tui(h)
        .args(["--no-tui", "--resume", s(&ckpt), "--lr", "0.0001"])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(1), "{}", text(&out));
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("--fork"),
        "{}",
        text(&out)
    );
    // A fork into the parent's own folder is refused.
    let out = gan_tui(h)
        .args([
            "--no-tui",
            "--resume",
            s(&ckpt),
            "--fork",
            "--run-dir",
            s(&parent),
        ])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(1), "{}", text(&out));
    let parent_metrics = std::fs::read(parent.join("metrics.jsonl")).unwrap();
    train(
        h,
        &[
            "--no-tui",
            "--resume",
            s(&ckpt),
            "--fork",
            "--lr",
            "0.0001",
            "--lr-schedule",
            "linear",
            "--epochs",
            "3",
            "--run-dir",
            s(&fork),
        ],
    );
    let lines = metrics(&fork);
    // The parent's first epoch (two steps of 64), then the fork's two more epochs.
    assert_eq!(lines.len(), 6);
    assert_eq!(lines[1]["lr"], 0.0004);
    // The linear schedule over the fork's six steps, at its third (two updates done).
    let lr = lines[2]["lr"].as_f64().unwrap();
    assert!((lr - 0.0001 * (1.0 - 2.0 / 5.0)).abs() < 1e-12, "{lr}");
    assert!(lines[5]["lr"].as_f64().unwrap() < lines[2]["lr"].as_f64().unwrap());
    assert!(fork.join("checkpoints/epoch-003.safetensors").exists());
    assert_eq!(
        std::fs::read(parent.join("metrics.jsonl")).unwrap(),
        parent_metrics
    );
    assert!(!parent.join("checkpoints/epoch-003.safetensors").exists());
}
