//! Read-only widgets that draw the dashboard from plain data.
//!
//! `Dashboard` lays out the loss panel, the digit grid and the status bar, and overlays the help
//! popup or the "stopping" notice. Nothing here changes state or knows about the trainer's
//! internals; every widget clips to the buffer, so any terminal size is safe to draw.

pub mod digits;
pub mod help;
pub mod losses;
pub mod status;

use ratatui::Frame;
use ratatui::buffer::Buffer;
use ratatui::layout::Rect;
use ratatui::text::{Line, Span};
use ratatui::widgets::{Block, Borders, Clear, Paragraph, Widget, Wrap};

use crate::app::{App, Phase};

use self::digits::DigitPanel;
use self::help::HelpPopup;
use self::losses::LossPanel;
use self::status::{StatusBar, status_height};

/// Below this size the layout would be unreadable, so the screen says so instead.
pub const MIN_WIDTH: u16 = 50;
pub const MIN_HEIGHT: u16 = 15;

/// Draws the whole dashboard into a frame.
pub fn draw(frame: &mut Frame, app: &App) {
    frame.render_widget(&Dashboard { app }, frame.area());
}

/// The whole screen.
pub struct Dashboard<'a> {
    pub app: &'a App,
}

impl Widget for &Dashboard<'_> {
    fn render(self, area: Rect, buf: &mut Buffer) {
        let area = area.intersection(buf.area);
        let app = self.app;
        let theme = app.theme();
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
        let status_rows = status_height(app, area.width).min(area.height / 2);
        let main = Rect::new(area.x, area.y, area.width, area.height - status_rows);
        let status = Rect::new(area.x, main.bottom(), area.width, status_rows);
        let loss_width = (area.width * 45 / 100).clamp(34, 60).min(area.width);
        let losses = Rect::new(main.x, main.y, loss_width, main.height);
        let digits = Rect::new(losses.right(), main.y, main.width - loss_width, main.height);

        LossPanel { app }.render(losses, buf);
        DigitPanel { app }.render(digits, buf);
        StatusBar { app }.render(status, buf);

        if *app.phase() == Phase::Stopping {
            stopping_notice(app, main, buf);
        }
        if app.help_open() {
            HelpPopup { theme }.render(area, buf);
        }
    }
}

