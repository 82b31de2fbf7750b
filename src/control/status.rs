//! `status.json` in the run folder: the run's facts and how it ended, so a viewer can replay a
//! run that is no longer running and say how it ended.

use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use crate::protocol::{FinishReason, RunInfo, TrainMsg};

/// The file's name in the run folder.
pub const STATUS_NAME: &str = "status.json";

/// The most bytes read from a `status.json`: it is well under 4 KiB.
const MAX_STATUS_BYTES: u64 = 1 << 20;

/// Where the run is, as its process last wrote it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "state", rename_all = "snake_case")]
pub enum RunEnd {
    /// Still running when last written (or killed before it could say otherwise).
    Running,
    Finished {
        reason: FinishReason,
    },
    Failed {
        error: String,
    },
}

/// The contents of `status.json`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct RunStatus {
    pub v: u32,
    pub info: RunInfo,
    #[serde(flatten)]
    pub end: RunEnd,
    pub step: u64,
    pub last_checkpoint: Option<PathBuf>,
    /// The process that trained the run.
    pub pid: u32,
}

/// Keeps `status.json` up to date from the trainer's messages.
pub struct StatusFile {
    path: PathBuf,
    status: Option<RunStatus>,
}

impl StatusFile {
    pub fn new(run_dir: &Path) -> StatusFile {
        StatusFile {
            path: run_dir.join(STATUS_NAME),
            status: None,
        }
    }

    /// Folds `msg` in and rewrites the file when the run starts, saves a checkpoint or ends.
    /// A write that fails is reported once per run by the returned error text.
    pub fn on_msg(&mut self, msg: &TrainMsg) -> Option<String> {
        match msg {
            TrainMsg::Started(info) => {
                self.status = Some(RunStatus {
                    v: 1,
                    info: info.clone(),
                    end: RunEnd::Running,
                    step: info.start_step,
                    last_checkpoint: None,
                    pid: std::process::id(),
                });
            }
            TrainMsg::CheckpointSaved { path, step, .. } => {
                let status = self.status.as_mut()?;
                status.last_checkpoint = Some(path.clone());
                status.step = status.step.max(*step);
            }
            TrainMsg::Finished {
                reason,
                step,
                last_checkpoint,
            } => {
                let status = self.status.as_mut()?;
                status.end = RunEnd::Finished { reason: *reason };
                status.step = *step;
                if last_checkpoint.is_some() {
                    status.last_checkpoint.clone_from(last_checkpoint);
                }
            }
            TrainMsg::Error(error) => {
                self.status.as_mut()?.end = RunEnd::Failed {
                    error: error.clone(),
                };
            }
            _ => return None,
        }
        let status = self.status.as_ref()?;
        let bytes = serde_json::to_vec_pretty(status).ok()?;
        crate::files::atomic::write(&self.path, &bytes)
            .err()
            .map(|e| format!("cannot write {}: {e}", self.path.display()))
    }
}

/// Reads a run folder's `status.json`; `Ok(None)` when it has none.
pub fn read(run_dir: &Path) -> anyhow::Result<Option<RunStatus>> {
    let path = run_dir.join(STATUS_NAME);
    if !path.exists() {
        return Ok(None);
    }
    let text = read_text(&path, MAX_STATUS_BYTES)?;
    let status = serde_json::from_str(&text)
        .map_err(|e| anyhow::anyhow!("{} is not a run status: {e}", path.display()))?;
    Ok(Some(status))
}

/// A small text file of the run folder, or an error naming it.
pub fn read_text(path: &Path, max_bytes: u64) -> anyhow::Result<String> {
    use crate::files::text_file::{TextFileError, read_bounded};
    read_bounded(path, max_bytes).map_err(|e| {
        let why = match e {
            TextFileError::Read(e) => e.to_string(),
            TextFileError::TooLarge => format!("larger than {max_bytes} bytes"),
            TextFileError::NotUtf8 { line } => format!("not UTF-8 text from line {line}"),
        };
        anyhow::anyhow!("cannot read {}: {why}", path.display())
    })
}
