//! What a run is doing, folded from the trainer's messages: its facts, loss histories, latest
//! digits and scores, where it is, and the latest news. Every front end reads the run from here.
//!
//! No terminal, no colours, no I/O: the dashboard draws from a `RunState`, the headless front end
//! prints from one, and anything that can replay `TrainMsg`s (a run folder's metrics, say) can
//! build one.

use std::path::PathBuf;

use crate::protocol::{
    Alarm, AlarmKind, EpochSummary, FinishReason, ProbeReport, QualityReport, RunInfo, SampleGrid,
    SaveReason, StepStats, TrainMsg,
};
use crate::run::format::{format_duration, format_value};
use crate::run::history::{Downsampled, History, SCORE_POINTS, Series};

/// Why no scores come: an epoch ended without any.
pub const SCORING_OFF_NOTE: &str =
    "no scores: this run's scoring is off (run.eval_count = 0) or the judge failed";

/// Where the run is, as far as the trainer has told us.
#[derive(Debug, Clone, PartialEq)]
pub enum Phase {
    /// Before `TrainMsg::Started`.
    Starting,
    Training,
    /// `Command::Stop` was sent; waiting for `Finished` or `Error`.
    Stopping,
    Finished(FinishReason),
    Failed(String),
    /// A loss went NaN or infinite at this step; the trainer waits for `Stop`.
    Diverged(u64),
}

/// How a note should look.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum NoteKind {
    Info,
    Ok,
    Warning,
    Error,
}

/// The latest thing worth telling about the run.
#[derive(Debug, Clone, PartialEq)]
pub struct Note {
    pub kind: NoteKind,
    pub text: String,
}

/// What a dashboard reads, in the order it happened: the run's messages, and news from
/// elsewhere (a watched run's answers to commands, a replay's ending).
// A `Feed` is as big as the `TrainMsg` it carries, which channels move whole anyway.
#[allow(clippy::large_enum_variant)]
#[derive(Debug, Clone, PartialEq)]
pub enum Feed {
    Msg(TrainMsg),
    Note(Note),
}

impl From<TrainMsg> for Feed {
    fn from(msg: TrainMsg) -> Feed {
        Feed::Msg(msg)
    }
}

impl From<Note> for Feed {
    fn from(note: Note) -> Feed {
        Feed::Note(note)
    }
}

/// Alarms kept for the plots' markers: the latest ones (a run raises few).
pub const ALARMS_KEPT: usize = 64;

/// An alarm as the plots mark it.
#[derive(Debug, Clone, PartialEq)]
pub struct AlarmMark {
    pub kind: AlarmKind,
    pub step: u64,
    /// Steps logged when it came (its point in the plots is the one logged last then).
    pub logged: u64,
}

/// The best checkpoint so far.
#[derive(Debug, Clone, PartialEq)]
pub struct BestCheckpoint {
    pub path: PathBuf,
    pub step: u64,
    pub fcd: f64,
}

/// One run, as its messages describe it.
#[derive(Debug, Clone)]
pub struct RunState {
    run: Option<RunInfo>,
    last_step: Option<StepStats>,
    /// The latest step the trainer mentioned in any message.
    step: Option<u64>,
    histories: [History; 6],
    /// The latest alarms, oldest first, at most `ALARMS_KEPT`.
    alarms: std::collections::VecDeque<AlarmMark>,
    /// The latest alarm in full.
    last_alarm: Option<Alarm>,
    best: Option<BestCheckpoint>,
    samples: Option<SampleGrid>,
    /// The latest probes of the generator.
    probes: Option<ProbeReport>,
    /// The judge's latest scores.
    quality: Option<QualityReport>,
    /// The judge's score at each report, over the whole run.
    score_history: Downsampled,
    /// An epoch ended without scores before any report came: scoring is off or the judge failed.
    scoring_off: bool,
    last_epoch: Option<EpochSummary>,
    /// As acknowledged by the trainer.
    paused: bool,
    last_checkpoint: Option<PathBuf>,
    last_error: Option<String>,
    note: Option<Note>,
    phase: Phase,
}

impl Default for RunState {
    fn default() -> Self {
        RunState::new()
    }
}

