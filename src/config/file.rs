//! The config file as written: parsed with every value's place kept, checked against the key
//! rows, and applied over the defaults; its errors name the file, the line and the key.

use std::ops::Range;
use std::path::{Path, PathBuf};

use serde::Deserialize;
use toml::Spanned;
use toml::de::{DeTable, DeValue};

use crate::files::text_file::{self, TextFileError, line_at};

use super::keys::*;
use super::{Config, ConfigError, Origin, steps_limit};

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
pub(super) struct FileLayer {
    path: PathBuf,
    text: String,
    base: PathBuf,
    values: FileConfig,
}

impl FileLayer {
    pub(super) fn read(path: &Path) -> Result<FileLayer, ConfigError> {
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

    pub(super) fn parse(path: &Path, text: String) -> Result<FileLayer, ConfigError> {
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
    pub(super) fn apply(
        &self,
        config: &mut Config,
        lr: &mut Option<f64>,
    ) -> Result<(), ConfigError> {
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
