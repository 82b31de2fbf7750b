//! The settings, one row each: where a key lives in the file, the flag that overrides it, the
//! values it accepts, its help text and how a resolved `Config` writes it back. The file layer,
//! the overrides, `Config::to_toml`, `config.example.toml` and the README's settings table all
//! follow from these rows.

use std::fmt;
use std::path::{Path, PathBuf};

use crate::train::schedule::ScheduleKind;

use super::{Config, ConfigError, OnWriteError, Origin, Preset};

/// The tables of the file, in the order `to_toml` writes them.
pub(super) const TABLES: &[&str] = &["train", "data", "run", "ui"];

/// The most bytes read from a config file: `config.example.toml` is under 2 KiB.
pub(super) const MAX_FILE_BYTES: u64 = 1 << 20;

/// The largest integer a TOML file can hold.
pub(super) const TOML_INT_MAX: u64 = i64::MAX as u64;

pub(super) const PRESET: Key<PresetName> = Key {
    table: "train",
    name: "preset",
    flag: "--preset",
    accepts: PresetName,
    doc: "model recipe",
    write: |c| toml_string(c.preset.name()),
};
pub(super) const EPOCHS: Key<Int> = Key {
    table: "train",
    name: "epochs",
    flag: "--epochs",
    accepts: Int {
        min: 1,
        max: 10_000,
    },
    doc: "passes over the training images",
    write: |c| c.epochs.to_string(),
};
pub(super) const BATCH_SIZE: Key<Int> = Key {
    table: "train",
    name: "batch_size",
    flag: "--batch-size",
    accepts: Int { min: 1, max: 4096 },
    doc: "images per training step",
    write: |c| c.batch_size.to_string(),
};
pub(super) const SEED: Key<Int> = Key {
    table: "train",
    name: "seed",
    flag: "--seed",
    accepts: Int {
        min: 0,
        max: TOML_INT_MAX,
    },
    doc: "random seed; the same seed repeats a run",
    write: |c| c.seed.to_string(),
};
pub(super) const MAX_STEPS: Key<Int> = Key {
    table: "train",
    name: "max_steps",
    flag: "--max-steps",
    accepts: Int {
        min: 0,
        max: TOML_INT_MAX,
    },
    doc: "stop after this many steps in all; 0 = no limit",
    write: |c| c.max_steps.unwrap_or(0).to_string(),
};
pub(super) const LR: Key<Positive> = Key {
    table: "train",
    name: "lr",
    flag: "--lr",
    accepts: Positive { max: 1.0 },
    doc: "learning rate; leave it out for the preset's own",
    write: |c| toml::Value::Float(c.lr).to_string(),
};
pub(super) const LR_SCHEDULE: Key<ScheduleName> = Key {
    table: "train",
    name: "lr_schedule",
    flag: "lr_schedule",
    accepts: ScheduleName,
    doc: "learning-rate schedule: constant, step, cosine or linear",
    write: |c| toml_string(c.lr_schedule.kind.name()),
};
pub(super) const LR_STEP_EVERY: Key<Int> = Key {
    table: "train",
    name: "lr_step_every",
    flag: "lr_step_every",
    accepts: Int {
        min: 1,
        max: TOML_INT_MAX,
    },
    doc: "step schedule: steps between drops",
    write: |c| c.lr_schedule.every.to_string(),
};
pub(super) const LR_GAMMA: Key<Positive> = Key {
    table: "train",
    name: "lr_gamma",
    flag: "lr_gamma",
    accepts: Positive { max: 1.0 },
    doc: "step schedule: factor of each drop",
    write: |c| toml::Value::Float(c.lr_schedule.gamma).to_string(),
};
pub(super) const LR_FINAL: Key<Fraction> = Key {
    table: "train",
    name: "lr_final",
    flag: "lr_final",
    accepts: Fraction,
    doc: "cosine and linear: final rate as a fraction of lr",
    write: |c| toml::Value::Float(c.lr_schedule.final_factor).to_string(),
};
pub(super) const DATA_DIR: Key<Dir> = Key {
    table: "data",
    name: "dir",
    flag: "--data-dir",
    accepts: Dir,
    doc: "\"\" = built-in MNIST, else a folder with the four MNIST IDX files",
    write: |c| toml_path(c.data_dir.as_deref()),
};
pub(super) const RUN_DIR: Key<Dir> = Key {
    table: "run",
    name: "dir",
    flag: "--run-dir",
    accepts: Dir,
    doc: "\"\" = a new folder under the runs directory, else this folder",
    write: |c| toml_path(c.run_dir.as_deref()),
};
pub(super) const LOG_EVERY: Key<Int> = Key {
    table: "run",
    name: "log_every",
    flag: "log_every",
    accepts: Int {
        min: 1,
        max: TOML_INT_MAX,
    },
    doc: "steps between logged steps",
    write: |c| c.log_every.to_string(),
};
pub(super) const SAMPLE_EVERY: Key<Int> = Key {
    table: "run",
    name: "sample_every",
    flag: "sample_every",
    accepts: Int {
        min: 1,
        max: TOML_INT_MAX,
    },
    doc: "steps between sample grids",
    write: |c| c.sample_every.to_string(),
};
pub(super) const SAMPLE_COUNT: Key<Int> = Key {
    table: "run",
    name: "sample_count",
    flag: "sample_count",
    accepts: Int { min: 1, max: 256 },
    doc: "digits in the sample grid",
    write: |c| c.sample_count.to_string(),
};
pub(super) const THEME: Key<Name> = Key {
    table: "ui",
    name: "theme",
    flag: "--theme",
    accepts: Name,
    doc: "colour theme: built-in \"default\" or a file in the themes folder",
    write: |c| toml_string(&c.theme),
};
pub(super) const FPS: Key<Int> = Key {
    table: "ui",
    name: "fps",
    flag: "fps",
    accepts: Int { min: 1, max: 60 },
    doc: "dashboard frames per second",
    write: |c| c.fps.to_string(),
};

