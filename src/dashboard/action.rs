//! Key presses to actions: a pure map with one-line descriptions for the help popup.
//!
//! `KEYS` is the only key table: `Action::from_key`, the help popup and the status bar's key hint
//! all read it, so they cannot disagree.

use ratatui::crossterm::event::{KeyCode, KeyEvent, KeyEventKind, KeyModifiers};

/// Everything a key can ask of the dashboard.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Action {
    TogglePause,
    SaveCheckpoint,
    Resample,
    ToggleFreshNoise,
    ToggleDigitMode,
    ToggleHistory,
    CycleTheme,
    /// Ask the trainer for the judge's scores now.
    Evaluate,
    /// Conditional runs: draw only this digit (the same digit again: all ten). In `KEYS` the
    /// digit is a placeholder; `from_key` fills in the one pressed.
    ShowDigit(u8),
    /// Conditional runs: draw all ten digits again.
    AllDigits,
    /// Probe on or off: a strip morphing between two noise vectors (and two digits).
    ToggleMorph,
    /// Probe on or off: each shown digit's nearest training digit, and the memorisation check.
    ToggleNearest,
    /// Probe on or off: the judge's reading under each shown digit.
    ToggleReading,
    /// A fork: overlay the parent run's curves from the fork's step on.
    ToggleParentOverlay,
    /// The filmstrip: show an older or a newer kept sample grid (newer than the newest: the
    /// live one). In `KEYS` the direction is a placeholder; `from_key` fills in the key's.
    Filmstrip(FilmStep),
    /// Loss plots: the next smoothing weight (off, 0.6, 0.9, 0.99).
    CycleSmoothing,
    /// Loss plots: log scale on or off.
    ToggleLogScale,
    ToggleHelp,
    /// Close the help popup if it is open, otherwise quit.
    Back,
    Quit,
    /// Stop the run (asks for a second press first). In `gan-tui watch`, where `q` only
    /// leaves the viewer, this is how a run is stopped.
    StopRun,
}

/// Which way `[` and `]` step through the filmstrip.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FilmStep {
    Older,
    Newer,
}

/// One key as the table spells it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Key {
    /// A character typed without Ctrl or Alt (Shift is allowed: `?` needs it on most layouts).
    Char(char),
    /// A character with Ctrl held.
    Ctrl(char),
    Esc,
    /// Any of the digit keys `0`-`9`, without Ctrl or Alt.
    Digit,
}

impl Key {
    pub fn matches(self, event: &KeyEvent) -> bool {
        let chord = event.modifiers & (KeyModifiers::CONTROL | KeyModifiers::ALT);
        match (self, event.code) {
            (Key::Char(want), KeyCode::Char(got)) => chord.is_empty() && want == got,
            (Key::Ctrl(want), KeyCode::Char(got)) => {
                chord == KeyModifiers::CONTROL && want.eq_ignore_ascii_case(&got)
            }
            (Key::Esc, KeyCode::Esc) => chord.is_empty(),
            (Key::Digit, KeyCode::Char(got)) => chord.is_empty() && got.is_ascii_digit(),
            _ => false,
        }
    }

    /// How the help popup and the key hint name this key.
    pub fn label(self) -> String {
        match self {
            Key::Char(' ') => "space".to_string(),
            Key::Char(c) => c.to_string(),
            Key::Ctrl(c) => format!("Ctrl-{}", c.to_ascii_uppercase()),
            Key::Esc => "Esc".to_string(),
            Key::Digit => "0-9".to_string(),
        }
    }
}

/// A row of the key table.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct KeyBinding {
    pub keys: &'static [Key],
    pub action: Action,
    /// The help popup's line.
    pub description: &'static str,
    /// The status bar's word for it; empty leaves the binding out of the hint.
    pub hint: &'static str,
}

impl KeyBinding {
    /// The keys joined for display, such as `space, p`.
    pub fn label(&self) -> String {
        self.keys
            .iter()
            .map(|k| k.label())
            .collect::<Vec<_>>()
            .join(", ")
    }
}

