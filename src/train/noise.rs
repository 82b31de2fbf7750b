//! The run's noise streams: standard normal values from a seeded ChaCha stream whose position
//! can be saved and restored, so a resumed run draws exactly the numbers it would have drawn.

use rand::{Rng, RngCore, SeedableRng};
use rand_chacha::ChaCha8Rng;
use rand_distr::StandardNormal;

use crate::nn::dropout::MaskWords;

/// Which stream: each has its own ChaCha stream number under the run's seed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum NoiseKind {
    /// The generator's input at each training step.
    Train = 1,
    /// The noise the sample grid is drawn from.
    Samples = 2,
    /// Dropout masks a recipe draws in its training step.
    Dropout = 3,
    /// The interpolation weights of a gradient penalty.
    Penalty = 4,
    /// The two noise vectors the dashboard's morph probe moves between.
    Probe = 5,
}

#[derive(Debug, Clone)]
pub struct NoiseStream {
    rng: ChaCha8Rng,
    seed: u64,
}

impl NoiseStream {
    pub fn new(seed: u64, kind: NoiseKind) -> Self {
        let mut rng = ChaCha8Rng::seed_from_u64(seed);
        rng.set_stream(kind as u64);
        NoiseStream { rng, seed }
    }

    /// The noise for evaluation number `id` (an epoch, or a step for an evaluation on request):
    /// its own stream, so scoring never moves the training streams and a resumed run scores the
    /// same digits.
    pub fn for_evaluation(seed: u64, id: u64) -> Self {
        let mut rng = ChaCha8Rng::seed_from_u64(seed);
        rng.set_stream((1 << 32) | id);
        NoiseStream { rng, seed }
    }

    /// Replaces `out`'s contents with `len` standard normal values.
    pub fn fill(&mut self, out: &mut Vec<f32>, len: usize) {
        out.clear();
        out.extend((0..len).map(|_| self.rng.sample::<f32, _>(StandardNormal)));
    }

    /// Replaces `out`'s contents with `len` uniform values in [0, 1).
    pub fn fill_uniform(&mut self, out: &mut Vec<f32>, len: usize) {
        out.clear();
        out.extend((0..len).map(|_| self.rng.r#gen::<f32>()));
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

    /// The stream as checkpoint counters: `{name}.seed`, and its position as `{name}.pos_lo`
    /// and `{name}.pos_hi` (counters are u64; a ChaCha word position needs up to 68 bits).
    pub fn counters(&self, name: &str) -> [(String, u64); 3] {
        let pos = self.position();
        [
            (format!("{name}.seed"), self.seed),
            (format!("{name}.pos_lo"), pos as u64),
            (format!("{name}.pos_hi"), (pos >> 64) as u64),
        ]
    }

    /// The stream of `kind` that `counters` wrote under `name`, at its saved position, or the
    /// name of the missing counter.
    pub fn from_counters(
        counters: &std::collections::BTreeMap<String, u64>,
        name: &str,
        kind: NoiseKind,
    ) -> Result<NoiseStream, String> {
        let get = |part: &str| {
            let key = format!("{name}.{part}");
            counters.get(&key).copied().ok_or(key)
        };
        let (seed, lo, hi) = (get("seed")?, get("pos_lo")?, get("pos_hi")?);
        let mut stream = NoiseStream::new(seed, kind);
        stream.seek(u128::from(hi) << 64 | u128::from(lo));
        Ok(stream)
    }
}

/// Dropout layers draw their masks from the run's `Dropout` stream: one stream word a value.
impl MaskWords for NoiseStream {
    fn fill_words(&mut self, out: &mut Vec<u32>, len: usize) {
        out.clear();
        out.extend((0..len).map(|_| self.rng.next_u32()));
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
    fn uniforms_and_words_continue_from_a_restored_position() {
        let mut a = NoiseStream::new(9, NoiseKind::Dropout);
        let (mut u, mut w) = (Vec::new(), Vec::new());
        a.fill_uniform(&mut u, 5);
        let pos = a.position();
        a.fill_words(&mut w, 7);
        a.fill_uniform(&mut u, 3);
        let mut b = NoiseStream::new(9, NoiseKind::Dropout);
        b.seek(pos);
        let (mut u2, mut w2) = (Vec::new(), Vec::new());
        b.fill_words(&mut w2, 7);
        b.fill_uniform(&mut u2, 3);
        assert_eq!((w, u), (w2, u2));
        let many = NoiseStream::new(9, NoiseKind::Penalty).draw(0);
        assert!(many.is_empty());
        let mut c = NoiseStream::new(9, NoiseKind::Penalty);
        let mut u = Vec::new();
        c.fill_uniform(&mut u, 10_000);
        assert!(u.iter().all(|v| (0.0..1.0).contains(v)));
        let mean = u.iter().map(|&v| v as f64).sum::<f64>() / u.len() as f64;
        assert!((mean - 0.5).abs() < 0.02, "mean {mean}");
    }

    #[test]
    fn streams_round_trip_through_counters() {
        let mut a = NoiseStream::new(2, NoiseKind::Dropout);
        a.seek((7u128 << 64) | 12345);
        let counters = a.counters("rng.dropout").into_iter().collect();
        let mut b =
            NoiseStream::from_counters(&counters, "rng.dropout", NoiseKind::Dropout).unwrap();
        assert_eq!(b.position(), a.position());
        assert_eq!(b.draw(5), a.draw(5));
        assert_eq!(
            NoiseStream::from_counters(&counters, "rng.other", NoiseKind::Dropout).err(),
            Some("rng.other.seed".to_string())
        );
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
