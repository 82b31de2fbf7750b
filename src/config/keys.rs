//! The settings, one row each: where a key lives in the file, the flag that overrides it, the
//! values it accepts, its help text and how a resolved `Config` writes it back. The file layer,
//! the command line's flags (their parsing and `--help`), the overrides, `Config::to_toml`,
//! `config.example.toml` and the README's settings table all follow from these rows.

use std::fmt;
use std::path::{Path, PathBuf};

use clap::builder::ValueParser;
use clap::{Arg, ArgMatches};

use crate::train::schedule::ScheduleKind;

use super::{Config, ConfigError, OnWriteError, Origin, Preset, PresetOwn, steps_limit};

/// The tables of the file, in the order `to_toml` writes them.
pub(super) const TABLES: &[&str] = &["train", "data", "run", "ui"];

/// The most bytes read from a config file: `config.example.toml` is under 2 KiB.
pub(super) const MAX_FILE_BYTES: u64 = 1 << 20;

/// The preset a command-line value names, or the usage message listing them.
pub fn parse_preset(name: &str) -> Result<Preset, String> {
    Preset::from_name(name).ok_or_else(|| {
        format!(
            "unknown preset `{name}`; the presets are: {}",
            Preset::known_names()
        )
    })
}

/// The largest integer a TOML file can hold.
pub(super) const TOML_INT_MAX: u64 = i64::MAX as u64;

