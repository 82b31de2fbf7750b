//! Two more ways to compare generated and real digits in the judge's feature space: the kernel
//! distance KID (Bińkowski et al. 2018: the unbiased squared MMD under the cubic polynomial
//! kernel, its mean and spread over random subsets) and precision and recall over k-nearest-
//! neighbour manifolds (Kynkäänniemi et al. 2019), plus each class's spread.
//!
//! Dot products come in blocks from the engine's matrix product, so memory stays at a block of
//! rows against the other set however many digits are compared.

use rand::SeedableRng;
use rand::seq::index;

use crate::nn::kernels;

/// Neighbours that set the radius of each point's ball (the paper's k).
pub const KNN_K: usize = 3;
/// Random subsets KID is averaged over, and the most digits in one.
pub const KID_SUBSETS: usize = 10;
pub const KID_SUBSET_SIZE: usize = 1000;

/// Rows of one set taken at a time against all of the other.
const BLOCK: usize = 256;

/// Vectors of `dim` values, one after another.
#[derive(Debug, Clone, Copy)]
pub struct Rows<'a> {
    pub values: &'a [f32],
    pub dim: usize,
}

impl<'a> Rows<'a> {
    /// `None` unless `values` holds whole rows of a non-zero `dim`.
    pub fn new(values: &'a [f32], dim: usize) -> Option<Rows<'a>> {
        (dim > 0 && values.len().is_multiple_of(dim)).then_some(Rows { values, dim })
    }

    pub fn count(&self) -> usize {
        self.values.len() / self.dim
    }

    fn row(&self, i: usize) -> &'a [f32] {
        &self.values[i * self.dim..(i + 1) * self.dim]
    }

    fn squared_norms(&self) -> Vec<f32> {
        self.values
            .chunks_exact(self.dim)
            .map(|r| r.iter().map(|v| v * v).sum())
            .collect()
    }
}

/// `out (na x nb) = a · bᵀ`: every dot product of a row of `a` with a row of `b`.
fn dots(a: &[f32], b: &[f32], dim: usize, out: &mut Vec<f32>) {
    let (na, nb) = (a.len() / dim, b.len() / dim);
    out.clear();
    out.resize(na * nb, 0.0);
    kernels::forward(a, b, out, na, dim, nb);
}

/// Squared Euclidean distances from block rows to every row of `to`, row after row.
fn squared_distances(
    block: &[f32],
    block_norms: &[f32],
    to: &Rows,
    to_norms: &[f32],
    out: &mut Vec<f32>,
) {
    dots(block, to.values, to.dim, out);
    let n = to_norms.len();
    for (row, &bn) in out.chunks_exact_mut(n).zip(block_norms) {
        for (d, &tn) in row.iter_mut().zip(to_norms) {
            *d = (bn + tn - 2.0 * *d).max(0.0);
        }
    }
}

/// For each row, the squared distance to its `k`-th nearest other row (infinite when there are
/// not `k` others).
pub fn knn_radii(rows: &Rows, k: usize) -> Vec<f32> {
    let n = rows.count();
    let norms = rows.squared_norms();
    let mut radii = Vec::with_capacity(n);
    let mut d = Vec::new();
    let mut nearest = Vec::with_capacity(k + 1);
    for start in (0..n).step_by(BLOCK) {
        let end = (start + BLOCK).min(n);
        let block = &rows.values[start * rows.dim..end * rows.dim];
        squared_distances(block, &norms[start..end], rows, &norms, &mut d);
        for (offset, row) in d.chunks_exact(n.max(1)).enumerate() {
            let me = start + offset;
            // The k smallest distances to others, kept sorted.
            nearest.clear();
            for (j, &dist) in row.iter().enumerate() {
                if j == me || (nearest.len() == k && dist >= nearest[k - 1]) {
                    continue;
                }
                let at = nearest.partition_point(|&x| x <= dist);
                nearest.insert(at, dist);
                nearest.truncate(k);
            }
            radii.push(if k > 0 && nearest.len() == k {
                nearest[k - 1]
            } else {
                f32::INFINITY
            });
        }
    }
    radii
}

