//! The quality panel: the digit judge's latest score, fcd beside its floor, the recognised (and
//! asked-for) share, the score's trend over the run and a bar chart of the digits it reads.

use ratatui::buffer::Buffer;
use ratatui::layout::Rect;
use ratatui::style::{Modifier, Style};
use ratatui::text::{Line, Span};
use ratatui::widgets::{Bar, BarChart, Block, Borders, Sparkline, Widget};

use crate::dashboard::action::Action;
use crate::dashboard::app::App;
use crate::dashboard::theme::Theme;
use crate::protocol::QualityReport;
use crate::run::format::format_kid;
use crate::run::state::{Phase, SCORING_OFF_NOTE};

use super::losses::{BAR_MAX, finite_range, fit_to_width, to_bars};
use super::put_line;
use super::status::wrap;

/// Panel rows (borders included) once there are scores: at least, and at most.
pub const MIN_ROWS: u16 = 8;
pub const MAX_ROWS: u16 = 14;
/// Panel rows before the first scores: a border round two lines of text.
pub const WAITING_ROWS: u16 = 4;
/// Rows the loss panel above keeps at least (borders included): a label and a sparkline row
/// for each of its four series.
pub const LOSS_ROWS: u16 = 10;
/// A digit the judge reads rarer than this has all but vanished (the doctor's `mode_collapse`
/// says so too): its label is drawn as a warning.
pub use crate::doctor::RARE_SHARE;
/// Rows a part needs before it gets a caption row over its chart.
const CAPTION_FROM: u16 = 4;
/// Columns the trend needs to be worth drawing beside the bars.
const TREND_MIN: u16 = 8;
const GAP: &str = "  ";

/// Rows the panel takes from the bottom of a column `height` tall; 0 drops it, so the losses
/// above keep room to be read (and the layout does not change when the first scores come).
pub fn panel_height(app: &App, height: u16) -> u16 {
    if height < MIN_ROWS + LOSS_ROWS {
        return 0;
    }
    if app.run().quality().is_some() {
        (height * 2 / 5).clamp(MIN_ROWS, MAX_ROWS)
    } else {
        WAITING_ROWS
    }
}

/// A share as a whole percentage.
pub fn percent(share: f64) -> String {
    format!("{:.0}%", share * 100.0)
}

/// A distance in three or four significant figures: `1358`, `16.9`, `0.42`.
pub fn format_fcd(fcd: f64) -> String {
    let a = fcd.abs();
    if !fcd.is_finite() || a >= 100.0 {
        format!("{fcd:.0}")
    } else if a >= 10.0 {
        format!("{fcd:.1}")
    } else {
        format!("{fcd:.2}")
    }
}

/// A share in thousandths, for the bar chart's whole-number values.
pub fn permille(share: f64) -> u64 {
    if share.is_finite() {
        (share.clamp(0.0, 1.0) * 1000.0).round() as u64
    } else {
        0
    }
}

/// The report's numbers as segments, each kept whole on one line: the score and fcd first, the
/// shares after.
pub fn number_segments(q: &QualityReport, theme: &Theme) -> Vec<Vec<Span<'static>>> {
    let mut segments = vec![
        vec![
            Span::styled("score ", theme.text),
            Span::styled(
                format!("{:.2}", q.score),
                theme.score.add_modifier(Modifier::BOLD),
            ),
        ],
        vec![
            Span::styled(format!("fcd {}", format_fcd(q.fcd)), theme.text),
            Span::styled(format!(" (floor {})", format_fcd(q.fcd_floor)), theme.muted),
        ],
        vec![Span::styled(
            format!("recognised {}", percent(q.recognised)),
            theme.text,
        )],
    ];
    if let Some(agreement) = q.agreement {
        segments.push(vec![Span::styled(
            format!("asked-for {}", percent(agreement)),
            theme.text,
        )]);
    }
    segments
}

/// KID and precision/recall, each beside real digits' own (`manifold_lines` packs them).
pub fn manifold_segments(q: &QualityReport, theme: &Theme) -> Vec<Vec<Span<'static>>> {
    vec![
        vec![
            Span::styled(
                format!("kid {}±{}", format_kid(q.kid), format_kid(q.kid_std)),
                theme.text,
            ),
            Span::styled(format!(" (floor {})", format_kid(q.kid_floor)), theme.muted),
        ],
        vec![
            Span::styled(
                format!("P/R {}/{}", percent(q.precision), percent(q.recall)),
                theme.text,
            ),
            Span::styled(
                format!(
                    " (real {}/{})",
                    percent(q.precision_ceiling),
                    percent(q.recall_ceiling)
                ),
                theme.muted,
            ),
        ],
    ]
}

