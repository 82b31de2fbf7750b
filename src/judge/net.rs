//! The judge's network: a small CNN in dfdx with compile-time shapes.
//!
//! 784 pixels -> conv 1->16 5x5, ReLU, max-pool 2 (28 -> 24 -> 12) -> conv 16->32 5x5, ReLU,
//! max-pool 2 (12 -> 8 -> 4) -> dense 512->128, ReLU (the feature layer) -> dense 128->10 logits.
//!
//! dfdx 0.13 as released builds its `Conv2D` and pooling only on nightly Rust, so `ConvPool` is
//! made of the stable pieces: the patch layout and the pooling from `ops` (channels-last images),
//! and one dfdx matrix product with the filters for every position of every image at once. Image
//! sides are type parameters, checked against each other when the model is compiled.

use dfdx::prelude::*;
use rand_distr::Uniform;

use super::ops::{self, ImageShape};
use crate::data::{DIGIT_COLS, DIGIT_PIXELS, DIGIT_ROWS};

/// Length of the feature vector the Fréchet distance compares.
pub const FEATURES: usize = 128;
pub use crate::data::CLASSES;
/// Values the second block hands the dense layers: 4 x 4 positions x 32 channels.
const FLAT: usize = 4 * 4 * 32;

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
                K <= H && K <= W && H - K + 1 == 2 * PH && W - K + 1 == 2 * PW,
                "the pooled sides must be half the convolved ones"
            )
        };
        let batch = x.shape().0;
        let image = |height, width, channels| ImageShape {
            batch: batch.size(),
            height,
            width,
            channels,
        };
        let patches = ops::im2col(x, image(H, W, I), K)?;
        // Filters as (in*k*k, out) with the bias as one more row, meeting the patches' 1 column:
        // a broadcast add over every position would cost more than the product itself.
        let filters = self
            .weight
            .retaped::<T>()
            .try_reshape_like(&(Const::<O>, I * K * K))?
            .try_permute()?;
        let bias = self
            .bias
            .retaped::<T>()
            .try_reshape_like(&(1, Const::<O>))?;
        let filters = (filters, bias).try_concat_along(Axis::<0>)?;
        let y = patches.try_matmul(filters)?;
        ops::max_pool2_relu(
            y,
            image(2 * PH, 2 * PW, O),
            (batch, Const::<PH>, Const::<PW>, Const::<O>),
        )
    }
}

/// Turns a batch of flat digits into one-channel 28x28 images.
#[derive(Debug, Default, Clone, Copy)]
pub struct ToImage;

impl ZeroSizedModule for ToImage {}
impl NonMutableModule for ToImage {}

impl<B: Dim, T: Tape<f32, Cpu>> Module<Tensor<(B, Const<DIGIT_PIXELS>), f32, Cpu, T>> for ToImage {
    type Output = Tensor<(B, Const<DIGIT_ROWS>, Const<DIGIT_COLS>, Const<1>), f32, Cpu, T>;
    type Error = CpuError;

    fn try_forward(
        &self,
        x: Tensor<(B, Const<DIGIT_PIXELS>), f32, Cpu, T>,
    ) -> Result<Self::Output, CpuError> {
        let b = x.shape().0;
        x.try_reshape_like(&(b, Const, Const, Const))
    }
}

/// Flattens channels-last feature maps into `N` values per image; `h * w * c` must be `N`.
#[derive(Debug, Default, Clone, Copy)]
pub struct Flatten<const N: usize>;

impl<const N: usize> ZeroSizedModule for Flatten<N> {}
impl<const N: usize> NonMutableModule for Flatten<N> {}

impl<B: Dim, const H: usize, const W: usize, const C: usize, const N: usize, T: Tape<f32, Cpu>>
    Module<Tensor<(B, Const<H>, Const<W>, Const<C>), f32, Cpu, T>> for Flatten<N>
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

