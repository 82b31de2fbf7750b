//! Tests of loading digit sets: the built-in MNIST, IDX folders and their errors.

use super::*;

use sha2::{Digest, Sha256};

const FIRST_TRAIN_LABELS: [u8; 10] = [5, 0, 4, 1, 9, 2, 1, 3, 1, 4];
const FIRST_TEST_LABELS: [u8; 10] = [7, 2, 1, 0, 4, 1, 4, 9, 5, 9];

fn message<T: std::fmt::Debug>(result: Result<T, DataError>) -> String {
    match result {
        Ok(value) => panic!("expected an error, got {value:?}"),
        Err(err) => err.to_string(),
    }
}

/// `count` distinct-looking 28x28 digits labelled 0, 1, ..., 9, 0, ...
fn small_set(count: usize) -> (Vec<u8>, Vec<u8>) {
    let images = (0..count * DIGIT_PIXELS)
        .map(|i| (i * 31 % 256) as u8)
        .collect();
    let labels = (0..count).map(|i| (i % 10) as u8).collect();
    (images, labels)
}

/// Writes a split's two files into `dir`, gzipped or raw.
fn write_split(dir: &Path, split: Split, images: &[u8], labels: &[u8], gz: bool) {
    let mut image_file = idx::encode_images(DIGIT_ROWS, DIGIT_COLS, images).unwrap();
    let mut label_file = idx::encode_labels(labels).unwrap();
    let suffix = if gz { ".gz" } else { "" };
    if gz {
        image_file = idx::gzip(&image_file).unwrap();
        label_file = idx::gzip(&label_file).unwrap();
    }
    fs::write(
        dir.join(format!("{}{suffix}", split.images_file())),
        image_file,
    )
    .unwrap();
    fs::write(
        dir.join(format!("{}{suffix}", split.labels_file())),
        label_file,
    )
    .unwrap();
}

fn sha256_hex(bytes: &[u8]) -> String {
    Sha256::digest(bytes)
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
}

/// The raw-file sums shipped with the data, by file name.
fn shipped_sum(name: &str) -> String {
    let sums = include_str!("../../data/mnist/SHA256SUMS.raw.txt");
    sums.lines()
        .find_map(|line| {
            let (sum, file) = line.split_once(char::is_whitespace)?;
            (file.trim() == name).then(|| sum.to_string())
        })
        .unwrap()
}

#[test]
fn builtin_train_set_is_mnist() {
    let set = load(None, Split::Train).unwrap();
    assert_eq!(set.len(), 60_000);
    assert_eq!((set.rows, set.cols), (28, 28));
    assert_eq!(set.images.len(), 60_000 * 784);
    assert_eq!(set.labels[..10], FIRST_TRAIN_LABELS);
    assert_eq!(set.source, "built-in MNIST");
    assert_eq!(set.image(59_999).map(<[u8]>::len), Some(784));
    assert_eq!(set.image(60_000), None);
    // Writing the set back out gives the original files bit for bit.
    let images = idx::encode_images(28, 28, &set.images).unwrap();
    assert_eq!(sha256_hex(&images), shipped_sum("train-images-idx3-ubyte"));
    let labels = idx::encode_labels(&set.labels).unwrap();
    assert_eq!(sha256_hex(&labels), shipped_sum("train-labels-idx1-ubyte"));
}

#[test]
fn builtin_test_set_is_mnist() {
    let set = load(None, Split::Test).unwrap();
    assert_eq!(set.len(), 10_000);
    assert_eq!(set.labels[..10], FIRST_TEST_LABELS);
    let images = idx::encode_images(28, 28, &set.images).unwrap();
    assert_eq!(sha256_hex(&images), shipped_sum("t10k-images-idx3-ubyte"));
    let labels = idx::encode_labels(&set.labels).unwrap();
    assert_eq!(sha256_hex(&labels), shipped_sum("t10k-labels-idx1-ubyte"));
}

#[test]
fn take_keeps_the_first_digits() {
    let (images, labels) = small_set(5);
    let set = DigitSet {
        images: images.clone(),
        labels,
        rows: 28,
        cols: 28,
        source: "s".to_string(),
    };
    let first = set.clone().take(2);
    assert_eq!(first.len(), 2);
    assert_eq!(first.labels, vec![0, 1]);
    assert_eq!(first.images, images[..2 * 784]);
    assert_eq!(set.clone().take(99), set);
    assert!(set.take(0).is_empty());
}

