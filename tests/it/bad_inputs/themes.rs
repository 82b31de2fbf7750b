//! Bad theme files (tests/bad_inputs/themes): reported, and the default theme is used.

use super::*;

#[test]
fn bad_theme_files_are_reported_and_the_default_theme_is_used() {
    let dir = input("themes");
    let before = snapshot(&dir);
    let cases: &[(&str, &[&str])] = &[
        (
            "bad_colour",
            &["line 2", "`loss_d`", "blurple", "is not a colour"],
        ),
        ("unknown_key", &["line 2", "unknown key `los_g`", "loss_g"]),
        ("not_toml", &["line 2", "not valid TOML"]),
        (
            "bad_ramp",
            &["line 1", "`digit_ramp`", "2 to 64 characters"],
        ),
        ("wrong_type", &["line 1", "`digit_invert`", "true or false"]),
        ("bad_index", &["line 1", "`ok`", "0 to 255"]),
        ("not_utf8", &["line 2", "not UTF-8 text"]),
    ];
    for (name, words) in cases {
        let file = shown(&dir.join(format!("{name}.toml")));
        let (theme, warning) = Theme::load_with(name, &dir, false);
        assert_eq!(theme, Theme::default(), "{name}");
        let warning = warning.unwrap_or_else(|| panic!("{name}: no warning"));
        assert!(!warning.contains('\n'), "{name}: {warning}");
        for word in words
            .iter()
            .chain(&[file.as_str(), "using the default theme"])
        {
            assert!(warning.contains(word), "{name}: want {word:?} in {warning}");
        }

        // What the dashboard does: the default drawn, the file's name kept, the warning shown.
        let (set, warning) = ThemeSet::load(name, &dir, false);
        assert_eq!(set.current(), &Theme::default(), "{name}");
        assert_eq!(set.current_name(), *name);
        assert!(warning.is_some_and(|w| w.contains(&file)), "{name}");
    }
    // A good file beside them loads as itself, so the warnings above are about the files.
    let tmp = tempfile::tempdir().unwrap();
    std::fs::write(tmp.path().join("fine.toml"), "loss_d = \"blue\"\n").unwrap();
    let (theme, warning) = Theme::load_with("fine", tmp.path(), false);
    assert_eq!(warning, None);
    assert_ne!(theme, Theme::default());
    assert_eq!(snapshot(&dir), before, "theme files changed");
}
