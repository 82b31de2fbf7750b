//! The run folder: its layout (`config.toml`, `metrics.jsonl`, `events.jsonl`, `samples/`,
//! `checkpoints/`) and its JSON-lines logs.

use std::fs::{self, File, OpenOptions};
use std::io::{self, Write};
use std::path::{Path, PathBuf};

/// One run's folder.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RunDir {
    root: PathBuf,
}

impl RunDir {
    /// Creates the folder and its `samples/` and `checkpoints/` subfolders (fine if they exist).
    pub fn create(root: &Path) -> io::Result<RunDir> {
        let dir = RunDir {
            root: root.to_path_buf(),
        };
        fs::create_dir_all(dir.samples_dir())?;
        fs::create_dir_all(dir.checkpoints_dir())?;
        // A run killed mid-write leaves its temporary file; nothing else writes here.
        for folder in [dir.root.clone(), dir.samples_dir(), dir.checkpoints_dir()] {
            for entry in fs::read_dir(&folder)?.flatten() {
                if crate::files::atomic::is_temp_name(&entry.file_name().to_string_lossy()) {
                    let _ = fs::remove_file(entry.path());
                }
            }
        }
        Ok(dir)
    }

    /// The run folder at `root`, for reading: nothing is created.
    pub fn at(root: &Path) -> RunDir {
        RunDir {
            root: root.to_path_buf(),
        }
    }

    /// Creates the folder of a new run and writes its `config.toml`, refusing a folder that
    /// already holds a run so nothing of it is overwritten.
    pub fn start_new(root: &Path, config_toml: &str) -> anyhow::Result<RunDir> {
        use anyhow::{Context, bail};
        let taken = ["metrics.jsonl", "config.toml"]
            .iter()
            .any(|name| root.join(name).exists());
        if taken {
            bail!(
                "{} already holds a run (config.toml or metrics.jsonl); choose a new --run-dir",
                root.display()
            );
        }
        let run = RunDir::create(root)
            .with_context(|| format!("cannot create the run folder {}", root.display()))?;
        crate::files::atomic::write(&run.config_file(), config_toml.as_bytes())
            .with_context(|| format!("cannot write {}", run.config_file().display()))?;
        Ok(run)
    }

    /// Where the run folder `root` keeps its metrics.
    pub fn metrics_file_in(root: &Path) -> PathBuf {
        root.join("metrics.jsonl")
    }

    pub fn root(&self) -> &Path {
        &self.root
    }

    pub fn config_file(&self) -> PathBuf {
        self.root.join("config.toml")
    }

    pub fn metrics_file(&self) -> PathBuf {
        RunDir::metrics_file_in(&self.root)
    }

    /// `events.jsonl`: the health alarms, one JSON object a line.
    pub fn events_file(&self) -> PathBuf {
        self.root.join("events.jsonl")
    }

    pub fn samples_dir(&self) -> PathBuf {
        self.root.join("samples")
    }

    pub fn checkpoints_dir(&self) -> PathBuf {
        self.root.join("checkpoints")
    }

    /// `samples/epoch-NNN.png`
    pub fn epoch_samples(&self, epoch: u32) -> PathBuf {
        self.samples_dir().join(format!("epoch-{epoch:03}.png"))
    }

    /// `checkpoints/epoch-NNN.safetensors`
    pub fn epoch_checkpoint(&self, epoch: u32) -> PathBuf {
        self.checkpoints_dir()
            .join(format!("epoch-{epoch:03}.safetensors"))
    }

    /// `checkpoints/step-NNNNNNN.safetensors`, for saves on request and on exit.
    pub fn step_checkpoint(&self, step: u64) -> PathBuf {
        self.checkpoints_dir()
            .join(format!("step-{step:07}.safetensors"))
    }

    /// `checkpoints/best.safetensors`: the epoch checkpoint with the lowest Fréchet distance so
    /// far; pruning never removes it.
    pub fn best_checkpoint(&self) -> PathBuf {
        self.checkpoints_dir().join("best.safetensors")
    }

