//! Bad flags and flag values: usage errors and clear refusals.

use super::*;

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
        (
            &["bench", "--engine", "dfdx"],
            "unexpected argument '--engine'",
        ),
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