/// Every key binding, in the order help lists them.
pub const KEYS: &[KeyBinding] = &[
    KeyBinding {
        keys: &[Key::Char('p'), Key::Char(' ')],
        action: Action::TogglePause,
        description: "pause or resume training",
        hint: "pause",
    },
    KeyBinding {
        keys: &[Key::Char('s')],
        action: Action::SaveCheckpoint,
        description: "save a checkpoint now; the status line shows its path or error",
        hint: "save",
    },
    KeyBinding {
        keys: &[Key::Char('e')],
        action: Action::Evaluate,
        description: "score the generator's digits with the judge now",
        hint: "score",
    },
    KeyBinding {
        keys: &[Key::Digit],
        action: Action::ShowDigit(0),
        description: "conditional runs: draw only that digit (again: all ten)",
        hint: "digit",
    },
    KeyBinding {
        keys: &[Key::Char('a')],
        action: Action::AllDigits,
        description: "conditional runs: draw all ten digits",
        hint: "",
    },
    KeyBinding {
        keys: &[Key::Char('i')],
        action: Action::ToggleMorph,
        description: "probe: a strip morphing between two noises (and two digits)",
        hint: "",
    },
    KeyBinding {
        keys: &[Key::Char('n')],
        action: Action::ToggleNearest,
        description: "probe: each digit's nearest training digit; warns of copying",
        hint: "",
    },
    KeyBinding {
        keys: &[Key::Char('c')],
        action: Action::ToggleReading,
        description: "probe: the judge's reading and confidence under each digit",
        hint: "",
    },
    KeyBinding {
        keys: &[Key::Char('o')],
        action: Action::ToggleParentOverlay,
        description: "forks: overlay the parent run's curves after the fork's step",
        hint: "",
    },
    KeyBinding {
        keys: &[Key::Char('['), Key::Char(']')],
        action: Action::Filmstrip(FilmStep::Older),
        description: "filmstrip: older / newer kept digit grid; past the newest: live",
        hint: "",
    },
    KeyBinding {
        keys: &[Key::Char('r')],
        action: Action::Resample,
        description: "resample: new noise for the digit grid",
        hint: "resample",
    },
    KeyBinding {
        keys: &[Key::Char('h')],
        action: Action::ToggleHistory,
        description: "loss plots: recent steps / the whole run, down-sampled",
        hint: "history",
    },
    KeyBinding {
        keys: &[Key::Char('z')],
        action: Action::CycleSmoothing,
        description: "loss plots: smoothing off / 0.6 / 0.9 / 0.99 (moving average)",
        hint: "",
    },
    KeyBinding {
        keys: &[Key::Char('l')],
        action: Action::ToggleLogScale,
        description: "loss plots: log scale on / off (with values <= 0: symlog)",
        hint: "",
    },
    KeyBinding {
        keys: &[Key::Char('f')],
        action: Action::ToggleFreshNoise,
        description: "toggle fixed noise / fresh noise at each refresh",
        hint: "noise",
    },
    KeyBinding {
        keys: &[Key::Char('m')],
        action: Action::ToggleDigitMode,
        description: "digits as ASCII, half blocks, pictures (kitty/sixel/iTerm2)",
        hint: "mode",
    },
    KeyBinding {
        keys: &[Key::Char('t')],
        action: Action::CycleTheme,
        description: "next colour theme",
        hint: "theme",
    },
    KeyBinding {
        keys: &[Key::Char('?')],
        action: Action::ToggleHelp,
        description: "show or hide this help",
        hint: "help",
    },
    KeyBinding {
        keys: &[Key::Esc],
        action: Action::Back,
        description: "close this help; otherwise quit",
        hint: "",
    },
    KeyBinding {
        keys: &[Key::Char('q'), Key::Ctrl('c')],
        action: Action::Quit,
        description: "stop and save, then quit (twice: at once); in watch: only leave",
        hint: "quit",
    },
    KeyBinding {
        keys: &[Key::Char('x')],
        action: Action::StopRun,
        description: "stop the run (press twice to confirm; it saves a checkpoint)",
        hint: "",
    },
];

impl Action {
    /// The action bound to a key press; releases and repeats of a held key are ignored, so a
    /// toggle fires once per press on terminals that report them.
    pub fn from_key(event: KeyEvent) -> Option<Action> {
        if event.kind != KeyEventKind::Press {
            return None;
        }
        KEYS.iter()
            .find(|binding| binding.keys.iter().any(|key| key.matches(&event)))
            .map(|binding| match (binding.action, event.code) {
                (Action::ShowDigit(_), KeyCode::Char(c)) => {
                    Action::ShowDigit(c.to_digit(10).map_or(0, |d| d as u8))
                }
                (Action::Filmstrip(_), KeyCode::Char(']')) => Action::Filmstrip(FilmStep::Newer),
                (Action::Filmstrip(_), _) => Action::Filmstrip(FilmStep::Older),
                (action, _) => action,
            })
    }

