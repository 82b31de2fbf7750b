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

/// A started run of the real binary that is killed when the test ends, passed or failed, so a
/// failed test leaves no run training behind.
pub struct Running(pub std::process::Child);

impl std::ops::Deref for Running {
    type Target = std::process::Child;
    fn deref(&self) -> &Self::Target {
        &self.0
    }
}

impl std::ops::DerefMut for Running {
    fn deref_mut(&mut self) -> &mut Self::Target {
        &mut self.0
    }
}

impl Drop for Running {
    fn drop(&mut self) {
        if let Ok(None) = self.0.try_wait() {
            let _ = self.0.kill();
            let _ = self.0.wait();
        }
    }
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

/// A tmux server of a test's own (its own socket), killed when dropped.
pub struct Tmux {
    socket: String,
}

impl Tmux {
    /// Starts `command` in a detached `width` x `height` session.
    pub fn start(socket: &str, width: u16, height: u16, command: &str) -> Tmux {
        let tmux = Tmux {
            socket: socket.to_string(),
        };
        let (w, h) = (width.to_string(), height.to_string());
        let status = tmux
            .cmd()
            .args(["new-session", "-d", "-x", &w, "-y", &h, command])
            .status()
            .expect("tmux is needed for this test (.ci/run installs it)");
        assert!(status.success());
        tmux
    }

    pub fn cmd(&self) -> Command {
        let mut c = Command::new("tmux");
        c.args(["-L", &self.socket]);
        c
    }

    pub fn screen(&self) -> String {
        let out = self.cmd().args(["capture-pane", "-p"]).output().unwrap();
        String::from_utf8_lossy(&out.stdout).into_owned()
    }

    /// The screen with lines the terminal wrapped joined back.
    pub fn unwrapped_screen(&self) -> String {
        let out = self
            .cmd()
            .args(["capture-pane", "-p", "-J"])
            .output()
            .unwrap();
        String::from_utf8_lossy(&out.stdout).into_owned()
    }

    pub fn keys(&self, keys: &str) {
        assert!(
            self.cmd()
                .args(["send-keys", keys])
                .status()
                .unwrap()
                .success()
        );
    }

    /// Waits up to `secs` for the screen to satisfy `pred`, returning the screen.
    pub fn wait_for(&self, secs: u64, what: &str, pred: impl Fn(&str) -> bool) -> String {
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(secs);
        loop {
            let screen = self.screen();
            if pred(&screen) {
                return screen;
            }
            if std::time::Instant::now() > deadline {
                panic!("timed out waiting for {what}; screen:\n{screen}");
            }
            std::thread::sleep(std::time::Duration::from_millis(100));
        }
    }
}

impl Drop for Tmux {
    fn drop(&mut self) {
        let _ = self.cmd().arg("kill-server").status();
    }
}

/// `p` in single quotes, for a shell command line.
pub fn sh_quote(p: &Path) -> String {
    format!("'{}'", p.display())
}

/// The step number the status bar shows ("step 123/...").
pub fn shown_step(screen: &str) -> Option<u64> {
    screen.match_indices("step ").find_map(|(at, _)| {
        let rest = &screen[at + 5..];
        let digits: String = rest.chars().take_while(char::is_ascii_digit).collect();
        let after = rest[digits.len()..].chars().next();
        (!digits.is_empty() && after == Some('/')).then(|| digits.parse().ok())?
    })
}

/// Waits up to `secs` for `pred` to hold, checking every 100 ms; fails naming `what`.
pub fn wait_until(secs: u64, what: &str, mut pred: impl FnMut() -> bool) {
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(secs);
    while !pred() {
        assert!(
            std::time::Instant::now() < deadline,
            "timed out waiting for {what}"
        );
        std::thread::sleep(std::time::Duration::from_millis(100));
    }
}

/// Lines in `run`'s `metrics.jsonl` so far (0 before it exists).
pub fn metrics_lines(run: &Path) -> usize {
    std::fs::read_to_string(run.join("metrics.jsonl"))
        .map(|t| t.lines().count())
        .unwrap_or(0)
}

/// The text of `path`, or nothing if it cannot be read (yet).
pub fn read(path: &Path) -> String {
    std::fs::read_to_string(path).unwrap_or_default()
}
