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
use crate::doctor::Doctor;
use crate::eval::Evaluator;
use crate::files::image;
use crate::files::run_dir::{JsonLines, MetricsRecord, QualityFields, RunDir};
use crate::judge::CLASSES;
use crate::probe::{self, Prober};
use crate::protocol::{
    Alarm, Command, EpochSummary, FinishReason, Probe, ProbeReport, QualityReport, RunInfo,
    SampleGrid, SaveReason, StepStats, TrainMsg,
};

use super::checkpoint::{self, Checkpoint, EpochTally, Progress, RngPositions};
use super::gan::{self, Gan, GradNorms, StepLosses};
use super::noise::{NoiseKind, NoiseStream};
use super::schedule;

/// Builds the recipe a run trains; tests put a faulty model in its place.
pub type GanBuilder = Box<dyn FnOnce(&Config) -> Box<dyn Gan> + Send>;

/// Everything a training run needs, prepared (and checked) before the thread starts.
pub struct TrainJob {
    pub config: Config,
    /// The resolved config as TOML, stored in checkpoints.
    pub config_toml: String,
    pub data: DigitSet,
    pub run_dir: RunDir,
    /// A checkpoint to continue from, with the path it was read from.
    pub resume: Option<(PathBuf, Checkpoint)>,
    /// `None`: the recipe `config.preset` names (`gan::build`).
    pub builder: Option<GanBuilder>,
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
    #[error("{path}: cannot open the metrics file: {source}")]
    Metrics {
        path: PathBuf,
        source: std::io::Error,
    },
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

/// Training time, not counting pauses; a resumed run starts from the time it had.
struct Clock {
    started: Instant,
    offset: Duration,
    paused_total: Duration,
    paused_at: Option<Instant>,
}

impl Clock {
    fn start(offset: Duration) -> Self {
        Clock {
            started: Instant::now(),
            offset,
            paused_total: Duration::ZERO,
            paused_at: None,
        }
    }

