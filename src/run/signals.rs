//! SIGTERM, SIGINT and SIGHUP, caught the same way for every front end: each sets a flag the
//! front end reads between frames or messages, and asks the trainer to save and stop.
//!
//! The handlers stay after the front end closes, so a signal then cannot kill the process while
//! the trainer writes its last checkpoint; the run's exit code still reports the signal.

use std::io;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};

/// The signals that stop a run.
pub const STOP_SIGNALS: [i32; 3] = [
    signal_hook::consts::SIGTERM,
    signal_hook::consts::SIGINT,
    signal_hook::consts::SIGHUP,
];

/// Flags set by the stop signals.
pub struct StopSignals {
    /// The number of the last signal caught, 0 for none; `take` clears it.
    latest: Arc<AtomicUsize>,
    /// The same, never cleared: whether any signal came at all.
    seen: Arc<AtomicUsize>,
}

impl StopSignals {
    /// Installs the handlers.
    pub fn register() -> io::Result<StopSignals> {
        let latest = Arc::new(AtomicUsize::new(0));
        let seen = Arc::new(AtomicUsize::new(0));
        for signal in STOP_SIGNALS {
            for flag in [&latest, &seen] {
                signal_hook::flag::register_usize(signal, Arc::clone(flag), signal as usize)?;
            }
        }
        Ok(StopSignals { latest, seen })
    }

    /// The flag `take` reads, for a loop that takes signals itself.
    pub fn latest(&self) -> &AtomicUsize {
        &self.latest
    }

    /// The signal caught since the last call, if one was.
    pub fn take(&self) -> Option<i32> {
        take_signal(&self.latest)
    }

    /// The last signal caught at all, if any was.
    pub fn seen(&self) -> Option<i32> {
        match self.seen.load(Ordering::SeqCst) {
            0 => None,
            signal => i32::try_from(signal).ok(),
        }
    }
}

/// Takes the signal number from `flag` (0: none), leaving 0 behind.
pub fn take_signal(flag: &AtomicUsize) -> Option<i32> {
    match flag.swap(0, Ordering::SeqCst) {
        0 => None,
        signal => i32::try_from(signal).ok(),
    }
}

/// Conventional exit code for a run stopped by `signal`: 128 + its number.
pub fn exit_code(signal: i32) -> i32 {
    128 + signal
}
