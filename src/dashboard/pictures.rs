//! Digits as real pictures in terminals with an image protocol (kitty, sixel, iTerm2), through
//! `ratatui-image`: whether the terminal can show them (asked once, before keys are read), the
//! sample grid as one grey image laid out for the panel, and that image encoded only when the
//! grid or the panel's size changes.

use std::fmt;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, PoisonError};

use image::{DynamicImage, GrayImage, Luma};
use ratatui::buffer::Buffer;
use ratatui::layout::{Rect, Size};
use ratatui::widgets::Widget;
use ratatui_image::picker::cap_parser::QueryStdioOptions;
use ratatui_image::picker::{Picker, ProtocolType};
use ratatui_image::protocol::Protocol;
use ratatui_image::{FontSize, Image, Resize};

use crate::protocol::SampleGrid;

/// How long the terminal gets to answer the image-protocol query. Terminals answer at once;
/// one that never does costs this much at start-up, and no keys after it.
const QUERY_TIMEOUT_MS: i32 = 1000;

/// Pixels between neighbouring digits in the picture, before scaling.
const GAP: u32 = 2;

/// Whether the digit panel can show pictures here, and if not why not (told once, when the mode
/// key passes the picture mode by).
#[derive(Clone, Debug)]
pub enum Pictures {
    Shown(Arc<PictureEncoder>),
    NotShown(String),
}

impl Default for Pictures {
    fn default() -> Self {
        Pictures::NotShown("the terminal was not asked about pictures".to_string())
    }
}

/// Why the environment alone rules pictures out, before asking the terminal anything:
/// multiplexers pass no images through (and asking through them would change their settings),
/// and some terminals have no graphics at all. `var` reads an environment variable.
pub fn ruled_out_by_env(var: impl Fn(&str) -> Option<String>) -> Option<String> {
    let set = |name: &str| var(name).is_some_and(|v| !v.is_empty());
    let term = var("TERM").unwrap_or_default();
    if set("TMUX") || term.starts_with("tmux") || var("TERM_PROGRAM").as_deref() == Some("tmux") {
        return Some("no pictures inside tmux (it does not pass them through)".to_string());
    }
    if set("STY") || term.starts_with("screen") {
        return Some("no pictures inside screen (it does not pass them through)".to_string());
    }
    if term.is_empty() || term == "dumb" || term == "linux" {
        let shown = if term.is_empty() { "unset" } else { &term };
        return Some(format!("no pictures on this terminal (TERM {shown})"));
    }
    None
}

/// Whether the protocol the terminal's answer chose draws pictures: halfblocks is what the
/// crate falls back to when the terminal reported no graphics.
pub fn protocol_shows_pictures(kind: ProtocolType) -> Result<(), String> {
    match kind {
        ProtocolType::Kitty | ProtocolType::Sixel | ProtocolType::Iterm2 => Ok(()),
        ProtocolType::Halfblocks => Err(
            "no pictures: the terminal did not report an image protocol (kitty, sixel or iTerm2)"
                .to_string(),
        ),
    }
}

/// Asks the terminal what it can show. Call with the terminal in raw mode and before anything
/// reads keys: the answer comes on the keyboard's input. The wait is bounded; a terminal that
/// does not answer gets no pictures.
pub fn detect() -> Pictures {
    if let Some(why) = ruled_out_by_env(|name| std::env::var(name).ok()) {
        return Pictures::NotShown(why);
    }
    let options = QueryStdioOptions {
        timeout_ms: QUERY_TIMEOUT_MS,
        ..QueryStdioOptions::default()
    };
    match Picker::from_query_stdio_with_options(options) {
        Ok(picker) => match protocol_shows_pictures(picker.protocol_type()) {
            Ok(()) => Pictures::Shown(Arc::new(PictureEncoder::with_picker(picker))),
            Err(why) => Pictures::NotShown(why),
        },
        Err(e) => Pictures::NotShown(format!("no pictures: asking the terminal failed: {e}")),
    }
}

/// How a grid is laid out in a picture: digits across and down, and the whole-number scale of
/// each digit pixel.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PictureLayout {
    pub across: u32,
    pub down: u32,
    pub scale: u32,
}

impl PictureLayout {
    /// The largest layout of `count` digits of `width` x `height` pixels that fits in
    /// `room` (pixels across, down), or `None` when not even one pixel per pixel fits.
    pub fn fit(count: usize, width: usize, height: usize, room: (u32, u32)) -> Option<Self> {
        let count = u32::try_from(count).ok().filter(|&c| c > 0)?;
        let (w, h) = (
            u32::try_from(width).ok().filter(|&w| w > 0)?,
            u32::try_from(height).ok().filter(|&h| h > 0)?,
        );
        (1..=count)
            .map(|across| {
                let down = count.div_ceil(across);
                let base_w = across * w + (across - 1) * GAP;
                let base_h = down * h + (down - 1) * GAP;
                let scale = (room.0 / base_w).min(room.1 / base_h);
                PictureLayout {
                    across,
                    down,
                    scale,
                }
            })
            .filter(|l| l.scale > 0)
            // The biggest digits; of equal sizes, the fewest columns.
            .max_by_key(|l| (l.scale, std::cmp::Reverse(l.across)))
    }

    /// The picture's size in pixels for digits of `width` x `height`.
    pub fn pixels(self, width: u32, height: u32) -> (u32, u32) {
        (
            (self.across * width + (self.across - 1) * GAP) * self.scale,
            (self.down * height + (self.down - 1) * GAP) * self.scale,
        )
    }
}

