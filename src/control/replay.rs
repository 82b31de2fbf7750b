//! A run folder read back as trainer messages: its facts (`status.json`, or `config.toml` for
//! runs from before it), every logged step and score from `metrics.jsonl`, and the newest sample
//! grid, so the dashboard can show a run that is not running, or catch up on a live one.

use std::fs;
use std::io::{BufReader, Read};
use std::path::{Path, PathBuf};

use anyhow::{Context, bail};

use crate::files::run_dir::{MetricsRecord, RunDir};
use crate::protocol::{Alarm, FinishReason, RunInfo, SampleGrid, TrainMsg};

use super::status::{self, RunEnd, RunStatus};
use super::wire::{self, LineRead};

/// The longest `metrics.jsonl` line read: a line is under 1 KiB.
const MAX_METRICS_LINE: usize = 64 * 1024;

/// The most bytes of `metrics.jsonl` read (a 50-epoch run logs a few MiB).
const MAX_METRICS_BYTES: u64 = 1 << 30;

/// Side of the digits in sample grids.
const DIGIT_SIDE: usize = 28;

/// A run folder as messages, and what the viewer says about it.
#[derive(Debug, Clone)]
pub struct Replay {
    pub msgs: Vec<TrainMsg>,
    /// The last logged step replayed (0: none).
    pub last_step: u64,
    /// The step of the last score replayed.
    pub last_quality_step: Option<u64>,
    /// The sample grids of the folder's `samples/epoch-NNN.png` with their epochs, oldest
    /// first.
    pub grids: Vec<(u32, SampleGrid)>,
    pub status: Option<RunStatus>,
    /// Lines of `metrics.jsonl` that could not be read.
    pub bad_lines: usize,
}

impl Replay {
    /// The status line of a run that is not running: how it ended, and its last checkpoint.
    pub fn ended_note(&self, run_dir: &Path) -> String {
        let how = match self.status.as_ref().map(|s| &s.end) {
            Some(RunEnd::Finished { reason }) => match reason {
                FinishReason::Completed => format!("completed at step {}", self.step()),
                FinishReason::StepLimit => {
                    format!("reached its step limit at step {}", self.step())
                }
                FinishReason::Stopped => format!("was stopped at step {}", self.step()),
                FinishReason::Diverged => format!("diverged at step {}", self.step()),
                FinishReason::EarlyStopped => format!(
                    "stopped early at step {}: its Fréchet distance had stopped improving",
                    self.step()
                ),
            },
            Some(RunEnd::Failed { error }) => format!("failed: {error}"),
            Some(RunEnd::Running) => format!(
                "ended without a word after step {} (killed?)",
                self.last_step
            ),
            None => format!(
                "no status.json, so how it ended is unknown; last logged step {}",
                self.last_step
            ),
        };
        let checkpoint = self
            .last_checkpoint(run_dir)
            .map_or("no checkpoint".to_string(), |p| {
                format!("last checkpoint {}", p.display())
            });
        let skipped = if self.bad_lines > 0 {
            format!("; {} unreadable metrics lines skipped", self.bad_lines)
        } else {
            String::new()
        };
        format!("replay, not running: the run {how}; {checkpoint}{skipped}")
    }

    fn step(&self) -> u64 {
        self.status.as_ref().map_or(self.last_step, |s| s.step)
    }

    pub fn last_checkpoint(&self, run_dir: &Path) -> Option<PathBuf> {
        self.status
            .as_ref()
            .and_then(|s| s.last_checkpoint.clone())
            .or_else(|| {
                let latest = RunDir::at(run_dir).latest_checkpoint();
                latest.is_file().then_some(latest)
            })
    }
}

/// The most alarms read from `events.jsonl` (a run raises a few).
const MAX_ALARMS: usize = 10_000;

/// The readable alarms of the folder's `events.jsonl`, by step; none if it has none.
fn read_alarms(dir: &RunDir) -> Vec<Alarm> {
    let Ok(file) = fs::File::open(dir.events_file()) else {
        return Vec::new();
    };
    let mut reader = BufReader::new(file.take(MAX_METRICS_BYTES));
    let mut alarms = Vec::new();
    while alarms.len() < MAX_ALARMS {
        match wire::read_line_bounded(&mut reader, MAX_METRICS_LINE) {
            Ok(LineRead::Line(line)) => {
                if let Ok(alarm) = serde_json::from_slice::<Alarm>(&line) {
                    alarms.push(alarm);
                }
            }
            Ok(LineRead::TooLong) => {
                if !skip_line(&mut reader) {
                    break;
                }
            }
            Ok(LineRead::Closed) | Err(_) => break,
        }
    }
    alarms.sort_by_key(|a| a.step);
    alarms
}

