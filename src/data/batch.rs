//! Epoch order and batches: a reproducible shuffle per epoch, PyTorch-style batch counts, and pixels scaled to [-1, 1].

use rand::SeedableRng;
use rand::seq::SliceRandom;
use rand_chacha::ChaCha8Rng;

use super::{DataError, DigitSet};

/// Mixed into the shuffle's key so that another part of the program seeding a `ChaCha8Rng` from
/// the same run seed (noise, say) does not draw the very numbers the shuffle draws.
const SHUFFLE_KEY_TAG: &[u8; 24] = b"gan-tui data epoch order";

/// The visiting order of `len` digits in `epoch`: a permutation of `0..len` that depends only on
/// `(seed, epoch)`, so a resumed run recomputes exactly the order it was interrupted in. Each
/// epoch uses its own ChaCha stream, so epochs are independent shuffles.
///
/// IDX counts are 32-bit, so every loaded set fits in `u32` indices; a longer `len` is cut to
/// `u32::MAX` indices rather than wrapped.
pub fn epoch_order(len: usize, seed: u64, epoch: u32) -> Vec<u32> {
    let n = u32::try_from(len).unwrap_or(u32::MAX);
    let mut key = [0u8; 32];
    let (seed_part, tag_part) = key.split_at_mut(8);
    seed_part.copy_from_slice(&seed.to_le_bytes());
    tag_part.copy_from_slice(SHUFFLE_KEY_TAG);
    let mut rng = ChaCha8Rng::from_seed(key);
    rng.set_stream(u64::from(epoch));
    let mut order: Vec<u32> = (0..n).collect();
    order.shuffle(&mut rng);
    order
}

/// Batches in one epoch, as PyTorch's `DataLoader` (without `drop_last`) makes them: every digit
/// once, the last batch smaller when `batch_size` does not divide `len` (60,000 / 64 gives 938
/// batches, the last of 32). A `batch_size` of 0 forms no batches.
pub fn batches_per_epoch(len: usize, batch_size: usize) -> u64 {
    if batch_size == 0 {
        return 0;
    }
    len.div_ceil(batch_size) as u64
}

/// The indices of batch number `batch` (counting from 0) within an epoch's `order`, or `None` past
/// the last batch. Lets a resumed run start in the middle of an epoch.
pub fn batch_indices(order: &[u32], batch_size: usize, batch: u64) -> Option<&[u32]> {
    if batch_size == 0 {
        return None;
    }
    let start = usize::try_from(batch).ok()?.checked_mul(batch_size)?;
    if start >= order.len() {
        return None;
    }
    let end = start.saturating_add(batch_size).min(order.len());
    order.get(start..end)
}

/// Pixel value to model input, exactly as torchvision's `ToTensor` then `Normalize((0.5,), (0.5,))`
/// compute it in f32: 0 gives -1.0, 255 gives 1.0.
pub fn normalize(pixel: u8) -> f32 {
    NORMALIZED[usize::from(pixel)]
}

/// `normalize` for all 256 values, worked out at compile time with the same f32 operations, so
/// filling a batch is one table look-up per pixel.
const NORMALIZED: [f32; 256] = {
    let mut table = [0.0f32; 256];
    let mut p = 0;
    while p < 256 {
        table[p] = (p as f32 / 255.0 - 0.5) / 0.5;
        p += 1;
    }
    table
};

/// Replaces `out` with the images at `indices`, one after another, each pixel normalized to
/// [-1, 1]: `indices.len() * pixels-per-image` floats (784 for digits). `out` keeps its capacity,
/// so a reused buffer allocates only once. A short last batch simply gives fewer floats. On an
/// out-of-range index `out` is left empty.
pub fn fill_batch(set: &DigitSet, indices: &[u32], out: &mut Vec<f32>) -> Result<(), DataError> {
    out.clear();
    out.reserve(indices.len().saturating_mul(set.pixels_per_image()));
    for &index in indices {
        let Some(image) = usize::try_from(index).ok().and_then(|i| set.image(i)) else {
            out.clear();
            return Err(out_of_range(set, index));
        };
        out.extend(image.iter().map(|&p| normalize(p)));
    }
    Ok(())
}

/// Replaces `out` with the labels (0-9) at `indices`. On an out-of-range index `out` is left empty.
pub fn fill_labels(set: &DigitSet, indices: &[u32], out: &mut Vec<u8>) -> Result<(), DataError> {
    out.clear();
    out.reserve(indices.len());
    for &index in indices {
        let Some(label) = usize::try_from(index).ok().and_then(|i| set.label(i)) else {
            out.clear();
            return Err(out_of_range(set, index));
        };
        out.push(label);
    }
    Ok(())
}

fn out_of_range(set: &DigitSet, index: u32) -> DataError {
    DataError::IndexOutOfRange {
        index,
        len: set.len(),
        source_name: set.source.clone(),
    }
}

#[cfg(test)]
mod tests;
