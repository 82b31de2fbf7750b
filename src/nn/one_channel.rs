//! Convolutions of one-channel images (the discriminators' first layer, over the digits)
//! computed straight from the pixels, on AVX-512: no patch matrix is laid out in memory, and
//! the bias and activation run on each image's output while it is still in the cache.
//!
//! The sums are the patch-matrix path's (`gemm`'s), term for term: fused multiply-adds from
//! zero in tap order for an output and for an input gradient, and for a weight gradient in
//! position order, in blocks of `BLOCK` positions added up in turn (the depth block `gemm`
//! uses for these shapes on the machines measured). Tests check outputs and input gradients
//! against the patch-matrix path bit for bit, and weight gradients against that order.

use std::mem::MaybeUninit;

use super::conv::Geometry;
use super::kernels;

/// Positions per block of a weight gradient's sums: `gemm`'s depth block for these shapes.
const BLOCK: usize = 512;

/// Values per vector; a patch (at most this many taps) is one vector.
const LANES: usize = 16;

/// Whether this path runs a layer of this geometry with `out` output channels on this CPU:
/// one input channel, a patch of at most `LANES` taps, whole vectors of output channels, and
/// AVX-512F.
pub fn takes(g: &Geometry, out: usize) -> bool {
    g.ch == 1 && g.taps() <= LANES && out > 0 && out.is_multiple_of(LANES) && avx512()
}

fn avx512() -> bool {
    #[cfg(target_arch = "x86_64")]
    {
        std::arch::is_x86_feature_detected!("avx512f")
    }
    #[cfg(not(target_arch = "x86_64"))]
    {
        false
    }
}

/// One image inside a border of zeros wide enough that every tap of every patch falls inside
/// it: patches are then read without checks.
struct Padded {
    side: usize,
    pixels: Vec<f32>,
}

impl Padded {
    fn new(g: &Geometry) -> Padded {
        let side = ((g.small.max(1) - 1) * g.s + g.k).max(g.big + g.p);
        Padded {
            side,
            pixels: vec![0.0; side * side],
        }
    }

    /// Holds `image` (a zero border around it).
    fn fill(&mut self, g: &Geometry, image: &[f32]) {
        self.pixels.fill(0.0);
        for (row, src) in image.chunks_exact(g.big).enumerate() {
            self.pixels[(row + g.p) * self.side + g.p..][..g.big].copy_from_slice(src);
        }
    }

    /// Copies the image part back into `image`.
    fn unfill(&self, g: &Geometry, image: &mut [f32]) {
        for (row, dst) in image.chunks_exact_mut(g.big).enumerate() {
            dst.copy_from_slice(&self.pixels[(row + g.p) * self.side + g.p..][..g.big]);
        }
    }

    /// Where position `pos` (of the small grid, row by row) has its first tap.
    #[inline(always)]
    fn origin(&self, g: &Geometry, pos: usize) -> usize {
        (pos / g.small * self.side + pos % g.small) * g.s
    }

    /// Each tap's place from its position's origin, in tap order (0 past the last tap).
    fn offsets(&self, g: &Geometry) -> [usize; LANES] {
        let mut offsets = [0; LANES];
        for (t, o) in offsets.iter_mut().enumerate().take(g.taps()) {
            *o = t / g.k * self.side + t % g.k;
        }
        offsets
    }
}

/// Positions whose sums run interleaved (independent chains of multiply-adds).
const GROUP: usize = 8;

/// `w` (`out x taps`) as `taps x out`.
fn transposed(w: &[f32], out: usize, taps: usize) -> Vec<f32> {
    (0..taps)
        .flat_map(|t| (0..out).map(move |o| w[o * taps + t]))
        .collect()
}

/// A buffer's values once every one has been written.
///
/// # Safety
/// Every value of `v` must be initialised.
unsafe fn written(v: &mut [MaybeUninit<f32>]) -> &mut [f32] {
    // SAFETY: same layout; the caller promises every value is initialised.
    unsafe { &mut *(v as *mut [MaybeUninit<f32>] as *mut [f32]) }
}