/// Reads `run_dir` into messages.
pub fn load(run_dir: &Path) -> anyhow::Result<Replay> {
    if !run_dir.is_dir() {
        bail!("{} is not a folder", run_dir.display());
    }
    let status = status::read(run_dir)?;
    let info = match &status {
        Some(status) => status.info.clone(),
        None => info_from_config(run_dir)?,
    };
    let dir = RunDir::at(run_dir);
    let mut msgs = vec![TrainMsg::Started(info.clone())];
    let mut alarms = read_alarms(&dir).into_iter().peekable();
    let (mut last_step, mut last_quality_step, mut bad_lines) = (0, None, 0);
    if let Ok(file) = fs::File::open(dir.metrics_file()) {
        let mut reader = BufReader::new(file.take(MAX_METRICS_BYTES));
        loop {
            let line = match wire::read_line_bounded(&mut reader, MAX_METRICS_LINE) {
                Ok(LineRead::Line(line)) => line,
                Ok(LineRead::TooLong) => {
                    bad_lines += 1;
                    // Skip to the next line.
                    if skip_line(&mut reader) {
                        continue;
                    }
                    break;
                }
                Ok(LineRead::Closed) | Err(_) => break,
            };
            let Ok(record) = serde_json::from_slice::<MetricsRecord>(&line) else {
                bad_lines += usize::from(!line.is_empty());
                continue;
            };
            let mut stats = record.stats;
            stats.batch = match info.steps_per_epoch {
                0 => 0,
                per => (stats.step.saturating_sub(1)) % per + 1,
            };
            last_step = last_step.max(stats.step);
            msgs.push(TrainMsg::Step(stats));
            // Each alarm after the step it was raised on, so its plot marker lands there.
            while let Some(alarm) = alarms.next_if(|a| a.step <= stats.step) {
                msgs.push(TrainMsg::Alarm(alarm));
            }
            if let Some(q) = record.quality {
                last_quality_step = Some(stats.step);
                msgs.push(TrainMsg::Quality(q.to_report(
                    stats.step,
                    stats.epoch,
                    info.eval_count,
                )));
            }
        }
    }
    msgs.extend(alarms.map(TrainMsg::Alarm));
    let grids = epoch_grids(&dir, &info, &msgs);
    if let Some((_, newest)) = grids.last() {
        msgs.push(TrainMsg::Samples(newest.clone()));
    }
    let mut replay = Replay {
        msgs,
        last_step,
        last_quality_step,
        grids,
        status,
        bad_lines,
    };
    if let Some(status) = replay.status.clone() {
        let last_checkpoint = replay.last_checkpoint(run_dir);
        match status.end {
            RunEnd::Finished { reason } => replay.msgs.push(TrainMsg::Finished {
                reason,
                step: status.step,
                last_checkpoint,
            }),
            RunEnd::Failed { error } => replay.msgs.push(TrainMsg::Error(error)),
            RunEnd::Running => {}
        }
    }
    Ok(replay)
}

/// Reads past the next newline; false at the end of the file.
fn skip_line(reader: &mut impl std::io::BufRead) -> bool {
    loop {
        let (n, newline) = match reader.fill_buf() {
            Ok([]) | Err(_) => return false,
            Ok(buf) => match buf.iter().position(|&b| b == b'\n') {
                Some(at) => (at + 1, true),
                None => (buf.len(), false),
            },
        };
        reader.consume(n);
        if newline {
            return true;
        }
    }
}

/// The run's facts from its `config.toml`, for a folder without `status.json`.
fn info_from_config(run_dir: &Path) -> anyhow::Result<RunInfo> {
    let path = run_dir.join("config.toml");
    if !path.is_file() {
        bail!(
            "{} is not a gan-tui run folder: it has neither status.json nor config.toml",
            run_dir.display()
        );
    }
    let text = status::read_text(&path, 1 << 20)?;
    let cfg = crate::config::from_text(&path, &text, &crate::config::Overrides::default())
        .with_context(|| format!("cannot read the run's settings from {}", path.display()))?;
    Ok(RunInfo {
        preset: cfg.preset.name().to_string(),
        data_source: cfg
            .data_dir
            .as_ref()
            .map_or("built-in MNIST".to_string(), |d| d.display().to_string()),
        images: 0,
        epochs: cfg.epochs,
        batch_size: cfg.batch_size,
        steps_per_epoch: 0,
        total_steps: cfg.max_steps.unwrap_or(0),
        start_step: 0,
        run_dir: run_dir.to_path_buf(),
        seed: cfg.seed,
        eval_count: cfg.eval_count,
    })
}

/// Every `samples/epoch-NNN.png` that reads as a grid, with its epoch, oldest first; each
/// grid's step is the last logged step of its epoch.
fn epoch_grids(dir: &RunDir, info: &RunInfo, msgs: &[TrainMsg]) -> Vec<(u32, SampleGrid)> {
    let mut grids = Vec::new();
    for epoch in 1..=info.epochs {
        let path = dir.epoch_samples(epoch);
        let Ok(bytes) = fs::read(&path) else {
            continue;
        };
        let Ok((pixels, _)) = crate::files::image::split_grid_png(&bytes, DIGIT_SIDE, DIGIT_SIDE)
        else {
            continue;
        };
        let step = msgs
            .iter()
            .filter_map(|m| match m {
                TrainMsg::Step(s) if s.epoch == epoch => Some(s.step),
                _ => None,
            })
            .max()
            .unwrap_or(u64::from(epoch) * info.steps_per_epoch);
        grids.push((
            epoch,
            SampleGrid {
                step,
                width: DIGIT_SIDE,
                height: DIGIT_SIDE,
                pixels,
                labels: None,
            },
        ));
    }
    grids
}

#[cfg(test)]
mod tests;
