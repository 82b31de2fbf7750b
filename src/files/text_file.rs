//! Reading a small text file (a config, a theme) with a size bound, so a huge file or an endless
//! device (`/dev/zero`) is refused instead of read until memory runs out.

use std::io::{self, Read};
use std::path::Path;

/// Why a text file could not be read.
#[derive(Debug)]
pub enum TextFileError {
    Read(io::Error),
    /// Longer than the bound.
    TooLarge,
    /// Not UTF-8 from this 1-based line on.
    NotUtf8 {
        line: usize,
    },
}

/// The text of the file at `path`, at most `max_bytes` long.
pub fn read_bounded(path: &Path, max_bytes: u64) -> Result<String, TextFileError> {
    let mut bytes = Vec::new();
    std::fs::File::open(path)
        .and_then(|file| file.take(max_bytes + 1).read_to_end(&mut bytes))
        .map_err(TextFileError::Read)?;
    if bytes.len() as u64 > max_bytes {
        return Err(TextFileError::TooLarge);
    }
    String::from_utf8(bytes).map_err(|e| {
        let valid = e.utf8_error().valid_up_to();
        TextFileError::NotUtf8 {
            line: line_at(e.as_bytes(), valid),
        }
    })
}

/// 1-based line number of byte `offset`.
pub fn line_at(bytes: &[u8], offset: usize) -> usize {
    bytes.iter().take(offset).filter(|&&b| b == b'\n').count() + 1
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_text_and_refuses_big_or_broken_files() {
        let dir = tempfile::tempdir().unwrap();
        let ok = dir.path().join("ok.toml");
        std::fs::write(&ok, "a = 1\n").unwrap();
        assert_eq!(read_bounded(&ok, 100).unwrap(), "a = 1\n");
        assert!(matches!(read_bounded(&ok, 3), Err(TextFileError::TooLarge)));
        let bad = dir.path().join("bad.toml");
        std::fs::write(&bad, b"a = 1\nb = \xff\n").unwrap();
        assert!(matches!(
            read_bounded(&bad, 100),
            Err(TextFileError::NotUtf8 { line: 2 })
        ));
        assert!(matches!(
            read_bounded(&dir.path().join("none"), 100),
            Err(TextFileError::Read(_))
        ));
    }
}
