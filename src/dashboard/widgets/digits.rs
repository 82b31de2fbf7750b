//! The digit grid: pure digit-to-text renderers (ASCII shading, half blocks) and the panel that
//! tiles as many generated digits as fit.

use ratatui::buffer::Buffer;
use ratatui::layout::Rect;
use ratatui::style::{Color, Style};
use ratatui::text::{Line, Span};
use ratatui::widgets::{Block, Borders, Widget};

use crate::dashboard::app::{App, DigitMode};
use crate::dashboard::pictures::Pictures;
use crate::dashboard::theme::Theme;
use crate::protocol::{MorphStrip, NearestReport, Reading, SampleGrid};

use super::{first_that_fits, put_line};

/// Digits wanted on screen before a smaller digit size is preferred over a larger one.
const ENOUGH_DIGITS: usize = 4;

const UPPER_HALF: char = '▀';
const LOWER_HALF: char = '▄';
const FULL_BLOCK: char = '█';

/// Averages `width` x `height` grey pixels down (or up) to `cols` x `rows`, row-major. Pixels
/// missing from a short slice count as background.
pub fn resample(pixels: &[u8], width: usize, height: usize, cols: usize, rows: usize) -> Vec<u8> {
    let mut out = Vec::with_capacity(cols * rows);
    if width == 0 || height == 0 {
        out.resize(cols * rows, 0);
        return out;
    }
    // Each output cell covers the source box [x0, x1) x [y0, y1), never empty.
    let span = |i: usize, src: usize, dst: usize| {
        let start = (i * src / dst).min(src - 1);
        let end = ((i + 1) * src / dst).clamp(start + 1, src);
        (start, end)
    };
    for cy in 0..rows {
        let (y0, y1) = span(cy, height, rows);
        for cx in 0..cols {
            let (x0, x1) = span(cx, width, cols);
            let mut sum = 0u32;
            for y in y0..y1 {
                for x in x0..x1 {
                    sum += u32::from(pixels.get(y * width + x).copied().unwrap_or(0));
                }
            }
            let n = ((y1 - y0) * (x1 - x0)) as u32;
            out.push(((sum + n / 2) / n) as u8);
        }
    }
    out
}

/// The ramp character for a grey level: 0 is the first character, 255 the last.
pub fn ramp_char(value: u8, ramp: &[char]) -> char {
    let index = usize::from(value) * ramp.len() / 256;
    ramp.get(index).copied().unwrap_or(' ')
}

/// A digit as `rows` lines of `cols` ramp characters. For a square digit to look square in a
/// terminal, give it about twice as many columns as rows.
pub fn ascii_digit(
    pixels: &[u8],
    width: usize,
    height: usize,
    cols: usize,
    rows: usize,
    ramp: &[char],
) -> Vec<String> {
    let small = resample(pixels, width, height, cols, rows);
    small
        .chunks(cols.max(1))
        .take(rows)
        .map(|row| row.iter().map(|&v| ramp_char(v, ramp)).collect())
        .collect()
}

/// How half-block digits are shaded.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct HalfBlockShading {
    /// Grey levels from the 256-colour palette; otherwise plain glyphs at a 50% threshold.
    pub grey: bool,
    /// Dark ink on a light ground (grey mode only).
    pub invert: bool,
}

impl HalfBlockShading {
    pub fn from_theme(theme: &Theme) -> HalfBlockShading {
        HalfBlockShading {
            grey: theme.half_block_grey,
            invert: theme.digit_invert,
        }
    }
}

/// The nearest grey of the 256-colour palette: black (16), the 24-step ramp (232-255), white (231).
pub fn grey(value: u8) -> Color {
    match value {
        0..=3 => Color::Indexed(16),
        247..=255 => Color::Indexed(231),
        // The ramp runs 8, 18, ..., 238.
        v => Color::Indexed(232 + ((u16::from(v).saturating_sub(3)) / 10).min(23) as u8),
    }
}

