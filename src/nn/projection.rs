//! A conditional discriminator's head with a label projection (Miyato and Koyama 2018): the
//! logit for features `h` shown with label `y` is `w . h + b + e_y . h`, `e_y` a learned vector
//! per class, as one dfdx custom op over the features and the labels.

use dfdx::nn::tensor_collection::{ModuleVisitor, TensorCollection, TensorOptions};
use dfdx::prelude::*;
use dfdx::tensor::Tape;

use super::conv::{Wants, dcgan_normal};
use super::frozen::FrozenModule;
use super::image::transpose_rows;
use super::kernels;
use super::ops::{self, put_grad, take_grad};
use super::profile::{self, OpKind, Pass};

/// `N` features and `CLASSES` labels to one logit per row.
#[derive(Debug, Clone)]
pub struct Projection<const N: usize, const CLASSES: usize, E: Dtype = f32, D: Storage<E> = Cpu> {
    /// `w`, as PyTorch's `Linear(N, 1).weight`.
    pub weight: Tensor<Rank2<1, N>, E, D>,
    pub bias: Tensor<Rank1<1>, E, D>,
    /// `e_y` for each class, as PyTorch's `Embedding(CLASSES, N).weight`.
    pub embedding: Tensor<Rank2<CLASSES, N>, E, D>,
}

impl<const N: usize, const CLASSES: usize> BuildOnDevice<Cpu, f32> for Projection<N, CLASSES> {
    type Built = Self;
}

impl<const N: usize, const CLASSES: usize> TensorCollection<f32, Cpu> for Projection<N, CLASSES> {
    type To<E2: Dtype, D2: Device<E2>> = Projection<N, CLASSES, E2, D2>;

    fn iter_tensors<V: ModuleVisitor<Self, f32, Cpu>>(
        visitor: &mut V,
    ) -> Result<Option<Self::To<V::E2, V::D2>>, V::Err> {
        visitor.visit_fields(
            (
                Self::tensor(
                    "weight",
                    |s| &s.weight,
                    |s| &mut s.weight,
                    TensorOptions::reset_with(dcgan_normal::<Rank2<1, N>>),
                ),
                Self::tensor(
                    "bias",
                    |s| &s.bias,
                    |s| &mut s.bias,
                    TensorOptions::reset_to_zeros(),
                ),
                Self::tensor(
                    "embedding",
                    |s| &s.embedding,
                    |s| &mut s.embedding,
                    TensorOptions::reset_with(dcgan_normal::<Rank2<CLASSES, N>>),
                ),
            ),
            |(weight, bias, embedding)| Projection {
                weight,
                bias,
                embedding,
            },
        )
    }
}

/// Features with the tape, and the label of each row.
pub type Labelled<B, const N: usize, T> =
    (Tensor<(B, Const<N>), f32, Cpu, T>, Tensor<(B,), usize, Cpu>);

/// Channels-last images (batch, side, side, channels) with the tape, and the label of each:
/// their features are the images flattened channels-first, as PyTorch's `Flatten` of its
/// (channels, side, side) images gives them.
pub type LabelledImages<B, const H: usize, const C: usize, T> = (
    Tensor<(B, Const<H>, Const<H>, Const<C>), f32, Cpu, T>,
    Tensor<(B,), usize, Cpu>,
);

/// How a row's values hold its features: in order, or as a channels-last image of `pixels`
/// positions whose feature `c * pixels + p` (channel `c` at position `p`, channels-first) is
/// value `p * channels + c`.
#[derive(Debug, Clone, Copy)]
enum FeatureOrder {
    InPlace,
    ChannelsLast { pixels: usize, channels: usize },
}

impl<const N: usize, const CLASSES: usize> Projection<N, CLASSES> {
    /// The forward pass on rows of features; the backward pass adds the gradients `wants` asks
    /// for.
    pub fn forward_op<B: Dim, T: Tape<f32, Cpu>>(
        &self,
        (h, labels): Labelled<B, N, T>,
        wants: Wants,
    ) -> Result<Tensor<(B, Const<1>), f32, Cpu, T>, CpuError> {
        let rows = h.shape().0;
        self.op(h, rows, labels, FeatureOrder::InPlace, wants)
    }

