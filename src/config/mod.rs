//! Settings: the file layer (serde, every key optional) resolved with defaults and command-line
//! overrides into one validated runtime `Config`.
//!
//! Each key is described once, in the table of `Key` constants below: where it lives in the file,
//! the flag that overrides it, the values it accepts and how a resolved `Config` writes it back.
//! Adding a key means a row there, a field in its file table and in `Config`, and one line in
//! each of `apply_file` and `apply_overrides`.

use std::fmt::{self, Write as _};
use std::fs;
use std::io;
use std::ops::Range;
use std::path::{Path, PathBuf};

use serde::Deserialize;

use crate::train::schedule::{Schedule, ScheduleKind};
use toml::Spanned;
use toml::de::{DeTable, DeValue};

use crate::files::text_file::{self, TextFileError, line_at};

mod preset;

pub use preset::Preset;

/// The resolved, validated settings of one run.
#[derive(Debug, Clone, PartialEq)]
pub struct Config {
    pub preset: Preset,
    pub epochs: u32,
    pub batch_size: usize,
    pub seed: u64,
    /// Stop after this many steps in all, if set.
    pub max_steps: Option<u64>,
    pub lr: f64,
    /// How the learning rate changes over the run (`train.lr_schedule` and its settings).
    pub lr_schedule: Schedule,
    /// A folder holding the four MNIST-named IDX files; `None` is the built-in MNIST.
    pub data_dir: Option<PathBuf>,
    /// The run folder; `None` makes a new one under the runs directory.
    pub run_dir: Option<PathBuf>,
    /// Steps between logged steps (metrics.jsonl lines and dashboard points).
    pub log_every: u64,
    /// Steps between sample grids sent to the front end.
    pub sample_every: u64,
    /// Digits in the sample grid.
    pub sample_count: usize,
    pub theme: String,
    /// Dashboard frames per second.
    pub fps: u32,
    /// Numbered checkpoints kept in the run folder (older ones are deleted once a newer one is
    /// safely written); 0 keeps them all. `latest.safetensors` is always kept.
    pub keep_checkpoints: usize,
    /// What a headless run does when a checkpoint or other file cannot be written.
    pub on_write_error: OnWriteError,
    /// Digits the judge scores after each epoch (and on request); 0 turns scoring off.
    pub eval_count: usize,
}

/// What a headless run does when a file cannot be written (a full or read-only disk).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum OnWriteError {
    /// Report it on stderr and train on.
    Continue,
    /// Report it, stop cleanly and exit non-zero.
    Stop,
}

impl OnWriteError {
    pub const ALL: &'static [OnWriteError] = &[OnWriteError::Continue, OnWriteError::Stop];

    pub fn name(self) -> &'static str {
        match self {
            OnWriteError::Continue => "continue",
            OnWriteError::Stop => "stop",
        }
    }
}

impl Default for Config {
    fn default() -> Self {
        Config {
            // The recipe that reaches the best judge scores soonest (README, Recipes).
            preset: Preset::Cgan,
            epochs: 50,
            batch_size: 64,
            seed: 0,
            max_steps: None,
            lr: Preset::Cgan.default_lr(),
            lr_schedule: Schedule::default(),
            data_dir: None,
            run_dir: None,
            log_every: 10,
            sample_every: 100,
            sample_count: 64,
            theme: "default".to_string(),
            fps: 20,
            keep_checkpoints: 5,
            on_write_error: OnWriteError::Continue,
            eval_count: 2000,
        }
    }
}

impl Config {
    /// The config in the file format, every key set, which a run folder keeps as `config.toml`.
    ///
    /// Folders are written as they are; `load` makes them absolute, so a loaded `Config` reads
    /// back equal from any folder. A folder whose path is not UTF-8 is written lossily.
    pub fn to_toml(&self) -> String {
        let mut out = String::from(
            "# gan-tui settings as resolved for one run; `gan-tui --config <this file>` repeats them.\n",
        );
        for table in TABLES {
            out.push_str(&format!("\n[{table}]\n"));
            for key in KEYS.iter().filter(|k| k.table() == *table) {
                let line = format!("{} = {}", key.name(), key.write(self));
                // Ignoring the result is sound: writing to a String cannot fail.
                let _ = writeln!(out, "{line:<24} # {}", key.doc());
            }
        }
        out
    }
}

/// Values from the command line, each beating the config file and the defaults.
///
/// An empty `data_dir` or `run_dir` means the built-in choice, as `""` does in the file, so a
/// flag can undo a folder the file sets.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Overrides {
    pub preset: Option<Preset>,
    pub epochs: Option<u32>,
    pub batch_size: Option<usize>,
    pub seed: Option<u64>,
    /// `Some(0)` lifts any limit the file sets.
    pub max_steps: Option<u64>,
    pub lr: Option<f64>,
    pub data_dir: Option<PathBuf>,
    pub run_dir: Option<PathBuf>,
    pub theme: Option<String>,
}

/// Where the file layer of a `Config` came from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ConfigSource {
    /// No file: built-in defaults and flags only.
    Defaults,
    /// The user's default config file, which existed.
    UserFile(PathBuf),
    /// The file named by `--config`.
    Explicit(PathBuf),
}

impl ConfigSource {
    pub fn path(&self) -> Option<&Path> {
        match self {
            ConfigSource::Defaults => None,
            ConfigSource::UserFile(path) | ConfigSource::Explicit(path) => Some(path),
        }
    }
}

impl fmt::Display for ConfigSource {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ConfigSource::Defaults => write!(f, "built-in defaults (no config file)"),
            ConfigSource::UserFile(path) => write!(f, "{} (your default config)", path.display()),
            ConfigSource::Explicit(path) => write!(f, "{} (from --config)", path.display()),
        }
    }
}

/// A resolved config and the file it came from.
#[derive(Debug, Clone, PartialEq)]
pub struct Loaded {
    pub config: Config,
    pub source: ConfigSource,
}

/// Where a rejected value came from: a line of a config file, or a command-line flag.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Origin {
    /// `text` is the value as written in the file.
    File {
        path: PathBuf,
        line: usize,
        key: String,
        text: String,
    },
    Flag {
        flag: &'static str,
        text: String,
    },
}

impl fmt::Display for Origin {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Origin::File {
                path,
                line,
                key,
                text,
            } => write!(f, "{}:{line}: {key} = {text}", path.display()),
            Origin::Flag { flag, text } => write!(f, "{flag} {text}"),
        }
    }
}

