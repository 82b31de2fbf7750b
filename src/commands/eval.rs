//! `gan-tui eval`: scores a checkpoint's generator with the judge and prints the report.

use std::path::Path;

use crate::eval::Evaluator;
use crate::protocol::QualityReport;
use crate::run::format::{quality_line, shares_line};
use crate::train::noise::NoiseStream;

/// Scores the generator in the checkpoint at `path` on `count` digits drawn with `seed`.
pub fn evaluate_checkpoint(path: &Path, count: usize, seed: u64) -> anyhow::Result<QualityReport> {
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
pub fn report_text(path: &Path, q: &QualityReport) -> String {
    format!(
        "{} (step {}): {} digits scored in {:.1}s\n{}\nclass shares: {}",
        path.display(),
        q.step,
        q.count,
        q.seconds,
        quality_line(q),
        shares_line(q)
    )
}

/// The JSON line `gan-tui eval --json` prints.
pub fn report_json(path: &Path, q: &QualityReport) -> String {
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
        "kid": q.kid,
        "kid_std": q.kid_std,
        "kid_floor": q.kid_floor,
        "precision": q.precision,
        "recall": q.recall,
        "precision_ceiling": q.precision_ceiling,
        "recall_ceiling": q.recall_ceiling,
        "class_spread": q.class_spread,
        "seconds": q.seconds,
    })
    .to_string()
}
