//! The IDX file format, raw or gzip: reading image and label files with exact length checks, and writing images.
//!
//! IDX is big-endian: a u32 magic (`0x0000_08_0N`: unsigned bytes, N dimensions), N u32 sizes,
//! then the data. Only the two shapes digit sets use are read: images (magic 2051, N = 3) and
//! labels (magic 2049, N = 1).

use std::borrow::Cow;
use std::fmt;
use std::fs;
use std::io::{Read, Write};
use std::path::Path;

use flate2::Compression;
use flate2::read::MultiGzDecoder;
use flate2::write::GzEncoder;

use super::DataError;

/// The most IDX data (after decompression) read from one file: 1 GiB holds 1.3 million 28x28
/// images, twice EMNIST's largest split, while a corrupt or hostile file cannot exhaust memory.
pub const MAX_BYTES: u64 = 1 << 30;

const GZIP_MAGIC: [u8; 2] = [0x1f, 0x8b];

/// Which of the two IDX shapes a file holds.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum IdxKind {
    Images,
    Labels,
}

impl IdxKind {
    pub fn magic(self) -> u32 {
        match self {
            IdxKind::Images => 2051,
            IdxKind::Labels => 2049,
        }
    }

    /// Bytes before the data: the magic and one u32 per dimension.
    pub fn header_len(self) -> usize {
        match self {
            IdxKind::Images => 16,
            IdxKind::Labels => 8,
        }
    }

    fn other(self) -> IdxKind {
        match self {
            IdxKind::Images => IdxKind::Labels,
            IdxKind::Labels => IdxKind::Images,
        }
    }
}

impl fmt::Display for IdxKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            IdxKind::Images => "images",
            IdxKind::Labels => "labels",
        })
    }
}

/// The contents of an IDX file once gunzipped. Whether it was compressed is kept so that length
/// errors can say which length they mean.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct IdxBytes {
    pub bytes: Vec<u8>,
    pub gzipped: bool,
}

/// A parsed IDX images file: `count` images of `rows` x `cols` bytes, row-major, one after another.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct IdxImages {
    pub count: usize,
    pub rows: usize,
    pub cols: usize,
    pub pixels: Vec<u8>,
}

pub fn is_gzip(bytes: &[u8]) -> bool {
    bytes.starts_with(&GZIP_MAGIC)
}

/// Gunzips `bytes` if they start with the gzip magic (whatever the file is called), else keeps them.
/// `origin` names the file in errors.
pub fn decode(bytes: Cow<'_, [u8]>, origin: &str) -> Result<IdxBytes, DataError> {
    if !is_gzip(&bytes) {
        if bytes.len() as u64 > MAX_BYTES {
            return Err(DataError::TooLarge {
                origin: origin.to_string(),
                limit: MAX_BYTES,
            });
        }
        return Ok(IdxBytes {
            bytes: bytes.into_owned(),
            gzipped: false,
        });
    }
    Ok(IdxBytes {
        bytes: gunzip(&bytes, origin)?,
        gzipped: true,
    })
}

/// Deflate cannot expand data more than about 1032 to 1 (258-byte matches in 2-bit codes).
const MAX_DEFLATE_RATIO: u64 = 1032;

/// How many bytes to allocate up front for gunzipping `compressed`.
///
/// The gzip trailer's ISIZE (the uncompressed length mod 2^32) lets the output be allocated
/// once instead of doubling its way up, which would briefly hold ~1.5x the data. But the trailer
/// is just four bytes of the file: a damaged 30-byte file can claim 4 GiB. So the claim is held
/// to what deflate could possibly produce from this many bytes, and to `MAX_BYTES`.
fn capacity_hint(compressed: &[u8]) -> usize {
    let claimed = compressed
        .last_chunk::<4>()
        .map_or(0, |isize| u64::from(u32::from_le_bytes(*isize)));
    let possible = (compressed.len() as u64).saturating_mul(MAX_DEFLATE_RATIO);
    usize::try_from(claimed.min(possible).min(MAX_BYTES + 1)).unwrap_or(0)
}