#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    #[error(
        "config file {} does not exist; check the --config path (config.example.toml lists every key)",
        path.display()
    )]
    Missing { path: PathBuf },
    #[error("config path {} is a directory; give the path of a TOML file instead", path.display())]
    IsDirectory { path: PathBuf },
    // The io error is named `cause`, not `source`, so it is not also chained: the one-line
    // message (printed with its chain) then says it once.
    #[error("cannot read config file {}: {cause}; check that it exists and is readable", path.display())]
    Read { path: PathBuf, cause: io::Error },
    #[error(
        "config file {} is larger than {limit} bytes; a config file is a page of settings, so \
         check the --config path",
        path.display()
    )]
    TooLarge { path: PathBuf, limit: u64 },
    #[error("{}:{line}: the config file is not UTF-8 text; save it as UTF-8", path.display())]
    NotUtf8 { path: PathBuf, line: usize },
    #[error("{}:{line}: {place}: TOML syntax error: {message}", path.display())]
    Syntax {
        path: PathBuf,
        line: usize,
        /// The key, or the text of the line when the key is unclear.
        place: String,
        message: String,
    },
    #[error("{}:{line}: {key} is not a known key; the keys of [{table}] are: {known}", path.display())]
    UnknownKey {
        path: PathBuf,
        line: usize,
        key: String,
        table: String,
        known: String,
    },
    #[error("{}:{line}: [{name}] is not a known table; the tables are: {known}", path.display())]
    UnknownTable {
        path: PathBuf,
        line: usize,
        name: String,
        known: String,
    },
    #[error("{}:{line}: {key} is outside any table; {hint}", path.display())]
    TopLevelKey {
        path: PathBuf,
        line: usize,
        key: String,
        /// Where the key belongs, or the tables there are.
        hint: String,
    },
    #[error("{}:{line}: {key} = {value} has the wrong type; expected {expected}", path.display())]
    WrongType {
        path: PathBuf,
        line: usize,
        key: String,
        value: String,
        expected: String,
    },
    #[error("{}:{line}: {place}: {message}", path.display())]
    Invalid {
        path: PathBuf,
        line: usize,
        place: String,
        message: String,
    },
    #[error("{origin} is out of range ({allowed})")]
    OutOfRange { origin: Origin, allowed: String },
    #[error("{origin} is not a known learning-rate schedule; expected {known}")]
    UnknownSchedule { origin: Origin, known: String },
    #[error("{origin} is not a known preset; the presets are: {known}")]
    UnknownPreset { origin: Origin, known: String },
    #[error("{origin} is not a valid name; use one or more ASCII letters, digits, `_` and `-`")]
    BadName { origin: Origin },
    #[error(
        "cannot make the relative path {} absolute: the current folder is unreadable ({cause}); \
         give an absolute path",
        path.display()
    )]
    CurrentDir { path: PathBuf, cause: io::Error },
}

/// Resolves defaults < config file < `overrides`.
///
/// `explicit` (from `--config`) must exist; `user_default` is read only if it exists. Folders in
/// the result are absolute: relative ones in a file start at that file's folder, relative ones
/// from a flag at the current folder.
pub fn load(
    explicit: Option<&Path>,
    user_default: &Path,
    overrides: &Overrides,
) -> Result<Loaded, ConfigError> {
    let source = match explicit {
        Some(path) => match fs::metadata(path) {
            Err(e) if e.kind() == io::ErrorKind::NotFound => {
                return Err(ConfigError::Missing {
                    path: path.to_path_buf(),
                });
            }
            Err(cause) => {
                return Err(ConfigError::Read {
                    path: path.to_path_buf(),
                    cause,
                });
            }
            Ok(_) => ConfigSource::Explicit(path.to_path_buf()),
        },
        None => match fs::metadata(user_default) {
            Err(e) if e.kind() == io::ErrorKind::NotFound => ConfigSource::Defaults,
            Err(cause) => {
                return Err(ConfigError::Read {
                    path: user_default.to_path_buf(),
                    cause,
                });
            }
            Ok(_) => ConfigSource::UserFile(user_default.to_path_buf()),
        },
    };
    let mut config = Config::default();
    let mut lr = None;
    if let Some(path) = source.path() {
        let file = FileLayer::read(path)?;
        file.apply(&mut config, &mut lr)?;
    }
    apply_overrides(&mut config, &mut lr, overrides)?;
    // The preset's rate applies only when no layer chose one, whichever layer chose the preset.
    config.lr = lr.unwrap_or_else(|| config.preset.default_lr());
    Ok(Loaded { config, source })
}

/// Resolves a config from `text`, the saved config of a run (a checkpoint's or a run folder's
/// `config.toml`), with `overrides` on top. `origin` names the text's source in errors, and its
/// folder anchors relative paths.
pub fn from_text(origin: &Path, text: &str, overrides: &Overrides) -> Result<Config, ConfigError> {
    let layer = FileLayer::parse(origin, text.to_string())?;
    let mut config = Config::default();
    let mut lr = None;
    layer.apply(&mut config, &mut lr)?;
    apply_overrides(&mut config, &mut lr, overrides)?;
    config.lr = lr.unwrap_or_else(|| config.preset.default_lr());
    Ok(config)
}

fn apply_overrides(
    config: &mut Config,
    lr: &mut Option<f64>,
    o: &Overrides,
) -> Result<(), ConfigError> {
    if let Some(preset) = o.preset {
        config.preset = preset;
    }
    if let Some(v) = EPOCHS.flag(o.epochs)? {
        config.epochs = v;
    }
    if let Some(v) = BATCH_SIZE.flag(o.batch_size)? {
        config.batch_size = v;
    }
    if let Some(v) = SEED.flag(o.seed)? {
        config.seed = v;
    }
    if let Some(v) = MAX_STEPS.flag(o.max_steps)? {
        config.max_steps = steps_limit(v);
    }
    if let Some(v) = LR.flag(o.lr)? {
        *lr = Some(v);
    }
    if let Some(v) = DATA_DIR.flag(o.data_dir.as_deref())? {
        config.data_dir = v;
    }
    if let Some(v) = RUN_DIR.flag(o.run_dir.as_deref())? {
        config.run_dir = v;
    }
    if let Some(v) = THEME.flag(o.theme.as_deref())? {
        config.theme = v;
    }
    Ok(())
}

/// `max_steps = 0` means no limit.
fn steps_limit(n: u64) -> Option<u64> {
    (n > 0).then_some(n)
}

// ---------------------------------------------------------------------------------------------
// The keys: one row each.

/// The tables of the file, in the order `to_toml` writes them.
const TABLES: &[&str] = &["train", "data", "run", "ui"];

/// The most bytes read from a config file: `config.example.toml` is under 2 KiB.
const MAX_FILE_BYTES: u64 = 1 << 20;

/// The largest integer a TOML file can hold.
const TOML_INT_MAX: u64 = i64::MAX as u64;

