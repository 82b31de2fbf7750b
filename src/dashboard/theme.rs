//! Colour themes by meaning, loaded from TOML; the default one is compiled in.
//!
//! A theme file is a flat TOML table of styles (`loss_d = "lightred bold"`) plus the digit
//! drawing settings. Missing keys take the default theme's value (keys added later, such as
//! `score`, take the same file's nearest older key instead); a file with any bad key is
//! reported and replaced by the default as a whole, so a half-applied theme never shows.

use std::collections::BTreeMap;
use std::io;
use std::path::{Path, PathBuf};
use std::str::FromStr;

use ratatui::style::{Color, Modifier, Style};
use ratatui::text::Span;
use toml::Spanned;

use crate::files::text_file::{self, TextFileError};

/// The themes compiled into the binary, in cycling order; the first is the default.
const BUILTIN: &[(&str, &str)] = &[
    ("default", include_str!("../../themes/default.toml")),
    ("light", include_str!("../../themes/light.toml")),
    ("mono", include_str!("../../themes/mono.toml")),
    ("amber", include_str!("../../themes/amber.toml")),
];

/// Keys that are not styles.
const OTHER_KEYS: &[&str] = &["digit_ramp", "half_block_grey", "digit_invert"];

const MODIFIERS: &[(&str, Modifier)] = &[
    ("bold", Modifier::BOLD),
    ("dim", Modifier::DIM),
    ("italic", Modifier::ITALIC),
    ("underlined", Modifier::UNDERLINED),
    ("reversed", Modifier::REVERSED),
];

/// The most bytes read from a theme file; the shipped ones are under 1 KiB.
const MAX_FILE_BYTES: u64 = 1 << 16;

/// Longest ramp accepted; more shades than this cannot be told apart in a terminal cell anyway.
const MAX_RAMP: usize = 64;

