//! The loss panel: a sparkline per series (D loss, G loss, D(x), D(G(z))) with its current value
//! and the window's min and max, over recent steps or the whole run; under them, when there is
//! room, the gradient norms of G and D side by side. The doctor's alarms are marked on every
//! plot by their letter, at the step they were raised, and the step of an older sample grid the
//! filmstrip shows by a vertical line. The plots are smoothed and on a log scale as the
//! dashboard's `CurveView` says.

use ratatui::buffer::Buffer;
use ratatui::layout::Rect;
use ratatui::style::{Modifier, Style};
use ratatui::text::{Line, Span};
use ratatui::widgets::{Block, Borders, Sparkline, SparklineBar, Widget};

use crate::dashboard::app::{App, HistoryView};
use crate::dashboard::curves::Scale;
use crate::dashboard::theme::Theme;
use crate::run::format::format_value;
use crate::run::history::{History, RECENT_POINTS, Series};

use super::{first_that_fits, put_line};

/// Bar heights are scaled into 1..=BAR_MAX so the window's minimum still shows as a sliver.
pub const BAR_MAX: u64 = 1000;
/// Rows inside the panel from which the gradient norms get a slot of their own.
pub const GRAD_SLOT_FROM: u16 = 10;

pub fn series_style(series: Series, theme: &Theme) -> Style {
    match series {
        Series::DLoss => theme.loss_d,
        Series::GLoss => theme.loss_g,
        Series::DReal => theme.d_real,
        Series::DFake => theme.d_fake,
        Series::GGradNorm => theme.loss_g,
        Series::DGradNorm => theme.loss_d,
    }
}

/// Squeezes points into at most `width` columns by averaging neighbours (non-finite values are
/// left out of a mean; a column of only non-finite values stays NaN).
pub fn fit_to_width(points: &[f32], width: usize) -> Vec<f32> {
    if points.len() <= width {
        return points.to_vec();
    }
    (0..width)
        .map(|i| {
            let (start, end) = (i * points.len() / width, (i + 1) * points.len() / width);
            let finite: Vec<f32> = points
                .get(start..end.max(start + 1))
                .unwrap_or(&[])
                .iter()
                .copied()
                .filter(|v| v.is_finite())
                .collect();
            if finite.is_empty() {
                f32::NAN
            } else {
                finite.iter().sum::<f32>() / finite.len() as f32
            }
        })
        .collect()
}

/// Min and max of the finite values.
pub fn finite_range(points: &[f32]) -> Option<(f32, f32)> {
    points
        .iter()
        .copied()
        .filter(|v| v.is_finite())
        .fold(None, |acc, v| match acc {
            None => Some((v, v)),
            Some((lo, hi)) => Some((lo.min(v), hi.max(v))),
        })
}

/// Bars scaled from the window's min (1) to its max (`BAR_MAX`); non-finite values are absent.
pub fn to_bars(points: &[f32]) -> Vec<SparklineBar> {
    to_bars_in(points, finite_range(points))
}

/// Bars scaled from `range`'s min (1) to its max (`BAR_MAX`).
pub fn to_bars_in(points: &[f32], range: Option<(f32, f32)>) -> Vec<SparklineBar> {
    points
        .iter()
        .map(|&v| match range {
            Some((lo, hi)) if v.is_finite() => {
                let t = if hi > lo { (v - lo) / (hi - lo) } else { 0.5 };
                SparklineBar::from(1 + (t * (BAR_MAX - 1) as f32).round() as u64)
            }
            _ => SparklineBar::from(None),
        })
        .collect()
}

/// The points a series shows at a given width, oldest first, smoothed as the app says.
pub fn window(app: &App, series: Series, width: usize) -> Vec<f32> {
    window_of(app, app.run().history(series), width)
}

