//! Digit data: IDX files (raw or gzip), the built-in MNIST, shuffling and batches.
//!
//! A set is kept as the raw bytes (60,000 x 784 for MNIST's training split, 47 MB) and turned
//! into floats one batch at a time, which keeps a run's memory low.

mod batch;
mod builtin;
mod error;
pub mod idx;

use std::borrow::Cow;
use std::fs;
use std::io;
use std::path::{Path, PathBuf};

pub use batch::{
    batch_indices, batches_per_epoch, epoch_order, fill_batch, fill_labels, normalize,
};
pub use builtin::SOURCE as BUILTIN_SOURCE;
pub use error::DataError;

/// The image size the models take.
pub const DIGIT_ROWS: usize = 28;
pub const DIGIT_COLS: usize = 28;
pub const DIGIT_PIXELS: usize = DIGIT_ROWS * DIGIT_COLS;
/// Digits 0 to 9.
pub const CLASSES: usize = 10;

/// Labels are digits.
const MAX_LABEL: u8 = 9;

/// Folder listings in a missing-file error stop after this many names.
const LISTED_NAMES: usize = 8;

/// MNIST's two splits, named by their files.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Split {
    Train,
    Test,
}

impl Split {
    pub fn images_file(self) -> &'static str {
        match self {
            Split::Train => "train-images-idx3-ubyte",
            Split::Test => "t10k-images-idx3-ubyte",
        }
    }

    pub fn labels_file(self) -> &'static str {
        match self {
            Split::Train => "train-labels-idx1-ubyte",
            Split::Test => "t10k-labels-idx1-ubyte",
        }
    }
}

/// A loaded set of labelled 28x28 digits.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DigitSet {
    /// `len()` images of `rows` x `cols` grey bytes, row-major, one after another.
    pub images: Vec<u8>,
    /// One label 0-9 per image.
    pub labels: Vec<u8>,
    pub rows: usize,
    pub cols: usize,
    /// Where the set came from: "built-in MNIST" or the folder's path.
    pub source: String,
}

impl DigitSet {
    pub fn len(&self) -> usize {
        self.labels.len()
    }

    pub fn is_empty(&self) -> bool {
        self.labels.is_empty()
    }

    pub fn pixels_per_image(&self) -> usize {
        self.rows.saturating_mul(self.cols)
    }

    /// Image `i`'s pixels, or `None` past the end.
    pub fn image(&self, i: usize) -> Option<&[u8]> {
        if i >= self.len() {
            return None;
        }
        let size = self.pixels_per_image();
        let start = i.checked_mul(size)?;
        self.images.get(start..start.checked_add(size)?)
    }

    /// Image `i`'s label, or `None` past the end.
    pub fn label(&self, i: usize) -> Option<u8> {
        self.labels.get(i).copied()
    }

    /// The first `n` digits (all of them if there are fewer), for quick runs and tests. The memory
    /// of the rest is given back.
    pub fn take(mut self, n: usize) -> DigitSet {
        let n = n.min(self.len());
        self.labels.truncate(n);
        self.labels.shrink_to_fit();
        self.images
            .truncate(n.saturating_mul(self.pixels_per_image()));
        self.images.shrink_to_fit();
        self
    }
}

/// Loads a split: from `dir` if given, which holds MNIST's file names each raw or with `.gz`
/// appended (so Fashion-MNIST drops in), else the built-in MNIST. Images must be 28x28, there must
/// be one label per image, and labels must be 0-9.
pub fn load(dir: Option<&Path>, split: Split) -> Result<DigitSet, DataError> {
    match dir {
        None => load_builtin(split),
        Some(dir) => load_dir(dir, split),
    }
}

fn load_builtin(split: Split) -> Result<DigitSet, DataError> {
    let (images_gz, labels_gz) = builtin::files(split);
    let images_origin = builtin::origin(split.images_file());
    let labels_origin = builtin::origin(split.labels_file());
    let images = idx::decode(Cow::Borrowed(images_gz), &images_origin)?;
    let images = idx::parse_images(images, &images_origin)?;
    let labels = idx::decode(Cow::Borrowed(labels_gz), &labels_origin)?;
    let labels = idx::parse_labels(labels, &labels_origin)?;
    assemble(
        images,
        &images_origin,
        labels,
        &labels_origin,
        BUILTIN_SOURCE.to_string(),
    )
}

