//! The digit judge: a small MNIST classifier whose opinions score generated digits.
//!
//! From its class probabilities come the inception-style `score` and the class shares; from its
//! 128 penultimate features the Fréchet distance (`fcd`) to MNIST's test digits. The shipped
//! weights are compiled in (`Judge::builtin`); `train_judge` makes new ones reproducibly.

mod error;
pub mod frechet;
pub mod manifold;
pub mod net;
mod train;
mod weights;

use std::fmt;
use std::path::Path;

use dfdx::prelude::*;

use crate::data::{self, DIGIT_PIXELS, DigitSet, Split};

pub use error::JudgeError;
pub use frechet::{FrechetError, FrechetReference, GaussianStats, frechet_distance};
pub use net::{CLASSES, FEATURES};
pub use train::{TrainEvent, TrainSettings, Trained, train_judge};
pub use weights::JudgeInfo;

use net::Net;

/// The shipped weights, trained by `gan-tui judge train` with the default settings.
const BUILTIN: &[u8] = include_bytes!("../../data/judge.safetensors");
const BUILTIN_ORIGIN: &str = "the built-in judge weights";

/// Digits per forward pass. Measured: 50 to 100 are fastest; 500 is a third slower, its
/// activations (tens of megabytes) no longer fitting in cache.
const CHUNK: usize = 100;

/// A sample counts as recognised when the judge gives its top class more than this probability.
pub const RECOGNISED_ABOVE: f64 = 0.9;

/// The standard count for `real_floor`: as many training digits as there are test digits.
pub const FLOOR_DIGITS: usize = 10_000;

/// The trained classifier with the test digits' feature statistics ready for Fréchet distances.
#[derive(Debug, Clone)]
pub struct Judge {
    net: Net,
    reference: FrechetReference,
    info: JudgeInfo,
}

/// What the judge makes of a batch of digits.
#[derive(Debug, Clone, PartialEq)]
pub struct Classified {
    pub count: usize,
    /// `count` x 10 class probabilities, one row per digit.
    pub probabilities: Vec<f32>,
    /// `count` x 128 penultimate-layer features, one row per digit.
    pub features: Vec<f32>,
}

/// The judge's verdict on a batch of digits.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Scores {
    /// exp(mean KL(p(y|x) || p(y))): 10 when every digit is a confident, evenly spread class, 1
    /// when all look alike to the judge.
    pub score: f64,
    /// Squared Fréchet distance between the digits' features and the test digits' features.
    pub fcd: f64,
    /// Share of the digits the judge calls 0, 1, ..., 9. Mode collapse shows as a few large shares.
    pub class_shares: [f64; CLASSES],
    /// Share of the digits whose top class has probability above 0.9.
    pub recognised: f64,
    pub count: usize,
}

impl fmt::Display for Scores {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "score {:.3}  fcd {:.3}  recognised {:.1}%  of {} digits; classes",
            self.score,
            self.fcd,
            100.0 * self.recognised,
            self.count
        )?;
        for (digit, share) in self.class_shares.iter().enumerate() {
            write!(f, " {digit}:{:.1}%", 100.0 * share)?;
        }
        Ok(())
    }
}

impl Judge {
    /// The weights shipped inside the program.
    pub fn builtin() -> Result<Judge, JudgeError> {
        Judge::from_safetensors(BUILTIN, BUILTIN_ORIGIN)
    }

    /// Weights written by `gan-tui judge train`.
    pub fn load(path: &Path) -> Result<Judge, JudgeError> {
        let bytes = std::fs::read(path).map_err(|source| JudgeError::Read {
            path: path.to_path_buf(),
            source,
        })?;
        Judge::from_safetensors(&bytes, &path.display().to_string())
    }

    /// Parses weights file bytes; `origin` names them in errors.
    pub fn from_safetensors(bytes: &[u8], origin: &str) -> Result<Judge, JudgeError> {
        let file = weights::decode(bytes, origin)?;
        let reference =
            FrechetReference::new(file.test_stats).map_err(|e| JudgeError::BadStats {
                origin: origin.to_string(),
                reason: e.to_string(),
            })?;
        Ok(Judge {
            net: file.net,
            reference,
            info: file.info,
        })
    }

    pub fn to_safetensors(&self) -> Result<Vec<u8>, JudgeError> {
        weights::encode(&self.net, self.reference.stats(), &self.info)
    }

