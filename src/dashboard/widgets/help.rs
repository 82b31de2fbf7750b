//! The help popup: every key and what it does, read from the same table as the key map.

use ratatui::buffer::Buffer;
use ratatui::layout::Rect;
use ratatui::text::{Line, Span};
use ratatui::widgets::{Block, Borders, Clear, Widget};

use crate::dashboard::action::KEYS;
use crate::dashboard::theme::Theme;

use super::{centred, put_line};

/// One line per key binding: the keys, padded to a column, then the description.
pub fn help_lines(theme: &Theme) -> Vec<Line<'static>> {
    let labels: Vec<String> = KEYS.iter().map(|b| b.label()).collect();
    let column = labels.iter().map(|l| l.chars().count()).max().unwrap_or(0);
    KEYS.iter()
        .zip(labels)
        .map(|(binding, label)| {
            Line::from(vec![
                Span::styled(format!("{label:>column$}"), theme.key),
                Span::styled(format!("  {}", binding.description), theme.text),
            ])
        })
        .collect()
}

pub struct HelpPopup<'a> {
    pub theme: &'a Theme,
}

impl Widget for &HelpPopup<'_> {
    fn render(self, area: Rect, buf: &mut Buffer) {
        let area = area.intersection(buf.area);
        let theme = self.theme;
        let lines = help_lines(theme);
        let width = lines.iter().map(Line::width).max().unwrap_or(0) + 4;
        let height = lines.len() + 2;
        let popup = centred(
            area,
            u16::try_from(width).unwrap_or(u16::MAX),
            u16::try_from(height).unwrap_or(u16::MAX),
        );
        Clear.render(popup, buf);
        buf.set_style(popup, theme.background);
        let block = Block::default()
            .borders(Borders::ALL)
            .border_style(theme.border)
            .title(Span::styled(" keys ", theme.title))
            .title_bottom(Span::styled(" ? or Esc closes ", theme.muted));
        let inner = block.inner(popup);
        block.render(popup, buf);
        let text_area = Rect::new(
            inner.x.saturating_add(1),
            inner.y,
            inner.width.saturating_sub(2),
            inner.height,
        )
        .intersection(inner);
        for (row, line) in lines.iter().enumerate() {
            put_line(buf, text_area, u16::try_from(row).unwrap_or(u16::MAX), line);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn help_lists_every_binding_with_its_keys() {
        let lines = help_lines(&Theme::default());
        assert_eq!(lines.len(), KEYS.len());
        for (line, binding) in lines.iter().zip(KEYS) {
            let text: String = line.spans.iter().map(|s| s.content.as_ref()).collect();
            assert!(text.trim_start().starts_with(&binding.label()), "{text}");
            assert!(text.ends_with(binding.description), "{text}");
        }
    }
}