    /// `forward_op` on channels-last images, flattened channels-first as it reads them (no
    /// `Flatten` op, its copies and gradient buffer in between): the same sums in the same
    /// order.
    pub fn forward_images_op<B: Dim, const H: usize, const C: usize, T: Tape<f32, Cpu>>(
        &self,
        (x, labels): LabelledImages<B, H, C, T>,
        wants: Wants,
    ) -> Result<Tensor<(B, Const<1>), f32, Cpu, T>, CpuError> {
        const {
            assert!(
                H * H * C == N,
                "Projection: images of H x H x C must have N values"
            )
        };
        let rows = x.shape().0;
        let order = FeatureOrder::ChannelsLast {
            pixels: H * H,
            channels: C,
        };
        self.op(x, rows, labels, order, wants)
    }

    /// The op on `h`, `rows` rows of `N` values whose features lie in `order`. The weight and
    /// the embedding are laid out as the features are (an exact reordering), so the features
    /// are read in place and no copy of them is made.
    fn op<S: Shape, B: Dim, T: Tape<f32, Cpu>>(
        &self,
        h: Tensor<S, f32, Cpu, T>,
        rows: B,
        labels: Tensor<(B,), usize, Cpu>,
        order: FeatureOrder,
        wants: Wants,
    ) -> Result<Tensor<(B, Const<1>), f32, Cpu, T>, CpuError> {
        profile::timed(OpKind::Projection, Pass::Forward, || {
            let labels = labels.as_vec();
            if labels.iter().any(|&y| y >= CLASSES) {
                return Err(CpuError::WrongNumElements);
            }
            let (hv, h, mut tape) = ops::take_input_shared(h)?;
            if hv.len() != rows.size() * N {
                return Err(CpuError::WrongNumElements);
            }
            let b = ops::read(&self.bias)?;
            let w = order.features_order(ops::read(&self.weight)?);
            let e = order.features_order(ops::read(&self.embedding)?);
            let mut logits = vec![0.0; rows.size()];
            kernels::projection_logits(&hv, &w, &e, &labels, b[0], &mut logits);
            let out = ops::made(h.device(), logits, (rows, Const::<1>))?;
            if T::OWNS_TAPE {
                let (h_ghost, out_ghost) = (h.ghost(), out.ghost());
                let (w_ghost, b_ghost, e_ghost) = (
                    self.weight.ghost(),
                    self.bias.ghost(),
                    self.embedding.ghost(),
                );
                tape.add_backward_op(move |grads| {
                    profile::timed(OpKind::Projection, Pass::Backward, || {
                        let dl: Vec<f32> = take_grad!(grads, out_ghost);
                        if wants.input {
                            let mut dh: Vec<f32> = take_grad!(grads, h_ghost);
                            kernels::projection_input_grad(&dl, &labels, &w, &e, &mut dh);
                            put_grad!(grads, h_ghost, dh);
                        }
                        if wants.params {
                            // Added to in the features' order, then put back in PyTorch's.
                            let mut dw = order.features_order(take_grad!(grads, w_ghost));
                            let mut de = order.features_order(take_grad!(grads, e_ghost));
                            kernels::projection_param_grads(&dl, &labels, &hv, &mut dw, &mut de);
                            put_grad!(grads, w_ghost, order.pytorch_order(dw));
                            put_grad!(grads, e_ghost, order.pytorch_order(de));
                            grads.get_or_alloc_mut(&b_ghost)?[0] += dl.iter().sum::<f32>();
                        }
                        ops::recycle_shared(hv);
                        put_grad!(grads, out_ghost, dl);
                        Ok(())
                    })
                });
            }
            Ok(out.put_tape(tape))
        })
    }
}

