//! The `--no-tui` front end: prints a line per epoch (and, on a terminal, a progress bar within
//! the epoch), reports checkpoints, and turns SIGINT/SIGTERM/SIGHUP into a clean stop.

use std::io::{self, IsTerminal};
use std::path::PathBuf;
use std::sync::mpsc::{Receiver, RecvTimeoutError, Sender};
use std::time::Duration;

use indicatif::{ProgressBar, ProgressDrawTarget, ProgressStyle};

use crate::config::OnWriteError;
use crate::console::{say, warn};
use crate::protocol::{Command, EpochSummary, FinishReason, SaveReason, StepStats, TrainMsg};
use crate::run::format::{format_duration, format_learning_rate, quality_line};
use crate::run::signals::StopSignals;
use crate::run::state::{Note, NoteKind, RunState};

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

/// The epoch line, in the reference program's shape plus D(x), D(G(z)), speed, elapsed and ETA.
pub fn epoch_line(e: &EpochSummary, total_steps: u64) -> String {
    let remaining = total_steps.saturating_sub(e.step) as f64;
    let eta = if e.steps_per_s > 0.0 {
        remaining / e.steps_per_s
    } else {
        f64::NAN
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
        format_duration(eta)
    );
    if let Some(q) = &e.quality {
        line.push_str(" | ");
        line.push_str(&quality_line(q));
    }
    line
}

/// The bar for the epoch in progress, drawn on stdout only when it is a terminal:
/// `epoch 3 [#####-----] 312/938 | D 0.6931 | G 0.6931 | 35.2 steps/s | lr 2e-4`.
struct Progress {
    bar: ProgressBar,
}

impl Progress {
    fn new() -> Progress {
        let target = if io::stdout().is_terminal() {
            ProgressDrawTarget::stdout()
        } else {
            ProgressDrawTarget::hidden()
        };
        let bar = ProgressBar::with_draw_target(None, target);
        // The template is fixed text; should it ever fail to parse, the default style is fine.
        if let Ok(style) =
            ProgressStyle::with_template("  epoch {prefix} [{bar:30}] {pos}/{len} | {msg}")
        {
            bar.set_style(style.progress_chars("#-"));
        }
        Progress { bar }
    }

    fn show(&self, s: &StepStats, steps_per_epoch: u64) {
        self.bar.set_length(steps_per_epoch.max(1));
        self.bar.set_position(s.batch);
        self.bar.set_prefix(s.epoch.to_string());
        self.bar.set_message(format!(
            "D {:.4} | G {:.4} | {:.1} steps/s | lr {}",
            s.d_loss,
            s.g_loss,
            s.steps_per_s,
            format_learning_rate(s.lr)
        ));
    }

    /// Runs `print` with the bar off the screen; the bar comes back under the printed lines.
    fn above(&self, print: impl FnOnce()) {
        self.bar.suspend(print);
    }

    /// Takes the bar off the screen for good: the run is over.
    fn close(&self) {
        self.bar.finish_and_clear();
    }
}

