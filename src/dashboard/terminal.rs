//! The real terminal: raw mode and the alternate screen for as long as the dashboard lives,
//! restored on every exit path (panics included, before their message prints), and its key
//! events read on a thread of their own.

use std::backtrace::{Backtrace, BacktraceStatus};
use std::io::{self, Write};
use std::panic::{self, PanicHookInfo};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::mpsc::Receiver;
use std::sync::{Arc, Mutex, PoisonError};
use std::thread::{self, ThreadId};
use std::time::Duration;

use ratatui::crossterm::cursor::{Hide, Show};
use ratatui::crossterm::event::{self, Event};
use ratatui::crossterm::execute;
use ratatui::crossterm::terminal::{
    EnterAlternateScreen, LeaveAlternateScreen, disable_raw_mode, enable_raw_mode,
};

use super::{EventSource, TuiError};

/// Events from the real terminal, read on a thread of their own.
///
/// crossterm's `read` never returns once the terminal has hung up (it spins on end-of-file), so
/// reading on the loop's thread would leave the loop deaf to SIGHUP/SIGTERM and train on,
/// unseen. A reader thread keeps the loop free to notice signals and stop.
pub struct TerminalEvents {
    events: Receiver<io::Result<Event>>,
}

impl TerminalEvents {
    pub fn start() -> Result<TerminalEvents, TuiError> {
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

/// True while raw mode and the alternate screen are on.
static TERMINAL_ACTIVE: AtomicBool = AtomicBool::new(false);
/// Panic messages from other threads, printed once the terminal is back.
static DEFERRED_PANICS: Mutex<Vec<String>> = Mutex::new(Vec::new());

type PanicHook = Box<dyn Fn(&PanicHookInfo<'_>) + Send + Sync + 'static>;

/// Raw mode and the alternate screen, undone on drop. While it lives, a panic on the UI thread
/// restores the terminal before the message prints; a panic on any other thread is held back
/// and printed after the restore, since the UI may still be drawing over it.
pub struct TerminalSession {
    previous_hook: Arc<PanicHook>,
}

impl TerminalSession {
    pub fn enter() -> Result<TerminalSession, TuiError> {
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
