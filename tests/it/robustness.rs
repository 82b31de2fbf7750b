//! The real binary against bad input wherever it enters: config files, data folders,
//! checkpoints, themes, flags and a terminal too small to draw in. Each bad input gets one line
//! on stderr naming the file and the problem, the documented exit code, no panic, no run folder,
//! and no file changed. The inputs are the committed files in `tests/bad_inputs/` (its README
//! lists them) plus a few made here because git cannot hold them or they are large.

use crate::common;

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

// ---------------------------------------------------------------------------------------------
// Config files.

#[test]
fn bad_config_files_are_refused_with_file_line_key_and_problem() {
    let cases: &[(&str, &[&str])] = &[
        (
            "syntax_error.toml",
            &[":1: `[train`: TOML syntax error", "unclosed table"],
        ),
        (
            "unknown_key.toml",
            &[":3: train.epoch is not a known key", "epochs, batch_size"],
        ),
        (
            "unknown_table.toml",
            &[":1: [training] is not a known table", "[train], [data]"],
        ),
        (
            "top_level_key.toml",
            &[":1: epochs is outside any table; put it under [train]"],
        ),
        (
            "wrong_type.toml",
            &[
                ":2: train.epochs = \"three\" has the wrong type",
                "an integer",
            ],
        ),
        (
            "table_as_value.toml",
            &[":1: train = 3 has the wrong type; expected a table"],
        ),
        (
            "zero_batch.toml",
            &[":2: train.batch_size = 0 is out of range (1..=4096)"],
        ),
        (
            "zero_epochs.toml",
            &[":2: train.epochs = 0 is out of range (1..=10000)"],
        ),
        (
            "negative_lr.toml",
            &[":2: train.lr = -0.0002 is out of range", "> 0"],
        ),
        (
            "nan_lr.toml",
            &[":2: train.lr = nan is out of range", "finite"],
        ),
        (
            "absurd_batch.toml",
            &[":2: train.batch_size = 1000000 is out of range"],
        ),
        (
            "absurd_epochs.toml",
            &[":2: train.epochs = 99999999999999999999 is out of range"],
        ),
        (
            "absurd_sample_count.toml",
            &[":2: run.sample_count = 100000 is out of range (1..=256)"],
        ),
        (
            "unknown_preset.toml",
            &[
                ":2: train.preset = \"stylegan\" is not a known preset",
                "reference",
            ],
        ),
        (
            "bad_theme_name.toml",
            &[":2: ui.theme = \"../../etc/passwd\" is not a valid name"],
        ),
        ("not_utf8.toml", &[":1: the config file is not UTF-8 text"]),
        (
            "is_a_directory.toml",
            &["is a directory; give the path of a TOML file"],
        ),
    ];
    for (name, words) in cases {
        let file = input(&format!("config/{name}"));
        let mut words = words.to_vec();
        let path = shown(&file);
        words.push(&path);
        with_config(&file).fails_with(&words);
    }
}

#[test]
fn a_config_naming_a_damaged_data_folder_reports_the_data_file() {
    let file = input("config/data_dir_truncated.toml");
    // `../data/truncated_images` is relative to the config file's folder.
    let images = input("config/../data/truncated_images/train-images-idx3-ubyte");
    with_config(&file)
        .watch(input("data/truncated_images"))
        .fails_with(&[&shown(&images), "truncated: header says 2 images of 28x28"]);
}

#[test]
fn missing_unreadable_and_endless_config_files_are_refused() {
    let tmp = tempfile::tempdir().unwrap();
    let missing = tmp.path().join("nope.toml");
    with_config(&missing).fails_with(&[&format!("config file {} does not exist", shown(&missing))]);

    // A link to itself cannot be read, even by root (who reads a mode-000 file).
    let unreadable = tmp.path().join("loop.toml");
    std::os::unix::fs::symlink(&unreadable, &unreadable).unwrap();
    let refusal = with_config(&unreadable).watch(tmp.path());
    let refused = refusal.run();
    assert_eq!(refused.code, Some(1), "{}", refused.stderr);
    assert!(
        refused.stderr.starts_with(&format!(
            "error: cannot read config file {}: ",
            shown(&unreadable)
        )),
        "{}",
        refused.stderr
    );
    // Said once: the cause is not repeated as a chained source.
    assert_eq!(
        refused.stderr.matches("symbolic links").count(),
        1,
        "{}",
        refused.stderr
    );

    with_config(Path::new("/dev/zero")).fails_with(&["config file /dev/zero is larger than"]);
}

