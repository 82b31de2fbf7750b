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

use super::dcgan::{ConvGan, LATENT};
use super::gan::DeviceError;
use crate::config::Preset;

/// Digit classes, one-hot.
pub use crate::data::CLASSES;

/// The conditional model: the DCGAN with ten more generator inputs.
pub type Cgan = ConvGan<{ LATENT + CLASSES }>;

/// A conditional DCGAN with weights drawn from dfdx's stream seeded with `seed`.
pub fn new(seed: u64, lr: f64) -> Cgan {
    ConvGan::build(Preset::Cgan, seed, lr)
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
    use crate::train::testing::{self, share_told_apart};

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
    fn discriminator_learns() {
        let mut gan = new(1, 2e-4);
        let losses = testing::train(&mut gan, 12, 32, 1);
        assert!(share_told_apart(&losses, 4) > 0.9, "{losses:?}");
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
