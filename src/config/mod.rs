//! Settings: defaults, then a config file (every key optional), then command-line flags, resolved
//! into one validated runtime `Config`.
//!
//! Each key is declared once, as a row in `keys.rs`: where it lives in the file, the flag that
//! overrides it (name, value placeholder, help), the values it accepts, its help, how a resolved
//! `Config` writes it back and how a checked value goes into one. The file layer (`file.rs`),
//! the command line's flags (`flag_args`, their parsing and `--help`), `Overrides`,
//! `Config::to_toml`, `config.example.toml` and the README's table follow from the rows. Adding a
//! key means a row there (and in `KEYS`) and a field with its default in `Config`.

use std::fmt::{self, Write as _};
use std::fs;
use std::io;
use std::path::{Path, PathBuf};

use crate::train::schedule::{Schedule, ScheduleKind};

mod file;
mod keys;
#[cfg(test)]
mod tests;

/// The recipes; the registry (`train::presets`) says what each one is.
pub use crate::train::gan::Preset;

use file::FileLayer;
use keys::{KEYS, RUN_DIR, TABLES};
pub use keys::{example_file, parse_preset, settings_table};

/// The resolved, validated settings of one run.
#[derive(Debug, Clone, PartialEq)]
pub struct Config {
    pub preset: Preset,
    pub epochs: u32,
    pub batch_size: usize,
    pub seed: u64,
    /// Stop after this many steps in all, if set.
    pub max_steps: Option<u64>,
    /// End the run after this many epoch scorings in a row without a better Fréchet distance;
    /// 0 never does.
    pub early_stop: u32,
    /// Threads a training step may use; 0: the cores this process may use (see `nn::threads`).
    pub threads: usize,
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
    /// Listen on the run folder's `control.sock` for viewers (`gan-tui watch`).
    pub control: bool,
    /// A fork's parent: the run folder it was forked from (`--fork`), and the parent's step it
    /// continued from (`forked_at_step`); `None` for a run that is not a fork.
    pub forked_from: Option<PathBuf>,
    pub forked_at_step: u64,
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
            early_stop: 0,
            threads: 0,
            lr: Preset::Cgan.default_lr(),
            lr_schedule: Schedule {
                kind: Preset::Cgan.default_schedule(),
                ..Schedule::default()
            },
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
            control: true,
            forked_from: None,
            forked_at_step: 0,
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

/// Values from the command line, each beating the config file and the defaults: the flags of
/// `flag_args` as the command line parsed them, checked against their keys when a config is
/// resolved.
///
/// `--max-steps 0` lifts any limit the file sets; a relative folder starts at the current folder.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Overrides {
    flags: clap::ArgMatches,
}

impl Overrides {
    /// The key flags among `matches` (a command line built with `flag_args`).
    pub fn from_matches(matches: clap::ArgMatches) -> Self {
        Overrides { flags: matches }
    }

    /// `args` (flags only, no program name) parsed as the command line parses them.
    pub fn parse<I, T>(args: I) -> Result<Self, clap::Error>
    where
        I: IntoIterator<Item = T>,
        T: Into<std::ffi::OsString> + Clone,
    {
        clap::Command::new("gan-tui")
            .no_binary_name(true)
            .args(flag_args())
            .try_get_matches_from(args)
            .map(Self::from_matches)
    }

    /// The run folder `--run-dir` names, as given.
    pub fn run_dir(&self) -> Option<&Path> {
        RUN_DIR.given(&self.flags).map(PathBuf::as_path)
    }
}

/// The command-line flag of every key that has one, in the rows' order.
pub fn flag_args() -> impl Iterator<Item = clap::Arg> {
    KEYS.iter().filter_map(|key| key.flag_arg())
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
    let mut own = PresetOwn::default();
    if let Some(path) = source.path() {
        let file = FileLayer::read(path)?;
        file.apply(&mut config, &mut own)?;
    }
    apply_overrides(&mut config, &mut own, overrides)?;
    own.settle(&mut config);
    Ok(Loaded { config, source })
}

/// Resolves a config from `text`, the saved config of a run (a checkpoint's or a run folder's
/// `config.toml`), with `overrides` on top. `origin` names the text's source in errors, and its
/// folder anchors relative paths.
pub fn from_text(origin: &Path, text: &str, overrides: &Overrides) -> Result<Config, ConfigError> {
    let layer = FileLayer::parse(origin, text.to_string())?;
    let mut config = Config::default();
    let mut own = PresetOwn::default();
    layer.apply(&mut config, &mut own)?;
    apply_overrides(&mut config, &mut own, overrides)?;
    own.settle(&mut config);
    Ok(config)
}

fn apply_overrides(
    config: &mut Config,
    own: &mut PresetOwn,
    overrides: &Overrides,
) -> Result<(), ConfigError> {
    for key in KEYS {
        key.read_flag(&overrides.flags, config, own)?;
    }
    Ok(())
}

/// The settings each preset has its own default for, as the layers chose them (`None`: no layer
/// did).
#[derive(Debug, Default)]
pub(super) struct PresetOwn {
    pub(super) lr: Option<f64>,
    pub(super) schedule: Option<ScheduleKind>,
}

impl PresetOwn {
    /// Puts the chosen values, or else the preset's own, into `config`: the preset's apply only
    /// when no layer chose a value, whichever layer chose the preset.
    fn settle(self, config: &mut Config) {
        config.lr = self.lr.unwrap_or_else(|| config.preset.default_lr());
        config.lr_schedule.kind = self
            .schedule
            .unwrap_or_else(|| config.preset.default_schedule());
    }
}

/// `max_steps = 0` means no limit.
pub(super) fn steps_limit(n: u64) -> Option<u64> {
    (n > 0).then_some(n)
}