#[test]
fn folders_of_raw_and_gzip_files_load_alike() {
    let (images, labels) = small_set(12);
    let raw = tempfile::tempdir().unwrap();
    let gz = tempfile::tempdir().unwrap();
    write_split(raw.path(), Split::Test, &images, &labels, false);
    write_split(gz.path(), Split::Test, &images, &labels, true);
    let from_raw = load(Some(raw.path()), Split::Test).unwrap();
    let from_gz = load(Some(gz.path()), Split::Test).unwrap();
    assert_eq!(from_raw.images, images);
    assert_eq!(from_raw.labels, labels);
    assert_eq!(from_raw.source, raw.path().display().to_string());
    assert_eq!(from_gz.images, from_raw.images);
    assert_eq!(from_gz.labels, from_raw.labels);
}

#[test]
fn gzip_is_detected_by_content_not_name() {
    let (images, labels) = small_set(3);
    let dir = tempfile::tempdir().unwrap();
    // Raw names, gzip content; and the other way round.
    let image_gz = idx::gzip(&idx::encode_images(28, 28, &images).unwrap()).unwrap();
    fs::write(dir.path().join(Split::Train.images_file()), image_gz).unwrap();
    let label_raw = idx::encode_labels(&labels).unwrap();
    fs::write(dir.path().join("train-labels-idx1-ubyte.gz"), label_raw).unwrap();
    let set = load(Some(dir.path()), Split::Train).unwrap();
    assert_eq!((set.images, set.labels), (images, labels));
}

#[test]
fn raw_file_wins_over_gz() {
    let dir = tempfile::tempdir().unwrap();
    let (images, labels) = small_set(2);
    write_split(dir.path(), Split::Train, &images, &labels, false);
    fs::write(
        dir.path().join("train-images-idx3-ubyte.gz"),
        b"not even gzip",
    )
    .unwrap();
    assert_eq!(load(Some(dir.path()), Split::Train).unwrap().len(), 2);
}

#[test]
fn images_must_be_28x28() {
    let dir = tempfile::tempdir().unwrap();
    let images = idx::encode_images(32, 32, &[0; 2 * 32 * 32]).unwrap();
    fs::write(dir.path().join("train-images-idx3-ubyte"), images).unwrap();
    fs::write(
        dir.path().join("train-labels-idx1-ubyte"),
        idx::encode_labels(&[1, 2]).unwrap(),
    )
    .unwrap();
    let msg = message(load(Some(dir.path()), Split::Train));
    let path = dir.path().join("train-images-idx3-ubyte");
    assert!(
        msg.starts_with(&format!(
            "{}: images are 32x32, but the models take 28x28 = 784 inputs",
            path.display()
        )),
        "{msg}"
    );
}

#[test]
fn counts_must_match() {
    let dir = tempfile::tempdir().unwrap();
    let (images, _) = small_set(4);
    let (_, labels) = small_set(3);
    write_split(dir.path(), Split::Train, &images, &labels, true);
    let msg = message(load(Some(dir.path()), Split::Train));
    let images_path = dir.path().join("train-images-idx3-ubyte.gz");
    let labels_path = dir.path().join("train-labels-idx1-ubyte.gz");
    assert_eq!(
        msg,
        format!(
            "{} holds 4 images but {} holds 3 labels; the two files must come from the same set",
            images_path.display(),
            labels_path.display()
        )
    );
}

#[test]
fn labels_must_be_digits() {
    let dir = tempfile::tempdir().unwrap();
    let (images, mut labels) = small_set(5);
    labels[3] = 10;
    labels[4] = 200;
    write_split(dir.path(), Split::Test, &images, &labels, false);
    let msg = message(load(Some(dir.path()), Split::Test));
    let path = dir.path().join("t10k-labels-idx1-ubyte");
    assert_eq!(
        msg,
        format!(
            "{}: label 3 is 10, but digit labels must be 0-9",
            path.display()
        )
    );
}

#[test]
fn swapped_files_in_a_folder_are_reported() {
    let dir = tempfile::tempdir().unwrap();
    let (images, labels) = small_set(2);
    fs::write(
        dir.path().join("train-images-idx3-ubyte"),
        idx::encode_labels(&labels).unwrap(),
    )
    .unwrap();
    fs::write(
        dir.path().join("train-labels-idx1-ubyte"),
        idx::encode_images(28, 28, &images).unwrap(),
    )
    .unwrap();
    let msg = message(load(Some(dir.path()), Split::Train));
    assert!(
        msg.contains("train-images-idx3-ubyte: this is an IDX labels file"),
        "{msg}"
    );
}