impl RunState {
    pub fn new() -> RunState {
        RunState {
            run: None,
            last_step: None,
            step: None,
            histories: Default::default(),
            alarms: Default::default(),
            last_alarm: None,
            best: None,
            samples: None,
            probes: None,
            quality: None,
            score_history: Downsampled::new(SCORE_POINTS),
            scoring_off: false,
            last_epoch: None,
            paused: false,
            last_checkpoint: None,
            last_error: None,
            note: None,
            phase: Phase::Starting,
        }
    }

    /// Folds one trainer message in.
    pub fn on_msg(&mut self, msg: &TrainMsg) {
        let step = match msg {
            TrainMsg::Step(s) => Some(s.step),
            TrainMsg::Paused { step }
            | TrainMsg::Resumed { step }
            | TrainMsg::CheckpointSaved { step, .. }
            | TrainMsg::Finished { step, .. } => Some(*step),
            _ => None,
        };
        if step.is_some() {
            self.step = self.step.max(step);
        }
        match msg {
            TrainMsg::Started(info) => {
                self.scoring_off = info.eval_count == 0;
                self.run = Some(info.clone());
                if self.phase == Phase::Starting {
                    self.phase = Phase::Training;
                }
            }
            TrainMsg::Step(stats) => {
                for (history, series) in self.histories.iter_mut().zip(Series::KEPT) {
                    history.push(series.value(stats));
                }
                self.last_step = Some(*stats);
            }
            TrainMsg::Samples(grid) => self.samples = Some(grid.clone()),
            TrainMsg::Quality(report) => {
                self.score_history.push(report.score as f32);
                self.scoring_off = false;
                self.quality = Some(report.clone());
            }
            // The epoch counter shows this; a note would hide the last checkpoint's path.
            TrainMsg::EpochDone(summary) => {
                if summary.quality.is_none() && self.quality.is_none() {
                    self.scoring_off = true;
                }
                self.last_epoch = Some(summary.clone());
            }
            TrainMsg::CheckpointSaved { path, step, reason } => {
                let why = match reason {
                    SaveReason::Requested => "checkpoint saved",
                    SaveReason::EpochEnd => "end-of-epoch checkpoint saved",
                    SaveReason::Exit => "final checkpoint saved",
                };
                self.tell(
                    NoteKind::Ok,
                    format!("{why} at step {step}: {}", path.display()),
                );
                self.last_checkpoint = Some(path.clone());
            }
            TrainMsg::CheckpointFailed { path, error } => {
                self.fail_softly(format!(
                    "checkpoint NOT saved to {}: {error}",
                    path.display()
                ));
            }
            // The error already says what went wrong; no file is involved.
            TrainMsg::ScoringFailed(error) => {
                self.fail_softly(format!("{error}; training goes on"));
            }
            TrainMsg::Probes(report) => self.probes = Some(report.clone()),
            TrainMsg::ProbeFailed { probe, error } => {
                self.fail_softly(format!("the {probe:?} probe failed and is off: {error}"));
            }
            TrainMsg::WriteFailed { what, path, error } => {
                self.fail_softly(format!(
                    "{what} failed at {}: {error}; training goes on",
                    path.display()
                ));
            }
            TrainMsg::Diverged {
                step,
                d_loss,
                g_loss,
            } => {
                self.phase = Phase::Diverged(*step);
                let newest = self.last_checkpoint.as_ref().map_or_else(
                    || "No checkpoint was saved.".to_string(),
                    |p| format!("The last good checkpoint is {}", p.display()),
                );
                // The key comes before the path, so a long path cut short cannot hide it.
                self.fail_softly(format!(
                    "training diverged at step {step} (D loss {}, G loss {}) and stopped; press q to quit. Nothing more is saved. {newest}",
                    format_value(*d_loss),
                    format_value(*g_loss)
                ));
            }
            TrainMsg::Alarm(alarm) => {
                if self.alarms.len() == ALARMS_KEPT {
                    self.alarms.pop_front();
                }
                self.alarms.push_back(AlarmMark {
                    kind: alarm.kind,
                    step: alarm.step,
                    logged: self.histories[0].full.total(),
                });
                self.tell(
                    NoteKind::Warning,
                    format!(
                        "{} at step {}: {}",
                        alarm.kind.name(),
                        alarm.step,
                        alarm.message
                    ),
                );
                self.last_alarm = Some(alarm.clone());
            }
            TrainMsg::BestCheckpoint { path, step, fcd } => {
                self.best = Some(BestCheckpoint {
                    path: path.clone(),
                    step: *step,
                    fcd: *fcd,
                });
            }
            TrainMsg::Paused { .. } => self.paused = true,
            TrainMsg::Resumed { .. } => self.paused = false,
            TrainMsg::Finished {
                reason,
                last_checkpoint,
                ..
            } => {
                self.phase = Phase::Finished(*reason);
                self.paused = false;
                if last_checkpoint.is_some() {
                    self.last_checkpoint.clone_from(last_checkpoint);
                }
            }
            TrainMsg::Error(error) => {
                self.fail_softly(error.clone());
                self.phase = Phase::Failed(error.clone());
            }
        }
    }

