//! Generated digits as pictures: [-1, 1] floats to 8-bit grey, and a PNG grid of many digits.

/// Maps generator output in [-1, 1] to grey levels 0..=255 (NaN becomes 0).
pub fn to_grey(values: &[f32]) -> Vec<u8> {
    values
        .iter()
        .map(|&v| {
            let g = ((v + 1.0) * 127.5).round();
            if g.is_nan() {
                0
            } else {
                g.clamp(0.0, 255.0) as u8
            }
        })
        .collect()
}

/// Gap between digits in a grid, in pixels (torchvision's `make_grid` default).
const PADDING: usize = 2;

/// Lays `pixels` (digits of `width x height`, one after another) out in rows of `columns`,
/// separated by black gaps, as an 8-bit greyscale PNG.
pub fn grid_png(
    pixels: &[u8],
    width: usize,
    height: usize,
    columns: usize,
) -> Result<Vec<u8>, png::EncodingError> {
    let per = (width * height).max(1);
    let count = pixels.len() / per;
    let columns = columns.clamp(1, count.max(1));
    let rows = count.div_ceil(columns).max(1);
    let img_w = columns * (width + PADDING) + PADDING;
    let img_h = rows * (height + PADDING) + PADDING;
    let mut canvas = vec![0u8; img_w * img_h];
    for (i, digit) in pixels.chunks_exact(per).enumerate() {
        let x0 = PADDING + (i % columns) * (width + PADDING);
        let y0 = PADDING + (i / columns) * (height + PADDING);
        for (y, row) in digit.chunks_exact(width.max(1)).enumerate() {
            let start = (y0 + y) * img_w + x0;
            canvas[start..start + row.len()].copy_from_slice(row);
        }
    }
    let mut out = Vec::new();
    let mut encoder = png::Encoder::new(&mut out, img_w as u32, img_h as u32);
    encoder.set_color(png::ColorType::Grayscale);
    encoder.set_depth(png::BitDepth::Eight);
    let mut writer = encoder.write_header()?;
    writer.write_image_data(&canvas)?;
    writer.finish()?;
    Ok(out)
}

/// The most pixels `split_grid_png` decodes: far more than any grid the runs write.
const MAX_GRID_PIXELS: u64 = 16 << 20;

/// Reads a PNG grid as `grid_png` writes it, back into its digits of `width x height` (trailing
/// all-black tiles of a last, partly filled row are dropped). Returns the pixels and the count.
pub fn split_grid_png(
    bytes: &[u8],
    width: usize,
    height: usize,
) -> Result<(Vec<u8>, usize), String> {
    let mut decoder = png::Decoder::new(std::io::Cursor::new(bytes));
    decoder.set_transformations(png::Transformations::EXPAND | png::Transformations::STRIP_16);
    let mut reader = decoder.read_info().map_err(|e| e.to_string())?;
    let (img_w, img_h) = {
        let info = reader.info();
        (info.width as usize, info.height as usize)
    };
    if (img_w as u64) * (img_h as u64) > MAX_GRID_PIXELS {
        return Err(format!(
            "a {img_w}x{img_h} picture is too large for a sample grid"
        ));
    }
    let size = reader
        .output_buffer_size()
        .ok_or_else(|| "the picture is too large".to_string())?;
    let mut buf = vec![0; size];
    let frame = reader.next_frame(&mut buf).map_err(|e| e.to_string())?;
    if frame.color_type != png::ColorType::Grayscale || frame.bit_depth != png::BitDepth::Eight {
        return Err("not an 8-bit greyscale sample grid".to_string());
    }
    let (cell_w, cell_h) = (width + PADDING, height + PADDING);
    let columns = img_w.saturating_sub(PADDING) / cell_w;
    let rows = img_h.saturating_sub(PADDING) / cell_h;
    if columns == 0 || rows == 0 {
        return Err(format!(
            "a {img_w}x{img_h} picture holds no {width}x{height} digit"
        ));
    }
    let mut pixels = Vec::with_capacity(columns * rows * width * height);
    for i in 0..columns * rows {
        let (x0, y0) = (
            PADDING + (i % columns) * cell_w,
            PADDING + (i / columns) * cell_h,
        );
        for y in 0..height {
            let start = (y0 + y) * frame.line_size + x0;
            pixels.extend_from_slice(&buf[start..start + width]);
        }
    }
    let per = width * height;
    let mut count = columns * rows;
    // The last row may end in empty tiles.
    while count > columns * (rows - 1)
        && pixels[(count - 1) * per..count * per]
            .iter()
            .all(|&p| p == 0)
    {
        count -= 1;
    }
    pixels.truncate(count * per);
    Ok((pixels, count))
}

/// Columns for a roughly square grid of `count` digits.
pub fn square_columns(count: usize) -> usize {
    (count as f64).sqrt().ceil().max(1.0) as usize
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn grey_levels_cover_the_range() {
        assert_eq!(
            to_grey(&[-1.0, 0.0, 1.0, -3.0, 2.0, f32::NAN]),
            [0, 128, 255, 0, 255, 0]
        );
    }

    #[test]
    fn grid_decodes_with_the_expected_size_and_pixels() {
        // Three 2x2 digits in two columns: 2 rows.
        let pixels = [10, 20, 30, 40, 50, 60, 70, 80, 90, 100, 110, 120];
        let bytes = grid_png(&pixels, 2, 2, 2).unwrap();
        let decoder = png::Decoder::new(std::io::Cursor::new(bytes));
        let mut reader = decoder.read_info().unwrap();
        let mut buf = vec![0; reader.output_buffer_size().unwrap()];
        let info = reader.next_frame(&mut buf).unwrap();
        assert_eq!((info.width, info.height), (2 * 4 + 2, 2 * 4 + 2));
        let w = info.width as usize;
        assert_eq!(buf[2 * w + 2], 10);
        assert_eq!(buf[3 * w + 3], 40);
        assert_eq!(buf[2 * w + 6], 50);
        assert_eq!(buf[6 * w + 2], 90);
        assert_eq!(buf[0], 0);
    }

    #[test]
    fn a_grid_splits_back_into_its_digits() {
        let pixels: Vec<u8> = (1..=5 * 4).map(|v| v as u8).collect();
        let bytes = grid_png(&pixels, 2, 2, 3).unwrap();
        assert_eq!(split_grid_png(&bytes, 2, 2).unwrap(), (pixels, 5));
        assert!(split_grid_png(b"not a png", 2, 2).is_err());
        assert!(split_grid_png(&bytes, 40, 40).is_err());
    }

    #[test]
    fn square_columns_rounds_up() {
        assert_eq!(square_columns(64), 8);
        assert_eq!(square_columns(10), 4);
        assert_eq!(square_columns(0), 1);
    }
}