// ---------------------------------------------------------------------------------------------
// Data folders.

#[test]
fn bad_data_folders_are_refused_naming_the_file_and_the_problem() {
    let images = "train-images-idx3-ubyte";
    let labels = "train-labels-idx1-ubyte";
    let cases: &[(&str, &str, &str)] = &[
        (
            "missing_labels",
            "",
            "has neither train-labels-idx1-ubyte nor train-labels-idx1-ubyte.gz; it holds: train-images-idx3-ubyte",
        ),
        (
            "misnamed",
            "",
            "has neither train-images-idx3-ubyte nor train-images-idx3-ubyte.gz; it holds: train-images.idx3-ubyte, train-labels.idx1-ubyte",
        ),
        (
            "truncated_images",
            images,
            ": truncated: header says 2 images of 28x28 (1584 bytes) but the file has 1284 bytes",
        ),
        (
            "truncated_header",
            images,
            ": too short for an IDX images file: it has 10 bytes but the header alone needs 16",
        ),
        (
            "wrong_magic",
            images,
            ": not an IDX images file: it starts with magic",
        ),
        (
            "swapped",
            images,
            ": this is an IDX labels file (magic 2049), but an IDX images file (magic 2051) belongs here",
        ),
        ("zero_count", images, ": header says 0 images"),
        ("trailing_bytes", images, ": 13 bytes too many"),
        (
            "not_28x28",
            images,
            ": images are 14x14, but the models take 28x28",
        ),
        ("count_mismatch", images, " holds 2 images but "),
        (
            "bad_label",
            labels,
            ": label 1 is 10, but digit labels must be 0-9",
        ),
        (
            "corrupt_gzip",
            "train-images-idx3-ubyte.gz",
            ": corrupt gzip stream (",
        ),
        (
            "truncated_gzip",
            "train-images-idx3-ubyte.gz",
            ": corrupt gzip stream (",
        ),
    ];
    for (name, file, words) in cases {
        let dir = input(&format!("data/{name}"));
        let named = if file.is_empty() {
            format!("data folder {} ", shown(&dir))
        } else {
            shown(&dir.join(file))
        };
        with_data(&dir).fails_with(&[&named, words]);
    }
}

#[test]
fn a_gzip_trailer_claiming_4_gib_is_refused_on_a_machine_short_of_memory() {
    // The trailer once made the reader reserve 1 GiB up front, which aborted the process
    // where memory is limited.
    let dir = input("data/gzip_claims_4gib");
    let mut refusal = with_data(&dir);
    refusal.memory_limit_kib = Some(800_000);
    refusal.fails_with(&[
        &shown(&dir.join("train-images-idx3-ubyte.gz")),
        "corrupt gzip stream",
    ]);
}

#[test]
fn empty_missing_unreadable_and_non_folders_are_refused() {
    let tmp = tempfile::tempdir().unwrap();
    // Git keeps no empty folders, so this one is made here.
    let empty = tmp.path().join("empty");
    std::fs::create_dir(&empty).unwrap();
    with_data(&empty).fails_with(&[&format!("data folder {} is empty", shown(&empty))]);

    let missing = tmp.path().join("fashion");
    with_data(&missing).fails_with(&[&format!("data folder {} does not exist", shown(&missing))]);

    let file = input("data/truncated_images/train-images-idx3-ubyte");
    with_data(&file).fails_with(&[&format!("data folder {} is not a folder", shown(&file))]);

    let looped = tmp.path().join("looped");
    std::os::unix::fs::symlink(&looped, &looped).unwrap();
    with_data(&looped).fails_with(&[
        &format!("data folder {}: cannot read it: ", shown(&looped)),
        "symbolic links",
    ]);

    // The labels file is there but cannot be read (a link to itself).
    let unreadable = tmp.path().join("unreadable");
    std::fs::create_dir(&unreadable).unwrap();
    std::fs::copy(
        input("data/truncated_images/train-labels-idx1-ubyte"),
        unreadable.join("train-labels-idx1-ubyte"),
    )
    .unwrap();
    let link = unreadable.join("train-images-idx3-ubyte");
    std::os::unix::fs::symlink(&link, &link).unwrap();
    with_data(&unreadable).fails_with(&[
        &format!("{}: cannot read the file: ", shown(&link)),
        "symbolic links",
    ]);
}

