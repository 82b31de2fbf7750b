//! Direct products of the many-channel convolutions with 64 channels on their small side (D's
//! 32 -> 64 convolution, G's 64 -> 32 transposed convolution) on AVX-512: each image's patches
//! are read from, and added into, a padded copy of it, never laid out (im2col) nor packed again
//! (gemm), by kernels that keep 24 or 16 sums in vector registers as gemm's own kernel does.
//! `Wide::new` says where they apply; elsewhere the layers lay their patches out for gemm.

#[cfg(target_arch = "x86_64")]
use std::arch::x86_64::{
    __m512, _mm512_add_ps, _mm512_fmadd_ps, _mm512_loadu_ps, _mm512_set1_ps, _mm512_setzero_ps,
    _mm512_storeu_ps,
};

use super::conv::Geometry;
use super::kernels;

/// Channels on the small side the kernels are made for: four vectors of 16.
pub const WIDE: usize = 64;
/// Values in one vector.
const LANES: usize = 16;
/// Vectors in a row of `WIDE` values.
const VECTORS: usize = WIDE / LANES;
/// Positions whose rows `product` and `add_products` sum at once (24 vectors of sums).
const POSITIONS: usize = 6;
/// Taps whose sums `weight_grad` keeps at once, for half a row (16 vectors of sums).
const TAPS: usize = 8;
/// Taps of a patch `add_products` makes at once: one row of vectors.
const TAP_TILE: usize = WIDE;

/// A geometry the direct products serve, with what they walk: each padded image's kernel rows
/// (`k` runs of `run` values, `row` apart) and where each small-grid position's first tap is.
pub struct Wide {
    g: Geometry,
    run: usize,
    row: usize,
    firsts: Vec<usize>,
}

impl Wide {
    /// The direct products of `g` for rows of `out` values per small-grid position: `Some` on a
    /// CPU with AVX-512 when `out` is `WIDE` and a kernel row's run of taps is whole tiles of
    /// `add_products` (so of `weight_grad` too), as for the conv presets' middle layers.
    pub fn new(g: Geometry, out: usize) -> Option<Wide> {
        Wide::serves(g, out).then(|| {
            let side = g.padded_side();
            Wide {
                g,
                run: g.k * g.ch,
                row: side * g.ch,
                firsts: (0..g.small)
                    .flat_map(|y| (0..g.small).map(move |x| (y * side + x) * g.s * g.ch))
                    .collect(),
            }
        })
    }

    /// Whether `new` gives `Some` (without making the walk).
    pub fn serves(g: Geometry, out: usize) -> bool {
        out == WIDE && g.ch > 1 && (g.k * g.ch).is_multiple_of(TAP_TILE) && has_avx512()
    }

    fn taps(&self) -> usize {
        self.g.k * self.run
    }

    /// Where tap `t` of a patch sits in a padded image from the patch's first tap.
    fn tap_offset(&self, t: usize) -> usize {
        (t / self.run) * self.row + t % self.run
    }

    /// Values per image in the rows of the small grid.
    fn rows_len(&self) -> usize {
        self.firsts.len() * WIDE
    }

    /// `dst (positions x WIDE) = patches (positions x taps) * m (taps x WIDE)`, or `+=` when
    /// `accumulate`, over a batch of images `big`; the two halves of the batch side by side.
    /// Each value is a chain of fused multiply-adds over the taps from zero.
    pub fn product(&self, big: &[f32], batch: usize, m: &[f32], dst: &mut [f32], accumulate: bool) {
        let m = &m[..self.taps() * WIDE];
        let made_len = if accumulate { self.rows_len() } else { 0 };
        self.g.on_padded_images(
            big,
            batch,
            dst,
            self.rows_len(),
            made_len,
            |padded, dst, made| {
                let rows = if accumulate {
                    &mut made[..]
                } else {
                    &mut dst[..]
                };
                // SAFETY: `Wide::new` found AVX-512; the rows and image have their lengths.
                unsafe { self.product_image(padded, m, rows) }
                if accumulate {
                    kernels::add_into_part(dst, made);
                }
            },
        );
    }

