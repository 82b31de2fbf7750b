//! The training loop on its own thread: batches, steps, logging, samples, checkpoints, and the
//! commands a front end sends. It owns the dfdx device, models and optimisers; only plain
//! `protocol` messages leave it.

use std::panic::{self, AssertUnwindSafe};
use std::path::{Path, PathBuf};
use std::sync::mpsc::{Receiver, Sender, TryRecvError};
use std::thread::{self, JoinHandle};
use std::time::{Duration, Instant};

use crate::config::Config;
use crate::data::{self, DigitSet};
use crate::image;
use crate::protocol::{
    Command, EpochSummary, FinishReason, RunInfo, SampleGrid, SaveReason, StepStats, TrainMsg,
};
use crate::run_dir::{MetricsLog, MetricsRecord, RunDir};

use super::checkpoint::{self, Checkpoint, Progress, RngPositions};
use super::gan::{self, Gan, StepLosses};
use super::noise::{NoiseKind, NoiseStream};

/// Everything a training run needs, prepared (and checked) before the thread starts.
pub struct TrainJob {
    pub config: Config,
    /// The resolved config as TOML, stored in checkpoints.
    pub config_toml: String,
    pub data: DigitSet,
    pub run_dir: RunDir,
    /// A checkpoint to continue from, with the path it was read from.
    pub resume: Option<(PathBuf, Checkpoint)>,
}

