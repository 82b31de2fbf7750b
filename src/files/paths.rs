//! Where config, themes, data and runs live: `directories` plus environment overrides.
//!
//! `Paths::from_env` is a thin layer that reads the process environment; the choice itself is
//! the pure `Paths::resolve`, so tests need not touch the environment.

use std::ffi::OsString;
use std::fs;
use std::io;
use std::path::{Path, PathBuf};
use std::time::{SystemTime, UNIX_EPOCH};

/// Names the folder that holds `config.toml` and `themes/`, instead of the platform's.
pub const CONFIG_DIR_ENV: &str = "GAN_TUI_CONFIG_DIR";
/// Names the folder that holds `runs/`, instead of the platform's.
pub const DATA_DIR_ENV: &str = "GAN_TUI_DATA_DIR";

/// The folders gan-tui reads and writes. None is created here.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Paths {
    pub config_dir: PathBuf,
    /// `<config_dir>/config.toml`: the user's default config, read if it exists.
    pub config_file: PathBuf,
    /// `<config_dir>/themes`: `<name>.toml` colour themes.
    pub themes_dir: PathBuf,
    pub data_dir: PathBuf,
    /// `<data_dir>/runs`: one folder per run.
    pub runs_dir: PathBuf,
}

#[derive(Debug, thiserror::Error)]
pub enum PathsError {
    #[error(
        "no home folder found to keep gan-tui's {what} in; set {vars} to a folder to use instead"
    )]
    NoHome {
        /// The kinds of folder that are missing, e.g. `config and data`.
        what: String,
        /// The variables that would supply them.
        vars: String,
    },
    #[error(
        "{var}={} is a relative path, and the current folder cannot be read to anchor it ({source}); \
         set {var} to an absolute path",
        path.display()
    )]
    CurrentDir {
        var: &'static str,
        path: PathBuf,
        source: io::Error,
    },
}

impl Paths {
    /// The folders for this process: `GAN_TUI_CONFIG_DIR` / `GAN_TUI_DATA_DIR` if set and not
    /// empty, else the platform's folders for "gan-tui" (on Linux `~/.config/gan-tui` and
    /// `~/.local/share/gan-tui`).
    pub fn from_env() -> Result<Paths, PathsError> {
        let platform = directories::ProjectDirs::from("", "", "gan-tui");
        Paths::resolve(
            env_dir(CONFIG_DIR_ENV)?,
            env_dir(DATA_DIR_ENV)?,
            platform.as_ref().map(|d| d.config_dir()),
            platform.as_ref().map(|d| d.data_dir()),
        )
    }

    /// Picks each folder from its override, else the platform's folder; an error names every
    /// folder that has neither.
    pub fn resolve(
        config_override: Option<PathBuf>,
        data_override: Option<PathBuf>,
        platform_config: Option<&Path>,
        platform_data: Option<&Path>,
    ) -> Result<Paths, PathsError> {
        let config_dir = config_override.or_else(|| platform_config.map(Path::to_path_buf));
        let data_dir = data_override.or_else(|| platform_data.map(Path::to_path_buf));
        match (config_dir, data_dir) {
            (Some(config_dir), Some(data_dir)) => Ok(Paths::from_dirs(config_dir, data_dir)),
            (None, None) => Err(PathsError::NoHome {
                what: "config and data".to_string(),
                vars: format!("{CONFIG_DIR_ENV} and {DATA_DIR_ENV}"),
            }),
            (None, Some(_)) => Err(PathsError::NoHome {
                what: "config".to_string(),
                vars: CONFIG_DIR_ENV.to_string(),
            }),
            (Some(_), None) => Err(PathsError::NoHome {
                what: "data".to_string(),
                vars: DATA_DIR_ENV.to_string(),
            }),
        }
    }

    /// The layout under a chosen config folder and data folder.
    pub fn from_dirs(config_dir: PathBuf, data_dir: PathBuf) -> Paths {
        Paths {
            config_file: config_dir.join("config.toml"),
            themes_dir: config_dir.join("themes"),
            runs_dir: data_dir.join("runs"),
            config_dir,
            data_dir,
        }
    }

    /// What `gan-tui --print-paths` prints: one labelled line per path, saying whether it exists.
    pub fn describe(&self) -> String {
        let lines = [
            ("config dir", &self.config_dir, dir_state(&self.config_dir)),
            (
                "config file",
                &self.config_file,
                file_state(&self.config_file, "missing; built-in defaults apply"),
            ),
            ("themes dir", &self.themes_dir, dir_state(&self.themes_dir)),
            ("data dir", &self.data_dir, dir_state(&self.data_dir)),
            ("runs dir", &self.runs_dir, dir_state(&self.runs_dir)),
        ];
        let mut out = String::new();
        for (label, path, state) in lines {
            out.push_str(&format!("{label:<12} {} ({state})\n", path.display()));
        }
        out.push_str(&format!(
            "set {CONFIG_DIR_ENV} or {DATA_DIR_ENV} to use other folders\n"
        ));
        out
    }
}