impl FeatureOrder {
    /// Rows of `N` values in PyTorch's (channels-first) order, reordered as the features lie.
    fn features_order(self, rows: Vec<f32>) -> Vec<f32> {
        match self {
            FeatureOrder::InPlace => rows,
            FeatureOrder::ChannelsLast { pixels, channels } => {
                transpose_rows(&rows, channels, pixels)
            }
        }
    }

    /// The inverse of `features_order`.
    fn pytorch_order(self, rows: Vec<f32>) -> Vec<f32> {
        match self {
            FeatureOrder::InPlace => rows,
            FeatureOrder::ChannelsLast { pixels, channels } => {
                transpose_rows(&rows, pixels, channels)
            }
        }
    }
}

impl<const N: usize, const CLASSES: usize, B: Dim, T: Tape<f32, Cpu>> Module<Labelled<B, N, T>>
    for Projection<N, CLASSES>
{
    type Output = Tensor<(B, Const<1>), f32, Cpu, T>;
    type Error = CpuError;

    fn try_forward(&self, x: Labelled<B, N, T>) -> Result<Self::Output, CpuError> {
        self.forward_op(x, Wants::ALL)
    }
}

impl<const N: usize, const CLASSES: usize, B: Dim, const H: usize, const C: usize, T>
    Module<LabelledImages<B, H, C, T>> for Projection<N, CLASSES>
where
    T: Tape<f32, Cpu>,
{
    type Output = Tensor<(B, Const<1>), f32, Cpu, T>;
    type Error = CpuError;

    fn try_forward(&self, x: LabelledImages<B, H, C, T>) -> Result<Self::Output, CpuError> {
        self.forward_images_op(x, Wants::ALL)
    }
}

impl<const N: usize, const CLASSES: usize> NonMutableModule for Projection<N, CLASSES> {}

impl<const N: usize, const CLASSES: usize, B: Dim, const H: usize, const C: usize, T>
    FrozenModule<LabelledImages<B, H, C, T>> for Projection<N, CLASSES>
where
    T: Tape<f32, Cpu>,
{
    type Output = Tensor<(B, Const<1>), f32, Cpu, T>;

    fn try_forward_frozen(&self, x: LabelledImages<B, H, C, T>) -> Result<Self::Output, CpuError> {
        self.forward_images_op(x, Wants::INPUT)
    }
}

