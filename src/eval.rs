//! Scoring a generator with the digit judge: its digits' score, fcd (with the floor real digits
//! set at the same count), class shares, recognised share and, for conditional recipes, how
//! often the judge reads the digit that was asked for. The trainer and `gan-tui eval` both use it.

use std::collections::BTreeMap;
use std::time::Instant;

use crate::data::DIGIT_PIXELS;
use crate::judge::{CLASSES, Judge, JudgeError};
use crate::protocol::QualityReport;
use crate::train::gan::{DeviceError, Gan};
use crate::train::noise::NoiseStream;

/// Digits generated per forward pass, so large counts stay small in memory.
const CHUNK: usize = 500;

#[derive(Debug, thiserror::Error)]
pub enum EvalError {
    #[error(transparent)]
    Judge(#[from] JudgeError),
    #[error(transparent)]
    Generator(#[from] DeviceError),
}

/// The judge, with the real-digit floors it has measured so far (one per sample count).
pub struct Evaluator {
    judge: Judge,
    floors: BTreeMap<usize, f64>,
}

impl Evaluator {
    /// The judge compiled into the program.
    pub fn builtin() -> Result<Evaluator, EvalError> {
        Ok(Evaluator {
            judge: Judge::builtin()?,
            floors: BTreeMap::new(),
        })
    }

    /// The fcd of `count` real training digits against the test digits: a generator cannot do
    /// better at this count (the distance of a finite sample is biased upwards).
    pub fn fcd_floor(&mut self, count: usize) -> Result<f64, EvalError> {
        if let Some(&floor) = self.floors.get(&count) {
            return Ok(floor);
        }
        let floor = self.judge.real_floor(count)?.fcd;
        self.floors.insert(count, floor);
        Ok(floor)
    }

    /// Scores `count` digits of `gan` drawn from `noise`. Conditional recipes are asked for the
    /// ten digits in turn, and the report says how often the judge read the digit asked for.
    /// `step` and `epoch` are left 0 for the caller to fill in.
    pub fn evaluate(
        &mut self,
        gan: &dyn Gan,
        count: usize,
        noise: &mut NoiseStream,
    ) -> Result<QualityReport, EvalError> {
        let start = Instant::now();
        let latent = gan.latent_dim();
        let conditional = gan.is_conditional();
        let labels: Vec<u8> = (0..count).map(|i| (i % CLASSES) as u8).collect();
        let mut images = Vec::with_capacity(count * DIGIT_PIXELS);
        let mut z = Vec::new();
        for (i, chunk_labels) in labels.chunks(CHUNK).enumerate() {
            let n = chunk_labels.len();
            noise.fill(&mut z, n * latent);
            let wanted = conditional.then_some(chunk_labels);
            images.extend(gan.generate(&z, wanted, n)?);
            debug_assert_eq!(images.len(), (i * CHUNK + n) * DIGIT_PIXELS);
        }
        let scores = self.judge.scores(&images)?;
        let agreement = if conditional {
            let classified = self.judge.classify(&images)?;
            let hits = classified
                .probabilities
                .chunks_exact(CLASSES)
                .zip(&labels)
                .filter(|(p, want)| argmax(p) == usize::from(**want))
                .count();
            Some(hits as f64 / count.max(1) as f64)
        } else {
            None
        };
        let fcd_floor = self.fcd_floor(count)?;
        Ok(QualityReport {
            step: 0,
            epoch: 0,
            count: scores.count,
            score: scores.score,
            fcd: scores.fcd,
            fcd_floor,
            recognised: scores.recognised,
            class_shares: scores.class_shares,
            agreement,
            seconds: start.elapsed().as_secs_f64(),
        })
    }
}

fn argmax(p: &[f32]) -> usize {
    p.iter()
        .enumerate()
        .fold((0, f32::NEG_INFINITY), |best, (i, &v)| {
            if v > best.1 { (i, v) } else { best }
        })
        .0
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::Config;
    use crate::train::noise::NoiseKind;

    #[test]
    fn an_untrained_generator_scores_low_with_a_large_fcd() {
        let model = crate::train::presets::build(&Config {
            preset: crate::config::Preset::Reference,
            ..Config::default()
        });
        let mut ev = Evaluator::builtin().unwrap();
        let mut noise = NoiseStream::new(1, NoiseKind::Samples);
        let q = ev.evaluate(model.as_ref(), 200, &mut noise).unwrap();
        assert_eq!(q.count, 200);
        assert!(q.score < 3.0, "{q:?}");
        assert!(q.fcd > 10.0 * q.fcd_floor, "{q:?}");
        assert!((q.class_shares.iter().sum::<f64>() - 1.0).abs() < 1e-9);
        assert_eq!(q.agreement, None);
        let line = crate::run::format::quality_line(&q);
        assert!(
            line.starts_with("score ") && line.contains("(floor "),
            "{line}"
        );
        // The floor is measured once per count.
        let floor = ev.fcd_floor(200).unwrap();
        assert_eq!(floor, q.fcd_floor);
    }
}
