//! Dashboard state and its pure update function.
//!
//! `App` folds `TrainMsg`s in (`on_msg`) and turns `Action`s into at most one `Command` for the
//! trainer (`update`). It does no I/O, so every state change is a plain function call in tests.

use std::collections::VecDeque;
use std::path::PathBuf;

use crate::action::Action;
use crate::protocol::{
    Command, EpochSummary, FinishReason, QualityReport, RunInfo, SampleGrid, SaveReason, StepStats,
    TrainMsg,
};
use crate::theme::{Theme, ThemeSet};

/// Logged steps kept at full resolution per series: more than any terminal is wide.
pub const RECENT_POINTS: usize = 512;
/// Points kept for the whole-run view per series, however long the run.
pub const FULL_POINTS: usize = 256;
/// Judge reports kept for the score's trend, however long the run (one point per report until
/// then, after that means of neighbouring reports).
pub const SCORE_POINTS: usize = 256;

/// The status note while the trainer scores on request.
pub const SCORING_NOTE: &str = "scoring...";
/// Why no scores come: an epoch ended without any.
pub const SCORING_OFF_NOTE: &str =
    "no scores: this run's scoring is off (run.eval_count = 0) or the judge failed";

/// A bounded ring of the latest values.
#[derive(Debug, Clone, PartialEq)]
pub struct Ring {
    values: VecDeque<f32>,
    capacity: usize,
}

impl Ring {
    pub fn new(capacity: usize) -> Ring {
        Ring {
            values: VecDeque::with_capacity(capacity),
            capacity: capacity.max(1),
        }
    }

    pub fn push(&mut self, value: f32) {
        if self.values.len() == self.capacity {
            self.values.pop_front();
        }
        self.values.push_back(value);
    }

    pub fn len(&self) -> usize {
        self.values.len()
    }

    pub fn is_empty(&self) -> bool {
        self.values.is_empty()
    }

    /// The last `n` values, oldest first.
    pub fn tail(&self, n: usize) -> Vec<f32> {
        let skip = self.values.len().saturating_sub(n);
        self.values.iter().skip(skip).copied().collect()
    }
}

/// The whole run in at most `capacity` points: each point is the mean of `per_point` values,
/// and when the points fill up, neighbours merge pairwise and `per_point` doubles. Memory and
/// drawing cost stay the same from the first step to the last.
#[derive(Debug, Clone, PartialEq)]
pub struct Downsampled {
    points: Vec<f32>,
    capacity: usize,
    per_point: u64,
    pending_sum: f64,
    pending_count: u64,
    total: u64,
}

impl Downsampled {
    /// `capacity` is rounded up to an even number of at least 2 so pairs always merge whole.
    pub fn new(capacity: usize) -> Downsampled {
        let capacity = capacity.max(2).div_ceil(2) * 2;
        Downsampled {
            points: Vec::with_capacity(capacity),
            capacity,
            per_point: 1,
            pending_sum: 0.0,
            pending_count: 0,
            total: 0,
        }
    }

    pub fn push(&mut self, value: f32) {
        self.total += 1;
        self.pending_sum += f64::from(value);
        self.pending_count += 1;
        if self.pending_count < self.per_point {
            return;
        }
        self.points
            .push((self.pending_sum / self.pending_count as f64) as f32);
        self.pending_sum = 0.0;
        self.pending_count = 0;
        if self.points.len() >= self.capacity {
            self.points = self
                .points
                .chunks(2)
                .map(|pair| pair.iter().sum::<f32>() / pair.len() as f32)
                .collect();
            self.per_point *= 2;
        }
    }

    /// The points, oldest first, including a partly filled last one.
    pub fn points(&self) -> Vec<f32> {
        let mut points = self.points.clone();
        if self.pending_count > 0 {
            points.push((self.pending_sum / self.pending_count as f64) as f32);
        }
        points
    }

    /// Values averaged into each full point.
    pub fn per_point(&self) -> u64 {
        self.per_point
    }

    /// Values pushed since the start.
    pub fn total(&self) -> u64 {
        self.total
    }
}

/// One plotted series: a recent ring and the down-sampled whole run.
#[derive(Debug, Clone, PartialEq)]
pub struct History {
    pub recent: Ring,
    pub full: Downsampled,
}

impl Default for History {
    fn default() -> Self {
        History {
            recent: Ring::new(RECENT_POINTS),
            full: Downsampled::new(FULL_POINTS),
        }
    }
}

impl History {
    pub fn push(&mut self, value: f32) {
        self.recent.push(value);
        self.full.push(value);
    }
}

/// The four plotted numbers of a step.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Series {
    DLoss,
    GLoss,
    DReal,
    DFake,
}

impl Series {
    pub const ALL: [Series; 4] = [Series::DLoss, Series::GLoss, Series::DReal, Series::DFake];

    pub fn label(self) -> &'static str {
        match self {
            Series::DLoss => "D loss",
            Series::GLoss => "G loss",
            Series::DReal => "D(x)",
            Series::DFake => "D(G(z))",
        }
    }

    pub fn value(self, stats: &StepStats) -> f32 {
        match self {
            Series::DLoss => stats.d_loss,
            Series::GLoss => stats.g_loss,
            Series::DReal => stats.d_real,
            Series::DFake => stats.d_fake,
        }
    }
}

/// Which span the loss plots show.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum HistoryView {
    Recent,
    WholeRun,
}

/// How the digit grid is drawn.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DigitMode {
    Ascii,
    HalfBlock,
}

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

/// How a status note should look.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum NoteKind {
    Info,
    Ok,
    Warning,
    Error,
}

/// The status bar's message line: the latest thing worth telling.
#[derive(Debug, Clone, PartialEq)]
pub struct Note {
    pub kind: NoteKind,
    pub text: String,
}