/// A digit as `rows` rows of `cols` styled cells, two pixel rows per cell: the upper half block
/// takes the top pixel as foreground and the bottom pixel as background.
pub fn half_block_digit(
    pixels: &[u8],
    width: usize,
    height: usize,
    cols: usize,
    rows: usize,
    shading: HalfBlockShading,
) -> Vec<Vec<(char, Style)>> {
    let small = resample(pixels, width, height, cols, rows * 2);
    let at = |x: usize, y: usize| small.get(y * cols + x).copied().unwrap_or(0);
    (0..rows)
        .map(|row| {
            (0..cols)
                .map(|x| {
                    let (top, bottom) = (at(x, 2 * row), at(x, 2 * row + 1));
                    if shading.grey {
                        let level = |v: u8| grey(if shading.invert { 255 - v } else { v });
                        (UPPER_HALF, Style::new().fg(level(top)).bg(level(bottom)))
                    } else {
                        let glyph = match (top >= 128, bottom >= 128) {
                            (true, true) => FULL_BLOCK,
                            (true, false) => UPPER_HALF,
                            (false, true) => LOWER_HALF,
                            (false, false) => ' ',
                        };
                        (glyph, Style::new())
                    }
                })
                .collect()
        })
        .collect()
}

/// Terminal cells per digit (columns, rows): the largest size that still shows enough digits.
pub fn digit_cells(grid: &SampleGrid, area: Rect) -> Option<(u16, u16)> {
    SlotLayout {
        pairs: false,
        caption: false,
    }
    .cells(grid, area)
}

/// Which digits a labelled grid shows: `digit 3` when every sample was asked for the same one,
/// else `all digits`. A one-digit grid counts as one digit only if that digit was asked for.
pub fn shown_digits(labels: &[u8], asked: Option<u8>) -> String {
    match labels.split_first() {
        Some((first, rest))
            if rest.iter().all(|l| l == first) && (!rest.is_empty() || asked == Some(*first)) =>
        {
            format!("digit {first}")
        }
        _ => "all digits".to_string(),
    }
}

/// The panel's title in at most `width` cells: the panel's name goes first, then the drawing
/// mode, then the noise, so the step and the digits shown stay longest.
pub fn panel_title(
    step: Option<&str>,
    shown: Option<&str>,
    noise: &str,
    mode: &str,
    width: u16,
) -> String {
    let join = |with_name: bool, with_noise: bool, with_mode: bool| {
        let parts: Vec<&str> = [
            with_name.then_some("digits"),
            step,
            shown,
            with_noise.then_some(noise),
            with_mode.then_some(mode),
        ]
        .into_iter()
        .flatten()
        .collect();
        format!(" {} ", parts.join(" · "))
    };
    first_that_fits(
        [
            join(true, true, true),
            join(false, true, true),
            join(false, true, false),
            join(false, false, false),
        ],
        width,
    )
}

/// The generated-digits panel.
pub struct DigitPanel<'a> {
    pub app: &'a App,
    pub theme: &'a Theme,
}

