//! Between flat vectors and channels-last images: PyTorch's `Unflatten` and `Flatten` around a
//! convolutional network, whose flat side is in PyTorch's channels-first order (so a dense
//! layer's weights mean the same here as in PyTorch), and the plain reshapes of the judge.

use dfdx::prelude::*;
use dfdx::tensor::Tape;

use super::frozen::FrozenModule;
use super::kernels;
use super::ops::{self, put_grad, take_grad};
use super::profile::{self, OpKind, Pass};

/// Every `a * b` block of `src` (one row of the batch), read as an `a x b` matrix, transposed
/// into a `b x a` one, the two halves of the batch side by side: channels-first (c, pixel) to
/// channels-last (pixel, c) with `a` the channels, and back with `a` the pixels.
pub(crate) fn transpose_rows(src: &[f32], a: usize, b: usize) -> Vec<f32> {
    let len = src.len();
    assert!(
        len == 0 || (a * b > 0 && len.is_multiple_of(a * b)),
        "transpose_rows: {len} values are not rows of {a} x {b}"
    );
    let mut out = Vec::with_capacity(len);
    transpose_rows_with(src, &mut out.spare_capacity_mut()[..len], a, b, |d, v| {
        d.write(v);
    });
    // SAFETY: each row of `a * b` values (they divide `len`, asserted above) is put whole, every
    // value in a place of its own.
    unsafe { out.set_len(len) };
    out
}

/// `transpose_rows` of `src` added into `dst`.
pub(crate) fn transpose_rows_add(src: &[f32], dst: &mut [f32], a: usize, b: usize) {
    transpose_rows_with(src, dst, a, b, |d, v| *d += v);
}

/// `put(dst value, src value)` for each value of `src` and its place in `dst`, as
/// `transpose_rows` places them: eight source rows at a time, so each place in `dst` gets eight
/// consecutive values (one value at a time, strided, cost 1.4 ns a value); the rows left over
/// one at a time.
fn transpose_rows_with<T: Send>(
    src: &[f32],
    dst: &mut [T],
    a: usize,
    b: usize,
    put: impl Fn(&mut T, f32) + Sync,
) {
    const TILE: usize = 8;
    let per = (a * b).max(1);
    let b = b.max(1);
    kernels::on_item_halves(dst, per, src, per, |dst, src| {
        for (d, s) in dst.chunks_exact_mut(per).zip(src.chunks_exact(per)) {
            let tiles = s.chunks_exact(TILE * b);
            let rest = tiles.remainder();
            for (t, rows) in tiles.enumerate() {
                let rows: [&[f32]; TILE] = std::array::from_fn(|r| &rows[r * b..][..b]);
                for (j, out) in d.chunks_exact_mut(a).enumerate() {
                    let out = &mut out[t * TILE..][..TILE];
                    for (o, row) in out.iter_mut().zip(&rows) {
                        put(o, row[j]);
                    }
                }
            }
            let done = a - rest.len() / b;
            for (i, row) in rest.chunks_exact(b).enumerate() {
                for (out, &v) in d.chunks_exact_mut(a).zip(row) {
                    put(&mut out[done + i], v);
                }
            }
        }
    });
}

/// The custom op of both layout changes: forward reorders, backward reorders the gradient the
/// other way and adds it to the input's.
/// Each row of `x` is an `a x b` matrix, transposed.
fn relayout<Si: Shape, So: Shape, T: Tape<f32, Cpu>>(
    x: Tensor<Si, f32, Cpu, T>,
    out_shape: So,
    (a, b): (usize, usize),
) -> Result<Tensor<So, f32, Cpu, T>, CpuError> {
    profile::timed(OpKind::Copies, Pass::Forward, || {
        let (xv, x, mut tape) = ops::take_input_shared(x)?;
        let out = ops::made(x.device(), transpose_rows(&xv, a, b), out_shape)?;
        ops::recycle_shared(xv);
        if T::OWNS_TAPE {
            let (x_ghost, out_ghost) = (x.ghost(), out.ghost());
            tape.add_backward_op(move |grads| {
                profile::timed(OpKind::Copies, Pass::Backward, || {
                    let dy: Vec<f32> = take_grad!(grads, out_ghost);
                    let mut dx: Vec<f32> = take_grad!(grads, x_ghost);
                    if dx.len() != dy.len() {
                        return Err(CpuError::WrongNumElements);
                    }
                    transpose_rows_add(&dy, &mut dx, b, a);
                    put_grad!(grads, x_ghost, dx);
                    put_grad!(grads, out_ghost, dy);
                    Ok(())
                })
            });
        }
        Ok(out.put_tape(tape))
    })
}

