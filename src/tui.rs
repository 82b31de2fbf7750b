//! The dashboard front end: terminal setup and restore, the event loop, frame pacing.
//!
//! `run` owns the terminal for the length of a run. The loop drains trainer messages, draws at a
//! fixed rate and waits for keys with a timeout of one frame, so the UI thread sleeps between
//! frames however busy the trainer is. The terminal is restored by a guard on every return path,
//! and by the panic hook before a panic message is printed.

use std::backtrace::{Backtrace, BacktraceStatus};
use std::io::{self, Write};
use std::panic::{self, PanicHookInfo};
use std::path::Path;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::mpsc::{Receiver, Sender, TryRecvError};
use std::sync::{Arc, Mutex, PoisonError};
use std::thread::{self, ThreadId};
use std::time::{Duration, Instant};

use ratatui::Terminal;
use ratatui::backend::{Backend, CrosstermBackend};
use ratatui::crossterm::cursor::{Hide, Show};
use ratatui::crossterm::event::{self, Event};
use ratatui::crossterm::execute;
use ratatui::crossterm::terminal::{
    EnterAlternateScreen, LeaveAlternateScreen, disable_raw_mode, enable_raw_mode,
};

use crate::action::Action;
use crate::app::App;
use crate::protocol::{Command, TrainMsg};
use crate::theme::{ThemeSet, no_color_from_env};
use crate::ui;

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

/// Events from the real terminal, read on a thread of their own.
///
/// crossterm's `read` never returns once the terminal has hung up (it spins on end-of-file), so
/// reading on the loop's thread would leave the loop deaf to SIGHUP/SIGTERM and train on,
/// unseen. A reader thread keeps the loop free to notice signals and stop.
pub struct TerminalEvents {
    events: Receiver<io::Result<Event>>,
}

impl TerminalEvents {
    fn start() -> Result<TerminalEvents, TuiError> {
        let (tx, events) = std::sync::mpsc::channel();
        std::thread::Builder::new()
            .name("keys".to_string())
            .spawn(move || {
                loop {
                    let event = event::read();
                    let failed = event.is_err();
                    if tx.send(event).is_err() || failed {
                        break;
                    }
                }
            })
            .map_err(TuiError::Setup)?;
        Ok(TerminalEvents { events })
    }
}

