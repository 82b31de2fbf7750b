//! `gan-tui bench`: times training steps of a recipe on real digits and prints ms per step
//! (median of several windows), the D/G split, GFLOP/s and images/s, and where a step's time
//! goes by op kind (one more window, with the engine's op timing on), as text or one JSON line;
//! for several presets, a table.

use std::time::{Duration, Instant};

use crate::config::{Config, Preset};
use crate::data::{self, DigitSet};
use crate::nn::profile;
use crate::nn::threads::{self, StepCounts};
use crate::train::gan;
use crate::train::noise::{NoiseKind, NoiseStream};

/// What one benchmark measured.
#[derive(Debug, Clone, serde::Serialize)]
pub struct BenchReport {
    pub preset: String,
    /// The most threads a step may use.
    pub threads: usize,
    /// `auto` (one thread while more do not pay) or `fixed`.
    pub threads_setting: &'static str,
    /// Timed steps that ran on one thread and on all of them.
    pub steps_on: StepCounts,
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
    /// Mean step time of the window timed op by op; it runs slightly slower than the others.
    pub ms_per_step_timed_ops: f64,
    /// Where that window's step time went, per step: each op kind, then `other` (dfdx's own
    /// ops, the tape, allocation, the data).
    pub ops: Vec<OpShare>,
}

/// The time of one kind of op in a step.
#[derive(Debug, Clone, serde::Serialize)]
pub struct OpShare {
    pub op: &'static str,
    pub forward_ms: f64,
    pub backward_ms: f64,
}

impl OpShare {
    fn total(&self) -> f64 {
        self.forward_ms + self.backward_ms
    }
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
    let counts_before = threads::step_counts();
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
    let counts = threads::step_counts();
    let steps_on = StepCounts {
        on_one: counts.on_one - counts_before.on_one,
        on_all: counts.on_all - counts_before.on_all,
    };
    // One more window, op by op.
    profile::set_enabled(true);
    let start = Instant::now();
    for _ in 0..per_window {
        step(model.as_mut())?;
    }
    let profiled_ms = start.elapsed().as_secs_f64() * 1e3 / per_window as f64;
    let totals = profile::totals();
    profile::set_enabled(false);
    let per_step = |d: Duration| d.as_secs_f64() * 1e3 / per_window as f64;
    let mut ops: Vec<OpShare> = totals
        .iter()
        .map(|t| OpShare {
            op: t.kind.name(),
            forward_ms: per_step(t.forward),
            backward_ms: per_step(t.backward),
        })
        .filter(|o| o.total() > 0.0)
        .collect();
    let timed: f64 = ops.iter().map(OpShare::total).sum();
    ops.push(OpShare {
        op: "other",
        forward_ms: (profiled_ms - timed).max(0.0),
        backward_ms: 0.0,
    });
    let ms_per_step = median(&mut windows.clone());
    let gflop = model.step_flops(batch) / 1e9;
    Ok(BenchReport {
        preset: preset.name().to_string(),
        threads: threads::setting().most(),
        threads_setting: match threads::setting() {
            threads::Threads::Auto => "auto",
            threads::Threads::Fixed(_) => "fixed",
        },
        steps_on,
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
        ms_per_step_timed_ops: profiled_ms,
        ops,
    })
}

impl BenchReport {
    pub fn text(&self) -> String {
        let mut text = format!(
            "preset {}, batch {}, {} threads ({}; {} of {} timed steps on one), {} steps in {} windows\n\
             {:.3} ms/step (median window; fastest {:.3}, slowest {:.3})\n\
             D step {:.3} ms + G step {:.3} ms (medians)\n\
             {:.3} GFLOP/step -> {:.1} GFLOP/s, {:.0} images/s",
            self.preset,
            self.batch,
            self.threads,
            self.threads_setting,
            self.steps_on.on_one,
            self.steps_on.on_one + self.steps_on.on_all,
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
        );
        text.push_str(&format!(
            "\nwhere a step goes ({:.3} ms/step with op timing on):\n{:<11} {:>8} {:>9} {:>6}",
            self.ms_per_step_timed_ops, "op", "fwd ms", "bwd ms", "share"
        ));
        for o in &self.ops {
            text.push_str(&format!(
                "\n{:<11} {:>8.3} {:>9.3} {:>5.1}%",
                o.op,
                o.forward_ms,
                o.backward_ms,
                100.0 * o.total() / self.ms_per_step_timed_ops.max(f64::MIN_POSITIVE)
            ));
        }
        text
    }

    pub fn json(&self) -> String {
        serde_json::to_string(self).unwrap_or_else(|e| format!("{{\"error\":\"{e}\"}}"))
    }
}

/// Several reports as a table, one row per preset.
pub fn table(reports: &[BenchReport]) -> String {
    let mut out = format!(
        "{:<10} {:>9} {:>8} {:>9} {:>10} {:>8}",
        "preset", "ms/step", "GFLOP", "GFLOP/s", "images/s", "threads"
    );
    for r in reports {
        out.push_str(&format!(
            "\n{:<10} {:>9.3} {:>8.3} {:>9.1} {:>10.0} {:>8}",
            r.preset, r.ms_per_step, r.gflop_per_step, r.gflops, r.images_per_s, r.threads
        ));
    }
    out
}