// ---------------------------------------------------------------------------------------------
// Checkpoints.

#[test]
fn bad_checkpoint_files_are_refused_naming_the_file_and_the_problem() {
    let cases: &[(&str, &str)] = &[
        (
            "zero_length.safetensors",
            ": not a safetensors file (the file is empty)",
        ),
        (
            "not_safetensors.safetensors",
            ": not a safetensors file (its first 8 bytes should hold the header's length",
        ),
        (
            "garbage_header.safetensors",
            ": not a safetensors file (invalid JSON in header",
        ),
        (
            "truncated.safetensors",
            ": the checkpoint is damaged: cut short: its header describes 13118044 bytes of \
             tensor data, but only 64 follow",
        ),
        (
            "foreign.safetensors",
            ": a safetensors file, but not a gan-tui checkpoint (no metadata)",
        ),
        (
            "newer_format.safetensors",
            ": a safetensors file, but not a gan-tui checkpoint (format version 9",
        ),
        (
            "other_preset.safetensors",
            ": holds preset `stylegan`, which this gan-tui does not know",
        ),
        (
            "other_architecture.safetensors",
            ": holds preset `reference` (mlp G 100-128-784; D 784-128-1), but the model here is",
        ),
        (
            "wrong_dtype.safetensors",
            ": tensor `trainer.sample_noise` is F16, checkpoints hold F32 tensors",
        ),
        (
            "missing_tensors.safetensors",
            ": tensor `model.0.weight` is missing",
        ),
        (
            "wrong_shape.safetensors",
            ": tensor `model.0.weight` has shape [2, 2], the model needs [256, 100]",
        ),
    ];
    for (name, words) in cases {
        let file = input(&format!("checkpoints/{name}"));
        sampling(&file).fails_with(&[&format!("{}{words}", shown(&file))]);
    }
    let tmp = tempfile::tempdir().unwrap();
    let missing = tmp.path().join("latest.safetensors");
    sampling(&missing).fails_with(&[
        &format!("{}: cannot read checkpoint", shown(&missing)),
        "No such file",
    ]);
}

/// A real checkpoint from a one-step run on a few real digits, and `sample` working on it, so
/// the refusals below are of the damage and not of something else.
fn real_checkpoint(home: &Path) -> PathBuf {
    let data = small_mnist(&home.join("digits"), 64);
    let run = home.join("run");
    let out = gan_tui(home)
        .args([
            "--no-tui",
            "--preset",
            "reference",
            "--max-steps",
            "1",
            "--data-dir",
        ])
        .arg(&data)
        .arg("--run-dir")
        .arg(&run)
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", text(&out));
    let ckpt = run.join("checkpoints/latest.safetensors");
    let png = home.join("digits.png");
    let out = gan_tui(home)
        .args(["sample", "--count", "4", "--checkpoint"])
        .arg(&ckpt)
        .arg("--out")
        .arg(&png)
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", text(&out));
    ckpt
}

#[test]
fn damaged_copies_of_a_real_checkpoint_are_refused() {
    // Made here: a real checkpoint is 13 MB, too big to commit.
    let home = tempfile::tempdir().unwrap();
    let ckpt = real_checkpoint(home.path());
    let bytes = std::fs::read(&ckpt).unwrap();
    let good = Checkpoint::decode(&ckpt, &bytes).unwrap();
    let bad = home.path().join("bad");
    std::fs::create_dir(&bad).unwrap();
    let write = |name: &str, bytes: &[u8]| {
        let path = bad.join(name);
        std::fs::write(&path, bytes).unwrap();
        path
    };

    let cut = write("half.safetensors", &bytes[..bytes.len() / 2]);
    sampling(&cut).fails_with(&[
        &format!("{}: the checkpoint is damaged: cut short: ", shown(&cut)),
        "use another checkpoint",
    ]);

    let mut without = good.clone();
    without.state.tensors.retain(|t| t.name != "model.2.bias");
    let without = write("without_bias.safetensors", &without.encode().unwrap());
    sampling(&without).fails_with(&[&format!(
        "{}: tensor `model.2.bias` is missing",
        shown(&without)
    )]);

    let mut transposed = good.clone();
    for t in &mut transposed.state.tensors {
        if t.name == "model.0.weight" {
            t.shape.reverse();
        }
    }
    let transposed = write("transposed.safetensors", &transposed.encode().unwrap());
    sampling(&transposed).fails_with(&[&format!(
        "{}: tensor `model.0.weight` has shape [100, 256], the model needs [256, 100]",
        shown(&transposed)
    )]);

    let mut other = good.clone();
    other.preset = "stylegan".to_string();
    let other = write("stylegan.safetensors", &other.encode().unwrap());
    sampling(&other).fails_with(&[&format!("{}: holds preset `stylegan`", shown(&other))]);

    // A flipped bit in the header's length prefix: 256 MiB more, beyond any header.
    let mut flipped = bytes.clone();
    flipped[3] ^= 0x10;
    let flipped = write("flipped.safetensors", &flipped);
    sampling(&flipped).fails_with(&[&format!(
        "{}: not a safetensors file (its first 8 bytes should hold the header's length",
        shown(&flipped)
    )]);

    // The real checkpoint was only read.
    assert_eq!(std::fs::read(&ckpt).unwrap(), bytes);
}

