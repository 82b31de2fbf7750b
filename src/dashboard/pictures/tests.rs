//! Tests of pictures: the environment checks and the terminal's answer, the grid's layout and
//! pixels, the encoding cache, the mode key with and without pictures, and the panel drawing one.

use super::*;
use crate::dashboard::action::Action;
use crate::dashboard::app::{App, DigitMode};
use crate::dashboard::theme::Theme;
use crate::dashboard::widgets::digits::DigitPanel;
use crate::protocol::TrainMsg;
use ratatui_image::protocol::halfblocks::Halfblocks;
use std::collections::HashMap;

fn env(pairs: &[(&str, &str)]) -> impl Fn(&str) -> Option<String> {
    let map: HashMap<String, String> = pairs
        .iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect();
    move |name| map.get(name).cloned()
}

/// An encoder that draws with the crate's half blocks, so tests need no terminal: 10x20-pixel
/// cells, as a terminal might report.
fn fake_encoder() -> Arc<PictureEncoder> {
    Arc::new(PictureEncoder::new(
        FontSize::new(10, 20),
        Box::new(|image, size| {
            Halfblocks::new(image, size)
                .map(Protocol::Halfblocks)
                .map_err(|e| e.to_string())
        }),
    ))
}

fn grid(count: usize, width: usize, height: usize, value: u8) -> SampleGrid {
    SampleGrid {
        step: 7,
        width,
        height,
        pixels: vec![value; count * width * height],
        labels: None,
    }
}

#[test]
fn multiplexers_and_bare_terminals_rule_pictures_out_before_any_query() {
    let why = |pairs: &[(&str, &str)]| ruled_out_by_env(env(pairs));
    let tmux = why(&[("TMUX", "/tmp/tmux-0/default,1,0"), ("TERM", "xterm-kitty")]);
    assert!(tmux.is_some_and(|w| w.contains("tmux")));
    assert!(why(&[("TERM", "tmux-256color")]).is_some_and(|w| w.contains("tmux")));
    assert!(
        why(&[("TERM", "xterm"), ("TERM_PROGRAM", "tmux")]).is_some_and(|w| w.contains("tmux"))
    );
    assert!(why(&[("TERM", "screen.xterm-256color")]).is_some_and(|w| w.contains("screen")));
    assert!(why(&[("TERM", "xterm"), ("STY", "123.pts-0")]).is_some_and(|w| w.contains("screen")));
    assert!(why(&[("TERM", "dumb")]).is_some_and(|w| w.contains("TERM dumb")));
    assert!(why(&[]).is_some_and(|w| w.contains("TERM unset")));
    // An empty TMUX (left over by a script) does not count; ordinary terminals are asked.
    assert_eq!(why(&[("TMUX", ""), ("TERM", "xterm-256color")]), None);
    assert_eq!(why(&[("TERM", "xterm-kitty")]), None);
}

#[test]
fn only_a_real_image_protocol_in_the_answer_gives_pictures() {
    assert!(protocol_shows_pictures(ProtocolType::Kitty).is_ok());
    assert!(protocol_shows_pictures(ProtocolType::Sixel).is_ok());
    assert!(protocol_shows_pictures(ProtocolType::Iterm2).is_ok());
    // What the crate answers for a terminal without graphics (plain xterm, a silent one).
    let why = protocol_shows_pictures(ProtocolType::Halfblocks).unwrap_err();
    assert!(why.contains("did not report an image protocol"), "{why}");
}

