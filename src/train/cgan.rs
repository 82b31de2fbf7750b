//! The conditional preset: the DCGAN networks (`dcgan`) told which digit to draw. G takes the
//! noise vector joined to the digit as a one-hot vector (as Mirza and Osindero 2014 feed it); D
//! judges an image for a digit with a projection (Miyato and Koyama 2018): its logit is
//! `w . h(x) + b + e_y . h(x)`, `h(x)` its flattened features and `e_y` a learned vector per
//! digit, so it rejects fakes and real digits shown with the wrong label alike, and G learns to
//! draw the digit it is asked for.
//!
//! Fakes are drawn for the labels of the real batch they are shown beside. Without labels
//! (`generate(z, None, n)`), digit `i` of the `n` asked for is `i mod 10`, so a sample grid or a
//! scoring run sees every digit equally often.

use dfdx::nn::tensor_collection::{ModuleVisitor, TensorCollection, TensorOptions};
use dfdx::prelude::*;

use dfdx::tensor::Tape;

use super::bce_step::Taped;
use super::dcgan::{ConvDiscriminator, ConvGan, D_DENSE, DBatch, FeaturesOn, Images, batch_images};
use super::gan::{DeviceError, LATENT, Preset, check_len};
use crate::nn::conv::dcgan_normal;
use crate::nn::{Constant, Frozen, FrozenModule, Projection};

/// Digit classes, one-hot.
pub use crate::data::CLASSES;

/// The conditional discriminator: DCGAN's features, then a logit with a label projection. Saved
/// as PyTorch's `nn.Sequential` of the features and `Linear` (`0`, `2`, `3`, `6`) beside an
/// `nn.Embedding(10, 3136)` named `label_embedding`.
#[derive(Debug, Clone)]
pub struct ProjectionDiscriminator<E: Dtype = f32, D: Storage<E> = Cpu> {
    pub features: FeaturesOn<E, D>,
    pub head: Projection<D_DENSE, CLASSES, E, D>,
}

impl BuildOnDevice<Cpu, f32> for ProjectionDiscriminator {
    type Built = Self;
}

impl TensorCollection<f32, Cpu> for ProjectionDiscriminator {
    type To<E2: Dtype, D2: Device<E2>> = ProjectionDiscriminator<E2, D2>;

    fn iter_tensors<V: ModuleVisitor<Self, f32, Cpu>>(
        visitor: &mut V,
    ) -> Result<Option<Self::To<V::E2, V::D2>>, V::Err> {
        visitor.visit_fields(
            (
                Self::module("0", |s| &s.features.0, |s| &mut s.features.0),
                Self::module("2", |s| &s.features.1, |s| &mut s.features.1),
                Self::module("3", |s| &s.features.2, |s| &mut s.features.2),
                Self::tensor(
                    "6.weight",
                    |s| &s.head.weight,
                    |s| &mut s.head.weight,
                    TensorOptions::reset_with(dcgan_normal::<Rank2<1, D_DENSE>>),
                ),
                Self::tensor(
                    "6.bias",
                    |s| &s.head.bias,
                    |s| &mut s.head.bias,
                    TensorOptions::reset_to_zeros(),
                ),
                Self::tensor(
                    "label_embedding.weight",
                    |s| &s.head.embedding,
                    |s| &mut s.head.embedding,
                    TensorOptions::reset_with(dcgan_normal::<Rank2<CLASSES, D_DENSE>>),
                ),
            ),
            |(c14, c7, bn7, weight, bias, embedding)| ProjectionDiscriminator {
                features: (c14, c7, bn7),
                head: Projection {
                    weight,
                    bias,
                    embedding,
                },
            },
        )
    }
}

/// Each image's digit, as the projection reads it.
pub type Labels = Tensor<(usize,), usize, Cpu>;

/// Labels as the tensor the projection reads.
fn label_tensor(dev: &Cpu, labels: &[u8]) -> Result<Labels, CpuError> {
    let labels: Vec<usize> = labels.iter().map(|&l| usize::from(l)).collect();
    let n = labels.len();
    dev.try_tensor_from_vec(labels, (n,))
}

type Batch<T> = Tensor<(usize, Const<28>, Const<28>, Const<1>), f32, Cpu, T>;

