//! Convolution followed by ReLU and 2x2 max-pooling, the judge's blocks: dfdx 0.13 builds its
//! pooling only on nightly, so the pooling (with the ReLU before it folded in) is a custom op
//! here, after `conv`'s convolution op.

use dfdx::nn::tensor_collection::{ModuleVisitor, TensorCollection, TensorOptions};
use dfdx::prelude::*;
use dfdx::tensor::Tape;
use rand_distr::Uniform;

use super::conv::{Geometry, Wants, conv2d_op};
use super::dense::Identity;
use super::ops::{self, put_grad, take_grad};
use super::profile::{self, OpKind, Pass};

/// The shape of a batch of channels-last images: `batch` x `height` x `width` x `channels`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ImageShape {
    pub batch: usize,
    pub height: usize,
    pub width: usize,
    pub channels: usize,
}

impl ImageShape {
    fn len(&self) -> usize {
        self.batch * self.height * self.width * self.channels
    }
}

/// ReLU of 2x2 max-pooling with stride 2 (the same as pooling after ReLU, in one pass over a
/// quarter of the values) of channels-last images with even sides. The gradient goes to the first
/// largest value of each window, as PyTorch's `MaxPool2d` sends it, where that value is positive.
pub fn max_pool2_relu<Si: Shape, So: Shape, T: Tape<f32, Cpu>>(
    x: Tensor<Si, f32, Cpu, T>,
    s: ImageShape,
    out_shape: So,
) -> Result<Tensor<So, f32, Cpu, T>, CpuError> {
    profile::timed(OpKind::Pool, Pass::Forward, || {
        let (oh, ow) = (s.height / 2, s.width / 2);
        let odd = !s.height.is_multiple_of(2) || !s.width.is_multiple_of(2);
        if odd || s.len() != x.shape().num_elements() || out_shape.num_elements() != s.len() / 4 {
            return Err(CpuError::WrongNumElements);
        }
        let (input, x, mut tape) = ops::take_input(x)?;
        let n = s.len() / 4;
        let (mut out, mut from) = (Vec::with_capacity(n), Vec::with_capacity(n));
        for b in 0..s.batch {
            for oy in 0..oh {
                for ox in 0..ow {
                    for c in 0..s.channels {
                        let at = |dy: usize, dx: usize| {
                            ((b * s.height + 2 * oy + dy) * s.width + 2 * ox + dx) * s.channels + c
                        };
                        let mut best = at(0, 0);
                        for i in [at(0, 1), at(1, 0), at(1, 1)] {
                            if input[i] > input[best] {
                                best = i;
                            }
                        }
                        out.push(input[best].max(0.0));
                        // usize::MAX: ReLU cut this window off, it passes no gradient.
                        from.push(if input[best] > 0.0 { best } else { usize::MAX });
                    }
                }
            }
        }
        let out = ops::made(x.device(), out, out_shape)?;
        if T::OWNS_TAPE {
            let (x_ghost, out_ghost) = (x.ghost(), out.ghost());
            tape.add_backward_op(move |grads| {
                profile::timed(OpKind::Pool, Pass::Backward, || {
                    let dy: Vec<f32> = take_grad!(grads, out_ghost);
                    let dx = grads.get_or_alloc_mut(&x_ghost)?;
                    for (&i, g) in from.iter().zip(&dy) {
                        if let Some(slot) = dx.get_mut(i) {
                            *slot += g;
                        }
                    }
                    put_grad!(grads, out_ghost, dy);
                    Ok(())
                })
            });
        }
        Ok(out.put_tape(tape))
    })
}

/// A valid (unpadded) `K`x`K` convolution from `I` to `O` channels with a bias, then ReLU, then
/// 2x2 max-pooling: channels-last images (batch, h, w, I) -> (batch, PH, PW, O), where
/// PH = (h - K + 1) / 2 and likewise PW.
#[derive(Debug, Clone)]
pub struct ConvPool<
    const I: usize,
    const O: usize,
    const K: usize,
    const PH: usize,
    const PW: usize,
    E: Dtype,
    D: Storage<E>,
> {
    /// PyTorch's `Conv2d.weight` layout: (out, in, k, k).
    pub weight: Tensor<Rank4<O, I, K, K>, E, D>,
    pub bias: Tensor<Rank1<O>, E, D>,
}

/// The builder type naming a `ConvPool` in a model tuple.
#[derive(Debug, Clone, Copy, Default)]
pub struct ConvPoolBuilder<
    const I: usize,
    const O: usize,
    const K: usize,
    const PH: usize,
    const PW: usize,
>;

impl<const I: usize, const O: usize, const K: usize, const PH: usize, const PW: usize>
    BuildOnDevice<Cpu, f32> for ConvPoolBuilder<I, O, K, PH, PW>
{
    type Built = ConvPool<I, O, K, PH, PW, f32, Cpu>;
}