/// Packs segments into lines at most `width` wide, breaking only between them.
fn pack(segments: Vec<Vec<Span<'static>>>, theme: &Theme, width: u16) -> Vec<Line<'static>> {
    let width = usize::from(width);
    let mut lines: Vec<Vec<Span<'static>>> = Vec::new();
    let mut used = 0usize;
    for segment in segments {
        let w: usize = segment.iter().map(Span::width).sum();
        match lines.last_mut() {
            Some(line) if used + GAP.len() + w <= width => {
                line.push(Span::styled(GAP, theme.muted));
                line.extend(segment);
                used += GAP.len() + w;
            }
            _ => {
                lines.push(segment);
                used = w;
            }
        }
    }
    lines.into_iter().map(Line::from).collect()
}

/// Rows the charts under the numbers keep at least; KID and precision/recall give way to them.
const CHART_ROWS: u16 = 7;

/// Packs segments into lines at most `width` wide, breaking only between them; the shares start
/// a line of their own when the score and fcd share one.
pub fn number_lines(q: &QualityReport, theme: &Theme, width: u16) -> Vec<Line<'static>> {
    let width = usize::from(width);
    let mut lines: Vec<Vec<Span<'static>>> = Vec::new();
    let mut used = 0usize;
    for (i, segment) in number_segments(q, theme).into_iter().enumerate() {
        let w: usize = segment.iter().map(Span::width).sum();
        let fresh_row = i == 2;
        match lines.last_mut() {
            Some(line) if !fresh_row && used + GAP.len() + w <= width => {
                line.push(Span::styled(GAP, theme.muted));
                line.extend(segment);
                used += GAP.len() + w;
            }
            _ => {
                lines.push(segment);
                used = w;
            }
        }
    }
    lines.into_iter().map(Line::from).collect()
}

/// Bar width for ten bars one column apart in at most `width` columns, up to `max`.
pub fn bar_width(width: u16, max: u16) -> Option<u16> {
    (1..=max.max(1)).rev().find(|bw| 10 * bw + 9 <= width)
}

/// The class shares as bars, digit 0 first; values are drawn inside bars wide enough for them.
pub fn share_bars(q: &QualityReport, theme: &Theme, width: u16) -> Vec<Bar<'static>> {
    q.class_shares
        .iter()
        .enumerate()
        .map(|(digit, &share)| {
            let label_style = if share < RARE_SHARE {
                theme.warning
            } else {
                theme.muted
            };
            let value = if width >= 3 {
                format!("{:.0}", share * 100.0)
            } else {
                String::new()
            };
            Bar::new(permille(share))
                .label(Line::styled(digit.to_string(), label_style))
                .text_value(value)
        })
        .collect()
}

/// The first candidate that fits `width`, else the last.
fn fitting<'a>(candidates: &[&'a str], width: u16) -> &'a str {
    candidates
        .iter()
        .copied()
        .find(|c| c.chars().count() <= usize::from(width))
        .or_else(|| candidates.last().copied())
        .unwrap_or("")
}

/// The judge's panel.
pub struct QualityPanel<'a> {
    pub app: &'a App,
    pub theme: &'a Theme,
}

impl Widget for &QualityPanel<'_> {
    fn render(self, area: Rect, buf: &mut Buffer) {
        let area = area.intersection(buf.area);
        let (app, theme) = (self.app, self.theme);
        let scoring = if app.scoring() { " · scoring..." } else { "" };
        let candidates = match app.run().quality() {
            Some(q) => vec![
                format!(" scores · step {} · {} digits{scoring} ", q.step, q.count),
                format!(" scores · step {}{scoring} ", q.step),
                format!(" step {}{scoring} ", q.step),
            ],
            None => vec![format!(" scores{scoring} ")],
        };
        let texts: Vec<&str> = candidates.iter().map(String::as_str).collect();
        let title = fitting(&texts, area.width.saturating_sub(2)).to_string();
        let block = Block::default()
            .borders(Borders::ALL)
            .border_style(theme.border)
            .title(Span::styled(title, theme.title));
        let inner = block.inner(area);
        block.render(area, buf);
        if inner.is_empty() {
            return;
        }
        match app.run().quality() {
            Some(q) => render_report(app, theme, q, inner, buf),
            None => render_waiting(app, theme, inner, buf),
        }
    }
}

