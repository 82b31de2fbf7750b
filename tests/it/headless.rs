//! The real binary in headless mode: a short run on real digits, its run folder, reproducibility,
//! signals, and the `sample` command on the checkpoint it wrote.

use crate::common;

use std::io::{BufRead, BufReader};
use std::process::Stdio;

use common::*;

#[test]
fn a_short_run_leaves_the_run_folder_described_in_the_readme() {
    let home = tempfile::tempdir().unwrap();
    let data = small_mnist(&home.path().join("digits"), 256);
    let run = home.path().join("run");
    // With the judge scoring 100 digits after each epoch.
    let cfg = home.path().join("scored.toml");
    std::fs::write(&cfg, "[run]\neval_count = 100\n").unwrap();
    let out = gan_tui(home.path())
        .args(["--no-tui", "--epochs", "2", "--seed", "1", "--config"])
        .arg(&cfg)
        .arg("--data-dir")
        .arg(&data)
        .arg("--run-dir")
        .arg(&run)
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", text(&out));
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(stdout.contains("Epoch [1/2] | D Loss: "), "{stdout}");
    assert!(stdout.contains("Epoch [2/2] | D Loss: "), "{stdout}");
    // 256 digits in batches of 64: 4 steps an epoch; each epoch's last step is logged.
    let m = metrics(&run);
    assert_eq!(m.len(), 2, "{m:?}");
    for key in [
        "step",
        "epoch",
        "d_loss",
        "g_loss",
        "d_real",
        "d_fake",
        "lr",
        "steps_per_s",
        "elapsed_s",
    ] {
        assert!(
            m[0].get(key).is_some(),
            "metrics line lacks {key}: {}",
            m[0]
        );
    }
    assert_eq!(m[1]["step"], 8);
    // The epoch's last line carries the judge's scores, as does the epoch line.
    for key in ["score", "fcd", "fcd_floor", "recognised", "class_shares"] {
        assert!(
            m[1].get(key).is_some(),
            "epoch-end line lacks {key}: {}",
            m[1]
        );
    }
    assert!(
        stdout.contains("| score ") && stdout.contains("(floor "),
        "{stdout}"
    );
    assert!(run.join("config.toml").is_file());
    for f in ["samples/epoch-001.png", "samples/epoch-002.png"] {
        let bytes = std::fs::read(run.join(f)).unwrap();
        assert_eq!(&bytes[..8], b"\x89PNG\r\n\x1a\n", "{f}");
    }
    for f in ["epoch-001", "epoch-002", "latest"] {
        assert!(
            run.join(format!("checkpoints/{f}.safetensors")).is_file(),
            "{f}"
        );
    }
    // The run's config.toml is a valid config that repeats the run's settings.
    let cfg = std::fs::read_to_string(run.join("config.toml")).unwrap();
    assert!(
        cfg.contains("seed = 1") && cfg.contains("epochs = 2"),
        "{cfg}"
    );
}

#[test]
fn the_same_seed_gives_the_same_losses_step_for_step() {
    let home = tempfile::tempdir().unwrap();
    let data = small_mnist(&home.path().join("digits"), 192);
    let losses = |name: &str, seed: &str| {
        let run = home.path().join(name);
        let out = gan_tui(home.path())
            .args(["--no-tui", "--epochs", "3", "--seed", seed, "--data-dir"])
            .arg(&data)
            .arg("--run-dir")
            .arg(&run)
            .output()
            .unwrap();
        assert!(out.status.success(), "{}", text(&out));
        metrics(&run)
            .iter()
            .map(|l| {
                (
                    l["step"].clone(),
                    l["d_loss"].clone(),
                    l["g_loss"].clone(),
                    l["d_real"].clone(),
                    l["d_fake"].clone(),
                )
            })
            .collect::<Vec<_>>()
    };
    let a = losses("a", "7");
    assert_eq!(a.len(), 3);
    assert_eq!(a, losses("b", "7"));
    assert_ne!(a, losses("c", "8"));
}

#[test]
fn sigint_finishes_the_step_saves_a_checkpoint_and_exits_130() {
    let home = tempfile::tempdir().unwrap();
    let data = small_mnist(&home.path().join("digits"), 128);
    let run = home.path().join("run");
    let mut child = Running(
        gan_tui(home.path())
            .args(["--no-tui", "--epochs", "10000", "--data-dir"])
            .arg(&data)
            .arg("--run-dir")
            .arg(&run)
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap(),
    );
    let mut lines = BufReader::new(child.stdout.take().unwrap()).lines();
    // Wait until training is under way (an epoch line), then interrupt.
    let mut seen = Vec::new();
    for line in lines.by_ref() {
        let line = line.unwrap();
        let epoch_line = line.starts_with("Epoch [");
        seen.push(line);
        if epoch_line {
            break;
        }
    }
    let status = std::process::Command::new("kill")
        .args(["-INT", &child.id().to_string()])
        .status()
        .unwrap();
    assert!(status.success());
    seen.extend(lines.map(|l| l.unwrap()));
    let exit = child.wait().unwrap();
    let all = seen.join("\n");
    assert_eq!(exit.code(), Some(130), "{all}");
    assert!(
        all.contains("checkpoint saved:") || all.contains("last checkpoint:"),
        "{all}"
    );
    assert!(run.join("checkpoints/latest.safetensors").is_file());
}

#[test]
fn sample_writes_idx_gzip_idx_and_png_from_a_checkpoint() {
    let home = tempfile::tempdir().unwrap();
    let data = small_mnist(&home.path().join("digits"), 128);
    let run = home.path().join("run");
    let out = gan_tui(home.path())
        .args(["--no-tui", "--epochs", "1", "--data-dir"])
        .arg(&data)
        .arg("--run-dir")
        .arg(&run)
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", text(&out));
    let ckpt = run.join("checkpoints/latest.safetensors");
    for (name, count) in [("d.idx", 10usize), ("d.idx.gz", 7), ("d.png", 12)] {
        let path = home.path().join(name);
        let out = gan_tui(home.path())
            .args([
                "sample",
                "--count",
                &count.to_string(),
                "--seed",
                "3",
                "--checkpoint",
            ])
            .arg(&ckpt)
            .arg("--out")
            .arg(&path)
            .output()
            .unwrap();
        assert!(out.status.success(), "{name}: {}", text(&out));
        if name.ends_with(".png") {
            let decoder = png::Decoder::new(std::io::Cursor::new(std::fs::read(&path).unwrap()));
            let info = decoder.read_info().unwrap().info().clone();
            // 12 digits in a 4x3 grid of 28 px with 2 px gaps.
            assert_eq!((info.width, info.height), (4 * 30 + 2, 3 * 30 + 2));
        } else {
            let images = gan_tui::data::idx::read_images(&path).unwrap();
            assert_eq!(
                (images.count, images.rows, images.cols),
                (count, 28, 28),
                "{name}"
            );
        }
    }
    // The same seed draws the same digits.
    let again = home.path().join("again.idx");
    let out = gan_tui(home.path())
        .args(["sample", "--count", "10", "--seed", "3", "--checkpoint"])
        .arg(&ckpt)
        .arg("--out")
        .arg(&again)
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", text(&out));
    assert_eq!(
        std::fs::read(&again).unwrap(),
        std::fs::read(home.path().join("d.idx")).unwrap()
    );
}
