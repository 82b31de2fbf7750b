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
    fn square_columns_rounds_up() {
        assert_eq!(square_columns(64), 8);
        assert_eq!(square_columns(10), 4);
        assert_eq!(square_columns(0), 1);
    }
}
