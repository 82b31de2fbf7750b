//! `gan-tui bench`: times training steps of a recipe on real digits and prints ms per step
//! (median of several windows), the D/G split, GFLOP/s and images/s, as text or one JSON line.

use std::time::{Duration, Instant};

use crate::config::{Config, Preset};
use crate::data::{self, DigitSet};
use crate::train::gan;
use crate::train::noise::{NoiseKind, NoiseStream};

/// What one benchmark measured.
#[derive(Debug, Clone, serde::Serialize)]
pub struct BenchReport {
    pub preset: String,
    pub threads: usize,
    pub batch: usize,
    pub steps: usize,
    pub windows: usize,
    /// Median over windows of the mean step time.
    pub ms_per_step: f64,
    /// Fastest and slowest window, for the spread.
    pub ms_per_step_min: f64,
    pub ms_per_step_max: f64,
    /// Median D half (with G's forward pass) and G half of a step.
    pub ms_d_step: f64,
    pub ms_g_step: f64,
    /// Multiply-add work of one step, as the engine computes it (2 FLOP per multiply-add).
    pub gflop_per_step: f64,
    pub gflops: f64,
    /// Real images consumed per second.
    pub images_per_s: f64,
}

#[derive(Debug, thiserror::Error)]
pub enum BenchError {
    #[error(transparent)]
    Data(#[from] data::DataError),
    #[error(transparent)]
    Train(#[from] gan::DeviceError),
    #[error("--steps {0} is too few: give at least {1}")]
    TooFewSteps(usize, usize),
}

/// Windows the measured steps are split into; the median window is reported.
const WINDOWS: usize = 5;

fn median(values: &mut [f64]) -> f64 {
    values.sort_by(f64::total_cmp);
    values.get(values.len() / 2).copied().unwrap_or(f64::NAN)
}

/// Times `steps` steps (after a warm-up of a tenth as many) of `preset`.
pub fn run(preset: Preset, steps: usize, batch: usize) -> Result<BenchReport, BenchError> {
    if steps < WINDOWS {
        return Err(BenchError::TooFewSteps(steps, WINDOWS));
    }
    let set: DigitSet = data::load(None, data::Split::Train)?;
    let cfg = Config {
        preset,
        batch_size: batch,
        seed: 1,
        ..Config::default()
    };
    let mut model = preset.build(cfg.seed, cfg.lr);
    let latent = model.latent_dim();
    let order = data::epoch_order(set.len(), cfg.seed, 1);
    let per_epoch = data::batches_per_epoch(set.len(), batch);
    let mut noise = NoiseStream::new(cfg.seed, NoiseKind::Train);
    let (mut real, mut labels, mut z) = (Vec::new(), Vec::new(), Vec::new());
    let mut batch_no = 0u64;
    let mut step = |model: &mut dyn gan::Gan| -> Result<(Duration, Duration), BenchError> {
        // Full batches only, so every timed step does the same work.
        let idx = data::batch_indices(&order, batch, batch_no % per_epoch.saturating_sub(1).max(1))
            .unwrap_or(&[]);
        batch_no += 1;
        data::fill_batch(&set, idx, &mut real)?;
        data::fill_labels(&set, idx, &mut labels)?;
        noise.fill(&mut z, idx.len() * latent);
        model.train_step(&gan::Batch {
            real: &real,
            labels: &labels,
            z: &z,
            count: idx.len(),
        })?;
        let t = model.phase_times();
        Ok((t.d, t.g))
    };
    for _ in 0..(steps / 10).max(3) {
        step(model.as_mut())?;
    }
    let per_window = steps / WINDOWS;
    let (mut windows, mut d_times, mut g_times) = (Vec::new(), Vec::new(), Vec::new());
    for _ in 0..WINDOWS {
        let start = Instant::now();
        for _ in 0..per_window {
            let (d, g) = step(model.as_mut())?;
            d_times.push(d.as_secs_f64() * 1e3);
            g_times.push(g.as_secs_f64() * 1e3);
        }
        windows.push(start.elapsed().as_secs_f64() * 1e3 / per_window as f64);
    }
    let ms_per_step = median(&mut windows.clone());
    let gflop = model.step_flops(batch) / 1e9;
    Ok(BenchReport {
        preset: preset.name().to_string(),
        threads: rayon::current_num_threads(),
        batch,
        steps: per_window * WINDOWS,
        windows: WINDOWS,
        ms_per_step,
        ms_per_step_min: windows.iter().copied().fold(f64::INFINITY, f64::min),
        ms_per_step_max: windows.iter().copied().fold(0.0, f64::max),
        ms_d_step: median(&mut d_times),
        ms_g_step: median(&mut g_times),
        gflop_per_step: gflop,
        gflops: gflop / (ms_per_step / 1e3),
        images_per_s: batch as f64 / (ms_per_step / 1e3),
    })
}

impl BenchReport {
    pub fn text(&self) -> String {
        format!(
            "preset {}, batch {}, {} threads, {} steps in {} windows\n\
             {:.3} ms/step (median window; fastest {:.3}, slowest {:.3})\n\
             D step {:.3} ms + G step {:.3} ms (medians)\n\
             {:.3} GFLOP/step -> {:.1} GFLOP/s, {:.0} images/s",
            self.preset,
            self.batch,
            self.threads,
            self.steps,
            self.windows,
            self.ms_per_step,
            self.ms_per_step_min,
            self.ms_per_step_max,
            self.ms_d_step,
            self.ms_g_step,
            self.gflop_per_step,
            self.gflops,
            self.images_per_s
        )
    }

    pub fn json(&self) -> String {
        serde_json::to_string(self).unwrap_or_else(|e| format!("{{\"error\":\"{e}\"}}"))
    }
}
