//! The real binary against bad input wherever it enters: config files, data folders,
//! checkpoints, themes, flags and a terminal too small to draw in, one file a family as in
//! `tests/bad_inputs/`. Each bad input gets one line
//! on stderr naming the file and the problem, the documented exit code, no panic, no run folder,
//! and no file changed. The inputs are the committed files in `tests/bad_inputs/` (its README
//! lists them) plus a few made here because git cannot hold them or they are large.

use crate::common;

mod checkpoints;
mod command_line;
mod config;
mod data;
mod run;
mod terminal;
mod themes;

use std::collections::BTreeMap;
use std::ffi::{OsStr, OsString};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::thread::sleep;
use std::time::{Duration, Instant};

use common::*;
use gan_tui::dashboard::theme::{Theme, ThemeSet};
use gan_tui::train::checkpoint::Checkpoint;
use sha2::{Digest, Sha256};

/// The committed bad files.
fn inputs() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/bad_inputs")
}

fn input(rel: &str) -> PathBuf {
    inputs().join(rel)
}

/// Every file and folder under `root` with a digest of its contents (a link: its target), so
/// that any change, addition or removal shows as a difference.
fn snapshot(root: &Path) -> BTreeMap<PathBuf, String> {
    let mut out = BTreeMap::new();
    let mut stack = vec![root.to_path_buf()];
    while let Some(path) = stack.pop() {
        let Ok(meta) = std::fs::symlink_metadata(&path) else {
            continue;
        };
        let digest = if meta.file_type().is_symlink() {
            format!("link to {:?}", std::fs::read_link(&path).ok())
        } else if meta.is_dir() {
            for entry in std::fs::read_dir(&path).unwrap() {
                stack.push(entry.unwrap().path());
            }
            "folder".to_string()
        } else if meta.is_file() {
            format!("{:x}", Sha256::digest(std::fs::read(&path).unwrap()))
        } else {
            "special".to_string()
        };
        out.insert(path, digest);
    }
    out
}

/// One run of the binary that must be refused.
struct Refusal {
    /// What the case is, for failure messages.
    case: String,
    args: Vec<OsString>,
    /// Files and folders the run reads, which must not change.
    watched: Vec<PathBuf>,
    /// Runs in `sh` under `ulimit -v` (KiB) when set, as on a machine short of memory.
    memory_limit_kib: Option<u64>,
}

/// What a refused run printed.
struct Refused {
    code: Option<i32>,
    stderr: String,
}

impl Refusal {
    /// `args` may hold `{run}` (a run folder in the scratch home, which must not appear) and
    /// `{out}` (an output file there, which must not appear either).
    fn new(args: impl IntoIterator<Item = OsString>) -> Refusal {
        let args: Vec<OsString> = args.into_iter().collect();
        let words: Vec<String> = args
            .iter()
            .map(|a| a.to_string_lossy().into_owned())
            .collect();
        Refusal {
            case: format!("gan-tui {}", words.join(" ")),
            args,
            watched: Vec::new(),
            memory_limit_kib: None,
        }
    }

    fn watch(mut self, path: impl Into<PathBuf>) -> Refusal {
        self.watched.push(path.into());
        self
    }

    fn run(&self) -> Refused {
        let home = tempfile::tempdir().unwrap();
        let run_dir = home.path().join("run");
        let out_file = home.path().join("out.png");
        let args: Vec<OsString> = self
            .args
            .iter()
            .map(|a| match a.to_str() {
                Some("{run}") => run_dir.clone().into_os_string(),
                Some("{out}") => out_file.clone().into_os_string(),
                _ => a.clone(),
            })
            .collect();
        let before: Vec<_> = self.watched.iter().map(|p| snapshot(p)).collect();
        let home_before = snapshot(home.path());

        // The binary, bounded in time: an input wrongly accepted would start a long run.
        let mut cmd = match self.memory_limit_kib {
            None => {
                let mut c = Command::new("timeout");
                c.args(["-k", "5", "60", BIN]);
                c
            }
            Some(kib) => {
                let mut c = Command::new("sh");
                c.args([
                    "-c",
                    &format!("ulimit -v {kib} && exec timeout -k 5 60 \"$0\" \"$@\""),
                    BIN,
                ]);
                c
            }
        };
        let out = cmd
            .args(&args)
            .env("GAN_TUI_CONFIG_DIR", home.path().join("config"))
            .env("GAN_TUI_DATA_DIR", home.path().join("data"))
            .env_remove("NO_COLOR")
            .env_remove("RUST_BACKTRACE")
            .stdin(Stdio::null())
            .output()
            .unwrap();
        let case = &self.case;
        let shown = text(&out);
        for bad in [
            "panicked",
            "RUST_BACKTRACE",
            "stack backtrace",
            "memory allocation",
        ] {
            assert!(!shown.contains(bad), "{case}: {bad}\n{shown}");
        }
        assert!(out.stdout.is_empty(), "{case}: printed to stdout\n{shown}");
        for (path, before) in self.watched.iter().zip(&before) {
            assert_eq!(
                &snapshot(path),
                before,
                "{case}: {} changed",
                path.display()
            );
        }
        // Nothing written: no run folder (named or under the runs dir), no output, no config.
        assert_eq!(
            snapshot(home.path()),
            home_before,
            "{case}: wrote files\n{shown}"
        );
        Refused {
            code: out.status.code(),
            stderr: String::from_utf8_lossy(&out.stderr).into_owned(),
        }
    }

