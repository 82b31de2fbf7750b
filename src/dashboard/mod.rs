//! The dashboard front end: the terminal session, the event loop and frame pacing; keys to
//! actions (`action`), its state (`app`, with the kept sample grids of `filmstrip` and the loss
//! plots' smoothing and scale of `curves`), the widgets and the themes.
//!
//! `run` owns the terminal for the length of a run. The loop drains trainer messages, draws at a
//! fixed rate and waits for keys with a timeout of one frame, so the UI thread sleeps between
//! frames however busy the trainer is. The terminal is restored by a guard on every return path,
//! and by the panic hook before a panic message is printed.

pub mod action;
pub mod app;
pub mod curves;
pub mod filmstrip;
pub mod pictures;
pub mod terminal;
pub mod theme;
pub mod widgets;

use std::io;
use std::path::Path;
use std::sync::atomic::AtomicUsize;
use std::sync::mpsc::{Receiver, Sender, TryRecvError};
use std::time::{Duration, Instant};

use ratatui::Terminal;
use ratatui::backend::{Backend, CrosstermBackend};
use ratatui::crossterm::event::Event;

use crate::protocol::Command;
use crate::run::signals::{StopSignals, take_signal};
use crate::run::state::{Feed, Note};

use self::action::Action;
use self::app::App;
use self::terminal::{TerminalEvents, TerminalSession};
use self::theme::{ThemeSet, no_color_from_env};

/// Messages folded in per frame at most, so a flood cannot delay drawing or keys.
const MAX_MESSAGES_PER_FRAME: usize = 10_000;
const MAX_FPS: u32 = 120;

/// How the dashboard runs.
#[derive(Debug, Clone, Copy)]
pub struct TuiOptions<'a> {
    /// Frames per second; clamped to 1..=120.
    pub fps: u32,
    /// The theme to start with (`--theme`, config key `theme`).
    pub theme: &'a str,
    /// Where user themes live: `<config dir>/themes`.
    pub themes_dir: &'a Path,
    /// Keep the dashboard up after the run ends on its own, until a quit key.
    pub stay_open_when_done: bool,
    /// News from other threads, in no order with the messages (the control socket's word on
    /// an in-process run). News that must keep its place among the messages comes as `Feed`.
    pub notes: Option<&'a Receiver<Note>>,
}

#[derive(Debug, thiserror::Error)]
pub enum TuiError {
    #[error(
        "cannot set up the terminal for the dashboard: {0}; is this a terminal? --no-tui trains without it"
    )]
    Setup(#[source] io::Error),
    #[error("cannot install the SIGTERM/SIGINT handler: {0}")]
    Signal(#[source] io::Error),
    #[error("cannot read keyboard input: {0}; --no-tui trains without the dashboard")]
    Input(#[source] io::Error),
    #[error("cannot draw the dashboard: {0}; --no-tui trains without it")]
    Draw(String),
}

/// Where key and resize events come from: the terminal, or a script in tests.
pub trait EventSource {
    /// The next event, waiting at most `timeout`; `None` when nothing came.
    fn next_event(&mut self, timeout: Duration) -> io::Result<Option<Event>>;
}

/// How the loop ended: the final state always, and the error that ended it, if one did.
pub struct LoopEnd {
    pub app: App,
    pub stats: LoopStats,
    pub error: Option<TuiError>,
}

impl LoopEnd {
    pub fn into_result(self) -> Result<(App, LoopStats), TuiError> {
        match self.error {
            None => Ok((self.app, self.stats)),
            Some(e) => Err(e),
        }
    }
}

/// Counts from one run of the loop.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct LoopStats {
    pub frames: u64,
    pub messages: u64,
}

/// Runs the dashboard until the run is over (or the user leaves), then restores the terminal and
/// returns the final state, whose `summary()` is for printing.
/// `msg_rx` carries the trainer's messages (`TrainMsg`), or, for a viewer, those and news from
/// elsewhere in the order they happened (`Feed`).
pub fn run<M: Into<Feed>>(
    app: App,
    msg_rx: Receiver<M>,
    cmd_tx: Sender<Command>,
    opts: &TuiOptions,
) -> Result<App, TuiError> {
    let mut app = app;
    let (themes, warning) = ThemeSet::load(opts.theme, opts.themes_dir, no_color_from_env());
    app.set_themes(themes.choice(), warning);
    app.set_stay_open_when_done(opts.stay_open_when_done);

    let signals = StopSignals::register().map_err(TuiError::Signal)?;
    let session = TerminalSession::enter()?;
    // The terminal answers on the keyboard's input: ask before the key reader starts.
    app.set_pictures(pictures::detect());
    let mut events = TerminalEvents::start()?;
    let mut terminal =
        Terminal::new(CrosstermBackend::new(io::stdout())).map_err(TuiError::Setup)?;
    let result = event_loop(
        &mut terminal,
        &mut events,
        app,
        &themes,
        Link {
            msgs: &msg_rx,
            commands: &cmd_tx,
            notes: opts.notes,
        },
        frame_time(opts.fps),
        signals.latest(),
    );
    // A hung-up terminal still holds ratatui's hidden cursor, and its `Drop` would print (and
    // so panic) on the dead terminal: restore it here and forget the terminal if that fails.
    if terminal.show_cursor().is_err() {
        std::mem::forget(terminal);
    } else {
        drop(terminal);
    }
    drop(session);
    match result {
        LoopEnd {
            app, error: None, ..
        } => Ok(app),
        LoopEnd {
            mut app,
            error: Some(error),
            ..
        } => {
            // The dashboard is failing; ask the trainer to save and stop rather than train unseen.
            // A viewer of another process's run only goes away: the run is watched elsewhere.
            if app.watch_mode().is_none() {
                let _ = cmd_tx.send(Command::Stop);
            }
            // A terminal that fails after SIGHUP/SIGTERM has simply gone away: the run ends as
            // the signal asks, not as an error.
            if let Some(signal) = signals.seen() {
                app.on_signal(signal);
                Ok(app)
            } else {
                Err(error)
            }
        }
    }
}

/// One frame at `fps`, clamped to a sane rate.
pub fn frame_time(fps: u32) -> Duration {
    Duration::from_secs(1) / fps.clamp(1, MAX_FPS)
}

/// The two channels to the trainer: what it tells (with news from elsewhere, for a viewer),
/// and the commands it takes.
pub struct Link<'a, M> {
    pub msgs: &'a Receiver<M>,
    pub commands: &'a Sender<Command>,
    pub notes: Option<&'a Receiver<Note>>,
}

