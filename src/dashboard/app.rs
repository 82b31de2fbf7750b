//! Dashboard state and its pure update function.
//!
//! `App` is the run as its messages tell it (a `RunState`) plus what only the dashboard has: the
//! help popup, the plot span, the digit drawing, the theme chosen, the requests on their way. It
//! folds `TrainMsg`s in (`on_msg`) and turns `Action`s into at most one `Command` for the trainer
//! (`update`). It does no I/O and holds no styles, so every state change is a plain function call
//! in tests.

use std::collections::BTreeMap;

use crate::dashboard::action::{Action, FilmStep};
use crate::dashboard::curves::CurveView;
use crate::dashboard::filmstrip::{FilmMove, FilmPosition, Filmstrip};
use crate::dashboard::pictures::Pictures;
use crate::protocol::{Command, Probe, ProbeReport, SampleGrid, StepStats, TrainMsg};
use crate::run::history::{History, Series};
use crate::run::state::{Note, NoteKind, Phase, RunState, SCORING_OFF_NOTE};

/// The status note while the trainer scores on request.
pub const SCORING_NOTE: &str = "scoring...";

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
    /// Real pictures, where the terminal has an image protocol.
    Picture,
}

/// What a `gan-tui watch` dashboard looks at: a run in another process.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum WatchMode {
    /// The run is alive: commands go to it over its control socket.
    Live,
    /// The run is not running: its folder, read back; nothing can be steered.
    Replay,
}

/// The note after the first press of the stop key.
pub const STOP_CONFIRM_NOTE: &str = "stop the run? press x again to stop it (it saves a checkpoint); any other key: keep it running";

/// The themes `t` cycles through, by name, and why any of them is drawn as the default. The
/// styles themselves stay with the dashboard's `ThemeSet`, at the same index.
#[derive(Debug, Clone, PartialEq)]
pub struct ThemeChoice {
    /// Each theme's name and the warning its file gave, if it was bad.
    pub entries: Vec<(String, Option<String>)>,
    pub current: usize,
}

impl Default for ThemeChoice {
    fn default() -> Self {
        ThemeChoice {
            entries: vec![("default".to_string(), None)],
            current: 0,
        }
    }
}

/// Which probes of the generator the dashboard asked for.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct ProbeToggles {
    pub morph: bool,
    pub nearest: bool,
    pub reading: bool,
}

impl ProbeToggles {
    fn get(self, probe: Probe) -> bool {
        match probe {
            Probe::Morph => self.morph,
            Probe::Nearest => self.nearest,
            Probe::Reading => self.reading,
        }
    }

    fn set(&mut self, probe: Probe, on: bool) {
        match probe {
            Probe::Morph => self.morph = on,
            Probe::Nearest => self.nearest = on,
            Probe::Reading => self.reading = on,
        }
    }
}

/// A fork's parent run, for the overlay: its logged steps (from its `metrics.jsonl`), and its
/// values at the steps this run has logged, kept beside this run's own histories point for
/// point.
#[derive(Debug, Clone)]
pub struct ParentCurves {
    /// Where the parent lives, for the panel's title.
    pub name: String,
    /// The parent's step the fork started from.
    pub fork_step: u64,
    by_step: BTreeMap<u64, StepStats>,
    histories: [History; 4],
}

impl ParentCurves {
    pub fn new(name: String, fork_step: u64, records: Vec<StepStats>) -> ParentCurves {
        ParentCurves {
            name,
            fork_step,
            by_step: records.into_iter().map(|r| (r.step, r)).collect(),
            histories: Default::default(),
        }
    }

    /// The parent's value of `series` at each step this run logged, NaN where it logged none.
    pub fn history(&self, series: Series) -> &History {
        &self.histories[series as usize]
    }

    /// The parent's record at `step`, if it logged one.
    pub fn at(&self, step: u64) -> Option<&StepStats> {
        self.by_step.get(&step)
    }