pub(super) const KEEP_CHECKPOINTS: Key<Int> = Key {
    table: "run",
    name: "keep_checkpoints",
    flag: "keep_checkpoints",
    accepts: Int {
        min: 0,
        max: 1_000_000,
    },
    doc: "numbered checkpoints to keep (latest always kept); 0 = all",
    write: |c| c.keep_checkpoints.to_string(),
};
pub(super) const EVAL_COUNT: Key<Int> = Key {
    table: "run",
    name: "eval_count",
    flag: "eval_count",
    accepts: Int {
        min: 0,
        max: 50_000,
    },
    doc: "digits the judge scores after each epoch; 0 = no scoring",
    write: |c| c.eval_count.to_string(),
};
pub(super) const ON_WRITE_ERROR: Key<WriteErrorChoice> = Key {
    table: "run",
    name: "on_write_error",
    flag: "on_write_error",
    accepts: WriteErrorChoice,
    doc: "headless, when a file cannot be written: \"continue\" or \"stop\"",
    write: |c| toml_string(c.on_write_error.name()),
};

/// Every key, in the order `to_toml` writes them.
pub(super) const KEYS: &[&dyn Setting] = &[
    &PRESET,
    &EPOCHS,
    &BATCH_SIZE,
    &SEED,
    &MAX_STEPS,
    &LR,
    &LR_SCHEDULE,
    &LR_STEP_EVERY,
    &LR_GAMMA,
    &LR_FINAL,
    &DATA_DIR,
    &RUN_DIR,
    &LOG_EVERY,
    &SAMPLE_EVERY,
    &SAMPLE_COUNT,
    &KEEP_CHECKPOINTS,
    &ON_WRITE_ERROR,
    &EVAL_COUNT,
    &THEME,
    &FPS,
];

pub(super) fn toml_string(s: &str) -> String {
    toml::Value::String(s.to_string()).to_string()
}

pub(super) fn toml_path(path: Option<&Path>) -> String {
    toml_string(&path.map(|p| p.to_string_lossy()).unwrap_or_default())
}

/// One key: where it lives, the flag that overrides it (the bare key name when it has no flag),
/// what it accepts and how a resolved `Config` writes it.
pub(super) struct Key<A> {
    pub(super) table: &'static str,
    pub(super) name: &'static str,
    pub(super) flag: &'static str,
    pub(super) accepts: A,
    pub(super) doc: &'static str,
    pub(super) write: fn(&Config) -> String,
}