    /// Writes the weights to `path` atomically (temporary file, sync, rename).
    pub fn save(&self, path: &Path) -> Result<(), JudgeError> {
        let bytes = self.to_safetensors()?;
        crate::files::atomic::write(path, &bytes).map_err(|source| JudgeError::Write {
            path: path.to_path_buf(),
            source,
        })
    }

    /// How these weights were trained, and their test accuracy.
    pub fn info(&self) -> JudgeInfo {
        self.info
    }

    /// The test digits' feature statistics every `fcd` is measured against.
    pub fn test_stats(&self) -> &GaussianStats {
        self.reference.stats()
    }

    /// Wraps a freshly trained network: one pass over the test digits gives its accuracy and the
    /// reference statistics.
    fn from_net(net: Net, seed: u64, epochs: u32) -> Result<Judge, JudgeError> {
        let test = data::load(None, Split::Test)?;
        let (logits, features) = forward(&net, &all_pixels(&test)?)?;
        let stats = GaussianStats::from_rows(&features, FEATURES)
            .ok_or(JudgeError::TooFew { count: test.len() })?;
        Ok(Judge {
            net,
            reference: FrechetReference::new(stats)?,
            info: JudgeInfo {
                seed,
                epochs,
                test_accuracy: accuracy_of(&logits, &test.labels),
            },
        })
    }

    /// Class probabilities and features of `images`: n x 784 pixels in [-1, 1], as the generator
    /// makes them and `data::fill_batch` reads them.
    pub fn classify(&self, images: &[f32]) -> Result<Classified, JudgeError> {
        let (logits, features) = self.forward(images)?;
        let probabilities = logits
            .chunks_exact(CLASSES)
            .flat_map(|row| log_softmax(row).map(|l| l.exp() as f32))
            .collect();
        Ok(Classified {
            count: images.len() / DIGIT_PIXELS,
            probabilities,
            features,
        })
    }

    /// Score, Fréchet distance to the test digits, class shares and recognised share of `images`
    /// (n x 784 pixels in [-1, 1], n at least 2).
    pub fn scores(&self, images: &[f32]) -> Result<Scores, JudgeError> {
        let (logits, features) = self.forward(images)?;
        self.scores_of(&logits, &features)
    }

    /// `scores` and `classify` of `images` from one pass of the network.
    pub fn scores_and_classes(&self, images: &[f32]) -> Result<(Scores, Classified), JudgeError> {
        let (logits, features) = self.forward(images)?;
        let scores = self.scores_of(&logits, &features)?;
        let probabilities = logits
            .chunks_exact(CLASSES)
            .flat_map(|row| log_softmax(row).map(|l| l.exp() as f32))
            .collect();
        let classified = Classified {
            count: scores.count,
            probabilities,
            features,
        };
        Ok((scores, classified))
    }

    /// The first `count` digits of `split` (all of them if it has fewer) as `scores_and_classes`
    /// sees them, with their labels.
    pub fn real_digits(
        &self,
        split: Split,
        count: usize,
    ) -> Result<(Scores, Classified, Vec<u8>), JudgeError> {
        let set = data::load(None, split)?.take(count);
        let (scores, classified) = self.scores_and_classes(&all_pixels(&set)?)?;
        Ok((scores, classified, set.labels))
    }

    fn scores_of(&self, logits: &[f32], features: &[f32]) -> Result<Scores, JudgeError> {
        let count = logits.len() / CLASSES;
        let stats =
            GaussianStats::from_rows(features, FEATURES).ok_or(JudgeError::TooFew { count })?;
        let fcd = self.reference.distance(&stats)?;
        let log_probs: Vec<[f64; CLASSES]> =
            logits.chunks_exact(CLASSES).map(log_softmax).collect();
        let n = count as f64;
        let mut marginal = [0.0f64; CLASSES];
        let mut class_shares = [0.0f64; CLASSES];
        let mut recognised = 0usize;
        for row in &log_probs {
            let mut top = 0;
            for (y, &l) in row.iter().enumerate() {
                marginal[y] += l.exp() / n;
                if l > row[top] {
                    top = y;
                }
            }
            class_shares[top] += 1.0 / n;
            if row[top].exp() > RECOGNISED_ABOVE {
                recognised += 1;
            }
        }
        let log_marginal = marginal.map(f64::ln);
        let mean_kl = log_probs
            .iter()
            .map(|row| {
                row.iter()
                    .zip(&log_marginal)
                    .map(|(&l, &m)| {
                        let p = l.exp();
                        // 0 log 0 is 0; skipping such terms also keeps -inf out of the sum.
                        if p > 0.0 { p * (l - m) } else { 0.0 }
                    })
                    .sum::<f64>()
            })
            .sum::<f64>()
            / n;
        Ok(Scores {
            score: mean_kl.exp(),
            fcd,
            class_shares,
            recognised: recognised as f64 / n,
            count,
        })
    }