    fn active(&self) -> Duration {
        let now = self.paused_at.unwrap_or_else(Instant::now);
        self.offset
            + now
                .duration_since(self.started)
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

fn add(tally: &mut EpochTally, l: &StepLosses) {
    tally.steps += 1;
    tally.d_loss += l.d_loss as f64;
    tally.g_loss += l.g_loss as f64;
    tally.d_real += l.d_real as f64;
    tally.d_fake += l.d_fake as f64;
}

fn mean(tally: &EpochTally, sum: f64) -> f32 {
    (sum / tally.steps.max(1) as f64) as f32
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
    metrics: JsonLines,
    /// `events.jsonl`: the doctor's alarms.
    events: JsonLines,
    /// The events file failed its last write: reported once until it works again.
    events_failing: bool,
    /// The health rules, and the best Fréchet distance so far.
    doctor: Doctor,
    gan: Box<dyn Gan>,
    msgs: Sender<TrainMsg>,
    cmds: Receiver<Command>,
    /// False once a send failed: the front end is gone.
    frontend_alive: bool,
    progress: Progress,
    batches_per_epoch: u64,
    total_steps: u64,
    /// Steps in all the run's epochs: the length the learning-rate schedule spans (a step
    /// limit does not change it, so a run stopped early and resumed keeps its rates).
    all_steps: u64,
    /// The learning rate of the latest step.
    lr: f64,
    start_step: u64,
    train_noise: NoiseStream,
    sample_stream: NoiseStream,
    sample_noise: Vec<f32>,
    fresh_noise: bool,
    paused: bool,
    clock: Clock,
    /// Step and active time at the last logged step, for steps/s over the window since.
    window: (u64, Duration),
    /// Sums over the epoch in progress, for its means (kept in checkpoints).
    tally: EpochTally,
    last_checkpoint: Option<PathBuf>,
    /// The step the last checkpoint holds, so the exit save is skipped when nothing changed.
    last_saved_step: Option<u64>,
    /// The metrics file failed its last write: reported once until it works again.
    metrics_failing: bool,
    /// The judge, loaded on the first evaluation; `Err` once it failed to load.
    evaluator: Option<Result<Evaluator, String>>,
    /// Conditional recipes: the digit the sample grid shows, or all ten.
    show_digit: Option<u8>,
    /// The gradient norms of the latest step (measured on logged steps only).
    grad_norms: GradNorms,
    /// The probes the front end turned on.
    probes: ProbesOn,
    /// The judge and training features the probes use, loaded on the first probe.
    prober: Option<Prober>,
}

/// Which probes of the generator are on.
#[derive(Debug, Clone, Copy, Default)]
struct ProbesOn {
    morph: bool,
    nearest: bool,
    reading: bool,
}

impl ProbesOn {
    fn any(self) -> bool {
        self.morph || self.nearest || self.reading
    }

    fn set(&mut self, probe: Probe, on: bool) {
        match probe {
            Probe::Morph => self.morph = on,
            Probe::Nearest => self.nearest = on,
            Probe::Reading => self.reading = on,
        }
    }
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
            builder,
        } = job;
        let mut gan = match builder {
            Some(build) => build(&cfg),
            None => cfg.preset.build(cfg.seed, cfg.lr),
        };
        let latent = gan.latent_dim();
        let batches_per_epoch = data::batches_per_epoch(data.len(), cfg.batch_size);
        let all_steps = batches_per_epoch.saturating_mul(u64::from(cfg.epochs));
        let total_steps = cfg.max_steps.map_or(all_steps, |m| m.min(all_steps));
        let mut train_noise = NoiseStream::new(cfg.seed, NoiseKind::Train);
        let mut sample_stream = NoiseStream::new(cfg.seed, NoiseKind::Samples);
        let (progress, sample_noise, elapsed, tally) = match &resume {
            Some((path, ckpt)) => {
                ckpt.restore_into(gan.as_mut(), path)?;
                train_noise.seek(ckpt.rng.train_noise);
                sample_stream.seek(ckpt.rng.sample_noise);
                let (_, noise) = ckpt
                    .sample_noise_for(latent)
                    .ok_or(TrainError::SampleNoise)?;
                let elapsed = Duration::try_from_secs_f64(ckpt.elapsed_s).unwrap_or_default();
                (ckpt.progress, noise.to_vec(), elapsed, ckpt.tally)
            }
            None => {
                let noise = sample_stream.draw(cfg.sample_count * latent);
                let start = Progress {
                    step: 0,
                    epoch: 1,
                    batch: 0,
                };
                (start, noise, Duration::ZERO, EpochTally::default())
            }
        };
        let metrics_path = run.metrics_file();
        let metrics = JsonLines::open(&metrics_path).map_err(|source| TrainError::Metrics {
            path: metrics_path.clone(),
            source,
        })?;
        let events_path = run.events_file();
        let events = JsonLines::open(&events_path).map_err(|source| TrainError::Metrics {
            path: events_path,
            source,
        })?;
        // A resumed run's best and its scorings since: from the epoch scorings in its metrics,
        // which resuming has cut back to the checkpoint's step.
        let mut doctor = Doctor::new();
        if resume.is_some() {
            let text = std::fs::read_to_string(&metrics_path).unwrap_or_default();
            for record in text
                .lines()
                .filter_map(|l| serde_json::from_str::<MetricsRecord>(l).ok())
            {
                if let Some(q) = record.quality {
                    doctor.replay_epoch_fcd(record.stats.step, q.fcd);
                }
            }
        }
        let lr = schedule::lr_at(&cfg.lr_schedule, cfg.lr, progress.step, all_steps);
        Ok(Trainer {
            start_step: progress.step,
            window: (progress.step, elapsed),
            cfg,
            config_toml,
            data,
            run,
            metrics,
            events,
            events_failing: false,
            doctor,
            gan,
            msgs,
            cmds,
            frontend_alive: true,
            progress,
            batches_per_epoch,
            total_steps,
            all_steps,
            lr,
            train_noise,
            sample_stream,
            sample_noise,
            fresh_noise: false,
            paused: false,
            clock: Clock::start(elapsed),
            tally,
            last_checkpoint: None,
            last_saved_step: resume.as_ref().map(|(_, c)| c.progress.step),
            metrics_failing: false,
            evaluator: None,
            show_digit: None,
            grad_norms: GradNorms::default(),
            probes: ProbesOn::default(),
            prober: None,
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
            eval_count: self.cfg.eval_count,
        };
        self.send(TrainMsg::Started(info));
        self.send_samples(false)?;

        let latent = self.gan.latent_dim();
        let (mut real, mut labels, mut z) = (Vec::new(), Vec::new(), Vec::new());
        let mut last_losses = None;
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
                self.lr = schedule::lr_at(
                    &self.cfg.lr_schedule,
                    self.cfg.lr,
                    self.progress.step,
                    self.all_steps,
                );
                self.gan.set_lr(self.lr);
                // Only logged steps pay for measuring the gradients' norms.
                let logged = (self.progress.step + 1).is_multiple_of(self.cfg.log_every)
                    || self.progress.batch + 1 >= self.batches_per_epoch;
                self.gan.measure_grad_norms(logged);
                let losses = self.gan.train_step(&gan::Batch {
                    real: &real,
                    labels: &labels,
                    z: &z,
                    count,
                })?;
                self.grad_norms = self.gan.grad_norms();
                if !losses.all_finite() {
                    break 'run self.diverged(&losses);
                }
                self.progress.step += 1;
                self.progress.batch += 1;
                add(&mut self.tally, &losses);
                // The epoch's last step is logged with the epoch's scores, in `finish_epoch`.
                let epoch_done = self.progress.batch >= self.batches_per_epoch;
                if self.progress.step.is_multiple_of(self.cfg.log_every) && !epoch_done {
                    self.log_step(&losses, None);
                }
                if self.progress.step.is_multiple_of(self.cfg.sample_every) {
                    self.send_samples(self.fresh_noise)?;
                }
                last_losses = Some(losses);
            }
            if let Flow::Stop = self.finish_epoch(last_losses.take())? {
                break FinishReason::EarlyStopped;
            }
        };
        // After a divergence the model holds NaNs: the last good checkpoint stays the newest.
        if reason != FinishReason::Diverged && self.last_saved_step != Some(self.progress.step) {
            let path = self.run.step_checkpoint(self.progress.step);
            self.save_checkpoint(&path, SaveReason::Exit, false);
        }
        let msg = TrainMsg::Finished {
            reason,
            step: self.progress.step,
            last_checkpoint: self.last_checkpoint.clone(),
        };
        self.send(msg);
        Ok(())
    }

