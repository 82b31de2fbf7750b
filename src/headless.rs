//! The `--no-tui` front end: prints a line per epoch (and, on a terminal, a progress bar within
//! the epoch), reports checkpoints, and turns SIGINT/SIGTERM/SIGHUP into a clean stop.

use std::io::{self, IsTerminal, Write};
use std::path::PathBuf;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::mpsc::{Receiver, RecvTimeoutError, Sender};
use std::time::Duration;

use crate::config::OnWriteError;
use crate::console::{say, warn};
use crate::protocol::{Command, EpochSummary, FinishReason, RunInfo, SaveReason, TrainMsg};

/// How a headless run ended.
#[derive(Debug, Clone, PartialEq)]
pub struct HeadlessOutcome {
    pub reason: Option<FinishReason>,
    pub step: u64,
    pub last_checkpoint: Option<PathBuf>,
    /// The signal that stopped the run, if one did.
    pub signal: Option<i32>,
}

/// Why a headless run failed.
#[derive(Debug, thiserror::Error)]
pub enum HeadlessError {
    #[error("{0}")]
    Trainer(String),
    #[error("the trainer stopped without saying why")]
    TrainerGone,
    #[error("cannot listen for signals: {0}")]
    Signals(io::Error),
    #[error(
        "training diverged at step {step} (D loss {d_loss}, G loss {g_loss}); nothing after the last good checkpoint was saved{}",
        last_checkpoint.as_ref().map_or(String::new(), |p| format!(": {}", p.display()))
    )]
    Diverged {
        step: u64,
        d_loss: f32,
        g_loss: f32,
        last_checkpoint: Option<PathBuf>,
    },
    #[error("stopped because a file could not be written (run.on_write_error = \"stop\"): {0}")]
    WriteFailed(String),
}

/// Formats seconds as `1h 02m 03s`, `4m 05s` or `6.7s`.
pub fn format_duration(seconds: f64) -> String {
    if !seconds.is_finite() || seconds < 0.0 {
        return "-".to_string();
    }
    if seconds < 60.0 {
        return format!("{seconds:.1}s");
    }
    let s = seconds.round() as u64;
    let (h, m, s) = (s / 3600, (s % 3600) / 60, s % 60);
    if h > 0 {
        format!("{h}h {m:02}m {s:02}s")
    } else {
        format!("{m}m {s:02}s")
    }
}

/// The epoch line, in the reference program's shape plus D(x), D(G(z)), speed, elapsed and ETA.
pub fn epoch_line(e: &EpochSummary, total_steps: u64) -> String {
    let remaining = total_steps.saturating_sub(e.step) as f64;
    let eta = if e.steps_per_s > 0.0 {
        format_duration(remaining / e.steps_per_s)
    } else {
        "-".to_string()
    };
    let mut line = format!(
        "Epoch [{}/{}] | D Loss: {:.4} | G Loss: {:.4} | D(x): {:.3} | D(G(z)): {:.3} | {:.1} steps/s | elapsed {} | ETA {}",
        e.epoch,
        e.epochs,
        e.d_loss,
        e.g_loss,
        e.d_real,
        e.d_fake,
        e.steps_per_s,
        format_duration(e.elapsed_s),
        eta
    );
    if let Some(q) = &e.quality {
        line.push_str(" | ");
        line.push_str(&crate::eval::summary_line(q));
    }
    line
}

/// A one-line bar for the epoch in progress: `[#####-----] 312/938`.
pub fn progress_bar(done: u64, total: u64, width: usize) -> String {
    let total = total.max(1);
    let filled = ((done.min(total) as f64 / total as f64) * width as f64).round() as usize;
    format!(
        "[{}{}] {done}/{total}",
        "#".repeat(filled),
        "-".repeat(width - filled.min(width))
    )
}

/// Conventional exit code for a run stopped by `signal`: 128 + its number.
pub fn signal_exit_code(signal: i32) -> i32 {
    128 + signal
}