/// An override from the environment: unset or empty is no override (as with `XDG_*`), and a
/// relative path is anchored now so a later change of folder cannot move it.
fn env_dir(var: &'static str) -> Result<Option<PathBuf>, PathsError> {
    non_empty(std::env::var_os(var))
        .map(|path| {
            std::path::absolute(&path).map_err(|source| PathsError::CurrentDir {
                var,
                path,
                source,
            })
        })
        .transpose()
}

fn non_empty(value: Option<OsString>) -> Option<PathBuf> {
    value.filter(|v| !v.is_empty()).map(PathBuf::from)
}

fn dir_state(path: &Path) -> &'static str {
    match fs::metadata(path) {
        Ok(m) if m.is_dir() => "exists",
        Ok(_) => "exists but is not a folder",
        Err(e) if e.kind() == io::ErrorKind::NotFound => "missing; made when needed",
        Err(_) => "cannot be read",
    }
}

fn file_state(path: &Path, when_missing: &'static str) -> &'static str {
    match fs::metadata(path) {
        Ok(m) if m.is_dir() => "is a folder, not a file",
        Ok(_) => "exists",
        Err(e) if e.kind() == io::ErrorKind::NotFound => when_missing,
        Err(_) => "cannot be read",
    }
}

/// A fresh folder path for a new run, such as `<runs_dir>/20261127-103005-reference` (UTC),
/// with `-2`, `-3`, ... added if the name is taken. It is not created: create it with
/// `fs::create_dir` (not `create_dir_all`) so a second process that raced for the same name fails
/// rather than sharing the folder.
pub fn new_run_dir(runs_dir: &Path, preset: &str) -> PathBuf {
    let base = run_dir_name(unix_seconds_now(), preset);
    first_free(runs_dir, &base, |p| fs::symlink_metadata(p).is_ok())
}

fn unix_seconds_now() -> i64 {
    // A clock set before 1970 still yields a valid (if odd) name rather than an error.
    match SystemTime::now().duration_since(UNIX_EPOCH) {
        Ok(after) => i64::try_from(after.as_secs()).unwrap_or(i64::MAX),
        Err(before) => i64::try_from(before.duration().as_secs()).map_or(i64::MIN, |s| -s),
    }
}

/// `YYYYMMDD-HHMMSS-<preset>` in UTC; characters of `preset` that do not belong in a folder name
/// become `_`.
fn run_dir_name(unix_seconds: i64, preset: &str) -> String {
    let days = unix_seconds.div_euclid(86_400);
    let secs = unix_seconds.rem_euclid(86_400);
    let (year, month, day) = civil_from_days(days);
    let preset: String = preset
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || c == '_' || c == '-' {
                c
            } else {
                '_'
            }
        })
        .collect();
    format!(
        "{year:04}{month:02}{day:02}-{:02}{:02}{:02}-{preset}",
        secs / 3600,
        secs % 3600 / 60,
        secs % 60
    )
}

/// `runs_dir/base`, or the first of `base-2`, `base-3`, ... that `taken` says is free.
fn first_free(runs_dir: &Path, base: &str, taken: impl Fn(&Path) -> bool) -> PathBuf {
    let first = runs_dir.join(base);
    if !taken(&first) {
        return first;
    }
    (2u64..)
        .map(|n| runs_dir.join(format!("{base}-{n}")))
        .find(|p| !taken(p))
        .unwrap_or(first)
}