/// Before the first scores: when they come, and which key asks for them now.
fn render_waiting(app: &App, theme: &Theme, area: Rect, buf: &mut Buffer) {
    let rows = usize::from(area.height);
    let asks = matches!(app.run().phase(), Phase::Starting | Phase::Training);
    let (text, style) = if app.run().scoring_off() {
        (SCORING_OFF_NOTE, theme.warning)
    } else if app.scoring() {
        ("scoring the generator's digits...", theme.text)
    } else if asks {
        ("scores come after the first epoch", theme.muted)
    } else {
        ("no scores: the run has ended", theme.muted)
    };
    let mut lines: Vec<Line> = wrap(text, usize::from(area.width), rows)
        .into_iter()
        .map(|row| Line::styled(row, style))
        .collect();
    if asks && !app.scoring() && !app.run().scoring_off() {
        let key = Action::Evaluate.binding().and_then(|b| b.keys.first());
        if let Some(key) = key {
            lines.push(Line::from(vec![
                Span::styled("press ", theme.muted),
                Span::styled(key.label(), theme.key),
                Span::styled(" to score now", theme.muted),
            ]));
        }
    }
    for (row, line) in lines.iter().enumerate() {
        put_line(buf, area, u16::try_from(row).unwrap_or(u16::MAX), line);
    }
}

fn render_report(app: &App, theme: &Theme, q: &QualityReport, area: Rect, buf: &mut Buffer) {
    let mut numbers = number_lines(q, theme, area.width);
    let manifold = pack(manifold_segments(q, theme), theme, area.width);
    let rows = numbers.len() + manifold.len();
    if usize::from(area.height) >= rows + usize::from(CHART_ROWS) {
        numbers.extend(manifold);
    }
    for (row, line) in numbers.iter().enumerate() {
        put_line(buf, area, u16::try_from(row).unwrap_or(u16::MAX), line);
    }
    let used = u16::try_from(numbers.len()).unwrap_or(u16::MAX);
    if area.height <= used {
        return;
    }
    let below = Rect::new(area.x, area.y + used, area.width, area.height - used);
    // Bars on the right, the score's trend on the left when both fit.
    let Some(bw) =
        bar_width(below.width.saturating_mul(3) / 5, 3).or_else(|| bar_width(below.width, 1))
    else {
        render_trend(app, theme, below, buf);
        return;
    };
    let chart_width = 10 * bw + 9;
    let trend_width = below.width - chart_width;
    let chart = Rect::new(
        below.right() - chart_width,
        below.y,
        chart_width,
        below.height,
    );
    if trend_width > TREND_MIN {
        let trend = Rect::new(below.x, below.y, trend_width - 1, below.height);
        render_trend(app, theme, trend, buf);
    }
    render_shares(q, theme, chart, bw, buf);
}

/// A caption row over the score's sparkline: each report a point, the run's range in words.
fn render_trend(app: &App, theme: &Theme, area: Rect, buf: &mut Buffer) {
    let history = app.run().score_history();
    let points = fit_to_width(&history.points(), usize::from(area.width));
    let caption = match finite_range(&points) {
        Some((lo, hi)) if history.total() > 1 => {
            // Two decimals, as the score itself: a flat trend must not look like a climb.
            let range = format!("{lo:.2}-{hi:.2}");
            let long = format!("score trend {range}");
            let short = format!("trend {range}");
            fitting(
                &[long.as_str(), short.as_str(), range.as_str(), "trend"],
                area.width,
            )
            .to_string()
        }
        _ => fitting(
            &["score trend: 1 report", "trend: 1 report", "trend"],
            area.width,
        )
        .to_string(),
    };
    let spark_rows = if area.height >= CAPTION_FROM {
        put_line(buf, area, 0, &Line::styled(caption, theme.muted));
        area.height - 1
    } else {
        area.height
    };
    let spark = Rect::new(area.x, area.bottom() - spark_rows, area.width, spark_rows);
    Sparkline::default()
        .data(to_bars(&points))
        .max(BAR_MAX)
        .style(theme.score)
        .absent_value_symbol("·")
        .absent_value_style(theme.warning)
        .render(spark, buf);
}

/// A caption over ten bars, 0 to 9, the largest share full height.
fn render_shares(q: &QualityReport, theme: &Theme, area: Rect, bw: u16, buf: &mut Buffer) {
    let area = area.intersection(buf.area);
    let chart_area = if area.height >= CAPTION_FROM {
        let caption = if bw >= 3 {
            fitting(&["digits read as (%)", "read as (%)"], area.width)
        } else {
            fitting(&["digits read as", "read as"], area.width)
        };
        put_line(buf, area, 0, &Line::styled(caption, theme.muted));
        Rect::new(area.x, area.y + 1, area.width, area.height - 1)
    } else {
        area
    };
    let bars = share_bars(q, theme, bw);
    let max = q
        .class_shares
        .iter()
        .map(|&s| permille(s))
        .max()
        .unwrap_or(0);
    BarChart::new(bars)
        .max(max.max(1))
        .bar_width(bw)
        .bar_gap(1)
        .bar_style(theme.bars)
        .value_style(theme.bars.add_modifier(Modifier::REVERSED))
        .label_style(Style::new())
        .render(chart_area, buf);
}