/// Drains trainer messages and prints progress until the run ends. Signals ask the trainer to
/// stop (it finishes the step and saves a checkpoint); a second signal is not needed. Lines of
/// `control_log` (the control socket: where it is, each viewer's command) are printed as they
/// come.
pub fn run(
    msgs: Receiver<TrainMsg>,
    cmds: Sender<Command>,
    on_write_error: OnWriteError,
    control_log: Option<&Receiver<Note>>,
) -> Result<HeadlessOutcome, HeadlessError> {
    let signals = StopSignals::register().map_err(HeadlessError::Signals)?;
    let progress = Progress::new();
    let mut state = RunState::new();
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
    let print_control_log = |progress: &Progress| {
        for note in control_log.into_iter().flat_map(|log| log.try_iter()) {
            progress.above(|| match note.kind {
                NoteKind::Info | NoteKind::Ok => say(&note.text),
                NoteKind::Warning | NoteKind::Error => warn(format!("warning: {}", note.text)),
            });
        }
    };
    loop {
        print_control_log(&progress);
        if signal.is_none()
            && let Some(sig) = signals.take()
        {
            signal = Some(sig);
            progress.above(|| {
                say(format!(
                    "signal {sig} received: finishing the current step and saving a checkpoint"
                ))
            });
            // A gone trainer is noticed below, when the channel disconnects.
            let _ = cmds.send(Command::Stop);
        }
        let msg = match msgs.recv_timeout(Duration::from_millis(100)) {
            Ok(m) => m,
            Err(RecvTimeoutError::Timeout) => continue,
            Err(RecvTimeoutError::Disconnected) => {
                progress.close();
                return Err(HeadlessError::TrainerGone);
            }
        };
        state.on_msg(&msg);
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
            }
            TrainMsg::Step(s) => {
                if let Some(i) = state.run_info() {
                    progress.show(&s, i.steps_per_epoch);
                }
            }
            TrainMsg::EpochDone(e) => {
                let total = state.run_info().map_or(e.step, |i| i.total_steps);
                progress.above(|| say(epoch_line(&e, total)));
            }
            TrainMsg::CheckpointSaved { path, reason, .. } => {
                if reason != SaveReason::EpochEnd {
                    progress.above(|| say(format!("checkpoint saved: {}", path.display())));
                }
            }
            TrainMsg::CheckpointFailed { path, error } => {
                let text = format!("could not save the checkpoint {}: {error}", path.display());
                progress.above(|| stop_for_write_error(text, &mut write_error));
            }
            TrainMsg::WriteFailed { what, path, error } => {
                let text = format!("could not write the {what} {}: {error}", path.display());
                progress.above(|| stop_for_write_error(text, &mut write_error));
            }
            TrainMsg::ScoringFailed(error) => {
                progress.above(|| warn(format!("warning: {error}")));
            }
            TrainMsg::Alarm(a) => {
                progress.above(|| {
                    warn(format!(
                        "warning: {} at step {}: {}",
                        a.kind.name(),
                        a.step,
                        a.message
                    ))
                });
            }
            TrainMsg::ProbeFailed { probe, error } => {
                progress.above(|| warn(format!("warning: the {probe:?} probe failed: {error}")));
            }
            // Probes are drawn by the dashboard; headless never asks for them.
            TrainMsg::Probes(_) => {}
            TrainMsg::Diverged {
                step,
                d_loss,
                g_loss,
            } => {
                progress.close();
                diverged = Some((step, d_loss, g_loss));
                let _ = cmds.send(Command::Stop);
            }
            TrainMsg::Finished { reason, step, .. } => {
                print_control_log(&progress);
                progress.close();
                let why = match reason {
                    FinishReason::Completed => "all epochs done",
                    FinishReason::StepLimit => "step limit reached",
                    FinishReason::EarlyStopped => {
                        "stopped early: the Fréchet distance did not improve for train.early_stop scorings"
                    }
                    FinishReason::Stopped => "stopped",
                    FinishReason::Diverged => "training diverged",
                };
                say(format!("finished at step {step} ({why})"));
                if let Some(b) = state.best() {
                    say(format!(
                        "best checkpoint: {} (fcd {:.1} at step {})",
                        b.path.display(),
                        b.fcd,
                        b.step
                    ));
                }
                let last_checkpoint = state.last_checkpoint().cloned();
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
                progress.close();
                return Err(HeadlessError::Trainer(e));
            }
            // The epoch line carries the epoch's scores.
            TrainMsg::Quality(_)
            | TrainMsg::BestCheckpoint { .. }
            | TrainMsg::Samples(_)
            | TrainMsg::Paused { .. }
            | TrainMsg::Resumed { .. } => {}
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

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
    fn the_progress_bar_is_silent_off_a_terminal() {
        // `cargo test` captures stdout, so it is never a terminal here.
        let progress = Progress::new();
        progress.show(&stats(3), 10);
        assert!(progress.bar.is_hidden());
    }

    fn stats(batch: u64) -> StepStats {
        StepStats {
            step: batch,
            epoch: 1,
            batch,
            d_loss: 1.0,
            g_loss: 2.0,
            d_real: 0.5,
            d_fake: 0.5,
            lr: 2e-4,
            steps_per_s: 10.0,
            elapsed_s: 1.0,
            g_grad_norm: Some(0.5),
            d_grad_norm: Some(0.25),
        }
    }

    #[test]
    fn a_nan_loss_ends_the_run_with_an_error_naming_the_step_and_the_last_good_checkpoint() {
        let tmp = tempfile::tempdir().unwrap();
        let (msg_tx, msg_rx) = std::sync::mpsc::channel();
        let (cmd_tx, cmd_rx) = std::sync::mpsc::channel();
        // NaN losses from step 4, in the second epoch of 2 steps.
        let job = crate::train::testing::diverging_job(tmp.path(), 4);
        let handle = crate::train::trainer::spawn(job, msg_tx, cmd_rx).unwrap();
        let err = run(msg_rx, cmd_tx, OnWriteError::Continue, None).unwrap_err();
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