fn gunzip(compressed: &[u8], origin: &str) -> Result<Vec<u8>, DataError> {
    let mut out = Vec::new();
    // Only a hint: if that much memory is not to be had, the data may still be smaller, so
    // grow as it arrives rather than abort the process.
    let _ = out.try_reserve_exact(capacity_hint(compressed));
    // MultiGzDecoder because concatenated members are still one valid gzip file, and it rejects
    // anything after the last member that is not another member.
    MultiGzDecoder::new(compressed)
        .take(MAX_BYTES + 1)
        .read_to_end(&mut out)
        .map_err(|cause| DataError::Gzip {
            origin: origin.to_string(),
            cause,
        })?;
    if out.len() as u64 > MAX_BYTES {
        return Err(DataError::TooLarge {
            origin: origin.to_string(),
            limit: MAX_BYTES,
        });
    }
    Ok(out)
}

/// Reads a file, gunzipping it if it is gzip.
pub fn read_file(path: &Path) -> Result<IdxBytes, DataError> {
    let read_error = |cause| DataError::Read {
        path: path.to_path_buf(),
        cause,
    };
    let origin = path.display().to_string();
    // Checked before reading so that a huge wrong file is refused instead of loaded.
    let len = fs::metadata(path).map_err(read_error)?.len();
    if len > MAX_BYTES {
        return Err(DataError::TooLarge {
            origin,
            limit: MAX_BYTES,
        });
    }
    // The length can also be wrong (a device such as /dev/zero says 0, a file may grow), so the
    // read itself stops at the limit too.
    let bytes = read_at_most(path, MAX_BYTES).map_err(read_error)?;
    if bytes.len() as u64 > MAX_BYTES {
        return Err(DataError::TooLarge {
            origin,
            limit: MAX_BYTES,
        });
    }
    decode(Cow::Owned(bytes), &origin)
}

/// The file's bytes, or its first `limit + 1` bytes if it is longer.
fn read_at_most(path: &Path, limit: u64) -> std::io::Result<Vec<u8>> {
    let mut bytes = Vec::new();
    fs::File::open(path)?
        .take(limit.saturating_add(1))
        .read_to_end(&mut bytes)?;
    Ok(bytes)
}

pub fn read_images(path: &Path) -> Result<IdxImages, DataError> {
    parse_images(read_file(path)?, &path.display().to_string())
}

pub fn read_labels(path: &Path) -> Result<Vec<u8>, DataError> {
    parse_labels(read_file(path)?, &path.display().to_string())
}

/// Parses an IDX images file (magic 2051). The pixel buffer is the input buffer minus its header,
/// so parsing never holds two copies of the data.
pub fn parse_images(data: IdxBytes, origin: &str) -> Result<IdxImages, DataError> {
    let kind = IdxKind::Images;
    check_header(&data, origin, kind)?;
    let (count, rows, cols) = match (
        be_u32(&data.bytes, 4),
        be_u32(&data.bytes, 8),
        be_u32(&data.bytes, 12),
    ) {
        (Some(count), Some(rows), Some(cols)) => (count, rows, cols),
        // check_header has already made sure the header is all there.
        _ => return Err(too_short(&data, origin, kind)),
    };
    if count == 0 {
        return Err(DataError::ZeroCount {
            origin: origin.to_string(),
            kind,
        });
    }
    if rows == 0 || cols == 0 {
        return Err(DataError::ZeroDims {
            origin: origin.to_string(),
            rows,
            cols,
        });
    }
    let what = format!("{count} images of {rows}x{cols}");
    let pixels = u64::from(count)
        .checked_mul(u64::from(rows))
        .and_then(|n| n.checked_mul(u64::from(cols)));
    let body = take_body(data, origin, kind, what, pixels)?;
    // Each factor is a u32 and their product is the length of an in-memory buffer, so all three
    // fit in usize.
    Ok(IdxImages {
        count: to_usize(count),
        rows: to_usize(rows),
        cols: to_usize(cols),
        pixels: body,
    })
}