    /// A loss went NaN or infinite: say so, then wait, paused, until the front end stops the
    /// run. Nothing is saved from here on.
    fn diverged(&mut self, losses: &StepLosses) -> FinishReason {
        self.clock.pause();
        self.send(TrainMsg::Diverged {
            step: self.progress.step + 1,
            d_loss: losses.d_loss,
            g_loss: losses.g_loss,
        });
        loop {
            if !self.frontend_alive {
                return FinishReason::Diverged;
            }
            match self.cmds.recv() {
                Err(_) | Ok(Command::Stop) => return FinishReason::Diverged,
                Ok(Command::SaveCheckpoint) => {
                    let path = self.run.step_checkpoint(self.progress.step + 1);
                    let newest = self
                        .last_checkpoint
                        .as_ref()
                        .map_or("none".to_string(), |p| p.display().to_string());
                    self.send(TrainMsg::CheckpointFailed {
                        path,
                        error: format!(
                            "not saved: training diverged; the newest checkpoint ({newest}) is the last good one"
                        ),
                    });
                }
                Ok(_) => {}
            }
        }
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
                    self.save_checkpoint(&path, SaveReason::Requested, false);
                }
                Command::Resample => {
                    let len = self.sample_noise.len();
                    self.sample_noise = self.sample_stream.draw(len);
                    self.send_samples(false)?;
                }
                Command::FreshNoise(on) => self.fresh_noise = on,
                Command::ShowDigit(digit) => {
                    self.show_digit = digit.filter(|d| usize::from(*d) < CLASSES);
                    self.send_samples(false)?;
                }
                Command::Evaluate => {
                    // Its own noise, named by the step, so the training streams do not move.
                    if let Some(q) = self.evaluate((1 << 31) | self.progress.step) {
                        let alarms = self.doctor.on_scoring(&q);
                        self.send(TrainMsg::Quality(q));
                        self.raise(alarms);
                    }
                }
                Command::Probe { probe, on } => {
                    self.probes.set(probe, on);
                    if on {
                        self.send_samples(false)?;
                    }
                }
                Command::Stop => return Ok(Flow::Stop),
            }
        }
    }

    fn log_step(&mut self, losses: &StepLosses, quality: Option<&QualityReport>) {
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
            stats: StepStats {
                step: self.progress.step,
                epoch: self.progress.epoch,
                batch: self.progress.batch,
                d_loss: losses.d_loss,
                g_loss: losses.g_loss,
                d_real: losses.d_real,
                d_fake: losses.d_fake,
                lr: self.lr,
                steps_per_s,
                elapsed_s: elapsed.as_secs_f64(),
                g_grad_norm: self.grad_norms.g,
                d_grad_norm: self.grad_norms.d,
            },
            quality: quality.map(QualityFields::from),
        };
        match self.metrics.append(&record) {
            Ok(()) => self.metrics_failing = false,
            // A full disk should not end hours of training: report once, keep going.
            Err(error) if !self.metrics_failing => {
                self.metrics_failing = true;
                let path = self.metrics.path().to_path_buf();
                self.send(TrainMsg::WriteFailed {
                    what: "metrics".to_string(),
                    path,
                    error: error.to_string(),
                });
            }
            Err(_) => {}
        }
        self.send(TrainMsg::Step(record.stats));
        let alarms = self.doctor.on_step(&record.stats);
        self.raise(alarms);
    }

    /// Writes alarms to `events.jsonl` and tells the front end.
    fn raise(&mut self, alarms: Vec<Alarm>) {
        for alarm in alarms {
            match self.events.append(&alarm) {
                Ok(()) => self.events_failing = false,
                Err(error) if !self.events_failing => {
                    self.events_failing = true;
                    let path = self.events.path().to_path_buf();
                    self.send(TrainMsg::WriteFailed {
                        what: "events".to_string(),
                        path,
                        error: error.to_string(),
                    });
                }
                Err(_) => {}
            }
            self.send(TrainMsg::Alarm(alarm));
        }
    }

    /// Scores the generator with the judge on `eval_count` digits from evaluation stream `id`;
    /// `None` when scoring is off or the judge failed (reported once).
    fn evaluate(&mut self, id: u64) -> Option<QualityReport> {
        if self.cfg.eval_count == 0 {
            return None;
        }
        let evaluator = match self
            .evaluator
            .get_or_insert_with(|| Evaluator::builtin().map_err(|e| e.to_string()))
        {
            Ok(e) => e,
            Err(error) => {
                let error = format!("the judge could not be loaded: {error}");
                self.send(TrainMsg::ScoringFailed(error));
                return None;
            }
        };
        // The judge needs two digits at least to compare spreads.
        let count = self.cfg.eval_count.max(2);
        let mut noise = NoiseStream::for_evaluation(self.cfg.seed, id);
        match evaluator.evaluate(self.gan.as_ref(), count, &mut noise) {
            Ok(mut q) => {
                q.step = self.progress.step;
                q.epoch = self.progress.epoch;
                Some(q)
            }
            Err(e) => {
                let error = format!("the judge could not score the digits: {e}");
                self.send(TrainMsg::ScoringFailed(error));
                None
            }
        }
    }

    /// The digit each sample shows, for conditional recipes: the one asked for, or 0-9 in turn.
    fn sample_labels(&self, count: usize) -> Option<Vec<u8>> {
        self.gan.is_conditional().then(|| {
            (0..count)
                .map(|i| self.show_digit.unwrap_or((i % CLASSES) as u8))
                .collect()
        })
    }

    /// The generator's digits (pixels in [-1, 1]) for the fixed noise, or for fresh noise.
    #[allow(clippy::type_complexity)]
    fn sample_images(&mut self, fresh: bool) -> Result<(Vec<f32>, Option<Vec<u8>>), TrainError> {
        let noise = if fresh {
            self.sample_stream.draw(self.sample_noise.len())
        } else {
            self.sample_noise.clone()
        };
        let count = noise.len() / self.gan.latent_dim().max(1);
        let labels = self.sample_labels(count);
        let images = self.gan.generate(&noise, labels.as_deref(), count)?;
        Ok((images, labels))
    }

    /// Grey pixels of the generator's digits for the fixed noise, or for fresh noise.
    fn sample_pixels(&mut self, fresh: bool) -> Result<(Vec<u8>, Option<Vec<u8>>), TrainError> {
        let (images, labels) = self.sample_images(fresh)?;
        Ok((image::to_grey(&images), labels))
    }

    fn send_samples(&mut self, fresh: bool) -> Result<(), TrainError> {
        let (images, labels) = self.sample_images(fresh)?;
        self.send(TrainMsg::Samples(SampleGrid {
            step: self.progress.step,
            width: data::DIGIT_COLS,
            height: data::DIGIT_ROWS,
            pixels: image::to_grey(&images),
            labels,
        }));
        if self.probes.any() {
            self.send_probes(&images);
        }
        Ok(())
    }

    /// Computes the probes that are on for the grid of `images` just sent; a probe that fails
    /// is reported and turned off, and training goes on.
    fn send_probes(&mut self, images: &[f32]) {
        let mut prober = match self.prober.take() {
            Some(prober) => prober,
            None => match Prober::new() {
                Ok(prober) => prober,
                Err(e) => {
                    for probe in [Probe::Morph, Probe::Nearest, Probe::Reading] {
                        self.fail_probe(probe, format!("the judge could not be loaded: {e}"));
                    }
                    return;
                }
            },
        };
        let mut report = ProbeReport {
            step: self.progress.step,
            ..ProbeReport::default()
        };
        if self.probes.morph {
            match probe::morph(self.gan.as_ref(), self.cfg.seed) {
                Ok(strip) => report.morph = Some(strip),
                Err(e) => self.fail_probe(Probe::Morph, e.to_string()),
            }
        }
        if self.probes.reading {
            match prober.readings(images) {
                Ok(readings) => report.readings = Some(readings),
                Err(e) => self.fail_probe(Probe::Reading, e.to_string()),
            }
        }
        if self.probes.nearest {
            match prober.nearest(images, &self.data) {
                Ok(nearest) => report.nearest = Some(nearest),
                Err(e) => self.fail_probe(Probe::Nearest, e.to_string()),
            }
        }
        self.prober = Some(prober);
        self.send(TrainMsg::Probes(report));
    }

    fn fail_probe(&mut self, probe: Probe, error: String) {
        self.probes.set(probe, false);
        self.send(TrainMsg::ProbeFailed { probe, error });
    }

    /// Scores, logs and checkpoints the epoch just done; `Flow::Stop` when `train.early_stop`
    /// scorings in a row found no better Fréchet distance.
    fn finish_epoch(&mut self, last_losses: Option<StepLosses>) -> Result<Flow, TrainError> {
        let epoch = self.progress.epoch;
        let quality = self.evaluate(u64::from(epoch));
        if let Some(losses) = &last_losses {
            self.log_step(losses, quality.as_ref());
        }
        let mut best = false;
        if let Some(q) = &quality {
            self.send(TrainMsg::Quality(q.clone()));
            let (alarms, improved) = self.doctor.on_epoch_scoring(q);
            self.raise(alarms);
            best = improved;
        }
        let sample_png = match self.write_epoch_png(epoch) {
            Ok(path) => Some(path),
            Err(error) => {
                let path = self.run.epoch_samples(epoch);
                self.send(TrainMsg::WriteFailed {
                    what: "sample grid".to_string(),
                    path,
                    error,
                });
                None
            }
        };
        let elapsed = self.clock.active().as_secs_f64();
        let steps = self.progress.step - self.start_step;
        let session = elapsed - self.window_start_offset();
        let t = &self.tally;
        let summary = EpochSummary {
            epoch,
            epochs: self.cfg.epochs,
            step: self.progress.step,
            d_loss: mean(t, t.d_loss),
            g_loss: mean(t, t.g_loss),
            d_real: mean(t, t.d_real),
            d_fake: mean(t, t.d_fake),
            steps_per_s: if session > 0.0 {
                steps as f64 / session
            } else {
                0.0
            },
            elapsed_s: elapsed,
            sample_png,
            quality,
        };
        self.tally = EpochTally::default();
        self.progress.epoch += 1;
        self.progress.batch = 0;
        let path = self.run.epoch_checkpoint(epoch);
        self.save_checkpoint(&path, SaveReason::EpochEnd, best);
        self.send(TrainMsg::EpochDone(summary));
        // Scoring, pictures and checkpoints are not steps: the next speed window starts now.
        self.window = (self.progress.step, self.clock.active());
        let patience = self.cfg.early_stop;
        let stalled = self.doctor.best().is_some_and(|b| b.since >= patience);
        Ok(if patience > 0 && stalled {
            Flow::Stop
        } else {
            Flow::Continue
        })
    }

    /// Training time the run had before this session (non-zero when resumed).
    fn window_start_offset(&self) -> f64 {
        self.clock.offset.as_secs_f64()
    }

    fn write_epoch_png(&mut self, epoch: u32) -> Result<PathBuf, String> {
        let (pixels, _) = self.sample_pixels(false).map_err(|e| e.to_string())?;
        let columns = image::square_columns(self.cfg.sample_count);
        let png = image::grid_png(&pixels, data::DIGIT_COLS, data::DIGIT_ROWS, columns)
            .map_err(|e| e.to_string())?;
        let path = self.run.epoch_samples(epoch);
        crate::files::atomic::write(&path, &png).map_err(|e| e.to_string())?;
        Ok(path)
    }

    fn checkpoint(&self) -> Checkpoint {
        let latent = self.gan.latent_dim();
        Checkpoint {
            preset: self.gan.preset().name().to_string(),
            architecture: self.gan.preset().architecture().to_string(),
            seed: self.cfg.seed,
            progress: self.progress,
            rng: RngPositions {
                train_noise: self.train_noise.position(),
                sample_noise: self.sample_stream.position(),
            },
            config_toml: self.config_toml.clone(),
            elapsed_s: self.clock.active().as_secs_f64(),
            tally: self.tally,
            sample_noise: checkpoint::sample_noise_tensor(
                self.sample_noise.len() / latent.max(1),
                latent,
                self.sample_noise.clone(),
            ),
            state: self.gan.state(),
        }
    }

    /// Writes a checkpoint to `path` and to `latest.safetensors` (and, when it is the `best`
    /// so far, to `best.safetensors`), and tells the front end how it went; then deletes
    /// numbered checkpoints beyond the newest `keep_checkpoints`. A failed save is reported, not
    /// fatal: training goes on, and no older checkpoint is touched.
    fn save_checkpoint(&mut self, path: &Path, reason: SaveReason, best: bool) {
        let ckpt = self.checkpoint();
        let latest = self.run.latest_checkpoint();
        let best_path = self.run.best_checkpoint();
        let mut targets = vec![path, latest.as_path()];
        if best {
            targets.push(best_path.as_path());
        }
        let result = ckpt.encode().and_then(|bytes| {
            for target in targets {
                crate::files::atomic::write(target, &bytes).map_err(|source| {
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
                if let Some(b) = self.doctor.best().filter(|_| best) {
                    self.send(TrainMsg::BestCheckpoint {
                        path: best_path.clone(),
                        step: b.step,
                        fcd: b.fcd,
                    });
                }
                if let Err(error) = self.run.prune_checkpoints(self.cfg.keep_checkpoints, path) {
                    self.send(TrainMsg::WriteFailed {
                        what: "old checkpoints (deleting)".to_string(),
                        path: self.run.checkpoints_dir(),
                        error: error.to_string(),
                    });
                }
            }
            Err(e) => self.send(TrainMsg::CheckpointFailed {
                path: path.to_path_buf(),
                error: e.to_string(),
            }),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::train::testing;
    use std::sync::mpsc;

    #[test]
    fn a_nan_loss_stops_training_keeps_the_last_good_checkpoint_and_waits() {
        let tmp = tempfile::tempdir().unwrap();
        let (msg_tx, msg_rx) = mpsc::channel();
        let (cmd_tx, cmd_rx) = mpsc::channel();
        let handle = spawn(testing::diverging_job(tmp.path(), 4), msg_tx, cmd_rx).unwrap();
        let mut seen = Vec::new();
        loop {
            let msg = msg_rx.recv_timeout(Duration::from_secs(30)).unwrap();
            let diverged = matches!(msg, TrainMsg::Diverged { .. });
            seen.push(msg);
            if diverged {
                break;
            }
        }
        assert!(
            matches!(seen.last(), Some(TrainMsg::Diverged { step: 4, .. })),
            "{:?}",
            seen.last()
        );
        // The trainer waits: a save is refused, and nothing else happens until Stop.
        cmd_tx.send(Command::SaveCheckpoint).unwrap();
        match msg_rx.recv_timeout(Duration::from_secs(10)).unwrap() {
            TrainMsg::CheckpointFailed { error, .. } => {
                assert!(error.contains("diverged"), "{error}")
            }
            other => panic!("{other:?}"),
        }
        cmd_tx.send(Command::Stop).unwrap();
        match msg_rx.recv_timeout(Duration::from_secs(10)).unwrap() {
            TrainMsg::Finished {
                reason,
                step,
                last_checkpoint,
            } => {
                assert_eq!((reason, step), (FinishReason::Diverged, 3));
                assert!(last_checkpoint.unwrap().ends_with("epoch-001.safetensors"));
            }
            other => panic!("{other:?}"),
        }
        handle.join().unwrap();
        // latest.safetensors is the epoch-1 checkpoint, at step 2: no NaN state was written.
        let latest = Checkpoint::load(&tmp.path().join("checkpoints/latest.safetensors")).unwrap();
        assert_eq!(latest.progress.step, 2);
        let names: Vec<String> = std::fs::read_dir(tmp.path().join("checkpoints"))
            .unwrap()
            .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
            .collect();
        assert_eq!(names.len(), 2, "{names:?}");
    }

    #[test]
    fn each_step_takes_its_rate_from_the_schedule_and_logs_it() {
        use crate::train::schedule::{Schedule, ScheduleKind};
        let tmp = tempfile::tempdir().unwrap();
        let config = Config {
            epochs: 3,
            log_every: 1,
            eval_count: 0,
            lr_schedule: Schedule {
                kind: ScheduleKind::Linear,
                final_factor: 0.0,
                ..Schedule::default()
            },
            ..Config::default()
        };
        // 2 steps an epoch, 6 in all.
        let job = testing::small_job(tmp.path(), config.clone(), None);
        let (msg_tx, msg_rx) = mpsc::channel();
        let (_cmd_tx, cmd_rx) = mpsc::channel();
        let handle = spawn(job, msg_tx, cmd_rx).unwrap();
        let mut lrs = Vec::new();
        loop {
            match msg_rx.recv_timeout(Duration::from_secs(60)).unwrap() {
                TrainMsg::Step(s) => lrs.push((s.step, s.lr)),
                TrainMsg::Finished { .. } => break,
                _ => {}
            }
        }
        handle.join().unwrap();
        // A straight line from the base rate at the first step to 0 at the sixth.
        let want: Vec<(u64, f64)> = (1..=6)
            .map(|step| (step, config.lr * (1.0 - (step - 1) as f64 / 5.0)))
            .collect();
        assert_eq!(lrs.len(), want.len(), "{lrs:?}");
        for ((step, lr), (want_step, want_lr)) in lrs.iter().zip(&want) {
            assert_eq!(step, want_step);
            assert!(
                (lr - want_lr).abs() < 1e-12,
                "step {step}: {lr} vs {want_lr}"
            );
        }
        let metrics = std::fs::read_to_string(tmp.path().join("metrics.jsonl")).unwrap();
        let last: serde_json::Value =
            serde_json::from_str(metrics.lines().last().unwrap()).unwrap();
        assert_eq!(last["lr"].as_f64(), Some(0.0), "{metrics}");
    }
}