// ---------------------------------------------------------------------------------------------
// Themes.

#[test]
fn bad_theme_files_are_reported_and_the_default_theme_is_used() {
    let dir = input("themes");
    let before = snapshot(&dir);
    let cases: &[(&str, &[&str])] = &[
        (
            "bad_colour",
            &["line 2", "`loss_d`", "blurple", "is not a colour"],
        ),
        ("unknown_key", &["line 2", "unknown key `los_g`", "loss_g"]),
        ("not_toml", &["line 2", "not valid TOML"]),
        (
            "bad_ramp",
            &["line 1", "`digit_ramp`", "2 to 64 characters"],
        ),
        ("wrong_type", &["line 1", "`digit_invert`", "true or false"]),
        ("bad_index", &["line 1", "`ok`", "0 to 255"]),
        ("not_utf8", &["line 2", "not UTF-8 text"]),
    ];
    for (name, words) in cases {
        let file = shown(&dir.join(format!("{name}.toml")));
        let (theme, warning) = Theme::load_with(name, &dir, false);
        assert_eq!(theme, Theme::default(), "{name}");
        let warning = warning.unwrap_or_else(|| panic!("{name}: no warning"));
        assert!(!warning.contains('\n'), "{name}: {warning}");
        for word in words
            .iter()
            .chain(&[file.as_str(), "using the default theme"])
        {
            assert!(warning.contains(word), "{name}: want {word:?} in {warning}");
        }

        // What the dashboard does: the default drawn, the file's name kept, the warning shown.
        let (set, warning) = ThemeSet::load(name, &dir, false);
        assert_eq!(set.current(), &Theme::default(), "{name}");
        assert_eq!(set.current_name(), *name);
        assert!(warning.is_some_and(|w| w.contains(&file)), "{name}");
    }
    // A good file beside them loads as itself, so the warnings above are about the files.
    let tmp = tempfile::tempdir().unwrap();
    std::fs::write(tmp.path().join("fine.toml"), "loss_d = \"blue\"\n").unwrap();
    let (theme, warning) = Theme::load_with("fine", tmp.path(), false);
    assert_eq!(warning, None);
    assert_ne!(theme, Theme::default());
    assert_eq!(snapshot(&dir), before, "theme files changed");
}

// ---------------------------------------------------------------------------------------------
// The command line.

#[test]
fn bad_flags_are_usage_errors_with_exit_code_2() {
    let cases: &[(&[&str], &str)] = &[
        (&["--frobnicate"], "unexpected argument '--frobnicate'"),
        (
            &["--epochs", "many"],
            "invalid value 'many' for '--epochs <N>'",
        ),
        (&["--seed", "1.5"], "invalid value '1.5' for '--seed <N>'"),
        (
            &["--max-steps", "99999999999999999999999"],
            "number too large",
        ),
        (&["--lr", "fast"], "invalid value 'fast' for '--lr <RATE>'"),
        (
            &["--preset", "stylegan"],
            "unknown preset `stylegan`; the presets are: reference",
        ),
        (&["--config"], "a value is required for '--config <FILE>'"),
        (
            &[
                "--epochs",
                "3",
                "sample",
                "--checkpoint",
                "c",
                "--out",
                "o.png",
            ],
            "cannot be used with",
        ),
        (
            &["sample", "--out", "o.png"],
            "the following required arguments were not provided",
        ),
        (
            &[
                "sample",
                "--checkpoint",
                "c",
                "--out",
                "o.png",
                "--count",
                "0",
            ],
            "0 is not in 1..=100000",
        ),
        (&["bench", "--steps", "1"], "1 is not in 5..=1000000"),
        (&["bench", "--engine", "turbo"], "unknown engine `turbo`"),
    ];
    for (args, words) in cases {
        Refusal::new(args.iter().map(os)).fails_as_usage_error(&[words]);
    }
}