/// Drains trainer messages and prints progress until the run ends. Signals ask the trainer to
/// stop (it finishes the step and saves a checkpoint); a second signal is not needed.
pub fn run(
    msgs: Receiver<TrainMsg>,
    cmds: Sender<Command>,
    on_write_error: OnWriteError,
) -> Result<HeadlessOutcome, HeadlessError> {
    let caught = Arc::new(AtomicUsize::new(0));
    for sig in [
        signal_hook::consts::SIGINT,
        signal_hook::consts::SIGTERM,
        signal_hook::consts::SIGHUP,
    ] {
        signal_hook::flag::register_usize(sig, Arc::clone(&caught), sig as usize)
            .map_err(HeadlessError::Signals)?;
    }
    let mut out = io::stdout();
    let show_bar = out.is_terminal();
    let mut bar_shown = false;
    let mut info: Option<RunInfo> = None;
    let mut signal = None;
    let mut diverged: Option<(u64, f32, f32)> = None;
    let mut write_error: Option<String> = None;
    // A write failure under `on_write_error = "stop"` ends the run like a signal would.
    let stop_for_write_error = |text: String, write_error: &mut Option<String>| {
        warn(format!("warning: {text}"));
        if on_write_error == OnWriteError::Stop && write_error.is_none() {
            *write_error = Some(text);
            let _ = cmds.send(Command::Stop);
        }
    };
    loop {
        let sig = caught.load(Ordering::Relaxed);
        if sig != 0 && signal.is_none() {
            signal = Some(sig as i32);
            clear_bar(&mut out, &mut bar_shown);
            say(format!(
                "signal {sig} received: finishing the current step and saving a checkpoint"
            ));
            // A gone trainer is noticed below, when the channel disconnects.
            let _ = cmds.send(Command::Stop);
        }
        let msg = match msgs.recv_timeout(Duration::from_millis(100)) {
            Ok(m) => m,
            Err(RecvTimeoutError::Timeout) => continue,
            Err(RecvTimeoutError::Disconnected) => {
                clear_bar(&mut out, &mut bar_shown);
                return Err(HeadlessError::TrainerGone);
            }
        };
        match msg {
            TrainMsg::Started(i) => {
                say(format!(
                    "training preset {} on {} ({} images), {} epochs x {} steps of {}, seed {}",
                    i.preset,
                    i.data_source,
                    i.images,
                    i.epochs,
                    i.steps_per_epoch,
                    i.batch_size,
                    i.seed
                ));
                if i.start_step > 0 {
                    say(format!("resuming at step {}", i.start_step));
                }
                say(format!("run folder: {}", i.run_dir.display()));
                info = Some(i);
            }
            TrainMsg::Step(s) => {
                if show_bar && let Some(i) = &info {
                    let line = progress_bar(s.batch, i.steps_per_epoch, 30);
                    let _ = write!(
                        out,
                        "\r  epoch {} {line} | D {:.4} | G {:.4} | {:.1} steps/s ",
                        s.epoch, s.d_loss, s.g_loss, s.steps_per_s
                    );
                    let _ = out.flush();
                    bar_shown = true;
                }
            }
            TrainMsg::EpochDone(e) => {
                clear_bar(&mut out, &mut bar_shown);
                let total = info.as_ref().map_or(e.step, |i| i.total_steps);
                say(epoch_line(&e, total));
            }
            TrainMsg::CheckpointSaved { path, reason, .. } => {
                if reason != SaveReason::EpochEnd {
                    clear_bar(&mut out, &mut bar_shown);
                    say(format!("checkpoint saved: {}", path.display()));
                }
            }
            TrainMsg::CheckpointFailed { path, error } => {
                clear_bar(&mut out, &mut bar_shown);
                let text = format!("could not save the checkpoint {}: {error}", path.display());
                stop_for_write_error(text, &mut write_error);
            }
            TrainMsg::WriteFailed { what, path, error } => {
                clear_bar(&mut out, &mut bar_shown);
                let text = format!("could not write the {what} {}: {error}", path.display());
                stop_for_write_error(text, &mut write_error);
            }
            TrainMsg::ScoringFailed(error) => {
                clear_bar(&mut out, &mut bar_shown);
                warn(format!("warning: {error}"));
            }
            TrainMsg::Diverged {
                step,
                d_loss,
                g_loss,
            } => {
                clear_bar(&mut out, &mut bar_shown);
                diverged = Some((step, d_loss, g_loss));
                let _ = cmds.send(Command::Stop);
            }
            TrainMsg::Finished {
                reason,
                step,
                last_checkpoint,
            } => {
                clear_bar(&mut out, &mut bar_shown);
                let why = match reason {
                    FinishReason::Completed => "all epochs done",
                    FinishReason::StepLimit => "step limit reached",
                    FinishReason::Stopped => "stopped",
                    FinishReason::Diverged => "training diverged",
                };
                say(format!("finished at step {step} ({why})"));
                if let Some(p) = &last_checkpoint {
                    say(format!("last checkpoint: {}", p.display()));
                }
                if let Some((step, d_loss, g_loss)) = diverged {
                    return Err(HeadlessError::Diverged {
                        step,
                        d_loss,
                        g_loss,
                        last_checkpoint,
                    });
                }
                if let Some(text) = write_error {
                    return Err(HeadlessError::WriteFailed(text));
                }
                return Ok(HeadlessOutcome {
                    reason: Some(reason),
                    step,
                    last_checkpoint,
                    signal,
                });
            }
            TrainMsg::Error(e) => {
                clear_bar(&mut out, &mut bar_shown);
                return Err(HeadlessError::Trainer(e));
            }
            // The epoch line carries the epoch's scores.
            TrainMsg::Quality(_)
            | TrainMsg::Samples(_)
            | TrainMsg::Paused { .. }
            | TrainMsg::Resumed { .. } => {}
        }
    }
}

