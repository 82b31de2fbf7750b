//! Printing that never panics: `println!` panics when the terminal has hung up or a pipe has
//! closed, which would end the process before the trainer saves its checkpoint.

use std::io::{self, Write};

/// Writes `text` and a newline to stdout, ignoring a closed or broken stdout.
pub fn say(text: impl std::fmt::Display) {
    let mut out = io::stdout().lock();
    let _ = writeln!(out, "{text}");
    let _ = out.flush();
}

/// Writes `text` and a newline to stderr, ignoring a closed or broken stderr.
pub fn warn(text: impl std::fmt::Display) {
    let _ = writeln!(io::stderr().lock(), "{text}");
}