/// The layer's output for `batch` images: at each position `y[o] = sum over taps of patch[t]
/// * w[o][t]` (`w` is `out x taps`), then `finish` (bias and activation) on each image's rows.
/// The two halves of the batch side by side. Needs `takes`.
pub fn forward(
    g: &Geometry,
    images: &[f32],
    batch: usize,
    w: &[f32],
    out: usize,
    finish: &(dyn Fn(&mut [f32]) + Sync),
) -> Vec<f32> {
    assert!(takes(g, out) && w.len() == out * g.taps() && images.len() >= batch * g.big_len());
    let w_t = transposed(w, out, g.taps());
    let per_image = g.small * g.small * out;
    let len = batch * per_image;
    let mut y: Vec<f32> = Vec::with_capacity(len);
    kernels::on_item_halves(
        &mut y.spare_capacity_mut()[..len],
        per_image,
        &images[..batch * g.big_len()],
        g.big_len(),
        |ys, images| {
            for (y, image) in ys
                .chunks_exact_mut(per_image)
                .zip(images.chunks_exact(g.big_len()))
            {
                #[cfg(target_arch = "x86_64")]
                // SAFETY: `takes` checked AVX-512F (the assert above); the sizes are asserted there too.
                unsafe {
                    forward_image(g, image, &w_t, out, y)
                };
                // SAFETY: `forward_image` wrote every value of this image's rows.
                finish(unsafe { written(y) });
            }
        },
    );
    // SAFETY: the `batch` chunks of `per_image` values cover `..len`, every one written.
    unsafe { y.set_len(len) };
    y
}

/// One image's output rows (`small^2` rows of `out`), every value written: `GROUP`
/// positions at a time, each output value a chain of multiply-adds in tap order.
///
/// # Safety
/// AVX-512F; `w_t` holds `taps x out` values and `y` `small^2` rows of `out`.
#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx512f")]
unsafe fn forward_image(
    g: &Geometry,
    image: &[f32],
    w_t: &[f32],
    out: usize,
    y: &mut [MaybeUninit<f32>],
) {
    use std::arch::x86_64::*;
    let taps = g.taps();
    let mut padded = Padded::new(g);
    padded.fill(g, image);
    let offsets = padded.offsets(g);
    let positions = g.small * g.small;
    let pixels = padded.pixels.as_ptr();
    let dst = y.as_mut_ptr().cast::<f32>();
    for first in (0..positions).step_by(GROUP) {
        let count = GROUP.min(positions - first);
        // A short last group repeats its last position in the spare chains (not stored).
        let origins: [usize; GROUP] =
            std::array::from_fn(|j| padded.origin(g, first + j.min(count - 1)));
        for oc in (0..out).step_by(LANES) {
            // SAFETY: every origin plus tap offset lies in the padded image; `w_t` has `out`
            // values per tap; the stores go to rows `first..first + count` of `y`.
            unsafe {
                let mut acc = [_mm512_setzero_ps(); GROUP];
                for (t, &off) in offsets[..taps].iter().enumerate() {
                    let w = _mm512_loadu_ps(w_t.as_ptr().add(t * out + oc));
                    for (acc, &origin) in acc.iter_mut().zip(&origins) {
                        let p = _mm512_set1_ps(*pixels.add(origin + off));
                        *acc = _mm512_fmadd_ps(p, w, *acc);
                    }
                }
                for (j, &acc) in acc.iter().enumerate().take(count) {
                    _mm512_storeu_ps(dst.add((first + j) * out + oc), acc);
                }
            }
        }
    }
}

/// The weight gradient `dw` (`out x taps`, overwritten): `dw[o][t] = sum over positions of
/// dy[pos][o] * patch[pos][t]`, over the `batch` images' positions in order. The two halves of
/// the output channels side by side. Needs `takes`.
pub fn weight_grad(
    g: &Geometry,
    images: &[f32],
    batch: usize,
    dy: &[f32],
    out: usize,
    dw: &mut [f32],
) {
    let taps = g.taps();
    let positions = batch * g.small * g.small;
    assert!(
        takes(g, out)
            && images.len() >= batch * g.big_len()
            && dy.len() >= positions * out
            && dw.len() == out * taps
    );
    let channels = |first: usize, dw: &mut [f32]| {
        #[cfg(target_arch = "x86_64")]
        // SAFETY: `takes` checked AVX-512F (the assert above); the sizes are asserted there too.
        unsafe {
            weight_grad_channels(g, images, positions, dy, out, first, dw)
        }
    };
    if out >= 2 * LANES && kernels::halves_pay(positions * out * taps) {
        let half = (out / 2).next_multiple_of(LANES);
        let (a, b) = dw.split_at_mut(half * taps);
        kernels::side_by_side(|| channels(0, a), || channels(half, b));
    } else {
        channels(0, dw);
    }
}