/// What the file-facing code needs of a key, whatever its kind of value.
pub(super) trait Setting {
    fn table(&self) -> &'static str;
    fn name(&self) -> &'static str;
    fn doc(&self) -> &'static str;
    /// The type and the values the key takes, for a wrong-type message.
    fn expected(&self) -> String;
    /// The values the key takes, for an out-of-range message.
    fn allowed(&self) -> String;
    /// True when a value of the wrong TOML type would still fit if it were in range: an
    /// integer too big for TOML's i64 is reported as out of range.
    fn is_integer(&self) -> bool;
    fn write(&self, config: &Config) -> String;
}

impl<A: Accepts> Setting for Key<A> {
    fn table(&self) -> &'static str {
        self.table
    }
    fn name(&self) -> &'static str {
        self.name
    }
    fn doc(&self) -> &'static str {
        self.doc
    }
    fn expected(&self) -> String {
        self.accepts.expected()
    }
    fn allowed(&self) -> String {
        self.accepts.allowed()
    }
    fn is_integer(&self) -> bool {
        A::IS_INTEGER
    }
    fn write(&self, config: &Config) -> String {
        (self.write)(config)
    }
}

impl<A> Key<A> {
    pub(super) fn flag_origin(&self, text: impl fmt::Display) -> Origin {
        Origin::Flag {
            flag: self.flag,
            text: text.to_string(),
        }
    }
}

/// A kind of value a key accepts.
pub(super) trait Accepts {
    const IS_INTEGER: bool = false;
    fn expected(&self) -> String;
    fn allowed(&self) -> String {
        self.expected()
    }
}

/// A whole number in `min..=max`.
pub(super) struct Int {
    pub(super) min: u64,
    pub(super) max: u64,
}

/// A finite number above zero and at most `max`.
pub(super) struct Positive {
    pub(super) max: f64,
}

/// A finite number in [0, 1].
pub(super) struct Fraction;

/// The name of one of `Preset::ALL`.
pub(super) struct PresetName;

/// The name of one of `ScheduleKind::ALL`.
pub(super) struct ScheduleName;

/// A name of ASCII letters, digits, `_` and `-`: safe as a file stem.
pub(super) struct Name;

/// A folder; empty means the built-in choice.
pub(super) struct Dir;

/// The name of one of `OnWriteError::ALL`.
pub(super) struct WriteErrorChoice;

impl fmt::Display for Int {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}..={}", self.min, self.max)
    }
}

impl fmt::Display for Positive {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "a finite number > 0 and <= {}", self.max)
    }
}

impl Accepts for Int {
    const IS_INTEGER: bool = true;
    fn expected(&self) -> String {
        format!("an integer in {self}")
    }
    fn allowed(&self) -> String {
        self.to_string()
    }
}

impl Accepts for Positive {
    fn expected(&self) -> String {
        self.to_string()
    }
}

impl Accepts for Fraction {
    fn expected(&self) -> String {
        "a finite number >= 0 and <= 1".to_string()
    }
}

impl Accepts for ScheduleName {
    fn expected(&self) -> String {
        let names: Vec<&str> = ScheduleKind::ALL.iter().map(|k| k.name()).collect();
        format!("a string naming a schedule ({})", names.join(", "))
    }
}

impl Accepts for PresetName {
    fn expected(&self) -> String {
        format!("a string naming a preset ({})", Preset::known_names())
    }
}

impl Accepts for Name {
    fn expected(&self) -> String {
        "a string of ASCII letters, digits, `_` and `-`".to_string()
    }
}

impl Accepts for WriteErrorChoice {
    fn expected(&self) -> String {
        let names: Vec<&str> = OnWriteError::ALL.iter().map(|c| c.name()).collect();
        format!("one of the strings {}", names.join(", "))
    }
}

impl Key<WriteErrorChoice> {
    pub(super) fn check(
        &self,
        name: &str,
        origin: impl FnOnce() -> Origin,
    ) -> Result<OnWriteError, ConfigError> {
        OnWriteError::ALL
            .iter()
            .copied()
            .find(|c| c.name() == name)
            .ok_or_else(|| ConfigError::OutOfRange {
                origin: origin(),
                allowed: self.accepts.expected(),
            })
    }
}