impl Widget for &DigitPanel<'_> {
    fn render(self, area: Rect, buf: &mut Buffer) {
        let area = area.intersection(buf.area);
        let (app, theme) = (self.app, self.theme);
        let mode = match app.digit_mode() {
            DigitMode::Ascii => "ascii",
            DigitMode::HalfBlock => "half-block",
            DigitMode::Picture => "picture",
        };
        let noise = if app.fresh_noise() {
            "fresh noise"
        } else {
            "fixed noise"
        };
        // An older grid from the filmstrip says where it sits, and stands out.
        let (step, title_style) = match app.film_position() {
            Some(at) => (Some(at.label()), theme.warning),
            None => (
                app.run().samples().map(|g| format!("step {}", g.step)),
                theme.title,
            ),
        };
        let shown = app
            .shown_samples()
            .and_then(|g| g.labels.as_deref())
            .map(|labels| shown_digits(labels, app.digit_request()));
        let title = panel_title(
            step.as_deref(),
            shown.as_deref(),
            noise,
            mode,
            area.width.saturating_sub(2),
        );
        let block = Block::default()
            .borders(Borders::ALL)
            .border_style(theme.border)
            .title(Span::styled(title, title_style));
        let inner = block.inner(area);
        block.render(area, buf);

        let Some(grid) = app.shown_samples().filter(|g| g.count() > 0) else {
            put_line(
                buf,
                inner,
                0,
                &Line::styled("waiting for the first samples...", theme.muted),
            );
            return;
        };
        let probes = app.probes();
        // The probes are of the live generator: an older grid shows none.
        let report = app.run().probes().filter(|_| app.showing_live());
        let mut inner = inner;
        // The morph strip takes the top of the panel.
        if let Some(strip) = report
            .and_then(|r| r.morph.as_ref())
            .filter(|_| probes.morph)
        {
            let used = draw_morph(strip, app, theme, inner, buf);
            inner = Rect::new(
                inner.x,
                inner.y + used,
                inner.width,
                inner.height.saturating_sub(used),
            );
        }
        let of_grid = app.probes_of_shown();
        let readings = of_grid
            .and_then(|r| r.readings.as_deref())
            .filter(|_| probes.reading);
        let nearest = of_grid
            .and_then(|r| r.nearest.as_ref())
            .filter(|_| probes.nearest);
        // The memorisation line takes the bottom row.
        if let Some(n) = nearest.filter(|_| inner.height > 1) {
            let bottom = inner.height - 1;
            let (text, style) = memorisation_line(n, theme);
            put_line(buf, inner, bottom, &Line::styled(text, style));
            inner.height -= 1;
        }
        if let (DigitMode::Picture, Pictures::Shown(encoder)) = (app.digit_mode(), app.pictures())
            && let Err(why) = encoder.render(grid, inner, theme.digit_invert, buf)
        {
            put_line(buf, inner, 0, &Line::styled(why, theme.muted));
        }
        if app.digit_mode() == DigitMode::Picture {
            return;
        }
        let layout = SlotLayout {
            pairs: nearest.is_some(),
            caption: readings.is_some() || nearest.is_some(),
        };
        let Some((cw, ch)) = layout.cells(grid, inner) else {
            put_line(
                buf,
                inner,
                0,
                &Line::styled("too small for digits", theme.muted),
            );
            return;
        };
        let (slot_w, slot_h) = layout.slot(cw, ch);
        let (across, down) = (inner.width / slot_w, inner.height / slot_h);
        let shown = grid.count().min(usize::from(across) * usize::from(down));
        let used_rows = shown.div_ceil(usize::from(across.max(1)));
        let used_cols = shown.min(usize::from(across));
        // Centre the block of digits in the panel.
        let left = inner.x + (inner.width - slot_w * used_cols as u16) / 2;
        let top = inner.y + (inner.height - slot_h * used_rows as u16) / 2;
        for i in 0..shown {
            let Some(pixels) = grid.digit(i) else { break };
            let x = left + slot_w * (i % usize::from(across)) as u16;
            let y = top + slot_h * (i / usize::from(across)) as u16;
            let cell_area = Rect::new(x, y, cw, ch).intersection(inner);
            draw_digit(pixels, grid.width, grid.height, app, theme, cell_area, buf);
            if let Some(n) = nearest {
                let per = n.width * n.height;
                if let Some(near) = n.pixels.get(i * per..(i + 1) * per) {
                    let near_area = Rect::new(x + cw + 1, y, cw, ch).intersection(inner);
                    draw_digit(near, n.width, n.height, app, theme, near_area, buf);
                }
            }
            if layout.caption {
                let mut parts = Vec::new();
                if let Some(r) = readings.and_then(|r| r.get(i)) {
                    parts.push(Span::styled(
                        format!("{} {:.0}%", r.digit, 100.0 * r.confidence),
                        reading_style(r, grid.labels.as_deref().and_then(|l| l.get(i)), theme),
                    ));
                }
                if let Some(d) = nearest.and_then(|n| n.distances.get(i)) {
                    let sep = if parts.is_empty() { "" } else { " " };
                    parts.push(Span::styled(format!("{sep}d{d:.1}"), theme.muted));
                }
                let caption_area = Rect::new(x, y + ch, slot_w, 1).intersection(inner);
                put_line(buf, caption_area, 0, &Line::from(parts));
            }
        }
    }
}