/// All dashboard state.
#[derive(Debug, Clone)]
pub struct App {
    run: Option<RunInfo>,
    last_step: Option<StepStats>,
    /// The latest step the trainer mentioned in any message.
    step: Option<u64>,
    histories: [History; 4],
    samples: Option<SampleGrid>,
    /// The judge's latest scores.
    quality: Option<QualityReport>,
    /// The judge's score at each report, over the whole run.
    score_history: Downsampled,
    /// `Command::Evaluate` was sent and no scores have come back yet.
    scoring: bool,
    /// An epoch ended without scores before any report came: scoring is off or the judge failed.
    scoring_off: bool,
    /// The digit asked for with `Command::ShowDigit`, or `None` for all ten.
    digit_request: Option<u8>,
    last_epoch: Option<EpochSummary>,
    /// As acknowledged by the trainer.
    paused: bool,
    /// A pause state asked for and not yet acknowledged.
    pause_requested: Option<bool>,
    saving: bool,
    last_checkpoint: Option<PathBuf>,
    last_error: Option<String>,
    note: Option<Note>,
    /// The note is about a bad theme file, so moving on to a good theme clears it.
    note_is_theme_warning: bool,
    help_open: bool,
    history_view: HistoryView,
    digit_mode: DigitMode,
    fresh_noise: bool,
    themes: ThemeSet,
    phase: Phase,
    stay_open_when_done: bool,
    /// The signal that asked the dashboard to quit, if one did.
    signalled: Option<i32>,
    exit: bool,
}

impl Default for App {
    fn default() -> Self {
        App::new()
    }
}

impl App {
    pub fn new() -> App {
        App {
            run: None,
            last_step: None,
            step: None,
            histories: Default::default(),
            samples: None,
            quality: None,
            score_history: Downsampled::new(SCORE_POINTS),
            scoring: false,
            scoring_off: false,
            digit_request: None,
            last_epoch: None,
            paused: false,
            pause_requested: None,
            saving: false,
            last_checkpoint: None,
            last_error: None,
            note: None,
            note_is_theme_warning: false,
            help_open: false,
            history_view: HistoryView::Recent,
            digit_mode: DigitMode::Ascii,
            fresh_noise: false,
            themes: ThemeSet::default(),
            phase: Phase::Starting,
            stay_open_when_done: true,
            signalled: None,
            exit: false,
        }
    }

    /// Installs the themes `t` cycles through; a warning goes to the status line.
    pub fn set_themes(&mut self, themes: ThemeSet, warning: Option<String>) {
        self.themes = themes;
        if let Some(text) = warning {
            self.set_note(NoteKind::Warning, text);
            self.note_is_theme_warning = true;
        }
    }

    /// Whether the dashboard stays up after the run ends on its own (until a quit key), so the
    /// final digits can be looked at. When false the loop ends with the run.
    pub fn set_stay_open_when_done(&mut self, stay: bool) {
        self.stay_open_when_done = stay;
    }