/// Pixels to the 128 features: everything but the last layer.
pub type Body = (
    ToImage,
    ConvPoolBuilder<1, 16, 5, 12, 12>,
    ConvPoolBuilder<16, 32, 5, 4, 4>,
    Flatten<FLAT>,
    Linear<FLAT, FEATURES>,
    ReLU,
);
/// Features to class logits.
pub type Head = Linear<FEATURES, CLASSES>;

pub type BuiltBody = <Body as BuildOnDevice<Cpu, f32>>::Built;
pub type BuiltHead = <Head as BuildOnDevice<Cpu, f32>>::Built;

/// Parameter name prefixes in the weights file.
pub const BODY_PREFIX: &str = "body.";
pub const HEAD_PREFIX: &str = "head.";

/// One line naming the architecture, stored with the weights and compared on load.
pub const ARCHITECTURE: &str = "cnn nhwc conv1-16k5 relu maxpool2, conv16-32k5 relu maxpool2, \
     dense512-128 relu, dense128-10";

/// The judge's two parts. Kept apart so the features are the body's output, with no second pass.
#[derive(Debug, Clone)]
pub struct Net {
    /// The device inputs are put on.
    pub dev: Cpu,
    pub body: BuiltBody,
    pub head: BuiltHead,
}

impl Net {
    /// A freshly initialised network; the same seed gives the same weights.
    pub fn new(seed: u64) -> Self {
        let dev = Cpu::seed_from_u64(seed);
        let body = dev.build_module::<Body, f32>();
        let head = dev.build_module::<Head, f32>();
        Net { dev, body, head }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::nn::params;

    #[test]
    fn shapes_flow_from_pixels_to_features_and_logits() {
        let net = Net::new(1);
        let x: Tensor<(usize, Const<DIGIT_PIXELS>), f32, _> =
            net.dev.sample_uniform_like(&(3, Const::<DIGIT_PIXELS>));
        let f = net.body.try_forward(x).unwrap();
        assert_eq!(f.shape().0, 3);
        assert!(
            f.as_vec().iter().all(|v| *v >= 0.0),
            "features are post-ReLU"
        );
        let logits = net.head.try_forward(f).unwrap();
        assert_eq!(logits.as_vec().len(), 3 * CLASSES);
    }

    #[test]
    fn parameters_have_pytorch_layouts_and_names() {
        let net = Net::new(1);
        let named: Vec<(String, Vec<usize>)> = params::export(&net.body, BODY_PREFIX)
            .into_iter()
            .chain(params::export(&net.head, HEAD_PREFIX))
            .map(|t| (t.name, t.shape))
            .collect();
        let expected: Vec<(String, Vec<usize>)> = [
            ("body.1.weight", vec![16, 1, 5, 5]),
            ("body.1.bias", vec![16]),
            ("body.2.weight", vec![32, 16, 5, 5]),
            ("body.2.bias", vec![32]),
            ("body.4.weight", vec![128, 512]),
            ("body.4.bias", vec![128]),
            ("head.weight", vec![10, 128]),
            ("head.bias", vec![10]),
        ]
        .into_iter()
        .map(|(n, s)| (n.to_string(), s))
        .collect();
        assert_eq!(named, expected);
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

    #[test]
    fn gradients_reach_the_first_layer_through_the_second() {
        let net = Net::new(2);
        let x: Tensor<(usize, Const<DIGIT_PIXELS>), f32, _> =
            net.dev.sample_uniform_like(&(4, Const::<DIGIT_PIXELS>));
        let f = net
            .body
            .try_forward(x.traced(net.body.alloc_grads()))
            .unwrap();
        let grads = net.head.try_forward(f).unwrap().sum().backward();
        let first = grads.get(&net.body.1.weight).as_vec();
        assert!(first.iter().any(|v| *v != 0.0));
        assert!(
            grads
                .get(&net.body.2.bias)
                .as_vec()
                .iter()
                .any(|v| *v != 0.0)
        );
    }
}