    /// Refused by gan-tui itself: exit 1 and exactly one line, `error: ...`, holding `words`.
    fn fails_with(self, words: &[&str]) {
        let refused = self.run();
        let case = &self.case;
        let stderr = refused.stderr.trim_end();
        assert_eq!(refused.code, Some(1), "{case}: exit code\n{stderr}");
        assert_eq!(stderr.lines().count(), 1, "{case}: not one line\n{stderr}");
        assert!(stderr.starts_with("error: "), "{case}: {stderr}");
        for word in words {
            assert!(stderr.contains(word), "{case}: want {word:?} in\n{stderr}");
        }
    }

    /// Refused by the command-line parser: exit 2, the first line `error: ...` holding `words`.
    fn fails_as_usage_error(self, words: &[&str]) {
        let refused = self.run();
        let case = &self.case;
        let first = refused.stderr.lines().next().unwrap_or("");
        assert_eq!(
            refused.code,
            Some(2),
            "{case}: exit code\n{}",
            refused.stderr
        );
        assert!(first.starts_with("error: "), "{case}: {}", refused.stderr);
        for word in words {
            assert!(first.contains(word), "{case}: want {word:?} in\n{first}");
        }
    }
}

fn os(arg: impl AsRef<OsStr>) -> OsString {
    arg.as_ref().to_os_string()
}

fn shown(path: &Path) -> String {
    path.display().to_string()
}

/// `--config FILE` for a training run.
fn with_config(file: &Path) -> Refusal {
    Refusal::new([
        os("--no-tui"),
        os("--config"),
        os(file),
        os("--run-dir"),
        os("{run}"),
    ])
    .watch(file)
}

/// `--data-dir DIR` for a training run.
fn with_data(dir: &Path) -> Refusal {
    Refusal::new([
        os("--no-tui"),
        os("--data-dir"),
        os(dir),
        os("--run-dir"),
        os("{run}"),
    ])
    .watch(dir)
}

/// `sample --checkpoint FILE`.
fn sampling(file: &Path) -> Refusal {
    Refusal::new([
        os("sample"),
        os("--checkpoint"),
        os(file),
        os("--out"),
        os("{out}"),
    ])
    .watch(file)
}

/// Every committed bad input is used by a case (the README lists the same names).
#[test]
fn every_committed_bad_input_has_a_case() {
    let this = [
        include_str!("config.rs"),
        include_str!("data.rs"),
        include_str!("checkpoints.rs"),
        include_str!("themes.rs"),
        include_str!("run.rs"),
        include_str!("command_line.rs"),
        include_str!("terminal.rs"),
    ]
    .concat();
    let readme = std::fs::read_to_string(inputs().join("README.md")).unwrap();
    let mut names = Vec::new();
    for family in ["config", "data", "checkpoints", "themes", "run"] {
        for entry in std::fs::read_dir(inputs().join(family)).unwrap() {
            let name = entry.unwrap().file_name().to_string_lossy().into_owned();
            names.push((family, name));
        }
    }
    assert!(names.len() > 40, "{names:?}");
    for (family, name) in names {
        let stem = name.trim_end_matches(".toml");
        assert!(
            this.contains(&format!("\"{name}\""))
                || this.contains(&format!("\"{stem}\""))
                || this.contains(&format!("{family}/{name}")),
            "no case uses {family}/{name}"
        );
        assert!(
            readme.contains(&format!("`{family}/{name}`")),
            "README.md does not list {family}/{name}"
        );
    }
}