    /// `patches^T (taps x positions) * small (positions x WIDE)` over a batch of images `big`, a
    /// weight gradient (taps x WIDE). Each value is summed image by image and position by
    /// position in each half of the batch, then the two halves are added, whether the halves run
    /// on one thread or two: the same values on any number of threads.
    pub fn weight_grad(&self, big: &[f32], batch: usize, small: &[f32]) -> Vec<f32> {
        let sums_len = self.taps() * WIDE;
        self.g.padded_weight_grad(
            big,
            batch,
            small,
            self.rows_len(),
            sums_len,
            |padded, rows, sums| {
                // SAFETY: `Wide::new` found AVX-512; the rows and image have their lengths.
                unsafe { self.weight_grad_image(padded, rows, sums) }
            },
        )
    }

    /// col2im of `small (positions x WIDE) * m (WIDE x taps)` added into a batch of images
    /// `big`: each position's patch made `TAP_TILE` taps at a time in registers (chains of
    /// fused multiply-adds over `WIDE` from zero) and added into a padded copy of its image, tile
    /// by tile, position by position; the two halves of the batch side by side.
    pub fn add_products(&self, big: &mut [f32], batch: usize, small: &[f32], m: &[f32]) {
        let m = self.tile_major(&m[..WIDE * self.taps()]);
        self.g.add_through_padded_images(
            big,
            batch,
            small,
            self.rows_len(),
            0,
            |padded, small, _| {
                // SAFETY: `Wide::new` found AVX-512; the rows and image have their lengths.
                unsafe { self.add_products_image(padded, small, &m) }
            },
        );
    }

    /// `m` (WIDE x taps) as `TAP_TILE`-tap tiles one after the other, each (WIDE x
    /// TAP_TILE): a tile's rows are then neighbours in memory, not a patch's length apart
    /// (which puts them all in a few sets of the cache, evicting each other).
    fn tile_major(&self, m: &[f32]) -> Vec<f32> {
        let taps = self.taps();
        let mut tiled = Vec::with_capacity(m.len());
        for t0 in (0..taps).step_by(TAP_TILE) {
            for row in m.chunks_exact(taps) {
                tiled.extend_from_slice(&row[t0..t0 + TAP_TILE]);
            }
        }
        tiled
    }

    /// The furthest value of a padded image any tap of any position reads, plus one.
    fn reach(&self) -> usize {
        self.firsts
            .last()
            .map_or(0, |&f| f + self.tap_offset(self.taps() - 1) + 1)
    }
}

/// Whether the CPU has AVX-512F, which the direct kernels here and in `conv` are written for.
pub(super) fn has_avx512() -> bool {
    #[cfg(target_arch = "x86_64")]
    {
        std::arch::is_x86_feature_detected!("avx512f")
    }
    #[cfg(not(target_arch = "x86_64"))]
    {
        false
    }
}

#[cfg(not(target_arch = "x86_64"))]
impl Wide {
    unsafe fn product_image(&self, _: &[f32], _: &[f32], _: &mut [f32]) {
        unreachable!("Wide::new needs AVX-512")
    }
    unsafe fn weight_grad_image(&self, _: &[f32], _: &[f32], _: &mut [f32]) {
        unreachable!("Wide::new needs AVX-512")
    }
    unsafe fn add_products_image(&self, _: &mut [f32], _: &[f32], _: &[f32]) {
        unreachable!("Wide::new needs AVX-512")
    }
}

#[cfg(target_arch = "x86_64")]
impl Wide {
    /// `product` for one padded image into `rows` (written, not added to): for each tile of
    /// `TAP_TILE` taps (whose rows of `m` stay in the cache), `POSITIONS` positions at a time,
    /// then those left over one by one, their sums carried from tile to tile through `rows`.
    ///
    /// # Safety
    /// The CPU must have AVX-512F.
    #[target_feature(enable = "avx512f")]
    unsafe fn product_image(&self, padded: &[f32], m: &[f32], rows: &mut [f32]) {
        assert!(padded.len() >= self.reach() && m.len() >= self.taps() * WIDE);
        assert!(rows.len() >= self.firsts.len() * WIDE);
        for t0 in (0..self.taps()).step_by(TAP_TILE) {
            let (mut groups, mut rows) = (self.firsts.chunks_exact(POSITIONS), &mut rows[..]);
            for group in &mut groups {
                // SAFETY: the asserts above keep every read and write in bounds.
                unsafe { self.product_rows::<POSITIONS>(padded, group, m, rows, t0) }
                rows = &mut rows[POSITIONS * WIDE..];
            }
            for (first, rows) in groups.remainder().chunks(1).zip(rows.chunks_mut(WIDE)) {
                // SAFETY: as above.
                unsafe { self.product_rows::<1>(padded, first, m, rows, t0) }
            }
        }
    }