impl EventSource for TerminalEvents {
    fn next_event(&mut self, timeout: Duration) -> io::Result<Option<Event>> {
        match self.events.recv_timeout(timeout) {
            Ok(event) => event.map(Some),
            Err(std::sync::mpsc::RecvTimeoutError::Timeout) => Ok(None),
            Err(std::sync::mpsc::RecvTimeoutError::Disconnected) => Err(io::Error::new(
                io::ErrorKind::UnexpectedEof,
                "the terminal's input has closed",
            )),
        }
    }
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
pub fn run(
    app: App,
    msg_rx: Receiver<TrainMsg>,
    cmd_tx: Sender<Command>,
    opts: &TuiOptions,
) -> Result<App, TuiError> {
    let mut app = app;
    let (themes, warning) = ThemeSet::load(opts.theme, opts.themes_dir, no_color_from_env());
    app.set_themes(themes, warning);
    app.set_stay_open_when_done(opts.stay_open_when_done);

    let signals = SignalFlags::register()?;
    let session = TerminalSession::enter()?;
    let mut events = TerminalEvents::start()?;
    let mut terminal =
        Terminal::new(CrosstermBackend::new(io::stdout())).map_err(TuiError::Setup)?;
    let result = event_loop(
        &mut terminal,
        &mut events,
        app,
        &msg_rx,
        &cmd_tx,
        frame_time(opts.fps),
        &signals.interrupted,
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
            let _ = cmd_tx.send(Command::Stop);
            // A terminal that fails after SIGHUP/SIGTERM has simply gone away: the run ends as
            // the signal asks, not as an error.
            let signal = signals.seen.load(Ordering::SeqCst);
            if signal != 0 {
                app.on_signal(signal as i32);
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

/// The loop, generic over the terminal and the event source so tests can drive it.
pub fn event_loop<B: Backend, E: EventSource>(
    terminal: &mut Terminal<B>,
    events: &mut E,
    mut app: App,
    msg_rx: &Receiver<TrainMsg>,
    cmd_tx: &Sender<Command>,
    frame: Duration,
    interrupted: &AtomicUsize,
) -> LoopEnd {
    let mut stats = LoopStats::default();
    let mut next_draw = Instant::now();
    loop {
        let mut backlog = true;
        for _ in 0..MAX_MESSAGES_PER_FRAME {
            match msg_rx.try_recv() {
                Ok(msg) => {
                    app.on_msg(msg);
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
        // A signal counts as a quit key; a second one stops waiting for the checkpoint.
        let signal = interrupted.swap(0, Ordering::SeqCst);
        if signal != 0
            && let Some(command) = app.on_signal(signal as i32)
            && cmd_tx.send(command).is_err()
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
            if let Err(e) = terminal.draw(|frame| ui::draw(frame, &app)) {
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
                    apply(&mut app, action, cmd_tx);
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

/// SIGTERM, SIGINT and SIGHUP set a flag the loop reads. The handlers stay after the dashboard
/// closes, so a signal then cannot kill the process while the trainer writes its last
/// checkpoint; the run's exit code still reports the signal.
struct SignalFlags {
    /// The number of the last signal caught, 0 for none; the loop takes it.
    interrupted: Arc<AtomicUsize>,
    /// The same, never taken: whether any signal came at all.
    seen: Arc<AtomicUsize>,
}

impl SignalFlags {
    fn register() -> Result<SignalFlags, TuiError> {
        use signal_hook::consts::{SIGHUP, SIGINT, SIGTERM};
        let interrupted = Arc::new(AtomicUsize::new(0));
        let seen = Arc::new(AtomicUsize::new(0));
        for signal in [SIGTERM, SIGINT, SIGHUP] {
            for flag in [&interrupted, &seen] {
                signal_hook::flag::register_usize(signal, Arc::clone(flag), signal as usize)
                    .map_err(TuiError::Signal)?;
            }
        }
        Ok(SignalFlags { interrupted, seen })
    }
}

/// True while raw mode and the alternate screen are on.
static TERMINAL_ACTIVE: AtomicBool = AtomicBool::new(false);
/// Panic messages from other threads, printed once the terminal is back.
static DEFERRED_PANICS: Mutex<Vec<String>> = Mutex::new(Vec::new());

type PanicHook = Box<dyn Fn(&PanicHookInfo<'_>) + Send + Sync + 'static>;

/// Raw mode and the alternate screen, undone on drop. While it lives, a panic on the UI thread
/// restores the terminal before the message prints; a panic on any other thread is held back
/// and printed after the restore, since the UI may still be drawing over it.
struct TerminalSession {
    previous_hook: Arc<PanicHook>,
}

impl TerminalSession {
    fn enter() -> Result<TerminalSession, TuiError> {
        let previous_hook: Arc<PanicHook> = Arc::new(panic::take_hook());
        let ui_thread = thread::current().id();
        let hook = Arc::clone(&previous_hook);
        panic::set_hook(Box::new(move |info| on_panic(info, ui_thread, &hook)));
        let session = TerminalSession { previous_hook };
        // Marked active first, so a failure half-way is still undone by the drop.
        TERMINAL_ACTIVE.store(true, Ordering::SeqCst);
        enable_raw_mode().map_err(TuiError::Setup)?;
        execute!(io::stdout(), EnterAlternateScreen, Hide).map_err(TuiError::Setup)?;
        Ok(session)
    }
}

impl Drop for TerminalSession {
    fn drop(&mut self) {
        print_deferred(restore_terminal());
        // Setting a hook from a panicking thread aborts, so during unwinding ours stays; it
        // defers to the previous one once the terminal is inactive anyway.
        if !thread::panicking() {
            let previous = Arc::clone(&self.previous_hook);
            panic::set_hook(Box::new(move |info| previous(info)));
        }
    }
}

fn on_panic(info: &PanicHookInfo<'_>, ui_thread: ThreadId, previous: &PanicHook) {
    if thread::current().id() == ui_thread {
        print_deferred(restore_terminal());
        previous(info);
        return;
    }
    let text = describe_panic(info);
    let mut deferred = DEFERRED_PANICS
        .lock()
        .unwrap_or_else(PoisonError::into_inner);
    if TERMINAL_ACTIVE.load(Ordering::SeqCst) {
        deferred.push(text);
    } else {
        drop(deferred);
        previous(info);
    }
}

/// The default hook's words, kept for printing later.
fn describe_panic(info: &PanicHookInfo<'_>) -> String {
    let current = thread::current();
    let name = current.name().unwrap_or("<unnamed>");
    let backtrace = Backtrace::capture();
    match backtrace.status() {
        BacktraceStatus::Captured => {
            format!("thread '{name}' {info}\nstack backtrace:\n{backtrace}")
        }
        _ => format!(
            "thread '{name}' {info}\nnote: run with `RUST_BACKTRACE=1` environment variable to display a backtrace"
        ),
    }
}

/// Leaves raw mode and the alternate screen if they are on; returns held-back panic messages.
/// Safe to call any number of times from any thread.
fn restore_terminal() -> Vec<String> {
    let mut deferred = DEFERRED_PANICS
        .lock()
        .unwrap_or_else(PoisonError::into_inner);
    if TERMINAL_ACTIVE.swap(false, Ordering::SeqCst) {
        // Nothing useful can be done if restoring fails; the shell's `reset` is the fallback.
        let _ = disable_raw_mode();
        let _ = execute!(io::stdout(), LeaveAlternateScreen, Show);
    }
    std::mem::take(&mut *deferred)
}

fn print_deferred(messages: Vec<String>) {
    let mut stderr = io::stderr().lock();
    for message in messages {
        let _ = writeln!(stderr, "{message}");
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::app::Phase;
    use crate::protocol::{FinishReason, RunInfo, SampleGrid, StepStats};
    use ratatui::backend::TestBackend;
    use ratatui::crossterm::event::{KeyCode, KeyEvent, KeyModifiers};
    use std::collections::VecDeque;
    use std::path::PathBuf;
    use std::sync::mpsc;

    /// Key events handed out one per call, then silence (sleeping like a real poll would).
    struct Script {
        events: VecDeque<Event>,
        polls: u64,
    }

    impl Script {
        fn new(keys: &[char]) -> Script {
            Script {
                events: keys
                    .iter()
                    .map(|&c| Event::Key(KeyEvent::new(KeyCode::Char(c), KeyModifiers::NONE)))
                    .collect(),
                polls: 0,
            }
        }
    }

    impl EventSource for Script {
        fn next_event(&mut self, timeout: Duration) -> io::Result<Option<Event>> {
            self.polls += 1;
            match self.events.pop_front() {
                Some(event) => Ok(Some(event)),
                None => {
                    thread::sleep(timeout);
                    Ok(None)
                }
            }
        }
    }

    fn info() -> RunInfo {
        RunInfo {
            preset: "reference".to_string(),
            data_source: "built-in MNIST".to_string(),
            images: 60_000,
            epochs: 1,
            batch_size: 64,
            steps_per_epoch: 938,
            total_steps: 938,
            start_step: 0,
            run_dir: PathBuf::from("/runs/test"),
            seed: 1,
            eval_count: 2000,
        }
    }

    fn stats(step: u64) -> StepStats {
        StepStats {
            step,
            epoch: 1,
            batch: step,
            d_loss: 0.5 + (step % 7) as f32 / 10.0,
            g_loss: 1.0,
            d_real: 0.6,
            d_fake: 0.4,
            lr: 2e-4,
            steps_per_s: 50.0,
            elapsed_s: step as f64 / 50.0,
        }
    }

    fn screen(terminal: &Terminal<TestBackend>) -> String {
        let buffer = terminal.backend().buffer();
        let area = buffer.area;
        (area.top()..area.bottom())
            .map(|y| {
                (area.left()..area.right())
                    .map(|x| buffer.cell((x, y)).map_or(" ", |c| c.symbol()))
                    .collect::<String>()
            })
            .collect::<Vec<_>>()
            .join("\n")
    }

    /// A stand-in trainer: announces the run, then on Stop saves and finishes, like the real one.
    fn fake_trainer(
        msg_tx: Sender<TrainMsg>,
        cmd_rx: Receiver<Command>,
    ) -> thread::JoinHandle<Vec<Command>> {
        thread::spawn(move || {
            let mut seen = Vec::new();
            let _ = msg_tx.send(TrainMsg::Started(info()));
            for step in 1..=20 {
                let _ = msg_tx.send(TrainMsg::Step(stats(step)));
            }
            let _ = msg_tx.send(TrainMsg::Samples(SampleGrid {
                step: 20,
                width: 28,
                height: 28,
                pixels: vec![128; 4 * 784],
                labels: None,
            }));
            while let Ok(command) = cmd_rx.recv_timeout(Duration::from_secs(10)) {
                seen.push(command);
                match command {
                    Command::Pause => {
                        let _ = msg_tx.send(TrainMsg::Paused { step: 20 });
                    }
                    Command::Stop => {
                        thread::sleep(Duration::from_millis(50));
                        let _ = msg_tx.send(TrainMsg::Finished {
                            reason: FinishReason::Stopped,
                            step: 20,
                            last_checkpoint: Some(PathBuf::from("/runs/test/ckpt.safetensors")),
                        });
                        break;
                    }
                    _ => {}
                }
            }
            seen
        })
    }

    #[test]
    fn quit_stops_the_trainer_and_waits_for_it() {
        let (msg_tx, msg_rx) = mpsc::channel();
        let (cmd_tx, cmd_rx) = mpsc::channel();
        let trainer = fake_trainer(msg_tx, cmd_rx);
        // Let the first messages land before the keys are read.
        thread::sleep(Duration::from_millis(30));
        let mut terminal = Terminal::new(TestBackend::new(80, 24)).ok();
        let Some(terminal) = terminal.as_mut() else {
            panic!("test terminal");
        };
        let mut script = Script::new(&['p', 'q']);
        let flag = AtomicUsize::new(0);
        let result = event_loop(
            terminal,
            &mut script,
            App::new(),
            &msg_rx,
            &cmd_tx,
            frame_time(100),
            &flag,
        );
        let (app, stats) = result
            .into_result()
            .unwrap_or_else(|e| panic!("loop failed: {e}"));
        let seen = trainer.join().unwrap_or_default();
        assert_eq!(seen, vec![Command::Pause, Command::Stop]);
        assert_eq!(app.phase(), &Phase::Finished(FinishReason::Stopped));
        assert_eq!(
            app.last_checkpoint(),
            Some(&PathBuf::from("/runs/test/ckpt.safetensors"))
        );
        assert!(stats.frames >= 1);
        assert!(app.summary().contains("/runs/test"));
        // The last frame drawn was the stopping notice, waiting for the trainer's answer.
        assert!(
            screen(terminal).contains("stopping: saving checkpoint"),
            "{}",
            screen(terminal)
        );
    }

    #[test]
    fn a_signal_quits_like_the_q_key() {
        let (msg_tx, msg_rx) = mpsc::channel();
        let (cmd_tx, cmd_rx) = mpsc::channel();
        let trainer = fake_trainer(msg_tx, cmd_rx);
        let mut terminal = Terminal::new(TestBackend::new(40, 10)).ok();
        let Some(terminal) = terminal.as_mut() else {
            panic!("test terminal");
        };
        let flag = AtomicUsize::new(15);
        let result = event_loop(
            terminal,
            &mut Script::new(&[]),
            App::new(),
            &msg_rx,
            &cmd_tx,
            frame_time(100),
            &flag,
        );
        let (app, _) = result
            .into_result()
            .unwrap_or_else(|e| panic!("loop failed: {e}"));
        assert_eq!(trainer.join().unwrap_or_default(), vec![Command::Stop]);
        assert_eq!(app.phase(), &Phase::Finished(FinishReason::Stopped));
        assert_eq!(app.signalled(), Some(15));
    }

    #[test]
    fn a_vanished_trainer_ends_the_loop_with_an_error_state() {
        let (msg_tx, msg_rx) = mpsc::channel::<TrainMsg>();
        let (cmd_tx, _cmd_rx) = mpsc::channel();
        let _ = msg_tx.send(TrainMsg::Started(info()));
        drop(msg_tx);
        let mut terminal = Terminal::new(TestBackend::new(1, 1)).ok();
        let Some(terminal) = terminal.as_mut() else {
            panic!("test terminal");
        };
        let result = event_loop(
            terminal,
            &mut Script::new(&[]),
            App::new(),
            &msg_rx,
            &cmd_tx,
            frame_time(100),
            &AtomicUsize::new(0),
        );
        let (app, _) = result
            .into_result()
            .unwrap_or_else(|e| panic!("loop failed: {e}"));
        assert!(matches!(app.phase(), Phase::Failed(_)));
    }

    #[test]
    fn drawing_is_paced_however_many_messages_arrive() {
        let (msg_tx, msg_rx) = mpsc::channel();
        let (cmd_tx, _cmd_rx) = mpsc::channel();
        let flood = thread::spawn(move || {
            let _ = msg_tx.send(TrainMsg::Started(info()));
            let start = Instant::now();
            let mut step = 0;
            while start.elapsed() < Duration::from_millis(300) && step < 300_000 {
                step += 1;
                if msg_tx.send(TrainMsg::Step(stats(step))).is_err() {
                    break;
                }
            }
            let _ = msg_tx.send(TrainMsg::Error("flood over".to_string()));
            step
        });
        let mut terminal = Terminal::new(TestBackend::new(120, 40)).ok();
        let Some(terminal) = terminal.as_mut() else {
            panic!("test terminal");
        };
        let started = Instant::now();
        let frame = frame_time(20);
        let result = event_loop(
            terminal,
            &mut Script::new(&[]),
            App::new(),
            &msg_rx,
            &cmd_tx,
            frame,
            &AtomicUsize::new(0),
        );
        let elapsed = started.elapsed();
        let (app, stats) = result
            .into_result()
            .unwrap_or_else(|e| panic!("loop failed: {e}"));
        let sent = flood.join().unwrap_or(0);
        assert!(sent > 1000, "the flood was only {sent} messages");
        let budget = elapsed.as_millis() / frame.as_millis() + 2;
        assert!(
            u128::from(stats.frames) <= budget,
            "{} frames in {elapsed:?} at 20 fps",
            stats.frames
        );
        assert!(stats.frames >= 2, "{} frames", stats.frames);
        assert_eq!(app.phase(), &Phase::Failed("flood over".to_string()));
        assert_eq!(app.history(crate::app::Series::DLoss).full.total(), sent);
    }

    #[test]
    fn frame_time_is_clamped() {
        assert_eq!(frame_time(0), Duration::from_secs(1));
        assert_eq!(frame_time(20), Duration::from_millis(50));
        assert_eq!(frame_time(10_000), Duration::from_secs(1) / MAX_FPS);
    }
}
