//! Read-only widgets that draw the dashboard from plain data.
//!
//! `Dashboard` lays out the loss panel with the judge's scores under it, the digit grid and the
//! status bar, and overlays the help popup or the "stopping" notice. Nothing here changes state or knows about the trainer's
//! internals; every widget clips to the buffer, so any terminal size is safe to draw.

pub mod digits;
pub mod help;
pub mod losses;
pub mod quality;
pub mod status;

use ratatui::Frame;
use ratatui::buffer::Buffer;
use ratatui::layout::{Constraint, Layout, Rect};
use ratatui::text::{Line, Span};
use ratatui::widgets::{Block, Borders, Clear, Paragraph, Widget, Wrap};

use crate::dashboard::app::App;
use crate::dashboard::theme::{Theme, ThemeSet};
use crate::run::state::Phase;

use self::digits::DigitPanel;
use self::help::HelpPopup;
use self::losses::LossPanel;
use self::quality::QualityPanel;
use self::status::{StatusBar, status_height};

/// Below this size the layout would be unreadable, so the screen says so instead.
pub const MIN_WIDTH: u16 = 50;
pub const MIN_HEIGHT: u16 = 15;

/// Draws the whole dashboard into a frame, in the theme the app has chosen from `themes`.
pub fn draw(frame: &mut Frame, app: &App, themes: &ThemeSet) {
    let theme = themes.get(app.theme_index());
    frame.render_widget(&Dashboard { app, theme }, frame.area());
}

/// The whole screen.
pub struct Dashboard<'a> {
    pub app: &'a App,
    pub theme: &'a Theme,
}

/// Where each part of the dashboard goes on a screen that is big enough.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Areas {
    pub losses: Rect,
    /// Under the losses; no rows on short screens, so the losses keep room to be read.
    pub scores: Rect,
    pub digits: Rect,
    pub status: Rect,
    /// Everything above the status bar.
    pub main: Rect,
}

impl Areas {
    /// The left column holds numbers (losses, then the judge's scores), the right pictures, the
    /// status bar runs along the bottom and grows as its note wraps.
    pub fn of(app: &App, theme: &Theme, area: Rect) -> Areas {
        let status_rows = status_height(app, theme, area.width).min(area.height / 2);
        let [main, status] =
            Layout::vertical([Constraint::Fill(1), Constraint::Length(status_rows)]).areas(area);
        let loss_width = (area.width * 45 / 100).clamp(34, 60).min(area.width);
        let [left, digits] =
            Layout::horizontal([Constraint::Length(loss_width), Constraint::Fill(1)]).areas(main);
        let quality_rows = quality::panel_height(app, main.height);
        let [losses, scores] =
            Layout::vertical([Constraint::Fill(1), Constraint::Length(quality_rows)]).areas(left);
        Areas {
            losses,
            scores,
            digits,
            status,
            main,
        }
    }
}

impl Widget for &Dashboard<'_> {
    fn render(self, area: Rect, buf: &mut Buffer) {
        let area = area.intersection(buf.area);
        let (app, theme) = (self.app, self.theme);
        buf.set_style(area, theme.background);
        if area.width < MIN_WIDTH || area.height < MIN_HEIGHT {
            let text = format!(
                "terminal too small: {}x{}; gan-tui needs at least {MIN_WIDTH}x{MIN_HEIGHT} (q quits)",
                area.width, area.height
            );
            Paragraph::new(text)
                .style(theme.warning)
                .wrap(Wrap { trim: true })
                .render(area, buf);
            return;
        }
        let areas = Areas::of(app, theme, area);
        LossPanel { app, theme }.render(areas.losses, buf);
        QualityPanel { app, theme }.render(areas.scores, buf);
        DigitPanel { app, theme }.render(areas.digits, buf);
        StatusBar { app, theme }.render(areas.status, buf);

        if *app.run().phase() == Phase::Stopping {
            stopping_notice(theme, areas.main, buf);
        }
        if app.help_open() {
            HelpPopup { theme }.render(area, buf);
        }
    }
}

fn stopping_notice(theme: &Theme, area: Rect, buf: &mut Buffer) {
    let lines = [
        Line::styled("stopping: saving checkpoint...", theme.warning),
        Line::styled("(q again: quit without waiting)", theme.muted),
    ];
    let width = lines.iter().map(Line::width).max().unwrap_or(0) + 4;
    let popup = centred(area, u16::try_from(width).unwrap_or(u16::MAX), 4);
    Clear.render(popup, buf);
    buf.set_style(popup, theme.background);
    let block = Block::default()
        .borders(Borders::ALL)
        .border_style(theme.warning)
        .title(Span::styled(" quit ", theme.title));
    let inner = block.inner(popup);
    block.render(popup, buf);
    for (row, line) in lines.iter().enumerate() {
        put_line(buf, inner, row as u16, &line.clone().centered());
    }
}

/// A `width` x `height` rectangle centred in `area`, shrunk to fit it.
pub fn centred(area: Rect, width: u16, height: u16) -> Rect {
    let (w, h) = (width.min(area.width), height.min(area.height));
    Rect::new(
        area.x + (area.width - w) / 2,
        area.y + (area.height - h) / 2,
        w,
        h,
    )
}

/// Writes one line at `row` of `area`, clipped to the area and the buffer; rows outside draw
/// nothing. Every text write in the dashboard goes through here, so no size can make one panic.
pub fn put_line(buf: &mut Buffer, area: Rect, row: u16, line: &Line) {
    let area = area.intersection(buf.area);
    if row >= area.height || area.width == 0 {
        return;
    }
    let y = area.y + row;
    let mut x = area.x;
    let mut left = area.width;
    let x_offset = match line.alignment {
        Some(ratatui::layout::HorizontalAlignment::Center) => {
            let w = u16::try_from(line.width()).unwrap_or(u16::MAX);
            area.width.saturating_sub(w) / 2
        }
        Some(ratatui::layout::HorizontalAlignment::Right) => {
            let w = u16::try_from(line.width()).unwrap_or(u16::MAX);
            area.width.saturating_sub(w)
        }
        _ => 0,
    };
    x += x_offset;
    left -= x_offset;
    buf.set_line(x, y, line, left);
}

#[cfg(test)]
pub(crate) mod tests;

/// The first of `titles` (longest first) that fits in `width` columns, else the last.
pub fn first_that_fits<const N: usize>(titles: [String; N], width: u16) -> String {
    let fits = |t: &String| t.chars().count() <= usize::from(width);
    let last = titles.last().cloned().unwrap_or_default();
    titles.into_iter().find(fits).unwrap_or(last)
}