    /// The latest alarms, oldest first.
    pub fn alarms(&self) -> &std::collections::VecDeque<AlarmMark> {
        &self.alarms
    }

    pub fn last_alarm(&self) -> Option<&Alarm> {
        self.last_alarm.as_ref()
    }

    /// The best checkpoint so far (lowest Fréchet distance at an epoch's end).
    pub fn best(&self) -> Option<&BestCheckpoint> {
        self.best.as_ref()
    }

    /// Steps logged so far.
    pub fn logged_steps(&self) -> u64 {
        self.histories[0].full.total()
    }

    /// The trainer's channel closed. After `Finished` that is normal; before it, the trainer
    /// died without saying why (a panic, most likely).
    pub fn on_disconnect(&mut self) {
        if !matches!(self.phase, Phase::Finished(_) | Phase::Failed(_)) {
            let error =
                "the trainer stopped without a final message (its thread may have panicked)"
                    .to_string();
            self.last_error = Some(error.clone());
            self.phase = Phase::Failed(error);
        }
    }

    /// The front end asked the trainer to stop; the run waits for `Finished`.
    pub fn stop_requested(&mut self) {
        self.phase = Phase::Stopping;
    }

    /// Makes `text` the latest news.
    pub fn tell(&mut self, kind: NoteKind, text: String) {
        self.note = Some(Note { kind, text });
    }

    pub fn clear_note(&mut self) {
        self.note = None;
    }

    /// Something failed and the run goes on: the latest error, and the latest news.
    fn fail_softly(&mut self, text: String) {
        self.last_error = Some(text.clone());
        self.tell(NoteKind::Error, text);
    }

    pub fn run_info(&self) -> Option<&RunInfo> {
        self.run.as_ref()
    }

    pub fn last_step(&self) -> Option<&StepStats> {
        self.last_step.as_ref()
    }

    pub fn history(&self, series: Series) -> &History {
        let [d_loss, g_loss, d_real, d_fake, g_norm, d_norm] = &self.histories;
        match series {
            Series::DLoss => d_loss,
            Series::GLoss => g_loss,
            Series::DReal => d_real,
            Series::DFake => d_fake,
            Series::GGradNorm => g_norm,
            Series::DGradNorm => d_norm,
        }
    }

    /// The latest step the trainer reported (steps taken so far), if any.
    pub fn step(&self) -> Option<u64> {
        self.step
    }

    /// The latest probes of the generator, whichever grid they were for.
    pub fn probes(&self) -> Option<&ProbeReport> {
        self.probes.as_ref()
    }

    /// The latest probes if they were computed for the sample grid shown now.
    pub fn probes_of_samples(&self) -> Option<&ProbeReport> {
        let grid = self.samples.as_ref()?;
        self.probes.as_ref().filter(|p| p.step == grid.step)
    }

    pub fn samples(&self) -> Option<&SampleGrid> {
        self.samples.as_ref()
    }

    pub fn last_epoch(&self) -> Option<&EpochSummary> {
        self.last_epoch.as_ref()
    }

    /// Paused as acknowledged by the trainer.
    pub fn paused(&self) -> bool {
        self.paused
    }