/// Share of `points` inside at least one ball around a row of `centres` with the squared
/// radius `radii` gives it.
pub fn share_inside(points: &Rows, centres: &Rows, radii: &[f32]) -> f64 {
    let n = points.count();
    if n == 0 {
        return 0.0;
    }
    let (point_norms, centre_norms) = (points.squared_norms(), centres.squared_norms());
    let mut d = Vec::new();
    let mut inside = 0usize;
    for start in (0..n).step_by(BLOCK) {
        let end = (start + BLOCK).min(n);
        let block = &points.values[start * points.dim..end * points.dim];
        squared_distances(
            block,
            &point_norms[start..end],
            centres,
            &centre_norms,
            &mut d,
        );
        inside += d
            .chunks_exact(centre_norms.len().max(1))
            .filter(|row| row.iter().zip(radii).any(|(dist, r)| dist <= r))
            .count();
    }
    inside as f64 / n as f64
}

/// How much of the generated digits lies on the real digits' manifold, and the other way round.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct PrecisionRecall {
    /// Share of generated digits inside the real digits' k-NN manifold: how realistic they are.
    pub precision: f64,
    /// Share of real digits inside the generated digits' manifold: how much of the variety of
    /// real digits the generator covers.
    pub recall: f64,
}

/// Precision and recall of `generated` against `real` with `k` neighbours.
pub fn precision_recall(real: &Rows, generated: &Rows, k: usize) -> PrecisionRecall {
    PrecisionRecall {
        precision: share_inside(generated, real, &knn_radii(real, k)),
        recall: share_inside(real, generated, &knn_radii(generated, k)),
    }
}

/// A KID: the mean of the subsets' unbiased squared MMDs and their standard deviation.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Kid {
    pub mean: f64,
    pub std: f64,
}

/// The cubic polynomial kernel (x·y / dim + 1)³ of a dot product.
fn kernel(dot: f32, dim: usize) -> f64 {
    (f64::from(dot) / dim as f64 + 1.0).powi(3)
}

/// The unbiased squared MMD of two equal-sized sets under the cubic kernel.
fn mmd2_unbiased(x: &[f32], y: &[f32], dim: usize, scratch: &mut Vec<f32>) -> f64 {
    let m = x.len() / dim;
    let m_f = m as f64;
    let within = |set: &[f32], scratch: &mut Vec<f32>| {
        dots(set, set, dim, scratch);
        let all: f64 = scratch.iter().map(|&d| kernel(d, dim)).sum();
        let diagonal: f64 = (0..m).map(|i| kernel(scratch[i * m + i], dim)).sum();
        (all - diagonal) / (m_f * (m_f - 1.0))
    };
    let xx = within(x, scratch);
    let yy = within(y, scratch);
    dots(x, y, dim, scratch);
    let xy: f64 = scratch.iter().map(|&d| kernel(d, dim)).sum::<f64>() / (m_f * m_f);
    xx + yy - 2.0 * xy
}

/// KID of `a` against `b` over `subsets` random subsets of `size` rows of each (fewer when a set
/// is smaller), drawn reproducibly from `seed`. `None` when a set has fewer than two rows.
pub fn kid(a: &Rows, b: &Rows, subsets: usize, size: usize, seed: u64) -> Option<Kid> {
    let m = size.min(a.count()).min(b.count());
    if m < 2 || subsets == 0 || a.dim != b.dim {
        return None;
    }
    let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(seed);
    let (mut xs, mut ys, mut scratch) = (Vec::new(), Vec::new(), Vec::new());
    let mut values = Vec::with_capacity(subsets);
    for _ in 0..subsets {
        for (set, out) in [(a, &mut xs), (b, &mut ys)] {
            out.clear();
            for i in index::sample(&mut rng, set.count(), m) {
                out.extend_from_slice(set.row(i));
            }
        }
        values.push(mmd2_unbiased(&xs, &ys, a.dim, &mut scratch));
    }
    let n = values.len() as f64;
    let mean = values.iter().sum::<f64>() / n;
    let var = values.iter().map(|v| (v - mean).powi(2)).sum::<f64>() / n;
    Some(Kid {
        mean,
        std: var.sqrt(),
    })
}

/// The mean squared distance of rows to their mean (the trace of their covariance, times
/// (n-1)/n): how widely a set spreads. `None` for fewer than two rows.
pub fn spread(rows: &[&[f32]]) -> Option<f64> {
    let n = rows.len();
    let dim = rows.first()?.len();
    if n < 2 {
        return None;
    }
    let mut mean = vec![0.0f64; dim];
    for r in rows {
        for (m, &v) in mean.iter_mut().zip(r.iter()) {
            *m += f64::from(v) / n as f64;
        }
    }
    let total: f64 = rows
        .iter()
        .map(|r| {
            r.iter()
                .zip(&mean)
                .map(|(&v, m)| (f64::from(v) - m).powi(2))
                .sum::<f64>()
        })
        .sum();
    Some(total / n as f64)
}

