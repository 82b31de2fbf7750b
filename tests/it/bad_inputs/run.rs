//! Run folders that hold a run (tests/bad_inputs/run) or cannot be made: refused untouched.

use super::*;

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
