//! The config file as written: parsed with every value's place kept, checked against the key
//! rows, and applied over the defaults; its errors name the file, the line and the key.

use std::ops::Range;
use std::path::{Path, PathBuf};

use toml::Spanned;
use toml::de::{DeTable, DeValue};

use crate::files::text_file::{self, TextFileError, line_at};

use super::keys::*;
use super::{Config, ConfigError, Origin, PresetOwn};

/// A parsed config file with what its messages need: its path, its text (to quote values and
/// count lines) and the folder its relative paths start from.
pub(super) struct FileLayer {
    path: PathBuf,
    text: String,
    base: PathBuf,
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
        let layer = FileLayer {
            path: path.to_path_buf(),
            base: path.parent().map(Path::to_path_buf).unwrap_or_default(),
            text,
        };
        // The loose parse finds syntax errors and, for any of them, the key at its span.
        let (tree, syntax_errors) = DeTable::parse_recoverable(&layer.text);
        if let Some(e) = syntax_errors.first() {
            return Err(layer.syntax_error(tree.get_ref(), e));
        }
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

    /// Copies every key the file sets into `config`; a set `lr` or `lr_schedule` goes to `own`,
    /// for `load` to weigh against the preset's own.
    ///
    /// The file is read in its own order, and a key, table or type that is wrong anywhere is
    /// reported before any value out of its range, which is reported in the order of the key rows.
    pub(super) fn apply(
        &self,
        config: &mut Config,
        own: &mut PresetOwn,
    ) -> Result<(), ConfigError> {
        let tree = match DeTable::parse(&self.text) {
            Ok(tree) => tree,
            Err(e) => return Err(self.syntax_error(&DeTable::default(), &e)),
        };
        let mut rejected: Vec<(usize, ConfigError)> = Vec::new();
        for (name, value) in tree.get_ref().iter() {
            let table = name.get_ref().as_ref();
            let line = self.line(name.span().start);
            let entries = match value.get_ref() {
                DeValue::Table(entries) if TABLES.contains(&table) => entries,
                DeValue::Table(_) => {
                    return Err(ConfigError::UnknownTable {
                        path: self.path.clone(),
                        line,
                        name: printable(table),
                        known: known_tables(),
                    });
                }
                _ if TABLES.contains(&table) => {
                    return Err(ConfigError::WrongType {
                        path: self.path.clone(),
                        line: self.line(value.span().start),
                        key: printable(table),
                        value: self.quote(value.span()),
                        expected: format!("a table ([{table}] with keys {})", known_keys(table)),
                    });
                }
                _ => {
                    return Err(ConfigError::TopLevelKey {
                        path: self.path.clone(),
                        line,
                        key: printable(table),
                        hint: match KEYS.iter().find(|k| k.name() == table) {
                            Some(k) => format!("put it under [{}]", k.table()),
                            None => format!("keys go in the tables {}", known_tables()),
                        },
                    });
                }
            };
            for (key, value) in entries.iter() {
                let name = key.get_ref().as_ref();
                let Some((row, setting)) = KEYS
                    .iter()
                    .enumerate()
                    .find(|(_, k)| k.table() == table && k.name() == name)
                else {
                    return Err(ConfigError::UnknownKey {
                        path: self.path.clone(),
                        line: self.line(key.span().start),
                        key: format!("{table}.{}", printable(name)),
                        table: table.to_string(),
                        known: known_keys(table),
                    });
                };
                let origin = || self.origin(*setting, value);
                let raw = raw_value(value.get_ref());
                match setting.read(&raw, &self.base, &origin, config, own) {
                    Ok(()) => {}
                    Err(Refusal::Rejected(e)) => rejected.push((row, e)),
                    Err(Refusal::WrongType) => {
                        return Err(ConfigError::WrongType {
                            path: self.path.clone(),
                            line: self.line(value.span().start),
                            key: format!("{table}.{name}"),
                            value: self.quote(value.span()),
                            expected: setting.expected(),
                        });
                    }
                    Err(Refusal::Unreadable(message)) => {
                        return Err(ConfigError::Invalid {
                            path: self.path.clone(),
                            line: self.line(value.span().start),
                            place: format!("{table}.{name}"),
                            message: message.to_string(),
                        });
                    }
                }
            }
        }
        match rejected.into_iter().min_by_key(|(row, _)| *row) {
            Some((_, e)) => Err(e),
            None => Ok(()),
        }
    }
}

/// What a key is shown of a file's value.
fn raw_value<'a>(value: &'a DeValue<'_>) -> RawValue<'a> {
    match value {
        DeValue::Integer(i) => {
            let (text, radix) = (i.as_str(), i.radix());
            if let Ok(v) = i64::from_str_radix(text, radix) {
                RawValue::Integer(v)
            } else if i128::from_str_radix(text, radix).is_ok()
                || u128::from_str_radix(text, radix).is_ok()
            {
                RawValue::HugeInteger {
                    fits_u64: u64::from_str_radix(text, radix).is_ok(),
                }
            } else {
                RawValue::IntegerOverflow
            }
        }
        DeValue::Float(f) => match f.as_str().parse::<f64>() {
            Ok(v) if v.is_infinite() && !f.as_str().contains("inf") => RawValue::FloatOverflow,
            Ok(v) => RawValue::Float(v),
            Err(_) => RawValue::FloatOverflow,
        },
        DeValue::String(text) => RawValue::Text(text.as_ref()),
        DeValue::Boolean(b) => RawValue::Bool(*b),
        _ => RawValue::Other,
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
