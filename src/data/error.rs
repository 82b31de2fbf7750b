//! Everything that can go wrong reading digit data, each message naming the file, the bad numbers and what to do.

use std::io;
use std::path::PathBuf;

use super::idx::IdxKind;

/// A digit-data failure. Messages carry the underlying I/O or gzip error text themselves (it is not
/// chained as a `source`), so printing the message alone, or the whole chain, says it once.
#[derive(Debug, thiserror::Error)]
pub enum DataError {
    #[error("{}: cannot read the file: {cause}", .path.display())]
    Read { path: PathBuf, cause: io::Error },

    #[error("data folder {}: cannot read it: {cause}", .path.display())]
    ReadDir { path: PathBuf, cause: io::Error },

    #[error(
        "{origin}: more than {limit} bytes of IDX data (after decompression), more than gan-tui \
         holds in memory; is this really a digit set?"
    )]
    TooLarge { origin: String, limit: u64 },

    #[error(
        "{origin}: corrupt gzip stream ({cause}); the file is damaged, so copy or download it again"
    )]
    Gzip { origin: String, cause: io::Error },

    #[error(
        "{origin}: too short for an IDX {kind} file: it has {len} bytes{} but the header alone needs {need}",
        after_gunzip(.gzipped)
    )]
    TooShort {
        origin: String,
        kind: IdxKind,
        len: usize,
        need: usize,
        gzipped: bool,
    },

    #[error(
        "{origin}: this is an IDX {found} file (magic {}), but an IDX {expected} file (magic {}) \
         belongs here; are the images and labels files swapped?",
        .found.magic(), .expected.magic()
    )]
    WrongKind {
        origin: String,
        expected: IdxKind,
        found: IdxKind,
    },

    #[error(
        "{origin}: not an IDX {expected} file: it starts with magic {magic} (0x{magic:08x}) where \
         {} (0x{:08x}) was expected",
        .expected.magic(), .expected.magic()
    )]
    BadMagic {
        origin: String,
        expected: IdxKind,
        magic: u32,
    },

    #[error(
        "{origin}: header says 0 {kind}; there is nothing to train on, so use a file that holds some"
    )]
    ZeroCount { origin: String, kind: IdxKind },

    #[error(
        "{origin}: header says images of {rows}x{cols}; an image needs at least one row and one \
         column, so the header is corrupt"
    )]
    ZeroDims {
        origin: String,
        rows: u32,
        cols: u32,
    },

    #[error(
        "{origin}: header says {what}, more bytes than this computer can address; the header is corrupt"
    )]
    HeaderOverflow { origin: String, what: String },

    #[error(
        "{origin}: truncated: header says {what} ({expected} bytes) but the file has {actual} bytes{}; \
         the file is incomplete, so copy or download it again",
        after_gunzip(.gzipped)
    )]
    Truncated {
        origin: String,
        what: String,
        expected: u64,
        actual: u64,
        gzipped: bool,
    },

    #[error(
        "{origin}: {} bytes too many: header says {what} ({expected} bytes) but the file has \
         {actual} bytes{}; the file is damaged or has something else appended",
        .actual.saturating_sub(*.expected), after_gunzip(.gzipped)
    )]
    Trailing {
        origin: String,
        what: String,
        expected: u64,
        actual: u64,
        gzipped: bool,
    },

    #[error(
        "{origin}: images are {rows}x{cols}, but the models take 28x28 = 784 inputs; use a set of \
         28x28 images such as MNIST or Fashion-MNIST"
    )]
    NotDigitSize {
        origin: String,
        rows: usize,
        cols: usize,
    },

    #[error(
        "{images} holds {image_count} images but {labels} holds {label_count} labels; the two \
         files must come from the same set"
    )]
    CountMismatch {
        images: String,
        image_count: usize,
        labels: String,
        label_count: usize,
    },

    #[error("{origin}: label {index} is {value}, but digit labels must be 0-9")]
    BadLabel {
        origin: String,
        index: usize,
        value: u8,
    },

    #[error(
        "data folder {} does not exist; it should hold {images} and {labels} (each raw or with .gz \
         appended), or leave the data folder unset to use the built-in MNIST",
        .path.display()
    )]
    DirNotFound {
        path: PathBuf,
        images: &'static str,
        labels: &'static str,
    },

    #[error(
        "data folder {} is not a folder; give the folder that holds {images} and {labels} (each \
         raw or with .gz appended), not a file",
        .path.display()
    )]
    NotADir {
        path: PathBuf,
        images: &'static str,
        labels: &'static str,
    },

    #[error(
        "data folder {} is empty; it should hold {images} and {labels}, each raw or with .gz appended",
        .path.display()
    )]
    EmptyDir {
        path: PathBuf,
        images: &'static str,
        labels: &'static str,
    },

    #[error("data folder {} has neither {name} nor {name}.gz; it holds: {}", .dir.display(), .present.join(", "))]
    MissingFile {
        dir: PathBuf,
        name: &'static str,
        /// Some of the names the folder does hold, so a misnamed file is easy to spot.
        present: Vec<String>,
    },

    #[error("digit {index} is out of range: {source_name} holds {len} digits")]
    IndexOutOfRange {
        index: u32,
        len: usize,
        source_name: String,
    },

    #[error("cannot write {what} as an IDX file: {reason}")]
    Encode { what: String, reason: &'static str },

    #[error("cannot gzip IDX data: {cause}")]
    Compress { cause: io::Error },
}

fn after_gunzip(gzipped: &bool) -> &'static str {
    if *gzipped { " once decompressed" } else { "" }
}