fn stopping_notice(app: &App, area: Rect, buf: &mut Buffer) {
    let theme = app.theme();
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
mod tests {
    use super::*;
    use crate::action::{Action, KEYS};
    use crate::protocol::{FinishReason, RunInfo, SampleGrid, StepStats, TrainMsg};
    use crate::theme::{Theme, ThemeSet};
    use ratatui::Terminal;
    use ratatui::backend::TestBackend;
    use ratatui::style::Color;
    use std::path::PathBuf;

    fn info() -> RunInfo {
        RunInfo {
            preset: "reference".to_string(),
            data_source: "built-in MNIST".to_string(),
            images: 60_000,
            epochs: 1,
            batch_size: 64,
            steps_per_epoch: 938,
            total_steps: 938,
            start_step: 0,
            run_dir: PathBuf::from("/runs/test"),
            seed: 1,
        }
    }

    fn stats(step: u64) -> StepStats {
        StepStats {
            step,
            epoch: 1,
            batch: step,
            d_loss: 0.5 + (step as f32 / 10.0).sin() / 4.0,
            g_loss: 1.0 + (step as f32 / 7.0).cos() / 3.0,
            d_real: 0.6,
            d_fake: 0.4 - step as f32 / 10_000.0,
            lr: 2e-4,
            steps_per_s: 50.0,
            elapsed_s: step as f64 / 50.0,
        }
    }

    /// A run 600 steps in, with 16 real MNIST digits as its samples.
    fn busy_app() -> App {
        let mut app = App::new();
        app.on_msg(TrainMsg::Started(info()));
        for step in 1..=600 {
            app.on_msg(TrainMsg::Step(stats(step)));
        }
        app.on_msg(TrainMsg::Samples(SampleGrid {
            step: 600,
            width: 28,
            height: 28,
            pixels: digits::tests::mnist_digits(16),
            labels: None,
        }));
        app
    }

    fn render(app: &App, width: u16, height: u16) -> Buffer {
        let mut buf = Buffer::empty(Rect::new(0, 0, width, height));
        Dashboard { app }.render(buf.area, &mut buf);
        buf
    }

    fn text(buf: &Buffer) -> String {
        let area = buf.area;
        (area.top()..area.bottom())
            .map(|y| {
                (area.left()..area.right())
                    .map(|x| buf.cell((x, y)).map_or(" ", |c| c.symbol()))
                    .collect::<String>()
            })
            .collect::<Vec<_>>()
            .join("\n")
    }

    fn assert_shows(screen: &str, wanted: &[&str]) {
        for want in wanted {
            assert!(screen.contains(want), "missing {want:?} in\n{screen}");
        }
    }

    #[test]
    fn the_80x24_dashboard_shows_every_part() {
        let app = busy_app();
        let screen = text(&render(&app, 80, 24));
        assert_shows(
            &screen,
            &[
                "losses",
                "D loss",
                "G loss",
                "D(x)",
                "D(G(z))",
                "min",
                "max",
                "digits · step 600",
                "RUNNING",
                "reference",
                "built-in MNIST",
                "epoch 1/1",
                "step 600/938",
                "50.0 steps/s",
                "elapsed 12.0s",
                "ETA 6.8s",
                "theme default",
                "no checkpoint yet",
                "? help",
                "q quit",
            ],
        );
        // Sparkline bars and shaded digits are on screen.
        assert!(screen.contains('█') || screen.contains('▇'), "{screen}");
        assert!(screen.contains('@') && screen.contains('#'), "{screen}");
    }

    #[test]
    fn the_80x24_screen_looks_like_this() {
        let app = busy_app();
        let buf = render(&app, 80, 24);
        let screen = text(&buf);
        let lines: Vec<&str> = screen.lines().collect();
        // Status at the bottom: two fact lines, the note, the key hint.
        assert!(
            lines.get(20).is_some_and(|l| l.starts_with(" RUNNING ")),
            "{screen}"
        );
        assert!(
            lines
                .get(23)
                .is_some_and(|l| l.starts_with("? help  q quit")),
            "{screen}"
        );
        // Panels share the top row: losses on the left, digits on the right.
        let top = lines.first().copied().unwrap_or_default();
        assert!(top.starts_with("┌ losses"), "{screen}");
        assert!(top.contains("┐┌ digits"), "{screen}");
        // The first digit, a 5, sits centred in the digit panel's first slot.
        let five: Vec<String> = lines
            .iter()
            .skip(3)
            .take(7)
            .map(|l| l.chars().skip(37).take(14).collect())
            .collect();
        let expected = digits::ascii_digit(
            &digits::tests::mnist_digits(1),
            28,
            28,
            14,
            7,
            &Theme::default().digit_ramp,
        );
        assert_eq!(five, expected, "\n{screen}");
    }

    #[test]
    fn bigger_terminals_show_more_digits() {
        let app = busy_app();
        let screen = text(&render(&app, 120, 40));
        assert_shows(&screen, &["D loss", "D(G(z))", "RUNNING", "ETA", "? help"]);
        // Status fits one fact line at 120 columns.
        assert!(
            screen
                .lines()
                .nth(37)
                .is_some_and(|l| l.starts_with(" RUNNING ")),
            "{screen}"
        );
    }

    #[test]
    fn the_digit_grid_holds_as_many_digits_as_fit() {
        let mut app = App::new();
        app.on_msg(TrainMsg::Samples(SampleGrid {
            step: 1,
            width: 28,
            height: 28,
            pixels: vec![255; 16 * 784],
            labels: None,
        }));
        let count_ink = |w: u16, h: u16| {
            let mut buf = Buffer::empty(Rect::new(0, 0, w, h));
            digits::DigitPanel { app: &app }.render(buf.area, &mut buf);
            buf.content().iter().filter(|c| c.symbol() == "@").count()
        };
        // Inner 42x18: three across, two down, 14x7 cells each.
        assert_eq!(count_ink(44, 20), 6 * 14 * 7);
        // Inner 64x34: four by four small digits.
        assert_eq!(count_ink(66, 36), 16 * 14 * 7);
        // Inner 118x58: large digits (28x14) once at least eight of them fit.
        assert_eq!(count_ink(120, 60), 16 * 28 * 14 / 2 * 2);
        // Too small for one digit: a note instead.
        let mut buf = Buffer::empty(Rect::new(0, 0, 12, 6));
        digits::DigitPanel { app: &app }.render(buf.area, &mut buf);
        assert!(text(&buf).contains("too"), "{}", text(&buf));
    }

    #[test]
    fn tiny_and_odd_sizes_never_panic() {
        let mut app = busy_app();
        for (w, h) in [
            (10, 5),
            (1, 1),
            (0, 0),
            (1, 40),
            (200, 1),
            (49, 14),
            (50, 15),
        ] {
            render(&app, w, h);
        }
        let small = text(&render(&app, 10, 5));
        assert!(small.contains("terminal"), "{small}");
        let below = text(&render(&app, 49, 24));
        assert!(below.contains("too small: 49x24"), "{below}");
        // Every size up to 130x45 in every overlay and digit mode.
        for overlay in 0..3 {
            match overlay {
                1 => {
                    app.update(Action::ToggleHelp);
                    app.update(Action::ToggleDigitMode);
                }
                2 => {
                    app.update(Action::ToggleHelp);
                    app.update(Action::Quit);
                    app.update(Action::ToggleHistory);
                }
                _ => {}
            }
            for w in 0..=130 {
                for h in 0..=45 {
                    render(&app, w, h);
                }
            }
        }
    }

    #[test]
    fn a_buffer_that_does_not_start_at_the_origin_is_fine() {
        let app = busy_app();
        let mut buf = Buffer::empty(Rect::new(5, 3, 80, 24));
        Dashboard { app: &app }.render(buf.area, &mut buf);
        // An area larger than the buffer is clipped, not trusted.
        Dashboard { app: &app }.render(Rect::new(0, 0, 200, 100), &mut buf);
        assert!(text(&buf).contains("D loss"));
    }

    #[test]
    fn help_lists_every_key_in_full_at_80x24() {
        let mut app = busy_app();
        app.update(Action::ToggleHelp);
        let screen = text(&render(&app, 80, 24));
        for binding in KEYS {
            assert!(
                screen.contains(binding.description),
                "{}\n{screen}",
                binding.description
            );
            assert!(
                screen.contains(&binding.label()),
                "{}\n{screen}",
                binding.label()
            );
        }
    }

    #[test]
    fn states_are_shown_as_the_trainer_reports_them() {
        let mut app = busy_app();
        app.update(Action::TogglePause);
        assert!(text(&render(&app, 80, 24)).contains("PAUSING..."));
        app.on_msg(TrainMsg::Paused { step: 600 });
        assert!(text(&render(&app, 80, 24)).contains("PAUSED "));

        app.update(Action::Quit);
        let screen = text(&render(&app, 80, 24));
        assert_shows(
            &screen,
            &["STOPPING", "stopping: saving checkpoint...", "q again"],
        );

        let mut done = busy_app();
        done.on_msg(TrainMsg::Finished {
            reason: FinishReason::Completed,
            step: 938,
            last_checkpoint: Some(PathBuf::from("/runs/test/final.safetensors")),
        });
        assert_shows(
            &text(&render(&done, 80, 24)),
            &["FINISHED", "press q to leave"],
        );

        let mut failed = busy_app();
        failed.on_msg(TrainMsg::CheckpointFailed {
            path: PathBuf::from("/ro/ckpt.safetensors"),
            error: "read-only file system".to_string(),
        });
        assert_shows(
            &text(&render(&failed, 80, 24)),
            &["checkpoint NOT saved to /ro/ckpt.safetensors: read-only"],
        );
        failed.on_msg(TrainMsg::Error("NaN in the generator".to_string()));
        assert_shows(
            &text(&render(&failed, 80, 24)),
            &["FAILED", "NaN in the generator"],
        );
    }

    #[test]
    fn the_whole_run_view_is_one_key_away() {
        let mut app = busy_app();
        app.update(Action::ToggleHistory);
        let screen = text(&render(&app, 80, 24));
        assert_shows(&screen, &["whole run, 600 logged", "D loss", "min"]);
    }

    #[test]
    fn half_block_mode_draws_grey_half_blocks() {
        let mut app = busy_app();
        app.update(Action::ToggleDigitMode);
        let buf = render(&app, 80, 24);
        let halves: Vec<_> = buf.content().iter().filter(|c| c.symbol() == "▀").collect();
        assert!(halves.len() >= 6 * 14 * 7, "{} half blocks", halves.len());
        assert!(halves.iter().any(|c| c.fg == Color::Indexed(231)));
        assert!(halves.iter().any(|c| c.bg == Color::Indexed(16)));
        assert!(text(&buf).contains("half-block"));
    }

    #[test]
    fn without_colour_nothing_is_coloured_in_any_mode() {
        for name in Theme::builtin_names() {
            let (set, _) = ThemeSet::load(name, std::path::Path::new("/nonexistent"), true);
            let mut app = busy_app();
            app.set_themes(set, None);
            for mode in 0..2 {
                if mode == 1 {
                    app.update(Action::ToggleDigitMode);
                    app.update(Action::ToggleHelp);
                }
                let buf = render(&app, 80, 24);
                let coloured = buf
                    .content()
                    .iter()
                    .filter(|c| c.fg != Color::Reset || c.bg != Color::Reset)
                    .count();
                assert_eq!(coloured, 0, "theme {name}, mode {mode}");
                // Half blocks without grey levels are plain glyphs.
                if mode == 1 {
                    let screen = text(&buf);
                    assert!(screen.contains('█') || screen.contains('▀') || screen.contains('▄'));
                }
            }
        }
    }

    #[test]
    fn every_built_in_theme_renders() {
        let (mut set, _) = ThemeSet::load("default", std::path::Path::new("/nonexistent"), false);
        for _ in Theme::builtin_names() {
            let mut app = busy_app();
            app.set_themes(set.clone(), None);
            let screen = text(&render(&app, 80, 24));
            assert!(screen.contains("D loss"), "{}", app.theme().name);
            set.cycle();
        }
    }

    #[test]
    fn before_any_message_the_panels_say_they_are_waiting() {
        let app = App::new();
        let screen = text(&render(&app, 80, 24));
        assert_shows(
            &screen,
            &[
                "STARTING",
                "waiting for the first step",
                "waiting for the first samples",
            ],
        );
    }

    #[test]
    fn draw_fills_a_whole_terminal_frame() {
        let app = busy_app();
        let mut terminal = Terminal::new(TestBackend::new(80, 24)).ok();
        let drawn = terminal
            .as_mut()
            .map(|t| t.draw(|frame| draw(frame, &app)).is_ok());
        assert_eq!(drawn, Some(true));
        let screen = terminal
            .as_ref()
            .map(|t| text(t.backend().buffer()))
            .unwrap_or_default();
        assert!(screen.contains("D(G(z))"));
    }
}
