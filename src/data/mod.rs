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
mod tests;