impl<
    const I: usize,
    const O: usize,
    const K: usize,
    const PH: usize,
    const PW: usize,
    E: Dtype,
    D: Storage<E>,
> NonMutableModule for ConvPool<I, O, K, PH, PW, E, D>
{
}

impl<const I: usize, const O: usize, const K: usize, const PH: usize, const PW: usize>
    TensorCollection<f32, Cpu> for ConvPool<I, O, K, PH, PW, f32, Cpu>
{
    type To<E2: Dtype, D2: Device<E2>> = ConvPool<I, O, K, PH, PW, E2, D2>;

    fn iter_tensors<V: ModuleVisitor<Self, f32, Cpu>>(
        visitor: &mut V,
    ) -> Result<Option<Self::To<V::E2, V::D2>>, V::Err> {
        visitor.visit_fields(
            (
                Self::tensor(
                    "weight",
                    |s| &s.weight,
                    |s| &mut s.weight,
                    TensorOptions::reset_with(|t| t.try_fill_with_distr(Self::init())),
                ),
                Self::tensor(
                    "bias",
                    |s| &s.bias,
                    |s| &mut s.bias,
                    TensorOptions::reset_with(|t| t.try_fill_with_distr(Self::init())),
                ),
            ),
            |(weight, bias)| ConvPool { weight, bias },
        )
    }
}

impl<const I: usize, const O: usize, const K: usize, const PH: usize, const PW: usize>
    ConvPool<I, O, K, PH, PW, f32, Cpu>
{
    /// PyTorch's `Conv2d` initialisation: weight and bias uniform in +-1/sqrt(fan_in).
    fn init() -> Uniform<f32> {
        let bound = 1.0 / ((I * K * K) as f32).sqrt();
        Uniform::new(-bound, bound)
    }
}

impl<
    B: Dim,
    const H: usize,
    const W: usize,
    const I: usize,
    const O: usize,
    const K: usize,
    const PH: usize,
    const PW: usize,
    T: Tape<f32, Cpu>,
> Module<Tensor<(B, Const<H>, Const<W>, Const<I>), f32, Cpu, T>>
    for ConvPool<I, O, K, PH, PW, f32, Cpu>
{
    type Output = Tensor<(B, Const<PH>, Const<PW>, Const<O>), f32, Cpu, T>;
    type Error = CpuError;

    fn try_forward(
        &self,
        x: Tensor<(B, Const<H>, Const<W>, Const<I>), f32, Cpu, T>,
    ) -> Result<Self::Output, CpuError> {
        const {
            assert!(
                H == W && K <= H && H - K + 1 == 2 * PH && PW == PH,
                "square images; the pooled sides must be half the convolved ones"
            )
        };
        let batch = x.shape().0;
        let image = |height, width, channels| ImageShape {
            batch: batch.size(),
            height,
            width,
            channels,
        };
        // The convolution, then ReLU and pooling in one pass over a quarter of the values.
        let geometry = Geometry {
            big: H,
            small: 2 * PH,
            ch: I,
            k: K,
            s: 1,
            p: 0,
        };
        let y = conv2d_op::<_, _, Identity, _>(
            x,
            &self.weight,
            &self.bias,
            geometry,
            O,
            (batch, 2 * PH, 2 * PW, Const::<O>),
            Wants::ALL,
        )?;
        max_pool2_relu(
            y,
            image(2 * PH, 2 * PW, O),
            (batch, Const::<PH>, Const::<PW>, Const::<O>),
        )
    }
}
#[cfg(test)]
mod tests {
    use super::*;

    fn shape(batch: usize, height: usize, width: usize, channels: usize) -> ImageShape {
        ImageShape {
            batch,
            height,
            width,
            channels,
        }
    }

    #[test]
    fn max_pool_takes_window_maxima_and_routes_their_gradient() {
        let dev: Cpu = Cpu::seed_from_u64(0);
        // A 2x6 single-channel image: windows [1 5 | 2 0], [3 3 | 8 4] and [-1 -2 | -3 -1].
        let x = dev.tensor_from_vec(
            vec![
                1.0f32, 5.0, 3.0, 3.0, -1.0, -2.0, 2.0, 0.0, 8.0, 4.0, -3.0, -1.0,
            ],
            (12usize,),
        );
        let grads = Gradients::leaky();
        let y = max_pool2_relu(x.clone().traced(grads), shape(1, 2, 6, 1), (3usize,)).unwrap();
        assert_eq!(y.as_vec(), [5.0, 8.0, 0.0]);
        let w = dev.tensor_from_vec(vec![1.0f32, 10.0, 100.0], (3usize,));
        let g = (y * w).sum().backward();
        // The all-negative window is cut off by the ReLU: no gradient.
        assert_eq!(
            g.get(&x).as_vec(),
            [0.0, 1.0, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0, 10.0, 0.0, 0.0, 0.0]
        );
    }