/// Declares every style a theme names, once: its key (the field's name), what it colours, its
/// value in the built-in default theme (`themes/default.toml`, which a test keeps equal), and
/// for keys added after themes were first shipped, the key whose value it takes when a file
/// leaves it out, so an older theme keeps its own look instead of borrowing the default's.
/// From the list follow the `Theme` struct, `STYLE_KEYS`, `FALLBACKS`, the default theme's
/// styles and the lookup by key.
macro_rules! styles {
    ($($(#[doc = $doc:expr])* $key:ident: $default:expr $(, else $from:ident)?;)*) => {
        /// Styles named by what they mean on the dashboard, plus how digits are drawn.
        #[derive(Debug, Clone, PartialEq)]
        pub struct Theme {
            /// The name it was asked for by (`--theme NAME`).
            pub name: String,
            $($(#[doc = $doc])* pub $key: Style,)*
            /// Shading characters from background to full ink; never fewer than two.
            pub digit_ramp: Vec<char>,
            /// Half-block digits in grey levels (needs 256 colours) or as plain glyphs.
            pub half_block_grey: bool,
            /// Half-block grey digits as dark ink on a light ground.
            pub digit_invert: bool,
        }

        /// Keys whose value is a style.
        const STYLE_KEYS: &[&str] = &[$(stringify!($key)),*];

        /// Keys a file may leave out to take another key's value, and that key.
        const FALLBACKS: &[(&str, &str)] = &[$($((stringify!($key), stringify!($from)),)?)*];

        impl Theme {
            /// The values of `themes/default.toml`, spelled out so the default cannot fail to
            /// load; a test keeps the two equal.
            fn base() -> Theme {
                Theme {
                    name: "default".to_string(),
                    $($key: $default,)*
                    digit_ramp: " .:-=+*#%@".chars().collect(),
                    half_block_grey: true,
                    digit_invert: false,
                }
            }

            fn style_mut(&mut self, key: &str) -> Option<&mut Style> {
                match key {
                    $(stringify!($key) => Some(&mut self.$key),)*
                    _ => None,
                }
            }
        }
    };
}

styles! {
    /// Painted under the whole screen first.
    background: Style::new().fg(Color::Reset);
    /// Plain text.
    text: Style::new().fg(Color::Reset);
    /// What matters less: hints, separators, waiting messages.
    muted: Style::new().fg(Color::DarkGray);
    /// Panel titles and the preset's name.
    title: Style::new().fg(Color::LightCyan).add_modifier(Modifier::BOLD);
    border: Style::new().fg(Color::Gray);
    /// Key names in the help popup and the key hint.
    key: Style::new().fg(Color::Yellow).add_modifier(Modifier::BOLD);
    loss_d: Style::new().fg(Color::LightRed);
    loss_g: Style::new().fg(Color::LightGreen);
    d_real: Style::new().fg(Color::LightBlue);
    d_fake: Style::new().fg(Color::LightMagenta);
    /// ASCII-shaded digits.
    digit: Style::new().fg(Color::White);
    running: Style::new().fg(Color::Green).add_modifier(Modifier::BOLD);
    paused: Style::new()
        .fg(Color::Yellow)
        .add_modifier(Modifier::BOLD)
        .add_modifier(Modifier::REVERSED);
    warning: Style::new().fg(Color::Yellow);
    error: Style::new().fg(Color::LightRed).add_modifier(Modifier::BOLD);
    ok: Style::new().fg(Color::Green);
    /// The judge's score and its trend.
    score: Style::new().fg(Color::LightYellow), else title;
    /// The bar chart of the judge's class shares.
    bars: Style::new().fg(Color::Cyan), else digit;
}

/// What went wrong loading a theme; every message names the file (or built-in) and the key.
#[derive(Debug, thiserror::Error)]
pub enum ThemeError {
    #[error("cannot read theme file {path}: {source}; check that it exists and is readable")]
    Read { path: PathBuf, source: io::Error },
    #[error(
        "theme file {path} is larger than {limit} bytes; a theme is a short list of styles, so \
         check the file"
    )]
    TooLarge { path: PathBuf, limit: u64 },
    #[error("theme {path} line {line}: not UTF-8 text; save the file as UTF-8")]
    NotUtf8 { path: PathBuf, line: usize },
    #[error("theme {origin} line {line}: not valid TOML: {message}")]
    Toml {
        origin: String,
        line: usize,
        message: String,
    },
    #[error(
        "theme {origin} line {line}: unknown key `{key}`; known keys are {}",
        known_keys()
    )]
    UnknownKey {
        origin: String,
        line: usize,
        key: String,
    },
    #[error("theme {origin} line {line}: key `{key}` has bad value {value}: {reason}")]
    BadValue {
        origin: String,
        line: usize,
        key: String,
        value: String,
        reason: String,
    },
    #[error(
        "unknown theme `{name}`: no file {path} and no built-in theme of that name; built-in themes are {}",
        Theme::builtin_names().join(", ")
    )]
    NotFound { name: String, path: PathBuf },
    #[error(
        "bad theme name {name:?}: use only letters, digits, `-` and `_` (the theme is the file <themes dir>/NAME.toml)"
    )]
    BadName { name: String },
}

fn known_keys() -> String {
    STYLE_KEYS
        .iter()
        .chain(OTHER_KEYS)
        .copied()
        .collect::<Vec<_>>()
        .join(", ")
}

impl Default for Theme {
    /// The compiled-in default theme.
    fn default() -> Self {
        Theme::base()
    }
}