pub(super) const PRESET: Key<PresetName> = Key {
    table: "train",
    name: "preset",
    flag: Some(Flag {
        name: "--preset",
        value_name: "NAME",
        help: "Model recipe",
    }),
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
    flag: Some(Flag {
        name: "--epochs",
        value_name: "N",
        help: "Epochs to train",
    }),
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
    flag: Some(Flag {
        name: "--batch-size",
        value_name: "N",
        help: "Images per batch",
    }),
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
    flag: Some(Flag {
        name: "--seed",
        value_name: "N",
        help: "Seed for weights, noise and shuffling: the same seed gives the same run",
    }),
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
    flag: Some(Flag {
        name: "--max-steps",
        value_name: "N",
        help: "Stop after this many steps in all (0: no limit)",
    }),
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
pub(super) const EARLY_STOP: Key<Int> = Key {
    table: "train",
    name: "early_stop",
    flag: Some(Flag {
        name: "--early-stop",
        value_name: "N",
        help: "End the run after this many epoch scorings without a better Fréchet distance (0: off)",
    }),
    accepts: Int {
        min: 0,
        max: 1_000_000,
    },
    doc: "end the run after this many scorings without a better fcd; 0 = off",
    help: "end the run after this many epoch scorings in a row without a lower Fréchet distance than the best (`checkpoints/best.safetensors`); 0 = off; needs scoring (`run.eval_count` > 0)",
    default_shown: None,
    write: |c| c.early_stop.to_string(),
    set: |c, _, v| c.early_stop = narrow(v),
};
pub(super) const THREADS: Key<Int> = Key {
    table: "train",
    name: "threads",
    flag: Some(Flag {
        name: "--threads",
        value_name: "N",
        help: "Threads a training step may use (0: the cores this process may use)",
    }),
    accepts: Int { min: 0, max: 1024 },
    doc: "threads a step may use; 0 = the cores this process may use",
    help: "threads a training step may use; 0 = the cores this process may use, falling back to one thread while more do not pay (another program busy on a core)",
    default_shown: None,
    write: |c| c.threads.to_string(),
    set: |c, _, v| c.threads = narrow(v),
};
pub(super) const LR: Key<Positive> = Key {
    table: "train",
    name: "lr",
    flag: Some(Flag {
        name: "--lr",
        value_name: "RATE",
        help: "Learning rate of both optimisers",
    }),
    accepts: Positive { max: 1.0 },
    doc: "learning rate; leave it out for the preset's own",
    help: "learning rate of both optimisers (`cgan` gives G four times it and D a quarter); absent: the preset's own, 0.0004 for `cgan`, 0.0001 for `wgan-gp`, 0.0002 for the others",
    default_shown: Some("the preset's"),
    write: |c| toml::Value::Float(c.lr).to_string(),
    set: |_, own, v| own.lr = Some(v),
};
pub(super) const LR_SCHEDULE: Key<ScheduleName> = Key {
    table: "train",
    name: "lr_schedule",
    flag: Some(Flag {
        name: "--lr-schedule",
        value_name: "NAME",
        help: "Learning-rate schedule: constant, step, cosine or linear",
    }),
    accepts: ScheduleName,
    doc: "learning-rate schedule: constant, step, cosine or linear",
    help: "how the rate changes: `step` multiplies it by `lr_gamma` every `lr_step_every` steps, `cosine` and `linear` take it to `lr_final` x `lr` at the last step (see Recipes); absent: the preset's own, `cosine` for `cgan`, `constant` for the others",
    default_shown: Some("the preset's"),
    write: |c| toml_string(c.lr_schedule.kind.name()),
    set: |_, own, v| own.schedule = Some(v),
};
pub(super) const LR_STEP_EVERY: Key<Int> = Key {
    table: "train",
    name: "lr_step_every",
    flag: None,
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
    flag: None,
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
    flag: None,
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
    flag: Some(Flag {
        name: "--data-dir",
        value_name: "DIR",
        help: "Folder with train-images-idx3-ubyte[.gz] and train-labels-idx1-ubyte[.gz] (default: the built-in MNIST)",
    }),
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
    flag: Some(Flag {
        name: "--run-dir",
        value_name: "DIR",
        help: "Run folder for config, metrics, samples and checkpoints (default: a new one under the runs dir)",
    }),
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
    flag: None,
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
    flag: None,
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
    flag: None,
    accepts: Int { min: 1, max: 256 },
    doc: "digits in the sample grid",
    help: "digits in the sample grid",
    default_shown: None,
    write: |c| c.sample_count.to_string(),
    set: |c, _, v| c.sample_count = narrow(v),
};
pub(super) const CONTROL: Key<Switch> = Key {
    table: "run",
    name: "control",
    flag: None,
    accepts: Switch,
    doc: "listen on control.sock in the run folder for `gan-tui watch`",
    help: "listen on `control.sock` in the run folder (owner-only), so `gan-tui watch` can follow and steer the run; `false`: no socket, `watch` replays the folder",
    default_shown: None,
    write: |c| c.control.to_string(),
    set: |c, _, v| c.control = v,
};
pub(super) const THEME: Key<Name> = Key {
    table: "ui",
    name: "theme",
    flag: Some(Flag {
        name: "--theme",
        value_name: "NAME",
        help: "Dashboard colour theme",
    }),
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
    flag: None,
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
    flag: None,
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
    flag: None,
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
    flag: None,
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
    flag: None,
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
    flag: None,
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
    &EARLY_STOP,
    &THREADS,
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
    &CONTROL,
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

/// One key: where it lives, the flag that overrides it (if any), what it accepts and how a
/// resolved `Config` writes it.
pub(super) struct Key<A: Accepts> {
    pub(super) table: &'static str,
    pub(super) name: &'static str,
    pub(super) flag: Option<Flag>,
    pub(super) accepts: A,
    /// The short help `to_toml` writes beside the value.
    pub(super) doc: &'static str,
    /// The help in the README's table and `config.example.toml` (markdown-ish: `code`).
    pub(super) help: &'static str,
    /// The default as the documentation says it, when the value itself would mislead.
    pub(super) default_shown: Option<&'static str>,
    pub(super) write: fn(&Config) -> String,
    /// Puts a checked value into the config being resolved (or, for `lr` and `lr_schedule`,
    /// into what a layer chose, which `load` weighs against the preset's own).
    pub(super) set: fn(&mut Config, &mut PresetOwn, A::Value),
}

/// A key's command-line flag: its name, the placeholder `--help` shows for its value, and its
/// line in `--help`. How the value parses comes from the key's kind (`Accepts`).
pub(super) struct Flag {
    /// With its dashes: `--epochs`.
    pub(super) name: &'static str,
    pub(super) value_name: &'static str,
    pub(super) help: &'static str,
}

/// What the file-facing code and the command line need of a key, whatever its kind of value.
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
    /// That flag as a clap argument: name, value placeholder, help, and the parser of the key's
    /// kind (a value that does not parse is a usage error).
    fn flag_arg(&self) -> Option<Arg>;
    /// Checks the value `flags` holds for the key's flag, if the command line gave one, and puts
    /// it into `config` (or `own`).
    fn read_flag(
        &self,
        flags: &ArgMatches,
        config: &mut Config,
        own: &mut PresetOwn,
    ) -> Result<(), ConfigError>;
    /// Checks a value from a file and puts it into `config` (or `own`). `origin` says where it
    /// came from, `base` is the folder relative paths start at.
    fn read(
        &self,
        raw: &RawValue,
        base: &Path,
        origin: &dyn Fn() -> Origin,
        config: &mut Config,
        own: &mut PresetOwn,
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
        self.flag.as_ref().map(|f| f.name)
    }
    fn flag_arg(&self) -> Option<Arg> {
        let flag = self.flag.as_ref()?;
        Some(
            Arg::new(flag_id(flag.name))
                .long(flag_id(flag.name))
                .value_name(flag.value_name)
                .help(flag.help)
                .value_parser(A::flag_parser())
                .allow_negative_numbers(A::NUMERIC),
        )
    }
    fn read_flag(
        &self,
        flags: &ArgMatches,
        config: &mut Config,
        own: &mut PresetOwn,
    ) -> Result<(), ConfigError> {
        if let Some(given) = self.given(flags) {
            (self.set)(config, own, A::from_flag(self, given)?);
        }
        Ok(())
    }
    fn read(
        &self,
        raw: &RawValue,
        base: &Path,
        origin: &dyn Fn() -> Origin,
        config: &mut Config,
        own: &mut PresetOwn,
    ) -> Result<(), Refusal> {
        let value = A::take(self, raw, base, origin)?;
        (self.set)(config, own, value);
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
    Bool(bool),
    /// A date, an array or a table: no key takes one.
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

/// A flag's clap id and long name: its name without the dashes.
fn flag_id(name: &'static str) -> &'static str {
    name.trim_start_matches('-')
}

impl<A: Accepts> Key<A> {
    pub(super) fn flag_origin(&self, text: impl fmt::Display) -> Origin {
        Origin::Flag {
            flag: self.flag.as_ref().map_or(self.name, |f| f.name),
            text: text.to_string(),
        }
    }

    /// The parsed value of the key's flag in `flags`, if the command line gave it.
    pub(super) fn given<'a>(&self, flags: &'a ArgMatches) -> Option<&'a A::FlagValue> {
        let flag = self.flag.as_ref()?;
        // The parser and this lookup both take the type from `A`, so the only error is an id
        // `flags` does not know: matches made without the key rows' flags hold none of them.
        flags.try_get_one(flag_id(flag.name)).ok().flatten()
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
    /// A flag's value once the command line has parsed it.
    type FlagValue: Clone + Send + Sync + 'static;
    /// Whether a flag's value may look like a negative number (so `--lr -1` is a value, refused
    /// by the range check, not a flag).
    const NUMERIC: bool;
    /// How the command line parses a flag of this kind.
    fn flag_parser() -> ValueParser;
    /// Checks a parsed flag value for `key`.
    fn from_flag(key: &Key<Self>, value: &Self::FlagValue) -> Result<Self::Value, ConfigError>;
}

/// The flag items of an `Accepts` impl whose flag value goes through the key's own `check`: the
/// parsed type, whether it may look negative, its parser, and how `check` takes it.
macro_rules! checked_flag {
    ($parsed:ty, $parser:expr, $numeric:expr, |$v:ident| $checked:expr) => {
        type FlagValue = $parsed;
        const NUMERIC: bool = $numeric;
        fn flag_parser() -> ValueParser {
            $parser
        }
        fn from_flag(key: &Key<Self>, $v: &$parsed) -> Result<Self::Value, ConfigError> {
            key.check($checked, || key.flag_origin($v))
        }
    };
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

/// `true` or `false`.
pub(super) struct Switch;

impl Accepts for Switch {
    type Value = bool;
    fn expected(&self) -> String {
        "a boolean (true or false)".to_string()
    }
    fn values(&self) -> String {
        "true, false".to_string()
    }
    fn take(
        _key: &Key<Self>,
        raw: &RawValue,
        _base: &Path,
        _origin: &dyn Fn() -> Origin,
    ) -> Result<Self::Value, Refusal> {
        match *raw {
            RawValue::Bool(b) => Ok(b),
            _ => Err(Refusal::WrongType),
        }
    }
    type FlagValue = bool;
    const NUMERIC: bool = false;
    fn flag_parser() -> ValueParser {
        clap::value_parser!(bool)
    }
    fn from_flag(_key: &Key<Self>, value: &bool) -> Result<bool, ConfigError> {
        Ok(*value)
    }
}

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
    checked_flag!(u64, clap::value_parser!(u64).into(), true, |v| i128::from(
        *v
    ));
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
    checked_flag!(f64, clap::value_parser!(f64).into(), true, |v| *v);
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
    checked_flag!(f64, clap::value_parser!(f64).into(), true, |v| *v);
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
    checked_flag!(String, ValueParser::string(), false, |v| v.as_str());
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
    type FlagValue = Preset;
    const NUMERIC: bool = false;
    /// An unknown name is a usage error that lists the presets.
    fn flag_parser() -> ValueParser {
        ValueParser::new(parse_preset)
    }
    fn from_flag(_key: &Key<Self>, value: &Preset) -> Result<Preset, ConfigError> {
        Ok(*value)
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
    checked_flag!(String, ValueParser::string(), false, |v| v.as_str());
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
    checked_flag!(String, ValueParser::string(), false, |v| v.as_str());
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
    type FlagValue = PathBuf;
    const NUMERIC: bool = false;
    fn flag_parser() -> ValueParser {
        ValueParser::path_buf()
    }
    /// A relative folder starts at the current folder; an empty one is the built-in choice.
    fn from_flag(_key: &Key<Self>, value: &PathBuf) -> Result<Option<PathBuf>, ConfigError> {
        Key::<Dir>::resolve(value, Path::new(""))
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