/// PyTorch's `nn.Unflatten(1, (C, H, H))` into a channels-last image: `N = C * H * H` values per
/// row in (channel, y, x) order become an `H x H x C` image.
#[derive(Debug, Default, Clone, Copy)]
pub struct Unflatten<const N: usize, const C: usize, const H: usize>;

/// PyTorch's `nn.Flatten()` of a channels-last `H x H x C` image: `N = C * H * H` values per row
/// in (channel, y, x) order.
#[derive(Debug, Default, Clone, Copy)]
pub struct Flatten<const N: usize, const C: usize, const H: usize>;

impl<const N: usize, const C: usize, const H: usize> ZeroSizedModule for Unflatten<N, C, H> {}
impl<const N: usize, const C: usize, const H: usize> NonMutableModule for Unflatten<N, C, H> {}
impl<const N: usize, const C: usize, const H: usize> ZeroSizedModule for Flatten<N, C, H> {}
impl<const N: usize, const C: usize, const H: usize> NonMutableModule for Flatten<N, C, H> {}

type Flat<B, const N: usize, T> = Tensor<(B, Const<N>), f32, Cpu, T>;
type Image<B, const H: usize, const C: usize, T> =
    Tensor<(B, Const<H>, Const<H>, Const<C>), f32, Cpu, T>;

impl<B: Dim, const N: usize, const C: usize, const H: usize, T: Tape<f32, Cpu>>
    Module<Flat<B, N, T>> for Unflatten<N, C, H>
{
    type Output = Image<B, H, C, T>;
    type Error = CpuError;

    fn try_forward(&self, x: Flat<B, N, T>) -> Result<Self::Output, CpuError> {
        const { assert!(N == C * H * H, "Unflatten: N must be C * H * H") };
        let shape = (x.shape().0, Const, Const, Const);
        relayout(x, shape, (C, H * H))
    }
}

impl<B: Dim, const N: usize, const C: usize, const H: usize, T: Tape<f32, Cpu>>
    Module<Image<B, H, C, T>> for Flatten<N, C, H>
{
    type Output = Flat<B, N, T>;
    type Error = CpuError;

    fn try_forward(&self, x: Image<B, H, C, T>) -> Result<Self::Output, CpuError> {
        const { assert!(N == C * H * H, "Flatten: N must be C * H * H") };
        let shape = (x.shape().0, Const);
        relayout(x, shape, (H * H, C))
    }
}

impl<B: Dim, const N: usize, const C: usize, const H: usize, T: Tape<f32, Cpu>>
    FrozenModule<Flat<B, N, T>> for Unflatten<N, C, H>
{
    type Output = Image<B, H, C, T>;
    fn try_forward_frozen(&self, x: Flat<B, N, T>) -> Result<Self::Output, CpuError> {
        self.try_forward(x)
    }
}

impl<B: Dim, const N: usize, const C: usize, const H: usize, T: Tape<f32, Cpu>>
    FrozenModule<Image<B, H, C, T>> for Flatten<N, C, H>
{
    type Output = Flat<B, N, T>;
    fn try_forward_frozen(&self, x: Image<B, H, C, T>) -> Result<Self::Output, CpuError> {
        self.try_forward(x)
    }
}

/// One-channel images from flat rows: `N = H * W` pixels per row, row-major (a reshape, no copy).
#[derive(Debug, Default, Clone, Copy)]
pub struct ToImage<const N: usize, const H: usize, const W: usize>;

impl<const N: usize, const H: usize, const W: usize> ZeroSizedModule for ToImage<N, H, W> {}
impl<const N: usize, const H: usize, const W: usize> NonMutableModule for ToImage<N, H, W> {}