/// Why the loop could not go on.
#[derive(Debug, thiserror::Error)]
pub enum TrainError {
    #[error(transparent)]
    Checkpoint(#[from] checkpoint::CheckpointError),
    #[error(transparent)]
    Device(#[from] gan::DeviceError),
    #[error(transparent)]
    Data(#[from] data::DataError),
    #[error("{path}: cannot write metrics: {source}")]
    Metrics {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error(
        "training diverged at step {step}: d_loss {d_loss}, g_loss {g_loss} (not finite); the last good checkpoint is kept"
    )]
    Diverged { step: u64, d_loss: f32, g_loss: f32 },
    #[error("the checkpoint's sample noise does not fit this model")]
    SampleNoise,
}

/// Starts the trainer thread. Messages go out on `msgs`; commands come in on `cmds`. The thread
/// ends after sending `Finished` or `Error`, or quietly when the front end hangs up.
pub fn spawn(
    job: TrainJob,
    msgs: Sender<TrainMsg>,
    cmds: Receiver<Command>,
) -> std::io::Result<JoinHandle<()>> {
    thread::Builder::new()
        .name("trainer".to_string())
        .spawn(move || {
            let errors = msgs.clone();
            let outcome = panic::catch_unwind(AssertUnwindSafe(|| {
                Trainer::new(job, msgs, cmds).and_then(Trainer::run)
            }));
            let error = match outcome {
                Ok(Ok(())) => return,
                Ok(Err(e)) => e.to_string(),
                Err(payload) => format!("the trainer crashed: {}", panic_text(&payload)),
            };
            // The front end may be gone already; nothing more to do then.
            let _ = errors.send(TrainMsg::Error(error));
        })
}

fn panic_text(payload: &Box<dyn std::any::Any + Send>) -> String {
    if let Some(s) = payload.downcast_ref::<&str>() {
        (*s).to_string()
    } else if let Some(s) = payload.downcast_ref::<String>() {
        s.clone()
    } else {
        "unknown panic".to_string()
    }
}

/// Training time, not counting pauses.
struct Clock {
    started: Instant,
    paused_total: Duration,
    paused_at: Option<Instant>,
}

impl Clock {
    fn start() -> Self {
        Clock {
            started: Instant::now(),
            paused_total: Duration::ZERO,
            paused_at: None,
        }
    }

    fn active(&self) -> Duration {
        let now = self.paused_at.unwrap_or_else(Instant::now);
        now.duration_since(self.started)
            .saturating_sub(self.paused_total)
    }

    fn pause(&mut self) {
        self.paused_at.get_or_insert_with(Instant::now);
    }

    fn resume(&mut self) {
        if let Some(at) = self.paused_at.take() {
            self.paused_total += at.elapsed();
        }
    }
}

/// Sums over the steps of one epoch, for its means.
#[derive(Default)]
struct EpochSums {
    steps: u64,
    d_loss: f64,
    g_loss: f64,
    d_real: f64,
    d_fake: f64,
}

impl EpochSums {
    fn add(&mut self, l: &StepLosses) {
        self.steps += 1;
        self.d_loss += l.d_loss as f64;
        self.g_loss += l.g_loss as f64;
        self.d_real += l.d_real as f64;
        self.d_fake += l.d_fake as f64;
    }

    fn mean(&self, sum: f64) -> f32 {
        (sum / self.steps.max(1) as f64) as f32
    }
}

/// What the loop should do after looking at the commands.
enum Flow {
    Continue,
    Stop,
}

struct Trainer {
    cfg: Config,
    config_toml: String,
    data: DigitSet,
    run: RunDir,
    metrics: MetricsLog,
    gan: Box<dyn Gan>,
    msgs: Sender<TrainMsg>,
    cmds: Receiver<Command>,
    /// False once a send failed: the front end is gone.
    frontend_alive: bool,
    progress: Progress,
    batches_per_epoch: u64,
    total_steps: u64,
    start_step: u64,
    train_noise: NoiseStream,
    sample_stream: NoiseStream,
    sample_noise: Vec<f32>,
    fresh_noise: bool,
    paused: bool,
    clock: Clock,
    /// Step and active time at the last logged step, for steps/s over the window since.
    window: (u64, Duration),
    epoch_sums: EpochSums,
    last_checkpoint: Option<PathBuf>,
    /// The step the last checkpoint holds, so the exit save is skipped when nothing changed.
    last_saved_step: Option<u64>,
}

impl Trainer {
    fn new(
        job: TrainJob,
        msgs: Sender<TrainMsg>,
        cmds: Receiver<Command>,
    ) -> Result<Self, TrainError> {
        let TrainJob {
            config: cfg,
            config_toml,
            data,
            run_dir: run,
            resume,
        } = job;
        let mut gan = gan::build(&cfg);
        let latent = gan.latent_dim();
        let batches_per_epoch = data::batches_per_epoch(data.len(), cfg.batch_size);
        let all_steps = batches_per_epoch.saturating_mul(u64::from(cfg.epochs));
        let total_steps = cfg.max_steps.map_or(all_steps, |m| m.min(all_steps));
        let mut train_noise = NoiseStream::new(cfg.seed, NoiseKind::Train);
        let mut sample_stream = NoiseStream::new(cfg.seed, NoiseKind::Samples);
        let (progress, sample_noise) = match &resume {
            Some((path, ckpt)) => {
                ckpt.restore_into(gan.as_mut(), path)?;
                train_noise.seek(ckpt.rng.train_noise);
                sample_stream.seek(ckpt.rng.sample_noise);
                let (_, noise) = ckpt
                    .sample_noise_for(latent)
                    .ok_or(TrainError::SampleNoise)?;
                (ckpt.progress, noise.to_vec())
            }
            None => {
                let noise = sample_stream.draw(cfg.sample_count * latent);
                let start = Progress {
                    step: 0,
                    epoch: 1,
                    batch: 0,
                };
                (start, noise)
            }
        };
        let metrics_path = run.metrics_file();
        let metrics = MetricsLog::open(&metrics_path).map_err(|source| TrainError::Metrics {
            path: metrics_path,
            source,
        })?;
        Ok(Trainer {
            start_step: progress.step,
            window: (progress.step, Duration::ZERO),
            cfg,
            config_toml,
            data,
            run,
            metrics,
            gan,
            msgs,
            cmds,
            frontend_alive: true,
            progress,
            batches_per_epoch,
            total_steps,
            train_noise,
            sample_stream,
            sample_noise,
            fresh_noise: false,
            paused: false,
            clock: Clock::start(),
            epoch_sums: EpochSums::default(),
            last_checkpoint: None,
            last_saved_step: None,
        })
    }

    fn send(&mut self, msg: TrainMsg) {
        if self.frontend_alive && self.msgs.send(msg).is_err() {
            self.frontend_alive = false;
        }
    }

    fn run(mut self) -> Result<(), TrainError> {
        let info = RunInfo {
            preset: self.cfg.preset.name().to_string(),
            data_source: self.data.source.clone(),
            images: self.data.len(),
            epochs: self.cfg.epochs,
            batch_size: self.cfg.batch_size,
            steps_per_epoch: self.batches_per_epoch,
            total_steps: self.total_steps,
            start_step: self.start_step,
            run_dir: self.run.root().to_path_buf(),
            seed: self.cfg.seed,
        };
        self.send(TrainMsg::Started(info));
        self.send_samples(false)?;

        let latent = self.gan.latent_dim();
        let (mut real, mut labels, mut z) = (Vec::new(), Vec::new(), Vec::new());
        let reason = 'run: loop {
            if self.progress.epoch > self.cfg.epochs {
                break FinishReason::Completed;
            }
            let order = data::epoch_order(self.data.len(), self.cfg.seed, self.progress.epoch);
            while let Some(indices) =
                data::batch_indices(&order, self.cfg.batch_size, self.progress.batch)
            {
                if self.progress.step >= self.total_steps {
                    break 'run FinishReason::StepLimit;
                }
                if let Flow::Stop = self.handle_commands()? {
                    break 'run FinishReason::Stopped;
                }
                data::fill_batch(&self.data, indices, &mut real)?;
                data::fill_labels(&self.data, indices, &mut labels)?;
                let count = indices.len();
                self.train_noise.fill(&mut z, count * latent);
                let losses = self.gan.train_step(&gan::Batch {
                    real: &real,
                    labels: &labels,
                    z: &z,
                    count,
                })?;
                if !losses.all_finite() {
                    return Err(TrainError::Diverged {
                        step: self.progress.step + 1,
                        d_loss: losses.d_loss,
                        g_loss: losses.g_loss,
                    });
                }
                self.progress.step += 1;
                self.progress.batch += 1;
                self.epoch_sums.add(&losses);
                let epoch_done = self.progress.batch >= self.batches_per_epoch;
                if self.progress.step.is_multiple_of(self.cfg.log_every) || epoch_done {
                    self.log_step(&losses)?;
                }
                if self.progress.step.is_multiple_of(self.cfg.sample_every) {
                    self.send_samples(self.fresh_noise)?;
                }
            }
            self.finish_epoch()?;
        };
        if self.last_saved_step != Some(self.progress.step) {
            let path = self.run.step_checkpoint(self.progress.step);
            self.save_checkpoint(&path, SaveReason::Exit);
        }
        let msg = TrainMsg::Finished {
            reason,
            step: self.progress.step,
            last_checkpoint: self.last_checkpoint.clone(),
        };
        self.send(msg);
        Ok(())
    }

    /// Applies pending commands; while paused, blocks until one arrives.
    fn handle_commands(&mut self) -> Result<Flow, TrainError> {
        loop {
            if !self.frontend_alive {
                return Ok(Flow::Stop);
            }
            let cmd = if self.paused {
                match self.cmds.recv() {
                    Ok(c) => c,
                    Err(_) => return Ok(Flow::Stop),
                }
            } else {
                match self.cmds.try_recv() {
                    Ok(c) => c,
                    Err(TryRecvError::Empty) => return Ok(Flow::Continue),
                    Err(TryRecvError::Disconnected) => return Ok(Flow::Stop),
                }
            };
            match cmd {
                Command::Pause if !self.paused => {
                    self.paused = true;
                    self.clock.pause();
                    self.send(TrainMsg::Paused {
                        step: self.progress.step,
                    });
                }
                Command::Resume if self.paused => {
                    self.paused = false;
                    self.clock.resume();
                    self.send(TrainMsg::Resumed {
                        step: self.progress.step,
                    });
                }
                Command::Pause | Command::Resume => {}
                Command::SaveCheckpoint => {
                    let path = self.run.step_checkpoint(self.progress.step);
                    self.save_checkpoint(&path, SaveReason::Requested);
                }
                Command::Resample => {
                    let len = self.sample_noise.len();
                    self.sample_noise = self.sample_stream.draw(len);
                    self.send_samples(false)?;
                }
                Command::FreshNoise(on) => self.fresh_noise = on,
                Command::Stop => return Ok(Flow::Stop),
            }
        }
    }

    fn log_step(&mut self, losses: &StepLosses) -> Result<(), TrainError> {
        let elapsed = self.clock.active();
        let (window_step, window_time) = self.window;
        let span = elapsed.saturating_sub(window_time).as_secs_f64();
        let steps_per_s = if span > 0.0 {
            (self.progress.step - window_step) as f64 / span
        } else {
            0.0
        };
        self.window = (self.progress.step, elapsed);
        let record = MetricsRecord {
            step: self.progress.step,
            epoch: self.progress.epoch,
            d_loss: losses.d_loss,
            g_loss: losses.g_loss,
            d_real: losses.d_real,
            d_fake: losses.d_fake,
            lr: self.cfg.lr,
            steps_per_s,
            elapsed_s: elapsed.as_secs_f64(),
        };
        self.metrics
            .append(&record)
            .map_err(|source| TrainError::Metrics {
                path: self.metrics.path().to_path_buf(),
                source,
            })?;
        self.send(TrainMsg::Step(StepStats {
            step: record.step,
            epoch: record.epoch,
            batch: self.progress.batch,
            d_loss: record.d_loss,
            g_loss: record.g_loss,
            d_real: record.d_real,
            d_fake: record.d_fake,
            lr: record.lr,
            steps_per_s,
            elapsed_s: record.elapsed_s,
        }));
        Ok(())
    }

    /// Grey pixels of the generator's digits for the fixed noise, or for fresh noise.
    fn sample_pixels(&mut self, fresh: bool) -> Result<Vec<u8>, TrainError> {
        let noise = if fresh {
            self.sample_stream.draw(self.sample_noise.len())
        } else {
            self.sample_noise.clone()
        };
        let count = noise.len() / self.gan.latent_dim().max(1);
        let images = self.gan.generate(&noise, None, count)?;
        Ok(image::to_grey(&images))
    }

    fn send_samples(&mut self, fresh: bool) -> Result<(), TrainError> {
        let pixels = self.sample_pixels(fresh)?;
        self.send(TrainMsg::Samples(SampleGrid {
            step: self.progress.step,
            width: data::DIGIT_COLS,
            height: data::DIGIT_ROWS,
            pixels,
            labels: None,
        }));
        Ok(())
    }

    fn finish_epoch(&mut self) -> Result<(), TrainError> {
        let epoch = self.progress.epoch;
        let sample_png = match self.write_epoch_png(epoch) {
            Ok(path) => Some(path),
            Err(error) => {
                let path = self.run.epoch_samples(epoch);
                self.send(TrainMsg::CheckpointFailed {
                    path,
                    error: format!("cannot write the epoch's sample grid: {error}"),
                });
                None
            }
        };
        let elapsed = self.clock.active().as_secs_f64();
        let steps = self.progress.step - self.start_step;
        let sums = &self.epoch_sums;
        let summary = EpochSummary {
            epoch,
            epochs: self.cfg.epochs,
            step: self.progress.step,
            d_loss: sums.mean(sums.d_loss),
            g_loss: sums.mean(sums.g_loss),
            d_real: sums.mean(sums.d_real),
            d_fake: sums.mean(sums.d_fake),
            steps_per_s: if elapsed > 0.0 {
                steps as f64 / elapsed
            } else {
                0.0
            },
            elapsed_s: elapsed,
            sample_png,
        };
        self.epoch_sums = EpochSums::default();
        self.progress.epoch += 1;
        self.progress.batch = 0;
        let path = self.run.epoch_checkpoint(epoch);
        self.save_checkpoint(&path, SaveReason::EpochEnd);
        self.send(TrainMsg::EpochDone(summary));
        Ok(())
    }

    fn write_epoch_png(&mut self, epoch: u32) -> Result<PathBuf, String> {
        let pixels = self.sample_pixels(false).map_err(|e| e.to_string())?;
        let columns = image::square_columns(self.cfg.sample_count);
        let png = image::grid_png(&pixels, data::DIGIT_COLS, data::DIGIT_ROWS, columns)
            .map_err(|e| e.to_string())?;
        let path = self.run.epoch_samples(epoch);
        crate::atomic::write(&path, &png).map_err(|e| format!("{}: {e}", path.display()))?;
        Ok(path)
    }

    fn checkpoint(&self) -> Checkpoint {
        let latent = self.gan.latent_dim();
        Checkpoint {
            preset: self.gan.preset().name().to_string(),
            architecture: self.gan.architecture(),
            seed: self.cfg.seed,
            progress: self.progress,
            rng: RngPositions {
                train_noise: self.train_noise.position(),
                sample_noise: self.sample_stream.position(),
            },
            config_toml: self.config_toml.clone(),
            sample_noise: checkpoint::sample_noise_tensor(
                self.sample_noise.len() / latent.max(1),
                latent,
                self.sample_noise.clone(),
            ),
            state: self.gan.state(),
        }
    }

    /// Writes a checkpoint to `path` and to `latest.safetensors`, and tells the front end how
    /// it went. A failed save is reported, not fatal: training goes on.
    fn save_checkpoint(&mut self, path: &Path, reason: SaveReason) {
        let ckpt = self.checkpoint();
        let latest = self.run.latest_checkpoint();
        let result = ckpt.encode().and_then(|bytes| {
            for target in [path, latest.as_path()] {
                crate::atomic::write(target, &bytes).map_err(|source| {
                    checkpoint::CheckpointError::Write {
                        path: target.to_path_buf(),
                        source,
                    }
                })?;
            }
            Ok(())
        });
        match result {
            Ok(()) => {
                self.last_checkpoint = Some(path.to_path_buf());
                self.last_saved_step = Some(self.progress.step);
                self.send(TrainMsg::CheckpointSaved {
                    path: path.to_path_buf(),
                    step: self.progress.step,
                    reason,
                });
            }
            Err(e) => self.send(TrainMsg::CheckpointFailed {
                path: path.to_path_buf(),
                error: e.to_string(),
            }),
        }
    }
}