    /// `checkpoints/latest.safetensors`: always the newest checkpoint.
    pub fn latest_checkpoint(&self) -> PathBuf {
        self.checkpoints_dir().join("latest.safetensors")
    }
}

impl RunDir {
    /// Deletes numbered checkpoints (`epoch-*`, `step-*`) beyond the newest `keep`, oldest
    /// first; `keep = 0` keeps them all. `latest.safetensors` and `just_written` are never
    /// deleted, so a checkpoint goes only once a newer one is safely on disk.
    pub fn prune_checkpoints(&self, keep: usize, just_written: &Path) -> io::Result<()> {
        if keep == 0 {
            return Ok(());
        }
        let mut numbered = Vec::new();
        for entry in fs::read_dir(self.checkpoints_dir())? {
            let entry = entry?;
            let name = entry.file_name().to_string_lossy().into_owned();
            let is_numbered = (name.starts_with("epoch-") || name.starts_with("step-"))
                && name.ends_with(".safetensors");
            if is_numbered {
                let modified = entry.metadata()?.modified()?;
                numbered.push((modified, name, entry.path()));
            }
        }
        numbered.sort();
        let excess = numbered.len().saturating_sub(keep);
        for (_, _, path) in numbered.into_iter().take(excess) {
            if path != just_written {
                fs::remove_file(&path)?;
            }
        }
        Ok(())
    }
}

/// One line of `metrics.jsonl`: a step's numbers, as the trainer sends them.
#[derive(Debug, Clone, Copy, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct MetricsRecord {
    #[serde(flatten)]
    pub stats: crate::protocol::StepStats,
    /// At an epoch's end, when scoring is on: the judge's scores of the generator.
    #[serde(flatten, default, skip_serializing_if = "Option::is_none")]
    pub quality: Option<QualityFields>,
}

/// The judge's scores in a metrics line.
#[derive(Debug, Clone, Copy, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct QualityFields {
    pub score: f64,
    pub fcd: f64,
    pub fcd_floor: f64,
    pub recognised: f64,
    pub class_shares: [f64; 10],
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub agreement: Option<f64>,
    // Lines written before these scores existed read back as 0 and no spreads.
    #[serde(default)]
    pub kid: f64,
    #[serde(default)]
    pub kid_std: f64,
    #[serde(default)]
    pub kid_floor: f64,
    #[serde(default)]
    pub precision: f64,
    #[serde(default)]
    pub recall: f64,
    #[serde(default)]
    pub precision_ceiling: f64,
    #[serde(default)]
    pub recall_ceiling: f64,
    #[serde(default)]
    pub class_spread: [Option<f64>; 10],
}

impl From<&crate::protocol::QualityReport> for QualityFields {
    fn from(q: &crate::protocol::QualityReport) -> Self {
        QualityFields {
            score: q.score,
            fcd: q.fcd,
            fcd_floor: q.fcd_floor,
            recognised: q.recognised,
            class_shares: q.class_shares,
            agreement: q.agreement,
            kid: q.kid,
            kid_std: q.kid_std,
            kid_floor: q.kid_floor,
            precision: q.precision,
            recall: q.recall,
            precision_ceiling: q.precision_ceiling,
            recall_ceiling: q.recall_ceiling,
            class_spread: q.class_spread,
        }
    }
}

impl QualityFields {
    /// The report these scores were logged from, for the step, epoch and digit count given
    /// (how long the scoring took is not logged: 0).
    pub fn to_report(&self, step: u64, epoch: u32, count: usize) -> crate::protocol::QualityReport {
        crate::protocol::QualityReport {
            step,
            epoch,
            count,
            score: self.score,
            fcd: self.fcd,
            fcd_floor: self.fcd_floor,
            recognised: self.recognised,
            class_shares: self.class_shares,
            agreement: self.agreement,
            kid: self.kid,
            kid_std: self.kid_std,
            kid_floor: self.kid_floor,
            precision: self.precision,
            recall: self.recall,
            precision_ceiling: self.precision_ceiling,
            recall_ceiling: self.recall_ceiling,
            class_spread: self.class_spread,
            seconds: 0.0,
        }
    }
}

