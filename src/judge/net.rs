//! The judge's network: a small CNN in dfdx with compile-time shapes.
//!
//! 784 pixels -> conv 1->16 5x5, ReLU, max-pool 2 (28 -> 24 -> 12) -> conv 16->32 5x5, ReLU,
//! max-pool 2 (12 -> 8 -> 4) -> dense 512->128, ReLU (the feature layer) -> dense 128->10 logits.
//!
//! dfdx 0.13 as released builds its `Conv2D` and pooling only on nightly Rust; the blocks are
//! `nn::pool::ConvPool` (the engine's convolution op, then ReLU and pooling as one custom op, on
//! channels-last images). Image sides are type parameters, checked against each other when the
//! model is compiled.

use dfdx::prelude::*;

use crate::data::{DIGIT_COLS, DIGIT_PIXELS, DIGIT_ROWS};
use crate::nn::image::{FlattenChannelsLast, ToImage};
use crate::nn::pool::ConvPoolBuilder;

/// Length of the feature vector the Fréchet distance compares.
pub const FEATURES: usize = 128;
pub use crate::data::CLASSES;
/// Values the second block hands the dense layers: 4 x 4 positions x 32 channels.
const FLAT: usize = 4 * 4 * 32;

/// Pixels to the 128 features: everything but the last layer.
pub type Body = (
    ToImage<DIGIT_PIXELS, DIGIT_ROWS, DIGIT_COLS>,
    ConvPoolBuilder<1, 16, 5, 12, 12>,
    ConvPoolBuilder<16, 32, 5, 4, 4>,
    FlattenChannelsLast<FLAT>,
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