/// The points of `history` shown at a given width in the app's view, oldest first, smoothed as
/// the app says: the recent view smooths every recent point kept, then shows the latest, so the
/// curve does not change as it scrolls.
pub fn window_of(app: &App, history: &History, width: usize) -> Vec<f32> {
    let curves = app.curves();
    if curves.smoothing() <= 0.0 {
        return raw_window_of(app, history, width);
    }
    match app.history_view() {
        HistoryView::Recent => {
            let smoothed = curves.smooth(&history.recent.tail(RECENT_POINTS));
            let skip = smoothed.len().saturating_sub(width);
            smoothed
                .get(skip..)
                .map(<[f32]>::to_vec)
                .unwrap_or_default()
        }
        HistoryView::WholeRun => fit_to_width(&curves.smooth(&history.full.points()), width),
    }
}

/// The points of `history` shown at a given width in the app's view, as logged.
pub fn raw_window_of(app: &App, history: &History, width: usize) -> Vec<f32> {
    match app.history_view() {
        HistoryView::Recent => history.recent.tail(width),
        HistoryView::WholeRun => fit_to_width(&history.full.points(), width),
    }
}

/// The loss panel's title in at most `width` cells: its name, the span shown, and the
/// smoothing and scale when on; the span's long form, then the name, go first when it is tight.
pub fn loss_title(app: &App, width: u16) -> String {
    let (long, short) = match app.history_view() {
        HistoryView::Recent => ("recent steps".to_string(), "recent"),
        HistoryView::WholeRun => {
            let full = &app.run().history(Series::DLoss).full;
            (format!("whole run, {} logged", full.total()), "whole run")
        }
    };
    let curves = app.curves().labels();
    let join = |name: bool, span: &str| {
        let parts: Vec<&str> = name
            .then_some("losses")
            .into_iter()
            .chain([span])
            .chain(curves.iter().map(String::as_str))
            .collect();
        format!(" {} ", parts.join(" · "))
    };
    first_that_fits(
        [join(true, &long), join(true, short), join(false, short)],
        width,
    )
}

/// Where the step of the older grid shown falls on a plot `width` wide.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FilmMark {
    /// The column whose logged step is nearest.
    At(usize),
    /// Before the first step plotted (the recent view has scrolled past it).
    Before,
}

/// The filmstrip's mark on the plots, when it shows an older grid.
pub fn film_mark(app: &App, width: usize) -> Option<FilmMark> {
    let target = app.film_position()?.step as f32;
    let steps = raw_window_of(app, app.step_axis(), width);
    let first = steps.iter().copied().find(|v| v.is_finite())?;
    if app.history_view() == HistoryView::Recent && target < first {
        return Some(FilmMark::Before);
    }
    steps
        .iter()
        .enumerate()
        .filter(|(_, s)| s.is_finite())
        .min_by(|(_, a), (_, b)| (*a - target).abs().total_cmp(&(*b - target).abs()))
        .map(|(column, _)| FilmMark::At(column))
}

/// Draws the filmstrip's mark on a plot: `▼` atop the step's column and a line down it (empty
/// cells get `│`, bars take the mark's colour), or `◀` at the left when the step is before the
/// plot.
fn mark_film(app: &App, theme: &Theme, plot: Rect, buf: &mut Buffer) {
    let plot = plot.intersection(buf.area);
    if plot.is_empty() {
        return;
    }
    let style = theme.title.add_modifier(Modifier::BOLD);
    match film_mark(app, usize::from(plot.width)) {
        None => {}
        Some(FilmMark::Before) => {
            buf[(plot.x, plot.y)].set_char('◀').set_style(style);
        }
        Some(FilmMark::At(column)) => {
            let x = plot.x + u16::try_from(column).unwrap_or(u16::MAX);
            if x >= plot.right() {
                return;
            }
            for y in plot.top()..plot.bottom() {
                let cell = &mut buf[(x, y)];
                if y == plot.top() {
                    cell.set_char('▼');
                } else if cell.symbol() == " " {
                    cell.set_char('│');
                }
                cell.set_style(style);
            }
        }
    }
}

