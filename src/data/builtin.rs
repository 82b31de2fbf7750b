//! The built-in MNIST: the four gzip IDX files compiled into the binary, so training needs no network and no files.
//!
//! MNIST is by Yann LeCun, Corinna Cortes and Christopher J.C. Burges, under CC BY-SA 3.0
//! (see data/mnist/README.md).

use super::Split;

/// `DigitSet::source` of the built-in set.
pub const SOURCE: &str = "built-in MNIST";

const TRAIN_IMAGES: &[u8] = include_bytes!("../../data/mnist/train-images-idx3-ubyte.gz");
const TRAIN_LABELS: &[u8] = include_bytes!("../../data/mnist/train-labels-idx1-ubyte.gz");
const TEST_IMAGES: &[u8] = include_bytes!("../../data/mnist/t10k-images-idx3-ubyte.gz");
const TEST_LABELS: &[u8] = include_bytes!("../../data/mnist/t10k-labels-idx1-ubyte.gz");

/// The gzip bytes of a split's images and labels files.
pub(super) fn files(split: Split) -> (&'static [u8], &'static [u8]) {
    match split {
        Split::Train => (TRAIN_IMAGES, TRAIN_LABELS),
        Split::Test => (TEST_IMAGES, TEST_LABELS),
    }
}

/// How errors name a built-in file, e.g. "built-in MNIST train-images-idx3-ubyte.gz".
pub(super) fn origin(file_name: &str) -> String {
    format!("{SOURCE} {file_name}.gz")
}