    /// Taps `t0..t0 + TAP_TILE` of the rows of `P` positions (first taps at `firsts`): `P x
    /// VECTORS` sums in registers, from zero at the first tile or else from `rows`, each tap's
    /// row of `m` loaded once for all `P`; then written back to `rows`.
    ///
    /// # Safety
    /// AVX-512F; `firsts` has `P` values, each within `padded` with every tap (`reach`), `m` has
    /// `taps x WIDE` values and `rows` `P x WIDE`; the tile lies in one kernel row's run.
    #[target_feature(enable = "avx512f")]
    #[inline]
    unsafe fn product_rows<const P: usize>(
        &self,
        padded: &[f32],
        firsts: &[usize],
        m: &[f32],
        rows: &mut [f32],
        t0: usize,
    ) {
        let out = rows.as_mut_ptr();
        let mut sums = [[_mm512_setzero_ps(); VECTORS]; P];
        if t0 > 0 {
            for (q, sum) in sums.iter_mut().enumerate() {
                for (v, s) in sum.iter_mut().enumerate() {
                    // SAFETY: `rows` holds `P x WIDE` values.
                    *s = unsafe { _mm512_loadu_ps(out.add(q * WIDE + v * LANES)) };
                }
            }
        }
        let offset = self.tap_offset(t0);
        let pad = padded.as_ptr();
        // SAFETY: within `padded` and `m` (the caller's promise).
        let (at, mut w) = unsafe {
            let at: [*const f32; P] = std::array::from_fn(|q| pad.add(firsts[q] + offset));
            (at, m.as_ptr().add(t0 * WIDE))
        };
        for r in 0..TAP_TILE {
            // SAFETY: `w` walks the tile's rows of `m`, `r` its taps of each position.
            unsafe {
                let ws: [__m512; VECTORS] =
                    std::array::from_fn(|v| _mm512_loadu_ps(w.add(v * LANES)));
                for (sum, a) in sums.iter_mut().zip(&at) {
                    let x = _mm512_set1_ps(*a.add(r));
                    for (s, &wv) in sum.iter_mut().zip(&ws) {
                        *s = _mm512_fmadd_ps(x, wv, *s);
                    }
                }
                w = w.add(WIDE);
            }
        }
        for (q, sum) in sums.iter().enumerate() {
            for (v, &s) in sum.iter().enumerate() {
                // SAFETY: `rows` holds `P x WIDE` values.
                unsafe { _mm512_storeu_ps(out.add(q * WIDE + v * LANES), s) };
            }
        }
    }

    /// `weight_grad` for one padded image, added into `sums` (taps x WIDE): half a row of
    /// outputs and `TAPS` taps at a time, over every position.
    ///
    /// # Safety
    /// The CPU must have AVX-512F.
    #[target_feature(enable = "avx512f")]
    unsafe fn weight_grad_image(&self, padded: &[f32], small: &[f32], sums: &mut [f32]) {
        const HALF: usize = VECTORS / 2;
        assert!(padded.len() >= self.reach() && sums.len() >= self.taps() * WIDE);
        assert!(small.len() >= self.firsts.len() * WIDE);
        let (pad, rows, out) = (padded.as_ptr(), small.as_ptr(), sums.as_mut_ptr());
        for half in 0..2 {
            for t0 in (0..self.taps()).step_by(TAPS) {
                let offset = self.tap_offset(t0);
                // SAFETY: the asserts above keep every read and write in bounds: `TAPS` taps
                // from `t0` lie in one kernel row's run (a whole number of `TAPS`).
                unsafe {
                    let at =
                        |t: usize, v: usize| out.add((t0 + t) * WIDE + (half * HALF + v) * LANES);
                    let mut acc: [[__m512; HALF]; TAPS] =
                        std::array::from_fn(|t| std::array::from_fn(|v| _mm512_loadu_ps(at(t, v))));
                    for (p, &first) in self.firsts.iter().enumerate() {
                        let d = rows.add(p * WIDE + half * HALF * LANES);
                        let ds: [__m512; HALF] =
                            std::array::from_fn(|v| _mm512_loadu_ps(d.add(v * LANES)));
                        let x = pad.add(first + offset);
                        for (t, a) in acc.iter_mut().enumerate() {
                            let xv = _mm512_set1_ps(*x.add(t));
                            for (a, &dv) in a.iter_mut().zip(&ds) {
                                *a = _mm512_fmadd_ps(xv, dv, *a);
                            }
                        }
                    }
                    for (t, a) in acc.iter().enumerate() {
                        for (v, &a) in a.iter().enumerate() {
                            _mm512_storeu_ps(at(t, v), a);
                        }
                    }
                }
            }
        }
    }