/// A plot's points (and an overlaid curve's) mapped to the scale the app's curve view takes
/// for them, with their shared range on that scale.
struct Scaled {
    points: Vec<f32>,
    other: Vec<f32>,
    range: Option<(f32, f32)>,
    scale: Scale,
}

fn scaled(app: &App, points: &[f32], other: Option<&[f32]>) -> Scaled {
    let all: Vec<f32> = points.iter().chain(other.unwrap_or(&[])).copied().collect();
    let scale = app.curves().scale_for(&all);
    Scaled {
        points: scale.apply_all(points),
        other: scale.apply_all(other.unwrap_or(&[])),
        range: finite_range(&scale.apply_all(&all)),
        scale,
    }
}

/// The loss panel.
pub struct LossPanel<'a> {
    pub app: &'a App,
    pub theme: &'a Theme,
}

impl Widget for &LossPanel<'_> {
    fn render(self, area: Rect, buf: &mut Buffer) {
        let area = area.intersection(buf.area);
        let (app, theme) = (self.app, self.theme);
        let title = loss_title(app, area.width.saturating_sub(2));
        let block = Block::default()
            .borders(Borders::ALL)
            .border_style(theme.border)
            .title(Span::styled(title, theme.title));
        let inner = block.inner(area);
        block.render(area, buf);
        if inner.is_empty() {
            return;
        }
        if app.run().last_step().is_none() {
            put_line(
                buf,
                inner,
                0,
                &Line::styled("waiting for the first step...", theme.muted),
            );
            return;
        }
        // Slots as equal as the rows allow; a slot is a label row over its sparkline.
        let slots: u16 = if inner.height >= GRAD_SLOT_FROM { 5 } else { 4 };
        let (base, extra) = (inner.height / slots, inner.height % slots);
        let mut y = inner.y;
        for i in 0..slots {
            let rows = (base + u16::from(i < extra)).max(1);
            if y >= inner.bottom() {
                break;
            }
            let slot_area = Rect::new(inner.x, y, inner.width, rows.min(inner.bottom() - y));
            match Series::ALL.get(usize::from(i)) {
                Some(series) => render_series(app, theme, *series, slot_area, buf),
                None => render_grad_norms(app, theme, slot_area, buf),
            }
            y += rows;
        }
    }
}

/// The columns (from the left of a plot `width` wide) and letters of the alarms that fall in
/// the plotted window.
pub fn alarm_columns(app: &App, width: usize) -> Vec<(usize, char)> {
    let run = app.run();
    let total = run.logged_steps();
    let history = &run.history(Series::DLoss);
    run.alarms()
        .iter()
        .filter(|a| a.logged > 0)
        .filter_map(|a| {
            let index = a.logged - 1;
            let column = match app.history_view() {
                HistoryView::Recent => {
                    let shown = (history.recent.len().min(width)) as u64;
                    let first = total.saturating_sub(shown);
                    (index >= first).then(|| (index - first) as usize)?
                }
                HistoryView::WholeRun => {
                    let per = history.full.per_point().max(1);
                    let point = (index / per) as usize;
                    let points = history.full.points().len();
                    if points <= width {
                        point
                    } else {
                        point * width / points.max(1)
                    }
                }
            };
            (column < width).then_some((column, a.kind.letter()))
        })
        .collect()
}

/// Draws the alarms' letters on the top row of a plot.
fn mark_alarms(app: &App, theme: &Theme, plot: Rect, buf: &mut Buffer) {
    let plot = plot.intersection(buf.area);
    if plot.is_empty() {
        return;
    }
    for (column, letter) in alarm_columns(app, usize::from(plot.width)) {
        let x = plot.x + u16::try_from(column).unwrap_or(u16::MAX);
        if x < plot.right() {
            buf[(x, plot.y)]
                .set_char(letter)
                .set_style(theme.warning.add_modifier(Modifier::BOLD));
        }
    }
}

