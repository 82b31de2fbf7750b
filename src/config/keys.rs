//! The settings, one row each: where a key lives in the file, the flag that overrides it, the
//! values it accepts, its help text and how a resolved `Config` writes it back. The file layer,
//! the overrides, `Config::to_toml`, `config.example.toml` and the README's settings table all
//! follow from these rows.

use std::fmt;
use std::path::{Path, PathBuf};

use crate::train::schedule::ScheduleKind;

use super::{Config, ConfigError, OnWriteError, Origin, Preset, steps_limit};

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
    help: "model recipe (see Recipes); `reference` is the reference program's MLP GAN",
    default_shown: None,
    write: |c| toml_string(c.preset.name()),
    set: |c, _, v| c.preset = v,
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
    help: "passes over the training images",
    default_shown: None,
    write: |c| c.epochs.to_string(),
    set: |c, _, v| c.epochs = narrow(v),
};
pub(super) const BATCH_SIZE: Key<Int> = Key {
    table: "train",
    name: "batch_size",
    flag: "--batch-size",
    accepts: Int { min: 1, max: 4096 },
    doc: "images per training step",
    help: "images per training step",
    default_shown: None,
    write: |c| c.batch_size.to_string(),
    set: |c, _, v| c.batch_size = narrow(v),
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
    help: "seed for weights, noise and shuffling; the same seed repeats a run",
    default_shown: None,
    write: |c| c.seed.to_string(),
    set: |c, _, v| c.seed = v,
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
    help: "stop after this many steps in all; 0 = no limit",
    default_shown: None,
    write: |c| c.max_steps.unwrap_or(0).to_string(),
    set: |c, _, v| c.max_steps = steps_limit(v),
};
pub(super) const LR: Key<Positive> = Key {
    table: "train",
    name: "lr",
    flag: "--lr",
    accepts: Positive { max: 1.0 },
    doc: "learning rate; leave it out for the preset's own",
    help: "learning rate of both optimisers (`cgan`'s G takes twice it); absent: the preset's own, 0.0004 for `cgan`, 0.0001 for `wgan-gp`, 0.0002 for the others",
    default_shown: Some("the preset's"),
    write: |c| toml::Value::Float(c.lr).to_string(),
    set: |_, lr, v| *lr = Some(v),
};
pub(super) const LR_SCHEDULE: Key<ScheduleName> = Key {
    table: "train",
    name: "lr_schedule",
    flag: "--lr-schedule",
    accepts: ScheduleName,
    doc: "learning-rate schedule: constant, step, cosine or linear",
    help: "how the rate changes: `step` multiplies it by `lr_gamma` every `lr_step_every` steps, `cosine` and `linear` take it to `lr_final` x `lr` at the last step (see Recipes)",
    default_shown: None,
    write: |c| toml_string(c.lr_schedule.kind.name()),
    set: |c, _, v| c.lr_schedule.kind = v,
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
    help: "step schedule: steps between drops (4690 = 5 epochs of 64)",
    default_shown: None,
    write: |c| c.lr_schedule.every.to_string(),
    set: |c, _, v| c.lr_schedule.every = v,
};
pub(super) const LR_GAMMA: Key<Positive> = Key {
    table: "train",
    name: "lr_gamma",
    flag: "lr_gamma",
    accepts: Positive { max: 1.0 },
    doc: "step schedule: factor of each drop",
    help: "step schedule: factor of each drop",
    default_shown: None,
    write: |c| toml::Value::Float(c.lr_schedule.gamma).to_string(),
    set: |c, _, v| c.lr_schedule.gamma = v,
};
pub(super) const LR_FINAL: Key<Fraction> = Key {
    table: "train",
    name: "lr_final",
    flag: "lr_final",
    accepts: Fraction,
    doc: "cosine and linear: final rate as a fraction of lr",
    help: "cosine and linear: the last step's rate as a fraction of `lr`",
    default_shown: None,
    write: |c| toml::Value::Float(c.lr_schedule.final_factor).to_string(),
    set: |c, _, v| c.lr_schedule.final_factor = v,
};
pub(super) const DATA_DIR: Key<Dir> = Key {
    table: "data",
    name: "dir",
    flag: "--data-dir",
    accepts: Dir,
    doc: "\"\" = built-in MNIST, else a folder with the four MNIST IDX files",
    help: "`\"\"` = the built-in MNIST; else a folder with the four MNIST-named IDX files",
    default_shown: None,
    write: |c| toml_path(c.data_dir.as_deref()),
    set: |c, _, v| c.data_dir = v,
};
pub(super) const RUN_DIR: Key<Dir> = Key {
    table: "run",
    name: "dir",
    flag: "--run-dir",
    accepts: Dir,
    doc: "\"\" = a new folder under the runs directory, else this folder",
    help: "`\"\"` = a new folder under the runs directory; else this folder",
    default_shown: None,
    write: |c| toml_path(c.run_dir.as_deref()),
    set: |c, _, v| c.run_dir = v,
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
    help: "steps between logged steps (metrics.jsonl lines, dashboard points)",
    default_shown: None,
    write: |c| c.log_every.to_string(),
    set: |c, _, v| c.log_every = v,
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
    help: "steps between sample grids",
    default_shown: None,
    write: |c| c.sample_every.to_string(),
    set: |c, _, v| c.sample_every = v,
};
pub(super) const SAMPLE_COUNT: Key<Int> = Key {
    table: "run",
    name: "sample_count",
    flag: "sample_count",
    accepts: Int { min: 1, max: 256 },
    doc: "digits in the sample grid",
    help: "digits in the sample grid",
    default_shown: None,
    write: |c| c.sample_count.to_string(),
    set: |c, _, v| c.sample_count = narrow(v),
};
pub(super) const THEME: Key<Name> = Key {
    table: "ui",
    name: "theme",
    flag: "--theme",
    accepts: Name,
    doc: "colour theme: built-in \"default\" or a file in the themes folder",
    help: "colour theme: a built-in one (`default`, `light`, `mono`, `amber`) or `<name>.toml` in the themes folder",
    default_shown: None,
    write: |c| toml_string(&c.theme),
    set: |c, _, v| c.theme = v,
};
pub(super) const FPS: Key<Int> = Key {
    table: "ui",
    name: "fps",
    flag: "fps",
    accepts: Int { min: 1, max: 60 },
    doc: "dashboard frames per second",
    help: "dashboard frames per second",
    default_shown: None,
    write: |c| c.fps.to_string(),
    set: |c, _, v| c.fps = narrow(v),
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
    help: "numbered checkpoints to keep (`latest.safetensors` always kept); 0 = all",
    default_shown: None,
    write: |c| c.keep_checkpoints.to_string(),
    set: |c, _, v| c.keep_checkpoints = narrow(v),
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
    help: "digits the judge scores after each epoch (and on the `e` key); 0 = off",
    default_shown: None,
    write: |c| c.eval_count.to_string(),
    set: |c, _, v| c.eval_count = narrow(v),
};
pub(super) const ON_WRITE_ERROR: Key<WriteErrorChoice> = Key {
    table: "run",
    name: "on_write_error",
    flag: "on_write_error",
    accepts: WriteErrorChoice,
    doc: "headless, when a file cannot be written: \"continue\" or \"stop\"",
    help: "headless, when a file cannot be written: train on, or stop cleanly and exit non-zero",
    default_shown: None,
    write: |c| toml_string(c.on_write_error.name()),
    set: |c, _, v| c.on_write_error = v,
};
pub(super) const FORKED_FROM: Key<Dir> = Key {
    table: "run",
    name: "forked_from",
    flag: "forked_from",
    accepts: Dir,
    doc: "\"\" = not a fork, else the run folder this run was forked from",
    help: "written by `--fork`: the run folder the run was forked from; `\"\"` = not a fork",
    default_shown: None,
    write: |c| toml_path(c.forked_from.as_deref()),
    set: |c, _, v| c.forked_from = v,
};
pub(super) const FORKED_AT_STEP: Key<Int> = Key {
    table: "run",
    name: "forked_at_step",
    flag: "forked_at_step",
    accepts: Int {
        min: 0,
        max: TOML_INT_MAX,
    },
    doc: "the parent's step the fork started from (with forked_from)",
    help: "written by `--fork`: the parent's step the fork continued from",
    default_shown: None,
    write: |c| c.forked_at_step.to_string(),
    set: |c, _, v| c.forked_at_step = v,
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
    &FORKED_FROM,
    &FORKED_AT_STEP,
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
pub(super) struct Key<A: Accepts> {
    pub(super) table: &'static str,
    pub(super) name: &'static str,
    pub(super) flag: &'static str,
    pub(super) accepts: A,
    /// The short help `to_toml` writes beside the value.
    pub(super) doc: &'static str,
    /// The help in the README's table and `config.example.toml` (markdown-ish: `code`).
    pub(super) help: &'static str,
    /// The default as the documentation says it, when the value itself would mislead.
    pub(super) default_shown: Option<&'static str>,
    pub(super) write: fn(&Config) -> String,
    /// Puts a checked value into the config being resolved (or, for `lr`, the rate a layer
    /// chose, which `load` weighs against the preset's own).
    pub(super) set: fn(&mut Config, &mut Option<f64>, A::Value),
}

/// What the file-facing code needs of a key, whatever its kind of value.
pub(super) trait Setting {
    fn table(&self) -> &'static str;
    fn name(&self) -> &'static str;
    fn doc(&self) -> &'static str;
    /// The type and the values the key takes, for a wrong-type message.
    fn expected(&self) -> String;
    fn write(&self, config: &Config) -> String;
    fn help(&self) -> &'static str;
    fn default_shown(&self) -> Option<&'static str>;
    /// The values the key takes, briefly, for the documentation.
    fn values(&self) -> String;
    /// The command-line flag that overrides the key, if one does.
    fn cli_flag(&self) -> Option<&'static str>;
    /// Checks a value from a file and puts it into `config` (or `lr`). `origin` says where it
    /// came from, `base` is the folder relative paths start at.
    fn read(
        &self,
        raw: &RawValue,
        base: &Path,
        origin: &dyn Fn() -> Origin,
        config: &mut Config,
        lr: &mut Option<f64>,
    ) -> Result<(), Refusal>;
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
    fn write(&self, config: &Config) -> String {
        (self.write)(config)
    }
    fn help(&self) -> &'static str {
        self.help
    }
    fn default_shown(&self) -> Option<&'static str> {
        self.default_shown
    }
    fn values(&self) -> String {
        self.accepts.values()
    }
    fn cli_flag(&self) -> Option<&'static str> {
        self.flag.starts_with("--").then_some(self.flag)
    }
    fn read(
        &self,
        raw: &RawValue,
        base: &Path,
        origin: &dyn Fn() -> Origin,
        config: &mut Config,
        lr: &mut Option<f64>,
    ) -> Result<(), Refusal> {
        let value = A::take(self, raw, base, origin)?;
        (self.set)(config, lr, value);
        Ok(())
    }
}

