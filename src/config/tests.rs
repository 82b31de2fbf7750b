//! Tests of resolving settings: defaults, the file layer, flags, and every message a bad value gets.

use toml::de::{DeTable, DeValue};

use super::keys::*;
use super::*;
use crate::train::schedule::ScheduleKind;

/// Writes `text` as `config.toml` in a fresh folder; the folder lives as long as the guard.
fn write_config(text: &str) -> (tempfile::TempDir, PathBuf) {
    let tmp = tempfile::tempdir().unwrap();
    let path = tmp.path().join("config.toml");
    fs::write(&path, text).unwrap();
    (tmp, path)
}

fn no_user_file() -> PathBuf {
    PathBuf::from("/nonexistent/gan-tui-test/config.toml")
}

fn load_text(text: &str, overrides: &Overrides) -> Result<Config, ConfigError> {
    let (_tmp, path) = write_config(text);
    load(Some(&path), &no_user_file(), overrides).map(|l| l.config)
}

fn error(text: &str) -> String {
    match load_text(text, &Overrides::default()) {
        Ok(config) => panic!("expected an error for\n{text}\ngot {config:?}"),
        Err(e) => e.to_string(),
    }
}

/// The message names the file, the line and every one of `needles`.
fn assert_error(text: &str, line: usize, needles: &[&str]) {
    let msg = error(text);
    assert!(
        msg.contains(&format!("config.toml:{line}: ")),
        "want line {line} in: {msg}"
    );
    for needle in needles {
        assert!(msg.contains(needle), "want {needle:?} in: {msg}");
    }
}

/// `args` parsed as the command line's flags.
fn flags(args: &[&str]) -> Overrides {
    Overrides::parse(args).unwrap()
}

fn flag_error(overrides: Overrides) -> String {
    load(None, &no_user_file(), &overrides)
        .unwrap_err()
        .to_string()
}

#[test]
fn no_file_gives_the_defaults() {
    let loaded = load(None, &no_user_file(), &Overrides::default()).unwrap();
    assert_eq!(loaded.config, Config::default());
    assert_eq!(loaded.source, ConfigSource::Defaults);
    assert_eq!(loaded.source.path(), None);
}

#[test]
fn empty_file_gives_the_defaults() {
    assert_eq!(
        load_text("", &Overrides::default()).unwrap(),
        Config::default()
    );
    assert_eq!(
        load_text("[train]\n[data]\n[run]\n[ui]\n", &Overrides::default()).unwrap(),
        Config::default()
    );
}

#[test]
fn the_example_file_is_valid_and_holds_the_defaults() {
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("config.example.toml");
    let loaded = load(Some(&path), &no_user_file(), &Overrides::default()).unwrap();
    assert_eq!(loaded.config, Config::default());
}

#[test]
fn the_example_file_shows_every_key() {
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("config.example.toml");
    let text = fs::read_to_string(path).unwrap();
    let tree = DeTable::parse(&text).unwrap();
    for key in KEYS {
        let table = tree
            .get_ref()
            .iter()
            .find(|(k, _)| k.get_ref() == key.table())
            .map(|(_, v)| v.get_ref());
        let Some(DeValue::Table(table)) = table else {
            panic!("config.example.toml has no [{}] table", key.table());
        };
        assert!(
            table.iter().any(|(k, _)| k.get_ref() == key.name()),
            "config.example.toml lacks {}.{}",
            key.table(),
            key.name()
        );
    }
}

#[test]
fn user_file_is_used_when_it_exists() {
    let (_tmp, path) = write_config("[train]\nepochs = 7\n");
    let loaded = load(None, &path, &Overrides::default()).unwrap();
    assert_eq!(loaded.config.epochs, 7);
    assert_eq!(loaded.source, ConfigSource::UserFile(path.clone()));
    assert_eq!(loaded.source.path(), Some(path.as_path()));
}

#[test]
fn explicit_file_replaces_the_user_file() {
    let (_user_tmp, user) = write_config("this is not toml");
    let (_tmp, explicit) = write_config("[train]\nepochs = 9\n");
    let loaded = load(Some(&explicit), &user, &Overrides::default()).unwrap();
    assert_eq!(loaded.config.epochs, 9);
    assert_eq!(loaded.source, ConfigSource::Explicit(explicit));
}