    /// `add_products` for one padded image: for each tile of `TAP_TILE` taps, `POSITIONS`
    /// positions at a time, then those left over one by one.
    ///
    /// # Safety
    /// The CPU must have AVX-512F.
    #[target_feature(enable = "avx512f")]
    unsafe fn add_products_image(&self, padded: &mut [f32], small: &[f32], m: &[f32]) {
        assert!(padded.len() >= self.reach() && m.len() >= WIDE * self.taps());
        assert!(small.len() >= self.firsts.len() * WIDE);
        for t0 in (0..self.taps()).step_by(TAP_TILE) {
            let mut groups = self.firsts.chunks_exact(POSITIONS);
            for (group, small) in (&mut groups).zip(small.chunks(POSITIONS * WIDE)) {
                // SAFETY: the asserts above keep every read and write in bounds.
                unsafe { self.add_patches::<POSITIONS>(padded, group, small, m, t0) }
            }
            let done = self.firsts.len() - groups.remainder().len();
            for (first, small) in groups
                .remainder()
                .chunks(1)
                .zip(small[done * WIDE..].chunks(WIDE))
            {
                // SAFETY: as above.
                unsafe { self.add_patches::<1>(padded, first, small, m, t0) }
            }
        }
    }

    /// Taps `t0..t0 + TAP_TILE` of the patches of `P` positions (first taps at `firsts`, rows
    /// `small`): `P x VECTORS` sums in registers over the `WIDE` values of each row, then added
    /// into `padded` position by position.
    ///
    /// # Safety
    /// AVX-512F; as `product_rows`, with `small` of `P x WIDE` values and `m` of `WIDE x taps`
    /// as `tile_major` lays it out; the tile lies in one kernel row's run.
    #[target_feature(enable = "avx512f")]
    #[inline]
    unsafe fn add_patches<const P: usize>(
        &self,
        padded: &mut [f32],
        firsts: &[usize],
        small: &[f32],
        m: &[f32],
        t0: usize,
    ) {
        let mut sums = [[_mm512_setzero_ps(); VECTORS]; P];
        let (x, mut w) = (small.as_ptr(), unsafe { m.as_ptr().add(t0 * WIDE) });
        for c in 0..WIDE {
            // SAFETY: row `c` of `m` from tap `t0`, and value `c` of each position's row.
            unsafe {
                let ws: [__m512; VECTORS] =
                    std::array::from_fn(|v| _mm512_loadu_ps(w.add(v * LANES)));
                for (q, sum) in sums.iter_mut().enumerate() {
                    let xv = _mm512_set1_ps(*x.add(q * WIDE + c));
                    for (s, &wv) in sum.iter_mut().zip(&ws) {
                        *s = _mm512_fmadd_ps(xv, wv, *s);
                    }
                }
                w = w.add(TAP_TILE);
            }
        }
        let (pad, offset) = (padded.as_mut_ptr(), self.tap_offset(t0));
        for (sum, &first) in sums.iter().zip(firsts) {
            for (v, &s) in sum.iter().enumerate() {
                // SAFETY: within `padded`, every tap of the position (`reach`).
                unsafe {
                    let d = pad.add(first + offset + v * LANES);
                    _mm512_storeu_ps(d, _mm512_add_ps(_mm512_loadu_ps(d), s));
                }
            }
        }
    }
}