/// A sparkline of `series` filling `area`, scaled to its own window, alarms marked; returns
/// the scale it took.
fn render_spark(app: &App, theme: &Theme, series: Series, area: Rect, buf: &mut Buffer) -> Scale {
    let points = window(app, series, usize::from(area.width));
    let plot = scaled(app, &points, None);
    Sparkline::default()
        .data(to_bars_in(&plot.points, plot.range))
        .max(BAR_MAX)
        .style(series_style(series, theme))
        .absent_value_symbol("·")
        .absent_value_style(theme.warning)
        .render(area, buf);
    mark_film(app, theme, area, buf);
    mark_alarms(app, theme, area, buf);
    plot.scale
}

/// G's and D's gradient norms: their latest values on one row, a sparkline each side by side.
fn render_grad_norms(app: &App, theme: &Theme, area: Rect, buf: &mut Buffer) {
    let last = app.run().last_step();
    let mut spans = Vec::new();
    for series in Series::GRAD_NORMS {
        let value = last
            .map(|s| series.value(s))
            .filter(|v| v.is_finite())
            .map_or("-".to_string(), format_value);
        if !spans.is_empty() {
            spans.push(Span::raw("  "));
        }
        spans.push(Span::styled(
            format!("{} ", series.label()),
            series_style(series, theme).add_modifier(Modifier::BOLD),
        ));
        spans.push(Span::styled(value, theme.text));
    }
    spans.push(Span::styled(" grad norms", theme.muted));
    if area.height < 2 || area.width < 3 {
        put_line(buf, area, 0, &Line::from(spans));
        return;
    }
    let half = (area.width - 1) / 2;
    let rows = area.height - 1;
    let left = Rect::new(area.x, area.y + 1, half, rows);
    let right = Rect::new(area.x + half + 1, area.y + 1, area.width - half - 1, rows);
    let scales = [
        render_spark(app, theme, Series::GGradNorm, left, buf),
        render_spark(app, theme, Series::DGradNorm, right, buf),
    ];
    if scales.contains(&Scale::SymLog) {
        spans.push(Span::styled(" symlog", theme.warning));
    }
    put_line(buf, area, 0, &Line::from(spans));
}

fn render_series(app: &App, theme: &Theme, series: Series, area: Rect, buf: &mut Buffer) {
    let style = series_style(series, theme);
    let points = window(app, series, usize::from(area.width));
    let parent = app.parent_overlay().map(|p| {
        let points = window_of(app, p.history(series), usize::from(area.width));
        let now = app
            .run()
            .last_step()
            .and_then(|s| p.at(s.step))
            .map(|r| series.value(r));
        (points, now)
    });
    let current = app.run().last_step().map(|s| series.value(s));
    let mut spans = vec![
        Span::styled(
            format!("{:<7} ", series.label()),
            style.add_modifier(Modifier::BOLD),
        ),
        Span::styled(current.map_or("-".to_string(), format_value), theme.text),
    ];
    // With the parent overlaid, both share one scale.
    let both: Vec<f32> = match &parent {
        Some((p, _)) => points.iter().chain(p).copied().collect(),
        None => points.clone(),
    };
    let range = finite_range(&both);
    let plot = scaled(app, &points, parent.as_ref().map(|(p, _)| p.as_slice()));
    // A log scale cannot show values <= 0: this plot is on the symmetric log, and says so.
    if plot.scale == Scale::SymLog {
        spans.push(Span::styled(" symlog", theme.warning));
    }
    if let Some((p, now)) = &parent {
        let now = now.map_or("-".to_string(), format_value);
        spans.push(Span::styled(format!(" parent {now}"), theme.warning));
        if p.iter().all(|v| !v.is_finite()) {
            spans.push(Span::styled(" (no steps here)", theme.muted));
        }
    } else if let Some((lo, hi)) = range {
        let min_max = Span::styled(
            format!(" min {} max {}", format_value(lo), format_value(hi)),
            theme.muted,
        );
        // The symlog note goes before the range; a range it pushes out is left out whole, not
        // cut short into a wrong number.
        let width: usize = spans.iter().map(Span::width).sum::<usize>() + min_max.width();
        if plot.scale != Scale::SymLog || width <= usize::from(area.width) {
            spans.push(min_max);
        }
    }
    put_line(buf, area, 0, &Line::from(spans));
    if area.height < 2 {
        return;
    }
    let spark_area = Rect::new(area.x, area.y + 1, area.width, area.height - 1);
    Sparkline::default()
        .data(to_bars_in(&plot.points, plot.range))
        .max(BAR_MAX)
        .style(style)
        .absent_value_symbol("·")
        .absent_value_style(theme.warning)
        .render(spark_area, buf);
    mark_film(app, theme, spark_area, buf);
    if let (Some(_), Some((lo, hi))) = (&parent, plot.range) {
        // The parent's curve as a dot per column, at the height its bar would have.
        let rows = f32::from(spark_area.height);
        for (i, &v) in plot.other.iter().enumerate() {
            if !v.is_finite() || i >= usize::from(spark_area.width) {
                continue;
            }
            let t = if hi > lo { (v - lo) / (hi - lo) } else { 0.5 };
            let from_bottom = ((t * rows).ceil() as u16).clamp(1, spark_area.height);
            let (x, y) = (spark_area.x + i as u16, spark_area.bottom() - from_bottom);
            if let Some(cell) = buf.cell_mut((x, y)) {
                cell.set_char('•').set_style(theme.warning);
            }
        }
    }
    mark_alarms(app, theme, spark_area, buf);
}