#[test]
fn missing_explicit_file_is_an_error_with_its_path() {
    let tmp = tempfile::tempdir().unwrap();
    let path = tmp.path().join("nope.toml");
    let err = load(Some(&path), &no_user_file(), &Overrides::default()).unwrap_err();
    assert!(matches!(err, ConfigError::Missing { .. }), "{err:?}");
    let msg = err.to_string();
    assert!(msg.contains(&path.display().to_string()), "{msg}");
    assert!(msg.contains("does not exist"), "{msg}");
}

#[test]
fn directory_as_config_is_an_error_with_its_path() {
    let tmp = tempfile::tempdir().unwrap();
    for loaded in [
        load(Some(tmp.path()), &no_user_file(), &Overrides::default()),
        load(None, tmp.path(), &Overrides::default()),
    ] {
        let msg = loaded.unwrap_err().to_string();
        assert!(msg.contains(&tmp.path().display().to_string()), "{msg}");
        assert!(msg.contains("is a directory"), "{msg}");
    }
}

#[test]
fn unreadable_file_is_reported_once_with_its_path_and_cause() {
    // A symlink loop cannot be read even by root (a mode-000 file can).
    let tmp = tempfile::tempdir().unwrap();
    let path = tmp.path().join("loop.toml");
    std::os::unix::fs::symlink(&path, &path).unwrap();
    for loaded in [
        load(Some(&path), &no_user_file(), &Overrides::default()),
        load(None, &path, &Overrides::default()),
    ] {
        let err = loaded.unwrap_err();
        assert!(matches!(err, ConfigError::Read { .. }), "{err:?}");
        // main prints the error with its chain; the cause must appear once, not twice.
        let shown = format!("{:#}", anyhow::Error::new(err));
        assert!(shown.contains(&path.display().to_string()), "{shown}");
        assert_eq!(
            shown.matches("symbolic links").count(),
            1,
            "the cause once: {shown}"
        );
    }
}

#[test]
fn huge_files_and_endless_devices_are_refused_unread() {
    let tmp = tempfile::tempdir().unwrap();
    let big = tmp.path().join("big.toml");
    let mut text = "# padding\n".repeat((MAX_FILE_BYTES as usize) / 10 + 1);
    text.push_str("[train]\nepochs = 3\n");
    fs::write(&big, &text).unwrap();
    for path in [big.as_path(), Path::new("/dev/zero")] {
        let err = load(Some(path), &no_user_file(), &Overrides::default()).unwrap_err();
        assert!(matches!(err, ConfigError::TooLarge { .. }), "{err:?}");
        let msg = err.to_string();
        assert!(msg.contains(&path.display().to_string()), "{msg}");
        assert!(msg.contains("is larger than 1048576 bytes"), "{msg}");
    }
    // Just under the limit is still read.
    text.truncate(MAX_FILE_BYTES as usize - 20);
    text.push_str("\n[train]\nepochs = 3\n");
    assert_eq!(load_text(&text, &Overrides::default()).unwrap().epochs, 3);
}