/// Parses an IDX labels file (magic 2049) into one byte per label.
pub fn parse_labels(data: IdxBytes, origin: &str) -> Result<Vec<u8>, DataError> {
    let kind = IdxKind::Labels;
    check_header(&data, origin, kind)?;
    let Some(count) = be_u32(&data.bytes, 4) else {
        return Err(too_short(&data, origin, kind));
    };
    if count == 0 {
        return Err(DataError::ZeroCount {
            origin: origin.to_string(),
            kind,
        });
    }
    let what = format!("{count} labels");
    take_body(data, origin, kind, what, Some(u64::from(count)))
}

/// Checks the magic, then that the whole header is present. The magic goes first so that a short
/// file of the wrong kind is reported as the wrong kind.
fn check_header(data: &IdxBytes, origin: &str, kind: IdxKind) -> Result<(), DataError> {
    let Some(magic) = be_u32(&data.bytes, 0) else {
        return Err(too_short(data, origin, kind));
    };
    if magic == kind.other().magic() {
        return Err(DataError::WrongKind {
            origin: origin.to_string(),
            expected: kind,
            found: kind.other(),
        });
    }
    if magic != kind.magic() {
        return Err(DataError::BadMagic {
            origin: origin.to_string(),
            expected: kind,
            magic,
        });
    }
    if data.bytes.len() < kind.header_len() {
        return Err(too_short(data, origin, kind));
    }
    Ok(())
}

/// Checks that the file is exactly header + `body_len` bytes and returns the body.
fn take_body(
    data: IdxBytes,
    origin: &str,
    kind: IdxKind,
    what: String,
    body_len: Option<u64>,
) -> Result<Vec<u8>, DataError> {
    let header = kind.header_len();
    let Some(expected) = body_len.and_then(|n| n.checked_add(header as u64)) else {
        return Err(DataError::HeaderOverflow {
            origin: origin.to_string(),
            what,
        });
    };
    let actual = data.bytes.len() as u64;
    if actual != expected {
        let (origin, gzipped) = (origin.to_string(), data.gzipped);
        return Err(if actual < expected {
            DataError::Truncated {
                origin,
                what,
                expected,
                actual,
                gzipped,
            }
        } else {
            DataError::Trailing {
                origin,
                what,
                expected,
                actual,
                gzipped,
            }
        });
    }
    let mut body = data.bytes;
    body.drain(..header);
    Ok(body)
}

fn too_short(data: &IdxBytes, origin: &str, kind: IdxKind) -> DataError {
    DataError::TooShort {
        origin: origin.to_string(),
        kind,
        len: data.bytes.len(),
        need: kind.header_len(),
        gzipped: data.gzipped,
    }
}

fn be_u32(bytes: &[u8], at: usize) -> Option<u32> {
    let word = bytes.get(at..at.checked_add(4)?)?;
    Some(u32::from_be_bytes(word.try_into().ok()?))
}

fn to_usize(n: u32) -> usize {
    // Lossless on the 32- and 64-bit targets gan-tui builds for; saturating keeps it panic-free
    // anywhere else.
    usize::try_from(n).unwrap_or(usize::MAX)
}

/// Writes images as an uncompressed IDX images file (magic 2051). `pixels` holds whole images of
/// `rows` x `cols` bytes, one after another; there must be at least one, as the reader requires.
pub fn encode_images(rows: usize, cols: usize, pixels: &[u8]) -> Result<Vec<u8>, DataError> {
    let fail = |reason| DataError::Encode {
        what: format!("{} pixels of {rows}x{cols} images", pixels.len()),
        reason,
    };
    let (Ok(rows32), Ok(cols32)) = (u32::try_from(rows), u32::try_from(cols)) else {
        return Err(fail("IDX sizes are 32-bit, and a side is larger than that"));
    };
    let per_image = rows
        .checked_mul(cols)
        .ok_or_else(|| fail("an image would be larger than memory"))?;
    if per_image == 0 {
        return Err(fail("an image needs at least one row and one column"));
    }
    if pixels.is_empty() {
        return Err(fail("there are no images"));
    }
    if !pixels.len().is_multiple_of(per_image) {
        return Err(fail("the pixels are not a whole number of images"));
    }
    let Ok(count) = u32::try_from(pixels.len() / per_image) else {
        return Err(fail(
            "IDX counts are 32-bit, and there are more images than that",
        ));
    };
    let mut out = Vec::with_capacity(IdxKind::Images.header_len() + pixels.len());
    for word in [IdxKind::Images.magic(), count, rows32, cols32] {
        out.extend_from_slice(&word.to_be_bytes());
    }
    out.extend_from_slice(pixels);
    Ok(out)
}