/// Appends records to a JSON-lines file (`metrics.jsonl`, `events.jsonl`), one object a line.
#[derive(Debug)]
pub struct JsonLines {
    path: PathBuf,
    file: File,
}

impl JsonLines {
    pub fn open(path: &Path) -> io::Result<JsonLines> {
        let file = OpenOptions::new().create(true).append(true).open(path)?;
        Ok(JsonLines {
            path: path.to_path_buf(),
            file,
        })
    }

    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Appends one record. The line goes out in one `write` call on an append-only file, so a
    /// crash cannot leave half a line between two whole ones.
    pub fn append<T: serde::Serialize>(&mut self, record: &T) -> io::Result<()> {
        let mut line = serde_json::to_vec(record).map_err(io::Error::other)?;
        line.push(b'\n');
        self.file.write_all(&line)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn layout_and_metrics_lines() {
        let tmp = tempfile::tempdir().unwrap();
        let run = RunDir::create(&tmp.path().join("r")).unwrap();
        assert!(run.samples_dir().is_dir() && run.checkpoints_dir().is_dir());
        assert!(run.epoch_samples(3).ends_with("samples/epoch-003.png"));
        assert!(
            run.step_checkpoint(42)
                .ends_with("checkpoints/step-0000042.safetensors")
        );
        let mut log = JsonLines::open(&run.metrics_file()).unwrap();
        let rec = MetricsRecord {
            stats: crate::protocol::StepStats {
                step: 1,
                epoch: 1,
                // Not in the file: a record read back has 0 here.
                batch: 0,
                d_loss: 1.25,
                g_loss: 0.5,
                d_real: 0.5,
                d_fake: 0.25,
                lr: 2e-4,
                steps_per_s: 10.0,
                elapsed_s: 0.1,
                g_grad_norm: Some(1.5),
                d_grad_norm: None,
            },
            quality: None,
        };
        let second = MetricsRecord {
            stats: crate::protocol::StepStats {
                step: 2,
                ..rec.stats
            },
            ..rec
        };
        log.append(&rec).unwrap();
        log.append(&second).unwrap();
        let text = fs::read_to_string(run.metrics_file()).unwrap();
        // The documented fields, in their order, and nothing else.
        assert_eq!(
            text.lines().next(),
            Some(
                r#"{"step":1,"epoch":1,"d_loss":1.25,"g_loss":0.5,"d_real":0.5,"d_fake":0.25,"lr":0.0002,"steps_per_s":10.0,"elapsed_s":0.1,"g_grad_norm":1.5}"#
            )
        );
        let lines: Vec<MetricsRecord> = text
            .lines()
            .map(|l| serde_json::from_str(l).unwrap())
            .collect();
        assert_eq!(lines, vec![rec, second]);
    }

    #[test]
    fn pruning_keeps_the_newest_numbered_checkpoints_and_latest() {
        let tmp = tempfile::tempdir().unwrap();
        let run = RunDir::create(tmp.path()).unwrap();
        let names = [
            "epoch-001",
            "step-0000005",
            "epoch-002",
            "epoch-003",
            "latest",
        ];
        for name in names {
            let path = run.checkpoints_dir().join(format!("{name}.safetensors"));
            fs::write(&path, name).unwrap();
            // Distinct modification times, in writing order.
            std::thread::sleep(std::time::Duration::from_millis(20));
        }
        let newest = run.epoch_checkpoint(3);
        run.prune_checkpoints(2, &newest).unwrap();
        let mut left: Vec<String> = fs::read_dir(run.checkpoints_dir())
            .unwrap()
            .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
            .collect();
        left.sort();
        assert_eq!(
            left,
            [
                "epoch-002.safetensors",
                "epoch-003.safetensors",
                "latest.safetensors"
            ]
        );
        run.prune_checkpoints(0, &newest).unwrap();
        assert_eq!(fs::read_dir(run.checkpoints_dir()).unwrap().count(), 3);
    }
}
