//! Gaussian statistics of feature vectors and the Fréchet distance between two of them.
//!
//! d² = |μ₁ - μ₂|² + Tr(Σ₁ + Σ₂ - 2 (Σ₁ Σ₂)^½). The product Σ₁ Σ₂ is not symmetric, so its square
//! root is taken through the symmetric matrix Σ₁^½ Σ₂ Σ₁^½, which has the same eigenvalues:
//! Tr (Σ₁ Σ₂)^½ = Σᵢ √λᵢ(Σ₁^½ Σ₂ Σ₁^½). Symmetric eigen decompositions (nalgebra) are stable where
//! the general matrix square root pytorch-fid uses can turn complex on round-off.

use nalgebra::{DMatrix, DVector, SymmetricEigen};

/// Mean and covariance (divided by n - 1, as numpy's `cov`) of a set of vectors.
#[derive(Debug, Clone, PartialEq)]
pub struct GaussianStats {
    pub mean: DVector<f64>,
    pub cov: DMatrix<f64>,
}

impl GaussianStats {
    /// The statistics of `rows`, `dim` values each, one after another. `None` unless there are at
    /// least two whole rows (a covariance needs two).
    pub fn from_rows(rows: &[f32], dim: usize) -> Option<GaussianStats> {
        if dim == 0 || !rows.len().is_multiple_of(dim) {
            return None;
        }
        let n = rows.len() / dim;
        if n < 2 {
            return None;
        }
        // n x dim, row-major input read into nalgebra's column-major storage.
        let x = DMatrix::from_row_iterator(n, dim, rows.iter().map(|&v| f64::from(v)));
        let mean = DVector::from_iterator(dim, x.column_iter().map(|c| c.mean()));
        let mut centred = x;
        for (mut column, m) in centred.column_iter_mut().zip(mean.iter()) {
            column.add_scalar_mut(-m);
        }
        let cov = centred.tr_mul(&centred) / (n as f64 - 1.0);
        Some(GaussianStats { mean, cov })
    }

    pub fn dim(&self) -> usize {
        self.mean.len()
    }
}

/// The square root of a symmetric positive semi-definite matrix. Round-off can leave tiny
/// negative eigenvalues; they are taken as zero.
pub fn psd_sqrt(m: &DMatrix<f64>) -> DMatrix<f64> {
    let eig = SymmetricEigen::new(symmetrised(m));
    let roots = eig.eigenvalues.map(|l| l.max(0.0).sqrt());
    &eig.eigenvectors * DMatrix::from_diagonal(&roots) * eig.eigenvectors.transpose()
}

fn symmetrised(m: &DMatrix<f64>) -> DMatrix<f64> {
    (m + m.transpose()) * 0.5
}

/// One side of a Fréchet distance kept ready for many comparisons: its statistics and the square
/// root of its covariance, which is the costly part and depends on this side alone.
#[derive(Debug, Clone)]
pub struct FrechetReference {
    stats: GaussianStats,
    cov_sqrt: DMatrix<f64>,
    cov_trace: f64,
}

impl FrechetReference {
    pub fn new(stats: GaussianStats) -> FrechetReference {
        let cov_sqrt = psd_sqrt(&stats.cov);
        let cov_trace = stats.cov.trace();
        FrechetReference {
            stats,
            cov_sqrt,
            cov_trace,
        }
    }

    pub fn stats(&self) -> &GaussianStats {
        &self.stats
    }

    /// The squared Fréchet distance from `other` to this reference; `None` if their dimensions
    /// differ.
    pub fn distance(&self, other: &GaussianStats) -> Option<f64> {
        if other.dim() != self.stats.dim() {
            return None;
        }
        let shift = (&self.stats.mean - &other.mean).norm_squared();
        let inner = &self.cov_sqrt * &other.cov * &self.cov_sqrt;
        let eigenvalues = SymmetricEigen::new(symmetrised(&inner)).eigenvalues;
        let cross: f64 = eigenvalues.iter().map(|l| l.max(0.0).sqrt()).sum();
        // Round-off can take a near-zero distance just below zero.
        Some((shift + self.cov_trace + other.cov.trace() - 2.0 * cross).max(0.0))
    }
}