/// A value as a config file holds it, before any key looks at it.
pub(super) enum RawValue<'a> {
    /// Fits TOML's i64.
    Integer(i64),
    /// Fits a 128-bit integer but not TOML's i64: out of range for every key; a number key
    /// takes it as a number only if it fits a u64.
    HugeInteger {
        fits_u64: bool,
    },
    /// Fits no machine integer at all.
    IntegerOverflow,
    Float(f64),
    /// Too large for an f64.
    FloatOverflow,
    Text(&'a str),
    /// A boolean, a date, an array or a table: no key takes one.
    Other,
}

/// Why a key does not take a file's value.
pub(super) enum Refusal {
    /// The value's TOML type is not the key's.
    WrongType,
    /// The value cannot be read at all (a number too large); the message says why.
    Unreadable(&'static str),
    /// Of the right type, but not a value the key takes.
    Rejected(ConfigError),
}

/// A range-checked whole number into its field's type; the key's range fits every field.
fn narrow<T: TryFrom<u64> + Bounded>(value: u64) -> T {
    T::try_from(value).unwrap_or(T::MAX)
}

/// The largest value of a field's type, for `narrow`.
trait Bounded {
    const MAX: Self;
}

impl Bounded for u32 {
    const MAX: u32 = u32::MAX;
}

impl Bounded for usize {
    const MAX: usize = usize::MAX;
}

impl<A: Accepts> Key<A> {
    pub(super) fn flag_origin(&self, text: impl fmt::Display) -> Origin {
        Origin::Flag {
            flag: self.flag,
            text: text.to_string(),
        }
    }
}

/// A kind of value a key accepts.
pub(super) trait Accepts: Sized {
    /// The checked value a key of this kind puts into the config.
    type Value;
    fn expected(&self) -> String;
    /// The values, briefly, for the documentation.
    fn values(&self) -> String;
    /// Checks a file's value for `key`.
    fn take(
        key: &Key<Self>,
        raw: &RawValue,
        base: &Path,
        origin: &dyn Fn() -> Origin,
    ) -> Result<Self::Value, Refusal>;
}

/// The message for an integer no machine integer holds.
const INTEGER_OVERFLOW: &str = "integer number overflowed";

/// A number from a file: a float, or an integer taken as one.
fn number(raw: &RawValue) -> Result<f64, Refusal> {
    match *raw {
        RawValue::Float(v) => Ok(v),
        RawValue::Integer(v) => Ok(v as f64),
        // Out of range for every key, as the number it is.
        RawValue::HugeInteger { fits_u64: true } => Ok(f64::MAX),
        RawValue::IntegerOverflow => Err(Refusal::Unreadable(INTEGER_OVERFLOW)),
        RawValue::FloatOverflow => Err(Refusal::Unreadable("floating-point number overflowed")),
        _ => Err(Refusal::WrongType),
    }
}

/// A string from a file.
fn text<'a>(raw: &RawValue<'a>) -> Result<&'a str, Refusal> {
    match *raw {
        RawValue::Text(text) => Ok(text),
        _ => Err(Refusal::WrongType),
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
    type Value = u64;
    fn expected(&self) -> String {
        format!("an integer in {self}")
    }
    fn values(&self) -> String {
        match (self.min, self.max) {
            (min, TOML_INT_MAX) => format!("{min} or more"),
            (min, max) => format!("{min}..={max}"),
        }
    }
    fn take(
        key: &Key<Self>,
        raw: &RawValue,
        _base: &Path,
        origin: &dyn Fn() -> Origin,
    ) -> Result<Self::Value, Refusal> {
        match *raw {
            RawValue::Integer(v) => key.check(i128::from(v), origin).map_err(Refusal::Rejected),
            RawValue::HugeInteger { .. } => Err(Refusal::Rejected(ConfigError::OutOfRange {
                origin: origin(),
                allowed: key.accepts.to_string(),
            })),
            RawValue::IntegerOverflow => Err(Refusal::Unreadable(INTEGER_OVERFLOW)),
            _ => Err(Refusal::WrongType),
        }
    }
}

