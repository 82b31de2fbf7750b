//! The run's noise streams: standard normal values from a seeded ChaCha stream whose position
//! can be saved and restored, so a resumed run draws exactly the numbers it would have drawn.

use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;
use rand_distr::StandardNormal;

/// Which stream: each has its own ChaCha stream number under the run's seed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum NoiseKind {
    /// The generator's input at each training step.
    Train = 1,
    /// The noise the sample grid is drawn from.
    Samples = 2,
}

#[derive(Debug, Clone)]
pub struct NoiseStream {
    rng: ChaCha8Rng,
}

impl NoiseStream {
    pub fn new(seed: u64, kind: NoiseKind) -> Self {
        let mut rng = ChaCha8Rng::seed_from_u64(seed);
        rng.set_stream(kind as u64);
        NoiseStream { rng }
    }

    /// The noise for evaluation number `id` (an epoch, or a step for an evaluation on request):
    /// its own stream, so scoring never moves the training streams and a resumed run scores the
    /// same digits.
    pub fn for_evaluation(seed: u64, id: u64) -> Self {
        let mut rng = ChaCha8Rng::seed_from_u64(seed);
        rng.set_stream((1 << 32) | id);
        NoiseStream { rng }
    }

    /// Replaces `out`'s contents with `len` standard normal values.
    pub fn fill(&mut self, out: &mut Vec<f32>, len: usize) {
        out.clear();
        out.extend((0..len).map(|_| self.rng.sample::<f32, _>(StandardNormal)));
    }

    pub fn draw(&mut self, len: usize) -> Vec<f32> {
        let mut v = Vec::with_capacity(len);
        self.fill(&mut v, len);
        v
    }

    /// Where the stream stands, for a checkpoint.
    pub fn position(&self) -> u128 {
        self.rng.get_word_pos()
    }

    pub fn seek(&mut self, position: u128) {
        self.rng.set_word_pos(position);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_restored_position_continues_the_same_numbers() {
        let mut a = NoiseStream::new(5, NoiseKind::Train);
        a.draw(37);
        let pos = a.position();
        let next = a.draw(100);
        let mut b = NoiseStream::new(5, NoiseKind::Train);
        b.seek(pos);
        assert_eq!(b.draw(100), next);
    }

    #[test]
    fn streams_and_seeds_differ() {
        let a = NoiseStream::new(5, NoiseKind::Train).draw(8);
        assert_ne!(a, NoiseStream::new(5, NoiseKind::Samples).draw(8));
        assert_ne!(a, NoiseStream::new(6, NoiseKind::Train).draw(8));
        assert_eq!(a, NoiseStream::new(5, NoiseKind::Train).draw(8));
    }

    #[test]
    fn values_look_standard_normal() {
        let v = NoiseStream::new(1, NoiseKind::Train).draw(20_000);
        let mean = v.iter().map(|&x| x as f64).sum::<f64>() / v.len() as f64;
        let var = v.iter().map(|&x| (x as f64 - mean).powi(2)).sum::<f64>() / v.len() as f64;
        assert!(mean.abs() < 0.03, "mean {mean}");
        assert!((var - 1.0).abs() < 0.05, "variance {var}");
    }
}