#[test]
fn damaged_files_in_a_folder_name_their_path() {
    let dir = tempfile::tempdir().unwrap();
    let (images, labels) = small_set(2);
    write_split(dir.path(), Split::Train, &images, &labels, true);
    let path = dir.path().join("train-labels-idx1-ubyte.gz");
    let mut bytes = fs::read(&path).unwrap();
    let last = bytes.len() - 1;
    bytes[last] ^= 0x55;
    fs::write(&path, bytes).unwrap();
    let msg = message(load(Some(dir.path()), Split::Train));
    assert!(
        msg.starts_with(&format!("{}: corrupt gzip stream", path.display())),
        "{msg}"
    );
}

#[test]
fn missing_file_lists_what_is_there() {
    let dir = tempfile::tempdir().unwrap();
    let (images, labels) = small_set(2);
    write_split(dir.path(), Split::Train, &images, &labels, false);
    fs::remove_file(dir.path().join("train-labels-idx1-ubyte")).unwrap();
    fs::write(dir.path().join("train-labels.idx1-ubyte"), b"").unwrap();
    let msg = message(load(Some(dir.path()), Split::Train));
    assert_eq!(
        msg,
        format!(
            "data folder {} has neither train-labels-idx1-ubyte nor train-labels-idx1-ubyte.gz; \
             it holds: train-images-idx3-ubyte, train-labels.idx1-ubyte",
            dir.path().display()
        )
    );
    // The test split is looked up by its own names.
    let msg = message(load(Some(dir.path()), Split::Test));
    assert!(
        msg.contains("has neither t10k-images-idx3-ubyte nor t10k-images-idx3-ubyte.gz"),
        "{msg}"
    );
}

#[test]
fn a_present_but_unreadable_file_is_reported_as_such_not_as_missing() {
    let (images, labels) = small_set(2);
    let labels_name = Split::Train.labels_file();
    /// Puts something that is not a readable file at a path.
    type Make = fn(&Path);
    let cases: [(&str, Make); 3] = [
        ("No such file", |p| {
            std::os::unix::fs::symlink("/nonexistent/gan-tui-labels", p).unwrap()
        }),
        ("symbolic links", |p| {
            std::os::unix::fs::symlink(p, p).unwrap()
        }),
        ("Is a directory", |p| fs::create_dir(p).unwrap()),
    ];
    for (cause, make) in cases {
        let dir = tempfile::tempdir().unwrap();
        write_split(dir.path(), Split::Train, &images, &labels, false);
        let path = dir.path().join(labels_name);
        fs::remove_file(&path).unwrap();
        make(&path);
        let msg = message(load(Some(dir.path()), Split::Train));
        assert!(
            msg.starts_with(&format!("{}: cannot read the file: ", path.display())),
            "{msg}"
        );
        assert!(msg.contains(cause), "want {cause:?} in: {msg}");
    }
}

#[test]
fn long_folder_listings_are_cut() {
    let dir = tempfile::tempdir().unwrap();
    for i in 0..11 {
        fs::write(dir.path().join(format!("file{i:02}")), b"").unwrap();
    }
    let msg = message(load(Some(dir.path()), Split::Train));
    assert!(
        msg.ends_with(
            "it holds: file00, file01, file02, file03, file04, file05, file06, file07, and 3 more"
        ),
        "{msg}"
    );
}

#[test]
fn empty_folder_is_reported() {
    let dir = tempfile::tempdir().unwrap();
    let msg = message(load(Some(dir.path()), Split::Train));
    assert_eq!(
        msg,
        format!(
            "data folder {} is empty; it should hold train-images-idx3-ubyte and \
             train-labels-idx1-ubyte, each raw or with .gz appended",
            dir.path().display()
        )
    );
}

#[test]
fn a_file_is_not_a_folder() {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("train-images-idx3-ubyte.gz");
    fs::write(&file, b"x").unwrap();
    let msg = message(load(Some(&file), Split::Train));
    assert!(
        msg.starts_with(&format!("data folder {} is not a folder", file.display())),
        "{msg}"
    );
}

#[test]
fn an_unreadable_folder_is_called_a_folder() {
    let dir = tempfile::tempdir().unwrap();
    let looped = dir.path().join("digits");
    std::os::unix::fs::symlink(&looped, &looped).unwrap();
    let msg = message(load(Some(&looped), Split::Train));
    assert!(
        msg.starts_with(&format!(
            "data folder {}: cannot read it: ",
            looped.display()
        )),
        "{msg}"
    );
    assert!(msg.contains("symbolic links"), "{msg}");
}

#[test]
fn a_missing_folder_is_reported() {
    let dir = tempfile::tempdir().unwrap();
    let missing = dir.path().join("fashion");
    let msg = message(load(Some(&missing), Split::Train));
    assert!(
        msg.starts_with(&format!("data folder {} does not exist", missing.display())),
        "{msg}"
    );
}