impl<B: Dim, const N: usize, const H: usize, const W: usize, T: Tape<f32, Cpu>>
    Module<Tensor<(B, Const<N>), f32, Cpu, T>> for ToImage<N, H, W>
{
    type Output = Tensor<(B, Const<H>, Const<W>, Const<1>), f32, Cpu, T>;
    type Error = CpuError;

    fn try_forward(&self, x: Tensor<(B, Const<N>), f32, Cpu, T>) -> Result<Self::Output, CpuError> {
        const { assert!(N == H * W, "ToImage: N must be H * W") };
        let b = x.shape().0;
        x.try_reshape_like(&(b, Const, Const, Const))
    }
}

/// Flattens channels-last feature maps into `N` values per image in their own (y, x, channel)
/// order (a reshape, no copy); `h * w * c` must be `N`. (`Flatten` gives PyTorch's order.)
#[derive(Debug, Default, Clone, Copy)]
pub struct FlattenChannelsLast<const N: usize>;

impl<const N: usize> ZeroSizedModule for FlattenChannelsLast<N> {}
impl<const N: usize> NonMutableModule for FlattenChannelsLast<N> {}

impl<B: Dim, const H: usize, const W: usize, const C: usize, const N: usize, T: Tape<f32, Cpu>>
    Module<Tensor<(B, Const<H>, Const<W>, Const<C>), f32, Cpu, T>> for FlattenChannelsLast<N>
{
    type Output = Tensor<(B, Const<N>), f32, Cpu, T>;
    type Error = CpuError;

    fn try_forward(
        &self,
        x: Tensor<(B, Const<H>, Const<W>, Const<C>), f32, Cpu, T>,
    ) -> Result<Self::Output, CpuError> {
        const { assert!(H * W * C == N, "flattening must keep every value") };
        let b = x.shape().0;
        x.try_reshape_like(&(b, Const::<N>))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn unflatten_reads_channels_first_and_flatten_undoes_it() {
        let dev: Cpu = Default::default();
        // Two rows of a 2x2 image with 3 channels, value = 100 row + 10 c + pixel.
        let flat: Vec<f32> = (0..2)
            .flat_map(|r| {
                (0..3).flat_map(move |c| (0..4).map(move |p| (100 * r + 10 * c + p) as f32))
            })
            .collect();
        let x = dev.tensor_from_vec(flat.clone(), (2usize, Const::<12>));
        let img = Unflatten::<12, 3, 2>.forward(x.leaky_trace());
        let v = img.as_vec();
        // Row 1, pixel (1, 0) = 2, channel 2: 100 + 20 + 2.
        assert_eq!(v[12 + 2 * 3 + 2], 122.0);
        let back = Flatten::<12, 3, 2>.forward(img);
        assert_eq!(back.as_vec(), flat);
        // The gradient of sum(w * back) reaches x unchanged in layout.
        let w = dev.tensor_from_vec((0..24).map(|i| i as f32).collect(), (2usize, Const::<12>));
        let g = (back * w.clone()).sum().backward();
        assert_eq!(g.get(&x).as_vec(), w.as_vec());
    }

    #[test]
    fn rows_are_transposed_whole_tiles_and_leftover_rows_alike() {
        // Sources of 8n rows, of 8n + 1, and of fewer than 8 (a), long enough to be cut in
        // halves (64 x 49 is G's first image).
        for (a, b, rows) in [(64, 49, 40), (49, 64, 40), (3, 4, 2), (17, 5, 3), (1, 7, 2)] {
            let src: Vec<f32> = (0..rows * a * b).map(|i| i as f32).collect();
            let mut want = vec![0.0; src.len()];
            for r in 0..rows {
                for i in 0..a {
                    for j in 0..b {
                        want[r * a * b + j * a + i] = src[r * a * b + i * b + j];
                    }
                }
            }
            assert_eq!(transpose_rows(&src, a, b), want, "{a} x {b}");
            let mut added = vec![1.0; src.len()];
            transpose_rows_add(&src, &mut added, a, b);
            let want_added: Vec<f32> = want.iter().map(|v| v + 1.0).collect();
            assert_eq!(added, want_added, "{a} x {b}, added");
        }
    }
}