/// Rows `first..` of the weight gradient (as many as `dw` holds, a multiple of `LANES`),
/// `LANES` channels at a time.
///
/// # Safety
/// AVX-512F; `dy` holds `positions` rows of `out`, and `first` plus the rows of `dw` is at
/// most `out`.
#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx512f")]
unsafe fn weight_grad_channels(
    g: &Geometry,
    images: &[f32],
    positions: usize,
    dy: &[f32],
    out: usize,
    first: usize,
    dw: &mut [f32],
) {
    use std::arch::x86_64::*;
    let taps = g.taps();
    let per_image = g.small * g.small;
    debug_assert!(taps <= LANES);
    for (group, dw) in dw.chunks_exact_mut(LANES * taps).enumerate() {
        let o0 = first + group * LANES;
        let mut total = [[0.0f32; LANES]; LANES];
        let mut padded = Padded::new(g);
        let offsets = padded.offsets(g).map(|o| o as i32);
        // SAFETY: plain register set-ups (AVX-512F is enabled here).
        let (index, lanes) = unsafe {
            (
                _mm512_loadu_si512(offsets.as_ptr().cast()),
                (1u32 << taps).wrapping_sub(1) as __mmask16,
            )
        };
        let mut held = None;
        let mut start = 0;
        while start < positions {
            let end = (start + BLOCK).min(positions);
            // SAFETY: each position's `LANES` channels from `o0` lie inside its row of `dy`
            // (`o0 + LANES <= out`); `total`'s rows are `LANES` values.
            unsafe {
                let mut acc = [_mm512_setzero_ps(); LANES];
                for pos in start..end {
                    let (n, at) = (pos / per_image, pos % per_image);
                    if held != Some(n) {
                        padded.fill(g, &images[n * g.big_len()..][..g.big_len()]);
                        held = Some(n);
                    }
                    let base = padded.pixels.as_ptr().add(padded.origin(g, at));
                    let pv = if g.k == 4 {
                        // Four rows of four taps: four loads, no gather.
                        let row = |ky: usize| _mm_loadu_ps(base.add(ky * padded.side));
                        let v = _mm512_castps128_ps512(row(0));
                        let v = _mm512_insertf32x4::<1>(v, row(1));
                        let v = _mm512_insertf32x4::<2>(v, row(2));
                        _mm512_insertf32x4::<3>(v, row(3))
                    } else {
                        _mm512_mask_i32gather_ps::<4>(_mm512_setzero_ps(), lanes, index, base)
                    };
                    let d = dy.as_ptr().add(pos * out + o0);
                    for (c, acc) in acc.iter_mut().enumerate() {
                        *acc = _mm512_fmadd_ps(_mm512_set1_ps(*d.add(c)), pv, *acc);
                    }
                }
                for (total, &acc) in total.iter_mut().zip(&acc) {
                    let sum = if start == 0 {
                        acc
                    } else {
                        _mm512_add_ps(_mm512_loadu_ps(total.as_ptr()), acc)
                    };
                    _mm512_storeu_ps(total.as_mut_ptr(), sum);
                }
            }
            start = end;
        }
        for (row, total) in dw.chunks_exact_mut(taps).zip(&total) {
            row.copy_from_slice(&total[..taps]);
        }
    }
}

/// Adds the input gradient into `dx` (`batch` images): at each position the patch's gradient
/// `dcol[t] = sum over o of dy[pos][o] * w[o][t]`, added into the pixels it came from,
/// positions in order, then taps. The two halves of the batch side by side. Needs `takes`.
pub fn add_input_grad(
    g: &Geometry,
    dx: &mut [f32],
    batch: usize,
    dy: &[f32],
    w: &[f32],
    out: usize,
) {
    let per_image = g.small * g.small * out;
    assert!(
        takes(g, out)
            && dx.len() >= batch * g.big_len()
            && dy.len() >= batch * per_image
            && w.len() == out * g.taps()
    );
    let taps = g.taps();
    let w_padded: Vec<f32> = w
        .chunks_exact(taps)
        .flat_map(|row| (0..LANES).map(move |t| row.get(t).copied().unwrap_or(0.0)))
        .collect();
    kernels::on_item_halves(
        &mut dx[..batch * g.big_len()],
        g.big_len(),
        &dy[..batch * per_image],
        per_image,
        |dx, dy| {
            for (dx, dy) in dx
                .chunks_exact_mut(g.big_len())
                .zip(dy.chunks_exact(per_image))
            {
                #[cfg(target_arch = "x86_64")]
                // SAFETY: `takes` checked AVX-512F (the assert above); the sizes are asserted there too.
                unsafe {
                    add_input_grad_image(g, dx, dy, &w_padded, out)
                };
            }
        },
    );
}