/// The training pass: the features in training mode (real and fake halves apart), then the
/// projection.
impl<T: Tape<f32, Cpu>> ModuleMut<(Constant<Batch<T>>, Labels)> for ProjectionDiscriminator {
    type Output = Tensor<(usize, Const<1>), f32, Cpu, T>;
    type Error = CpuError;

    fn try_forward_mut(
        &mut self,
        (x, y): (Constant<Batch<T>>, Labels),
    ) -> Result<Self::Output, CpuError> {
        let h = self.features.try_forward_mut(x)?;
        self.head.try_forward((h, y))
    }
}

/// The pass of G's step: gradients for the images only.
impl<T: Tape<f32, Cpu>> FrozenModule<(Batch<T>, Labels)> for ProjectionDiscriminator {
    type Output = Tensor<(usize, Const<1>), f32, Cpu, T>;

    fn try_forward_frozen(&self, (x, y): (Batch<T>, Labels)) -> Result<Self::Output, CpuError> {
        let h = Frozen(&self.features).try_forward(x)?;
        Frozen(&self.head).try_forward((h, y))
    }
}

impl ConvDiscriminator for ProjectionDiscriminator {
    type Own = (Constant<Images<Taped>>, Labels);
    type Fake = (Images<Taped>, Labels);
    const PRESET: Preset = Preset::Cgan;
    const CONDITIONAL: bool = true;
    /// Its tensors already carry PyTorch's names (`0`, `2`, `3`, `6`, `label_embedding`).
    const LAYOUT: &'static [&'static str] = &["0", "1", "2", "3", "4", "5", "6"];
    /// G learns at four times the run's rate and D at a quarter of it, and samples come from
    /// an average over about the last hundred steps: with these (and the preset's cosine
    /// schedule), seed 1 reached fcd 17.0 after 3 epochs and 13.7 after 10, where equal rates,
    /// a thousand-step average and a constant rate reached 37.4 and 28.5 (README, Recipes).
    const LR_FACTORS: [f64; 2] = [4.0, 0.25];
    const EMA_DECAY: f32 = 0.99;

    fn build(dev: &Cpu) -> Self {
        dev.build_module::<ProjectionDiscriminator, f32>()
    }

    fn generator_input(
        z: &[f32],
        labels: Option<&[u8]>,
        count: usize,
    ) -> Result<Vec<f32>, DeviceError> {
        check_len(z, count, LATENT)?;
        let cycled: Vec<u8>;
        let labels = match labels {
            Some(l) => l,
            None => {
                cycled = (0..count).map(requested_label).collect();
                &cycled
            }
        };
        check_labels(labels, count)?;
        let mut out = Vec::with_capacity(count * (LATENT + CLASSES));
        join_one_hot(z, LATENT, labels, &mut out);
        Ok(out)
    }

    fn own(
        images: DBatch,
        labels: &[u8],
        dev: &Cpu,
        grads: Gradients<f32, Cpu>,
    ) -> Result<Self::Own, CpuError> {
        let y = label_tensor(dev, labels)?;
        Ok((batch_images(images, dev, grads)?, y))
    }

    fn fake(fake: Images<Taped>, labels: &[u8]) -> Result<Self::Fake, CpuError> {
        let y = label_tensor(fake.device(), labels)?;
        Ok((fake, y))
    }
}

/// The conditional model: the DCGAN with ten more generator inputs and the projection.
pub type Cgan = ConvGan<{ LATENT + CLASSES }, ProjectionDiscriminator>;

/// A conditional DCGAN with weights drawn from dfdx's stream seeded with `seed`.
pub fn new(seed: u64, lr: f64) -> Cgan {
    ConvGan::build(seed, lr)
}

/// The digit asked of a conditional generator for sample `i` when none is named: 0-9 in turn,
/// so every class gets the same share.
pub fn requested_label(i: usize) -> u8 {
    (i % CLASSES) as u8
}

/// Rows of `width` values from `data`, each followed by the one-hot vector of its label.
pub fn join_one_hot(data: &[f32], width: usize, labels: &[u8], out: &mut Vec<f32>) {
    out.clear();
    for (row, &label) in data.chunks_exact(width).zip(labels) {
        out.extend_from_slice(row);
        let at = out.len();
        out.resize(at + CLASSES, 0.0);
        out[at + usize::from(label)] = 1.0;
    }
}

