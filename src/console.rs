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

/// An error and its causes on one line, each cause added only if the text so far does not
/// already say it (many messages quote their cause).
pub fn error_text(e: &anyhow::Error) -> String {
    let mut text = e.to_string();
    for cause in e.chain().skip(1) {
        let cause = cause.to_string();
        if !text.contains(&cause) {
            text.push_str(": ");
            text.push_str(&cause);
        }
    }
    text
}

#[cfg(test)]
mod tests {
    use super::*;

    #[derive(Debug, thiserror::Error)]
    #[error("cannot read {path}: {source}")]
    struct ReadError {
        path: String,
        source: std::io::Error,
    }

    #[test]
    fn a_cause_already_quoted_is_not_repeated() {
        let io = std::io::Error::other("disk on fire");
        let e = anyhow::Error::new(ReadError {
            path: "x".into(),
            source: io,
        });
        assert_eq!(error_text(&e), "cannot read x: disk on fire");
        let e = e.context("cannot start the run");
        assert_eq!(
            error_text(&e),
            "cannot start the run: cannot read x: disk on fire"
        );
    }
}
