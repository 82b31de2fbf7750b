//! Continuing a run from a checkpoint: its settings (from the checkpoint, checked against any
//! flags), its run folder, and its metrics cut back to the checkpoint's step; or, as a fork, the
//! same exact state continued into a new run folder with another rate, schedule or length.

use std::path::{Path, PathBuf};

use anyhow::{Context, bail};

use crate::config::{self, Config, Overrides};
use crate::files::run_dir::{MetricsRecord, RunDir};
use crate::train::checkpoint::Checkpoint;

/// A checkpoint ready to continue from.
pub struct Resume {
    pub config: Config,
    pub checkpoint: Checkpoint,
    /// The run folder the run continues in.
    pub run_root: PathBuf,
    /// A fork: the parent's folder whose metrics up to the checkpoint's step start the fork's.
    pub fork_of: Option<PathBuf>,
}

/// How a checkpoint is continued.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Continue {
    /// The same run, in its own folder, with the checkpoint's settings.
    Resume,
    /// A new run in a new folder from the checkpoint's state, whose rate, schedule and length
    /// may differ; its config records the parent.
    Fork,
}

/// Reads `path` and works out the config and run folder to continue with. Settings that would
/// make the continuation a different run (preset, batch size, seed, learning rate and schedule,
/// data) must match the checkpoint's; `epochs` and `max_steps` may change. A fork may also change
/// the learning rate and its schedule, and goes to a new folder (`--run-dir`, or a new one).
pub fn prepare(
    path: &Path,
    overrides: &Overrides,
    how: Continue,
    new_run_dir: impl FnOnce(&Config) -> PathBuf,
) -> anyhow::Result<Resume> {
    let checkpoint = Checkpoint::load(path)?;
    let saved = config::from_text(path, &checkpoint.config_toml, &Overrides::default())
        .with_context(|| {
            format!(
                "{}: the checkpoint's saved settings are invalid",
                path.display()
            )
        })?;
    let mut config = config::from_text(path, &checkpoint.config_toml, overrides)?;
    let mut fixed: Vec<(&str, String, String)> = vec![
        (
            "preset",
            saved.preset.name().to_string(),
            config.preset.name().to_string(),
        ),
        (
            "batch size",
            saved.batch_size.to_string(),
            config.batch_size.to_string(),
        ),
        ("seed", saved.seed.to_string(), config.seed.to_string()),
        (
            "data",
            show_dir(&saved.data_dir),
            show_dir(&config.data_dir),
        ),
    ];
    if how == Continue::Resume {
        fixed.push(("learning rate", saved.lr.to_string(), config.lr.to_string()));
        fixed.push((
            "learning-rate schedule",
            format!("{:?}", saved.lr_schedule),
            format!("{:?}", config.lr_schedule),
        ));
    }
    for (what, in_checkpoint, asked) in fixed {
        if in_checkpoint != asked {
            let hint = match how {
                Continue::Resume => {
                    "resume with the checkpoint's own, fork with --fork to change the rate, \
                     its schedule or the length, or start a new run"
                }
                Continue::Fork => "a fork may change only the rate, its schedule and the length",
            };
            bail!(
                "cannot resume {} with another {what}: the checkpoint holds {in_checkpoint}, the settings say {asked}; {hint}",
                path.display()
            );
        }
    }
    let owner = owning_run(path);
    if how == Continue::Fork {
        let parent = match &owner {
            Some(run) => run.clone(),
            None => std::path::absolute(path)
                .ok()
                .and_then(|p| p.parent().map(Path::to_path_buf))
                .unwrap_or_default(),
        };
        let run_root = match overrides.run_dir() {
            Some(flag) if !flag.as_os_str().is_empty() => config
                .run_dir
                .clone()
                .unwrap_or_else(|| new_run_dir(&config)),
            _ => new_run_dir(&config),
        };
        if owner.as_ref() == Some(&run_root) {
            bail!(
                "a fork goes to a new run folder, not its parent's ({}); drop --run-dir or name another",
                run_root.display()
            );
        }
        config.run_dir = Some(run_root.clone());
        config.forked_from = Some(parent.clone());
        config.forked_at_step = checkpoint.progress.step;
        return Ok(Resume {
            config,
            checkpoint,
            run_root,
            fork_of: Some(parent),
        });
    }
    // By default the run goes on in the folder the checkpoint belongs to; another folder must
    // not hold a run already, as its metrics would be cut.
    let run_root = match (overrides.run_dir(), &config.run_dir) {
        (Some(flag), Some(dir)) if !flag.as_os_str().is_empty() => {
            let taken = ["metrics.jsonl", "config.toml"]
                .iter()
                .any(|f| dir.join(f).exists());
            if taken && owner.as_ref() != Some(dir) {
                bail!(
                    "{} already holds another run; resume into the checkpoint's own run folder or a new one",
                    dir.display()
                );
            }
            dir.clone()
        }
        _ => owner.unwrap_or_else(|| new_run_dir(&config)),
    };
    config.run_dir = Some(run_root.clone());
    Ok(Resume {
        config,
        checkpoint,
        run_root,
        fork_of: None,
    })
}

fn show_dir(dir: &Option<PathBuf>) -> String {
    dir.as_ref().map_or("the built-in MNIST".to_string(), |d| {
        d.display().to_string()
    })
}