#[test]
fn the_layout_takes_the_biggest_digits_that_fit() {
    // A wide, low panel: all four in a row at three times their size.
    let wide = PictureLayout::fit(4, 28, 28, (400, 100)).unwrap();
    assert_eq!((wide.across, wide.down, wide.scale), (4, 1, 3));
    assert_eq!(wide.pixels(28, 28), ((4 * 28 + 3 * GAP) * 3, 28 * 3));
    // A tall, narrow one: a column.
    let tall = PictureLayout::fit(4, 28, 28, (100, 400)).unwrap();
    assert_eq!((tall.across, tall.down, tall.scale), (1, 4, 3));
    // A square one: two by two.
    let square = PictureLayout::fit(4, 28, 28, (300, 300)).unwrap();
    assert_eq!((square.across, square.down, square.scale), (2, 2, 5));
    // The picture never outgrows the room.
    for room in [(97, 41), (640, 480), (30, 30), (1000, 29)] {
        if let Some(l) = PictureLayout::fit(16, 28, 28, room) {
            let (w, h) = l.pixels(28, 28);
            assert!(w <= room.0 && h <= room.1, "{l:?} in {room:?}");
            assert!(l.across * l.down >= 16);
        }
    }
    // Nothing to draw, or not one pixel per pixel: no layout.
    assert_eq!(PictureLayout::fit(0, 28, 28, (400, 400)), None);
    assert_eq!(PictureLayout::fit(4, 0, 28, (400, 400)), None);
    assert_eq!(PictureLayout::fit(1, 28, 28, (27, 400)), None);
}

#[test]
fn the_grid_image_places_every_digit_pixel_scaled_with_gaps() {
    // Three 2x2 digits, two across, at twice their size: a 12x12 picture.
    let g = SampleGrid {
        step: 1,
        width: 2,
        height: 2,
        pixels: vec![10, 20, 30, 40, 50, 60, 70, 80, 90, 100, 110, 120],
        labels: None,
    };
    let layout = PictureLayout {
        across: 2,
        down: 2,
        scale: 2,
    };
    let image = grid_image(&g, layout, false);
    assert_eq!(image.dimensions(), (12, 12));
    let at = |x, y| image.get_pixel(x, y).0[0];
    // Digit 0 at the top left, each pixel a 2x2 square.
    assert_eq!(
        [at(0, 0), at(1, 1), at(2, 0), at(0, 2), at(3, 3)],
        [10, 10, 20, 30, 40]
    );
    // The gap after it is background; digit 1 starts after two gap pixels, scaled.
    assert_eq!([at(4, 0), at(7, 3)], [0, 0]);
    assert_eq!([at(8, 0), at(10, 0), at(8, 2), at(11, 3)], [50, 60, 70, 80]);
    // Digit 2 starts the second row; the fourth slot stays empty.
    assert_eq!(
        [at(0, 8), at(2, 8), at(0, 10), at(3, 11)],
        [90, 100, 110, 120]
    );
    assert!((8..12).all(|x| (8..12).all(|y| at(x, y) == 0)));
    // Inverted: dark ink on white, background included.
    let inverted = grid_image(&g, layout, true);
    assert_eq!(inverted.get_pixel(0, 0).0[0], 245);
    assert_eq!(inverted.get_pixel(5, 5).0[0], 255);
}

#[test]
fn the_picture_is_encoded_again_only_when_grid_or_panel_changes() {
    let encoder = fake_encoder();
    let area = Rect::new(0, 0, 40, 10);
    let mut buf = Buffer::empty(area);
    let mut g = grid(4, 28, 28, 200);
    for _ in 0..3 {
        encoder.render(&g, area, false, &mut buf).unwrap();
    }
    assert_eq!(encoder.encodes(), 1);
    // Something was drawn: the half blocks of a bright picture.
    assert!(buf.content().iter().any(|c| c.symbol() != " "));
    let smaller = Rect::new(0, 0, 30, 10);
    encoder.render(&g, smaller, false, &mut buf).unwrap();
    assert_eq!(encoder.encodes(), 2);
    if let Some(p) = g.pixels.first_mut() {
        *p = 0;
    }
    encoder.render(&g, smaller, false, &mut buf).unwrap();
    encoder.render(&g, smaller, false, &mut buf).unwrap();
    assert_eq!(encoder.encodes(), 3);
    encoder.render(&g, smaller, true, &mut buf).unwrap();
    assert_eq!(encoder.encodes(), 4);
    // Too small a panel says so (and does not retry every frame).
    let tiny = Rect::new(0, 0, 2, 1);
    let why = encoder.render(&g, tiny, false, &mut buf).unwrap_err();
    assert!(why.contains("too small"), "{why}");
    assert!(encoder.render(&g, tiny, false, &mut buf).is_err());
    assert_eq!(encoder.encodes(), 4);
}

