//! Bad config files (tests/bad_inputs/config): refused with the file, the line, the key and the problem.

use super::*;

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
