//! The status bar: run state, progress and speed, the latest note (checkpoint path or error) and
//! a one-line key hint generated from the key table.

use ratatui::buffer::Buffer;
use ratatui::layout::Rect;
use ratatui::style::Style;
use ratatui::text::{Line, Span};
use ratatui::widgets::Widget;

use crate::dashboard::action::{Action, KEYS};
use crate::dashboard::app::{App, STOP_CONFIRM_NOTE, WatchMode};
use crate::dashboard::theme::Theme;
use crate::run::format::{format_duration, format_learning_rate};
use crate::run::state::{Note, NoteKind, Phase};

use super::put_line;

const GAP: &str = "  ";

/// The state badge: what the trainer last confirmed, or that a request is on its way.
pub fn state_badge(app: &App, theme: &Theme) -> (String, Style) {
    let replay = app.watch_mode() == Some(WatchMode::Replay);
    match app.run().phase() {
        Phase::Starting | Phase::Training if replay => ("NOT RUNNING".to_string(), theme.muted),
        Phase::Starting => ("STARTING".to_string(), theme.muted),
        Phase::Stopping => ("STOPPING".to_string(), theme.warning),
        Phase::Finished(_) => ("FINISHED".to_string(), theme.ok),
        Phase::Failed(_) => ("FAILED".to_string(), theme.error),
        Phase::Diverged(_) => ("DIVERGED".to_string(), theme.error),
        Phase::Training => match (app.run().paused(), app.pause_requested()) {
            (false, Some(true)) => ("PAUSING...".to_string(), theme.paused),
            (true, Some(false)) => ("RESUMING...".to_string(), theme.running),
            (true, _) => ("PAUSED".to_string(), theme.paused),
            (false, _) => ("RUNNING".to_string(), theme.running),
        },
    }
}

/// The facts of the run as separate segments, so a narrow bar can wrap between them.
pub fn fact_segments(app: &App, theme: &Theme) -> Vec<Span<'static>> {
    let (badge, badge_style) = state_badge(app, theme);
    let mut out = vec![Span::styled(format!(" {badge} "), badge_style)];
    match app.watch_mode() {
        Some(WatchMode::Live) => out.push(Span::styled("watching live", theme.title)),
        Some(WatchMode::Replay) => out.push(Span::styled("replay", theme.warning)),
        None => {}
    }
    if let Some(alarm) = app.run().last_alarm() {
        out.push(Span::styled(
            format!("alarm {} at step {}", alarm.kind.name(), alarm.step),
            theme.warning,
        ));
    }
    if let Some(run) = app.run().run_info() {
        out.push(Span::styled(run.preset.clone(), theme.title));
        out.push(Span::styled(run.data_source.clone(), theme.text));
    }
    let (run, step) = (app.run().run_info(), app.run().last_step());
    if let Some(run) = run {
        let epoch = step.map_or(0, |s| s.epoch);
        out.push(Span::styled(
            format!("epoch {epoch}/{}", run.epochs),
            theme.text,
        ));
        let done = app.run().step().unwrap_or(run.start_step);
        out.push(Span::styled(
            format!("step {done}/{}", run.total_steps),
            theme.text,
        ));
    }
    if let Some(s) = step {
        out.push(Span::styled(
            format!("{:.1} steps/s", s.steps_per_s),
            theme.text,
        ));
        out.push(Span::styled(
            format!("lr {}", format_learning_rate(s.lr)),
            theme.text,
        ));
        out.push(Span::styled(
            format!("elapsed {}", format_duration(s.elapsed_s)),
            theme.text,
        ));
    }
    if run.is_some() {
        let eta = app.run().eta_s().map_or("--".to_string(), format_duration);
        out.push(Span::styled(format!("ETA {eta}"), theme.text));
    }
    out.push(Span::styled(
        format!("theme {}", app.theme_name()),
        theme.muted,
    ));
    out
}