#[cfg(test)]
mod tests {
    use super::*;
    use rand::Rng;

    /// `n` points of `dim` values, uniform in [lo, hi).
    fn cloud(n: usize, dim: usize, lo: f32, hi: f32, seed: u64) -> Vec<f32> {
        let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(seed);
        (0..n * dim).map(|_| rng.gen_range(lo..hi)).collect()
    }

    #[test]
    fn the_kth_neighbour_radius_of_points_on_a_line() {
        // Points at 0, 1, 3, 6 on one axis of a 2-d space.
        let values = [0.0, 0.0, 1.0, 0.0, 3.0, 0.0, 6.0, 0.0];
        let rows = Rows::new(&values, 2).unwrap();
        assert_eq!(knn_radii(&rows, 1), vec![1.0, 1.0, 4.0, 9.0]);
        assert_eq!(knn_radii(&rows, 2), vec![9.0, 4.0, 9.0, 25.0]);
        assert!(knn_radii(&rows, 4).iter().all(|r| r.is_infinite()));
    }

    #[test]
    fn identical_sets_have_full_precision_and_recall_and_a_kid_near_zero() {
        let values = cloud(300, 16, -1.0, 1.0, 1);
        let a = Rows::new(&values, 16).unwrap();
        let pr = precision_recall(&a, &a, KNN_K);
        assert_eq!((pr.precision, pr.recall), (1.0, 1.0));
        let k = kid(&a, &a, 5, 200, 7).unwrap();
        // Two draws from one set: unbiased, so near zero, of either sign.
        assert!(k.mean.abs() < 0.01, "{k:?}");
        assert!(k.std >= 0.0 && k.std < 0.01, "{k:?}");
    }

    #[test]
    fn disjoint_sets_have_no_precision_or_recall_and_a_large_kid() {
        let near = cloud(200, 8, 0.0, 1.0, 2);
        let far = cloud(200, 8, 50.0, 51.0, 3);
        let (a, b) = (Rows::new(&near, 8).unwrap(), Rows::new(&far, 8).unwrap());
        let pr = precision_recall(&a, &b, KNN_K);
        assert_eq!((pr.precision, pr.recall), (0.0, 0.0));
        let k = kid(&a, &b, 5, 100, 1).unwrap();
        assert!(k.mean > 100.0, "{k:?}");
    }

    #[test]
    fn a_generator_stuck_in_one_corner_is_precise_but_recalls_little() {
        let real = cloud(400, 4, 0.0, 1.0, 4);
        // Generated points all inside the real cloud's first sixteenth.
        let corner = cloud(400, 4, 0.0, 0.5, 5);
        let (r, g) = (Rows::new(&real, 4).unwrap(), Rows::new(&corner, 4).unwrap());
        let pr = precision_recall(&r, &g, KNN_K);
        assert!(pr.precision > 0.9, "{pr:?}");
        assert!(pr.recall < 0.4, "{pr:?}");
    }

    #[test]
    fn kid_matches_the_formula_on_a_tiny_case() {
        // Two points each in 1-d: x = {0, 1}, y = {1, 2}; k(a, b) = (ab + 1)³.
        let (x, y) = ([0.0f32, 1.0], [1.0f32, 2.0]);
        let k = |a: f64, b: f64| (a * b + 1.0).powi(3);
        let want = (2.0 * k(0.0, 1.0)) / 2.0 + (2.0 * k(1.0, 2.0)) / 2.0
            - 2.0 * (k(0.0, 1.0) + k(0.0, 2.0) + k(1.0, 1.0) + k(1.0, 2.0)) / 4.0;
        let (a, b) = (Rows::new(&x, 1).unwrap(), Rows::new(&y, 1).unwrap());
        let got = kid(&a, &b, 3, 2, 0).unwrap();
        assert!((got.mean - want).abs() < 1e-9, "{got:?} vs {want}");
        assert_eq!(got.std, 0.0);
        assert!(kid(&Rows::new(&x[..1], 1).unwrap(), &b, 3, 2, 0).is_none());
    }

    #[test]
    fn spread_is_the_mean_squared_distance_to_the_mean() {
        let rows: [&[f32]; 3] = [&[0.0, 0.0], &[2.0, 0.0], &[1.0, 3.0]];
        // Mean (1, 1): squared distances 2, 2, 4.
        assert!((spread(&rows).unwrap() - 8.0 / 3.0).abs() < 1e-12);
        assert_eq!(spread(&rows[..1]), None);
    }
}