fn load_dir(dir: &Path, split: Split) -> Result<DigitSet, DataError> {
    let (images_name, labels_name) = (split.images_file(), split.labels_file());
    match fs::metadata(dir) {
        Ok(meta) if meta.is_dir() => {}
        Ok(_) => {
            return Err(DataError::NotADir {
                path: dir.to_path_buf(),
                images: images_name,
                labels: labels_name,
            });
        }
        Err(cause) if cause.kind() == io::ErrorKind::NotFound => {
            return Err(DataError::DirNotFound {
                path: dir.to_path_buf(),
                images: images_name,
                labels: labels_name,
            });
        }
        Err(cause) => {
            return Err(DataError::ReadDir {
                path: dir.to_path_buf(),
                cause,
            });
        }
    }
    let images_path = find_file(dir, split, images_name)?;
    let labels_path = find_file(dir, split, labels_name)?;
    let images = idx::read_images(&images_path)?;
    let labels = idx::read_labels(&labels_path)?;
    assemble(
        images,
        &images_path.display().to_string(),
        labels,
        &labels_path.display().to_string(),
        dir.display().to_string(),
    )
}

/// `dir/name`, or else `dir/name.gz`. The raw file wins when both exist (as after unpacking a
/// download in place) because it needs no decompressing.
fn find_file(dir: &Path, split: Split, name: &'static str) -> Result<PathBuf, DataError> {
    let candidates = [dir.join(name), dir.join(format!("{name}.gz"))];
    if let Some(file) = candidates.iter().find(|c| c.is_file()) {
        return Ok(file.clone());
    }
    // Something of that name that is not a readable file (a dangling or looping link, a folder,
    // a device): reading it says what is wrong with it, where "missing" would contradict the
    // listing of the folder that names it.
    if let Some(other) = candidates.iter().find(|c| fs::symlink_metadata(c).is_ok()) {
        return Ok(other.clone());
    }
    let read_error = |cause| DataError::ReadDir {
        path: dir.to_path_buf(),
        cause,
    };
    let mut present = Vec::new();
    for entry in fs::read_dir(dir).map_err(read_error)? {
        present.push(
            entry
                .map_err(read_error)?
                .file_name()
                .to_string_lossy()
                .into_owned(),
        );
    }
    if present.is_empty() {
        return Err(DataError::EmptyDir {
            path: dir.to_path_buf(),
            images: split.images_file(),
            labels: split.labels_file(),
        });
    }
    present.sort();
    if present.len() > LISTED_NAMES {
        let more = present.len() - LISTED_NAMES;
        present.truncate(LISTED_NAMES);
        present.push(format!("and {more} more"));
    }
    Err(DataError::MissingFile {
        dir: dir.to_path_buf(),
        name,
        present,
    })
}

/// Checks that images and labels make a digit set together.
fn assemble(
    images: idx::IdxImages,
    images_origin: &str,
    labels: Vec<u8>,
    labels_origin: &str,
    source: String,
) -> Result<DigitSet, DataError> {
    if (images.rows, images.cols) != (DIGIT_ROWS, DIGIT_COLS) {
        return Err(DataError::NotDigitSize {
            origin: images_origin.to_string(),
            rows: images.rows,
            cols: images.cols,
        });
    }
    if images.count != labels.len() {
        return Err(DataError::CountMismatch {
            images: images_origin.to_string(),
            image_count: images.count,
            labels: labels_origin.to_string(),
            label_count: labels.len(),
        });
    }
    if let Some((index, &value)) = labels.iter().enumerate().find(|&(_, &l)| l > MAX_LABEL) {
        return Err(DataError::BadLabel {
            origin: labels_origin.to_string(),
            index,
            value,
        });
    }
    Ok(DigitSet {
        images: images.pixels,
        labels,
        rows: images.rows,
        cols: images.cols,
        source,
    })
}

#[cfg(test)]
mod tests {
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
        assert!(msg.ends_with("it holds: file00, file01, file02, file03, file04, file05, file06, file07, and 3 more"), "{msg}");
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
}