impl Accepts for Dir {
    fn expected(&self) -> String {
        "a string holding a folder path (\"\" for the default)".to_string()
    }
}

impl Key<Int> {
    pub(super) fn check<T: TryFrom<u64>>(
        &self,
        value: i128,
        origin: impl FnOnce() -> Origin,
    ) -> Result<T, ConfigError> {
        u64::try_from(value)
            .ok()
            .filter(|v| (self.accepts.min..=self.accepts.max).contains(v))
            .and_then(|v| T::try_from(v).ok())
            .ok_or_else(|| ConfigError::OutOfRange {
                origin: origin(),
                allowed: self.accepts.to_string(),
            })
    }

    pub(super) fn flag<V, T>(&self, value: Option<V>) -> Result<Option<T>, ConfigError>
    where
        V: Copy + fmt::Display,
        i128: TryFrom<V>,
        T: TryFrom<u64>,
    {
        value
            .map(|v| {
                // A value too wide even for i128 is out of range all the same.
                let wide = i128::try_from(v).unwrap_or(i128::MAX);
                self.check(wide, || self.flag_origin(v))
            })
            .transpose()
    }
}

impl Key<Positive> {
    pub(super) fn check(
        &self,
        value: f64,
        origin: impl FnOnce() -> Origin,
    ) -> Result<f64, ConfigError> {
        if value.is_finite() && value > 0.0 && value <= self.accepts.max {
            Ok(value)
        } else {
            Err(ConfigError::OutOfRange {
                origin: origin(),
                allowed: self.accepts.to_string(),
            })
        }
    }

    pub(super) fn flag(&self, value: Option<f64>) -> Result<Option<f64>, ConfigError> {
        value
            .map(|v| self.check(v, || self.flag_origin(v)))
            .transpose()
    }
}

impl Key<Fraction> {
    pub(super) fn check(
        &self,
        value: f64,
        origin: impl FnOnce() -> Origin,
    ) -> Result<f64, ConfigError> {
        if value.is_finite() && (0.0..=1.0).contains(&value) {
            Ok(value)
        } else {
            Err(ConfigError::OutOfRange {
                origin: origin(),
                allowed: self.accepts.expected(),
            })
        }
    }
}

impl Key<ScheduleName> {
    pub(super) fn check(
        &self,
        name: &str,
        origin: impl FnOnce() -> Origin,
    ) -> Result<ScheduleKind, ConfigError> {
        ScheduleKind::from_name(name).ok_or_else(|| ConfigError::UnknownSchedule {
            origin: origin(),
            known: self.accepts.expected(),
        })
    }
}

impl Key<PresetName> {
    pub(super) fn check(
        &self,
        name: &str,
        origin: impl FnOnce() -> Origin,
    ) -> Result<Preset, ConfigError> {
        Preset::from_name(name).ok_or_else(|| ConfigError::UnknownPreset {
            origin: origin(),
            known: Preset::known_names(),
        })
    }
}

impl Key<Name> {
    pub(super) fn check(
        &self,
        name: &str,
        origin: impl FnOnce() -> Origin,
    ) -> Result<String, ConfigError> {
        let valid = !name.is_empty()
            && name
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '-');
        if valid {
            Ok(name.to_string())
        } else {
            Err(ConfigError::BadName { origin: origin() })
        }
    }

    pub(super) fn flag(&self, value: Option<&str>) -> Result<Option<String>, ConfigError> {
        value
            .map(|v| self.check(v, || self.flag_origin(v)))
            .transpose()
    }
}

impl Key<Dir> {
    /// `None` when unset; `Some(None)` for the built-in choice; else the absolute folder.
    /// A relative `path` starts at `base`, itself relative to the current folder if need be.
    pub(super) fn resolve(path: &Path, base: &Path) -> Result<Option<PathBuf>, ConfigError> {
        if path.as_os_str().is_empty() {
            return Ok(None);
        }
        let joined = base.join(path);
        std::path::absolute(&joined)
            .map(Some)
            .map_err(|cause| ConfigError::CurrentDir {
                path: joined,
                cause,
            })
    }

    pub(super) fn flag(
        &self,
        value: Option<&Path>,
    ) -> Result<Option<Option<PathBuf>>, ConfigError> {
        value.map(|v| Self::resolve(v, Path::new(""))).transpose()
    }
}