/// Writes labels as an uncompressed IDX labels file (magic 2049); there must be at least one.
pub fn encode_labels(labels: &[u8]) -> Result<Vec<u8>, DataError> {
    let fail = |reason| DataError::Encode {
        what: format!("{} labels", labels.len()),
        reason,
    };
    if labels.is_empty() {
        return Err(fail("there are no labels"));
    }
    let Ok(count) = u32::try_from(labels.len()) else {
        return Err(fail(
            "IDX counts are 32-bit, and there are more labels than that",
        ));
    };
    let mut out = Vec::with_capacity(IdxKind::Labels.header_len() + labels.len());
    for word in [IdxKind::Labels.magic(), count] {
        out.extend_from_slice(&word.to_be_bytes());
    }
    out.extend_from_slice(labels);
    Ok(out)
}

/// Gzips bytes (for example an encoded IDX file) at the best compression; the reader takes either.
pub fn gzip(bytes: &[u8]) -> Result<Vec<u8>, DataError> {
    let mut encoder = GzEncoder::new(Vec::new(), Compression::best());
    encoder
        .write_all(bytes)
        .and_then(|()| encoder.finish())
        .map_err(|cause| DataError::Compress { cause })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn images_file(count: u32, rows: u32, cols: u32, pixels: &[u8]) -> Vec<u8> {
        let mut out = Vec::new();
        for word in [2051u32, count, rows, cols] {
            out.extend_from_slice(&word.to_be_bytes());
        }
        out.extend_from_slice(pixels);
        out
    }

    fn labels_file(labels: &[u8]) -> Vec<u8> {
        let mut out = Vec::new();
        for word in [2049u32, labels.len() as u32] {
            out.extend_from_slice(&word.to_be_bytes());
        }
        out.extend_from_slice(labels);
        out
    }

    fn images(bytes: Vec<u8>) -> Result<IdxImages, DataError> {
        parse_images(decode(Cow::Owned(bytes), "data/x")?, "data/x")
    }

    fn labels(bytes: Vec<u8>) -> Result<Vec<u8>, DataError> {
        parse_labels(decode(Cow::Owned(bytes), "data/y")?, "data/y")
    }

    fn message<T: fmt::Debug>(result: Result<T, DataError>) -> String {
        match result {
            Ok(value) => panic!("expected an error, got {value:?}"),
            Err(err) => err.to_string(),
        }
    }

    #[test]
    fn parses_images_raw_and_gzip_alike() {
        let pixels: Vec<u8> = (0..24).collect();
        let raw = images_file(2, 3, 4, &pixels);
        let from_raw = images(raw.clone()).unwrap();
        assert_eq!(
            from_raw,
            IdxImages {
                count: 2,
                rows: 3,
                cols: 4,
                pixels: pixels.clone()
            }
        );
        let zipped = gzip(&raw).unwrap();
        assert!(is_gzip(&zipped));
        assert!(decode(Cow::Borrowed(&zipped), "z").unwrap().gzipped);
        assert_eq!(images(zipped).unwrap(), from_raw);
    }

    #[test]
    fn parses_labels() {
        assert_eq!(labels(labels_file(&[5, 0, 4])).unwrap(), vec![5, 0, 4]);
        assert_eq!(labels(gzip(&labels_file(&[9])).unwrap()).unwrap(), vec![9]);
    }

    #[test]
    fn truncated_images_say_what_the_header_promised() {
        let mut file = images_file(60000, 28, 28, &[]);
        file.resize(1000, 0);
        assert_eq!(
            message(images(file.clone())),
            "data/x: truncated: header says 60000 images of 28x28 (47040016 bytes) but the file \
             has 1000 bytes; the file is incomplete, so copy or download it again"
        );
        let msg = message(images(gzip(&file).unwrap()));
        assert!(
            msg.contains("but the file has 1000 bytes once decompressed"),
            "{msg}"
        );
    }

    #[test]
    fn trailing_bytes_are_an_error() {
        let mut file = images_file(1, 2, 2, &[1, 2, 3, 4]);
        file.extend_from_slice(&[0, 0, 0]);
        let msg = message(images(file));
        assert!(
            msg.starts_with("data/x: 3 bytes too many: header says 1 images of 2x2 (20 bytes)"),
            "{msg}"
        );
        let mut file = labels_file(&[1, 2]);
        file.push(7);
        let msg = message(labels(file));
        assert!(
            msg.contains("header says 2 labels (10 bytes) but the file has 11 bytes"),
            "{msg}"
        );
    }

    #[test]
    fn truncated_labels_are_an_error() {
        let mut file = labels_file(&[1, 2, 3]);
        file.pop();
        let msg = message(labels(file));
        assert!(
            msg.contains(
                "data/y: truncated: header says 3 labels (11 bytes) but the file has 10 bytes"
            ),
            "{msg}"
        );
    }

    #[test]
    fn swapped_files_are_named_as_such() {
        let msg = message(labels(images_file(1, 1, 1, &[0])));
        assert!(
            msg.starts_with("data/y: this is an IDX images file (magic 2051), but an IDX labels file (magic 2049) belongs here"),
            "{msg}"
        );
        let msg = message(images(labels_file(&[0])));
        assert!(
            msg.contains(
                "this is an IDX labels file (magic 2049), but an IDX images file (magic 2051)"
            ),
            "{msg}"
        );
    }

    #[test]
    fn other_magic_is_quoted() {
        let msg = message(images(b"PNG and more bytes".to_vec()));
        assert!(msg.starts_with("data/x: not an IDX images file: it starts with magic 1347307296 (0x504e4720) where 2051 (0x00000803)"), "{msg}");
    }

    #[test]
    fn short_headers_are_an_error() {
        let msg = message(images(vec![0, 0]));
        assert!(
            msg.contains(
                "too short for an IDX images file: it has 2 bytes but the header alone needs 16"
            ),
            "{msg}"
        );
        let msg = message(images(images_file(1, 1, 1, &[])[..10].to_vec()));
        assert!(
            msg.contains("it has 10 bytes but the header alone needs 16"),
            "{msg}"
        );
        let msg = message(labels(vec![0, 0, 8, 1, 0]));
        assert!(
            msg.contains(
                "too short for an IDX labels file: it has 5 bytes but the header alone needs 8"
            ),
            "{msg}"
        );
    }

    #[test]
    fn zero_counts_and_sizes_are_an_error() {
        let msg = message(images(images_file(0, 28, 28, &[])));
        assert!(msg.starts_with("data/x: header says 0 images"), "{msg}");
        let msg = message(labels(labels_file(&[])));
        assert!(msg.starts_with("data/y: header says 0 labels"), "{msg}");
        let msg = message(images(images_file(3, 0, 28, &[])));
        assert!(
            msg.starts_with("data/x: header says images of 0x28"),
            "{msg}"
        );
    }

    #[test]
    fn huge_header_sizes_do_not_overflow_or_allocate() {
        let msg = message(images(images_file(u32::MAX, u32::MAX, u32::MAX, &[])));
        assert!(
            msg.contains("header says 4294967295 images of 4294967295x4294967295, more bytes than"),
            "{msg}"
        );
        let msg = message(images(images_file(u32::MAX, 1 << 16, 1 << 16, &[1])));
        assert!(msg.contains("truncated"), "{msg}");
    }

    #[test]
    fn corrupt_gzip_is_an_error() {
        let file = images_file(4, 28, 28, &[7; 4 * 784]);
        let good = gzip(&file).unwrap();

        let mut flipped = good.clone();
        let middle = flipped.len() / 2;
        flipped[middle] ^= 0xff;
        let msg = message(images(flipped));
        assert!(msg.starts_with("data/x: corrupt gzip stream ("), "{msg}");

        let cut = good[..good.len() - 6].to_vec();
        let msg = message(images(cut));
        assert!(msg.starts_with("data/x: corrupt gzip stream ("), "{msg}");

        let mut appended = good.clone();
        appended.extend_from_slice(b"junk after the gzip member");
        let msg = message(images(appended));
        assert!(msg.starts_with("data/x: corrupt gzip stream ("), "{msg}");

        let mut two_members = good;
        two_members.extend_from_slice(&gzip(&[9, 9]).unwrap());
        let msg = message(images(two_members));
        assert!(msg.contains("2 bytes too many"), "{msg}");
    }

    #[test]
    fn a_gzip_trailer_cannot_claim_more_memory_than_deflate_can_fill() {
        let file = images_file(4, 28, 28, &[7; 4 * 784]);
        let good = gzip(&file).unwrap();
        assert_eq!(capacity_hint(&good), file.len());
        // 30-odd bytes whose trailer says 4 GiB: once reserved 1 GiB, which aborts the process
        // where memory is limited (ulimit -v, no overcommit).
        let mut lying = gzip(&[0; 16]).unwrap();
        let at = lying.len() - 4;
        lying[at..].copy_from_slice(&u32::MAX.to_le_bytes());
        assert!(
            capacity_hint(&lying) <= lying.len() * 1032,
            "{}",
            capacity_hint(&lying)
        );
        let msg = message(images(lying));
        assert!(msg.starts_with("data/x: corrupt gzip stream ("), "{msg}");
        assert_eq!(capacity_hint(&[]), 0);
        assert_eq!(capacity_hint(&[0x1f, 0x8b, 0xff]), 0);
    }

    #[test]
    fn reads_stop_at_the_limit_even_when_the_length_is_wrong() {
        // /dev/zero reports length 0 and never ends.
        let bytes = read_at_most(Path::new("/dev/zero"), 1000).unwrap();
        assert_eq!(bytes.len(), 1001);
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("short");
        fs::write(&path, b"abc").unwrap();
        assert_eq!(read_at_most(&path, 3).unwrap(), b"abc");
        assert_eq!(read_at_most(&path, 2).unwrap(), b"abc");
        assert_eq!(read_at_most(&path, 1).unwrap(), b"ab");
    }

    #[test]
    fn encode_images_round_trips_through_the_reader() {
        let pixels: Vec<u8> = (0..3 * 784).map(|i| (i * 7 % 256) as u8).collect();
        let encoded = encode_images(28, 28, &pixels).unwrap();
        assert_eq!(encoded.len(), 16 + pixels.len());
        let expected = IdxImages {
            count: 3,
            rows: 28,
            cols: 28,
            pixels,
        };
        assert_eq!(images(encoded.clone()).unwrap(), expected);
        assert_eq!(images(gzip(&encoded).unwrap()).unwrap(), expected);
    }

    #[test]
    fn encode_refuses_what_the_reader_would_refuse() {
        let msg = message(encode_images(28, 28, &[0; 785]));
        assert_eq!(
            msg,
            "cannot write 785 pixels of 28x28 images as an IDX file: the pixels are not a whole number of images"
        );
        let msg = message(encode_images(28, 28, &[]));
        assert!(msg.ends_with("there are no images"), "{msg}");
        let msg = message(encode_images(0, 28, &[1]));
        assert!(msg.ends_with("at least one row and one column"), "{msg}");
        let msg = message(encode_images(1 << 33, 1, &[1]));
        assert!(msg.ends_with("a side is larger than that"), "{msg}");
    }

    #[test]
    fn read_file_names_the_path() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("nothing-here");
        let msg = message(read_file(&path));
        assert!(
            msg.starts_with(&format!("{}: cannot read the file: ", path.display())),
            "{msg}"
        );

        let path = dir.path().join("images.bin");
        fs::write(&path, gzip(&images_file(1, 1, 2, &[3, 4])).unwrap()).unwrap();
        assert_eq!(read_images(&path).unwrap().pixels, vec![3, 4]);
        fs::write(&path, images_file(1, 1, 2, &[3])).unwrap();
        let msg = message(read_images(&path));
        assert!(
            msg.starts_with(&format!("{}: truncated", path.display())),
            "{msg}"
        );
    }
}