#[test]
fn without_pictures_the_mode_key_cycles_text_modes_and_says_why_once() {
    let mut app = App::new();
    app.set_pictures(Pictures::NotShown("no pictures inside tmux".to_string()));
    let mut seen = Vec::new();
    for _ in 0..4 {
        app.update(Action::ToggleDigitMode);
        seen.push(app.digit_mode());
    }
    assert_eq!(
        seen,
        [
            DigitMode::HalfBlock,
            DigitMode::Ascii,
            DigitMode::HalfBlock,
            DigitMode::Ascii
        ]
    );
    let note = app.run().note().map(|n| n.text.clone());
    assert_eq!(note.as_deref(), Some("no pictures inside tmux"));
    // Told once: later news is not pushed aside by the reason again.
    app.notify(crate::run::state::Note {
        kind: crate::run::state::NoteKind::Info,
        text: "later news".to_string(),
    });
    app.update(Action::ToggleDigitMode);
    app.update(Action::ToggleDigitMode);
    assert_eq!(
        app.run().note().map(|n| n.text.as_str()),
        Some("later news")
    );
}

#[test]
fn with_pictures_the_mode_key_adds_the_picture_mode() {
    let mut app = App::new();
    app.set_pictures(Pictures::Shown(fake_encoder()));
    let mut seen = Vec::new();
    for _ in 0..3 {
        assert_eq!(app.update(Action::ToggleDigitMode), None);
        seen.push(app.digit_mode());
    }
    assert_eq!(
        seen,
        [DigitMode::HalfBlock, DigitMode::Picture, DigitMode::Ascii]
    );
    assert_eq!(app.run().note(), None);
}

#[test]
fn the_panel_draws_the_grid_as_one_picture_encoded_once_across_frames() {
    let encoder = fake_encoder();
    let mut app = App::new();
    app.set_pictures(Pictures::Shown(Arc::clone(&encoder)));
    app.update(Action::ToggleDigitMode);
    app.update(Action::ToggleDigitMode);
    assert_eq!(app.digit_mode(), DigitMode::Picture);
    app.on_msg(TrainMsg::Samples(grid(16, 28, 28, 255)));
    let theme = Theme::default();
    let area = Rect::new(0, 0, 60, 20);
    let mut frames = Vec::new();
    for _ in 0..3 {
        let mut buf = Buffer::empty(area);
        DigitPanel {
            app: &app,
            theme: &theme,
        }
        .render(area, &mut buf);
        frames.push(buf);
    }
    assert_eq!(encoder.encodes(), 1);
    assert!(frames.windows(2).all(|w| w[0] == w[1]));
    let top: String = (0..area.width)
        .map(|x| frames[0].cell((x, 0)).map_or(" ", |c| c.symbol()))
        .collect();
    assert!(top.contains("picture"), "{top}");
    // No ASCII ramp digits: the picture replaces them.
    assert!(!frames[0].content().iter().any(|c| c.symbol() == "@"));
    assert!(frames[0].content().iter().any(|c| c.symbol() != " "));
    // A new grid is a new picture.
    app.on_msg(TrainMsg::Samples(grid(16, 28, 28, 100)));
    let mut buf = Buffer::empty(area);
    DigitPanel {
        app: &app,
        theme: &theme,
    }
    .render(area, &mut buf);
    assert_eq!(encoder.encodes(), 2);
}