/// The proleptic Gregorian date of a day count from 1970-01-01 (Howard Hinnant's
/// `civil_from_days`): eras of 400 years, each 146097 days, with years starting in March so
/// the leap day falls at the end.
fn civil_from_days(days: i64) -> (i64, u32, u32) {
    let z = days.saturating_add(719_468);
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097); // day of era, 0..=146096
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365; // year of era, 0..=399
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100); // day of year from March 1st, 0..=365
    let mp = (5 * doy + 2) / 153; // month from March, 0..=11
    let day = doy - (153 * mp + 2) / 5 + 1;
    let month = if mp < 10 { mp + 3 } else { mp - 9 };
    let year = yoe + era * 400 + i64::from(month <= 2);
    // Both are small by construction (1..=31 and 1..=12).
    (year, month as u32, day as u32)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn overrides_beat_platform_folders() {
        let paths = Paths::resolve(
            Some(PathBuf::from("/o/cfg")),
            Some(PathBuf::from("/o/data")),
            Some(Path::new("/home/u/.config/gan-tui")),
            Some(Path::new("/home/u/.local/share/gan-tui")),
        )
        .unwrap();
        assert_eq!(paths.config_dir, Path::new("/o/cfg"));
        assert_eq!(paths.config_file, Path::new("/o/cfg/config.toml"));
        assert_eq!(paths.themes_dir, Path::new("/o/cfg/themes"));
        assert_eq!(paths.data_dir, Path::new("/o/data"));
        assert_eq!(paths.runs_dir, Path::new("/o/data/runs"));
    }

    #[test]
    fn each_override_stands_alone() {
        let paths = Paths::resolve(
            None,
            Some(PathBuf::from("/o/data")),
            Some(Path::new("/p/cfg")),
            Some(Path::new("/p/data")),
        )
        .unwrap();
        assert_eq!(paths.config_dir, Path::new("/p/cfg"));
        assert_eq!(paths.runs_dir, Path::new("/o/data/runs"));
    }

    #[test]
    fn no_home_and_no_override_is_an_error_naming_the_variable() {
        let err = Paths::resolve(None, None, None, None)
            .unwrap_err()
            .to_string();
        assert!(
            err.contains(CONFIG_DIR_ENV) && err.contains(DATA_DIR_ENV),
            "{err}"
        );
        let err = Paths::resolve(Some(PathBuf::from("/c")), None, None, None)
            .unwrap_err()
            .to_string();
        assert!(
            err.contains(DATA_DIR_ENV) && !err.contains(CONFIG_DIR_ENV),
            "{err}"
        );
        // Overrides alone are enough without a home folder.
        assert!(Paths::resolve(Some("/c".into()), Some("/d".into()), None, None).is_ok());
    }

    #[test]
    fn empty_environment_values_are_no_override() {
        assert_eq!(non_empty(Some(OsString::new())), None);
        assert_eq!(non_empty(None), None);
        assert_eq!(
            non_empty(Some(OsString::from("/x"))),
            Some(PathBuf::from("/x"))
        );
    }

    #[test]
    fn describe_labels_each_path_and_says_which_exist() {
        let tmp = tempfile::tempdir().unwrap();
        let paths = Paths::from_dirs(tmp.path().join("cfg"), tmp.path().join("data"));
        fs::create_dir_all(&paths.config_dir).unwrap();
        fs::write(&paths.config_file, "").unwrap();
        fs::create_dir_all(&paths.runs_dir).unwrap();
        let text = paths.describe();
        let line = |label: &str| {
            text.lines()
                .find(|l| l.starts_with(label))
                .unwrap_or_else(|| panic!("no {label} line in\n{text}"))
                .to_string()
        };
        assert!(line("config dir").ends_with("(exists)"), "{text}");
        assert!(
            line("config file").contains("config.toml (exists)"),
            "{text}"
        );
        assert!(line("themes dir").contains("missing"), "{text}");
        assert!(line("data dir").ends_with("(exists)"), "{text}");
        assert!(line("runs dir").ends_with("(exists)"), "{text}");
        assert!(line("runs dir").contains(&paths.runs_dir.display().to_string()));

        fs::remove_file(&paths.config_file).unwrap();
        let text = paths.describe();
        assert!(text.contains("built-in defaults apply"), "{text}");
    }

    #[test]
    fn dates_match_known_instants() {
        assert_eq!(run_dir_name(0, "reference"), "19700101-000000-reference");
        assert_eq!(
            run_dir_name(1_795_775_405, "reference"),
            "20261127-103005-reference"
        );
        // A leap day, and the day after the end of February in a century leap year.
        assert_eq!(run_dir_name(951_782_400, "x"), "20000229-000000-x");
        assert_eq!(run_dir_name(951_868_800, "x"), "20000301-000000-x");
        // Before 1970: the Moon landing.
        assert_eq!(run_dir_name(-14_182_940, "x"), "19690720-201740-x");
        assert_eq!(run_dir_name(-1, "x"), "19691231-235959-x");
    }

    #[test]
    fn preset_text_cannot_escape_the_runs_folder() {
        assert_eq!(run_dir_name(0, "../a b"), "19700101-000000-___a_b");
    }

    #[test]
    fn taken_names_get_a_number() {
        let tmp = tempfile::tempdir().unwrap();
        let base = "20261127-103005-reference";
        let taken = |p: &Path| fs::symlink_metadata(p).is_ok();
        assert_eq!(first_free(tmp.path(), base, taken), tmp.path().join(base));
        fs::create_dir(tmp.path().join(base)).unwrap();
        assert_eq!(
            first_free(tmp.path(), base, taken),
            tmp.path().join(format!("{base}-2"))
        );
        fs::create_dir(tmp.path().join(format!("{base}-2"))).unwrap();
        // A file, not only a folder, takes a name.
        fs::write(tmp.path().join(format!("{base}-3")), "").unwrap();
        assert_eq!(
            first_free(tmp.path(), base, taken),
            tmp.path().join(format!("{base}-4"))
        );
    }

    #[test]
    fn new_run_dir_is_fresh_and_not_created() {
        let tmp = tempfile::tempdir().unwrap();
        let first = new_run_dir(tmp.path(), "reference");
        assert_eq!(first.parent(), Some(tmp.path()));
        let name = first.file_name().unwrap().to_string_lossy().into_owned();
        assert!(name.ends_with("-reference"), "{name}");
        assert_eq!(name.len(), "20261127-103005-reference".len(), "{name}");
        assert!(!first.exists());
        fs::create_dir(&first).unwrap();
        let second = new_run_dir(tmp.path(), "reference");
        assert_ne!(first, second);
        assert!(!second.exists());
    }
}
