//! Sums of squares of long runs of values (gradient norms), in f64 so millions of small squares
//! keep their precision.

/// Lanes summed side by side, so the loop vectorises.
const LANES: usize = 8;

/// The sum of the squares of `values`.
pub fn sum_of_squares(values: &[f32]) -> f64 {
    let mut lanes = [0.0f64; LANES];
    let chunks = values.chunks_exact(LANES);
    let rest = chunks.remainder();
    for chunk in chunks {
        for (lane, &v) in lanes.iter_mut().zip(chunk) {
            *lane += f64::from(v * v);
        }
    }
    let tail: f64 = rest.iter().map(|&v| f64::from(v * v)).sum();
    lanes.iter().sum::<f64>() + tail
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn squares_are_summed_whatever_the_length() {
        assert_eq!(sum_of_squares(&[]), 0.0);
        assert_eq!(sum_of_squares(&[3.0]), 9.0);
        let values: Vec<f32> = (1..=19).map(|v| v as f32).collect();
        // 1² + ... + 19² = 19·20·39/6
        assert_eq!(sum_of_squares(&values), 2470.0);
        assert_eq!(sum_of_squares(&[-2.0; 16]), 64.0);
    }
}