#[test]
fn quoted_values_and_keys_stay_on_one_line() {
    let msg = error("[run]\nsample_every = '''multi\nline'''\n");
    assert!(
        msg.contains("run.sample_every = '''multi\\nline'''"),
        "{msg}"
    );
    assert!(!msg.contains('\n'), "{msg:?}");
    let msg = error("[train]\n\"ep\\nochs\\u001b[31m\" = 3\n");
    assert!(
        msg.contains("train.ep\\nochs\\u{1b}[31m is not a known key"),
        "{msg}"
    );
    assert!(!msg.contains('\n') && !msg.contains('\u{1b}'), "{msg:?}");
    let msg = error("[ui]\ntheme = \"tab\there\"\n");
    assert!(msg.contains(r#"ui.theme = "tab\there""#), "{msg}");
}

#[test]
fn non_utf8_file_is_an_error_with_path_and_line() {
    let tmp = tempfile::tempdir().unwrap();
    let path = tmp.path().join("latin1.toml");
    fs::write(&path, b"[ui]\ntheme = \"caf\xe9\"\n").unwrap();
    let msg = load(Some(&path), &no_user_file(), &Overrides::default())
        .unwrap_err()
        .to_string();
    assert!(msg.contains("latin1.toml:2: "), "{msg}");
    assert!(msg.contains("UTF-8"), "{msg}");
}

#[test]
fn syntax_errors_name_line_and_key() {
    assert_error(
        "[train]\nepochs = 5\nbatch_size = \n",
        3,
        &["train.batch_size", "syntax"],
    );
    assert_error("[train]\nepochs = 5 5\n", 2, &["train.epochs", "syntax"]);
    // No key to name: the line itself is quoted.
    assert_error("[train]\nepochs = 1\n[ui\n", 3, &["`[ui`", "syntax"]);
    assert_error("[train]\nepochs = 1\nepochs = 2\n", 3, &["`epochs = 2`"]);
}

#[test]
fn unknown_keys_in_each_table_name_line_key_and_known_keys() {
    assert_error(
        "[train]\nepochs = 5\nepoch = 5\n",
        3,
        &["train.epoch", "epochs, batch_size"],
    );
    assert_error(
        "[data]\npath = \"x\"\n",
        2,
        &["data.path", "keys of [data] are: dir"],
    );
    assert_error(
        "\n[run]\nlog_every = 1\nsamples = 3\n",
        4,
        &["run.samples", "sample_count"],
    );
    assert_error("[ui]\ncolour = \"red\"\n", 2, &["ui.colour", "theme, fps"]);
    // Dotted keys and inline tables are the same tables.
    assert_error("train.bogus = 1\n", 1, &["train.bogus"]);
    assert_error("ui = { fps = 3, zoom = 2 }\n", 1, &["ui.zoom"]);
}

#[test]
fn unknown_tables_and_top_level_keys_name_the_known_tables() {
    assert_error(
        "[ui]\nfps = 5\n\n[model]\nx = 1\n",
        4,
        &["[model]", "[train], [data]"],
    );
    assert_error(
        "epochs = 5\n",
        1,
        &["epochs is outside any table", "under [train]"],
    );
    assert_error(
        "\nzoom = 5\n",
        2,
        &["zoom is outside any table", "[train], [data]"],
    );
}

#[test]
fn wrong_types_name_line_key_value_and_the_type_wanted() {
    assert_error(
        "[train]\nepochs = \"ten\"\n",
        2,
        &[
            "train.epochs = \"ten\"",
            "wrong type",
            "an integer in 1..=10000",
        ],
    );
    assert_error("[train]\nseed = 1.5\n", 2, &["train.seed = 1.5", "integer"]);
    assert_error("[train]\nlr = \"fast\"\n", 2, &["train.lr", "number"]);
    assert_error("[data]\ndir = 3\n", 2, &["data.dir = 3", "string"]);
    assert_error("[ui]\ntheme = true\n", 2, &["ui.theme = true", "string"]);
    assert_error("train = 5\n", 1, &["train = 5", "a table"]);
}

#[test]
fn each_range_is_checked_with_line_key_value_and_range() {
    let cases = [
        ("train", "epochs", "0", "1..=10000"),
        ("train", "epochs", "10001", "1..=10000"),
        ("train", "batch_size", "0", "1..=4096"),
        ("train", "batch_size", "4097", "1..=4096"),
        ("train", "seed", "-1", "0..=9223372036854775807"),
        (
            "train",
            "seed",
            "18446744073709551615",
            "0..=9223372036854775807",
        ),
        ("train", "max_steps", "-5", "0..="),
        ("train", "lr", "0", "> 0 and <= 1"),
        ("train", "lr", "-0.1", "> 0 and <= 1"),
        ("train", "lr", "1.5", "> 0 and <= 1"),
        ("train", "lr", "nan", "finite"),
        ("train", "lr", "inf", "finite"),
        ("run", "log_every", "0", "1..="),
        ("run", "sample_every", "0", "1..="),
        ("run", "sample_count", "0", "1..=256"),
        ("run", "sample_count", "257", "1..=256"),
        ("ui", "fps", "0", "1..=60"),
        ("ui", "fps", "61", "1..=60"),
    ];
    for (table, key, value, range) in cases {
        // A leading comment puts the value on line 3.
        let text = format!("# test\n[{table}]\n{key} = {value}\n");
        let want = format!("{table}.{key} = {value} is out of range");
        assert_error(&text, 3, &[&want, range]);
    }
}

#[test]
fn range_edges_are_accepted() {
    let text = "[train]\nepochs = 10000\nbatch_size = 4096\nseed = 9223372036854775807\n\
                lr = 1\n[run]\nsample_count = 256\nlog_every = 1\n[ui]\nfps = 60\n";
    let config = load_text(text, &Overrides::default()).unwrap();
    assert_eq!(config.epochs, 10_000);
    assert_eq!(config.batch_size, 4096);
    assert_eq!(config.seed, i64::MAX as u64);
    assert_eq!(config.lr, 1.0);
    assert_eq!(config.sample_count, 256);
    assert_eq!(config.log_every, 1);
    assert_eq!(config.fps, 60);
}

#[test]
fn unknown_preset_lists_the_known_ones() {
    assert_error(
        "[train]\npreset = \"dcgan9\"\n",
        2,
        &[
            "train.preset = \"dcgan9\"",
            "not a known preset",
            "reference",
        ],
    );
}

#[test]
fn theme_must_be_a_plain_name() {
    assert_error(
        "[ui]\ntheme = \"../etc\"\n",
        2,
        &["ui.theme = \"../etc\"", "name"],
    );
    assert_error("[ui]\ntheme = \"\"\n", 2, &["ui.theme = \"\""]);
    let config = load_text("[ui]\ntheme = \"solar-Dark_2\"\n", &Overrides::default());
    assert_eq!(config.unwrap().theme, "solar-Dark_2");
}

#[test]
fn file_values_beat_defaults_and_flags_beat_the_file() {
    let text = "[train]\nepochs = 3\nbatch_size = 32\nseed = 11\nmax_steps = 100\nearly_stop = 4\nthreads = 1\nlr = 0.001\n\
                [data]\ndir = \"digits\"\n[run]\ndir = \"out\"\nlog_every = 5\n\
                sample_every = 50\nsample_count = 16\nkeep_checkpoints = 2\n\
                on_write_error = \"stop\"\neval_count = 300\ncontrol = false\n[ui]\ntheme = \"mono\"\nfps = 30\n";
    let (tmp, path) = write_config(text);
    let from_file = load(Some(&path), &no_user_file(), &Overrides::default())
        .unwrap()
        .config;
    let dir = std::path::absolute(tmp.path()).unwrap();
    let want = Config {
        preset: Preset::Cgan,
        epochs: 3,
        batch_size: 32,
        seed: 11,
        max_steps: Some(100),
        early_stop: 4,
        threads: 1,
        lr: 0.001,
        lr_schedule: Schedule {
            kind: ScheduleKind::Cosine,
            ..Schedule::default()
        },
        data_dir: Some(dir.join("digits")),
        run_dir: Some(dir.join("out")),
        log_every: 5,
        sample_every: 50,
        sample_count: 16,
        theme: "mono".to_string(),
        fps: 30,
        keep_checkpoints: 2,
        on_write_error: OnWriteError::Stop,
        eval_count: 300,
        control: false,
        forked_from: None,
        forked_at_step: 0,
    };
    assert_eq!(from_file, want);

    let overrides = flags(&[
        "--preset",
        "reference",
        "--epochs",
        "4",
        "--batch-size",
        "8",
        "--seed",
        "12",
        "--max-steps",
        "0",
        "--early-stop",
        "0",
        "--threads",
        "0",
        "--lr",
        "0.5",
        "--lr-schedule",
        "cosine",
        "--data-dir",
        "/abs/data",
        "--run-dir",
        "/abs/run",
        "--theme",
        "night",
    ]);
    let flagged = load(Some(&path), &no_user_file(), &overrides)
        .unwrap()
        .config;
    let want = Config {
        preset: Preset::Reference,
        epochs: 4,
        batch_size: 8,
        seed: 12,
        max_steps: None,
        early_stop: 0,
        threads: 0,
        lr: 0.5,
        lr_schedule: crate::train::schedule::Schedule {
            kind: crate::train::schedule::ScheduleKind::Cosine,
            ..want.lr_schedule
        },
        data_dir: Some(PathBuf::from("/abs/data")),
        run_dir: Some(PathBuf::from("/abs/run")),
        theme: "night".to_string(),
        ..want
    };
    assert_eq!(flagged, want);
}

#[test]
fn schedule_keys_are_read_and_checked() {
    let config = load_text(
        "[train]\nlr_schedule = \"step\"\nlr_step_every = 938\nlr_gamma = 0.1\nlr_final = 0.25\n",
        &Overrides::default(),
    )
    .unwrap();
    assert_eq!(
        config.lr_schedule,
        Schedule {
            kind: ScheduleKind::Step,
            every: 938,
            gamma: 0.1,
            final_factor: 0.25,
        }
    );
    assert_error(
        "[train]\nlr_schedule = \"exponential\"\n",
        2,
        &[
            "train.lr_schedule = \"exponential\"",
            "not a known learning-rate schedule",
            "constant, step, cosine, linear",
        ],
    );
    assert_error(
        "[train]\nlr_step_every = 0\n",
        2,
        &["train.lr_step_every = 0", "out of range"],
    );
    assert_error(
        "[train]\n\nlr_gamma = 1.5\n",
        3,
        &["train.lr_gamma = 1.5", "out of range", "<= 1"],
    );
    assert_error(
        "[train]\nlr_final = -0.1\n",
        2,
        &["train.lr_final = -0.1", "out of range", ">= 0 and <= 1"],
    );
    assert_error(
        "[train]\nlr_schedule = 3\n",
        2,
        &[
            "train.lr_schedule = 3",
            "wrong type",
            "a string naming a schedule",
        ],
    );
}

#[test]
fn lr_defaults_to_the_presets_own() {
    let config = load_text("[train]\nepochs = 2\n", &Overrides::default()).unwrap();
    assert_eq!(config.lr, Preset::Cgan.default_lr());
    let config = load_text("[train]\npreset = \"reference\"\n", &Overrides::default()).unwrap();
    assert_eq!(config.lr, 2e-4);
    let config = load_text("[train]\nlr = 0.01\n", &Overrides::default()).unwrap();
    assert_eq!(config.lr, 0.01);
    let overrides = flags(&["--lr", "0.02"]);
    assert_eq!(
        load_text("[train]\nlr = 0.01\n", &overrides).unwrap().lr,
        0.02
    );
}

#[test]
fn relative_dirs_start_at_the_files_folder_and_empty_means_built_in() {
    let tmp = tempfile::tempdir().unwrap();
    let nested = tmp.path().join("conf");
    fs::create_dir(&nested).unwrap();
    let path = nested.join("gan.toml");
    fs::write(
        &path,
        "[data]\ndir = \"../mnist\"\n[run]\ndir = \"/abs/run\"\n",
    )
    .unwrap();
    let config = load(Some(&path), &no_user_file(), &Overrides::default())
        .unwrap()
        .config;
    let want = std::path::absolute(&nested).unwrap().join("../mnist");
    assert_eq!(config.data_dir, Some(want));
    assert_eq!(config.run_dir, Some(PathBuf::from("/abs/run")));

    let config = load_text("[data]\ndir = \"\"\n", &Overrides::default()).unwrap();
    assert_eq!(config.data_dir, None);
}

#[test]
fn relative_flag_dirs_start_at_the_current_folder() {
    let overrides = flags(&["--data-dir", "digits"]);
    let config = load(None, &no_user_file(), &overrides).unwrap().config;
    let want = std::env::current_dir().unwrap().join("digits");
    assert_eq!(config.data_dir, Some(want));
}

#[test]
fn max_steps_zero_is_no_limit() {
    let config = load_text("[train]\nmax_steps = 0\n", &Overrides::default()).unwrap();
    assert_eq!(config.max_steps, None);
    let config = load_text("[train]\nmax_steps = 7\n", &Overrides::default()).unwrap();
    assert_eq!(config.max_steps, Some(7));
    let overrides = flags(&["--max-steps", "3"]);
    let config = load(None, &no_user_file(), &overrides).unwrap().config;
    assert_eq!(config.max_steps, Some(3));
}

#[test]
fn flag_values_are_range_checked_and_name_the_flag() {
    let cases = [
        (
            flags(&["--batch-size", "0"]),
            "--batch-size 0 is out of range (1..=4096)",
        ),
        (
            flags(&["--epochs", "10001"]),
            "--epochs 10001 is out of range (1..=10000)",
        ),
        (
            flags(&["--seed", "18446744073709551615"]),
            "--seed 18446744073709551615 is out of range (0..=9223372036854775807)",
        ),
        (flags(&["--lr", "0"]), "--lr 0 is out of range"),
        (flags(&["--lr", "NaN"]), "--lr NaN is out of range"),
        (
            flags(&["--theme", "my theme"]),
            "--theme my theme is not a valid name",
        ),
    ];
    for (overrides, want) in cases {
        let msg = flag_error(overrides);
        assert!(msg.contains(want), "want {want:?} in: {msg}");
    }
}

#[test]
fn an_empty_folder_flag_is_a_usage_error() {
    // (In a file, "" means the built-in choice; on the command line it is a missing value.)
    for flag in ["--data-dir", "--run-dir"] {
        let err = Overrides::parse([flag, ""]).unwrap_err();
        assert_eq!(err.exit_code(), 2, "{flag}");
    }
}

#[test]
fn flag_errors_win_over_nothing_but_file_errors_come_first() {
    // A bad file is reported even when a flag would replace the bad value.
    let overrides = flags(&["--epochs", "5"]);
    let msg = load_text("[train]\nepochs = 0\n", &overrides)
        .unwrap_err()
        .to_string();
    assert!(msg.contains("train.epochs = 0"), "{msg}");
}

#[test]
fn to_toml_loads_back_equal() {
    let tmp = tempfile::tempdir().unwrap();
    let abs = std::path::absolute(tmp.path()).unwrap();
    // Every field away from its default, so a key missing from `KEYS` would be lost.
    let config = Config {
        preset: Preset::Tuned,
        epochs: 3,
        batch_size: 17,
        seed: i64::MAX as u64,
        max_steps: Some(123),
        early_stop: 9,
        threads: 3,
        lr: 0.1 + 0.2,
        lr_schedule: Schedule {
            kind: ScheduleKind::Cosine,
            every: 77,
            gamma: 0.3,
            final_factor: 0.05,
        },
        data_dir: Some(abs.join("my \"data\" dir")),
        run_dir: Some(abs.join("runs").join("r1")),
        log_every: 2,
        sample_every: 9,
        sample_count: 25,
        theme: "night".to_string(),
        fps: 7,
        keep_checkpoints: 0,
        on_write_error: OnWriteError::Stop,
        eval_count: 0,
        control: false,
        forked_from: Some(abs.join("runs").join("r0")),
        forked_at_step: 1876,
    };
    for config in [config, Config::default()] {
        let text = config.to_toml();
        let path = tmp.path().join("saved.toml");
        fs::write(&path, &text).unwrap();
        let back = load(Some(&path), &no_user_file(), &Overrides::default())
            .unwrap()
            .config;
        assert_eq!(back, config, "{text}");
    }
}

#[test]
fn to_toml_writes_every_key_with_none_as_zero_and_empty() {
    let text = Config::default().to_toml();
    for key in KEYS {
        assert!(
            text.contains(&format!("\n{} = ", key.name())),
            "no {}.{} in\n{text}",
            key.table(),
            key.name()
        );
    }
    assert!(text.contains("\nmax_steps = 0 "), "{text}");
    assert!(text.contains("\ndir = \"\" "), "{text}");
}

#[test]
fn source_display_names_the_file() {
    let path = PathBuf::from("/x/config.toml");
    assert!(
        ConfigSource::Explicit(path.clone())
            .to_string()
            .contains("/x/config.toml")
    );
    assert!(
        ConfigSource::UserFile(path)
            .to_string()
            .contains("/x/config.toml")
    );
    assert!(ConfigSource::Defaults.to_string().contains("defaults"));
}

/// The README's settings table: the lines from its header row to the first line after it that
/// is not a table row.
fn readme_settings_table() -> String {
    let readme =
        fs::read_to_string(Path::new(env!("CARGO_MANIFEST_DIR")).join("README.md")).unwrap();
    let lines: Vec<&str> = readme.lines().collect();
    let start = lines
        .iter()
        .position(|l| l.starts_with("| key | default |"))
        .expect("the README has a settings table");
    let rows: Vec<&str> = lines[start..]
        .iter()
        .take_while(|l| l.starts_with('|'))
        .copied()
        .collect();
    rows.join("\n") + "\n"
}

#[test]
fn the_example_file_is_what_the_key_rows_make() {
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("config.example.toml");
    let text = fs::read_to_string(path).unwrap();
    assert_eq!(
        text,
        example_file(),
        "config.example.toml disagrees with the key rows in src/config/keys.rs; \
         write config::example_file() into it"
    );
}

#[test]
fn the_readme_settings_table_is_what_the_key_rows_make() {
    assert_eq!(
        readme_settings_table(),
        settings_table(),
        "the README's settings table disagrees with the key rows in src/config/keys.rs; \
         paste config::settings_table() over it"
    );
}

#[test]
fn every_key_with_a_flag_has_it_on_the_command_line() {
    use clap::CommandFactory;
    let command = crate::cli::Cli::command();
    let longs: Vec<String> = command
        .get_arguments()
        .filter_map(|a| a.get_long().map(|l| format!("--{l}")))
        .collect();
    for key in KEYS {
        if let Some(flag) = key.cli_flag() {
            assert!(
                longs.iter().any(|l| l == flag),
                "{}.{} names {flag}, which the command line lacks",
                key.table(),
                key.name()
            );
        }
    }
}