#[test]
fn flag_values_out_of_range_and_paths_that_do_not_exist_are_refused() {
    let cases: &[(&[&str], &str)] = &[
        (&["--epochs", "0"], "--epochs 0 is out of range (1..=10000)"),
        (
            &["--batch-size", "0"],
            "--batch-size 0 is out of range (1..=4096)",
        ),
        (
            &["--batch-size", "99999"],
            "--batch-size 99999 is out of range (1..=4096)",
        ),
        (&["--lr=-1"], "--lr -1 is out of range"),
        (&["--lr", "nan"], "--lr NaN is out of range"),
        (&["--lr", "inf"], "--lr inf is out of range"),
        (&["--theme", "../x"], "--theme ../x is not a valid name"),
        (
            &["--config", "/nonexistent/gan-tui.toml"],
            "config file /nonexistent/gan-tui.toml does not exist",
        ),
        (
            &["--data-dir", "/nonexistent/digits"],
            "data folder /nonexistent/digits does not exist",
        ),
    ];
    for (flags, words) in cases {
        let args = ["--no-tui"]
            .iter()
            .chain(*flags)
            .chain(&["--run-dir", "{run}"]);
        Refusal::new(args.map(os)).fails_with(&[words]);
    }
    let cases: &[(&[&str], &str)] = &[
        (
            &[
                "--checkpoint",
                "/nonexistent/c.safetensors",
                "--out",
                "{out}",
            ],
            "/nonexistent/c.safetensors: cannot read checkpoint",
        ),
        (
            &["--checkpoint", "c.safetensors", "--out", "digits.bmp"],
            "digits.bmp: unknown output type; name the file .png, .idx or .idx.gz",
        ),
    ];
    for (flags, words) in cases {
        Refusal::new(["sample"].iter().chain(*flags).map(os)).fails_with(&[words]);
    }
}

#[test]
fn run_folders_that_hold_a_run_or_cannot_be_made_are_refused_untouched() {
    let existing = input("run/existing_run");
    Refusal::new([
        os("--no-tui"),
        os("--max-steps"),
        os("1"),
        os("--run-dir"),
        os(&existing),
    ])
    .watch(&existing)
    .fails_with(&[
        &format!("{} already holds a run", shown(&existing)),
        "choose a new --run-dir",
    ]);

    // Under a file: the folder cannot be made.
    let file = input("config/zero_batch.toml");
    let under = file.join("run");
    Refusal::new([
        os("--no-tui"),
        os("--max-steps"),
        os("1"),
        os("--run-dir"),
        os(&under),
    ])
    .watch(&file)
    .fails_with(&[
        &format!("cannot create the run folder {}", shown(&under)),
        "Not a directory",
    ]);
}