    pub fn quality(&self) -> Option<&QualityReport> {
        self.quality.as_ref()
    }

    /// The judge's score at each report, oldest first.
    pub fn score_history(&self) -> &Downsampled {
        &self.score_history
    }

    /// An epoch ended without scores before any came: none will.
    pub fn scoring_off(&self) -> bool {
        self.scoring_off
    }

    /// Whether the generator takes a digit (its sample grid is labelled); `None` before the
    /// first grid.
    pub fn conditional(&self) -> Option<bool> {
        self.samples.as_ref().map(|g| g.labels.is_some())
    }

    pub fn last_checkpoint(&self) -> Option<&PathBuf> {
        self.last_checkpoint.as_ref()
    }

    pub fn last_error(&self) -> Option<&str> {
        self.last_error.as_deref()
    }

    pub fn note(&self) -> Option<&Note> {
        self.note.as_ref()
    }

    pub fn phase(&self) -> &Phase {
        &self.phase
    }

    /// The learning rate of the latest step.
    pub fn learning_rate(&self) -> Option<f64> {
        self.last_step.map(|s| s.lr)
    }

    /// Seconds left at the current speed, if that can be known.
    pub fn eta_s(&self) -> Option<f64> {
        let (run, step) = (self.run.as_ref()?, self.last_step.as_ref()?);
        let left = run
            .total_steps
            .saturating_sub(self.step.unwrap_or(step.step)) as f64;
        (step.steps_per_s.is_finite() && step.steps_per_s > 0.0).then(|| left / step.steps_per_s)
    }

    /// The paragraph that tells how the run went, for printing after it.
    pub fn summary(&self) -> String {
        let mut parts = Vec::new();
        let Some(run) = &self.run else {
            let mut text =
                "The trainer never reported a start, so no steps were taken.".to_string();
            if let Some(error) = &self.last_error {
                text.push_str(&format!(" Error: {error}."));
            }
            return text;
        };
        let how = match &self.phase {
            Phase::Finished(FinishReason::Completed) => "completed",
            Phase::Finished(FinishReason::StepLimit) => "reached its step limit",
            Phase::Finished(FinishReason::EarlyStopped) => {
                "stopped early (train.early_stop: the Fréchet distance stopped improving)"
            }
            Phase::Finished(FinishReason::Stopped) => "was stopped",
            Phase::Finished(FinishReason::Diverged) | Phase::Diverged(_) => {
                "diverged (a loss became NaN or infinite)"
            }
            Phase::Failed(_) => "failed",
            Phase::Stopping => "was left while stopping",
            Phase::Starting | Phase::Training => "was left running",
        };
        let step = self.step.unwrap_or(run.start_step);
        let epoch = self.last_step.map_or(0, |s| s.epoch);
        parts.push(format!(
            "Run `{}` on {} {how} at step {step} of {} (epoch {epoch} of {}).",
            run.preset, run.data_source, run.total_steps, run.epochs
        ));
        if let Some(s) = &self.last_step {
            parts.push(format!(
                "Last losses: D {}, G {}; D(x) {}, D(G(z)) {}; {} elapsed at {:.1} steps/s.",
                format_value(s.d_loss),
                format_value(s.g_loss),
                format_value(s.d_real),
                format_value(s.d_fake),
                format_duration(s.elapsed_s),
                s.steps_per_s
            ));
        }
        if let Phase::Failed(error) = &self.phase {
            parts.push(format!("Error: {error}."));
        } else if let Some(error) = &self.last_error {
            parts.push(format!("Last error: {error}."));
        }
        if let Some(b) = &self.best {
            parts.push(format!(
                "Best checkpoint (fcd {:.1} at step {}): {}.",
                b.fcd,
                b.step,
                b.path.display()
            ));
        }
        match &self.last_checkpoint {
            Some(path) => parts.push(format!("Last checkpoint: {}.", path.display())),
            None => parts.push("No checkpoint was saved.".to_string()),
        }
        parts.push(format!("Run folder: {}", run.run_dir.display()));
        parts.join(" ")
    }
}

#[cfg(test)]
pub(crate) mod tests;