/// The grid as one grey picture: digits row by row in `layout`, each pixel a `scale`-sized
/// square, gaps and unused slots in the background. `invert` draws dark ink on white, as the
/// theme's `digit_invert` asks of the text modes.
pub fn grid_image(grid: &SampleGrid, layout: PictureLayout, invert: bool) -> GrayImage {
    let (w, h) = (grid.width as u32, grid.height as u32);
    let (pw, ph) = layout.pixels(w, h);
    let ink = |v: u8| if invert { 255 - v } else { v };
    let mut image = GrayImage::from_pixel(pw, ph, Luma([ink(0)]));
    let s = layout.scale;
    for i in 0..grid.count().min((layout.across * layout.down) as usize) {
        let Some(pixels) = grid.digit(i) else { break };
        let (col, row) = (i as u32 % layout.across, i as u32 / layout.across);
        let (x0, y0) = (col * (w + GAP) * s, row * (h + GAP) * s);
        for (j, &v) in pixels.iter().enumerate() {
            let (px, py) = (x0 + (j as u32 % w) * s, y0 + (j as u32 / w) * s);
            for dy in 0..s {
                for dx in 0..s {
                    image.put_pixel(px + dx, py + dy, Luma([ink(v)]));
                }
            }
        }
    }
    image
}

/// What the cached picture was made from; any change makes a new one.
#[derive(Debug, Clone, PartialEq, Eq)]
struct PictureKey {
    step: u64,
    width: usize,
    height: usize,
    pixels: Vec<u8>,
    cells: (u16, u16),
    invert: bool,
}

impl PictureKey {
    /// Whether this picture shows `grid` at `cells` and `invert`: compared in place, since
    /// cloning the grid's pixels every frame would cost more than the check.
    fn shows(&self, grid: &SampleGrid, cells: (u16, u16), invert: bool) -> bool {
        self.step == grid.step
            && self.width == grid.width
            && self.height == grid.height
            && self.cells == cells
            && self.invert == invert
            && self.pixels == grid.pixels
    }
}

type Encode = dyn Fn(DynamicImage, Size) -> Result<Protocol, String> + Send + Sync;

/// Turns grids into the terminal's picture escapes, keeping the last one: the dashboard draws at
/// `fps`, and encoding a picture costs far more than a frame should.
pub struct PictureEncoder {
    /// A terminal cell's size in pixels, as the terminal reported it.
    cell: FontSize,
    encode: Box<Encode>,
    cached: Mutex<Option<(PictureKey, Result<Protocol, String>)>>,
    encodes: AtomicUsize,
}

impl fmt::Debug for PictureEncoder {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("PictureEncoder")
            .field("cell", &self.cell)
            .field("encodes", &self.encodes())
            .finish()
    }
}

impl PictureEncoder {
    fn with_picker(picker: Picker) -> PictureEncoder {
        let cell = picker.font_size();
        PictureEncoder::new(
            cell,
            Box::new(move |image, size| {
                picker
                    .new_protocol(image, size, Resize::Fit(None))
                    .map_err(|e| e.to_string())
            }),
        )
    }

    /// An encoder for cells of `cell` pixels; `encode` makes a picture for an area of cells.
    pub fn new(cell: FontSize, encode: Box<Encode>) -> PictureEncoder {
        PictureEncoder {
            cell,
            encode,
            cached: Mutex::new(None),
            encodes: AtomicUsize::new(0),
        }
    }

    /// Pictures made so far.
    pub fn encodes(&self) -> usize {
        self.encodes.load(Ordering::Relaxed)
    }

    /// Draws `grid` as one picture centred in `area`; the error says why it cannot be drawn
    /// (too small a panel, an encoding failure) for the caller to show instead.
    pub fn render(
        &self,
        grid: &SampleGrid,
        area: Rect,
        invert: bool,
        buf: &mut Buffer,
    ) -> Result<(), String> {
        let cells = (area.width, area.height);
        let mut cached = self.cached.lock().unwrap_or_else(PoisonError::into_inner);
        if cached
            .as_ref()
            .is_none_or(|(k, _)| !k.shows(grid, cells, invert))
        {
            let key = PictureKey {
                step: grid.step,
                width: grid.width,
                height: grid.height,
                pixels: grid.pixels.clone(),
                cells,
                invert,
            };
            let made = self.make(grid, area, invert);
            *cached = Some((key, made));
        }
        let protocol = match cached.as_ref().map(|(_, made)| made) {
            Some(Ok(protocol)) => protocol,
            Some(Err(why)) => return Err(why.clone()),
            None => return Err("no picture".to_string()),
        };
        let size = protocol.size();
        let (w, h) = (size.width.min(area.width), size.height.min(area.height));
        let at = Rect::new(
            area.x + (area.width - w) / 2,
            area.y + (area.height - h) / 2,
            w,
            h,
        );
        Image::new(protocol).render(at, buf);
        Ok(())
    }

    fn make(&self, grid: &SampleGrid, area: Rect, invert: bool) -> Result<Protocol, String> {
        let room = (
            u32::from(area.width) * u32::from(self.cell.width.max(1)),
            u32::from(area.height) * u32::from(self.cell.height.max(1)),
        );
        let layout = PictureLayout::fit(grid.count(), grid.width, grid.height, room)
            .ok_or_else(|| "too small for a picture".to_string())?;
        let image = DynamicImage::ImageLuma8(grid_image(grid, layout, invert));
        self.encodes.fetch_add(1, Ordering::Relaxed);
        (self.encode)(image, Size::new(area.width, area.height))
    }
}

#[cfg(test)]
mod tests;
