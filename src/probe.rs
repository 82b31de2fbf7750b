//! Probes of a generator with the digit judge, computed by the trainer when the dashboard asks:
//! a strip morphing between two noise vectors (and two digits), the judge's reading of each
//! shown digit, and each shown digit's nearest training digit in the judge's feature space,
//! with the distance real test digits keep from the training digits as the yardstick for
//! memorisation.

use crate::data::{self, DIGIT_PIXELS, DigitSet, Split};
use crate::files::image::to_grey;
use crate::judge::{CLASSES, Judge, JudgeError};
use crate::protocol::{MorphStrip, NearestReport, Reading};
use crate::train::gan::{DeviceError, Gan};
use crate::train::noise::{NoiseKind, NoiseStream};

/// Digits in a row of the morph strip.
pub const MORPH_STEPS: usize = 8;
/// The digits a conditional strip morphs between.
pub const MORPH_DIGITS: (u8, u8) = (3, 8);
/// Training digits the nearest-neighbour search looks through (the first of the run's set).
pub const SEARCHED_DIGITS: usize = 10_000;
/// Test digits whose distances to the training digits set the memorisation yardstick.
pub const YARDSTICK_DIGITS: usize = 1_000;

#[derive(Debug, thiserror::Error)]
pub enum ProbeError {
    #[error(transparent)]
    Judge(#[from] JudgeError),
    #[error(transparent)]
    Generator(#[from] DeviceError),
    #[error(transparent)]
    Data(#[from] crate::data::DataError),
}

/// The morph strip of `gan`: from noise vector A to B (drawn from the run's probe stream, so the
/// strip shows the same path as training goes on), and for conditional presets a second row
/// from digit `MORPH_DIGITS.0` to `.1` at noise A.
pub fn morph(gan: &dyn Gan, seed: u64) -> Result<MorphStrip, ProbeError> {
    let latent = gan.latent_dim();
    let mut stream = NoiseStream::new(seed, NoiseKind::Probe);
    let (a, b) = (stream.draw(latent), stream.draw(latent));
    let mix: Vec<f32> = (0..MORPH_STEPS)
        .map(|i| i as f32 / (MORPH_STEPS - 1) as f32)
        .collect();
    let mut z = Vec::with_capacity(MORPH_STEPS * latent);
    for &t in &mix {
        z.extend(a.iter().zip(&b).map(|(a, b)| (1.0 - t) * a + t * b));
    }
    let conditional = gan.is_conditional();
    let labels = conditional.then(|| vec![MORPH_DIGITS.0; MORPH_STEPS]);
    let mut images = gan.generate(&z, labels.as_deref(), MORPH_STEPS)?;
    if conditional {
        let same: Vec<f32> = a
            .iter()
            .copied()
            .cycle()
            .take(MORPH_STEPS * latent)
            .collect();
        images.extend(gan.generate_blended(&same, MORPH_DIGITS, &mix)?);
    }
    Ok(MorphStrip {
        width: data::DIGIT_COLS,
        height: data::DIGIT_ROWS,
        steps: MORPH_STEPS,
        pixels: to_grey(&images),
        digits: conditional.then_some(MORPH_DIGITS),
    })
}

/// The judge, and (once asked for) the training digits' features to search.
pub struct Prober {
    judge: Judge,
    search: Option<Search>,
}

struct Search {
    /// `count` x features rows.
    features: Vec<f32>,
    width: usize,
    pixels: Vec<u8>,
    test_median: f32,
}

impl Prober {
    pub fn new() -> Result<Prober, ProbeError> {
        Ok(Prober {
            judge: Judge::builtin()?,
            search: None,
        })
    }

    /// The judge's top digit and its probability for each of `images` (pixels in [-1, 1]).
    pub fn readings(&self, images: &[f32]) -> Result<Vec<Reading>, ProbeError> {
        let classified = self.judge.classify(images)?;
        Ok(classified
            .probabilities
            .chunks_exact(CLASSES)
            .map(|p| {
                let (digit, confidence) =
                    p.iter()
                        .copied()
                        .enumerate()
                        .fold((0, f32::NEG_INFINITY), |best, (i, v)| {
                            if v > best.1 { (i, v) } else { best }
                        });
                Reading {
                    digit: digit as u8,
                    confidence,
                }
            })
            .collect())
    }

    /// Each of `images`' nearest digit among the first `SEARCHED_DIGITS` of `train`, in the
    /// judge's feature space. The first call measures the training digits' features and the
    /// test digits' yardstick (a few seconds).
    pub fn nearest(
        &mut self,
        images: &[f32],
        train: &DigitSet,
    ) -> Result<NearestReport, ProbeError> {
        let search = match self.search.take() {
            Some(search) => search,
            None => Search::new(&self.judge, train)?,
        };
        let queries = self.judge.classify(images)?.features;
        let (index, distances) = nearest_rows(&queries, &search.features, search.width);
        let mut pixels = Vec::with_capacity(index.len() * DIGIT_PIXELS);
        for &i in &index {
            pixels.extend_from_slice(&search.pixels[i * DIGIT_PIXELS..(i + 1) * DIGIT_PIXELS]);
        }
        let report = NearestReport {
            width: data::DIGIT_COLS,
            height: data::DIGIT_ROWS,
            pixels,
            generated_median: median(&distances),
            distances,
            test_median: search.test_median,
            searched: search.features.len() / search.width.max(1),
        };
        self.search = Some(search);
        Ok(report)
    }
}

impl Search {
    fn new(judge: &Judge, train: &DigitSet) -> Result<Search, ProbeError> {
        let count = train.len().min(SEARCHED_DIGITS);
        let indices: Vec<u32> = (0..count as u32).collect();
        let mut images = Vec::new();
        data::fill_batch(train, &indices, &mut images)?;
        let features = judge.classify(&images)?.features;
        let width = features.len() / count.max(1);
        let test = data::load(None, Split::Test)?.take(YARDSTICK_DIGITS);
        let indices: Vec<u32> = (0..test.len() as u32).collect();
        let mut test_images = Vec::new();
        data::fill_batch(&test, &indices, &mut test_images)?;
        let test_features = judge.classify(&test_images)?.features;
        let (_, test_distances) = nearest_rows(&test_features, &features, width);
        Ok(Search {
            pixels: to_grey(&images),
            features,
            width,
            test_median: median(&test_distances),
        })
    }
}

/// For each row of `queries`, the index of the nearest row of `rows` (both `width` wide) and
/// the Euclidean distance to it.
pub fn nearest_rows(queries: &[f32], rows: &[f32], width: usize) -> (Vec<usize>, Vec<f32>) {
    let width = width.max(1);
    let mut index = Vec::new();
    let mut distances = Vec::new();
    for q in queries.chunks_exact(width) {
        let mut best = (0, f32::INFINITY);
        for (i, r) in rows.chunks_exact(width).enumerate() {
            let d: f32 = q.iter().zip(r).map(|(a, b)| (a - b) * (a - b)).sum();
            if d < best.1 {
                best = (i, d);
            }
        }
        index.push(best.0);
        distances.push(best.1.sqrt());
    }
    (index, distances)
}

/// The median of `values` (the mean of the middle two for an even count); 0 for none.
pub fn median(values: &[f32]) -> f32 {
    let mut sorted = values.to_vec();
    sorted.sort_by(f32::total_cmp);
    match sorted.len() {
        0 => 0.0,
        n if n % 2 == 1 => sorted[n / 2],
        n => 0.5 * (sorted[n / 2 - 1] + sorted[n / 2]),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn nearest_rows_finds_the_closest_row_and_its_distance() {
        let rows = [0.0, 0.0, 3.0, 4.0, 10.0, 10.0];
        let (index, d) = nearest_rows(&[2.9, 4.1, 0.0, 1.0], &rows, 2);
        assert_eq!(index, vec![1, 0]);
        assert!((d[0] - (0.01f32 + 0.01).sqrt()).abs() < 1e-6);
        assert!((d[1] - 1.0).abs() < 1e-6);
    }

    #[test]
    fn median_of_odd_even_and_none() {
        assert_eq!(median(&[3.0, 1.0, 2.0]), 2.0);
        assert_eq!(median(&[4.0, 1.0, 2.0, 3.0]), 2.5);
        assert_eq!(median(&[]), 0.0);
    }

    #[test]
    fn a_training_digit_is_its_own_nearest_and_test_digits_sit_further() {
        let train = data::load(None, Split::Train).unwrap().take(500);
        let mut prober = Prober::new().unwrap();
        let indices: Vec<u32> = (0..4).collect();
        let mut images = Vec::new();
        data::fill_batch(&train, &indices, &mut images).unwrap();
        let report = prober.nearest(&images, &train).unwrap();
        assert_eq!(report.searched, 500);
        assert!(report.distances.iter().all(|&d| d < 1e-3), "{report:?}");
        assert_eq!(&report.pixels[..], &to_grey(&images)[..]);
        // Copies of training digits are flagged; the yardstick is a real distance.
        assert!(report.test_median > 0.1 && report.memorising());
        let readings = prober.readings(&images).unwrap();
        let labels: Vec<u8> = readings.iter().map(|r| r.digit).collect();
        assert_eq!(labels, train.labels[..4].to_vec());
        assert!(
            readings
                .iter()
                .all(|r| r.confidence > 0.5 && r.confidence <= 1.0)
        );
    }

    #[test]
    fn a_conditional_strip_has_two_rows_ending_in_the_two_digits() {
        let gan = crate::train::cgan::new(1, 4e-4);
        let strip = morph(&gan, 1).unwrap();
        assert_eq!(strip.digits, Some(MORPH_DIGITS));
        assert_eq!(strip.pixels.len(), 2 * MORPH_STEPS * DIGIT_PIXELS);
        // The second row's last digit is the generator's plain `8` for noise A.
        let latent = gan.latent_dim();
        let a = NoiseStream::new(1, NoiseKind::Probe).draw(latent);
        let eight = to_grey(&gan.generate(&a, Some(&[MORPH_DIGITS.1]), 1).unwrap());
        assert_eq!(
            &strip.pixels[(2 * MORPH_STEPS - 1) * DIGIT_PIXELS..],
            &eight[..]
        );
        let unconditional = crate::train::dcgan::Dcgan::new(1, 2e-4);
        let strip = morph(&unconditional, 1).unwrap();
        assert_eq!(
            (strip.digits, strip.pixels.len()),
            (None, MORPH_STEPS * DIGIT_PIXELS)
        );
    }
}