/// How the grid's slots are laid out when probes add to each digit: its nearest training digit
/// beside it (`pairs`), a caption row under it (`caption`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SlotLayout {
    pub pairs: bool,
    pub caption: bool,
}

impl SlotLayout {
    /// A slot's size for digits of `cw` x `ch` cells: a one-cell gap before a digit's pair.
    pub fn slot(self, cw: u16, ch: u16) -> (u16, u16) {
        let width = if self.pairs { 2 * cw + 1 } else { cw };
        (width, ch + u16::from(self.caption))
    }

    /// Terminal cells per digit with the probes' additions fitted in: the largest size that
    /// still shows enough digits.
    pub fn cells(self, grid: &SampleGrid, area: Rect) -> Option<(u16, u16)> {
        let (w, h) = (grid.width.max(1), grid.height.max(1));
        let to_u16 = |v: usize| u16::try_from(v.max(1)).unwrap_or(u16::MAX);
        // One pixel per column and two per row, then half that; both keep a square digit
        // square.
        let sizes = [(to_u16(w), to_u16(h / 2)), (to_u16(w / 2), to_u16(h / 4))];
        let fits = |(cw, ch): (u16, u16)| {
            let (sw, sh) = self.slot(cw, ch);
            usize::from(area.width / sw) * usize::from(area.height / sh)
        };
        let want = grid.count().clamp(1, ENOUGH_DIGITS);
        sizes
            .iter()
            .copied()
            .find(|&size| fits(size) >= want)
            .or_else(|| sizes.last().copied().filter(|&size| fits(size) >= 1))
    }
}

/// A reading in the warning colour when it is not the digit asked for, or not confident.
fn reading_style(reading: &Reading, asked: Option<&u8>, theme: &Theme) -> Style {
    let wrong = asked.is_some_and(|&a| a != reading.digit);
    if wrong || reading.confidence < 0.5 {
        theme.warning
    } else {
        theme.text
    }
}

/// The memorisation verdict of a nearest-digit report, as the panel's last line says it.
pub fn memorisation_line(n: &NearestReport, theme: &Theme) -> (String, Style) {
    if n.memorising() {
        (
            format!(
                "WARNING copying? median d{:.1} to training digits < test digits' d{:.1}",
                n.generated_median, n.test_median
            ),
            theme.warning,
        )
    } else {
        (
            format!(
                "median d{:.1} vs test digits' d{:.1} (of {} training): not copying",
                n.generated_median, n.test_median, n.searched
            ),
            theme.muted,
        )
    }
}

/// Draws the morph strip at the top of `area`; returns the rows it used (0 if it does not fit).
fn draw_morph(strip: &MorphStrip, app: &App, theme: &Theme, area: Rect, buf: &mut Buffer) -> u16 {
    let steps = strip.steps.max(1) as u16;
    let per = strip.width * strip.height;
    let rows = (strip.pixels.len() / (per.max(1) * usize::from(steps))) as u16;
    // Square digits: twice as many columns as rows, at most the small grid size.
    let cw = (area.width / steps).min(strip.width as u16 / 2 * 2);
    let ch = cw / 2;
    if ch < 2 || rows == 0 {
        return 0;
    }
    let per_row = ch + 1;
    if area.height < rows * per_row + 2 {
        return 0;
    }
    let left = area.x + (area.width - cw * steps) / 2;
    for row in 0..rows {
        let caption = match (row, strip.digits) {
            (0, Some((a, _))) => format!("morph · noise A → B, as digit {a}"),
            (_, Some((a, b))) => format!("morph · digit {a} → {b}, noise A"),
            _ => "morph · noise A → B".to_string(),
        };
        let y = area.y + row * per_row;
        put_line(
            buf,
            area,
            row * per_row,
            &Line::styled(caption, theme.title),
        );
        for i in 0..usize::from(steps) {
            let index = usize::from(row) * usize::from(steps) + i;
            let Some(pixels) = strip.pixels.get(index * per..(index + 1) * per) else {
                break;
            };
            let cell = Rect::new(left + cw * i as u16, y + 1, cw, ch).intersection(area);
            draw_digit(pixels, strip.width, strip.height, app, theme, cell, buf);
        }
    }
    let used = rows * per_row;
    // A rule between the strip and the grid.
    put_line(
        buf,
        area,
        used,
        &Line::styled("─".repeat(usize::from(area.width)), theme.border),
    );
    used + 1
}

