//! Scoring a generator with the digit judge: its digits' score, fcd (with the floor real digits
//! set at the same count), class shares, recognised share and, for conditional recipes, how
//! often the judge reads the digit that was asked for.

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

/// Scores the generator in the checkpoint at `path` on `count` digits drawn with `seed`.
pub fn evaluate_checkpoint(
    path: &std::path::Path,
    count: usize,
    seed: u64,
) -> anyhow::Result<QualityReport> {
    let (model, ckpt) = crate::train::checkpoint::load_model(path)?;
    let mut evaluator = Evaluator::builtin()?;
    let mut noise = NoiseStream::for_evaluation(seed, 0);
    let mut q = evaluator.evaluate(model.as_ref(), count, &mut noise)?;
    q.step = ckpt.progress.step;
    // The checkpoint's epoch is the one in progress; the last finished one is one less.
    q.epoch = ckpt
        .progress
        .epoch
        .saturating_sub(u32::from(ckpt.progress.batch == 0));
    Ok(q)
}

/// The text `gan-tui eval` prints.
pub fn report_text(path: &std::path::Path, q: &QualityReport) -> String {
    format!(
        "{} (step {}): {} digits scored in {:.1}s\n{}\nclass shares: {}",
        path.display(),
        q.step,
        q.count,
        q.seconds,
        summary_line(q),
        shares_line(q)
    )
}

/// The JSON line `gan-tui eval --json` prints.
pub fn report_json(path: &std::path::Path, q: &QualityReport) -> String {
    serde_json::json!({
        "checkpoint": path.display().to_string(),
        "step": q.step,
        "count": q.count,
        "score": q.score,
        "fcd": q.fcd,
        "fcd_floor": q.fcd_floor,
        "recognised": q.recognised,
        "class_shares": q.class_shares,
        "agreement": q.agreement,
        "seconds": q.seconds,
    })
    .to_string()
}

fn argmax(p: &[f32]) -> usize {
    p.iter()
        .enumerate()
        .fold((0, f32::NEG_INFINITY), |best, (i, &v)| {
            if v > best.1 { (i, v) } else { best }
        })
        .0
}

/// The report as one line: `score 8.91 | fcd 12.3 (floor 8.3) | recognised 93% | ...`.
pub fn summary_line(q: &QualityReport) -> String {
    let mut line = format!(
        "score {:.2} | fcd {:.1} (floor {:.1}) | recognised {:.0}%",
        q.score,
        q.fcd,
        q.fcd_floor,
        q.recognised * 100.0
    );
    if let Some(a) = q.agreement {
        line.push_str(&format!(" | asked-for digit {:.0}%", a * 100.0));
    }
    line
}

/// The class shares as text: `0:10% 1:11% ...`.
pub fn shares_line(q: &QualityReport) -> String {
    q.class_shares
        .iter()
        .enumerate()
        .map(|(d, s)| format!("{d}:{:.0}%", s * 100.0))
        .collect::<Vec<_>>()
        .join(" ")
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
        let line = summary_line(&q);
        assert!(
            line.starts_with("score ") && line.contains("(floor "),
            "{line}"
        );
        // The floor is measured once per count.
        let floor = ev.fcd_floor(200).unwrap();
        assert_eq!(floor, q.fcd_floor);
    }
}
