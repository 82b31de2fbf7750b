//! Shared helpers for the integration tests: the real binary, isolated folders, small real data.

#![allow(dead_code)]

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use gan_tui::data::{self, Split, idx};

pub const BIN: &str = env!("CARGO_BIN_EXE_gan-tui");

/// The user config every test run gets unless it passes `--config`: no judge scoring after each
/// epoch, which would dominate the tiny epochs of tests (the tests of scoring turn it on).
pub const TEST_USER_CONFIG: &str = "[run]\neval_count = 0\n";

/// A command for the real binary whose config and data folders live under `home`, so tests
/// never read or write the user's own.
pub fn gan_tui(home: &Path) -> Command {
    test_user_config(home);
    let mut cmd = Command::new(BIN);
    cmd.env("GAN_TUI_CONFIG_DIR", home.join("config"))
        .env("GAN_TUI_DATA_DIR", home.join("data"))
        .env_remove("NO_COLOR");
    cmd
}

/// Writes `TEST_USER_CONFIG` as the user config under `home`, unless one is there.
pub fn test_user_config(home: &Path) {
    let config_dir = home.join("config");
    if !config_dir.join("config.toml").exists() {
        std::fs::create_dir_all(&config_dir).unwrap();
        std::fs::write(config_dir.join("config.toml"), TEST_USER_CONFIG).unwrap();
    }
}

/// Writes the first `n` real MNIST training digits as raw IDX files into `dir`.
pub fn small_mnist(dir: &Path, n: usize) -> PathBuf {
    std::fs::create_dir_all(dir).unwrap();
    let set = data::load(None, Split::Train).unwrap().take(n);
    let images = idx::encode_images(set.rows, set.cols, &set.images).unwrap();
    let labels = idx::encode_labels(&set.labels).unwrap();
    std::fs::write(dir.join(Split::Train.images_file()), images).unwrap();
    std::fs::write(dir.join(Split::Train.labels_file()), labels).unwrap();
    dir.to_path_buf()
}

pub fn text(out: &Output) -> String {
    format!(
        "status: {:?}\nstdout:\n{}\nstderr:\n{}",
        out.status,
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    )
}

/// Parses `metrics.jsonl` into JSON values.
pub fn metrics(run: &Path) -> Vec<serde_json::Value> {
    std::fs::read_to_string(run.join("metrics.jsonl"))
        .unwrap()
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect()
}