/// Checks that `labels` holds `count` digits 0-9.
pub fn check_labels(labels: &[u8], count: usize) -> Result<(), DeviceError> {
    if labels.len() != count {
        return Err(DeviceError(format!(
            "expected {count} labels, got {}",
            labels.len()
        )));
    }
    match labels.iter().find(|&&l| usize::from(l) >= CLASSES) {
        Some(l) => Err(DeviceError(format!("label {l} is not a digit 0-9"))),
        None => Ok(()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::train::gan::Gan;
    use crate::train::gan::IMAGE;
    use crate::train::noise::{NoiseKind, NoiseStream};
    use crate::train::testing;

    #[test]
    fn one_hot_rows_follow_their_data() {
        let mut out = Vec::new();
        join_one_hot(&[1.0, 2.0, 3.0, 4.0], 2, &[0, 9], &mut out);
        let mut want = vec![1.0, 2.0, 1.0];
        want.extend([0.0; 9]);
        want.extend([3.0, 4.0]);
        want.extend([0.0; 9]);
        want.push(1.0);
        assert_eq!(out, want);
        let labels: Vec<u8> = (0..23).map(requested_label).collect();
        assert_eq!(&labels[..12], &[0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 0, 1]);
    }

    #[test]
    fn the_label_changes_the_digit_and_none_cycles_through_them() {
        let gan = new(1, 2e-4);
        assert!(gan.is_conditional());
        let z1 = NoiseStream::new(1, NoiseKind::Samples).draw(LATENT);
        let z: Vec<f32> = z1.iter().chain(&z1).copied().collect();
        let two = gan.generate(&z, Some(&[3, 7]), 2).unwrap();
        assert_ne!(two[..IMAGE], two[IMAGE..]);
        let cycled = gan.generate(&z, None, 2).unwrap();
        assert_eq!(cycled, gan.generate(&z, Some(&[0, 1]), 2).unwrap());
        let err = gan.generate(&z, Some(&[3, 10]), 2).unwrap_err();
        assert!(err.to_string().contains("label 10"), "{err}");
        let err = gan.generate(&z, Some(&[3]), 2).unwrap_err();
        assert!(err.to_string().contains("expected 2 labels"), "{err}");
    }

    #[test]
    fn one_thread_or_two_take_the_same_steps() {
        testing::assert_threads_change_nothing(|| Box::new(new(4, 2e-4)));
    }

    #[test]
    fn a_restored_state_continues_identically() {
        testing::assert_resumes_identically(Box::new(new(5, 2e-4)), Box::new(new(99, 2e-4)), 2, 16);
    }

    #[test]
    fn a_damaged_state_changes_nothing() {
        testing::assert_damaged_states_change_nothing(Box::new(new(2, 2e-4)));
    }

    #[test]
    fn a_state_from_before_the_dfdx_port_loads() {
        // Every tensor name and shape the hand-written engine saved, from its test of them.
        let state = new(1, 2e-4).state();
        let names: Vec<&str> = state.tensors.iter().map(|t| t.name.as_str()).collect();
        for name in [
            "model.0.bias",
            "model.2.running_mean",
            "model.5.bias",
            "model.7.weight",
            "discriminator.model.0.bias",
            "discriminator.model.3.running_var",
            "discriminator.model.6.bias",
            "discriminator.model.label_embedding.weight",
            "ema.model.4.weight",
            "optimizer.discriminator.exp_avg_sq.discriminator.model.label_embedding.weight",
            "optimizer.generator.exp_avg.model.0.weight",
        ] {
            assert!(names.contains(&name), "{name} in {names:?}");
        }
        // G: 14 tensors (10 trainable), D: 11 (9 trainable), G's average: 14, and two moments
        // per trainable tensor: as many as the hand-written engine saved.
        assert_eq!(state.tensors.len(), 14 + 11 + 14 + 2 * (10 + 9));
    }

    #[test]
    fn the_projection_is_saved_with_the_discriminator() {
        let state = new(1, 2e-4).state();
        let e = state
            .tensors
            .iter()
            .find(|t| t.name == "discriminator.model.label_embedding.weight")
            .unwrap();
        assert_eq!(e.shape, [CLASSES, 7 * 7 * 64]);
        let g = state
            .tensors
            .iter()
            .find(|t| t.name == "model.0.weight")
            .unwrap();
        assert_eq!(g.shape, [7 * 7 * 64, LATENT + CLASSES]);
    }
}