impl Theme {
    /// The names of the compiled-in themes, default first.
    pub fn builtin_names() -> &'static [&'static str] {
        const NAMES: &[&str] = &["default", "light", "mono", "amber"];
        NAMES
    }

    /// A compiled-in theme by name.
    pub fn builtin(name: &str) -> Option<Result<Theme, ThemeError>> {
        BUILTIN
            .iter()
            .find(|(n, _)| *n == name)
            .map(|(n, text)| Theme::parse(n, text, &format!("built-in `{n}`")))
    }

    /// Parses theme TOML over the default; `origin` names the source in error messages.
    pub fn parse(name: &str, text: &str, origin: &str) -> Result<Theme, ThemeError> {
        let table: BTreeMap<Spanned<String>, Spanned<toml::Value>> =
            toml::from_str(text).map_err(|e| ThemeError::Toml {
                origin: origin.to_string(),
                line: e.span().map_or(1, |s| line_of(text, s.start)),
                message: printable(e.message().trim()),
            })?;
        let mut theme = Theme {
            name: name.to_string(),
            ..Theme::base()
        };
        for (key, value) in &table {
            let line = line_of(text, value.span().start);
            let bad = |reason: String| ThemeError::BadValue {
                origin: origin.to_string(),
                line,
                key: printable(key.get_ref()),
                value: printable(&value.get_ref().to_string()),
                reason: printable(&reason),
            };
            match key.get_ref().as_str() {
                "digit_ramp" => theme.digit_ramp = parse_ramp(value.get_ref()).map_err(bad)?,
                "half_block_grey" => {
                    theme.half_block_grey = parse_bool(value.get_ref()).map_err(bad)?
                }
                "digit_invert" => theme.digit_invert = parse_bool(value.get_ref()).map_err(bad)?,
                other => match theme.style_mut(other) {
                    Some(slot) => *slot = parse_style_value(value.get_ref()).map_err(bad)?,
                    None => {
                        return Err(ThemeError::UnknownKey {
                            origin: origin.to_string(),
                            line: line_of(text, key.span().start),
                            key: printable(other),
                        });
                    }
                },
            }
        }
        for (key, from) in FALLBACKS {
            if !table.keys().any(|k| k.get_ref() == key) {
                let value = theme.style_mut(from).map(|s| *s);
                if let (Some(value), Some(slot)) = (value, theme.style_mut(key)) {
                    *slot = value;
                }
            }
        }
        Ok(theme)
    }

    /// Reads and parses one theme file; the theme is named after the file stem.
    pub fn from_file(path: &Path) -> Result<Theme, ThemeError> {
        let path_buf = path.to_path_buf();
        let text = text_file::read_bounded(path, MAX_FILE_BYTES).map_err(|e| match e {
            TextFileError::Read(source) => ThemeError::Read {
                path: path_buf,
                source,
            },
            TextFileError::TooLarge => ThemeError::TooLarge {
                path: path_buf,
                limit: MAX_FILE_BYTES,
            },
            TextFileError::NotUtf8 { line } => ThemeError::NotUtf8 {
                path: path_buf,
                line,
            },
        })?;
        let name = path
            .file_stem()
            .map(|s| s.to_string_lossy().into_owned())
            .unwrap_or_default();
        Theme::parse(&name, &text, &path.display().to_string())
    }

    /// Finds a theme by name: `<user_dir>/NAME.toml` first, then the built-ins. Anything wrong
    /// gives the default theme and a warning for the status bar. Honours `NO_COLOR`.
    pub fn load(name: &str, user_dir: &Path) -> (Theme, Option<String>) {
        Theme::load_with(name, user_dir, no_color_from_env())
    }

    /// `load` with the `NO_COLOR` decision made by the caller.
    pub fn load_with(name: &str, user_dir: &Path, no_color: bool) -> (Theme, Option<String>) {
        let (theme, warning) = match Theme::find(name, user_dir) {
            Ok(theme) => (theme, None),
            Err(e) => (Theme::base(), Some(format!("{e}; using the default theme"))),
        };
        let theme = if no_color {
            theme.without_colour()
        } else {
            theme
        };
        (theme, warning)
    }

    fn find(name: &str, user_dir: &Path) -> Result<Theme, ThemeError> {
        if !valid_name(name) {
            return Err(ThemeError::BadName {
                name: name.to_string(),
            });
        }
        let path = user_dir.join(format!("{name}.toml"));
        if path.is_file() {
            return Theme::from_file(&path);
        }
        Theme::builtin(name).unwrap_or(Err(ThemeError::NotFound {
            name: name.to_string(),
            path,
        }))
    }

    /// The same theme with every colour removed; bold, reversed and the rest stay.
    pub fn without_colour(mut self) -> Theme {
        for key in STYLE_KEYS {
            if let Some(style) = self.style_mut(key) {
                style.fg = None;
                style.bg = None;
                style.underline_color = None;
            }
        }
        self.half_block_grey = false;
        self
    }

    /// True when no style sets a colour (a `NO_COLOR` or monochrome theme).
    pub fn is_colourless(&self) -> bool {
        let mut copy = self.clone();
        STYLE_KEYS.iter().all(|key| {
            copy.style_mut(key).is_none_or(|s| {
                matches!(s.fg, None | Some(Color::Reset))
                    && matches!(s.bg, None | Some(Color::Reset))
            })
        }) && !self.half_block_grey
    }
}