    /// Share of `set`'s digits classified as their label.
    pub fn accuracy(&self, set: &DigitSet) -> Result<f32, JudgeError> {
        accuracy_with(&self.net, set)
    }

    /// The scores of real digits: the first `count` training digits (at most 60,000), which the
    /// test digits' statistics were not made from. Their `fcd` is the floor a perfect generator
    /// would reach with as many samples; the Fréchet distance of a finite sample is biased upwards,
    /// more so the smaller it is, so compare generated digits with the floor of the same count
    /// (`FLOOR_DIGITS` is the standard one).
    pub fn real_floor(&self, count: usize) -> Result<Scores, JudgeError> {
        let train = data::load(None, Split::Train)?.take(count);
        self.scores(&all_pixels(&train)?)
    }

    fn forward(&self, images: &[f32]) -> Result<(Vec<f32>, Vec<f32>), JudgeError> {
        forward(&self.net, images)
    }
}

/// Logits and features of `images`, a chunk at a time.
fn forward(net: &Net, images: &[f32]) -> Result<(Vec<f32>, Vec<f32>), JudgeError> {
    if !images.len().is_multiple_of(DIGIT_PIXELS) {
        return Err(JudgeError::BadImageLength { len: images.len() });
    }
    // A diverged generator makes NaNs; they would poison every statistic downstream.
    if let Some((index, &value)) = images.iter().enumerate().find(|(_, v)| !v.is_finite()) {
        return Err(JudgeError::NotFinite { index, value });
    }
    let count = images.len() / DIGIT_PIXELS;
    let mut logits = Vec::with_capacity(count * CLASSES);
    let mut features = Vec::with_capacity(count * FEATURES);
    for chunk in images.chunks(CHUNK * DIGIT_PIXELS) {
        let n = chunk.len() / DIGIT_PIXELS;
        let x = net
            .dev
            .try_tensor_from_vec(chunk.to_vec(), (n, Const::<DIGIT_PIXELS>))?;
        let f = net.body.try_forward(x)?;
        let l = net.head.try_forward(f.clone())?;
        features.extend(f.as_vec());
        logits.extend(l.as_vec());
    }
    Ok((logits, features))
}

/// Share of `set`'s digits `net` classifies as their label.
fn accuracy_with(net: &Net, set: &DigitSet) -> Result<f32, JudgeError> {
    let (logits, _) = forward(net, &all_pixels(set)?)?;
    Ok(accuracy_of(&logits, &set.labels))
}

/// Log-probabilities from one row of logits, in f64 so tiny probabilities keep their logarithm.
fn log_softmax(logits: &[f32]) -> [f64; CLASSES] {
    let mut out = [0.0f64; CLASSES];
    for (o, &l) in out.iter_mut().zip(logits) {
        *o = f64::from(l);
    }
    let max = out.iter().copied().fold(f64::NEG_INFINITY, f64::max);
    let log_sum = out.iter().map(|l| (l - max).exp()).sum::<f64>().ln() + max;
    out.map(|l| l - log_sum)
}

/// Share of rows (logits or probabilities, 10 per digit) whose top class is the label.
fn accuracy_of(rows: &[f32], labels: &[u8]) -> f32 {
    if labels.is_empty() {
        return 0.0;
    }
    let correct = rows
        .chunks_exact(CLASSES)
        .zip(labels)
        .filter(|(row, label)| argmax(row) == usize::from(**label))
        .count();
    correct as f32 / labels.len() as f32
}

fn argmax(row: &[f32]) -> usize {
    let mut top = 0;
    for (i, &v) in row.iter().enumerate() {
        if v > row[top] {
            top = i;
        }
    }
    top
}