/// The loop, generic over the terminal and the event source so tests can drive it.
pub fn event_loop<B: Backend, E: EventSource, M: Into<Feed>>(
    terminal: &mut Terminal<B>,
    events: &mut E,
    mut app: App,
    themes: &ThemeSet,
    link: Link<M>,
    frame: Duration,
    interrupted: &AtomicUsize,
) -> LoopEnd {
    let mut stats = LoopStats::default();
    let mut next_draw = Instant::now();
    loop {
        let mut backlog = true;
        for _ in 0..MAX_MESSAGES_PER_FRAME {
            match link.msgs.try_recv() {
                Ok(item) => {
                    match item.into() {
                        Feed::Msg(msg) => app.on_msg(msg),
                        Feed::Note(note) => app.notify(note),
                    }
                    stats.messages += 1;
                }
                Err(TryRecvError::Empty) => {
                    backlog = false;
                    break;
                }
                Err(TryRecvError::Disconnected) => {
                    app.on_disconnect();
                    backlog = false;
                    break;
                }
            }
        }
        if let Some(notes) = link.notes {
            while let Ok(note) = notes.try_recv() {
                app.notify(note);
            }
        }
        // A signal counts as a quit key; a second one stops waiting for the checkpoint.
        if let Some(signal) = take_signal(interrupted)
            && let Some(command) = app.on_signal(signal)
            && link.commands.send(command).is_err()
        {
            app.on_send_failed(command);
        }
        if app.should_exit() {
            return LoopEnd {
                app,
                stats,
                error: None,
            };
        }
        let now = Instant::now();
        if now >= next_draw {
            if let Err(e) = terminal.draw(|frame| widgets::draw(frame, &app, themes)) {
                return LoopEnd {
                    app,
                    stats,
                    error: Some(TuiError::Draw(e.to_string())),
                };
            }
            stats.frames += 1;
            next_draw = now + frame;
        }
        // With messages still queued, only glance at the keyboard and go on draining.
        let timeout = if backlog {
            Duration::ZERO
        } else {
            next_draw.saturating_duration_since(Instant::now())
        };
        let event = match events.next_event(timeout) {
            Ok(event) => event,
            Err(e) => {
                return LoopEnd {
                    app,
                    stats,
                    error: Some(TuiError::Input(e)),
                };
            }
        };
        match event {
            Some(Event::Key(key)) => {
                if let Some(action) = Action::from_key(key) {
                    apply(&mut app, action, link.commands);
                }
            }
            Some(Event::Resize(..)) => next_draw = Instant::now(),
            _ => {}
        }
    }
}

fn apply(app: &mut App, action: Action, cmd_tx: &Sender<Command>) {
    if let Some(command) = app.update(action)
        && cmd_tx.send(command).is_err()
    {
        app.on_send_failed(command);
    }
}

#[cfg(test)]
mod tests;