/// One image's input gradient added into `dx`; `w` is `out` rows of `LANES` (taps, then 0).
/// `GROUP` positions' patch gradients at a time (independent chains), added into the pixels
/// in position order, then tap order.
///
/// # Safety
/// AVX-512F; `w` holds `out` rows of `LANES` and `dy` `small^2` rows of `out`.
#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx512f")]
unsafe fn add_input_grad_image(g: &Geometry, dx: &mut [f32], dy: &[f32], w: &[f32], out: usize) {
    use std::arch::x86_64::*;
    let taps = g.taps();
    let positions = g.small * g.small;
    // The image's gradient so far, in a border that takes the taps outside it (then dropped).
    let mut padded = Padded::new(g);
    padded.fill(g, dx);
    let offsets = padded.offsets(g);
    let mut dcols = [[0.0f32; LANES]; GROUP];
    for first in (0..positions).step_by(GROUP) {
        let count = GROUP.min(positions - first);
        let rows: [usize; GROUP] = std::array::from_fn(|j| (first + j.min(count - 1)) * out);
        // SAFETY: `w` has `out` rows of `LANES`; each row of `dy` read is among its `small^2`.
        unsafe {
            let mut acc = [_mm512_setzero_ps(); GROUP];
            for o in 0..out {
                let w = _mm512_loadu_ps(w.as_ptr().add(o * LANES));
                for (acc, &row) in acc.iter_mut().zip(&rows) {
                    *acc = _mm512_fmadd_ps(_mm512_set1_ps(*dy.as_ptr().add(row + o)), w, *acc);
                }
            }
            for (dcol, &acc) in dcols.iter_mut().zip(&acc) {
                _mm512_storeu_ps(dcol.as_mut_ptr(), acc);
            }
        }
        for (j, dcol) in dcols.iter().enumerate().take(count) {
            let origin = padded.origin(g, first + j);
            for (&off, &d) in offsets[..taps].iter().zip(dcol) {
                padded.pixels[origin + off] += d;
            }
        }
    }
    padded.unfill(g, dx);
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The discriminators' first layer: 28x28 digits, 4x4 taps, stride 2, padding 1.
    const FIRST: Geometry = Geometry {
        big: 28,
        small: 14,
        ch: 1,
        k: 4,
        s: 2,
        p: 1,
    };

    fn values(len: usize, seed: u32) -> Vec<f32> {
        (0..len as u32)
            .map(|i| {
                let h = (i ^ seed).wrapping_mul(2654435761).rotate_left(13);
                (h % 2001) as f32 / 1000.0 - 1.0
            })
            .collect()
    }

    fn same_bits(a: &[f32], b: &[f32]) -> bool {
        a.len() == b.len() && a.iter().zip(b).all(|(x, y)| x.to_bits() == y.to_bits())
    }

    #[test]
    fn outputs_and_input_gradients_are_the_patch_matrix_paths_bit_for_bit() {
        let (g, out, batch) = (FIRST, 32, 3);
        if !takes(&g, out) {
            return; // no AVX-512: the patch-matrix path runs instead
        }
        let (taps, rows) = (g.taps(), batch * g.small * g.small);
        let images = values(batch * g.big_len(), 1);
        let w = values(out * taps, 2);
        let mine = forward(&g, &images, batch, &w, out, &|_| {});
        let theirs = kernels::forward_new(&g.gather(&images, batch), &w, rows, taps, out);
        assert!(same_bits(&mine, &theirs));

        let dy = values(rows * out, 3);
        let mut mine = values(batch * g.big_len(), 4);
        let mut theirs = mine.clone();
        add_input_grad(&g, &mut mine, batch, &dy, &w, out);
        let per_image = g.small * g.small;
        g.scatter_add_made(
            &mut theirs,
            batch,
            &dy,
            per_image * out,
            |dy, images, dcols| kernels::input_grad(dy, &w, dcols, images * per_image, taps, out),
        );
        assert!(same_bits(&mine, &theirs));
    }

    #[test]
    fn weight_gradients_sum_positions_in_order_in_blocks() {
        let (g, out, batch) = (FIRST, 32, 3); // 588 positions: a block of 512 and a rest
        if !takes(&g, out) {
            return;
        }
        let (taps, rows) = (g.taps(), batch * g.small * g.small);
        let images = values(batch * g.big_len(), 5);
        let dy = values(rows * out, 6);
        let mut mine = vec![0.0; out * taps];
        weight_grad(&g, &images, batch, &dy, out, &mut mine);
        let cols = g.gather(&images, batch);
        let mut expected = vec![0.0f32; out * taps];
        for (o, row) in expected.chunks_exact_mut(taps).enumerate() {
            for (t, e) in row.iter_mut().enumerate() {
                for (b, start) in (0..rows).step_by(BLOCK).enumerate() {
                    let sum = (start..rows.min(start + BLOCK)).fold(0.0f32, |acc, r| {
                        dy[r * out + o].mul_add(cols[r * taps + t], acc)
                    });
                    *e = if b == 0 { sum } else { *e + sum };
                }
            }
        }
        assert!(same_bits(&mine, &expected));
        // And what the patch-matrix path's product gives on this machine, within rounding.
        let mut theirs = vec![0.0; out * taps];
        kernels::weight_grad(&dy, &cols, &mut theirs, rows, taps, out, false);
        for (a, b) in mine.iter().zip(&theirs) {
            assert!((a - b).abs() <= 1e-4 * (1.0 + b.abs()), "{a} against {b}");
        }
    }
}