impl Accepts for Positive {
    type Value = f64;
    fn expected(&self) -> String {
        self.to_string()
    }
    fn values(&self) -> String {
        format!("> 0 and <= {}", self.max)
    }
    fn take(
        key: &Key<Self>,
        raw: &RawValue,
        _base: &Path,
        origin: &dyn Fn() -> Origin,
    ) -> Result<Self::Value, Refusal> {
        key.check(number(raw)?, origin).map_err(Refusal::Rejected)
    }
}

impl Accepts for Fraction {
    type Value = f64;
    fn expected(&self) -> String {
        "a finite number >= 0 and <= 1".to_string()
    }
    fn values(&self) -> String {
        "0..=1".to_string()
    }
    fn take(
        key: &Key<Self>,
        raw: &RawValue,
        _base: &Path,
        origin: &dyn Fn() -> Origin,
    ) -> Result<Self::Value, Refusal> {
        key.check(number(raw)?, origin).map_err(Refusal::Rejected)
    }
}

impl Accepts for ScheduleName {
    type Value = ScheduleKind;
    fn expected(&self) -> String {
        let names: Vec<&str> = ScheduleKind::ALL.iter().map(|k| k.name()).collect();
        format!("a string naming a schedule ({})", names.join(", "))
    }
    fn values(&self) -> String {
        let names: Vec<&str> = ScheduleKind::ALL.iter().map(|k| k.name()).collect();
        names.join(", ")
    }
    fn take(
        key: &Key<Self>,
        raw: &RawValue,
        _base: &Path,
        origin: &dyn Fn() -> Origin,
    ) -> Result<Self::Value, Refusal> {
        key.check(text(raw)?, origin).map_err(Refusal::Rejected)
    }
}