/// `NO_COLOR` set to anything non-empty (https://no-color.org).
pub fn no_color_from_env() -> bool {
    std::env::var_os("NO_COLOR").is_some_and(|v| !v.is_empty())
}

fn valid_name(name: &str) -> bool {
    !name.is_empty()
        && name
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_')
}

/// `text` with control characters escaped (`\n`, `\u{1b}`): a warning quoting the file stays on
/// the status bar's one line and cannot send escape sequences to the terminal.
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

/// 1-based line of a byte offset.
fn line_of(text: &str, offset: usize) -> usize {
    text.get(..offset)
        .unwrap_or(text)
        .bytes()
        .filter(|&b| b == b'\n')
        .count()
        + 1
}

fn parse_style_value(value: &toml::Value) -> Result<Style, String> {
    match value {
        toml::Value::String(s) => parse_style(s),
        toml::Value::Integer(i) => u8::try_from(*i)
            .map(|i| Style::new().fg(Color::Indexed(i)))
            .map_err(|_| "a colour index must be 0 to 255".to_string()),
        _ => Err("expected a style string such as \"lightred bold\"".to_string()),
    }
}

/// Parses `"[COLOUR] [on COLOUR] [MODIFIER...]"`, in any order.
pub fn parse_style(spec: &str) -> Result<Style, String> {
    let mut style = Style::new();
    let mut words = spec.split_whitespace();
    while let Some(word) = words.next() {
        let lower = word.to_ascii_lowercase();
        if let Some((_, m)) = MODIFIERS.iter().find(|(n, _)| *n == lower) {
            style = style.add_modifier(*m);
        } else if lower == "on" {
            let Some(bg) = words.next() else {
                return Err("`on` must be followed by a background colour".to_string());
            };
            if style.bg.is_some() {
                return Err("more than one background colour".to_string());
            }
            style = style.bg(parse_colour(bg)?);
        } else {
            if style.fg.is_some() {
                return Err(format!(
                    "`{word}` is a second colour; write `FG on BG` for a background"
                ));
            }
            style = style.fg(parse_colour(word)?);
        }
    }
    Ok(style)
}

fn parse_colour(word: &str) -> Result<Color, String> {
    Color::from_str(word).map_err(|_| {
        let modifiers: Vec<&str> = MODIFIERS.iter().map(|(n, _)| *n).collect();
        format!(
            "`{word}` is not a colour or modifier; use a colour name (red, lightblue, gray, reset, ...), \
             #rrggbb, a 0-255 index, `on COLOUR`, or one of {}",
            modifiers.join(", ")
        )
    })
}

fn parse_ramp(value: &toml::Value) -> Result<Vec<char>, String> {
    let toml::Value::String(s) = value else {
        return Err("expected a string of shading characters such as \" .:-=+*#%@\"".to_string());
    };
    let ramp: Vec<char> = s.chars().collect();
    if ramp.len() < 2 || ramp.len() > MAX_RAMP {
        return Err(format!(
            "a ramp needs 2 to {MAX_RAMP} characters, this one has {}",
            ramp.len()
        ));
    }
    if let Some(c) = ramp
        .iter()
        .find(|c| c.is_control() || Span::raw(c.to_string()).width() != 1)
    {
        return Err(format!(
            "{c:?} does not take exactly one terminal cell; use single-width characters"
        ));
    }
    Ok(ramp)
}

fn parse_bool(value: &toml::Value) -> Result<bool, String> {
    value
        .as_bool()
        .ok_or_else(|| "expected true or false".to_string())
}

/// The themes `t` cycles through: the built-ins, then the user's files, each loaded once at start
/// (a bad one stays in the cycle, drawn with the default theme and carrying its warning).
#[derive(Debug, Clone)]
pub struct ThemeSet {
    entries: Vec<ThemeEntry>,
    index: usize,
    active: ThemeEntry,
}

#[derive(Debug, Clone)]
struct ThemeEntry {
    name: String,
    theme: Theme,
    warning: Option<String>,
}

impl Default for ThemeSet {
    fn default() -> Self {
        ThemeSet::single(Theme::default())
    }
}