/// The squared Fréchet distance between two Gaussians; `None` if their dimensions differ.
pub fn frechet_distance(a: &GaussianStats, b: &GaussianStats) -> Option<f64> {
    FrechetReference::new(a.clone()).distance(b)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A rotation of R^n (a product of plane rotations), to make test covariances non-diagonal.
    fn rotation(n: usize) -> DMatrix<f64> {
        let mut r = DMatrix::<f64>::identity(n, n);
        for i in 0..n - 1 {
            let angle = 0.3 + 0.7 * i as f64;
            let mut g = DMatrix::<f64>::identity(n, n);
            g[(i, i)] = angle.cos();
            g[(i + 1, i + 1)] = angle.cos();
            g[(i, i + 1)] = -angle.sin();
            g[(i + 1, i)] = angle.sin();
            r = g * r;
        }
        r
    }

    fn gaussian(mean: &[f64], variances: &[f64]) -> GaussianStats {
        let r = rotation(mean.len());
        let d = DMatrix::from_diagonal(&DVector::from_column_slice(variances));
        GaussianStats {
            mean: DVector::from_column_slice(mean),
            cov: &r * d * r.transpose(),
        }
    }

    #[test]
    fn a_gaussian_is_at_distance_zero_from_itself() {
        let g = gaussian(&[1.0, -2.0, 0.5, 3.0], &[4.0, 1.0, 0.25, 0.01]);
        let d = frechet_distance(&g, &g).unwrap();
        assert!(d.abs() < 1e-9, "{d}");
    }

    #[test]
    fn a_shifted_copy_is_at_the_squared_shift() {
        let a = gaussian(&[1.0, -2.0, 0.5, 3.0], &[4.0, 1.0, 0.25, 0.01]);
        let mut b = a.clone();
        b.mean += DVector::from_column_slice(&[3.0, 0.0, -4.0, 0.0]);
        let d = frechet_distance(&a, &b).unwrap();
        assert!((d - 25.0).abs() < 1e-9, "{d}");
    }

    #[test]
    fn commuting_covariances_follow_the_closed_form() {
        // Same eigenvectors: Tr(S1 + S2 - 2 (S1 S2)^½) = Σ (√aᵢ - √bᵢ)².
        let (va, vb) = ([4.0, 1.0, 9.0, 0.0], [1.0, 4.0, 9.0, 2.25]);
        let a = gaussian(&[0.0; 4], &va);
        let b = gaussian(&[0.0; 4], &vb);
        let expected: f64 = va
            .iter()
            .zip(&vb)
            .map(|(x, y): (&f64, &f64)| (x.sqrt() - y.sqrt()).powi(2))
            .sum();
        for d in [
            frechet_distance(&a, &b).unwrap(),
            frechet_distance(&b, &a).unwrap(),
        ] {
            // A zero variance puts a square root at its steepest: round-off of 1e-15 becomes 1e-7.
            assert!((d - expected).abs() < 1e-6, "{d} vs {expected}");
        }
    }

    #[test]
    fn statistics_of_rows_are_mean_and_unbiased_covariance() {
        let rows = [1.0f32, 2.0, 3.0, 6.0, 5.0, 10.0];
        let s = GaussianStats::from_rows(&rows, 2).unwrap();
        assert_eq!(s.mean.as_slice(), &[3.0, 6.0]);
        // Deviations (-2,-4), (0,0), (2,4): sums of products 8, 16, 32 over n - 1 = 2.
        assert_eq!(s.cov, DMatrix::from_row_slice(2, 2, &[4.0, 8.0, 8.0, 16.0]));
        assert!(GaussianStats::from_rows(&rows[..2], 2).is_none());
        assert!(GaussianStats::from_rows(&rows[..5], 2).is_none());
    }

    #[test]
    fn psd_sqrt_squares_back() {
        let g = gaussian(&[0.0; 5], &[3.0, 2.0, 1.0, 0.5, 0.0]);
        let r = psd_sqrt(&g.cov);
        assert!((&r * &r - &g.cov).abs().max() < 1e-12);
    }

    #[test]
    fn mismatched_dimensions_have_no_distance() {
        let a = gaussian(&[0.0; 3], &[1.0; 3]);
        let b = gaussian(&[0.0; 4], &[1.0; 4]);
        assert_eq!(frechet_distance(&a, &b), None);
    }
}