#[cfg(test)]
mod tests {
    use super::*;

    fn height(bar: &SparklineBar) -> Option<u64> {
        // SparklineBar hides its value; compare against constructed bars instead.
        (0..=BAR_MAX).find(|&v| SparklineBar::from(v) == *bar)
    }

    #[test]
    fn bars_span_the_window_from_min_to_max() {
        let bars = to_bars(&[2.0, 4.0, 3.0]);
        let heights: Vec<Option<u64>> = bars.iter().map(height).collect();
        assert_eq!(heights, vec![Some(1), Some(BAR_MAX), Some(501)]);
    }

    #[test]
    fn flat_and_broken_values_do_not_break_the_scale() {
        let flat: Vec<Option<u64>> = to_bars(&[0.7, 0.7]).iter().map(height).collect();
        assert_eq!(flat, vec![Some(501), Some(501)]);
        let broken = to_bars(&[1.0, f32::NAN, 3.0, f32::INFINITY]);
        assert_eq!(broken.get(1), Some(&SparklineBar::from(None)));
        assert_eq!(broken.get(3), Some(&SparklineBar::from(None)));
        assert_eq!(broken.get(2).and_then(height), Some(BAR_MAX));
        assert!(
            to_bars(&[f32::NAN])
                .iter()
                .all(|b| *b == SparklineBar::from(None))
        );
        assert!(to_bars(&[]).is_empty());
    }

    #[test]
    fn fitting_averages_neighbours_and_skips_nan() {
        assert_eq!(fit_to_width(&[1.0, 2.0], 5), vec![1.0, 2.0]);
        assert_eq!(fit_to_width(&[1.0, 3.0, 5.0, 7.0], 2), vec![2.0, 6.0]);
        assert_eq!(fit_to_width(&[1.0, f32::NAN, 5.0, 7.0], 2), vec![1.0, 6.0]);
        let five = fit_to_width(&(0..100).map(|v| v as f32).collect::<Vec<_>>(), 5);
        assert_eq!(five.len(), 5);
        assert!(five.windows(2).all(|w| w[0] < w[1]));
        assert!(fit_to_width(&[1.0], 0).is_empty());
    }

    #[test]
    fn range_ignores_non_finite_values() {
        assert_eq!(
            finite_range(&[f32::NAN, 2.0, -1.0, f32::INFINITY]),
            Some((-1.0, 2.0))
        );
        assert_eq!(finite_range(&[f32::NAN]), None);
    }
}
