//! Tests of the dashboard's widgets: whole screens as snapshots, and the rules behind them.

use super::*;
use crate::dashboard::action::{Action, KEYS};
use crate::dashboard::theme::{Theme, ThemeSet};
use crate::protocol::{
    FinishReason, MorphStrip, NearestReport, ProbeReport, QualityReport, Reading, RunInfo,
    SampleGrid, SaveReason, StepStats, TrainMsg,
};
use ratatui::Terminal;
use ratatui::backend::TestBackend;
use ratatui::style::Color;
use std::path::PathBuf;

/// A one-epoch run's facts, for the dashboard's tests (here and the event loop's).
pub(crate) fn info() -> RunInfo {
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
        eval_count: 2000,
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
        g_grad_norm: Some(0.5),
        d_grad_norm: Some(0.25),
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

/// `busy_app` with three judge reports (scores 8.21, 5.00, 9.00), the last one conditional.
fn scored_app() -> App {
    let mut app = busy_app();
    let report = quality::tests_support::report();
    app.on_msg(TrainMsg::Quality(report.clone()));
    app.on_msg(TrainMsg::Quality(QualityReport {
        score: 5.0,
        ..report.clone()
    }));
    app.on_msg(TrainMsg::Quality(QualityReport {
        score: 9.0,
        agreement: Some(0.912),
        ..report
    }));
    app
}

/// A 16-digit grid of real MNIST digits labelled as asked for.
fn labelled_grid(labels: Vec<u8>) -> SampleGrid {
    SampleGrid {
        step: 700,
        width: 28,
        height: 28,
        pixels: digits::tests::mnist_digits(16),
        labels: Some(labels),
    }
}

fn render(app: &App, width: u16, height: u16) -> Buffer {
    render_in(app, &Theme::default(), width, height)
}

fn render_in(app: &App, theme: &Theme, width: u16, height: u16) -> Buffer {
    let mut buf = Buffer::empty(Rect::new(0, 0, width, height));
    Dashboard { app, theme }.render(buf.area, &mut buf);
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
fn the_80x24_screen_makes_room_for_the_scores_under_the_losses() {
    let waiting = busy_app();
    let scored = scored_app();
    let before = text(&render(&waiting, 80, 24));
    let after = text(&render(&scored, 80, 24));
    let common = [
        "D loss",
        "G loss",
        "D(x)",
        "D(G(z))",
        "min",
        "digits · step 600",
        "RUNNING",
        "? help  q quit  p pause  s save  e score  0-9 digit",
    ];
    assert_shows(&before, &common);
    assert_shows(&after, &common);
    // Before the first report: when scores come, and the key that asks now.
    assert_shows(
        &before,
        &[
            "┌ scores ",
            "scores come after the first epoch",
            "press e to score now",
        ],
    );
    let row = |screen: &str, n: usize| screen.lines().nth(n).unwrap_or_default().to_string();
    assert!(row(&before, 16).starts_with("┌ scores "), "{before}");
    // With scores: the numbers, the trend and the bars, in eight rows under the losses.
    assert_shows(
        &after,
        &[
            "scores · step 1876 · 2000 digits",
            "score 9.00  fcd 12.3 (floor 8.31)",
            "recognised 93%",
            "asked-for 91%",
            "5.00-9.00",
            "digits read as",
            "0 1 2 3 4 5 6 7 8 9",
        ],
    );
    assert!(row(&after, 12).starts_with("┌ scores "), "{after}");
    assert!(row(&after, 19).starts_with("└"), "{after}");
    // The digit grid keeps all its room: the right-hand side is the same as before.
    let right = |screen: &str| -> Vec<String> {
        screen
            .lines()
            .take(20)
            .map(|l| l.chars().skip(36).collect())
            .collect()
    };
    assert_eq!(right(&before), right(&after), "\n{after}");
}

#[test]
fn short_terminals_drop_the_scores_panel_not_the_losses() {
    for app in [busy_app(), scored_app()] {
        // 21 rows: 4 for the status bar leave 17, one short of losses plus scores.
        let screen = text(&render(&app, 80, 21));
        assert!(!screen.contains("scores"), "{screen}");
        assert_shows(&screen, &["D loss", "D(G(z))", "digits · step", "? help"]);
        let screen = text(&render(&app, 80, 22));
        assert!(screen.contains("┌ scores"), "{screen}");
    }
}

/// Bar heights in eighths of a row, read back from the glyphs above each label of the
/// panel's bar chart, with the labels' columns; `None` if the label row is missing.
fn bar_heights(buf: &Buffer) -> Option<Vec<(u16, u32)>> {
    let area = buf.area;
    let symbol = |x: u16, y: u16| buf.cell((x, y)).map_or(" ", |c| c.symbol()).to_string();
    let eighths = |s: &str| match s {
        "█" => 8,
        "▇" => 7,
        "▆" => 6,
        "▅" => 5,
        "▄" => 4,
        "▃" => 3,
        "▂" => 2,
        "▁" => 1,
        _ => 0,
    };
    (area.top()..area.bottom()).rev().find_map(|y| {
        let row: String = (area.left()..area.right()).map(|x| symbol(x, y)).collect();
        let at = row.find("0 1 2 3 4 5 6 7 8 9")?;
        let x0 = u16::try_from(row[..at].chars().count()).ok()?;
        Some(
            (0..10u16)
                .map(|d| {
                    let x = x0 + 2 * d;
                    let height = (area.top()..y)
                        .rev()
                        .map(|above| eighths(&symbol(x, above)))
                        .take_while(|&e| e > 0)
                        .sum();
                    (x, height)
                })
                .collect(),
        )
    })
}

#[test]
fn the_bars_go_from_0_to_9_and_the_largest_share_is_the_tallest() {
    let app = scored_app();
    let mut buf = Buffer::empty(Rect::new(0, 0, 36, 12));
    quality::QualityPanel {
        app: &app,
        theme: &Theme::default(),
    }
    .render(buf.area, &mut buf);
    let bars = bar_heights(&buf).unwrap_or_default();
    assert_eq!(bars.len(), 10, "\n{}", text(&buf));
    let shares = quality::tests_support::report().class_shares;
    let heights: Vec<u32> = bars.iter().map(|&(_, h)| h).collect();
    // 8 (15%) fills the chart; 5 (1%) is the least; more share is never a shorter bar.
    let tallest = heights.iter().copied().max().unwrap_or(0);
    assert_eq!(
        heights.get(8),
        Some(&tallest),
        "{heights:?}\n{}",
        text(&buf)
    );
    // Ten inner rows: two of numbers, a caption, six of bars and the labels.
    assert_eq!(tallest, 8 * 6, "six bar rows");
    assert_eq!(heights.iter().copied().min(), heights.get(5).copied());
    for i in 0..10 {
        for j in 0..10 {
            if shares[i] > shares[j] {
                assert!(heights[i] >= heights[j], "{i} vs {j}: {heights:?}");
            }
        }
    }
    // Bars are drawn in the theme's bar style; a digit nearly never read is a warning.
    let theme = &Theme::default();
    let (x8, _) = bars[8];
    let (x5, _) = bars[5];
    let label_y = (0..12)
        .rev()
        .find(|&y| buf.cell((x8, y)).is_some_and(|c| c.symbol() == "8"));
    let fg = |x: u16, y: u16| buf.cell((x, y)).map(|c| c.fg);
    assert_eq!(label_y.and_then(|y| fg(x5, y)), theme.warning.fg);
    assert_eq!(label_y.and_then(|y| fg(x8, y)), theme.muted.fg);
    assert_eq!(label_y.and_then(|y| fg(x8, y - 1)), theme.bars.fg);
}

#[test]
fn the_trend_is_drawn_in_the_score_style() {
    let app = scored_app();
    let buf = render(&app, 120, 40);
    let theme = &Theme::default();
    let trend_cells = buf
        .content()
        .iter()
        .filter(|c| c.fg == theme.score.fg.unwrap_or_default() && c.symbol() != " ")
        .count();
    // The score's value plus the trend's bars.
    assert!(trend_cells > 10, "{trend_cells} cells");
    assert_ne!(theme.score, theme.bars);
}

#[test]
fn the_panel_says_why_when_no_scores_can_come() {
    let mut app = busy_app();
    app.update(Action::Evaluate);
    let screen = text(&render(&app, 80, 24));
    assert_shows(
        &screen,
        &["scores · scoring...", "scoring the generator's digits"],
    );
    assert!(!screen.contains("press e"), "{screen}");
    app.on_msg(TrainMsg::EpochDone(crate::protocol::EpochSummary {
        epoch: 1,
        epochs: 1,
        step: 938,
        d_loss: 1.0,
        g_loss: 1.0,
        d_real: 0.5,
        d_fake: 0.5,
        steps_per_s: 50.0,
        elapsed_s: 19.0,
        sample_png: None,
        quality: None,
    }));
    let screen = text(&render(&app, 80, 24));
    assert_shows(
        &screen,
        &["no scores: this run's scoring is off", "eval_count = 0"],
    );
    let mut ended = busy_app();
    ended.on_msg(TrainMsg::Finished {
        reason: FinishReason::StepLimit,
        step: 600,
        last_checkpoint: None,
    });
    let screen = text(&render(&ended, 80, 24));
    assert_shows(&screen, &["no scores: the run has ended"]);
    assert!(!screen.contains("press e"), "{screen}");
}

#[test]
fn a_conditional_grid_names_the_digits_it_shows() {
    let mut app = busy_app();
    app.on_msg(TrainMsg::Samples(labelled_grid(
        (0..16).map(|i| (i % 10) as u8).collect(),
    )));
    assert_shows(
        &text(&render(&app, 120, 40)),
        &["digits · step 700 · all digits · fixed noise · ascii"],
    );
    // 80 columns: the panel's name and the mode give way first.
    assert_shows(
        &text(&render(&app, 80, 24)),
        &["┐┌ step 700 · all digits · fixed noise ─"],
    );
    assert_eq!(
        app.update(Action::ShowDigit(3)),
        Some(crate::protocol::Command::ShowDigit(Some(3)))
    );
    app.on_msg(TrainMsg::Samples(labelled_grid(vec![3; 16])));
    assert_shows(
        &text(&render(&app, 80, 24)),
        &["step 700 · digit 3 · fixed noise · ascii"],
    );
    // An unconditional grid says nothing about digits.
    let screen = text(&render(&busy_app(), 120, 40));
    assert!(!screen.contains("all digits"), "{screen}");
}

#[test]
fn notes_about_divergence_and_failed_writes_read_whole_at_80x24() {
    let mut app = busy_app();
    app.on_msg(TrainMsg::CheckpointSaved {
        path: PathBuf::from(
            "/home/someone/.local/share/gan-tui/runs/20261127-101500-reference/checkpoints/epoch-011.safetensors",
        ),
        step: 600,
        reason: SaveReason::EpochEnd,
    });
    app.on_msg(TrainMsg::WriteFailed {
        what: "sample grid".to_string(),
        path: PathBuf::from("/runs/test/samples/epoch-001.png"),
        error: "Read-only file system (os error 30)".to_string(),
    });
    assert_shows(
        &text(&render(&app, 80, 24)),
        &[
            "sample grid failed at /runs/test/samples/epoch-001.png: Read-only file system",
            "training goes on",
        ],
    );
    app.on_msg(TrainMsg::Diverged {
        step: 612,
        d_loss: f32::NAN,
        g_loss: 3.2,
    });
    let screen = text(&render(&app, 80, 24));
    assert_shows(
        &screen,
        &[
            "DIVERGED",
            "training diverged at step 612 (D loss NaN, G loss 3.200) and stopped; press q to",
            "quit. Nothing more is saved.",
            "? help  q quit",
        ],
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
        digits::DigitPanel {
            app: &app,
            theme: &Theme::default(),
        }
        .render(buf.area, &mut buf);
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
    digits::DigitPanel {
        app: &app,
        theme: &Theme::default(),
    }
    .render(buf.area, &mut buf);
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
    // Every size up to 130x45 in every overlay and digit mode, with and without scores.
    for overlay in 0..5 {
        match overlay {
            3 => {
                app = scored_app();
                app.on_msg(TrainMsg::Samples(labelled_grid(vec![3; 16])));
                app.update(Action::ShowDigit(3));
                app.update(Action::Evaluate);
            }
            4 => {
                app.update(Action::ToggleHelp);
                app.update(Action::ToggleHistory);
            }
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
    // The panel alone, at any size, before and after scores.
    for app in [busy_app(), scored_app()] {
        for w in 0..=60 {
            for h in 0..=20 {
                let mut buf = Buffer::empty(Rect::new(0, 0, w, h));
                quality::QualityPanel {
                    app: &app,
                    theme: &Theme::default(),
                }
                .render(buf.area, &mut buf);
            }
        }
    }
}

/// A conditional run with every probe on and a report for its grid.
fn probed_app() -> App {
    let mut app = busy_app();
    app.on_msg(TrainMsg::Samples(labelled_grid(
        (0..16).map(|i| i % 10).collect(),
    )));
    for action in [
        Action::ToggleMorph,
        Action::ToggleReading,
        Action::ToggleNearest,
    ] {
        assert!(app.update(action).is_some());
    }
    let pixels = digits::tests::mnist_digits(16);
    app.on_msg(TrainMsg::Probes(ProbeReport {
        step: 700,
        morph: Some(MorphStrip {
            width: 28,
            height: 28,
            steps: 8,
            pixels: pixels.clone(),
            digits: Some((3, 8)),
        }),
        readings: Some(
            (0..16)
                .map(|i| Reading {
                    digit: if i == 1 { 6 } else { (i % 10) as u8 },
                    confidence: 0.97,
                })
                .collect(),
        ),
        nearest: Some(NearestReport {
            width: 28,
            height: 28,
            pixels,
            distances: vec![4.31; 16],
            generated_median: 4.31,
            test_median: 3.5,
            searched: 10_000,
        }),
    }));
    app
}

#[test]
fn the_probes_draw_the_strip_readings_neighbours_and_the_verdict() {
    let app = probed_app();
    let screen = text(&render(&app, 120, 40));
    assert_shows(
        &screen,
        &[
            "morph · noise A → B, as digit 3",
            "morph · digit 3 → 8, noise A",
            "0 97% d4.3",
            "6 97% d4.3",
            "median d4.3 vs test digits' d3.5",
        ],
    );
    // Generated digits closer to training digits than test digits are: a warning.
    let mut copying = probed_app();
    let mut report = copying.run().probes().cloned().unwrap();
    if let Some(n) = report.nearest.as_mut() {
        n.generated_median = 1.0;
    }
    copying.on_msg(TrainMsg::Probes(report));
    let screen = text(&render(&copying, 120, 40));
    assert_shows(
        &screen,
        &["WARNING copying? median d1.0 to training digits"],
    );
    // A newer grid without probes shows no stale readings; the strip stays.
    let mut newer = probed_app();
    newer.on_msg(TrainMsg::Samples(SampleGrid {
        step: 800,
        ..labelled_grid(vec![1; 16])
    }));
    let screen = text(&render(&newer, 120, 40));
    assert!(!screen.contains("97%"), "{screen}");
    assert!(screen.contains("morph ·"), "{screen}");
    for w in 0..=130 {
        for h in 0..=45 {
            render(&app, w, h);
        }
    }
}

#[test]
fn the_parent_overlay_draws_the_parents_values_beside_the_forks() {
    let mut app = App::new();
    let parent: Vec<StepStats> = (1..=300)
        .map(|s| StepStats {
            g_loss: 9.0,
            ..stats(s)
        })
        .collect();
    app.set_parent(crate::dashboard::app::ParentCurves::new(
        "/runs/parent".to_string(),
        100,
        parent,
    ));
    app.on_msg(TrainMsg::Started(info()));
    for step in 101..=200 {
        app.on_msg(TrainMsg::Step(stats(step)));
    }
    let before = text(&render(&app, 120, 40));
    assert!(!before.contains("parent"), "{before}");
    assert_eq!(app.update(Action::ToggleParentOverlay), None);
    let screen = text(&render(&app, 120, 40));
    assert_shows(
        &screen,
        &["parent 9.000", "overlaying the parent /runs/parent"],
    );
    assert!(screen.contains('•'), "{screen}");
    for w in 0..=130 {
        for h in 0..=45 {
            render(&app, w, h);
        }
    }
}

#[test]
fn a_buffer_that_does_not_start_at_the_origin_is_fine() {
    let app = busy_app();
    let mut buf = Buffer::empty(Rect::new(5, 3, 80, 24));
    Dashboard {
        app: &app,
        theme: &Theme::default(),
    }
    .render(buf.area, &mut buf);
    // An area larger than the buffer is clipped, not trusted.
    Dashboard {
        app: &app,
        theme: &Theme::default(),
    }
    .render(Rect::new(0, 0, 200, 100), &mut buf);
    assert!(text(&buf).contains("D loss"));
}

#[test]
fn help_lists_every_key_in_full_at_80x24() {
    let mut app = busy_app();
    app.update(Action::ToggleHelp);
    let screen = text(&render(&app, 80, 24));
    assert_shows(
        &screen,
        &[
            "e  score the generator's digits with the judge now",
            "0-9  conditional runs: draw only that digit (again: all ten)",
            "a  conditional runs: draw all ten digits",
        ],
    );
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
        let mut app = scored_app();
        app.set_themes(set.choice(), None);
        // Ascii, half blocks, then half blocks under the help popup.
        for mode in 0..3 {
            if mode == 1 {
                app.update(Action::ToggleDigitMode);
            }
            if mode == 2 {
                app.update(Action::ToggleHelp);
            }
            let buf = render_in(&app, set.get(app.theme_index()), 80, 24);
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
    let (set, _) = ThemeSet::load("default", std::path::Path::new("/nonexistent"), false);
    let mut app = busy_app();
    app.set_themes(set.choice(), None);
    for _ in Theme::builtin_names() {
        let theme = set.get(app.theme_index());
        let screen = text(&render_in(&app, theme, 80, 24));
        assert!(screen.contains("D loss"), "{}", theme.name);
        app.update(Action::CycleTheme);
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
    let drawn = terminal.as_mut().map(|t| {
        t.draw(|frame| draw(frame, &app, &ThemeSet::default()))
            .is_ok()
    });
    assert_eq!(drawn, Some(true));
    let screen = terminal
        .as_ref()
        .map(|t| text(t.backend().buffer()))
        .unwrap_or_default();
    assert!(screen.contains("D(G(z))"));
}

/// The screen as text, one line a row, for snapshots.
fn picture(buf: &Buffer) -> String {
    text(buf)
        .lines()
        .map(str::trim_end)
        .collect::<Vec<_>>()
        .join("\n")
}

#[test]
fn snapshot_120x40_running_with_scores() {
    insta::assert_snapshot!(
        "120x40_running_with_scores",
        picture(&render(&scored_app(), 120, 40))
    );
}

#[test]
fn snapshot_120x40_running_before_scores() {
    insta::assert_snapshot!(
        "120x40_running_before_scores",
        picture(&render(&busy_app(), 120, 40))
    );
}

#[test]
fn snapshot_80x24_running() {
    insta::assert_snapshot!("80x24_running", picture(&render(&busy_app(), 80, 24)));
}

#[test]
fn snapshot_80x24_running_with_scores() {
    insta::assert_snapshot!(
        "80x24_running_with_scores",
        picture(&render(&scored_app(), 80, 24))
    );
}

#[test]
fn snapshot_80x24_paused() {
    let mut app = busy_app();
    assert_eq!(
        app.update(Action::TogglePause),
        Some(crate::protocol::Command::Pause)
    );
    app.on_msg(TrainMsg::Paused { step: 600 });
    insta::assert_snapshot!("80x24_paused", picture(&render(&app, 80, 24)));
}

#[test]
fn snapshot_80x24_help_open() {
    let mut app = busy_app();
    app.update(Action::ToggleHelp);
    insta::assert_snapshot!("80x24_help_open", picture(&render(&app, 80, 24)));
}

#[test]
fn snapshot_80x24_stopping() {
    let mut app = busy_app();
    app.update(Action::Quit);
    insta::assert_snapshot!("80x24_stopping", picture(&render(&app, 80, 24)));
}

#[test]
fn snapshot_80x20_short_screen_without_scores() {
    insta::assert_snapshot!(
        "80x20_short_screen",
        picture(&render(&scored_app(), 80, 20))
    );
}

#[test]
fn snapshot_too_small() {
    insta::assert_snapshot!("too_small_40x10", picture(&render(&busy_app(), 40, 10)));
}

/// Each built-in theme once, styles included: ratatui's `Buffer` debug form lists every cell's
/// text and each change of colour or modifier.
#[test]
fn snapshot_each_theme_at_80x24() {
    let (set, _) = ThemeSet::load("default", std::path::Path::new("/nonexistent"), false);
    let mut app = scored_app();
    app.set_themes(set.choice(), None);
    for name in Theme::builtin_names() {
        let theme = set.get(app.theme_index());
        assert_eq!(&theme.name, name);
        insta::assert_debug_snapshot!(
            format!("theme_{name}_80x24"),
            render_in(&app, theme, 80, 24)
        );
        app.update(Action::CycleTheme);
    }
}

/// `scored_app` after an exploding-gradients alarm at its latest step.
fn alarmed_app() -> App {
    let mut app = scored_app();
    app.on_msg(TrainMsg::Alarm(crate::protocol::Alarm {
        step: 600,
        kind: crate::protocol::AlarmKind::ExplodingGradients,
        message: "D's gradient norm 50.000 is 25x its median 2.000 over the last 50 logged steps. Try a lower learning rate (--lr)".to_string(),
    }));
    app
}

#[test]
fn the_gradient_norms_and_an_alarm_show_at_80x24_and_120x40() {
    // The gradient norms have a slot of their own at 80x24 when the status line is short.
    assert_shows(
        &text(&render(&scored_app(), 80, 24)),
        &["|∇G| 0.500", "|∇D| 0.250"],
    );
    // With an alarm's message below, every plot still carries its letter, in the warning
    // style, at the step it was raised (the last column); at 120x40 the norms' two plots too.
    for (width, height, plots) in [(80, 24, 4), (120, 40, 6)] {
        let buf = render(&alarmed_app(), width, height);
        let screen = text(&buf);
        assert_shows(
            &screen,
            &[
                "alarm exploding_gradients at step 600",
                "D's gradient norm 50.000 is 25x",
            ],
        );
        let warning = Theme::default().warning.fg.unwrap_or(Color::Reset);
        let marks = (0..height)
            .flat_map(|y| (0..width).map(move |x| (x, y)))
            .filter(|&(x, y)| {
                buf.cell((x, y))
                    .is_some_and(|c| c.symbol() == "x" && c.fg == warning)
            })
            .count();
        assert!(
            marks >= plots,
            "{marks} marks at {width}x{height}:\n{screen}"
        );
    }
    assert_shows(&text(&render(&alarmed_app(), 120, 40)), &["|∇G| 0.500"]);
    // Without the room, the gradient norms give way to the four plots.
    let short = text(&render(&alarmed_app(), 80, 15));
    assert!(!short.contains("|∇G|"), "{short}");
}

#[test]
fn kid_and_precision_recall_show_beside_real_digits_when_the_panel_has_room() {
    let tall = text(&render(&scored_app(), 120, 40));
    assert_shows(
        &tall,
        &[
            "kid 0.0123±0.0011 (floor 0.0001)",
            "P/R 71%/52% (real 78%/77%)",
        ],
    );
}

#[test]
fn snapshot_120x40_with_an_alarm() {
    insta::assert_snapshot!(
        "120x40_with_an_alarm",
        picture(&render(&alarmed_app(), 120, 40))
    );
}

/// `busy_app` with a grid every 100 steps (each of different MNIST digits) and the end of its
/// epoch told at step 600.
fn filmed_app() -> App {
    use crate::dashboard::action::FilmStep;
    let mut app = App::new();
    app.on_msg(TrainMsg::Started(info()));
    let digits = digits::tests::mnist_digits(16 + 6);
    for step in 1..=600u64 {
        app.on_msg(TrainMsg::Step(stats(step)));
        if step % 100 == 0 {
            let first = (step / 100 - 1) as usize;
            app.on_msg(TrainMsg::Samples(SampleGrid {
                step,
                width: 28,
                height: 28,
                pixels: digits[first * 784..(first + 16) * 784].to_vec(),
                labels: None,
            }));
        }
    }
    // Two steps back: the grid of step 400.
    app.update(Action::Filmstrip(FilmStep::Older));
    app.update(Action::Filmstrip(FilmStep::Older));
    app
}

/// The columns of a screen row's cells that hold `glyph`, in the losses panel (left of x 36).
fn loss_columns_with(screen: &str, glyph: char) -> Vec<usize> {
    let mut columns: Vec<usize> = screen
        .lines()
        .flat_map(|l| {
            l.chars()
                .take(36)
                .enumerate()
                .filter(|(_, c)| *c == glyph)
                .map(|(x, _)| x)
                .collect::<Vec<_>>()
        })
        .collect();
    columns.sort_unstable();
    columns.dedup();
    columns
}

#[test]
fn an_older_grid_names_its_step_and_is_marked_on_the_loss_plots() {
    let mut app = filmed_app();
    let screen = text(&render(&app, 80, 24));
    // The title says which grid, and the grid drawn is that one.
    assert_shows(&screen, &["step 400 · epoch 1 · 4/6"]);
    let live = busy_app();
    assert_ne!(digits_of(&screen), digits_of(&text(&render(&live, 80, 24))));
    // The recent view shows steps 567-600: step 400 is before it.
    // (The grad norms' two plots each have the mark.)
    assert_eq!(loss_columns_with(&screen, '◀'), vec![1, 18], "{screen}");
    assert!(
        loss_columns_with(&screen, '│')
            .iter()
            .all(|&x| x == 0 || x == 35)
    );
    // The whole run: a mark atop every plot, at the same column, about 2/3 across (the grad
    // norms' half-width plots at their own).
    app.update(Action::ToggleHistory);
    let screen = text(&render(&app, 80, 24));
    let lines: Vec<&str> = screen.lines().collect();
    let mark_under = |label: &str| {
        let at = lines.iter().position(|l| l.contains(label))?;
        lines.get(at + 1)?.chars().position(|c| c == '▼')
    };
    let column = mark_under("D loss");
    assert!(
        column.is_some_and(|c| (21..=25).contains(&c)),
        "{column:?}\n{screen}"
    );
    for label in ["G loss", "D(x)", "D(G(z))"] {
        assert_eq!(mark_under(label), column, "{label}\n{screen}");
    }
    let marks = screen
        .lines()
        .map(|l| l.matches('▼').count())
        .sum::<usize>();
    assert_eq!(marks, 6, "{screen}");
    // Where a plot has room above its bars (D(x) is flat, at half height), a line runs down
    // from the mark to them.
    let tall = text(&render(&app, 120, 40));
    let lines: Vec<&str> = tall.lines().collect();
    let at = lines.iter().position(|l| l.contains("D(x)")).unwrap_or(0);
    let column = lines
        .get(at + 1)
        .and_then(|l| l.chars().position(|c| c == '▼'));
    let below = lines
        .get(at + 2)
        .and_then(|l| column.and_then(|c| l.chars().nth(c)));
    assert_eq!(below, Some('│'), "{tall}");
    // Back to live: no mark, the live title.
    app.update(Action::Filmstrip(crate::dashboard::action::FilmStep::Newer));
    app.update(Action::Filmstrip(crate::dashboard::action::FilmStep::Newer));
    let screen = text(&render(&app, 80, 24));
    assert_shows(&screen, &["digits · step 600"]);
    assert!(!screen.contains("/6"), "{screen}");
    assert!(
        loss_columns_with(&screen, '│')
            .iter()
            .all(|&x| x == 0 || x == 35)
    );
}

/// The digit panel's part of a screen (right of x 36).
fn digits_of(screen: &str) -> String {
    screen
        .lines()
        .map(|l| l.chars().skip(36).collect::<String>())
        .collect::<Vec<_>>()
        .join("\n")
}

#[test]
fn an_older_grid_shows_no_probes_of_the_live_one() {
    let mut app = busy_app();
    app.on_msg(TrainMsg::Samples(SampleGrid {
        step: 500,
        ..labelled_grid(vec![1; 16])
    }));
    app.update(Action::ToggleReading);
    app.on_msg(TrainMsg::Probes(ProbeReport {
        step: 600,
        readings: Some(vec![
            Reading {
                digit: 7,
                confidence: 0.98
            };
            16
        ]),
        ..ProbeReport::default()
    }));
    app.on_msg(TrainMsg::Samples(SampleGrid {
        step: 600,
        width: 28,
        height: 28,
        pixels: digits::tests::mnist_digits(16),
        labels: None,
    }));
    assert!(text(&render(&app, 120, 40)).contains("7 98%"));
    app.update(Action::Filmstrip(crate::dashboard::action::FilmStep::Older));
    let screen = text(&render(&app, 120, 40));
    assert_shows(&screen, &["step 500 · epoch 1 · 1/2"]);
    assert!(!screen.contains("7 98%"), "{screen}");
}

#[test]
fn smoothing_and_the_log_scale_are_named_in_the_title_and_change_the_plots() {
    let mut app = busy_app();
    // A noisy loss: smoothing narrows its range.
    for step in 601..=700u64 {
        let d_loss = if step % 2 == 0 { 0.2 } else { 0.8 };
        app.on_msg(TrainMsg::Step(StepStats {
            d_loss,
            ..stats(step)
        }));
    }
    let width = 34;
    let raw = losses::window(&app, crate::run::history::Series::DLoss, width);
    app.update(Action::CycleSmoothing);
    app.update(Action::CycleSmoothing);
    let smooth = losses::window(&app, crate::run::history::Series::DLoss, width);
    assert_eq!(raw.len(), smooth.len());
    let spread = |p: &[f32]| losses::finite_range(p).map_or(0.0, |(lo, hi)| hi - lo);
    assert!(spread(&smooth) < spread(&raw) / 2.0, "{raw:?}\n{smooth:?}");
    app.update(Action::ToggleLogScale);
    let screen = text(&render(&app, 80, 24));
    assert_shows(&screen, &[" recent · smooth 0.9 · log "]);
    // Every value here is positive: a plain log scale, no symlog.
    assert!(!screen.contains("symlog"), "{screen}");
    let wide = text(&render(&app, 160, 40));
    assert_shows(&wide, &[" losses · recent steps · smooth 0.9 · log "]);
    app.update(Action::ToggleHistory);
    let wide = text(&render(&app, 160, 40));
    assert_shows(
        &wide,
        &[" losses · whole run, 700 logged · smooth 0.9 · log "],
    );
}

#[test]
fn the_log_scale_draws_values_at_or_below_zero_on_a_symlog_and_says_so() {
    let mut app = App::new();
    app.on_msg(TrainMsg::Started(info()));
    // A Wasserstein critic's loss: either side of zero.
    for step in 1..=200u64 {
        app.on_msg(TrainMsg::Step(StepStats {
            d_loss: (step % 5) as f32 - 2.0,
            ..stats(step)
        }));
    }
    app.update(Action::ToggleLogScale);
    let screen = text(&render(&app, 80, 24));
    let d_line = screen
        .lines()
        .find(|l| l.contains("D loss"))
        .unwrap_or_default()
        .to_string();
    assert!(d_line.contains("symlog"), "{screen}");
    // The range is shown whole or not at all, never cut into a wrong number.
    assert!(
        !d_line.contains("min") || d_line.contains(" max "),
        "{d_line}"
    );
    // The other plots hold positive values only: plain log.
    let g_line = screen
        .lines()
        .find(|l| l.contains("G loss"))
        .unwrap_or_default();
    assert!(!g_line.contains("symlog"), "{g_line}");
    let wide = text(&render(&app, 160, 40));
    assert!(wide.contains("symlog min -2.000 max 2.000"), "{wide}");
}

#[test]
fn the_filmstrip_and_the_curve_keys_draw_at_any_size() {
    let mut app = filmed_app();
    app.update(Action::CycleSmoothing);
    app.update(Action::ToggleLogScale);
    for history in 0..2 {
        for w in (0..=130).step_by(7) {
            for h in (0..=45).step_by(5) {
                render(&app, w, h);
            }
        }
        if history == 0 {
            app.update(Action::ToggleHistory);
        }
    }
}

#[test]
fn snapshot_80x24_an_older_grid_over_the_whole_run() {
    let mut app = filmed_app();
    app.update(Action::ToggleHistory);
    insta::assert_snapshot!("80x24_filmstrip_older_grid", picture(&render(&app, 80, 24)));
}

#[test]
fn snapshot_80x24_smoothed_on_a_log_scale() {
    let mut app = busy_app();
    app.update(Action::CycleSmoothing);
    app.update(Action::CycleSmoothing);
    app.update(Action::ToggleLogScale);
    insta::assert_snapshot!("80x24_smoothed_log", picture(&render(&app, 80, 24)));
}