    /// The table row for this action (for `ShowDigit`, the one row of all ten digits).
    pub fn binding(self) -> Option<&'static KeyBinding> {
        KEYS.iter()
            .find(|b| std::mem::discriminant(&b.action) == std::mem::discriminant(&self))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use ratatui::crossterm::event::KeyEventState;

    fn press(code: KeyCode, modifiers: KeyModifiers) -> KeyEvent {
        KeyEvent::new(code, modifiers)
    }

    fn ch(c: char) -> KeyEvent {
        press(KeyCode::Char(c), KeyModifiers::NONE)
    }

    #[test]
    fn the_documented_keys_map_to_their_actions() {
        let cases = [
            (ch(' '), Action::TogglePause),
            (ch('p'), Action::TogglePause),
            (ch('s'), Action::SaveCheckpoint),
            (ch('r'), Action::Resample),
            (ch('f'), Action::ToggleFreshNoise),
            (ch('m'), Action::ToggleDigitMode),
            (ch('h'), Action::ToggleHistory),
            (ch('t'), Action::CycleTheme),
            (ch('e'), Action::Evaluate),
            (ch('0'), Action::ShowDigit(0)),
            (ch('7'), Action::ShowDigit(7)),
            (ch('9'), Action::ShowDigit(9)),
            (ch('a'), Action::AllDigits),
            (ch('i'), Action::ToggleMorph),
            (ch('n'), Action::ToggleNearest),
            (ch('c'), Action::ToggleReading),
            (ch('o'), Action::ToggleParentOverlay),
            (ch('['), Action::Filmstrip(FilmStep::Older)),
            (ch(']'), Action::Filmstrip(FilmStep::Newer)),
            (ch('z'), Action::CycleSmoothing),
            (ch('l'), Action::ToggleLogScale),
            (ch('?'), Action::ToggleHelp),
            (ch('q'), Action::Quit),
            (press(KeyCode::Esc, KeyModifiers::NONE), Action::Back),
            (
                press(KeyCode::Char('c'), KeyModifiers::CONTROL),
                Action::Quit,
            ),
        ];
        for (event, action) in cases {
            assert_eq!(Action::from_key(event), Some(action), "{event:?}");
        }
    }

    #[test]
    fn shift_is_allowed_but_ctrl_and_alt_change_the_key() {
        assert_eq!(
            Action::from_key(press(KeyCode::Char('?'), KeyModifiers::SHIFT)),
            Some(Action::ToggleHelp)
        );
        assert_eq!(
            Action::from_key(press(
                KeyCode::Char('C'),
                KeyModifiers::CONTROL | KeyModifiers::SHIFT
            )),
            Some(Action::Quit)
        );
        assert_eq!(
            Action::from_key(press(KeyCode::Char('s'), KeyModifiers::CONTROL)),
            None
        );
        assert_eq!(
            Action::from_key(press(KeyCode::Char('q'), KeyModifiers::ALT)),
            None
        );
        // Plain `c` is a probe, not Ctrl-C's quit.
        assert_eq!(
            Action::from_key(press(KeyCode::Char('c'), KeyModifiers::NONE)),
            Some(Action::ToggleReading)
        );
        assert_eq!(
            Action::from_key(press(
                KeyCode::Char('c'),
                KeyModifiers::CONTROL | KeyModifiers::ALT
            )),
            None
        );
    }

    #[test]
    fn unbound_keys_and_non_presses_do_nothing() {
        assert_eq!(Action::from_key(ch('y')), None);
        assert_eq!(Action::from_key(ch('P')), None);
        assert_eq!(
            Action::from_key(press(KeyCode::Enter, KeyModifiers::NONE)),
            None
        );
        for kind in [KeyEventKind::Release, KeyEventKind::Repeat] {
            let event = KeyEvent::new_with_kind_and_state(
                KeyCode::Char('q'),
                KeyModifiers::NONE,
                kind,
                KeyEventState::NONE,
            );
            assert_eq!(Action::from_key(event), None, "{kind:?}");
        }
    }