const PRESET: Key<PresetName> = Key {
    table: "train",
    name: "preset",
    flag: "--preset",
    accepts: PresetName,
    doc: "model recipe",
    write: |c| toml_string(c.preset.name()),
};
const EPOCHS: Key<Int> = Key {
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
const BATCH_SIZE: Key<Int> = Key {
    table: "train",
    name: "batch_size",
    flag: "--batch-size",
    accepts: Int { min: 1, max: 4096 },
    doc: "images per training step",
    write: |c| c.batch_size.to_string(),
};
const SEED: Key<Int> = Key {
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
const MAX_STEPS: Key<Int> = Key {
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
const LR: Key<Positive> = Key {
    table: "train",
    name: "lr",
    flag: "--lr",
    accepts: Positive { max: 1.0 },
    doc: "learning rate; leave it out for the preset's own",
    write: |c| toml::Value::Float(c.lr).to_string(),
};
const LR_SCHEDULE: Key<ScheduleName> = Key {
    table: "train",
    name: "lr_schedule",
    flag: "lr_schedule",
    accepts: ScheduleName,
    doc: "learning-rate schedule: constant, step, cosine or linear",
    write: |c| toml_string(c.lr_schedule.kind.name()),
};
const LR_STEP_EVERY: Key<Int> = Key {
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
const LR_GAMMA: Key<Positive> = Key {
    table: "train",
    name: "lr_gamma",
    flag: "lr_gamma",
    accepts: Positive { max: 1.0 },
    doc: "step schedule: factor of each drop",
    write: |c| toml::Value::Float(c.lr_schedule.gamma).to_string(),
};
const LR_FINAL: Key<Fraction> = Key {
    table: "train",
    name: "lr_final",
    flag: "lr_final",
    accepts: Fraction,
    doc: "cosine and linear: final rate as a fraction of lr",
    write: |c| toml::Value::Float(c.lr_schedule.final_factor).to_string(),
};
const DATA_DIR: Key<Dir> = Key {
    table: "data",
    name: "dir",
    flag: "--data-dir",
    accepts: Dir,
    doc: "\"\" = built-in MNIST, else a folder with the four MNIST IDX files",
    write: |c| toml_path(c.data_dir.as_deref()),
};
const RUN_DIR: Key<Dir> = Key {
    table: "run",
    name: "dir",
    flag: "--run-dir",
    accepts: Dir,
    doc: "\"\" = a new folder under the runs directory, else this folder",
    write: |c| toml_path(c.run_dir.as_deref()),
};
const LOG_EVERY: Key<Int> = Key {
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
const SAMPLE_EVERY: Key<Int> = Key {
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
const SAMPLE_COUNT: Key<Int> = Key {
    table: "run",
    name: "sample_count",
    flag: "sample_count",
    accepts: Int { min: 1, max: 256 },
    doc: "digits in the sample grid",
    write: |c| c.sample_count.to_string(),
};
const THEME: Key<Name> = Key {
    table: "ui",
    name: "theme",
    flag: "--theme",
    accepts: Name,
    doc: "colour theme: built-in \"default\" or a file in the themes folder",
    write: |c| toml_string(&c.theme),
};
const FPS: Key<Int> = Key {
    table: "ui",
    name: "fps",
    flag: "fps",
    accepts: Int { min: 1, max: 60 },
    doc: "dashboard frames per second",
    write: |c| c.fps.to_string(),
};

const KEEP_CHECKPOINTS: Key<Int> = Key {
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
const EVAL_COUNT: Key<Int> = Key {
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
const ON_WRITE_ERROR: Key<WriteErrorChoice> = Key {
    table: "run",
    name: "on_write_error",
    flag: "on_write_error",
    accepts: WriteErrorChoice,
    doc: "headless, when a file cannot be written: \"continue\" or \"stop\"",
    write: |c| toml_string(c.on_write_error.name()),
};

/// Every key, in the order `to_toml` writes them.
const KEYS: &[&dyn Setting] = &[
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

fn toml_string(s: &str) -> String {
    toml::Value::String(s.to_string()).to_string()
}

fn toml_path(path: Option<&Path>) -> String {
    toml_string(&path.map(|p| p.to_string_lossy()).unwrap_or_default())
}

/// One key: where it lives, the flag that overrides it (the bare key name when it has no flag),
/// what it accepts and how a resolved `Config` writes it.
struct Key<A> {
    table: &'static str,
    name: &'static str,
    flag: &'static str,
    accepts: A,
    doc: &'static str,
    write: fn(&Config) -> String,
}

/// What the file-facing code needs of a key, whatever its kind of value.
trait Setting {
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
    fn flag_origin(&self, text: impl fmt::Display) -> Origin {
        Origin::Flag {
            flag: self.flag,
            text: text.to_string(),
        }
    }
}

/// A kind of value a key accepts.
trait Accepts {
    const IS_INTEGER: bool = false;
    fn expected(&self) -> String;
    fn allowed(&self) -> String {
        self.expected()
    }
}

/// A whole number in `min..=max`.
struct Int {
    min: u64,
    max: u64,
}

/// A finite number above zero and at most `max`.
struct Positive {
    max: f64,
}

/// A finite number in [0, 1].
struct Fraction;

/// The name of one of `Preset::ALL`.
struct PresetName;

/// The name of one of `ScheduleKind::ALL`.
struct ScheduleName;

/// A name of ASCII letters, digits, `_` and `-`: safe as a file stem.
struct Name;

/// A folder; empty means the built-in choice.
struct Dir;

/// The name of one of `OnWriteError::ALL`.
struct WriteErrorChoice;

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
    fn check(
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
    fn check<T: TryFrom<u64>>(
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

    fn flag<V, T>(&self, value: Option<V>) -> Result<Option<T>, ConfigError>
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
    fn check(&self, value: f64, origin: impl FnOnce() -> Origin) -> Result<f64, ConfigError> {
        if value.is_finite() && value > 0.0 && value <= self.accepts.max {
            Ok(value)
        } else {
            Err(ConfigError::OutOfRange {
                origin: origin(),
                allowed: self.accepts.to_string(),
            })
        }
    }

    fn flag(&self, value: Option<f64>) -> Result<Option<f64>, ConfigError> {
        value
            .map(|v| self.check(v, || self.flag_origin(v)))
            .transpose()
    }
}

impl Key<Fraction> {
    fn check(&self, value: f64, origin: impl FnOnce() -> Origin) -> Result<f64, ConfigError> {
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
    fn check(
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
    fn check(&self, name: &str, origin: impl FnOnce() -> Origin) -> Result<Preset, ConfigError> {
        Preset::from_name(name).ok_or_else(|| ConfigError::UnknownPreset {
            origin: origin(),
            known: Preset::known_names(),
        })
    }
}

impl Key<Name> {
    fn check(&self, name: &str, origin: impl FnOnce() -> Origin) -> Result<String, ConfigError> {
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

    fn flag(&self, value: Option<&str>) -> Result<Option<String>, ConfigError> {
        value
            .map(|v| self.check(v, || self.flag_origin(v)))
            .transpose()
    }
}

impl Key<Dir> {
    /// `None` when unset; `Some(None)` for the built-in choice; else the absolute folder.
    /// A relative `path` starts at `base`, itself relative to the current folder if need be.
    fn resolve(path: &Path, base: &Path) -> Result<Option<PathBuf>, ConfigError> {
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

    fn flag(&self, value: Option<&Path>) -> Result<Option<Option<PathBuf>>, ConfigError> {
        value.map(|v| Self::resolve(v, Path::new(""))).transpose()
    }
}

// ---------------------------------------------------------------------------------------------
// The file layer.

/// The config file as written: every key optional, every value with its place in the file.
#[derive(Debug, Default, Deserialize)]
#[serde(default, deny_unknown_fields)]
struct FileConfig {
    train: TrainTable,
    data: DataTable,
    run: RunTable,
    ui: UiTable,
}

/// TOML integers are i64, so integer keys are read as i64 and range-checked into their type.
#[derive(Debug, Default, Deserialize)]
#[serde(default, deny_unknown_fields)]
struct TrainTable {
    preset: Option<Spanned<String>>,
    epochs: Option<Spanned<i64>>,
    batch_size: Option<Spanned<i64>>,
    seed: Option<Spanned<i64>>,
    max_steps: Option<Spanned<i64>>,
    lr: Option<Spanned<f64>>,
    lr_schedule: Option<Spanned<String>>,
    lr_step_every: Option<Spanned<i64>>,
    lr_gamma: Option<Spanned<f64>>,
    lr_final: Option<Spanned<f64>>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(default, deny_unknown_fields)]
struct DataTable {
    dir: Option<Spanned<String>>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(default, deny_unknown_fields)]
struct RunTable {
    dir: Option<Spanned<String>>,
    log_every: Option<Spanned<i64>>,
    sample_every: Option<Spanned<i64>>,
    sample_count: Option<Spanned<i64>>,
    keep_checkpoints: Option<Spanned<i64>>,
    on_write_error: Option<Spanned<String>>,
    eval_count: Option<Spanned<i64>>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(default, deny_unknown_fields)]
struct UiTable {
    theme: Option<Spanned<String>>,
    fps: Option<Spanned<i64>>,
}

/// A parsed config file with what its messages need: its path, its text (to quote values and
/// count lines) and the folder its relative paths start from.
struct FileLayer {
    path: PathBuf,
    text: String,
    base: PathBuf,
    values: FileConfig,
}

impl FileLayer {
    fn read(path: &Path) -> Result<FileLayer, ConfigError> {
        if path.is_dir() {
            return Err(ConfigError::IsDirectory {
                path: path.to_path_buf(),
            });
        }
        let path_buf = path.to_path_buf();
        let text = text_file::read_bounded(path, MAX_FILE_BYTES).map_err(|e| match e {
            TextFileError::Read(cause) => ConfigError::Read {
                path: path_buf,
                cause,
            },
            TextFileError::TooLarge => ConfigError::TooLarge {
                path: path_buf,
                limit: MAX_FILE_BYTES,
            },
            TextFileError::NotUtf8 { line } => ConfigError::NotUtf8 {
                path: path_buf,
                line,
            },
        })?;
        FileLayer::parse(path, text)
    }

    fn parse(path: &Path, text: String) -> Result<FileLayer, ConfigError> {
        let mut layer = FileLayer {
            path: path.to_path_buf(),
            base: path.parent().map(Path::to_path_buf).unwrap_or_default(),
            text,
            values: FileConfig::default(),
        };
        layer.values = {
            // The loose parse finds syntax errors and, for any later error, the key at its span.
            let (tree, syntax_errors) = DeTable::parse_recoverable(&layer.text);
            if let Some(e) = syntax_errors.first() {
                return Err(layer.syntax_error(tree.get_ref(), e));
            }
            toml::from_str::<FileConfig>(&layer.text)
                .map_err(|e| layer.serde_error(tree.get_ref(), &e))?
        };
        Ok(layer)
    }

    fn line(&self, offset: usize) -> usize {
        line_at(self.text.as_bytes(), offset)
    }

    /// The source text at `span`, shortened so a long value cannot swamp the message, and
    /// printable so a multi-line value keeps the message on one line.
    fn quote(&self, span: Range<usize>) -> String {
        const MAX_CHARS: usize = 60;
        let raw = self.text.get(span).unwrap_or("").trim();
        if raw.chars().count() > MAX_CHARS {
            let head: String = raw.chars().take(MAX_CHARS).collect();
            format!("{}...", printable(&head))
        } else {
            printable(raw)
        }
    }

    /// The text of the line holding `offset`, for errors whose key is unclear.
    fn line_text(&self, offset: usize) -> String {
        let start = self
            .text
            .get(..offset)
            .and_then(|head| head.rfind('\n'))
            .map_or(0, |i| i + 1);
        let end = self
            .text
            .get(start..)
            .and_then(|tail| tail.find('\n'))
            .map_or(self.text.len(), |i| start + i);
        format!("`{}`", self.quote(start..end))
    }

    fn origin<T>(&self, key: &dyn Setting, value: &Spanned<T>) -> Origin {
        Origin::File {
            path: self.path.clone(),
            line: self.line(value.span().start),
            key: format!("{}.{}", key.table(), key.name()),
            text: self.quote(value.span()),
        }
    }

    fn syntax_error(&self, tree: &DeTable, e: &toml::de::Error) -> ConfigError {
        let offset = e.span().map_or(0, |s| s.start);
        let place = match key_at(tree, offset) {
            Some(found) => found.path,
            None => self.line_text(offset),
        };
        ConfigError::Syntax {
            path: self.path.clone(),
            line: self.line(offset),
            place,
            message: e.message().to_string(),
        }
    }

    /// Turns a serde error (unknown key or table, wrong type) into a message naming the key.
    fn serde_error(&self, tree: &DeTable, e: &toml::de::Error) -> ConfigError {
        let span = e.span().unwrap_or(0..0);
        let line = self.line(span.start);
        let path = self.path.clone();
        let message = e.message();
        let Some(found) = key_at(tree, span.start) else {
            return ConfigError::Invalid {
                path,
                line,
                place: self.line_text(span.start),
                message: message.to_string(),
            };
        };
        let (table, leaf) = match found.path.split_once('.') {
            Some((table, leaf)) => (table, Some(leaf)),
            None => (found.path.as_str(), None),
        };
        let key = KEYS
            .iter()
            .find(|k| k.table() == table && Some(k.name()) == leaf);
        if message.starts_with("unknown field") {
            return match leaf {
                None if found.is_table => ConfigError::UnknownTable {
                    path,
                    line,
                    name: table.to_string(),
                    known: known_tables(),
                },
                None => ConfigError::TopLevelKey {
                    path,
                    line,
                    key: table.to_string(),
                    hint: match KEYS.iter().find(|k| k.name() == table) {
                        Some(k) => format!("put it under [{}]", k.table()),
                        None => format!("keys go in the tables {}", known_tables()),
                    },
                },
                Some(_) => ConfigError::UnknownKey {
                    path,
                    line,
                    key: found.path.clone(),
                    table: table.to_string(),
                    known: known_keys(table),
                },
            };
        }
        if message.starts_with("invalid type") || message.starts_with("invalid value") {
            let value = self.quote(span.clone());
            if let Some(key) = key {
                let is_integer = !value.is_empty()
                    && value
                        .trim_start_matches(['-', '+'])
                        .bytes()
                        .all(|b| b.is_ascii_digit() || b == b'_');
                if key.is_integer() && is_integer {
                    // Too big for TOML's i64: a range problem, not a type one.
                    return ConfigError::OutOfRange {
                        origin: Origin::File {
                            path,
                            line,
                            key: found.path,
                            text: value,
                        },
                        allowed: key.allowed(),
                    };
                }
                return ConfigError::WrongType {
                    path,
                    line,
                    key: found.path,
                    value,
                    expected: key.expected(),
                };
            }
            if leaf.is_none() && TABLES.contains(&table) {
                return ConfigError::WrongType {
                    path,
                    line,
                    expected: format!("a table ([{table}] with keys {})", known_keys(table)),
                    key: found.path.clone(),
                    value,
                };
            }
        }
        ConfigError::Invalid {
            path,
            line,
            place: found.path,
            message: message.to_string(),
        }
    }

    /// Copies every key the file sets into `config`; a set `lr` goes to `lr`, for `load` to
    /// weigh against the preset's own rate.
    fn apply(&self, config: &mut Config, lr: &mut Option<f64>) -> Result<(), ConfigError> {
        let FileConfig {
            train,
            data,
            run,
            ui,
        } = &self.values;
        if let Some(v) = &train.preset {
            config.preset = PRESET.check(v.get_ref(), || self.origin(&PRESET, v))?;
        }
        if let Some(v) = self.int(&EPOCHS, &train.epochs)? {
            config.epochs = v;
        }
        if let Some(v) = self.int(&BATCH_SIZE, &train.batch_size)? {
            config.batch_size = v;
        }
        if let Some(v) = self.int(&SEED, &train.seed)? {
            config.seed = v;
        }
        if let Some(v) = self.int(&MAX_STEPS, &train.max_steps)? {
            config.max_steps = steps_limit(v);
        }
        if let Some(v) = &train.lr {
            *lr = Some(LR.check(*v.get_ref(), || self.origin(&LR, v))?);
        }
        if let Some(v) = &train.lr_schedule {
            config.lr_schedule.kind =
                LR_SCHEDULE.check(v.get_ref(), || self.origin(&LR_SCHEDULE, v))?;
        }
        if let Some(v) = self.int(&LR_STEP_EVERY, &train.lr_step_every)? {
            config.lr_schedule.every = v;
        }
        if let Some(v) = &train.lr_gamma {
            config.lr_schedule.gamma =
                LR_GAMMA.check(*v.get_ref(), || self.origin(&LR_GAMMA, v))?;
        }
        if let Some(v) = &train.lr_final {
            config.lr_schedule.final_factor =
                LR_FINAL.check(*v.get_ref(), || self.origin(&LR_FINAL, v))?;
        }
        if let Some(v) = self.dir(&data.dir)? {
            config.data_dir = v;
        }
        if let Some(v) = self.dir(&run.dir)? {
            config.run_dir = v;
        }
        if let Some(v) = self.int(&LOG_EVERY, &run.log_every)? {
            config.log_every = v;
        }
        if let Some(v) = self.int(&SAMPLE_EVERY, &run.sample_every)? {
            config.sample_every = v;
        }
        if let Some(v) = self.int(&SAMPLE_COUNT, &run.sample_count)? {
            config.sample_count = v;
        }
        if let Some(v) = self.int(&KEEP_CHECKPOINTS, &run.keep_checkpoints)? {
            config.keep_checkpoints = v;
        }
        if let Some(v) = self.int(&EVAL_COUNT, &run.eval_count)? {
            config.eval_count = v;
        }
        if let Some(v) = &run.on_write_error {
            config.on_write_error =
                ON_WRITE_ERROR.check(v.get_ref(), || self.origin(&ON_WRITE_ERROR, v))?;
        }
        if let Some(v) = &ui.theme {
            config.theme = THEME.check(v.get_ref(), || self.origin(&THEME, v))?;
        }
        if let Some(v) = self.int(&FPS, &ui.fps)? {
            config.fps = v;
        }
        Ok(())
    }

    fn int<T: TryFrom<u64>>(
        &self,
        key: &Key<Int>,
        value: &Option<Spanned<i64>>,
    ) -> Result<Option<T>, ConfigError> {
        value
            .as_ref()
            .map(|v| key.check(i128::from(*v.get_ref()), || self.origin(key, v)))
            .transpose()
    }

    fn dir(&self, value: &Option<Spanned<String>>) -> Result<Option<Option<PathBuf>>, ConfigError> {
        value
            .as_ref()
            .map(|v| Key::<Dir>::resolve(Path::new(v.get_ref()), &self.base))
            .transpose()
    }
}

/// `text` with control characters escaped (`\n`, `\u{1b}`), so that file text quoted in a
/// message keeps it on one line and cannot send escape sequences to the terminal.
fn printable(text: &str) -> String {
    text.chars()
        .map(|c| {
            if c.is_control() {
                c.escape_default().to_string()
            } else {
                c.to_string()
            }
        })
        .collect()
}

struct FoundKey {
    /// Dotted, e.g. `train.epochs`.
    path: String,
    /// The key holds a table.
    is_table: bool,
}

/// The deepest key whose name or value covers byte `offset`: the key an error there is about.
fn key_at(table: &DeTable, offset: usize) -> Option<FoundKey> {
    // Errors at a missing value come with an empty span just where the value should be.
    let covers = |s: Range<usize>| s.contains(&offset) || (s.is_empty() && s.start == offset);
    for (key, value) in table.iter() {
        if let DeValue::Table(inner) = value.get_ref()
            && let Some(found) = key_at(inner, offset)
        {
            return Some(FoundKey {
                path: format!("{}.{}", printable(key.get_ref()), found.path),
                is_table: found.is_table,
            });
        }
        if covers(key.span()) || covers(value.span()) {
            return Some(FoundKey {
                path: printable(key.get_ref()),
                is_table: matches!(value.get_ref(), DeValue::Table(_)),
            });
        }
    }
    None
}

fn known_tables() -> String {
    let names: Vec<String> = TABLES.iter().map(|t| format!("[{t}]")).collect();
    names.join(", ")
}

fn known_keys(table: &str) -> String {
    let names: Vec<&str> = KEYS
        .iter()
        .filter(|k| k.table() == table)
        .map(|k| k.name())
        .collect();
    names.join(", ")
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Writes `text` as `config.toml` in a fresh folder; the folder lives as long as the guard.
    fn write_config(text: &str) -> (tempfile::TempDir, PathBuf) {
        let tmp = tempfile::tempdir().unwrap();
        let path = tmp.path().join("config.toml");
        fs::write(&path, text).unwrap();
        (tmp, path)
    }

    fn no_user_file() -> PathBuf {
        PathBuf::from("/nonexistent/gan-tui-test/config.toml")
    }

    fn load_text(text: &str, overrides: &Overrides) -> Result<Config, ConfigError> {
        let (_tmp, path) = write_config(text);
        load(Some(&path), &no_user_file(), overrides).map(|l| l.config)
    }

    fn error(text: &str) -> String {
        match load_text(text, &Overrides::default()) {
            Ok(config) => panic!("expected an error for\n{text}\ngot {config:?}"),
            Err(e) => e.to_string(),
        }
    }

    /// The message names the file, the line and every one of `needles`.
    fn assert_error(text: &str, line: usize, needles: &[&str]) {
        let msg = error(text);
        assert!(
            msg.contains(&format!("config.toml:{line}: ")),
            "want line {line} in: {msg}"
        );
        for needle in needles {
            assert!(msg.contains(needle), "want {needle:?} in: {msg}");
        }
    }

    fn flag_error(overrides: Overrides) -> String {
        load(None, &no_user_file(), &overrides)
            .unwrap_err()
            .to_string()
    }

    #[test]
    fn no_file_gives_the_defaults() {
        let loaded = load(None, &no_user_file(), &Overrides::default()).unwrap();
        assert_eq!(loaded.config, Config::default());
        assert_eq!(loaded.source, ConfigSource::Defaults);
        assert_eq!(loaded.source.path(), None);
    }

    #[test]
    fn empty_file_gives_the_defaults() {
        assert_eq!(
            load_text("", &Overrides::default()).unwrap(),
            Config::default()
        );
        assert_eq!(
            load_text("[train]\n[data]\n[run]\n[ui]\n", &Overrides::default()).unwrap(),
            Config::default()
        );
    }

    #[test]
    fn the_example_file_is_valid_and_holds_the_defaults() {
        let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("config.example.toml");
        let loaded = load(Some(&path), &no_user_file(), &Overrides::default()).unwrap();
        assert_eq!(loaded.config, Config::default());
    }

    #[test]
    fn the_example_file_shows_every_key() {
        let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("config.example.toml");
        let text = fs::read_to_string(path).unwrap();
        let tree = DeTable::parse(&text).unwrap();
        for key in KEYS {
            let table = tree
                .get_ref()
                .iter()
                .find(|(k, _)| k.get_ref() == key.table())
                .map(|(_, v)| v.get_ref());
            let Some(DeValue::Table(table)) = table else {
                panic!("config.example.toml has no [{}] table", key.table());
            };
            assert!(
                table.iter().any(|(k, _)| k.get_ref() == key.name()),
                "config.example.toml lacks {}.{}",
                key.table(),
                key.name()
            );
        }
    }

    #[test]
    fn user_file_is_used_when_it_exists() {
        let (_tmp, path) = write_config("[train]\nepochs = 7\n");
        let loaded = load(None, &path, &Overrides::default()).unwrap();
        assert_eq!(loaded.config.epochs, 7);
        assert_eq!(loaded.source, ConfigSource::UserFile(path.clone()));
        assert_eq!(loaded.source.path(), Some(path.as_path()));
    }

    #[test]
    fn explicit_file_replaces_the_user_file() {
        let (_user_tmp, user) = write_config("this is not toml");
        let (_tmp, explicit) = write_config("[train]\nepochs = 9\n");
        let loaded = load(Some(&explicit), &user, &Overrides::default()).unwrap();
        assert_eq!(loaded.config.epochs, 9);
        assert_eq!(loaded.source, ConfigSource::Explicit(explicit));
    }

    #[test]
    fn missing_explicit_file_is_an_error_with_its_path() {
        let tmp = tempfile::tempdir().unwrap();
        let path = tmp.path().join("nope.toml");
        let err = load(Some(&path), &no_user_file(), &Overrides::default()).unwrap_err();
        assert!(matches!(err, ConfigError::Missing { .. }), "{err:?}");
        let msg = err.to_string();
        assert!(msg.contains(&path.display().to_string()), "{msg}");
        assert!(msg.contains("does not exist"), "{msg}");
    }

    #[test]
    fn directory_as_config_is_an_error_with_its_path() {
        let tmp = tempfile::tempdir().unwrap();
        for loaded in [
            load(Some(tmp.path()), &no_user_file(), &Overrides::default()),
            load(None, tmp.path(), &Overrides::default()),
        ] {
            let msg = loaded.unwrap_err().to_string();
            assert!(msg.contains(&tmp.path().display().to_string()), "{msg}");
            assert!(msg.contains("is a directory"), "{msg}");
        }
    }

    #[test]
    fn unreadable_file_is_reported_once_with_its_path_and_cause() {
        // A symlink loop cannot be read even by root (a mode-000 file can).
        let tmp = tempfile::tempdir().unwrap();
        let path = tmp.path().join("loop.toml");
        std::os::unix::fs::symlink(&path, &path).unwrap();
        for loaded in [
            load(Some(&path), &no_user_file(), &Overrides::default()),
            load(None, &path, &Overrides::default()),
        ] {
            let err = loaded.unwrap_err();
            assert!(matches!(err, ConfigError::Read { .. }), "{err:?}");
            // main prints the error with its chain; the cause must appear once, not twice.
            let shown = format!("{:#}", anyhow::Error::new(err));
            assert!(shown.contains(&path.display().to_string()), "{shown}");
            assert_eq!(
                shown.matches("symbolic links").count(),
                1,
                "the cause once: {shown}"
            );
        }
    }

    #[test]
    fn huge_files_and_endless_devices_are_refused_unread() {
        let tmp = tempfile::tempdir().unwrap();
        let big = tmp.path().join("big.toml");
        let mut text = "# padding\n".repeat((MAX_FILE_BYTES as usize) / 10 + 1);
        text.push_str("[train]\nepochs = 3\n");
        fs::write(&big, &text).unwrap();
        for path in [big.as_path(), Path::new("/dev/zero")] {
            let err = load(Some(path), &no_user_file(), &Overrides::default()).unwrap_err();
            assert!(matches!(err, ConfigError::TooLarge { .. }), "{err:?}");
            let msg = err.to_string();
            assert!(msg.contains(&path.display().to_string()), "{msg}");
            assert!(msg.contains("is larger than 1048576 bytes"), "{msg}");
        }
        // Just under the limit is still read.
        text.truncate(MAX_FILE_BYTES as usize - 20);
        text.push_str("\n[train]\nepochs = 3\n");
        assert_eq!(load_text(&text, &Overrides::default()).unwrap().epochs, 3);
    }

    #[test]
    fn quoted_values_and_keys_stay_on_one_line() {
        let msg = error("[run]\nsample_every = '''multi\nline'''\n");
        assert!(
            msg.contains("run.sample_every = '''multi\\nline'''"),
            "{msg}"
        );
        assert!(!msg.contains('\n'), "{msg:?}");
        let msg = error("[train]\n\"ep\\nochs\\u001b[31m\" = 3\n");
        assert!(
            msg.contains("train.ep\\nochs\\u{1b}[31m is not a known key"),
            "{msg}"
        );
        assert!(!msg.contains('\n') && !msg.contains('\u{1b}'), "{msg:?}");
        let msg = error("[ui]\ntheme = \"tab\there\"\n");
        assert!(msg.contains(r#"ui.theme = "tab\there""#), "{msg}");
    }

    #[test]
    fn non_utf8_file_is_an_error_with_path_and_line() {
        let tmp = tempfile::tempdir().unwrap();
        let path = tmp.path().join("latin1.toml");
        fs::write(&path, b"[ui]\ntheme = \"caf\xe9\"\n").unwrap();
        let msg = load(Some(&path), &no_user_file(), &Overrides::default())
            .unwrap_err()
            .to_string();
        assert!(msg.contains("latin1.toml:2: "), "{msg}");
        assert!(msg.contains("UTF-8"), "{msg}");
    }

    #[test]
    fn syntax_errors_name_line_and_key() {
        assert_error(
            "[train]\nepochs = 5\nbatch_size = \n",
            3,
            &["train.batch_size", "syntax"],
        );
        assert_error("[train]\nepochs = 5 5\n", 2, &["train.epochs", "syntax"]);
        // No key to name: the line itself is quoted.
        assert_error("[train]\nepochs = 1\n[ui\n", 3, &["`[ui`", "syntax"]);
        assert_error("[train]\nepochs = 1\nepochs = 2\n", 3, &["`epochs = 2`"]);
    }

    #[test]
    fn unknown_keys_in_each_table_name_line_key_and_known_keys() {
        assert_error(
            "[train]\nepochs = 5\nepoch = 5\n",
            3,
            &["train.epoch", "epochs, batch_size"],
        );
        assert_error(
            "[data]\npath = \"x\"\n",
            2,
            &["data.path", "keys of [data] are: dir"],
        );
        assert_error(
            "\n[run]\nlog_every = 1\nsamples = 3\n",
            4,
            &["run.samples", "sample_count"],
        );
        assert_error("[ui]\ncolour = \"red\"\n", 2, &["ui.colour", "theme, fps"]);
        // Dotted keys and inline tables are the same tables.
        assert_error("train.bogus = 1\n", 1, &["train.bogus"]);
        assert_error("ui = { fps = 3, zoom = 2 }\n", 1, &["ui.zoom"]);
    }

    #[test]
    fn unknown_tables_and_top_level_keys_name_the_known_tables() {
        assert_error(
            "[ui]\nfps = 5\n\n[model]\nx = 1\n",
            4,
            &["[model]", "[train], [data]"],
        );
        assert_error(
            "epochs = 5\n",
            1,
            &["epochs is outside any table", "under [train]"],
        );
        assert_error(
            "\nzoom = 5\n",
            2,
            &["zoom is outside any table", "[train], [data]"],
        );
    }

    #[test]
    fn wrong_types_name_line_key_value_and_the_type_wanted() {
        assert_error(
            "[train]\nepochs = \"ten\"\n",
            2,
            &[
                "train.epochs = \"ten\"",
                "wrong type",
                "an integer in 1..=10000",
            ],
        );
        assert_error("[train]\nseed = 1.5\n", 2, &["train.seed = 1.5", "integer"]);
        assert_error("[train]\nlr = \"fast\"\n", 2, &["train.lr", "number"]);
        assert_error("[data]\ndir = 3\n", 2, &["data.dir = 3", "string"]);
        assert_error("[ui]\ntheme = true\n", 2, &["ui.theme = true", "string"]);
        assert_error("train = 5\n", 1, &["train = 5", "a table"]);
    }

    #[test]
    fn each_range_is_checked_with_line_key_value_and_range() {
        let cases = [
            ("train", "epochs", "0", "1..=10000"),
            ("train", "epochs", "10001", "1..=10000"),
            ("train", "batch_size", "0", "1..=4096"),
            ("train", "batch_size", "4097", "1..=4096"),
            ("train", "seed", "-1", "0..=9223372036854775807"),
            (
                "train",
                "seed",
                "18446744073709551615",
                "0..=9223372036854775807",
            ),
            ("train", "max_steps", "-5", "0..="),
            ("train", "lr", "0", "> 0 and <= 1"),
            ("train", "lr", "-0.1", "> 0 and <= 1"),
            ("train", "lr", "1.5", "> 0 and <= 1"),
            ("train", "lr", "nan", "finite"),
            ("train", "lr", "inf", "finite"),
            ("run", "log_every", "0", "1..="),
            ("run", "sample_every", "0", "1..="),
            ("run", "sample_count", "0", "1..=256"),
            ("run", "sample_count", "257", "1..=256"),
            ("ui", "fps", "0", "1..=60"),
            ("ui", "fps", "61", "1..=60"),
        ];
        for (table, key, value, range) in cases {
            // A leading comment puts the value on line 3.
            let text = format!("# test\n[{table}]\n{key} = {value}\n");
            let want = format!("{table}.{key} = {value} is out of range");
            assert_error(&text, 3, &[&want, range]);
        }
    }

    #[test]
    fn range_edges_are_accepted() {
        let text = "[train]\nepochs = 10000\nbatch_size = 4096\nseed = 9223372036854775807\n\
                    lr = 1\n[run]\nsample_count = 256\nlog_every = 1\n[ui]\nfps = 60\n";
        let config = load_text(text, &Overrides::default()).unwrap();
        assert_eq!(config.epochs, 10_000);
        assert_eq!(config.batch_size, 4096);
        assert_eq!(config.seed, i64::MAX as u64);
        assert_eq!(config.lr, 1.0);
        assert_eq!(config.sample_count, 256);
        assert_eq!(config.log_every, 1);
        assert_eq!(config.fps, 60);
    }

    #[test]
    fn unknown_preset_lists_the_known_ones() {
        assert_error(
            "[train]\npreset = \"dcgan9\"\n",
            2,
            &[
                "train.preset = \"dcgan9\"",
                "not a known preset",
                "reference",
            ],
        );
    }

    #[test]
    fn theme_must_be_a_plain_name() {
        assert_error(
            "[ui]\ntheme = \"../etc\"\n",
            2,
            &["ui.theme = \"../etc\"", "name"],
        );
        assert_error("[ui]\ntheme = \"\"\n", 2, &["ui.theme = \"\""]);
        let config = load_text("[ui]\ntheme = \"solar-Dark_2\"\n", &Overrides::default());
        assert_eq!(config.unwrap().theme, "solar-Dark_2");
    }

    #[test]
    fn file_values_beat_defaults_and_flags_beat_the_file() {
        let text = "[train]\nepochs = 3\nbatch_size = 32\nseed = 11\nmax_steps = 100\nlr = 0.001\n\
                    [data]\ndir = \"digits\"\n[run]\ndir = \"out\"\nlog_every = 5\n\
                    sample_every = 50\nsample_count = 16\nkeep_checkpoints = 2\n\
                    on_write_error = \"stop\"\neval_count = 300\n[ui]\ntheme = \"mono\"\nfps = 30\n";
        let (tmp, path) = write_config(text);
        let from_file = load(Some(&path), &no_user_file(), &Overrides::default())
            .unwrap()
            .config;
        let dir = std::path::absolute(tmp.path()).unwrap();
        let want = Config {
            preset: Preset::Cgan,
            epochs: 3,
            batch_size: 32,
            seed: 11,
            max_steps: Some(100),
            lr: 0.001,
            lr_schedule: Schedule::default(),
            data_dir: Some(dir.join("digits")),
            run_dir: Some(dir.join("out")),
            log_every: 5,
            sample_every: 50,
            sample_count: 16,
            theme: "mono".to_string(),
            fps: 30,
            keep_checkpoints: 2,
            on_write_error: OnWriteError::Stop,
            eval_count: 300,
        };
        assert_eq!(from_file, want);

        let overrides = Overrides {
            preset: Some(Preset::Reference),
            epochs: Some(4),
            batch_size: Some(8),
            seed: Some(12),
            max_steps: Some(0),
            lr: Some(0.5),
            data_dir: Some(PathBuf::from("/abs/data")),
            run_dir: Some(PathBuf::new()),
            theme: Some("night".to_string()),
        };
        let flagged = load(Some(&path), &no_user_file(), &overrides)
            .unwrap()
            .config;
        let want = Config {
            preset: Preset::Reference,
            epochs: 4,
            batch_size: 8,
            seed: 12,
            max_steps: None,
            lr: 0.5,
            data_dir: Some(PathBuf::from("/abs/data")),
            run_dir: None,
            theme: "night".to_string(),
            ..want
        };
        assert_eq!(flagged, want);
    }

    #[test]
    fn schedule_keys_are_read_and_checked() {
        let config = load_text(
            "[train]\nlr_schedule = \"step\"\nlr_step_every = 938\nlr_gamma = 0.1\nlr_final = 0.25\n",
            &Overrides::default(),
        )
        .unwrap();
        assert_eq!(
            config.lr_schedule,
            Schedule {
                kind: ScheduleKind::Step,
                every: 938,
                gamma: 0.1,
                final_factor: 0.25,
            }
        );
        assert_error(
            "[train]\nlr_schedule = \"exponential\"\n",
            2,
            &[
                "train.lr_schedule = \"exponential\"",
                "not a known learning-rate schedule",
                "constant, step, cosine, linear",
            ],
        );
        assert_error(
            "[train]\nlr_step_every = 0\n",
            2,
            &["train.lr_step_every = 0", "out of range"],
        );
        assert_error(
            "[train]\n\nlr_gamma = 1.5\n",
            3,
            &["train.lr_gamma = 1.5", "out of range", "<= 1"],
        );
        assert_error(
            "[train]\nlr_final = -0.1\n",
            2,
            &["train.lr_final = -0.1", "out of range", ">= 0 and <= 1"],
        );
        assert_error(
            "[train]\nlr_schedule = 3\n",
            2,
            &[
                "train.lr_schedule = 3",
                "wrong type",
                "a string naming a schedule",
            ],
        );
    }

    #[test]
    fn lr_defaults_to_the_presets_own() {
        let config = load_text("[train]\nepochs = 2\n", &Overrides::default()).unwrap();
        assert_eq!(config.lr, Preset::Cgan.default_lr());
        let config = load_text("[train]\npreset = \"reference\"\n", &Overrides::default()).unwrap();
        assert_eq!(config.lr, 2e-4);
        let config = load_text("[train]\nlr = 0.01\n", &Overrides::default()).unwrap();
        assert_eq!(config.lr, 0.01);
        let overrides = Overrides {
            lr: Some(0.02),
            ..Overrides::default()
        };
        assert_eq!(
            load_text("[train]\nlr = 0.01\n", &overrides).unwrap().lr,
            0.02
        );
    }

    #[test]
    fn relative_dirs_start_at_the_files_folder_and_empty_means_built_in() {
        let tmp = tempfile::tempdir().unwrap();
        let nested = tmp.path().join("conf");
        fs::create_dir(&nested).unwrap();
        let path = nested.join("gan.toml");
        fs::write(
            &path,
            "[data]\ndir = \"../mnist\"\n[run]\ndir = \"/abs/run\"\n",
        )
        .unwrap();
        let config = load(Some(&path), &no_user_file(), &Overrides::default())
            .unwrap()
            .config;
        let want = std::path::absolute(&nested).unwrap().join("../mnist");
        assert_eq!(config.data_dir, Some(want));
        assert_eq!(config.run_dir, Some(PathBuf::from("/abs/run")));

        let config = load_text("[data]\ndir = \"\"\n", &Overrides::default()).unwrap();
        assert_eq!(config.data_dir, None);
    }

    #[test]
    fn relative_flag_dirs_start_at_the_current_folder() {
        let overrides = Overrides {
            data_dir: Some(PathBuf::from("digits")),
            ..Overrides::default()
        };
        let config = load(None, &no_user_file(), &overrides).unwrap().config;
        let want = std::env::current_dir().unwrap().join("digits");
        assert_eq!(config.data_dir, Some(want));
    }

    #[test]
    fn max_steps_zero_is_no_limit() {
        let config = load_text("[train]\nmax_steps = 0\n", &Overrides::default()).unwrap();
        assert_eq!(config.max_steps, None);
        let config = load_text("[train]\nmax_steps = 7\n", &Overrides::default()).unwrap();
        assert_eq!(config.max_steps, Some(7));
        let overrides = Overrides {
            max_steps: Some(3),
            ..Overrides::default()
        };
        let config = load(None, &no_user_file(), &overrides).unwrap().config;
        assert_eq!(config.max_steps, Some(3));
    }

    #[test]
    fn flag_values_are_range_checked_and_name_the_flag() {
        let cases = [
            (
                Overrides {
                    batch_size: Some(0),
                    ..Overrides::default()
                },
                "--batch-size 0 is out of range (1..=4096)",
            ),
            (
                Overrides {
                    epochs: Some(10_001),
                    ..Overrides::default()
                },
                "--epochs 10001 is out of range (1..=10000)",
            ),
            (
                Overrides {
                    seed: Some(u64::MAX),
                    ..Overrides::default()
                },
                "--seed 18446744073709551615 is out of range (0..=9223372036854775807)",
            ),
            (
                Overrides {
                    lr: Some(0.0),
                    ..Overrides::default()
                },
                "--lr 0 is out of range",
            ),
            (
                Overrides {
                    lr: Some(f64::NAN),
                    ..Overrides::default()
                },
                "--lr NaN is out of range",
            ),
            (
                Overrides {
                    theme: Some("my theme".to_string()),
                    ..Overrides::default()
                },
                "--theme my theme is not a valid name",
            ),
        ];
        for (overrides, want) in cases {
            let msg = flag_error(overrides);
            assert!(msg.contains(want), "want {want:?} in: {msg}");
        }
    }

    #[test]
    fn flag_errors_win_over_nothing_but_file_errors_come_first() {
        // A bad file is reported even when a flag would replace the bad value.
        let overrides = Overrides {
            epochs: Some(5),
            ..Overrides::default()
        };
        let msg = load_text("[train]\nepochs = 0\n", &overrides)
            .unwrap_err()
            .to_string();
        assert!(msg.contains("train.epochs = 0"), "{msg}");
    }

    #[test]
    fn to_toml_loads_back_equal() {
        let tmp = tempfile::tempdir().unwrap();
        let abs = std::path::absolute(tmp.path()).unwrap();
        // Every field away from its default, so a key missing from `KEYS` would be lost.
        let config = Config {
            preset: Preset::Tuned,
            epochs: 3,
            batch_size: 17,
            seed: i64::MAX as u64,
            max_steps: Some(123),
            lr: 0.1 + 0.2,
            lr_schedule: Schedule {
                kind: ScheduleKind::Cosine,
                every: 77,
                gamma: 0.3,
                final_factor: 0.05,
            },
            data_dir: Some(abs.join("my \"data\" dir")),
            run_dir: Some(abs.join("runs").join("r1")),
            log_every: 2,
            sample_every: 9,
            sample_count: 25,
            theme: "night".to_string(),
            fps: 7,
            keep_checkpoints: 0,
            on_write_error: OnWriteError::Stop,
            eval_count: 0,
        };
        for config in [config, Config::default()] {
            let text = config.to_toml();
            let path = tmp.path().join("saved.toml");
            fs::write(&path, &text).unwrap();
            let back = load(Some(&path), &no_user_file(), &Overrides::default())
                .unwrap()
                .config;
            assert_eq!(back, config, "{text}");
        }
    }

    #[test]
    fn to_toml_writes_every_key_with_none_as_zero_and_empty() {
        let text = Config::default().to_toml();
        for key in KEYS {
            assert!(
                text.contains(&format!("\n{} = ", key.name())),
                "no {}.{} in\n{text}",
                key.table(),
                key.name()
            );
        }
        assert!(text.contains("\nmax_steps = 0 "), "{text}");
        assert!(text.contains("\ndir = \"\" "), "{text}");
    }

    #[test]
    fn source_display_names_the_file() {
        let path = PathBuf::from("/x/config.toml");
        assert!(
            ConfigSource::Explicit(path.clone())
                .to_string()
                .contains("/x/config.toml")
        );
        assert!(
            ConfigSource::UserFile(path)
                .to_string()
                .contains("/x/config.toml")
        );
        assert!(ConfigSource::Defaults.to_string().contains("defaults"));
    }
}