    /// Folds one trainer message into the state.
    pub fn on_msg(&mut self, msg: TrainMsg) {
        let step = match &msg {
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
                self.run = Some(info);
                if self.phase == Phase::Starting {
                    self.phase = Phase::Training;
                }
            }
            TrainMsg::Step(stats) => {
                let [d_loss, g_loss, d_real, d_fake] = &mut self.histories;
                d_loss.push(stats.d_loss);
                g_loss.push(stats.g_loss);
                d_real.push(stats.d_real);
                d_fake.push(stats.d_fake);
                self.last_step = Some(stats);
            }
            TrainMsg::Samples(grid) => self.samples = Some(grid),
            TrainMsg::Quality(report) => {
                self.score_history.push(report.score as f32);
                self.scoring_off = false;
                if std::mem::take(&mut self.scoring)
                    && self.note.as_ref().is_some_and(|n| n.text == SCORING_NOTE)
                {
                    self.set_note(
                        NoteKind::Ok,
                        format!(
                            "scored {} digits of step {} in {}: score {:.2}",
                            report.count,
                            report.step,
                            format_duration(report.seconds),
                            report.score
                        ),
                    );
                }
                self.quality = Some(report);
            }
            // The epoch counter shows this; a note would hide the last checkpoint's path.
            TrainMsg::EpochDone(summary) => {
                if summary.quality.is_none() && self.quality.is_none() {
                    self.scoring_off = true;
                    if std::mem::take(&mut self.scoring) {
                        self.set_note(NoteKind::Warning, SCORING_OFF_NOTE.to_string());
                    }
                }
                self.last_epoch = Some(summary);
            }
            TrainMsg::CheckpointSaved { path, step, reason } => {
                self.saving = false;
                let why = match reason {
                    SaveReason::Requested => "checkpoint saved",
                    SaveReason::EpochEnd => "end-of-epoch checkpoint saved",
                    SaveReason::Exit => "final checkpoint saved",
                };
                self.set_note(
                    NoteKind::Ok,
                    format!("{why} at step {step}: {}", path.display()),
                );
                self.last_checkpoint = Some(path);
            }
            TrainMsg::CheckpointFailed { path, error } => {
                self.saving = false;
                let text = format!("checkpoint NOT saved to {}: {error}", path.display());
                self.last_error = Some(text.clone());
                self.set_note(NoteKind::Error, text);
            }
            // The error already says what went wrong; no file is involved.
            TrainMsg::ScoringFailed(error) => {
                self.scoring = false;
                let text = format!("{error}; training goes on");
                self.last_error = Some(text.clone());
                self.set_note(NoteKind::Error, text);
            }
            TrainMsg::WriteFailed { what, path, error } => {
                let text = format!(
                    "{what} failed at {}: {error}; training goes on",
                    path.display()
                );
                self.last_error = Some(text.clone());
                self.set_note(NoteKind::Error, text);
            }
            TrainMsg::Diverged {
                step,
                d_loss,
                g_loss,
            } => {
                self.phase = Phase::Diverged(step);
                self.pause_requested = None;
                self.saving = false;
                self.scoring = false;
                let newest = self.last_checkpoint.as_ref().map_or_else(
                    || "No checkpoint was saved.".to_string(),
                    |p| format!("The last good checkpoint is {}", p.display()),
                );
                // The key comes before the path, so a long path cut short cannot hide it.
                let text = format!(
                    "training diverged at step {step} (D loss {}, G loss {}) and stopped; press q to quit. Nothing more is saved. {newest}",
                    format_value(d_loss),
                    format_value(g_loss)
                );
                self.last_error = Some(text.clone());
                self.set_note(NoteKind::Error, text);
            }
            TrainMsg::Paused { .. } => self.acknowledge_pause(true),
            TrainMsg::Resumed { .. } => self.acknowledge_pause(false),
            TrainMsg::Finished {
                reason,
                last_checkpoint,
                ..
            } => {
                let asked_to_stop = self.phase == Phase::Stopping;
                self.phase = Phase::Finished(reason);
                self.paused = false;
                self.pause_requested = None;
                self.saving = false;
                self.scoring = false;
                if last_checkpoint.is_some() {
                    self.last_checkpoint = last_checkpoint;
                }
                if asked_to_stop || !self.stay_open_when_done {
                    self.exit = true;
                } else {
                    self.set_note(
                        NoteKind::Ok,
                        "training finished; press q to leave the dashboard".to_string(),
                    );
                }
            }
            TrainMsg::Error(error) => {
                self.last_error = Some(error.clone());
                self.set_note(NoteKind::Error, error.clone());
                self.phase = Phase::Failed(error);
                self.exit = true;
            }
        }
    }

    /// The trainer's channel closed. After `Finished` that is normal; before it, the trainer
    /// died without saying why (a panic, most likely).
    pub fn on_disconnect(&mut self) {
        match self.phase {
            Phase::Finished(_) | Phase::Failed(_) => {}
            _ => {
                let error =
                    "the trainer stopped without a final message (its thread may have panicked)"
                        .to_string();
                self.last_error = Some(error.clone());
                self.phase = Phase::Failed(error);
                self.exit = true;
            }
        }
    }

    /// SIGTERM, SIGINT or SIGHUP arrived: the same as a quit key, and remembered so the caller
    /// can exit with the signal's status.
    pub fn on_signal(&mut self, signal: i32) -> Option<Command> {
        self.signalled = Some(signal);
        self.update(Action::Quit)
    }

    /// The signal that asked the dashboard to quit, if one did.
    pub fn signalled(&self) -> Option<i32> {
        self.signalled
    }

    /// A command could not be sent: the trainer is gone.
    pub fn on_send_failed(&mut self, command: Command) {
        self.set_note(
            NoteKind::Error,
            format!("the trainer is gone; could not send {command:?}"),
        );
        if command == Command::Stop {
            self.exit = true;
        }
    }

    /// Applies an action; the returned command is for the trainer.
    pub fn update(&mut self, action: Action) -> Option<Command> {
        match action {
            Action::TogglePause => {
                if !self.accepts_commands() {
                    return self.refuse("pause");
                }
                let want = !self.pause_requested.unwrap_or(self.paused);
                self.pause_requested = (want != self.paused).then_some(want);
                Some(if want {
                    Command::Pause
                } else {
                    Command::Resume
                })
            }
            Action::SaveCheckpoint => {
                if !self.accepts_commands() {
                    return self.refuse("save a checkpoint");
                }
                self.saving = true;
                self.set_note(NoteKind::Info, "saving a checkpoint...".to_string());
                Some(Command::SaveCheckpoint)
            }
            Action::Resample => {
                if !self.accepts_commands() {
                    return self.refuse("resample");
                }
                Some(Command::Resample)
            }
            Action::ToggleFreshNoise => {
                if !self.accepts_commands() {
                    return self.refuse("change the noise");
                }
                self.fresh_noise = !self.fresh_noise;
                Some(Command::FreshNoise(self.fresh_noise))
            }
            Action::ToggleDigitMode => {
                self.digit_mode = match self.digit_mode {
                    DigitMode::Ascii => DigitMode::HalfBlock,
                    DigitMode::HalfBlock => DigitMode::Ascii,
                };
                None
            }
            Action::ToggleHistory => {
                self.history_view = match self.history_view {
                    HistoryView::Recent => HistoryView::WholeRun,
                    HistoryView::WholeRun => HistoryView::Recent,
                };
                None
            }
            Action::Evaluate => {
                if !self.accepts_commands() {
                    return self.refuse("score the digits");
                }
                if self.scoring_off {
                    self.set_note(NoteKind::Warning, SCORING_OFF_NOTE.to_string());
                    return None;
                }
                if self.scoring {
                    // One request at a time; its answer is on the way.
                    return None;
                }
                self.scoring = true;
                self.set_note(NoteKind::Info, SCORING_NOTE.to_string());
                Some(Command::Evaluate)
            }
            Action::ShowDigit(digit) if digit > 9 => None,
            Action::ShowDigit(digit) => {
                let want = (self.digit_request != Some(digit)).then_some(digit);
                self.ask_for_digit(want)
            }
            Action::AllDigits => self.ask_for_digit(None),
            Action::CycleTheme => {
                self.themes.cycle();
                // The status bar names the theme; a note is only for a theme that failed.
                if let Some(warning) = self.themes.warning().map(str::to_string) {
                    self.set_note(NoteKind::Warning, warning);
                    self.note_is_theme_warning = true;
                } else if self.note_is_theme_warning {
                    self.note = None;
                    self.note_is_theme_warning = false;
                }
                None
            }
            Action::ToggleHelp => {
                self.help_open = !self.help_open;
                None
            }
            Action::Back if self.help_open => {
                self.help_open = false;
                None
            }
            Action::Back | Action::Quit => self.quit(),
        }
    }

    fn quit(&mut self) -> Option<Command> {
        self.help_open = false;
        match self.phase {
            Phase::Starting | Phase::Training | Phase::Diverged(_) => {
                self.phase = Phase::Stopping;
                Some(Command::Stop)
            }
            // Asked twice: stop waiting for the checkpoint.
            Phase::Stopping | Phase::Finished(_) | Phase::Failed(_) => {
                self.exit = true;
                None
            }
        }
    }

    /// Asks for a grid of one digit (or all ten) if the run's generator takes a digit.
    fn ask_for_digit(&mut self, want: Option<u8>) -> Option<Command> {
        if !self.accepts_commands() {
            return self.refuse("choose a digit");
        }
        match self.conditional() {
            None => {
                self.set_note(
                    NoteKind::Info,
                    "no digits drawn yet: choose one once the grid shows".to_string(),
                );
                None
            }
            Some(false) => {
                let preset = self.run.as_ref().map_or("this preset".to_string(), |r| {
                    format!("preset `{}`", r.preset)
                });
                self.set_note(
                    NoteKind::Warning,
                    format!(
                        "{preset} draws digits unconditionally: its generator does not take a digit, so 0-9 cannot choose one"
                    ),
                );
                None
            }
            Some(true) if want == self.digit_request => None,
            Some(true) => {
                self.digit_request = want;
                Some(Command::ShowDigit(want))
            }
        }
    }

    fn refuse(&mut self, what: &str) -> Option<Command> {
        let why = match self.phase {
            Phase::Stopping => "the run is stopping",
            Phase::Diverged(_) => "training diverged",
            _ => "training has ended",
        };
        self.set_note(NoteKind::Warning, format!("cannot {what}: {why}"));
        None
    }

    fn acknowledge_pause(&mut self, paused: bool) {
        self.paused = paused;
        if self.pause_requested == Some(paused) {
            self.pause_requested = None;
        }
    }

    fn set_note(&mut self, kind: NoteKind, text: String) {
        self.note = Some(Note { kind, text });
        self.note_is_theme_warning = false;
    }

    fn accepts_commands(&self) -> bool {
        matches!(self.phase, Phase::Starting | Phase::Training)
    }

    /// The event loop should end now.
    pub fn should_exit(&self) -> bool {
        self.exit
    }

    pub fn run_info(&self) -> Option<&RunInfo> {
        self.run.as_ref()
    }

    pub fn last_step(&self) -> Option<&StepStats> {
        self.last_step.as_ref()
    }

    pub fn history(&self, series: Series) -> &History {
        let [d_loss, g_loss, d_real, d_fake] = &self.histories;
        match series {
            Series::DLoss => d_loss,
            Series::GLoss => g_loss,
            Series::DReal => d_real,
            Series::DFake => d_fake,
        }
    }

    /// The latest step the trainer reported (steps taken so far), if any.
    pub fn step(&self) -> Option<u64> {
        self.step
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

    /// The pause state asked for and not yet acknowledged.
    pub fn pause_requested(&self) -> Option<bool> {
        self.pause_requested
    }

    pub fn saving(&self) -> bool {
        self.saving
    }

    pub fn quality(&self) -> Option<&QualityReport> {
        self.quality.as_ref()
    }

    /// The judge's score at each report, oldest first.
    pub fn score_history(&self) -> &Downsampled {
        &self.score_history
    }

    /// Scores were asked for and have not come back yet.
    pub fn scoring(&self) -> bool {
        self.scoring
    }

    /// An epoch ended without scores before any came: none will.
    pub fn scoring_off(&self) -> bool {
        self.scoring_off
    }

    /// The digit asked for (`0`-`9`), or `None` for all ten.
    pub fn digit_request(&self) -> Option<u8> {
        self.digit_request
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

    pub fn help_open(&self) -> bool {
        self.help_open
    }

    pub fn history_view(&self) -> HistoryView {
        self.history_view
    }

    pub fn digit_mode(&self) -> DigitMode {
        self.digit_mode
    }

    pub fn fresh_noise(&self) -> bool {
        self.fresh_noise
    }

    pub fn theme(&self) -> &Theme {
        self.themes.current()
    }

    /// The name the current theme was asked for by (a bad file keeps its name here).
    pub fn theme_name(&self) -> &str {
        self.themes.current_name()
    }

    pub fn phase(&self) -> &Phase {
        &self.phase
    }

    /// Seconds left at the current speed, if that can be known.
    pub fn eta_s(&self) -> Option<f64> {
        let (run, step) = (self.run.as_ref()?, self.last_step.as_ref()?);
        let left = run
            .total_steps
            .saturating_sub(self.step.unwrap_or(step.step)) as f64;
        (step.steps_per_s.is_finite() && step.steps_per_s > 0.0).then(|| left / step.steps_per_s)
    }

    /// The paragraph printed after the terminal is restored.
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
            Phase::Finished(FinishReason::Completed) => "completed".to_string(),
            Phase::Finished(FinishReason::StepLimit) => "reached its step limit".to_string(),
            Phase::Finished(FinishReason::Stopped) => "was stopped".to_string(),
            Phase::Finished(FinishReason::Diverged) | Phase::Diverged(_) => {
                "diverged (a loss became NaN or infinite)".to_string()
            }
            Phase::Failed(_) => "failed".to_string(),
            Phase::Stopping => "was left while stopping".to_string(),
            Phase::Starting | Phase::Training => "was left running".to_string(),
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
        match &self.last_checkpoint {
            Some(path) => parts.push(format!("Last checkpoint: {}.", path.display())),
            None => parts.push("No checkpoint was saved.".to_string()),
        }
        parts.push(format!("Run folder: {}", run.run_dir.display()));
        parts.join(" ")
    }
}

