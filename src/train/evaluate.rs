//! Scoring a recipe's generator with the judge: a fixed set of noise vectors (and, for a
//! conditional recipe, requested digits 0-9 in turn) through the generator, then the judge's
//! score, Fréchet distance, class shares, and how often it sees the digit that was asked for.
//!
//! This is what the preset table in the README is measured with, and what a `gan-tui eval`
//! command can call.

use std::path::{Path, PathBuf};

use super::cgan::requested_label;
use super::checkpoint::{Checkpoint, CheckpointError};
use super::gan::{self, Gan};
use super::noise::{NoiseKind, NoiseStream};
use crate::config::{Config, Preset};
use crate::judge::{CLASSES, Judge, JudgeError, Scores};

/// Digits generated per call, so memory stays small whatever the count.
const CHUNK: usize = 250;

/// What the judge makes of a generator.
#[derive(Debug, Clone, PartialEq)]
pub struct Evaluation {
    pub scores: Scores,
    /// For a conditional generator: the share of digits the judge classifies as the digit asked
    /// for.
    pub agreement: Option<f64>,
}

#[derive(Debug, thiserror::Error)]
pub enum EvalError {
    #[error(transparent)]
    Checkpoint(#[from] CheckpointError),
    #[error("{}: names preset `{preset}`, which this gan-tui does not know", .path.display())]
    UnknownPreset { path: PathBuf, preset: String },
    #[error("generating digits to score failed: {0}")]
    Generate(#[from] gan::DeviceError),
    #[error(transparent)]
    Judge(#[from] JudgeError),
}

/// `count` digits from `gan` for the noise of `seed` (the judge's own stream, so no training
/// noise is reused), pixels in [-1, 1], and the labels asked for when `gan` is conditional.
pub fn generate(
    gan: &dyn Gan,
    count: usize,
    seed: u64,
) -> Result<(Vec<f32>, Option<Vec<u8>>), gan::DeviceError> {
    let latent = gan.latent_dim();
    let mut stream = NoiseStream::new(seed, NoiseKind::Evaluation);
    let labels: Option<Vec<u8>> = gan
        .is_conditional()
        .then(|| (0..count).map(requested_label).collect());
    let mut pixels = Vec::with_capacity(count * gan.image_len());
    let mut z = Vec::new();
    let mut done = 0;
    while done < count {
        let n = CHUNK.min(count - done);
        stream.fill(&mut z, n * latent);
        let l = labels.as_ref().map(|l| &l[done..done + n]);
        pixels.extend(gan.generate(&z, l, n)?);
        done += n;
    }
    Ok((pixels, labels))
}

/// The judge's verdict on `count` digits of `gan` drawn with `seed`.
pub fn evaluate(
    gan: &dyn Gan,
    judge: &Judge,
    count: usize,
    seed: u64,
) -> Result<Evaluation, EvalError> {
    let (pixels, labels) = generate(gan, count, seed)?;
    let scores = judge.scores(&pixels)?;
    let agreement = match labels {
        None => None,
        Some(labels) => {
            let probs = judge.classify(&pixels)?.probabilities;
            let agree = probs
                .chunks_exact(CLASSES)
                .zip(&labels)
                .filter(|(row, label)| top_class(row) == usize::from(**label))
                .count();
            Some(agree as f64 / labels.len().max(1) as f64)
        }
    };
    Ok(Evaluation { scores, agreement })
}

fn top_class(row: &[f32]) -> usize {
    let mut top = 0;
    for (i, &p) in row.iter().enumerate() {
        if p > row[top] {
            top = i;
        }
    }
    top
}

/// Loads the checkpoint at `path` into a fresh model of its preset and evaluates it.
pub fn evaluate_checkpoint(
    path: &Path,
    judge: &Judge,
    count: usize,
    seed: u64,
) -> Result<(Checkpoint, Evaluation), EvalError> {
    let ckpt = Checkpoint::load(path)?;
    let preset = Preset::from_name(&ckpt.preset).ok_or_else(|| EvalError::UnknownPreset {
        path: path.to_path_buf(),
        preset: ckpt.preset.clone(),
    })?;
    let mut model = gan::build(&Config {
        preset,
        ..Config::default()
    });
    ckpt.restore_into(model.as_mut(), path)?;
    let eval = evaluate(model.as_ref(), judge, count, seed)?;
    Ok((ckpt, eval))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::judge::FLOOR_DIGITS;

    #[test]
    fn an_untrained_generator_scores_far_below_real_digits() {
        let judge = Judge::builtin().unwrap();
        let gan = gan::build(&Config::default());
        let e = evaluate(gan.as_ref(), &judge, 500, 1).unwrap();
        assert_eq!(e.scores.count, 500);
        assert_eq!(e.agreement, None);
        let floor = judge.real_floor(FLOOR_DIGITS).unwrap();
        assert!(e.scores.score < 3.0, "{}", e.scores);
        assert!(e.scores.fcd > 20.0 * floor.fcd, "{} vs {floor}", e.scores);
        // The same seed draws the same digits; another seed others.
        let again = evaluate(gan.as_ref(), &judge, 500, 1).unwrap();
        assert_eq!(again, e);
        let (a, _) = generate(gan.as_ref(), 3, 1).unwrap();
        let (b, _) = generate(gan.as_ref(), 3, 2).unwrap();
        assert_ne!(a, b);
    }
}