/// One digit into `area`, in the app's drawing mode.
fn draw_digit(
    pixels: &[u8],
    width: usize,
    height: usize,
    app: &App,
    theme: &Theme,
    area: Rect,
    buf: &mut Buffer,
) {
    let (cols, rows) = (usize::from(area.width), usize::from(area.height));
    if cols == 0 || rows == 0 {
        return;
    }
    match app.digit_mode() {
        DigitMode::Ascii => {
            let lines = ascii_digit(pixels, width, height, cols, rows, &theme.digit_ramp);
            for (row, text) in lines.iter().enumerate() {
                put_line(
                    buf,
                    area,
                    row as u16,
                    &Line::styled(text.as_str(), theme.digit),
                );
            }
        }
        // Beside a picture (the morph strip) the finest text is drawn.
        DigitMode::HalfBlock | DigitMode::Picture => {
            let shading = HalfBlockShading::from_theme(theme);
            let cells = half_block_digit(pixels, width, height, cols, rows, shading);
            for (row, line) in cells.iter().enumerate() {
                for (col, (glyph, style)) in line.iter().enumerate() {
                    let (cx, cy) = (area.x + col as u16, area.y + row as u16);
                    if cx >= area.right() || cy >= area.bottom() {
                        continue;
                    }
                    if let Some(cell) = buf.cell_mut((cx, cy)) {
                        cell.set_char(*glyph).set_style(theme.digit.patch(*style));
                    }
                }
            }
        }
    }
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;
    use std::io::Read;

    const RAMP: &str = " .:-=+*#%@";

    fn ramp() -> Vec<char> {
        RAMP.chars().collect()
    }

    /// The first `n` images of the MNIST training set, read with flate2 from the shipped file.
    pub(crate) fn mnist_digits(n: usize) -> Vec<u8> {
        let path = concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/data/mnist/train-images-idx3-ubyte.gz"
        );
        let file = std::fs::File::open(path).unwrap_or_else(|e| panic!("open {path}: {e}"));
        let mut bytes = Vec::new();
        flate2::read::GzDecoder::new(file)
            .take(16 + 784 * n as u64)
            .read_to_end(&mut bytes)
            .unwrap_or_else(|e| panic!("gunzip {path}: {e}"));
        let be = |at: usize| {
            bytes
                .get(at..at + 4)
                .and_then(|b| <[u8; 4]>::try_from(b).ok())
                .map(u32::from_be_bytes)
        };
        assert_eq!(be(0), Some(0x0803), "not an IDX image file");
        assert_eq!((be(8), be(12)), (Some(28), Some(28)));
        let pixels = bytes.get(16..).map(<[u8]>::to_vec).unwrap_or_default();
        assert_eq!(pixels.len(), 784 * n);
        pixels
    }

    /// The first image of the MNIST training set: a 5.
    fn first_mnist_digit() -> Vec<u8> {
        mnist_digits(1)
    }

    /// Ink mass (sum of ramp positions) in the left and right halves of some text rows.
    fn mass(lines: &[String], rows: std::ops::Range<usize>) -> (usize, usize) {
        let ramp = ramp();
        let mut left_right = (0, 0);
        for line in lines.iter().skip(rows.start).take(rows.len()) {
            let chars: Vec<char> = line.chars().collect();
            let half = chars.len() / 2;
            for (i, c) in chars.iter().enumerate() {
                let weight = ramp.iter().position(|r| r == c).unwrap_or(0);
                if i < half {
                    left_right.0 += weight;
                } else {
                    left_right.1 += weight;
                }
            }
        }
        left_right
    }

    #[test]
    fn labels_name_one_digit_only_when_every_sample_is_that_digit() {
        assert_eq!(shown_digits(&[3, 3, 3], None), "digit 3");
        assert_eq!(shown_digits(&[0, 1, 2, 3], None), "all digits");
        assert_eq!(shown_digits(&[3, 3, 4], Some(3)), "all digits");
        // One sample: it is "digit 3" only if 3 was asked for.
        assert_eq!(shown_digits(&[0], None), "all digits");
        assert_eq!(shown_digits(&[3], Some(3)), "digit 3");
        assert_eq!(shown_digits(&[], Some(3)), "all digits");
    }

    #[test]
    fn the_title_drops_name_then_mode_then_noise() {
        let title = |w| panel_title(Some("step 9"), Some("digit 3"), "fixed noise", "ascii", w);
        assert_eq!(
            title(80),
            " digits · step 9 · digit 3 · fixed noise · ascii "
        );
        assert_eq!(title(45), " step 9 · digit 3 · fixed noise · ascii ");
        assert_eq!(title(32), " step 9 · digit 3 · fixed noise ");
        assert_eq!(title(20), " step 9 · digit 3 ");
        assert_eq!(title(3), " step 9 · digit 3 ");
        assert_eq!(
            panel_title(None, None, "fresh noise", "half-block", 80),
            " digits · fresh noise · half-block "
        );
    }

    #[test]
    fn all_black_is_blank_and_all_white_is_solid() {
        let black = ascii_digit(&[0; 784], 28, 28, 14, 7, &ramp());
        assert_eq!(black, vec![" ".repeat(14); 7]);
        let white = ascii_digit(&[255; 784], 28, 28, 28, 14, &ramp());
        assert_eq!(white, vec!["@".repeat(28); 14]);
    }

    #[test]
    fn the_ramp_spans_black_to_white_evenly() {
        let ramp = ramp();
        assert_eq!(ramp_char(0, &ramp), ' ');
        assert_eq!(ramp_char(25, &ramp), ' ');
        assert_eq!(ramp_char(26, &ramp), '.');
        assert_eq!(ramp_char(128, &ramp), '+');
        assert_eq!(ramp_char(255, &ramp), '@');
        assert_eq!(ramp_char(255, &[]), ' ');
        // A horizontal gradient keeps its order at any size.
        let gradient: Vec<u8> = (0..4).flat_map(|_| [0u8, 85, 170, 255]).collect();
        assert_eq!(ascii_digit(&gradient, 4, 4, 4, 2, &ramp), vec![" -*@"; 2]);
    }

    #[test]
    fn resample_averages_boxes_and_tolerates_odd_inputs() {
        let px = [0, 100, 200, 255];
        assert_eq!(resample(&px, 2, 2, 1, 1), vec![139]);
        assert_eq!(resample(&px, 2, 2, 4, 4).len(), 16);
        assert_eq!(resample(&px, 2, 2, 4, 4).first(), Some(&0));
        assert_eq!(resample(&px, 2, 2, 4, 4).last(), Some(&255));
        assert_eq!(resample(&[], 0, 0, 3, 2), vec![0; 6]);
        // A short slice: missing pixels are background, nothing panics.
        assert_eq!(resample(&[255], 2, 2, 1, 1), vec![64]);
        assert!(resample(&px, 2, 2, 0, 0).is_empty());
    }

    #[test]
    fn a_real_mnist_five_is_recognisable_in_the_text() {
        let five = first_mnist_digit();
        for (cols, rows) in [(28, 14), (14, 7)] {
            let lines = ascii_digit(&five, 28, 28, cols, rows, &ramp());
            let picture = lines.join("\n");
            assert_eq!(lines.len(), rows);
            assert!(lines.iter().all(|l| l.chars().count() == cols));
            // MNIST's blank border stays blank (this 5 reaches down to pixel row 24, so the last
            // text row is blank only when it covers less than four pixel rows).
            assert!(
                lines.first().is_some_and(|l| l.trim().is_empty()),
                "\n{picture}"
            );
            assert_eq!(
                lines.last().is_some_and(|l| l.trim().is_empty()),
                rows == 14,
                "\n{picture}"
            );
            // The strokes of a 5, band by band: a top bar reaching right, a stem down the left,
            // a bowl on the right, and a tail sweeping back to the left.
            let band = |from: usize, to: usize| mass(&lines, rows * from / 28..rows * to / 28);
            let (bar_l, bar_r) = band(5, 8);
            assert!(
                bar_l > 0 && bar_r > 0,
                "top bar spans both halves\n{picture}"
            );
            let (stem_l, stem_r) = band(8, 13);
            assert!(stem_l > 2 * stem_r, "stem on the left\n{picture}");
            let (bowl_l, bowl_r) = band(15, 20);
            assert!(bowl_r > 2 * bowl_l, "bowl on the right\n{picture}");
            let (tail_l, tail_r) = band(21, 25);
            assert!(tail_l > 2 * tail_r, "tail on the left\n{picture}");
        }
    }

    #[test]
    fn half_blocks_pack_two_pixel_rows_per_cell() {
        // 2x4 pixels: row 0 ink, row 1 blank, row 2 blank, row 3 ink; left column only.
        let px = [255, 0, 0, 0, 0, 0, 255, 0];
        let plain = HalfBlockShading {
            grey: false,
            invert: false,
        };
        let cells = half_block_digit(&px, 2, 4, 2, 2, plain);
        let glyphs: Vec<String> = cells
            .iter()
            .map(|row| row.iter().map(|(c, _)| *c).collect())
            .collect();
        assert_eq!(glyphs, vec!["▀ ".to_string(), "▄ ".to_string()]);
        let full = half_block_digit(&[255; 4], 1, 4, 1, 2, plain);
        assert_eq!(
            full.iter().flatten().map(|(c, _)| *c).collect::<String>(),
            "██"
        );

        let grey_mode = HalfBlockShading {
            grey: true,
            invert: false,
        };
        let cells = half_block_digit(&px, 2, 4, 2, 2, grey_mode);
        let first = cells.first().and_then(|r| r.first()).copied();
        assert_eq!(
            first,
            Some((
                UPPER_HALF,
                Style::new().fg(Color::Indexed(231)).bg(Color::Indexed(16))
            ))
        );
        let inverted = half_block_digit(
            &px,
            2,
            4,
            2,
            2,
            HalfBlockShading {
                grey: true,
                invert: true,
            },
        );
        let first = inverted.first().and_then(|r| r.first()).copied();
        assert_eq!(
            first,
            Some((
                UPPER_HALF,
                Style::new().fg(Color::Indexed(16)).bg(Color::Indexed(231))
            ))
        );
    }

    #[test]
    fn greys_rise_with_the_pixel_value() {
        let index = |v: u8| match grey(v) {
            Color::Indexed(i) => i,
            _ => 0,
        };
        assert_eq!(index(0), 16);
        assert_eq!(index(255), 231);
        let mids: Vec<u8> = (4..=234).step_by(10).map(index).collect();
        assert!(mids.windows(2).all(|w| w[0] < w[1]), "{mids:?}");
        assert!(mids.iter().all(|&i| (232..=255).contains(&i)));
    }

    #[test]
    fn a_real_digit_in_half_blocks_keeps_its_shape() {
        let five = first_mnist_digit();
        let plain = HalfBlockShading {
            grey: false,
            invert: false,
        };
        let cells = half_block_digit(&five, 28, 28, 14, 7, plain);
        let ink: usize = cells.iter().flatten().filter(|(c, _)| *c != ' ').count();
        assert!(ink > 10 && ink < 60, "{ink} inked cells of 98");
        assert!(
            cells
                .first()
                .is_some_and(|r| r.iter().all(|(c, _)| *c == ' '))
        );
    }
}