/// Every digit of `set` as pixels in [-1, 1].
fn all_pixels(set: &DigitSet) -> Result<Vec<f32>, JudgeError> {
    let indices: Vec<u32> = (0..u32::try_from(set.len()).unwrap_or(u32::MAX)).collect();
    let mut out = Vec::new();
    data::fill_batch(set, &indices, &mut out)?;
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::OnceLock;

    fn judge() -> &'static Judge {
        static JUDGE: OnceLock<Judge> = OnceLock::new();
        JUDGE.get_or_init(|| Judge::builtin().unwrap())
    }

    fn test_set() -> &'static DigitSet {
        static SET: OnceLock<DigitSet> = OnceLock::new();
        SET.get_or_init(|| data::load(None, Split::Test).unwrap())
    }

    /// The test digits' scores, worked out once for the tests that need them.
    fn test_scores() -> &'static Scores {
        static SCORES: OnceLock<Scores> = OnceLock::new();
        SCORES.get_or_init(|| judge().scores(&all_pixels(test_set()).unwrap()).unwrap())
    }

    fn floor() -> &'static Scores {
        static SCORES: OnceLock<Scores> = OnceLock::new();
        SCORES.get_or_init(|| judge().real_floor(FLOOR_DIGITS).unwrap())
    }

    #[test]
    fn the_judge_can_move_to_another_thread() {
        fn send<T: Send + Sync>() {}
        send::<Judge>();
    }

    #[test]
    fn the_builtin_judge_is_accurate_on_the_test_digits() {
        let accuracy = judge().accuracy(test_set()).unwrap();
        assert!(accuracy >= 0.985, "test accuracy {accuracy}");
        // The figure stored with the weights is the one measured here.
        assert!((accuracy - judge().info().test_accuracy).abs() < 1e-6);
    }

    #[test]
    fn test_digits_score_near_ten_at_distance_zero() {
        let s = test_scores();
        assert_eq!(s.count, 10_000);
        assert!(s.score > 9.0 && s.score <= 10.0, "{s}");
        // The reference statistics were made from exactly these features.
        assert!(s.fcd < 1e-3, "{s}");
        assert!(s.recognised > 0.9, "{s}");
        for share in s.class_shares {
            assert!((0.08..0.12).contains(&share), "{s}");
        }
        assert!((s.class_shares.iter().sum::<f64>() - 1.0).abs() < 1e-9);
    }

    #[test]
    fn training_digits_set_a_low_floor() {
        let f = floor();
        assert_eq!(f.count, FLOOR_DIGITS);
        assert!(f.score > 9.0, "{f}");
        // Small beside the spread of the features themselves (the trace of their covariance).
        let spread = judge().test_stats().cov.trace();
        assert!(
            f.fcd > test_scores().fcd && f.fcd < 0.01 * spread,
            "{f}, spread {spread}"
        );
    }

    #[test]
    fn uniform_noise_scores_near_one_far_away() {
        use rand::{Rng, SeedableRng};
        let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(1);
        let noise: Vec<f32> = (0..2_000 * DIGIT_PIXELS)
            .map(|_| rng.gen_range(-1.0f32..=1.0))
            .collect();
        let s = judge().scores(&noise).unwrap();
        assert!(s.score < 1.5, "{s}");
        assert!(
            s.fcd > 100.0 * floor().fcd,
            "{s} against the floor {}",
            floor().fcd
        );
        // Noise is one thing to the judge: a single class takes most of it.
        assert!(
            s.class_shares.iter().copied().fold(0.0, f64::max) > 0.5,
            "{s}"
        );
    }

    #[test]
    fn one_digit_class_scores_near_one_with_its_share_near_one() {
        let set = test_set();
        let sevens: Vec<u32> = (0..set.len() as u32)
            .filter(|&i| set.label(i as usize) == Some(7))
            .collect();
        let mut pixels = Vec::new();
        data::fill_batch(set, &sevens, &mut pixels).unwrap();
        let s = judge().scores(&pixels).unwrap();
        assert!(s.score < 1.3, "{s}");
        assert!(s.class_shares[7] > 0.95, "{s}");
        assert!(s.fcd > 10.0 * floor().fcd, "{s}");
    }

    #[test]
    fn classify_gives_probabilities_and_features_per_digit() {
        let indices: Vec<u32> = (0..7).collect();
        let mut pixels = Vec::new();
        data::fill_batch(test_set(), &indices, &mut pixels).unwrap();
        let c = judge().classify(&pixels).unwrap();
        assert_eq!(c.count, 7);
        assert_eq!(c.features.len(), 7 * FEATURES);
        for (row, label) in c
            .probabilities
            .chunks_exact(CLASSES)
            .zip(&test_set().labels)
        {
            assert!((row.iter().sum::<f32>() - 1.0).abs() < 1e-5);
            assert_eq!(argmax(row), usize::from(*label));
        }
    }

    #[test]
    fn bad_inputs_are_errors() {
        let j = judge();
        assert!(matches!(
            j.scores(&[0.0; 785]),
            Err(JudgeError::BadImageLength { len: 785 })
        ));
        assert!(matches!(
            j.scores(&[0.0; 784]),
            Err(JudgeError::TooFew { count: 1 })
        ));
        assert!(matches!(
            j.scores(&[]),
            Err(JudgeError::TooFew { count: 0 })
        ));
        let msg = j.classify(&[0.0; 10]).unwrap_err().to_string();
        assert!(msg.contains("10 pixel values"), "{msg}");
        let mut nan = vec![0.0f32; 3 * DIGIT_PIXELS];
        nan[DIGIT_PIXELS + 5] = f32::NAN;
        let err = j.scores(&nan).unwrap_err();
        assert!(
            matches!(err, JudgeError::NotFinite { index, .. } if index == DIGIT_PIXELS + 5),
            "{err}"
        );
        assert!(err.to_string().contains("(digit 1)"), "{err}");
    }

    #[test]
    fn saved_weights_load_back_the_same_judge() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("j.safetensors");
        judge().save(&path).unwrap();
        let again = Judge::load(&path).unwrap();
        assert_eq!(again.info(), judge().info());
        assert_eq!(again.test_stats(), judge().test_stats());
        let indices: Vec<u32> = (0..50).collect();
        let mut pixels = Vec::new();
        data::fill_batch(test_set(), &indices, &mut pixels).unwrap();
        assert_eq!(
            again.scores(&pixels).unwrap(),
            judge().scores(&pixels).unwrap()
        );
    }

    #[test]
    fn foreign_and_damaged_files_are_refused_with_their_name() {
        let dir = tempfile::tempdir().unwrap();
        let missing = dir.path().join("none.safetensors");
        let err = Judge::load(&missing).unwrap_err();
        assert!(matches!(err, JudgeError::Read { .. }));
        assert!(err.to_string().contains("none.safetensors"), "{err}");

        let err = Judge::from_safetensors(b"", "empty.st").unwrap_err();
        assert!(matches!(err, JudgeError::NotSafetensors { .. }), "{err}");
        let err = Judge::from_safetensors(b"not a safetensors file", "text.st").unwrap_err();
        assert!(matches!(err, JudgeError::NotSafetensors { .. }), "{err}");

        // A safetensors file that is something else.
        let bytes = safetensors::serialize(
            Vec::<(String, safetensors::tensor::TensorView)>::new(),
            Some(std::collections::HashMap::from([(
                "format".to_string(),
                "gan-tui checkpoint".to_string(),
            )])),
        )
        .unwrap();
        let err = Judge::from_safetensors(&bytes, "ckpt.st").unwrap_err();
        assert!(matches!(err, JudgeError::NotAJudge { .. }), "{err}");
        assert!(err.to_string().starts_with("ckpt.st:"), "{err}");

        // Our own file with another architecture named in its header (same length, so the file
        // stays well formed).
        let mut renamed = judge().to_safetensors().unwrap();
        let at = renamed.windows(8).position(|w| w == b"cnn nhwc").unwrap();
        renamed[at..at + 8].copy_from_slice(b"cnn NHWC");
        let err = Judge::from_safetensors(&renamed, "old.st");
        assert!(
            matches!(err, Err(JudgeError::WrongArchitecture { .. })),
            "{err:?}"
        );
    }

    /// A timing, so not run by default (the machine may be busy with other work): run it alone
    /// with `cargo test --release --lib judge::tests::scoring_is_fast -- --ignored`.
    #[test]
    #[ignore]
    fn scoring_is_fast() {
        let pixels = all_pixels(&test_set().clone().take(5_000)).unwrap();
        judge().scores(&pixels[..100 * DIGIT_PIXELS]).unwrap();
        let start = std::time::Instant::now();
        let s = judge().scores(&pixels).unwrap();
        let seconds = start.elapsed().as_secs_f64();
        assert_eq!(s.count, 5_000);
        assert!(seconds < 2.0, "scoring 5,000 digits took {seconds:.2} s");
    }
}