    /// Logged steps of the parent after the fork's step.
    pub fn steps_after_fork(&self) -> usize {
        self.by_step.range(self.fork_step + 1..).count()
    }

    fn follow(&mut self, step: u64) {
        let record = self.by_step.get(&step).copied();
        for (history, series) in self.histories.iter_mut().zip(Series::ALL) {
            history.push(record.map_or(f32::NAN, |r| series.value(&r)));
        }
    }
}

/// All dashboard state.
#[derive(Debug, Clone)]
pub struct App {
    run: RunState,
    /// `Command::Evaluate` was sent and no scores have come back yet.
    scoring: bool,
    /// The digit asked for with `Command::ShowDigit`, or `None` for all ten.
    digit_request: Option<u8>,
    /// A pause state asked for and not yet acknowledged.
    pause_requested: Option<bool>,
    saving: bool,
    /// The note shown is this warning about a bad theme file, so moving on to a good theme
    /// clears it.
    theme_warning_shown: Option<String>,
    help_open: bool,
    history_view: HistoryView,
    digit_mode: DigitMode,
    /// Whether the terminal shows pictures, and if not why (told once).
    pictures: Pictures,
    pictures_why_told: bool,
    fresh_noise: bool,
    themes: ThemeChoice,
    stay_open_when_done: bool,
    /// Watching a run in another process, if this dashboard does.
    watch: Option<WatchMode>,
    /// The stop key was pressed once; a second press stops the run.
    stop_armed: bool,
    probes: ProbeToggles,
    /// A fork's parent, if this run is one and its metrics could be read.
    parent: Option<ParentCurves>,
    parent_overlay: bool,
    /// The sample grids kept for `[` and `]`, and which is shown.
    film: Filmstrip,
    /// The step of each logged point, kept beside the loss histories point for point, so a
    /// step can be found on the plots (exact up to step 2^24, as an `f32`).
    step_axis: History,
    /// Smoothing and scale of the loss plots.
    curves: CurveView,
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
            run: RunState::new(),
            scoring: false,
            digit_request: None,
            pause_requested: None,
            saving: false,
            theme_warning_shown: None,
            help_open: false,
            history_view: HistoryView::Recent,
            digit_mode: DigitMode::Ascii,
            pictures: Pictures::default(),
            pictures_why_told: false,
            fresh_noise: false,
            themes: ThemeChoice::default(),
            stay_open_when_done: true,
            watch: None,
            stop_armed: false,
            probes: ProbeToggles::default(),
            parent: None,
            parent_overlay: false,
            film: Filmstrip::new(),
            step_axis: History::default(),
            curves: CurveView::default(),
            signalled: None,
            exit: false,
        }
    }

    /// Installs the themes `t` cycles through; a warning goes to the status line.
    pub fn set_themes(&mut self, themes: ThemeChoice, warning: Option<String>) {
        self.themes = themes;
        if let Some(text) = warning {
            self.tell_theme_warning(text);
        }
    }

    /// Whether the dashboard stays up after the run ends on its own (until a quit key), so the
    /// final digits can be looked at. When false the loop ends with the run.
    pub fn set_stay_open_when_done(&mut self, stay: bool) {
        self.stay_open_when_done = stay;
    }

    /// What the terminal said about pictures: the mode key offers them only when it shows them.
    pub fn set_pictures(&mut self, pictures: Pictures) {
        self.pictures = pictures;
    }

    pub fn pictures(&self) -> &Pictures {
        &self.pictures
    }

    /// Makes this a viewer of a run in another process: `q` then only leaves the viewer.
    pub fn set_watch(&mut self, mode: WatchMode) {
        self.watch = Some(mode);
    }

    /// The run this dashboard watches from another process, if it does.
    pub fn watch_mode(&self) -> Option<WatchMode> {
        self.watch
    }

    /// News from outside the trainer's messages (the control socket's answers, a notice about
    /// it) for the status line. Plain news does not hide a warning or error still shown (such as
    /// a bad theme's, told before the socket's address).
    pub fn notify(&mut self, note: Note) {
        let shows_trouble = self
            .run
            .note()
            .is_some_and(|n| matches!(n.kind, NoteKind::Warning | NoteKind::Error));
        if note.kind == NoteKind::Info && shows_trouble {
            return;
        }
        self.tell(note.kind, note.text);
    }

    /// This run is a fork of `parent`: `o` overlays its curves.
    pub fn set_parent(&mut self, parent: ParentCurves) {
        self.parent = Some(parent);
    }

    /// A run folder's grid of `epoch` (its `samples/epoch-NNN.png`), for the filmstrip.
    pub fn add_epoch_grid(&mut self, epoch: u32, grid: SampleGrid) {
        self.film.push_epoch(epoch, grid);
    }

    /// Folds one trainer message into the state.
    pub fn on_msg(&mut self, msg: TrainMsg) {
        if let TrainMsg::Step(stats) = &msg {
            self.step_axis.push(stats.step as f32);
            if let Some(parent) = &mut self.parent {
                parent.follow(stats.step);
            }
        }
        let asked_to_stop = *self.run.phase() == Phase::Stopping;
        let answers_scoring =
            self.scoring && self.run.note().is_some_and(|n| n.text == SCORING_NOTE);
        let note_before = self.run.note().cloned();
        self.run.on_msg(&msg);
        if self.run.note() != note_before.as_ref() {
            self.theme_warning_shown = None;
        }
        match msg {
            TrainMsg::Quality(report) => {
                if std::mem::take(&mut self.scoring) && answers_scoring {
                    self.tell(
                        NoteKind::Ok,
                        format!(
                            "scored {} digits of step {} in {}: score {:.2}",
                            report.count,
                            report.step,
                            crate::run::format::format_duration(report.seconds),
                            report.score
                        ),
                    );
                }
            }
            TrainMsg::EpochDone(summary) => {
                self.film.epoch_done(summary.epoch, summary.step);
                if self.run.scoring_off() && std::mem::take(&mut self.scoring) {
                    self.tell(NoteKind::Warning, SCORING_OFF_NOTE.to_string());
                }
            }
            TrainMsg::CheckpointSaved { .. } | TrainMsg::CheckpointFailed { .. } => {
                self.saving = false;
            }
            TrainMsg::Samples(grid) => self.film.push(grid),
            TrainMsg::ScoringFailed(_) => self.scoring = false,
            TrainMsg::ProbeFailed { probe, .. } => self.probes.set(probe, false),
            TrainMsg::Diverged { .. } => {
                self.pause_requested = None;
                self.saving = false;
                self.scoring = false;
            }
            TrainMsg::Paused { .. } => self.acknowledge_pause(true),
            TrainMsg::Resumed { .. } => self.acknowledge_pause(false),
            TrainMsg::Finished { reason, .. } => {
                self.pause_requested = None;
                self.saving = false;
                self.scoring = false;
                if asked_to_stop || !self.stay_open_when_done {
                    self.exit = true;
                } else {
                    let how = if reason == crate::protocol::FinishReason::EarlyStopped {
                        "training stopped early: the Fréchet distance stopped improving (train.early_stop)"
                    } else {
                        "training finished"
                    };
                    self.tell(
                        NoteKind::Ok,
                        format!("{how}; press q to leave the dashboard"),
                    );
                }
            }
            // A viewer stays to show what went wrong; `q` leaves it.
            TrainMsg::Error(_) => self.exit = self.watch.is_none(),
            TrainMsg::Started(_)
            | TrainMsg::Alarm(_)
            | TrainMsg::BestCheckpoint { .. }
            | TrainMsg::Step(_)
            | TrainMsg::Probes(_)
            | TrainMsg::WriteFailed { .. } => {}
        }
    }

    /// The trainer's channel closed. After `Finished` that is normal; before it, the trainer
    /// died without saying why (a panic, most likely).
    pub fn on_disconnect(&mut self) {
        if self.watch.is_some() {
            if !matches!(self.run.phase(), Phase::Finished(_) | Phase::Failed(_)) {
                self.tell(
                    NoteKind::Error,
                    "lost the run: its process ended without a final word (killed?) or dropped this viewer; q leaves".to_string(),
                );
            }
            return;
        }
        self.run.on_disconnect();
        if matches!(self.run.phase(), Phase::Failed(_)) {
            self.exit = true;
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
        self.tell(
            NoteKind::Error,
            format!("the trainer is gone; could not send {command:?}"),
        );
        if command == Command::Stop {
            self.exit = true;
        }
    }

    /// Applies an action; the returned command is for the trainer. A command that changes the
    /// digits drawn (resample, noise, digit, probes) acts on the live generator, so an older
    /// grid shown gives way to the live one.
    pub fn update(&mut self, action: Action) -> Option<Command> {
        let command = self.act(action);
        let redraws = matches!(
            command,
            Some(
                Command::Resample
                    | Command::FreshNoise(_)
                    | Command::ShowDigit(_)
                    | Command::Probe { .. }
            )
        );
        if redraws && self.film.go_live() {
            self.tell(
                NoteKind::Info,
                "back to the live digits: that key acts on the live generator".to_string(),
            );
        }
        command
    }

    fn act(&mut self, action: Action) -> Option<Command> {
        if action != Action::StopRun && std::mem::take(&mut self.stop_armed) {
            self.tell(NoteKind::Info, "the run goes on".to_string());
        }
        match action {
            Action::TogglePause => {
                if !self.accepts_commands() {
                    return self.refuse("pause");
                }
                let want = !self.pause_requested.unwrap_or(self.run.paused());
                self.pause_requested = (want != self.run.paused()).then_some(want);
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
                self.tell(NoteKind::Info, "saving a checkpoint...".to_string());
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
                self.digit_mode = match (self.digit_mode, &self.pictures) {
                    (DigitMode::Ascii, _) => DigitMode::HalfBlock,
                    (DigitMode::HalfBlock, Pictures::Shown(_)) => DigitMode::Picture,
                    (DigitMode::HalfBlock, Pictures::NotShown(why)) => {
                        if !self.pictures_why_told {
                            self.pictures_why_told = true;
                            self.tell(NoteKind::Info, why.clone());
                        }
                        DigitMode::Ascii
                    }
                    (DigitMode::Picture, _) => DigitMode::Ascii,
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
                if self.run.scoring_off() {
                    self.tell(NoteKind::Warning, SCORING_OFF_NOTE.to_string());
                    return None;
                }
                if self.scoring {
                    // One request at a time; its answer is on the way.
                    return None;
                }
                self.scoring = true;
                self.tell(NoteKind::Info, SCORING_NOTE.to_string());
                Some(Command::Evaluate)
            }
            Action::ShowDigit(digit) if digit > 9 => None,
            Action::ShowDigit(digit) => {
                let want = (self.digit_request != Some(digit)).then_some(digit);
                self.ask_for_digit(want)
            }
            Action::AllDigits => self.ask_for_digit(None),
            Action::ToggleMorph => self.toggle_probe(Probe::Morph),
            Action::ToggleNearest => self.toggle_probe(Probe::Nearest),
            Action::ToggleReading => self.toggle_probe(Probe::Reading),
            Action::ToggleParentOverlay => {
                match &self.parent {
                    None => self.tell(
                        NoteKind::Info,
                        "not a fork: there is no parent run to overlay (see --fork)".to_string(),
                    ),
                    Some(parent) => {
                        self.parent_overlay = !self.parent_overlay;
                        if self.parent_overlay {
                            let text = format!(
                                "overlaying the parent {} (forked at step {}; {} logged steps after it)",
                                parent.name,
                                parent.fork_step,
                                parent.steps_after_fork()
                            );
                            self.tell(NoteKind::Info, text);
                        }
                    }
                }
                None
            }
            Action::Filmstrip(way) => {
                self.step_filmstrip(way);
                None
            }
            Action::CycleSmoothing => {
                self.curves.next_smoothing();
                None
            }
            Action::ToggleLogScale => {
                self.curves.toggle_log_scale();
                None
            }
            Action::CycleTheme => {
                let count = self.themes.entries.len().max(1);
                self.themes.current = (self.themes.current + 1) % count;
                // The status bar names the theme; a note is only for a theme that failed.
                if let Some(warning) = self.theme_warning().map(str::to_string) {
                    self.tell_theme_warning(warning);
                } else if self.theme_warning_shown.take().is_some() {
                    self.run.clear_note();
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
            Action::StopRun => {
                if !self.accepts_commands() && !matches!(self.run.phase(), Phase::Diverged(_)) {
                    return self.refuse("stop the run");
                }
                let confirmed = self.stop_armed;
                self.stop_armed = !confirmed;
                if !confirmed {
                    self.tell(NoteKind::Warning, STOP_CONFIRM_NOTE.to_string());
                    return None;
                }
                self.help_open = false;
                self.run.stop_requested();
                self.tell(NoteKind::Info, "stopping the run...".to_string());
                Some(Command::Stop)
            }
        }
    }

    /// `[` or `]`: says on the status line what there is not to step to.
    fn step_filmstrip(&mut self, way: FilmStep) {
        let live = self.run.samples().map(|g| g.step);
        let moved = match way {
            FilmStep::Older => self.film.older(live),
            FilmStep::Newer => self.film.newer(live),
        };
        let text = match moved {
            FilmMove::Shown(_) => return,
            FilmMove::Live => "back to the live digits",
            FilmMove::AlreadyLive => "showing the live digits: [ steps back to older grids",
            FilmMove::Oldest => "this is the oldest grid kept: ] steps forward",
            FilmMove::Empty => "no sample grids yet: [ and ] step through them once they come",
        };
        self.tell(NoteKind::Info, text.to_string());
    }

    fn quit(&mut self) -> Option<Command> {
        self.help_open = false;
        if self.watch.is_some() {
            // A viewer only leaves; the run goes on.
            self.exit = true;
            return None;
        }
        match self.run.phase() {
            Phase::Starting | Phase::Training | Phase::Diverged(_) => {
                self.run.stop_requested();
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
        match self.run.conditional() {
            None => {
                self.tell(
                    NoteKind::Info,
                    "no digits drawn yet: choose one once the grid shows".to_string(),
                );
                None
            }
            Some(false) => {
                let preset = self.run.run_info().map_or("this preset".to_string(), |r| {
                    format!("preset `{}`", r.preset)
                });
                self.tell(
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

    /// Turns a probe on or off; the trainer computes it with each sample grid while on.
    fn toggle_probe(&mut self, probe: Probe) -> Option<Command> {
        if !self.accepts_commands() {
            return self.refuse("probe the generator");
        }
        let on = !self.probes.get(probe);
        self.probes.set(probe, on);
        Some(Command::Probe { probe, on })
    }

    fn refuse(&mut self, what: &str) -> Option<Command> {
        let why = match self.run.phase() {
            _ if self.watch == Some(WatchMode::Replay) => {
                "the run is not running (this is a replay)"
            }
            Phase::Stopping => "the run is stopping",
            Phase::Diverged(_) => "training diverged",
            _ => "training has ended",
        };
        self.tell(NoteKind::Warning, format!("cannot {what}: {why}"));
        None
    }

    fn acknowledge_pause(&mut self, paused: bool) {
        if self.pause_requested == Some(paused) {
            self.pause_requested = None;
        }
    }

    /// Makes `text` the note on the status line.
    fn tell(&mut self, kind: NoteKind, text: String) {
        self.run.tell(kind, text);
        self.theme_warning_shown = None;
    }

    fn tell_theme_warning(&mut self, text: String) {
        self.run.tell(NoteKind::Warning, text.clone());
        self.theme_warning_shown = Some(text);
    }

    /// One `x` was pressed and the next decides: the prompt stays on the status line, above
    /// any news, until the run can no longer be stopped.
    pub fn stop_prompt_shown(&self) -> bool {
        self.stop_armed
            && matches!(
                self.run.phase(),
                Phase::Starting | Phase::Training | Phase::Diverged(_)
            )
    }

    fn accepts_commands(&self) -> bool {
        self.watch != Some(WatchMode::Replay)
            && matches!(self.run.phase(), Phase::Starting | Phase::Training)
    }

    /// The event loop should end now.
    pub fn should_exit(&self) -> bool {
        self.exit
    }

    /// The run as its messages tell it.
    pub fn run(&self) -> &RunState {
        &self.run
    }

    /// The pause state asked for and not yet acknowledged.
    pub fn pause_requested(&self) -> Option<bool> {
        self.pause_requested
    }

    pub fn saving(&self) -> bool {
        self.saving
    }

    /// Scores were asked for and have not come back yet.
    pub fn scoring(&self) -> bool {
        self.scoring
    }

    /// The digit asked for (`0`-`9`), or `None` for all ten.
    pub fn digit_request(&self) -> Option<u8> {
        self.digit_request
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

    /// The probes asked for.
    pub fn probes(&self) -> ProbeToggles {
        self.probes
    }

    /// The grid the digit panel shows: an older one kept, or the live one.
    pub fn shown_samples(&self) -> Option<&SampleGrid> {
        match self.film.shown() {
            Some(frame) => Some(&frame.grid),
            None => self.run.samples(),
        }
    }

    /// The digit panel shows the live grid (not an older one from the filmstrip).
    pub fn showing_live(&self) -> bool {
        self.film.shown().is_none()
    }

    /// The probes for the grid shown: only the live grid has them.
    pub fn probes_of_shown(&self) -> Option<&ProbeReport> {
        self.run.probes_of_samples().filter(|_| self.showing_live())
    }

    /// Where the grid shown sits in the filmstrip, when it is an older one.
    pub fn film_position(&self) -> Option<FilmPosition> {
        let per_epoch = self.run.run_info().map_or(0, |r| r.steps_per_epoch);
        self.film.position(per_epoch)
    }

    pub fn filmstrip(&self) -> &Filmstrip {
        &self.film
    }

    /// The step of each logged point, as the loss histories keep them.
    pub fn step_axis(&self) -> &History {
        &self.step_axis
    }

    /// Smoothing and scale of the loss plots.
    pub fn curves(&self) -> CurveView {
        self.curves
    }

    /// The parent's curves when the overlay is on.
    pub fn parent_overlay(&self) -> Option<&ParentCurves> {
        self.parent.as_ref().filter(|_| self.parent_overlay)
    }

    /// Where the current theme is in the cycle: the index into the dashboard's `ThemeSet`.
    pub fn theme_index(&self) -> usize {
        self.themes.current
    }

    /// The name the current theme was asked for by (a bad file keeps its name here).
    pub fn theme_name(&self) -> &str {
        self.themes
            .entries
            .get(self.themes.current)
            .map_or("default", |(name, _)| name.as_str())
    }

    /// Why the current theme is drawn as the default instead of what was asked, if it is.
    fn theme_warning(&self) -> Option<&str> {
        self.themes
            .entries
            .get(self.themes.current)
            .and_then(|(_, warning)| warning.as_deref())
    }

    /// The paragraph printed after the terminal is restored.
    pub fn summary(&self) -> String {
        self.run.summary()
    }
}

#[cfg(test)]
mod tests;