/// A loss or probability in a fixed, short form; not-a-number says so.
pub fn format_value(v: f32) -> String {
    if !v.is_finite() {
        return format!("{v}");
    }
    let a = v.abs();
    if a >= 1000.0 {
        format!("{v:.2e}")
    } else if a >= 100.0 {
        format!("{v:.1}")
    } else {
        format!("{v:.3}")
    }
}

/// Seconds as `1h02m03s`, `2m03s` or `3.4s`.
pub fn format_duration(seconds: f64) -> String {
    if !seconds.is_finite() || seconds < 0.0 {
        return "--".to_string();
    }
    if seconds < 60.0 {
        return format!("{seconds:.1}s");
    }
    let total = seconds.round() as u64;
    let (h, m, s) = (total / 3600, total / 60 % 60, total % 60);
    if h > 0 {
        format!("{h}h{m:02}m{s:02}s")
    } else {
        format!("{m}m{s:02}s")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn info() -> RunInfo {
        RunInfo {
            preset: "reference".to_string(),
            data_source: "built-in MNIST".to_string(),
            images: 60_000,
            epochs: 50,
            batch_size: 64,
            steps_per_epoch: 938,
            total_steps: 46_900,
            start_step: 0,
            run_dir: PathBuf::from("/runs/2024-01-01"),
            seed: 7,
            eval_count: 2000,
        }
    }

    fn step(n: u64, d_loss: f32) -> StepStats {
        StepStats {
            step: n,
            epoch: 1 + (n / 938) as u32,
            batch: n % 938 + 1,
            d_loss,
            g_loss: 2.0 * d_loss,
            d_real: 0.75,
            d_fake: 0.25,
            lr: 2e-4,
            steps_per_s: 100.0,
            elapsed_s: n as f64 / 100.0,
        }
    }

    fn running() -> App {
        let mut app = App::new();
        app.on_msg(TrainMsg::Started(info()));
        app
    }

    #[test]
    fn ring_keeps_only_the_latest_values() {
        let mut ring = Ring::new(3);
        for v in 0..10 {
            ring.push(v as f32);
        }
        assert_eq!(ring.len(), 3);
        assert_eq!(ring.tail(10), vec![7.0, 8.0, 9.0]);
        assert_eq!(ring.tail(2), vec![8.0, 9.0]);
    }

    #[test]
    fn downsampled_stays_bounded_and_keeps_the_mean_shape() {
        let mut full = Downsampled::new(8);
        for v in 0..1000 {
            full.push(v as f32);
        }
        let points = full.points();
        assert!(points.len() <= 9, "{} points", points.len());
        assert!(points.len() >= 4, "{} points", points.len());
        assert_eq!(full.total(), 1000);
        // Means of consecutive runs of a ramp rise steadily and span the range.
        assert!(points.windows(2).all(|w| w[0] < w[1]), "{points:?}");
        let first = points.first().copied().unwrap_or(f32::NAN);
        assert!(
            (first - (full.per_point() as f32 - 1.0) / 2.0).abs() < 1e-3,
            "{points:?}"
        );
    }

    #[test]
    fn downsampled_merges_pairwise_exactly() {
        let mut full = Downsampled::new(4);
        for v in [1.0, 3.0, 5.0, 7.0] {
            full.push(v);
        }
        // Four points filled the capacity and merged into two of two each.
        assert_eq!(full.points(), vec![2.0, 6.0]);
        assert_eq!(full.per_point(), 2);
        full.push(9.0);
        assert_eq!(full.points(), vec![2.0, 6.0, 9.0]);
        full.push(11.0);
        assert_eq!(full.points(), vec![2.0, 6.0, 10.0]);
    }

    #[test]
    fn a_fifty_epoch_run_uses_the_same_memory_as_a_short_one() {
        let mut app = running();
        for n in 1..=50 * 938u64 {
            app.on_msg(TrainMsg::Step(step(n, 1.0 / n as f32)));
        }
        for series in Series::ALL {
            let h = app.history(series);
            assert_eq!(h.recent.len(), RECENT_POINTS);
            assert!(h.full.points().len() <= FULL_POINTS + 1);
            assert_eq!(h.full.total(), 50 * 938);
        }
        assert_eq!(app.last_step().map(|s| s.step), Some(46_900));
    }

    #[test]
    fn quit_sends_stop_then_waits_for_finished() {
        let mut app = running();
        assert_eq!(app.update(Action::Quit), Some(Command::Stop));
        assert_eq!(app.phase(), &Phase::Stopping);
        assert!(!app.should_exit());
        // Commands are refused while stopping.
        assert_eq!(app.update(Action::SaveCheckpoint), None);
        assert_eq!(app.update(Action::TogglePause), None);
        app.on_msg(TrainMsg::CheckpointSaved {
            path: PathBuf::from("/runs/x/ckpt-900.safetensors"),
            step: 900,
            reason: SaveReason::Exit,
        });
        assert!(!app.should_exit());
        app.on_msg(TrainMsg::Finished {
            reason: FinishReason::Stopped,
            step: 900,
            last_checkpoint: Some(PathBuf::from("/runs/x/ckpt-900.safetensors")),
        });
        assert!(app.should_exit());
        assert_eq!(app.phase(), &Phase::Finished(FinishReason::Stopped));
    }

    #[test]
    fn quitting_twice_stops_waiting() {
        let mut app = running();
        assert_eq!(app.update(Action::Quit), Some(Command::Stop));
        assert_eq!(app.update(Action::Quit), None);
        assert!(app.should_exit());
    }

    #[test]
    fn esc_closes_help_before_it_quits() {
        let mut app = running();
        assert_eq!(app.update(Action::ToggleHelp), None);
        assert!(app.help_open());
        assert_eq!(app.update(Action::Back), None);
        assert!(!app.help_open());
        assert_eq!(app.phase(), &Phase::Training);
        assert_eq!(app.update(Action::Back), Some(Command::Stop));
    }

    #[test]
    fn paused_shows_only_what_the_trainer_acknowledged() {
        let mut app = running();
        assert_eq!(app.update(Action::TogglePause), Some(Command::Pause));
        assert!(!app.paused());
        assert_eq!(app.pause_requested(), Some(true));
        app.on_msg(TrainMsg::Paused { step: 10 });
        assert!(app.paused());
        assert_eq!(app.pause_requested(), None);
        assert_eq!(app.update(Action::TogglePause), Some(Command::Resume));
        assert!(app.paused());
        app.on_msg(TrainMsg::Resumed { step: 10 });
        assert!(!app.paused());
    }

    #[test]
    fn pressing_pause_twice_before_the_ack_asks_for_resume() {
        let mut app = running();
        assert_eq!(app.update(Action::TogglePause), Some(Command::Pause));
        assert_eq!(app.update(Action::TogglePause), Some(Command::Resume));
        assert_eq!(app.pause_requested(), None);
        app.on_msg(TrainMsg::Paused { step: 3 });
        assert!(app.paused());
        app.on_msg(TrainMsg::Resumed { step: 3 });
        assert!(!app.paused());
        assert_eq!(app.pause_requested(), None);
    }

    #[test]
    fn local_toggles_send_nothing_and_noise_toggle_sends_its_state() {
        let mut app = running();
        assert_eq!(app.update(Action::ToggleDigitMode), None);
        assert_eq!(app.digit_mode(), DigitMode::HalfBlock);
        assert_eq!(app.update(Action::ToggleDigitMode), None);
        assert_eq!(app.digit_mode(), DigitMode::Ascii);
        assert_eq!(app.update(Action::ToggleHistory), None);
        assert_eq!(app.history_view(), HistoryView::WholeRun);
        assert_eq!(app.update(Action::Resample), Some(Command::Resample));
        assert_eq!(
            app.update(Action::ToggleFreshNoise),
            Some(Command::FreshNoise(true))
        );
        assert_eq!(
            app.update(Action::ToggleFreshNoise),
            Some(Command::FreshNoise(false))
        );
    }

    #[test]
    fn cycling_themes_changes_the_theme_and_warns_only_about_bad_ones() {
        let dir = tempfile::tempdir().ok();
        let dir = dir
            .as_ref()
            .map(|d| d.path())
            .unwrap_or(std::path::Path::new("/nonexistent"));
        std::fs::write(dir.join("zz-bad.toml"), "title = \"nocolour\"\n").ok();
        let (set, warning) = ThemeSet::load("amber", dir, false);
        let mut app = running();
        app.set_themes(set, warning);
        app.on_msg(TrainMsg::CheckpointSaved {
            path: PathBuf::from("/runs/x/ckpt.safetensors"),
            step: 5,
            reason: SaveReason::EpochEnd,
        });
        assert_eq!(app.theme_name(), "amber");
        assert_eq!(app.update(Action::CycleTheme), None);
        assert_eq!(app.theme_name(), "zz-bad");
        assert_eq!(app.theme(), &Theme::default());
        assert!(app.note().is_some_and(|n| n.kind == NoteKind::Warning
            && n.text.contains("zz-bad.toml")
            && n.text.contains("nocolour")));
        assert_eq!(app.update(Action::CycleTheme), None);
        assert_eq!(app.theme_name(), "default");
        assert_eq!(app.note(), None);
        app.update(Action::CycleTheme);
        assert_eq!(app.theme().name, "light");
        // A checkpoint note is not cleared by cycling themes.
        app.on_msg(TrainMsg::CheckpointSaved {
            path: PathBuf::from("/runs/x/ckpt2.safetensors"),
            step: 6,
            reason: SaveReason::Requested,
        });
        app.update(Action::CycleTheme);
        assert!(app.note().is_some_and(|n| n.text.contains("ckpt2")));
    }

    #[test]
    fn save_shows_the_path_or_the_error() {
        let mut app = running();
        assert_eq!(
            app.update(Action::SaveCheckpoint),
            Some(Command::SaveCheckpoint)
        );
        assert!(app.saving());
        app.on_msg(TrainMsg::CheckpointFailed {
            path: PathBuf::from("/ro/ckpt.safetensors"),
            error: "permission denied".to_string(),
        });
        assert!(!app.saving());
        let note = app.note().cloned();
        assert_eq!(note.as_ref().map(|n| n.kind), Some(NoteKind::Error));
        let text = note.map(|n| n.text).unwrap_or_default();
        assert!(text.contains("/ro/ckpt.safetensors") && text.contains("permission denied"));

        app.on_msg(TrainMsg::CheckpointSaved {
            path: PathBuf::from("/runs/x/ckpt.safetensors"),
            step: 5,
            reason: SaveReason::Requested,
        });
        assert_eq!(
            app.last_checkpoint(),
            Some(&PathBuf::from("/runs/x/ckpt.safetensors"))
        );
        assert!(
            app.note().is_some_and(
                |n| n.kind == NoteKind::Ok && n.text.contains("/runs/x/ckpt.safetensors")
            )
        );
    }

    #[test]
    fn finishing_on_its_own_stays_open_until_quit() {
        let mut app = running();
        app.on_msg(TrainMsg::Finished {
            reason: FinishReason::Completed,
            step: 46_900,
            last_checkpoint: None,
        });
        assert!(!app.should_exit());
        assert_eq!(app.update(Action::Resample), None);
        assert_eq!(app.update(Action::Quit), None);
        assert!(app.should_exit());

        let mut app = running();
        app.set_stay_open_when_done(false);
        app.on_msg(TrainMsg::Finished {
            reason: FinishReason::StepLimit,
            step: 100,
            last_checkpoint: None,
        });
        assert!(app.should_exit());
    }

    #[test]
    fn errors_and_silent_disconnects_end_the_loop() {
        let mut app = running();
        app.on_msg(TrainMsg::Error("out of memory".to_string()));
        assert!(app.should_exit());
        assert_eq!(app.phase(), &Phase::Failed("out of memory".to_string()));

        let mut app = running();
        app.on_disconnect();
        assert!(app.should_exit());
        assert!(matches!(app.phase(), Phase::Failed(e) if e.contains("panicked")));

        // After a normal finish, the channel closing changes nothing.
        let mut app = running();
        app.on_msg(TrainMsg::Finished {
            reason: FinishReason::Completed,
            step: 1,
            last_checkpoint: None,
        });
        app.on_disconnect();
        assert_eq!(app.phase(), &Phase::Finished(FinishReason::Completed));
        assert!(!app.should_exit());
    }

    #[test]
    fn summary_tells_the_story_of_the_run() {
        let mut app = running();
        app.on_msg(TrainMsg::Step(step(1234, 0.5432)));
        app.update(Action::Quit);
        app.on_msg(TrainMsg::Finished {
            reason: FinishReason::Stopped,
            step: 1234,
            last_checkpoint: Some(PathBuf::from("/runs/2024-01-01/ckpt-1234.safetensors")),
        });
        let text = app.summary();
        for want in [
            "reference",
            "built-in MNIST",
            "was stopped",
            "step 1234 of 46900",
            "epoch 2 of 50",
            "D 0.543",
            "G 1.086",
            "12.3s elapsed",
            "/runs/2024-01-01/ckpt-1234.safetensors",
            "Run folder: /runs/2024-01-01",
        ] {
            assert!(text.contains(want), "missing {want:?} in {text}");
        }
        assert!(!text.contains('\n'));

        let mut never = App::new();
        never.on_msg(TrainMsg::Error("no data in /x".to_string()));
        assert!(never.summary().contains("no data in /x"));
    }

    #[test]
    fn the_step_shown_is_the_latest_any_message_mentions() {
        let mut app = running();
        assert_eq!(app.step(), None);
        app.on_msg(TrainMsg::Step(step(460, 1.0)));
        app.on_msg(TrainMsg::Paused { step: 466 });
        assert_eq!(app.step(), Some(466));
        app.on_msg(TrainMsg::Finished {
            reason: FinishReason::Stopped,
            step: 468,
            last_checkpoint: None,
        });
        assert_eq!(app.step(), Some(468));
        assert!(
            app.summary().contains("at step 468 of"),
            "{}",
            app.summary()
        );
    }

    #[test]
    fn a_signal_quits_and_is_remembered() {
        let mut app = running();
        assert_eq!(app.signalled(), None);
        assert_eq!(app.on_signal(15), Some(Command::Stop));
        assert_eq!(app.signalled(), Some(15));
        assert_eq!(app.phase(), &Phase::Stopping);
    }

    #[test]
    fn eta_needs_a_speed() {
        let mut app = running();
        assert_eq!(app.eta_s(), None);
        app.on_msg(TrainMsg::Step(step(900, 1.0)));
        assert_eq!(app.eta_s(), Some(460.0));
        let mut stalled = step(901, 1.0);
        stalled.steps_per_s = 0.0;
        app.on_msg(TrainMsg::Step(stalled));
        assert_eq!(app.eta_s(), None);
    }

    fn report(step: u64, score: f64) -> QualityReport {
        QualityReport {
            step,
            epoch: 1,
            count: 2000,
            score,
            fcd: 12.0,
            fcd_floor: 8.0,
            recognised: 0.9,
            class_shares: [0.1; 10],
            agreement: None,
            seconds: 1.5,
        }
    }

    fn epoch_done(quality: Option<QualityReport>) -> EpochSummary {
        EpochSummary {
            epoch: 1,
            epochs: 50,
            step: 938,
            d_loss: 1.0,
            g_loss: 1.0,
            d_real: 0.5,
            d_fake: 0.5,
            steps_per_s: 100.0,
            elapsed_s: 9.4,
            sample_png: None,
            quality,
        }
    }

    fn grid(labels: Option<Vec<u8>>) -> SampleGrid {
        SampleGrid {
            step: 10,
            width: 28,
            height: 28,
            pixels: vec![0; 10 * 784],
            labels,
        }
    }

    #[test]
    fn e_asks_for_scores_once_and_the_report_answers_the_note() {
        let mut app = running();
        assert_eq!(app.update(Action::Evaluate), Some(Command::Evaluate));
        assert!(app.scoring());
        assert_eq!(app.note().map(|n| n.text.as_str()), Some(SCORING_NOTE));
        // Asked again before the answer: nothing more is sent.
        assert_eq!(app.update(Action::Evaluate), None);
        app.on_msg(TrainMsg::Quality(report(120, 7.25)));
        assert!(!app.scoring());
        assert_eq!(app.quality().map(|q| q.step), Some(120));
        assert!(
            app.note().is_some_and(|n| n.kind == NoteKind::Ok
                && n.text.contains("2000 digits of step 120")
                && n.text.contains("score 7.25")),
            "{:?}",
            app.note()
        );
        // An epoch's report does not touch another note.
        app.on_msg(TrainMsg::CheckpointSaved {
            path: PathBuf::from("/runs/x/epoch-001.safetensors"),
            step: 938,
            reason: SaveReason::EpochEnd,
        });
        app.on_msg(TrainMsg::Quality(report(938, 8.0)));
        assert!(app.note().is_some_and(|n| n.text.contains("epoch-001")));
        assert_eq!(app.score_history().points(), vec![7.25, 8.0]);
        assert_eq!(app.update(Action::Evaluate), Some(Command::Evaluate));
    }

    #[test]
    fn e_is_refused_once_the_trainer_cannot_answer() {
        let mut app = running();
        app.on_msg(TrainMsg::Diverged {
            step: 5,
            d_loss: f32::NAN,
            g_loss: 1.0,
        });
        assert_eq!(app.update(Action::Evaluate), None);
        assert!(
            app.note()
                .is_some_and(|n| n.text == "cannot score the digits: training diverged")
        );
        let mut app = running();
        app.update(Action::Quit);
        assert_eq!(app.update(Action::Evaluate), None);
        assert!(!app.scoring());
    }

    #[test]
    fn an_epoch_without_scores_means_none_will_come() {
        let mut app = running();
        assert_eq!(app.update(Action::Evaluate), Some(Command::Evaluate));
        app.on_msg(TrainMsg::EpochDone(epoch_done(None)));
        assert!(app.scoring_off() && !app.scoring());
        assert!(
            app.note().is_some_and(
                |n| n.kind == NoteKind::Warning && n.text.contains("run.eval_count = 0")
            )
        );
        assert_eq!(app.update(Action::Evaluate), None);
        // Scores after all: the judge works.
        app.on_msg(TrainMsg::Quality(report(1876, 8.0)));
        app.on_msg(TrainMsg::EpochDone(epoch_done(None)));
        assert!(!app.scoring_off());
        assert_eq!(app.update(Action::Evaluate), Some(Command::Evaluate));

        // An epoch with scores changes nothing.
        let mut app = running();
        app.on_msg(TrainMsg::Quality(report(938, 5.0)));
        app.on_msg(TrainMsg::EpochDone(epoch_done(Some(report(938, 5.0)))));
        assert!(!app.scoring_off());
    }

    #[test]
    fn a_judge_that_fails_ends_the_wait_with_its_reason() {
        let mut app = running();
        app.update(Action::Evaluate);
        app.on_msg(TrainMsg::ScoringFailed(
            "the judge could not score the digits: non-finite pixels".to_string(),
        ));
        assert!(!app.scoring());
        let note = app.note().cloned();
        assert_eq!(note.as_ref().map(|n| n.kind), Some(NoteKind::Error));
        let text = note.map(|n| n.text).unwrap_or_default();
        assert_eq!(
            text,
            "the judge could not score the digits: non-finite pixels; training goes on"
        );
        // Other files keep their path.
        app.on_msg(TrainMsg::WriteFailed {
            what: "metrics".to_string(),
            path: PathBuf::from("/runs/x/metrics.jsonl"),
            error: "No space left on device (os error 28)".to_string(),
        });
        assert_eq!(
            app.note().map(|n| n.text.as_str()),
            Some(
                "metrics failed at /runs/x/metrics.jsonl: No space left on device (os error 28); training goes on"
            )
        );
        assert!(
            app.last_error()
                .is_some_and(|e| e.starts_with("metrics failed"))
        );
    }

    #[test]
    fn digit_keys_choose_a_digit_on_conditional_runs_only() {
        // Before any grid, nothing is known about the generator.
        let mut app = running();
        assert_eq!(app.update(Action::ShowDigit(3)), None);
        assert!(
            app.note()
                .is_some_and(|n| n.text.contains("no digits drawn yet"))
        );

        // Unconditional: a note names the preset, nothing is sent.
        app.on_msg(TrainMsg::Samples(grid(None)));
        assert_eq!(app.conditional(), Some(false));
        assert_eq!(app.update(Action::ShowDigit(3)), None);
        assert_eq!(app.update(Action::AllDigits), None);
        assert!(
            app.note().is_some_and(|n| n.kind == NoteKind::Warning
                && n.text.contains("preset `reference`")
                && n.text.contains("does not take a digit")),
            "{:?}",
            app.note()
        );
        assert_eq!(app.digit_request(), None);

        // Conditional: a digit, the same digit again for all ten, another, then `a`.
        let mut app = running();
        app.on_msg(TrainMsg::Samples(grid(Some((0..10).collect()))));
        assert_eq!(app.conditional(), Some(true));
        assert_eq!(
            app.update(Action::ShowDigit(3)),
            Some(Command::ShowDigit(Some(3)))
        );
        assert_eq!(app.digit_request(), Some(3));
        assert_eq!(
            app.update(Action::ShowDigit(3)),
            Some(Command::ShowDigit(None))
        );
        assert_eq!(app.digit_request(), None);
        assert_eq!(
            app.update(Action::ShowDigit(7)),
            Some(Command::ShowDigit(Some(7)))
        );
        assert_eq!(
            app.update(Action::ShowDigit(0)),
            Some(Command::ShowDigit(Some(0)))
        );
        assert_eq!(
            app.update(Action::AllDigits),
            Some(Command::ShowDigit(None))
        );
        // Already all ten: nothing to ask.
        assert_eq!(app.update(Action::AllDigits), None);
        // Not a digit: ignored.
        assert_eq!(app.update(Action::ShowDigit(10)), None);
        assert_eq!(app.digit_request(), None);

        // Once the run is over, the trainer cannot redraw.
        app.on_msg(TrainMsg::Finished {
            reason: FinishReason::Completed,
            step: 46_900,
            last_checkpoint: None,
        });
        assert_eq!(app.update(Action::ShowDigit(4)), None);
        assert!(
            app.note()
                .is_some_and(|n| n.text == "cannot choose a digit: training has ended")
        );
    }

    #[test]
    fn the_score_history_stays_bounded_over_any_number_of_reports() {
        let mut app = running();
        for n in 0..10_000u64 {
            app.on_msg(TrainMsg::Quality(report(n, 1.0 + (n % 9) as f64)));
        }
        let history = app.score_history();
        assert_eq!(history.total(), 10_000);
        assert!(history.points().len() <= SCORE_POINTS + 1);
        assert_eq!(app.quality().map(|q| q.step), Some(9_999));
    }

    #[test]
    fn divergence_asks_for_q_before_naming_the_checkpoint() {
        let mut app = running();
        app.on_msg(TrainMsg::CheckpointSaved {
            path: PathBuf::from("/runs/x/checkpoints/epoch-011.safetensors"),
            step: 10_318,
            reason: SaveReason::EpochEnd,
        });
        app.on_msg(TrainMsg::Diverged {
            step: 10_400,
            d_loss: f32::NAN,
            g_loss: 3.5,
        });
        let text = app.note().map(|n| n.text.clone()).unwrap_or_default();
        assert_eq!(
            text,
            "training diverged at step 10400 (D loss NaN, G loss 3.500) and stopped; press q to quit. \
             Nothing more is saved. The last good checkpoint is /runs/x/checkpoints/epoch-011.safetensors"
        );
        assert_eq!(app.phase(), &Phase::Diverged(10_400));
    }

    #[test]
    fn values_and_durations_format_compactly() {
        assert_eq!(format_value(0.54321), "0.543");
        assert_eq!(format_value(123.56), "123.6");
        assert_eq!(format_value(f32::NAN), "NaN");
        assert_eq!(format_value(f32::INFINITY), "inf");
        assert_eq!(format_duration(3.44), "3.4s");
        assert_eq!(format_duration(123.0), "2m03s");
        assert_eq!(format_duration(3723.0), "1h02m03s");
        assert_eq!(format_duration(f64::NAN), "--");
    }
}