/// The run folder a checkpoint at `<run>/checkpoints/<name>` belongs to.
fn owning_run(checkpoint: &Path) -> Option<PathBuf> {
    let dir = std::path::absolute(checkpoint).ok()?;
    let parent = dir.parent()?;
    (parent.file_name()? == "checkpoints").then(|| parent.parent().map(Path::to_path_buf))?
}

/// Opens the run folder to continue in: metrics and alarms after the checkpoint's step are
/// dropped (they will be written again, identically), and `config.toml` is rewritten with the
/// settings now in force. All are rewritten atomically. A fork's folder must be new; it starts
/// with the parent's metrics up to the checkpoint's step (the parent's folder is only read).
pub fn open_run_dir(resume: &Resume) -> anyhow::Result<RunDir> {
    let root = &resume.run_root;
    if let Some(parent) = &resume.fork_of {
        let run = RunDir::start_new(root, &resume.config.to_toml())?;
        let parent_metrics = parent.join("metrics.jsonl");
        let text = match std::fs::read_to_string(&parent_metrics) {
            Ok(text) => text,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => String::new(),
            Err(e) => {
                return Err(e).with_context(|| format!("cannot read {}", parent_metrics.display()));
            }
        };
        let kept = metrics_up_to(&text, resume.checkpoint.progress.step);
        let metrics = run.metrics_file();
        crate::files::atomic::write(&metrics, kept.as_bytes())
            .with_context(|| format!("cannot write {}", metrics.display()))?;
        return Ok(run);
    }
    let run = RunDir::create(root)
        .with_context(|| format!("cannot create the run folder {}", root.display()))?;
    let metrics = run.metrics_file();
    if metrics.exists() {
        let text = std::fs::read_to_string(&metrics)
            .with_context(|| format!("cannot read {}", metrics.display()))?;
        let kept = metrics_up_to(&text, resume.checkpoint.progress.step);
        crate::files::atomic::write(&metrics, kept.as_bytes())
            .with_context(|| format!("cannot rewrite {}", metrics.display()))?;
    }
    let events = run.events_file();
    if events.exists() {
        let text = std::fs::read_to_string(&events)
            .with_context(|| format!("cannot read {}", events.display()))?;
        let kept = events_up_to(&text, resume.checkpoint.progress.step);
        crate::files::atomic::write(&events, kept.as_bytes())
            .with_context(|| format!("cannot rewrite {}", events.display()))?;
    }
    crate::files::atomic::write(&run.config_file(), resume.config.to_toml().as_bytes())
        .with_context(|| format!("cannot write {}", run.config_file().display()))?;
    Ok(run)
}

/// The logged steps of a fork's parent, read from its `metrics.jsonl` (torn or foreign lines
/// skipped); `None` when `config` is not a fork or the file cannot be read.
pub fn parent_steps(config: &Config) -> Option<Vec<crate::protocol::StepStats>> {
    let parent = config.forked_from.as_ref()?;
    let text = std::fs::read_to_string(RunDir::metrics_file_in(parent)).ok()?;
    Some(
        text.lines()
            .filter_map(|line| serde_json::from_str::<MetricsRecord>(line).ok())
            .map(|r| r.stats)
            .collect(),
    )
}

/// The lines of a `metrics.jsonl` text for steps up to `step`; a torn or foreign line goes.
pub fn metrics_up_to(text: &str, step: u64) -> String {
    text.lines()
        .filter(|line| {
            serde_json::from_str::<MetricsRecord>(line).is_ok_and(|r| r.stats.step <= step)
        })
        .map(|line| format!("{line}\n"))
        .collect()
}

/// The lines of an `events.jsonl` text for alarms up to `step`; a torn or foreign line goes.
pub fn events_up_to(text: &str, step: u64) -> String {
    text.lines()
        .filter(|line| {
            serde_json::from_str::<crate::protocol::Alarm>(line).is_ok_and(|a| a.step <= step)
        })
        .map(|line| format!("{line}\n"))
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn metrics_are_cut_at_the_checkpoint_and_torn_lines_dropped() {
        let line = |step: u64| {
            format!(
                "{{\"step\":{step},\"epoch\":1,\"d_loss\":1.0,\"g_loss\":1.0,\"d_real\":0.5,\"d_fake\":0.5,\"lr\":0.0002,\"steps_per_s\":1.0,\"elapsed_s\":1.0}}"
            )
        };
        let text = format!("{}\n{}\n{}\n{{\"step\":4,\"epo", line(1), line(2), line(3));
        assert_eq!(
            metrics_up_to(&text, 2),
            format!("{}\n{}\n", line(1), line(2))
        );
    }

    #[test]
    fn alarms_are_cut_at_the_checkpoint_and_torn_lines_dropped() {
        let line = |step: u64| format!(r#"{{"step":{step},"kind":"d_wins","message":"m"}}"#);
        let text = format!("{}\n{}\n{{\"step\":3,\"ki", line(1), line(5));
        assert_eq!(events_up_to(&text, 4), format!("{}\n", line(1)));
    }

    #[test]
    fn a_checkpoint_belongs_to_the_run_above_its_folder() {
        assert_eq!(
            owning_run(Path::new("/r/run1/checkpoints/epoch-001.safetensors")),
            Some(PathBuf::from("/r/run1"))
        );
        assert_eq!(owning_run(Path::new("/tmp/loose.safetensors")), None);
    }
}