impl ThemeSet {
    /// Just one theme; `cycle` keeps it.
    pub fn single(theme: Theme) -> ThemeSet {
        let entry = ThemeEntry {
            name: theme.name.clone(),
            theme,
            warning: None,
        };
        ThemeSet {
            entries: vec![entry.clone()],
            index: 0,
            active: entry,
        }
    }

    /// Loads the built-ins and every `*.toml` in `user_dir`, selecting `selected`. The warning
    /// is about the selected theme (or listing the folder) and belongs in the status bar.
    pub fn load(selected: &str, user_dir: &Path, no_color: bool) -> (ThemeSet, Option<String>) {
        let mut names: Vec<String> = Theme::builtin_names()
            .iter()
            .map(|n| n.to_string())
            .collect();
        let mut warnings = Vec::new();
        match std::fs::read_dir(user_dir) {
            Ok(dir) => {
                let mut user: Vec<String> = dir
                    .filter_map(|entry| entry.ok())
                    .map(|entry| entry.path())
                    .filter(|p| p.extension().is_some_and(|e| e == "toml"))
                    .filter_map(|p| p.file_stem().map(|s| s.to_string_lossy().into_owned()))
                    .filter(|n| valid_name(n) && !names.contains(n))
                    .collect();
                user.sort();
                names.extend(user);
            }
            Err(e) if e.kind() == io::ErrorKind::NotFound => {}
            Err(e) => warnings.push(format!(
                "cannot list user themes in {}: {e}",
                user_dir.display()
            )),
        }
        let entries: Vec<ThemeEntry> = names
            .into_iter()
            .map(|name| {
                let (theme, warning) = Theme::load_with(&name, user_dir, no_color);
                ThemeEntry {
                    name,
                    theme,
                    warning,
                }
            })
            .collect();
        let index = match entries.iter().position(|e| e.name == selected) {
            Some(i) => {
                warnings.splice(0..0, entries.get(i).and_then(|e| e.warning.clone()));
                i
            }
            None => {
                // Unknown or badly named: the default (first) theme, and say why.
                warnings.splice(0..0, Theme::load_with(selected, user_dir, no_color).1);
                0
            }
        };
        let active = match entries.get(index) {
            Some(entry) => entry.clone(),
            None => ThemeSet::default().active,
        };
        let warning = (!warnings.is_empty()).then(|| warnings.join("; "));
        (
            ThemeSet {
                entries,
                index,
                active,
            },
            warning,
        )
    }

    pub fn current(&self) -> &Theme {
        &self.active.theme
    }

    /// The name the current entry was asked for by (a bad file keeps its name here while it
    /// is drawn with the default theme).
    pub fn current_name(&self) -> &str {
        &self.active.name
    }

    /// Why the current theme is the default instead of what was asked, if it is.
    pub fn warning(&self) -> Option<&str> {
        self.active.warning.as_deref()
    }

    /// The cycle as plain data, for the dashboard's state: each name with its warning, and
    /// which is current.
    pub fn choice(&self) -> crate::dashboard::app::ThemeChoice {
        crate::dashboard::app::ThemeChoice {
            entries: self
                .entries
                .iter()
                .map(|e| (e.name.clone(), e.warning.clone()))
                .collect(),
            current: self.index,
        }
    }

    /// The theme at `index` in the cycle (the default past its end).
    pub fn get(&self, index: usize) -> &Theme {
        self.entries
            .get(index)
            .map_or(&self.active.theme, |entry| &entry.theme)
    }

    pub fn names(&self) -> Vec<&str> {
        self.entries.iter().map(|e| e.name.as_str()).collect()
    }