impl<const N: usize, const CLASSES: usize, B: Dim, T: Tape<f32, Cpu>>
    FrozenModule<Labelled<B, N, T>> for Projection<N, CLASSES>
{
    type Output = Tensor<(B, Const<1>), f32, Cpu, T>;

    fn try_forward_frozen(&self, x: Labelled<B, N, T>) -> Result<Self::Output, CpuError> {
        self.forward_op(x, Wants::INPUT)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Against dfdx's own ops: `sum(h * (w + one_hot(y) E), axis 1) + b`, values and gradients.
    #[test]
    fn matches_dfdx_ops_and_their_gradients() {
        let dev = Cpu::seed_from_u64(4);
        let mut p = dev.build_module::<Projection<5, 3>, f32>();
        // Sizes that matter beside each other.
        p.embedding = dev.sample_normal();
        p.bias = dev.tensor([0.3]);
        let h: Tensor<Rank2<4, 5>, f32, Cpu> = dev.sample_normal();
        let labels = [2usize, 0, 2, 1];
        let y = dev.tensor_from_vec(labels.to_vec(), (Const::<4>,));
        let r: Tensor<Rank2<4, 1>, f32, Cpu> = dev.sample_normal();
        let ours = p.try_forward((h.leaky_trace(), y.clone())).unwrap();
        let ours_v = ours.as_vec();
        let g = (ours * r.clone()).sum().backward();

        let mut one_hot = vec![0.0f32; 12];
        for (i, &l) in labels.iter().enumerate() {
            one_hot[i * 3 + l] = 1.0;
        }
        let one_hot = dev.tensor_from_vec(one_hot, (Const::<4>, Const::<3>));
        let hd = h.leaky_trace();
        let w = p.weight.leaky_trace().reshape::<Rank1<5>>();
        let we = one_hot.leaky_trace().matmul(p.embedding.leaky_trace())
            + w.broadcast::<Rank2<4, 5>, _>();
        let b = p
            .bias
            .leaky_trace()
            .reshape::<Rank0>()
            .broadcast::<Rank1<4>, _>();
        let theirs = (hd * we).sum::<Rank1<4>, _>() + b;
        let theirs_v = theirs.as_vec();
        let gt = (theirs.reshape::<Rank2<4, 1>>() * r).sum().backward();
        let close = |a: Vec<f32>, b: Vec<f32>, what: &str| {
            for (x, y) in a.iter().zip(&b) {
                assert!((x - y).abs() < 1e-5, "{what}: {a:?} vs {b:?}");
            }
        };
        close(ours_v, theirs_v, "logits");
        close(g.get(&h).as_vec(), gt.get(&h).as_vec(), "features");
        close(
            g.get(&p.weight).as_vec(),
            gt.get(&p.weight).as_vec(),
            "weight",
        );
        close(g.get(&p.bias).as_vec(), gt.get(&p.bias).as_vec(), "bias");
        let ge = g.get(&p.embedding).as_vec();
        close(ge.clone(), gt.get(&p.embedding).as_vec(), "embedding");

        // Frozen: the same feature gradient, nothing for the parameters.
        let frozen = p.try_forward_frozen((h.leaky_trace(), y.clone())).unwrap();
        let rr: Tensor<Rank2<4, 1>, f32, Cpu> = dev.sample_normal();
        let gf = (frozen * rr.clone()).sum().backward();
        let gu = (p.try_forward((h.leaky_trace(), y.clone())).unwrap() * rr)
            .sum()
            .backward();
        assert_eq!(gf.get(&h).as_vec(), gu.get(&h).as_vec());

        // A label out of range is an error, not a panic.
        let bad = dev.tensor_from_vec(vec![0usize, 1, 3, 0], (Const::<4>,));
        assert!(p.try_forward((h, bad)).is_err());
    }

    /// On channels-last images it is `Flatten` then the projection: every gradient bit for bit,
    /// the logits up to rounding (each sums its products in the order the values lie).
    #[test]
    fn reads_images_as_flatten_would_give_them() {
        use crate::nn::Flatten;
        let dev = Cpu::seed_from_u64(9);
        // 3 x 3 images of 2 channels: 18 features.
        let p = dev.build_module::<Projection<18, 3>, f32>();
        let x: Tensor<Rank4<5, 3, 3, 2>, f32, Cpu> = dev.sample_normal();
        let y = dev.tensor_from_vec(vec![2usize, 0, 1, 1, 2], (Const::<5>,));
        let r: Tensor<Rank2<5, 1>, f32, Cpu> = dev.sample_normal();

        let direct = p.try_forward((x.leaky_trace(), y.clone())).unwrap();
        let direct_v = direct.as_vec();
        let g = (direct * r.clone()).sum().backward();
        let flat = Flatten::<18, 2, 3>.try_forward(x.leaky_trace()).unwrap();
        let via = p.try_forward((flat, y.clone())).unwrap();
        for (a, b) in direct_v.iter().zip(via.as_vec()) {
            assert!(
                (a - b).abs() <= 1e-6 * (1.0 + b.abs()),
                "logits: {a} vs {b}"
            );
        }
        let gv = (via * r.clone()).sum().backward();
        assert_eq!(g.get(&x).as_vec(), gv.get(&x).as_vec(), "images");
        assert_eq!(g.get(&p.weight).as_vec(), gv.get(&p.weight).as_vec());
        assert_eq!(g.get(&p.bias).as_vec(), gv.get(&p.bias).as_vec());
        assert_eq!(g.get(&p.embedding).as_vec(), gv.get(&p.embedding).as_vec());

        let frozen = p.try_forward_frozen((x.leaky_trace(), y)).unwrap();
        let gf = (frozen * r).sum().backward();
        assert_eq!(
            gf.get(&x).as_vec(),
            g.get(&x).as_vec(),
            "frozen: the same image gradient"
        );
    }
}