/// The facts packed into lines of at most `width` cells. The last fact, the theme's name, is
/// the least needed: it is shown where it fits on the last line, never given a line of its own
/// (which would take a row from the plots).
pub fn fact_lines(app: &App, theme: &Theme, width: u16, muted: Style) -> Vec<Line<'static>> {
    let mut segments = fact_segments(app, theme);
    let theme_name = segments.pop();
    let mut lines = pack(segments.clone(), width, muted);
    if let Some(name) = theme_name {
        segments.push(name);
        let with_name = pack(segments, width, muted);
        if with_name.len() == lines.len() {
            lines = with_name;
        }
    }
    lines
}

/// Packs segments into lines of at most `width` cells, breaking only between segments.
pub fn pack(segments: Vec<Span<'static>>, width: u16, muted: Style) -> Vec<Line<'static>> {
    let mut lines: Vec<Vec<Span<'static>>> = Vec::new();
    let mut used = 0usize;
    for segment in segments {
        let w = segment.width();
        match lines.last_mut() {
            Some(line) if used + GAP.len() + w <= usize::from(width) => {
                line.push(Span::styled(GAP, muted));
                line.push(segment);
                used += GAP.len() + w;
            }
            _ => {
                lines.push(vec![segment]);
                used = w;
            }
        }
    }
    lines.into_iter().map(Line::from).collect()
}

/// Rows a note may take before it is cut short: enough for a long checkpoint path.
const NOTE_ROWS: usize = 3;

/// The message: the stop prompt while it waits for its answer, else the latest note, or else
/// the last checkpoint, wrapped to `width` so a path is seen whole.
pub fn note_lines(app: &App, theme: &Theme, width: u16) -> Vec<Line<'static>> {
    let prompt = app.stop_prompt_shown().then(|| Note {
        kind: NoteKind::Warning,
        text: STOP_CONFIRM_NOTE.to_string(),
    });
    let note = prompt.as_ref().or(app.run().note());
    let (text, style) = match (note, app.run().last_checkpoint()) {
        (Some(note), _) => {
            let style = match note.kind {
                NoteKind::Info => theme.text,
                NoteKind::Ok => theme.ok,
                NoteKind::Warning => theme.warning,
                NoteKind::Error => theme.error,
            };
            (note.text.clone(), style)
        }
        (None, Some(path)) => (format!("last checkpoint: {}", path.display()), theme.text),
        (None, None) => ("no checkpoint yet".to_string(), theme.muted),
    };
    wrap(&text, usize::from(width), NOTE_ROWS)
        .into_iter()
        .map(|row| Line::styled(row, style))
        .collect()
}

/// Greedy word wrap to `width` characters, splitting words longer than a line, in at most
/// `max_rows` rows; text cut off ends in `…`.
pub fn wrap(text: &str, width: usize, max_rows: usize) -> Vec<String> {
    let width = width.max(1);
    let mut rows: Vec<String> = Vec::new();
    let mut current = String::new();
    for word in text.split(' ') {
        let mut word: Vec<char> = word.chars().collect();
        let used = current.chars().count();
        if used > 0 && used + 1 + word.len() <= width {
            current.push(' ');
            current.extend(&word);
            continue;
        }
        if used > 0 {
            rows.push(std::mem::take(&mut current));
        }
        while word.len() > width {
            let rest = word.split_off(width);
            rows.push(word.into_iter().collect());
            word = rest;
        }
        current = word.into_iter().collect();
    }
    if !current.is_empty() || rows.is_empty() {
        rows.push(current);
    }
    if rows.len() > max_rows {
        rows.truncate(max_rows.max(1));
        if let Some(last) = rows.last_mut() {
            let mut chars: Vec<char> = last.chars().collect();
            chars.truncate(width - 1);
            chars.push('…');
            *last = chars.into_iter().collect();
        }
    }
    rows
}

/// `? help  q quit  p pause ...` in at most `width` cells: help and quit first, then the table's
/// order, as many as fit (the help popup lists them all).
pub fn key_hint(theme: &Theme, width: u16) -> Line<'static> {
    let first = [Action::ToggleHelp, Action::Quit];
    let ordered = first
        .iter()
        .filter_map(|a| a.binding())
        .chain(KEYS.iter().filter(|b| !first.contains(&b.action)));
    let mut spans = Vec::new();
    let mut used = 0usize;
    for binding in ordered.filter(|b| !b.hint.is_empty()) {
        let Some(key) = binding.keys.first() else {
            continue;
        };
        let gap = if spans.is_empty() { "" } else { GAP };
        let entry = [
            Span::styled(gap, theme.muted),
            Span::styled(key.label(), theme.key),
            Span::styled(format!(" {}", binding.hint), theme.muted),
        ];
        let w: usize = entry.iter().map(Span::width).sum();
        // Help always shows, however narrow: it is the way to the rest.
        if !spans.is_empty() && used + w > usize::from(width) {
            break;
        }
        spans.extend(entry.into_iter().filter(|s| !s.content.is_empty()));
        used += w;
    }
    Line::from(spans)
}