fn clear_bar(out: &mut io::Stdout, shown: &mut bool) {
    if *shown {
        let _ = write!(out, "\r\x1b[2K");
        let _ = out.flush();
        *shown = false;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn durations_read_naturally() {
        assert_eq!(format_duration(6.66), "6.7s");
        assert_eq!(format_duration(245.0), "4m 05s");
        assert_eq!(format_duration(3723.0), "1h 02m 03s");
        assert_eq!(format_duration(f64::NAN), "-");
    }

    #[test]
    fn epoch_line_has_the_reference_shape() {
        let e = EpochSummary {
            epoch: 2,
            epochs: 50,
            step: 1876,
            d_loss: 1.23456,
            g_loss: 0.9,
            d_real: 0.6,
            d_fake: 0.4,
            steps_per_s: 100.0,
            elapsed_s: 18.76,
            sample_png: None,
            quality: None,
        };
        let line = epoch_line(&e, 1876 + 1000);
        assert!(
            line.starts_with(
                "Epoch [2/50] | D Loss: 1.2346 | G Loss: 0.9000 | D(x): 0.600 | D(G(z)): 0.400"
            ),
            "{line}"
        );
        assert!(line.ends_with("elapsed 18.8s | ETA 10.0s"), "{line}");
    }

    #[test]
    fn progress_bar_fills_in_proportion() {
        assert_eq!(progress_bar(0, 10, 10), "[----------] 0/10");
        assert_eq!(progress_bar(5, 10, 10), "[#####-----] 5/10");
        assert_eq!(progress_bar(12, 10, 4), "[####] 12/10");
    }

    #[test]
    fn a_nan_loss_ends_the_run_with_an_error_naming_the_step_and_the_last_good_checkpoint() {
        let tmp = tempfile::tempdir().unwrap();
        let (msg_tx, msg_rx) = std::sync::mpsc::channel();
        let (cmd_tx, cmd_rx) = std::sync::mpsc::channel();
        // NaN losses from step 4, in the second epoch of 2 steps.
        let job = crate::train::testing::diverging_job(tmp.path(), 4);
        let handle = crate::train::trainer::spawn(job, msg_tx, cmd_rx).unwrap();
        let err = run(msg_rx, cmd_tx, OnWriteError::Continue).unwrap_err();
        handle.join().unwrap();
        match &err {
            HeadlessError::Diverged {
                step: 4,
                last_checkpoint: Some(path),
                ..
            } => assert!(path.ends_with("checkpoints/epoch-001.safetensors"), "{err}"),
            other => panic!("{other:?}"),
        }
        let text = err.to_string();
        assert!(
            text.starts_with("training diverged at step 4 (D loss NaN")
                && text.contains("epoch-001.safetensors"),
            "{text}"
        );
    }
}