#[cfg(test)]
pub(crate) mod tests_support {
    use crate::protocol::QualityReport;

    /// A report with digit 8 the most read and 5 nearly missing.
    pub(crate) fn report() -> QualityReport {
        QualityReport {
            step: 1876,
            epoch: 2,
            count: 2000,
            score: 8.214,
            fcd: 12.34,
            fcd_floor: 8.31,
            recognised: 0.934,
            class_shares: [0.09, 0.14, 0.1, 0.1, 0.08, 0.01, 0.11, 0.12, 0.15, 0.1],
            agreement: None,
            kid: 0.0123,
            kid_std: 0.0011,
            kid_floor: 0.0001,
            precision: 0.71,
            recall: 0.52,
            precision_ceiling: 0.78,
            recall_ceiling: 0.77,
            class_spread: [Some(0.9); 10],
            seconds: 1.25,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::tests_support::report;
    use super::*;

    fn text(line: &Line) -> String {
        line.spans.iter().map(|s| s.content.as_ref()).collect()
    }

    #[test]
    fn numbers_keep_score_and_fcd_together_and_shares_on_their_own_line() {
        let theme = Theme::default();
        let mut q = report();
        let wide: Vec<String> = number_lines(&q, &theme, 60).iter().map(text).collect();
        assert_eq!(
            wide,
            vec!["score 8.21  fcd 12.3 (floor 8.31)", "recognised 93%"]
        );
        q.agreement = Some(0.912);
        let wide: Vec<String> = number_lines(&q, &theme, 60).iter().map(text).collect();
        assert_eq!(
            wide,
            vec![
                "score 8.21  fcd 12.3 (floor 8.31)",
                "recognised 93%  asked-for 91%"
            ]
        );
        let lines: Vec<String> = number_lines(&q, &theme, 28).iter().map(text).collect();
        assert_eq!(
            lines,
            vec![
                "score 8.21",
                "fcd 12.3 (floor 8.31)",
                "recognised 93%",
                "asked-for 91%"
            ]
        );
        // A far-off generator's distance stays short.
        q.fcd = 1358.14;
        let lines: Vec<String> = number_lines(&q, &theme, 34).iter().map(text).collect();
        assert_eq!(
            lines.first().map(String::as_str),
            Some("score 8.21  fcd 1358 (floor 8.31)")
        );
        // Narrow: one segment a line, never an empty one.
        let narrow: Vec<String> = number_lines(&q, &theme, 10).iter().map(text).collect();
        assert_eq!(narrow.len(), 4);
        assert!(narrow.iter().all(|l| !l.is_empty()));
    }

    #[test]
    fn shares_scale_to_thousandths_and_bars_fit_their_width() {
        assert_eq!(permille(0.1234), 123);
        assert_eq!(permille(-1.0), 0);
        assert_eq!(permille(2.0), 1000);
        assert_eq!(permille(f64::NAN), 0);
        assert_eq!(bar_width(19, 3), Some(1));
        assert_eq!(bar_width(29, 3), Some(2));
        assert_eq!(bar_width(100, 3), Some(3));
        assert_eq!(bar_width(18, 3), None);
        assert_eq!(percent(0.934), "93%");
        assert_eq!(format_fcd(1358.14), "1358");
        assert_eq!(format_fcd(16.94), "16.9");
        assert_eq!(format_fcd(0.4249), "0.42");
        assert_eq!(format_fcd(f64::NAN), "NaN");
    }

    #[test]
    fn panel_height_gives_way_to_the_losses() {
        let app = App::new();
        assert_eq!(panel_height(&app, 17), 0);
        assert_eq!(panel_height(&app, 18), WAITING_ROWS);
        let mut app = App::new();
        app.on_msg(crate::protocol::TrainMsg::Quality(report()));
        assert_eq!(panel_height(&app, 17), 0);
        assert_eq!(panel_height(&app, 18), MIN_ROWS);
        assert_eq!(panel_height(&app, 20), MIN_ROWS);
        assert_eq!(panel_height(&app, 37), MAX_ROWS);
        assert_eq!(panel_height(&app, 200), MAX_ROWS);
    }
}