    #[test]
    fn every_action_has_exactly_one_row_and_no_key_is_bound_twice() {
        let actions = [
            Action::TogglePause,
            Action::SaveCheckpoint,
            Action::Resample,
            Action::ToggleFreshNoise,
            Action::ToggleDigitMode,
            Action::ToggleHistory,
            Action::CycleTheme,
            Action::Evaluate,
            Action::ShowDigit(0),
            Action::AllDigits,
            Action::ToggleMorph,
            Action::ToggleNearest,
            Action::ToggleReading,
            Action::ToggleParentOverlay,
            Action::Filmstrip(FilmStep::Older),
            Action::CycleSmoothing,
            Action::ToggleLogScale,
            Action::ToggleHelp,
            Action::Back,
            Action::Quit,
            Action::StopRun,
        ];
        for action in actions {
            let kind = std::mem::discriminant(&action);
            let rows = KEYS
                .iter()
                .filter(|b| std::mem::discriminant(&b.action) == kind)
                .count();
            assert_eq!(rows, 1, "{action:?}");
        }
        assert_eq!(KEYS.len(), actions.len());
        let all: Vec<Key> = KEYS.iter().flat_map(|b| b.keys.iter().copied()).collect();
        for (i, key) in all.iter().enumerate() {
            assert!(!all[i + 1..].contains(key), "{key:?} is bound twice");
        }
        for binding in KEYS {
            assert!(!binding.keys.is_empty());
            assert!(!binding.description.is_empty());
            // Each listed key really reaches its action through from_key.
            for key in binding.keys {
                let event = match *key {
                    Key::Char(c) => ch(c),
                    Key::Ctrl(c) => press(KeyCode::Char(c), KeyModifiers::CONTROL),
                    Key::Esc => press(KeyCode::Esc, KeyModifiers::NONE),
                    Key::Digit => ch('0'),
                };
                let action = Action::from_key(event).map(|a| std::mem::discriminant(&a));
                assert_eq!(action, Some(std::mem::discriminant(&binding.action)));
            }
        }
    }

    #[test]
    fn each_digit_key_carries_its_digit_and_chords_do_not() {
        for (d, c) in ('0'..='9').enumerate() {
            assert_eq!(Action::from_key(ch(c)), Some(Action::ShowDigit(d as u8)));
            assert_eq!(
                Action::from_key(press(KeyCode::Char(c), KeyModifiers::CONTROL)),
                None
            );
            assert_eq!(
                Action::from_key(press(KeyCode::Char(c), KeyModifiers::ALT)),
                None
            );
        }
        // Every digit finds the same row, for help and the hint.
        for d in 0..10 {
            assert_eq!(
                Action::ShowDigit(d).binding().map(|b| b.label()),
                Some("0-9".into())
            );
        }
    }

    /// The README's keys table: one row per binding, in the table's order, its first column
    /// naming the binding's keys.
    #[test]
    fn the_readme_keys_table_lists_every_binding() {
        let path = concat!(env!("CARGO_MANIFEST_DIR"), "/README.md");
        let readme = std::fs::read_to_string(path).unwrap_or_default();
        let rows: Vec<&str> = readme
            .lines()
            .skip_while(|l| *l != "## Keys")
            .skip_while(|l| !l.starts_with("|---"))
            .skip(1)
            .take_while(|l| l.starts_with('|'))
            .filter_map(|l| l.split('|').nth(1).map(str::trim))
            .collect();
        let want: Vec<String> = KEYS
            .iter()
            .map(|b| {
                b.keys
                    .iter()
                    .map(|k| match k {
                        Key::Digit => "`0`-`9`".to_string(),
                        k => format!("`{}`", k.label()),
                    })
                    .collect::<Vec<_>>()
                    .join(", ")
            })
            .collect();
        assert_eq!(rows, want, "README.md's keys table and KEYS disagree");
    }

    #[test]
    fn labels_read_as_people_name_keys() {
        assert_eq!(
            Action::TogglePause.binding().map(|b| b.label()),
            Some("p, space".into())
        );
        assert_eq!(
            Action::Quit.binding().map(|b| b.label()),
            Some("q, Ctrl-C".into())
        );
        assert_eq!(
            Action::Back.binding().map(|b| b.label()),
            Some("Esc".into())
        );
    }
}