    #[test]
    fn bad_geometry_is_an_error_not_a_panic() {
        let dev: Cpu = Cpu::seed_from_u64(0);
        let x: Tensor<(usize,), f32, _> = dev.zeros_like(&(9,));
        assert!(max_pool2_relu(x, shape(1, 3, 3, 1), (2usize,)).is_err());
    }

    type Block = ConvPool<2, 3, 3, 2, 2, f32, Cpu>;
    type Images = Tensor<(usize, Const<6>, Const<6>, Const<2>), f32, Cpu>;

    /// The block worked from its definition: convolution, bias, ReLU, then window maxima.
    fn direct_block(block: &Block, image: &[f32]) -> Vec<f32> {
        let (w, b) = (block.weight.as_vec(), block.bias.as_vec());
        let px = |y: usize, x: usize, c: usize| image[(y * 6 + x) * 2 + c];
        let conv = |y: usize, x: usize, o: usize| {
            let mut sum = b[o];
            for c in 0..2 {
                for ky in 0..3 {
                    for kx in 0..3 {
                        sum += w[((o * 2 + c) * 3 + ky) * 3 + kx] * px(y + ky, x + kx, c);
                    }
                }
            }
            sum.max(0.0)
        };
        let mut out = Vec::new();
        for py in 0..2 {
            for px_ in 0..2 {
                for o in 0..3 {
                    let m = [(0, 0), (0, 1), (1, 0), (1, 1)]
                        .iter()
                        .map(|(dy, dx)| conv(2 * py + dy, 2 * px_ + dx, o))
                        .fold(f32::MIN, f32::max);
                    out.push(m);
                }
            }
        }
        out
    }

    /// Two 6x6 two-channel images: a 3x3 convolution leaves 4x4, pooled to 2x2.
    fn block_and_input(seed: u64) -> (Block, Images) {
        let dev: Cpu = Cpu::seed_from_u64(seed);
        let block = dev.build_module::<ConvPoolBuilder<2, 3, 3, 2, 2>, f32>();
        let values: Vec<f32> = (0..2 * 72)
            .map(|i| ((i * 37) % 101) as f32 / 50.0 - 1.0)
            .collect();
        let x = dev.tensor_from_vec(values, (2usize, Const, Const, Const));
        (block, x)
    }

    #[test]
    fn a_block_matches_its_definition() {
        let (block, x) = block_and_input(3);
        let values = x.as_vec();
        let y = block.try_forward(x).unwrap();
        assert_eq!(*y.shape(), (2, Const, Const, Const));
        let y = y.as_vec();
        for (got, image) in y.chunks_exact(12).zip(values.chunks_exact(72)) {
            let want = direct_block(&block, image);
            for (a, b) in got.iter().zip(&want) {
                assert!((a - b).abs() < 1e-5, "{got:?} vs {want:?}");
            }
        }
    }

    #[test]
    fn block_gradients_match_finite_differences() {
        let (mut block, x) = block_and_input(4);
        let dev = x.device().clone();
        // A loss that weighs every output differently, so a wrong layout cannot cancel out.
        let weights: Tensor<(usize, Const<2>, Const<2>, Const<3>), f32, _> =
            dev.sample_uniform_like(&(2, Const, Const, Const));
        let loss_of = |block: &Block| -> f64 {
            let y = block.try_forward(x.clone()).unwrap().as_vec();
            y.iter()
                .zip(weights.as_vec())
                .map(|(a, b)| f64::from(a * b))
                .sum()
        };
        let y = block
            .try_forward(x.clone().traced(block.alloc_grads()))
            .unwrap();
        let grads = (y * weights.clone()).sum().backward();
        let analytic = grads.get(&block.weight).as_vec();
        let mut w = block.weight.as_vec();
        for tap in [0, 7, 12, 17, 30, 53] {
            let h = 1e-3f32;
            let original = w[tap];
            w[tap] = original + h;
            block.weight.copy_from(&w);
            let up = loss_of(&block);
            w[tap] = original - h;
            block.weight.copy_from(&w);
            let down = loss_of(&block);
            w[tap] = original;
            block.weight.copy_from(&w);
            let numeric = (up - down) / (2.0 * f64::from(h));
            let a = f64::from(analytic[tap]);
            assert!(
                (numeric - a).abs() < 1e-2 * (1.0 + a.abs()),
                "tap {tap}: analytic {a}, numeric {numeric}"
            );
        }
    }
}