/// Every committed bad input is used by a case above (the README lists the same names).
#[test]
fn every_committed_bad_input_has_a_case() {
    let this = include_str!("robustness.rs");
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

// ---------------------------------------------------------------------------------------------
// A real terminal (tmux).

fn wait_for(secs: u64, what: &str, mut done: impl FnMut() -> bool, shown: impl Fn() -> String) {
    let deadline = Instant::now() + Duration::from_secs(secs);
    while !done() {
        assert!(
            Instant::now() < deadline,
            "timed out waiting for {what}:\n{}",
            shown()
        );
        sleep(Duration::from_millis(100));
    }
}

/// The screen's words joined by single spaces: text the dashboard word-wrapped reads as one
/// line again.
fn words(screen: &str) -> String {
    screen.split_whitespace().collect::<Vec<_>>().join(" ")
}

/// Runs `gan-tui ARGS` in a `width` x `height` tmux pane from a shell that records the terminal
/// settings before and after and the exit status; returns the server and the three files.
fn in_terminal(
    home: &Path,
    name: &str,
    width: u16,
    height: u16,
    args: &str,
) -> (Tmux, [PathBuf; 3]) {
    let files = [
        home.join("stty-before"),
        home.join("stty-after"),
        home.join("exit"),
    ];
    let command = format!(
        "stty -g > {before}; GAN_TUI_CONFIG_DIR={cfg} GAN_TUI_DATA_DIR={data} {bin} {args}; \
         echo \"EXIT=$?\" > {exit}; stty -g > {after}; sleep 60",
        before = sh_quote(&files[0]),
        cfg = sh_quote(&home.join("config")),
        data = sh_quote(&home.join("data")),
        bin = BIN,
        exit = sh_quote(&files[2]),
        after = sh_quote(&files[1]),
    );
    let socket = format!("gan-tui-robust-{name}-{}", std::process::id());
    (Tmux::start(&socket, width, height, &command), files)
}

/// Waits for the shell to record the exit; returns it, checking the terminal was restored.
fn exited(tmux: &Tmux, files: &[PathBuf; 3]) -> String {
    wait_for(
        30,
        "the exit status",
        || files[1].exists(),
        || tmux.screen(),
    );
    sleep(Duration::from_millis(100));
    let before = std::fs::read_to_string(&files[0]).unwrap();
    let after = std::fs::read_to_string(&files[1]).unwrap();
    assert_eq!(
        before,
        after,
        "the terminal was left in another mode\n{}",
        tmux.screen()
    );
    std::fs::read_to_string(&files[2])
        .unwrap()
        .trim()
        .to_string()
}

#[test]
fn a_20x5_terminal_says_it_is_too_small_and_q_quits_cleanly() {
    let home = tempfile::tempdir().unwrap();
    let data = small_mnist(&home.path().join("digits"), 64);
    let run = home.path().join("run");
    let args = format!(
        "--max-steps 30 --data-dir {} --run-dir {}",
        sh_quote(&data),
        sh_quote(&run)
    );
    let (tmux, files) = in_terminal(home.path(), "tiny", 20, 5, &args);
    // The message is word-wrapped to the 20 columns; joined up, it reads as one line again.
    let joined = || words(&tmux.screen());
    wait_for(
        30,
        "the too-small message",
        || joined().contains("too small: 20x5"),
        || tmux.screen(),
    );
    let screen = joined();
    assert!(
        screen.contains("needs at least 50x15 (q quits)"),
        "{screen}"
    );
    tmux.keys("q");
    assert_eq!(exited(&tmux, &files), "EXIT=0", "{}", tmux.screen());
    let screen = tmux.screen();
    assert!(!screen.contains("panicked"), "{screen}");
    assert!(
        run.join("checkpoints/latest.safetensors").is_file(),
        "{screen}"
    );
}

#[test]
fn a_bad_theme_is_named_on_the_dashboard_which_runs_on_in_the_default_theme() {
    let home = tempfile::tempdir().unwrap();
    let themes = home.path().join("config/themes");
    std::fs::create_dir_all(&themes).unwrap();
    std::fs::copy(
        input("themes/bad_colour.toml"),
        themes.join("bad_colour.toml"),
    )
    .unwrap();
    // The built-in MNIST: its first epoch takes seconds, so the warning is not yet replaced by
    // the note of an end-of-epoch checkpoint when the screen is read.
    let args = format!(
        "--theme bad_colour --epochs 1 --run-dir {}",
        sh_quote(&home.path().join("run"))
    );
    let (tmux, files) = in_terminal(home.path(), "theme", 160, 40, &args);
    wait_for(
        30,
        "the theme warning",
        || tmux.screen().contains("blurple"),
        || tmux.screen(),
    );
    let screen = tmux.screen();
    assert!(
        screen.contains("bad_colour.toml") && screen.contains("loss_d"),
        "{screen}"
    );
    assert!(
        screen.contains("losses"),
        "the dashboard is drawn:\n{screen}"
    );
    tmux.keys("q");
    assert_eq!(exited(&tmux, &files), "EXIT=0", "{}", tmux.screen());
}

#[test]
fn a_bad_config_in_a_terminal_leaves_it_as_it_was() {
    // The dashboard would take the terminal over; a bad config must stop the run before that.
    let home = tempfile::tempdir().unwrap();
    let file = input("config/zero_batch.toml");
    let (tmux, files) = in_terminal(
        home.path(),
        "config",
        80,
        24,
        &format!("--config {}", sh_quote(&file)),
    );
    assert_eq!(exited(&tmux, &files), "EXIT=1");
    let screen = tmux.unwrapped_screen();
    let error = format!(
        "error: {}:2: train.batch_size = 0 is out of range",
        shown(&file)
    );
    assert!(screen.contains(&error), "{screen}");
    assert!(!home.path().join("data").exists(), "a run folder was made");
}