impl Accepts for PresetName {
    type Value = Preset;
    fn expected(&self) -> String {
        format!("a string naming a preset ({})", Preset::known_names())
    }
    fn values(&self) -> String {
        Preset::known_names()
    }
    fn take(
        key: &Key<Self>,
        raw: &RawValue,
        _base: &Path,
        origin: &dyn Fn() -> Origin,
    ) -> Result<Self::Value, Refusal> {
        key.check(text(raw)?, origin).map_err(Refusal::Rejected)
    }
}

impl Accepts for Name {
    type Value = String;
    fn expected(&self) -> String {
        "a string of ASCII letters, digits, `_` and `-`".to_string()
    }
    fn values(&self) -> String {
        "a name".to_string()
    }
    fn take(
        key: &Key<Self>,
        raw: &RawValue,
        _base: &Path,
        origin: &dyn Fn() -> Origin,
    ) -> Result<Self::Value, Refusal> {
        key.check(text(raw)?, origin).map_err(Refusal::Rejected)
    }
}

impl Accepts for WriteErrorChoice {
    type Value = OnWriteError;
    fn expected(&self) -> String {
        let names: Vec<&str> = OnWriteError::ALL.iter().map(|c| c.name()).collect();
        format!("one of the strings {}", names.join(", "))
    }
    fn values(&self) -> String {
        let names: Vec<&str> = OnWriteError::ALL.iter().map(|c| c.name()).collect();
        names.join(", ")
    }
    fn take(
        key: &Key<Self>,
        raw: &RawValue,
        _base: &Path,
        origin: &dyn Fn() -> Origin,
    ) -> Result<Self::Value, Refusal> {
        key.check(text(raw)?, origin).map_err(Refusal::Rejected)
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
    type Value = Option<PathBuf>;
    fn expected(&self) -> String {
        "a string holding a folder path (\"\" for the default)".to_string()
    }
    fn values(&self) -> String {
        "a folder, or \"\"".to_string()
    }
    fn take(
        _key: &Key<Self>,
        raw: &RawValue,
        base: &Path,
        _origin: &dyn Fn() -> Origin,
    ) -> Result<Self::Value, Refusal> {
        Key::<Dir>::resolve(Path::new(text(raw)?), base).map_err(Refusal::Rejected)
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

/// The header of `config.example.toml`.
const EXAMPLE_HEADER: &str = "\
# gan-tui settings. Every key is optional; the values below are the built-in defaults.
# Copy this file to the path `gan-tui --print-paths` shows as \"config file\", or pass it with
# `--config <file>`. Command-line flags beat this file. Relative folders start at this file's folder.
";

/// `config.example.toml` as the key rows make it: every key at its default, with its help.
pub fn example_file() -> String {
    let defaults = Config::default();
    let mut out = EXAMPLE_HEADER.to_string();
    for table in TABLES {
        out.push_str(&format!("\n[{table}]\n"));
        for key in KEYS.iter().filter(|k| k.table() == *table) {
            let line = format!("{} = {}", key.name(), key.write(&defaults));
            let flag = key.cli_flag().map_or(String::new(), |f| format!(" ({f})"));
            out.push_str(&format!(
                "{line:<24} # {}; {}{flag}\n",
                key.help().replace('`', ""),
                key.values()
            ));
        }
    }
    out
}

/// The README's settings table as the key rows make it.
pub fn settings_table() -> String {
    let defaults = Config::default();
    let mut out = String::from("| key | default | values | flag | what |\n|---|---|---|---|---|\n");
    for table in TABLES {
        for key in KEYS.iter().filter(|k| k.table() == *table) {
            let default = match key.default_shown() {
                Some(text) => text.to_string(),
                None => format!("`{}`", key.write(&defaults)),
            };
            let flag = key.cli_flag().map_or(String::new(), |f| format!("`{f}`"));
            out.push_str(&format!(
                "| `{table}.{}` | {default} | {} | {flag} | {} |\n",
                key.name(),
                key.values(),
                key.help()
            ));
        }
    }
    out
}