/// Rows the status bar needs at this width: the facts, the note and the key hint.
pub fn status_height(app: &App, theme: &Theme, width: u16) -> u16 {
    let facts = fact_lines(app, theme, width, Style::new()).len().max(1);
    let note = note_lines(app, theme, width).len();
    u16::try_from(facts + note + 1).unwrap_or(u16::MAX)
}

pub struct StatusBar<'a> {
    pub app: &'a App,
    pub theme: &'a Theme,
}

impl Widget for &StatusBar<'_> {
    fn render(self, area: Rect, buf: &mut Buffer) {
        let area = area.intersection(buf.area);
        let theme = self.theme;
        let facts = fact_lines(self.app, theme, area.width, theme.muted);
        let mut row = 0u16;
        for line in &facts {
            put_line(buf, area, row, line);
            row += 1;
        }
        for line in note_lines(self.app, theme, area.width) {
            put_line(buf, area, row, &line);
            row += 1;
        }
        put_line(buf, area, row, &key_hint(theme, area.width));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn text(line: &Line) -> String {
        line.spans.iter().map(|s| s.content.as_ref()).collect()
    }

    #[test]
    fn packing_breaks_between_segments_only() {
        let segs = vec![Span::raw("aaaa"), Span::raw("bbb"), Span::raw("cc")];
        let lines = pack(segs.clone(), 9, Style::new());
        let texts: Vec<String> = lines.iter().map(text).collect();
        assert_eq!(texts, vec!["aaaa  bbb", "cc"]);
        let wide: Vec<String> = pack(segs.clone(), 80, Style::new())
            .iter()
            .map(text)
            .collect();
        assert_eq!(wide, vec!["aaaa  bbb  cc"]);
        // Too narrow for any segment: one per line, never an empty line.
        assert_eq!(pack(segs, 1, Style::new()).len(), 3);
    }

    #[test]
    fn wrapping_keeps_words_whole_and_splits_only_long_ones() {
        assert_eq!(wrap("aa bb cc", 5, 3), vec!["aa bb", "cc"]);
        assert_eq!(wrap("", 5, 3), vec![""]);
        assert_eq!(
            wrap("saved: /a/very/long/path", 10, 3),
            vec!["saved:", "/a/very/lo", "ng/path"]
        );
        assert_eq!(wrap("one two three four", 5, 2), vec!["one", "two…"]);
        assert_eq!(wrap("x", 0, 0), vec!["…"]);
    }

    #[test]
    fn key_hint_starts_with_help_and_quit_and_fills_the_width_in_table_order() {
        let theme = Theme::default();
        let hint = text(&key_hint(&theme, 80));
        assert_eq!(
            hint,
            "? help  q quit  p pause  s save  e score  0-9 digit  r resample  h history"
        );
        // Wide enough, every hinted key is there, and Esc (no hint word) never is.
        let wide = text(&key_hint(&theme, 200));
        for binding in KEYS.iter().filter(|b| !b.hint.is_empty()) {
            assert!(wide.contains(binding.hint), "{wide} lacks {}", binding.hint);
        }
        assert!(!wide.contains("Esc"));
        assert!(wide.chars().count() <= 120, "{wide}");
        // Every width gets a hint no wider than itself, down to help alone.
        for width in 6..=120u16 {
            let hint = text(&key_hint(&theme, width));
            assert!(
                hint.chars().count() <= usize::from(width),
                "{width}: {hint}"
            );
            assert!(hint.starts_with("? help"), "{width}: {hint}");
        }
        assert_eq!(text(&key_hint(&theme, 0)), "? help");
    }
}
