//! The control socket's messages: one JSON object per line, each carrying the protocol version,
//! bounded in size and checked before anything acts on it.

use serde::{Deserialize, Serialize};

use crate::protocol::{Command, TrainMsg};

/// The version every line carries; a line of another version is refused.
pub const VERSION: u32 = 1;

/// The longest line a viewer may send, newline included: a command is under 100 bytes.
pub const MAX_REQUEST_BYTES: usize = 4096;

/// The longest line a viewer accepts from the run: a sample grid of 256 digits as JSON is
/// under 1 MiB.
pub const MAX_EVENT_BYTES: usize = 8 << 20;

/// What a viewer asks of the run.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case", deny_unknown_fields)]
pub enum Request {
    /// Send the run's current facts, then every trainer message from now on.
    Subscribe { v: u32 },
    /// Pass a command to the trainer.
    Command { v: u32, command: Command },
}

/// What the run tells a viewer.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum Reply {
    /// A trainer message.
    Event { v: u32, msg: Box<TrainMsg> },
    /// The command was passed to the trainer (its effect arrives as events).
    Accepted { v: u32, command: Command },
    /// The line was refused; the connection may be closed after this.
    Refused { v: u32, error: String },
}

/// Why a request line was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum RequestError {
    #[error("a request is at most {MAX_REQUEST_BYTES} bytes")]
    TooLong,
    #[error("a request is one line of UTF-8 JSON")]
    NotText,
    #[error("not a request: {0}")]
    Malformed(String),
    #[error("protocol version {0} is not supported; this run speaks version {VERSION}")]
    Version(u32),
    #[error("no digit {0}: digits are 0-9")]
    BadDigit(u8),
}

/// Parses and checks one request line (without its newline).
pub fn parse_request(line: &[u8]) -> Result<Request, RequestError> {
    if line.len() >= MAX_REQUEST_BYTES {
        return Err(RequestError::TooLong);
    }
    let text = std::str::from_utf8(line).map_err(|_| RequestError::NotText)?;
    let request: Request = serde_json::from_str(text.trim_end_matches('\r'))
        .map_err(|e| RequestError::Malformed(e.to_string()))?;
    let v = match request {
        Request::Subscribe { v } | Request::Command { v, .. } => v,
    };
    if v != VERSION {
        return Err(RequestError::Version(v));
    }
    if let Request::Command {
        command: Command::ShowDigit(Some(d)),
        ..
    } = request
        && d > 9
    {
        return Err(RequestError::BadDigit(d));
    }
    Ok(request)
}

/// One line of JSON with its newline.
pub fn line<T: Serialize>(value: &T) -> Vec<u8> {
    // Our own types with string keys always serialise; an empty line is skipped by readers.
    let mut bytes = serde_json::to_vec(value).unwrap_or_default();
    bytes.push(b'\n');
    bytes
}

/// Parses a line from the run, as a viewer reads it.
pub fn parse_reply(line: &[u8]) -> Result<Reply, String> {
    let text = std::str::from_utf8(line).map_err(|_| "not UTF-8".to_string())?;
    serde_json::from_str(text).map_err(|e| e.to_string())
}

/// How a line reader ends a line.
#[derive(Debug, PartialEq, Eq)]
pub enum LineRead {
    Line(Vec<u8>),
    /// The peer closed the connection (a partial last line is dropped).
    Closed,
    /// More than `max` bytes came without a newline.
    TooLong,
}

/// Reads one line of at most `max` bytes (newline not counted, not returned), never holding
/// more than `max` bytes whatever the peer sends.
pub fn read_line_bounded(
    reader: &mut impl std::io::BufRead,
    max: usize,
) -> std::io::Result<LineRead> {
    let mut line = Vec::new();
    loop {
        let buf = match reader.fill_buf() {
            Ok(buf) => buf,
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => continue,
            Err(e) => return Err(e),
        };
        if buf.is_empty() {
            return Ok(LineRead::Closed);
        }
        let (taken, done) = match buf.iter().position(|&b| b == b'\n') {
            Some(at) => (at, true),
            None => (buf.len(), false),
        };
        if line.len() + taken > max {
            return Ok(LineRead::TooLong);
        }
        line.extend_from_slice(&buf[..taken]);
        reader.consume(taken + usize::from(done));
        if done {
            return Ok(LineRead::Line(line));
        }
    }
}

#[cfg(test)]
mod tests;
