//! Bad data folders (tests/bad_inputs/data): refused naming the file and the problem.

use super::*;

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