    /// Moves to the next theme, wrapping around.
    pub fn cycle(&mut self) -> &Theme {
        self.index = (self.index + 1) % self.entries.len().max(1);
        if let Some(entry) = self.entries.get(self.index) {
            self.active = entry.clone();
        }
        self.current()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn repo_themes() -> Vec<PathBuf> {
        let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("themes");
        let mut files: Vec<PathBuf> = std::fs::read_dir(&dir)
            .map(|d| d.filter_map(|e| e.ok()).map(|e| e.path()).collect())
            .unwrap_or_default();
        files.retain(|p| p.extension().is_some_and(|e| e == "toml"));
        files.sort();
        files
    }

    #[test]
    fn every_shipped_theme_file_parses_and_is_built_in() {
        let files = repo_themes();
        assert!(
            files.len() >= 4,
            "expected at least 4 themes, found {files:?}"
        );
        for path in &files {
            let theme = Theme::from_file(path)
                .unwrap_or_else(|e| panic!("{} does not parse: {e}", path.display()));
            assert!(
                Theme::builtin_names().contains(&theme.name.as_str()),
                "{} is not compiled in",
                path.display()
            );
        }
        for name in Theme::builtin_names() {
            let theme = Theme::builtin(name)
                .unwrap_or_else(|| panic!("{name} listed but not compiled in"))
                .unwrap_or_else(|e| panic!("built-in {name}: {e}"));
            assert_eq!(theme.name, *name);
        }
    }

    #[test]
    fn shipped_theme_files_set_every_key() {
        // A shipped theme relying on fallbacks would silently change when the default changes.
        for path in repo_themes() {
            let text = std::fs::read_to_string(&path).unwrap_or_default();
            let table: toml::Table = toml::from_str(&text).unwrap_or_default();
            for key in STYLE_KEYS.iter().chain(OTHER_KEYS) {
                assert!(table.contains_key(*key), "{} lacks `{key}`", path.display());
            }
        }
    }

    #[test]
    fn default_file_matches_the_spelled_out_default() {
        let parsed = Theme::builtin("default").and_then(Result::ok);
        assert_eq!(parsed, Some(Theme::base()));
    }

    #[test]
    fn mono_theme_needs_no_colour() {
        let mono = Theme::builtin("mono").and_then(Result::ok);
        assert!(mono.is_some_and(|t| t.is_colourless()));
        assert!(!Theme::base().is_colourless());
    }

    #[test]
    fn every_style_key_has_a_slot() {
        let mut theme = Theme::base();
        for key in STYLE_KEYS {
            assert!(theme.style_mut(key).is_some(), "{key} has no field");
        }
        assert!(theme.style_mut("nope").is_none());
    }

    #[test]
    fn styles_parse_names_hex_indices_backgrounds_and_modifiers() {
        assert_eq!(parse_style("red"), Ok(Style::new().fg(Color::Red)));
        assert_eq!(
            parse_style("#ff8000 on 17 bold"),
            Ok(Style::new()
                .fg(Color::Rgb(255, 128, 0))
                .bg(Color::Indexed(17))
                .add_modifier(Modifier::BOLD))
        );
        assert_eq!(
            parse_style("Reversed lightblue"),
            Ok(Style::new()
                .fg(Color::LightBlue)
                .add_modifier(Modifier::REVERSED))
        );
        assert_eq!(parse_style(""), Ok(Style::new()));
        assert!(parse_style("red blue").is_err());
        assert!(parse_style("red on").is_err());
        assert!(parse_style("blurple").is_err());
        assert!(parse_style("#12345").is_err());
        assert!(parse_style("256").is_err());
    }

    #[test]
    fn missing_keys_fall_back_to_the_default() {
        let theme = Theme::parse("mine", "loss_d = \"blue\"\n", "test").ok();
        let base = Theme::base();
        let expected = Theme {
            name: "mine".to_string(),
            loss_d: Style::new().fg(Color::Blue),
            // Newer keys follow the file's own older ones, here the default's.
            score: base.title,
            bars: base.digit,
            ..Theme::base()
        };
        assert_eq!(theme, Some(expected));
    }

    #[test]
    fn newer_keys_left_out_follow_the_files_own_meanings() {
        let text = "title = \"blue bold\"\ndigit = \"black\"\n";
        let theme = Theme::parse("old", text, "test").ok();
        assert_eq!(
            theme.as_ref().map(|t| (t.score, t.bars)),
            Some((
                Style::new().fg(Color::Blue).add_modifier(Modifier::BOLD),
                Style::new().fg(Color::Black)
            ))
        );
        // Set explicitly, they are their own.
        let text = "title = \"blue\"\nscore = \"red\"\nbars = \"green\"\n";
        let theme = Theme::parse("new", text, "test").ok();
        assert_eq!(
            theme.map(|t| (t.score, t.bars)),
            Some((Style::new().fg(Color::Red), Style::new().fg(Color::Green)))
        );
        // Every fallback names a real key.
        let mut base = Theme::base();
        for (key, from) in FALLBACKS {
            assert!(base.style_mut(key).is_some() && base.style_mut(from).is_some());
        }
    }

    #[test]
    fn integer_colours_are_indices() {
        let theme = Theme::parse("mine", "ok = 42\n", "test").ok();
        assert_eq!(
            theme.map(|t| t.ok),
            Some(Style::new().fg(Color::Indexed(42)))
        );
        assert!(Theme::parse("mine", "ok = 300\n", "test").is_err());
    }

    #[test]
    fn bad_colour_names_file_line_key_and_value() {
        let text = "title = \"bold\"\n\nloss_g = \"blurple\"\n";
        let err = Theme::parse("x", text, "/tmp/x.toml")
            .err()
            .map(|e| e.to_string());
        let msg = err.unwrap_or_default();
        assert!(msg.contains("/tmp/x.toml"), "{msg}");
        assert!(msg.contains("line 3"), "{msg}");
        assert!(msg.contains("loss_g"), "{msg}");
        assert!(msg.contains("blurple"), "{msg}");
    }

    #[test]
    fn unknown_key_is_named_with_its_line() {
        let text = "title = \"bold\"\nlos_d = \"red\"\n";
        let msg = Theme::parse("x", text, "f.toml")
            .err()
            .map(|e| e.to_string())
            .unwrap_or_default();
        assert!(msg.contains("unknown key `los_d`"), "{msg}");
        assert!(msg.contains("line 2"), "{msg}");
        assert!(msg.contains("loss_d"), "should list known keys: {msg}");
    }

    #[test]
    fn bad_toml_is_reported_with_a_line() {
        let msg = Theme::parse("x", "title = \"bold\"\nloss_d = \n", "f.toml")
            .err()
            .map(|e| e.to_string())
            .unwrap_or_default();
        assert!(msg.contains("f.toml line 2"), "{msg}");
        assert!(msg.contains("not valid TOML"), "{msg}");
    }

    #[test]
    fn warnings_quoting_the_file_stay_on_one_line() {
        for text in [
            "loss_d = \"a\\nb\"\n",
            "loss_d = '''\nab\ncd'''\n",
            "\"los\\nx\" = 1\n",
            "title = \"red\\u001b[2J\"\n",
            "title = \"\\u001b[2J\"\n",
        ] {
            let msg = Theme::parse("x", text, "f.toml")
                .err()
                .map(|e| e.to_string())
                .unwrap_or_default();
            assert!(msg.starts_with("theme f.toml line 1: "), "{text:?}: {msg}");
            assert!(
                !msg.contains(['\n', '\u{1b}']),
                "{text:?} gives more than a line: {msg:?}"
            );
        }
        let msg = Theme::parse("x", "\"los\\nx\" = 1\n", "f.toml")
            .err()
            .map(|e| e.to_string())
            .unwrap_or_default();
        assert!(msg.contains("unknown key `los\\nx`"), "{msg}");
    }

    #[test]
    fn unreadable_theme_files_say_why() {
        let dir = tempfile::tempdir().unwrap();
        let latin1 = dir.path().join("latin1.toml");
        std::fs::write(&latin1, b"title = \"bold\"\n# caf\xe9\n").unwrap();
        let huge = dir.path().join("huge.toml");
        std::fs::write(&huge, "# padding\n".repeat(7000)).unwrap();
        let cases = [
            (latin1.as_path(), "line 2: not UTF-8 text"),
            (huge.as_path(), "is larger than 65536 bytes"),
            (Path::new("/dev/zero"), "is larger than 65536 bytes"),
        ];
        for (path, words) in cases {
            let msg = Theme::from_file(path)
                .err()
                .map(|e| e.to_string())
                .unwrap_or_default();
            assert!(msg.contains(&path.display().to_string()), "{msg}");
            assert!(msg.contains(words), "want {words:?} in {msg}");
        }
    }

    #[test]
    fn bad_ramps_and_bools_are_rejected() {
        assert!(Theme::parse("x", "digit_ramp = \"@\"\n", "f").is_err());
        assert!(Theme::parse("x", "digit_ramp = \" \\t@\"\n", "f").is_err());
        assert!(Theme::parse("x", "digit_ramp = \" 日@\"\n", "f").is_err());
        assert!(Theme::parse("x", "digit_ramp = 3\n", "f").is_err());
        assert!(Theme::parse("x", "digit_invert = \"yes\"\n", "f").is_err());
        assert!(Theme::parse("x", "title = [1]\n", "f").is_err());
        let ok = Theme::parse("x", "digit_ramp = \" ░▒▓█\"\n", "f").ok();
        assert_eq!(ok.map(|t| t.digit_ramp.len()), Some(5));
    }

    #[test]
    fn user_file_wins_over_built_in_and_bad_file_gives_default_with_warning() {
        let dir = tempfile::tempdir().ok();
        let dir = dir
            .as_ref()
            .map(|d| d.path())
            .unwrap_or(Path::new("/nonexistent"));
        std::fs::write(dir.join("light.toml"), "title = \"red\"\n").ok();
        std::fs::write(dir.join("broken.toml"), "title = \"red\"\nbogus = 1\n").ok();

        let (light, warning) = Theme::load_with("light", dir, false);
        assert_eq!(warning, None);
        assert_eq!(light.title, Style::new().fg(Color::Red));
        assert_eq!(light.name, "light");

        let (broken, warning) = Theme::load_with("broken", dir, false);
        assert_eq!(broken, Theme::base());
        let warning = warning.unwrap_or_default();
        assert!(warning.contains("broken.toml"), "{warning}");
        assert!(warning.contains("bogus"), "{warning}");
        assert!(warning.contains("default theme"), "{warning}");

        let (amber, warning) = Theme::load_with("amber", dir, false);
        assert_eq!(warning, None);
        assert_eq!(Some(amber), Theme::builtin("amber").and_then(Result::ok));
    }

    #[test]
    fn unknown_and_malformed_names_warn_and_use_the_default() {
        let dir = Path::new("/nonexistent/themes");
        let (theme, warning) = Theme::load_with("nosuch", dir, false);
        assert_eq!(theme, Theme::base());
        let warning = warning.unwrap_or_default();
        assert!(warning.contains("unknown theme `nosuch`"), "{warning}");
        assert!(
            warning.contains("/nonexistent/themes/nosuch.toml"),
            "{warning}"
        );
        assert!(warning.contains("mono"), "should list built-ins: {warning}");

        let (theme, warning) = Theme::load_with("../etc/passwd", dir, false);
        assert_eq!(theme, Theme::base());
        assert!(warning.is_some_and(|w| w.contains("bad theme name")));
    }

    #[test]
    fn no_color_strips_colours_but_keeps_modifiers() {
        let (theme, _) = Theme::load_with("amber", Path::new("/nonexistent"), true);
        assert!(theme.is_colourless());
        assert!(theme.title.add_modifier.contains(Modifier::BOLD));
        assert_eq!(theme.title.fg, None);
        assert!(!theme.half_block_grey);
    }

    #[test]
    fn theme_set_cycles_built_ins_then_user_files() {
        let dir = tempfile::tempdir().ok();
        let dir = dir
            .as_ref()
            .map(|d| d.path())
            .unwrap_or(Path::new("/nonexistent"));
        std::fs::write(dir.join("zebra.toml"), "title = \"red\"\n").ok();
        std::fs::write(dir.join("bad.toml"), "title = \"nocolour\"\n").ok();
        std::fs::write(dir.join("notes.txt"), "not a theme").ok();

        let (mut set, warning) = ThemeSet::load("mono", dir, false);
        assert_eq!(warning, None);
        assert_eq!(
            set.names(),
            vec!["default", "light", "mono", "amber", "bad", "zebra"]
        );
        assert_eq!(set.current().name, "mono");
        assert_eq!(set.cycle().name, "amber");
        // The bad file is in the cycle as the default theme, carrying its warning.
        assert_eq!(set.cycle().name, "default");
        assert_eq!(set.current_name(), "bad");
        assert!(set.warning().is_some_and(|w| w.contains("nocolour")));
        assert_eq!(set.cycle().name, "zebra");
        assert_eq!(set.warning(), None);
        assert_eq!(set.cycle().name, "default");

        let (set, warning) = ThemeSet::load("nosuch", dir, false);
        assert_eq!(set.current().name, "default");
        assert!(warning.is_some_and(|w| w.contains("nosuch")));
    }
}
