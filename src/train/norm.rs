//! Batch normalisation over channels-last rows (PyTorch's `BatchNorm1d`/`BatchNorm2d`: statistics
//! per channel over every row of the batch), fused with the ReLU that follows it in a generator.

use super::param::{Layer, Param};

/// PyTorch's defaults.
const EPS: f32 = 1e-5;
const MOMENTUM: f32 = 0.1;

/// The activation that follows the normalisation, fused into its passes.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Act {
    Identity,
    Relu,
    /// LeakyReLU with this slope for negative inputs.
    Leaky(f32),
}

impl Act {
    fn apply(self, y: f32) -> f32 {
        match self {
            Act::Identity => y,
            Act::Relu => y.max(0.0),
            Act::Leaky(slope) => {
                if y < 0.0 {
                    y * slope
                } else {
                    y
                }
            }
        }
    }

    /// The derivative, read from the activation's output (whose sign is its input's).
    fn slope_at(self, out: f32) -> f32 {
        match self {
            Act::Identity => 1.0,
            Act::Relu => {
                if out > 0.0 {
                    1.0
                } else {
                    0.0
                }
            }
            Act::Leaky(slope) => {
                if out > 0.0 {
                    1.0
                } else {
                    slope
                }
            }
        }
    }
}

/// Batch norm of `C` channels with learned scale (`weight`) and shift (`bias`) and running
/// statistics for evaluation, as PyTorch names them.
#[derive(Debug, Clone)]
pub struct BatchNorm<const C: usize> {
    pub weight: Param,
    pub bias: Param,
    pub running_mean: Param,
    pub running_var: Param,
    /// The last training pass's normalised inputs and, per group, `1/sqrt(var + eps)`, for its
    /// backward pass.
    xhat: Vec<f32>,
    inv_std: Vec<f32>,
}

impl<const C: usize> BatchNorm<C> {
    /// Scale 1, shift 0, running mean 0 and variance 1 (PyTorch's initial values).
    pub fn new() -> Self {
        BatchNorm {
            weight: Param::new(&[C], vec![1.0; C]),
            bias: Param::new(&[C], vec![0.0; C]),
            running_mean: Param::buffer(&[C], vec![0.0; C]),
            running_var: Param::buffer(&[C], vec![1.0; C]),
            xhat: Vec::new(),
            inv_std: Vec::new(),
        }
    }

    /// Training mode, in place: `x` (rows of `C`) is `groups` batches one after the other, each
    /// normalised with its own mean and (biased) variance, as separate calls of a PyTorch layer
    /// would; then scaled, shifted and passed through `act`. The running statistics move a tenth
    /// of the way to each group's (unbiased variance, as PyTorch does), group by group.
    pub fn forward_train(&mut self, x: &mut [f32], groups: usize, act: Act) {
        let groups = groups.max(1);
        let rows = x.len() / C.max(1);
        if rows == 0 || !rows.is_multiple_of(groups) {
            return;
        }
        self.xhat.resize(x.len(), 0.0);
        self.inv_std.resize(groups * C, 0.0);
        let per = rows / groups;
        let n = per as f64;
        for (gi, (xg, hg)) in x
            .chunks_exact_mut(per * C)
            .zip(self.xhat.chunks_exact_mut(per * C))
            .enumerate()
        {
            let mut mean = vec![0.0f64; C];
            for row in xg.chunks_exact(C) {
                for (m, &v) in mean.iter_mut().zip(row) {
                    *m += v as f64;
                }
            }
            mean.iter_mut().for_each(|m| *m /= n);
            let mut var = vec![0.0f64; C];
            for row in xg.chunks_exact(C) {
                for ((s, &v), m) in var.iter_mut().zip(row).zip(&mean) {
                    let d = v as f64 - m;
                    *s += d * d;
                }
            }
            let inv_std = &mut self.inv_std[gi * C..][..C];
            for c in 0..C {
                let biased = var[c] / n;
                inv_std[c] = (1.0 / (biased + EPS as f64).sqrt()) as f32;
                let unbiased = if per > 1 { var[c] / (n - 1.0) } else { biased };
                let rm = &mut self.running_mean.value[c];
                *rm = (1.0 - MOMENTUM) * *rm + MOMENTUM * mean[c] as f32;
                let rv = &mut self.running_var.value[c];
                *rv = (1.0 - MOMENTUM) * *rv + MOMENTUM * unbiased as f32;
            }
            let mean: Vec<f32> = mean.iter().map(|&m| m as f32).collect();
            let (g, b) = (&self.weight.value, &self.bias.value);
            for (row, xh) in xg.chunks_exact_mut(C).zip(hg.chunks_exact_mut(C)) {
                for c in 0..C {
                    let h = (row[c] - mean[c]) * inv_std[c];
                    xh[c] = h;
                    row[c] = act.apply(g[c] * h + b[c]);
                }
            }
        }
    }

    /// Evaluation mode, in place: normalises with the running statistics.
    pub fn forward_eval(&self, x: &mut [f32], act: Act) {
        let scale: Vec<f32> = (0..C)
            .map(|c| self.weight.value[c] / (self.running_var.value[c] + EPS).sqrt())
            .collect();
        let shift: Vec<f32> = (0..C)
            .map(|c| self.bias.value[c] - self.running_mean.value[c] * scale[c])
            .collect();
        for row in x.chunks_exact_mut(C) {
            for c in 0..C {
                row[c] = act.apply(row[c] * scale[c] + shift[c]);
            }
        }
    }

    /// Backward pass of the last `forward_train`, in place: `dy` (the gradient at its output,
    /// `y` that output) becomes the gradient at its input; sets the gradients of scale and shift.
    pub fn backward(&mut self, dy: &mut [f32], y: &[f32], act: Act) {
        let groups = self.inv_std.len() / C.max(1);
        let rows = dy.len() / C.max(1);
        if rows == 0 || groups == 0 || !rows.is_multiple_of(groups) || dy.len() != self.xhat.len() {
            return;
        }
        if act != Act::Identity {
            for (d, &v) in dy.iter_mut().zip(y) {
                *d *= act.slope_at(v);
            }
        }
        self.weight.grad.iter_mut().for_each(|g| *g = 0.0);
        self.bias.grad.iter_mut().for_each(|g| *g = 0.0);
        let per = rows / groups;
        let n = per as f64;
        for (gi, (dg, hg)) in dy
            .chunks_exact_mut(per * C)
            .zip(self.xhat.chunks_exact(per * C))
            .enumerate()
        {
            let mut sum_dy = vec![0.0f64; C];
            let mut sum_dy_xhat = vec![0.0f64; C];
            for (d, xh) in dg.chunks_exact(C).zip(hg.chunks_exact(C)) {
                for c in 0..C {
                    sum_dy[c] += d[c] as f64;
                    sum_dy_xhat[c] += (d[c] * xh[c]) as f64;
                }
            }
            let inv_std = &self.inv_std[gi * C..][..C];
            let mut k = vec![0.0f32; C];
            let mut mean_dy = vec![0.0f32; C];
            let mut mean_dy_xhat = vec![0.0f32; C];
            for c in 0..C {
                self.weight.grad[c] += sum_dy_xhat[c] as f32;
                self.bias.grad[c] += sum_dy[c] as f32;
                k[c] = self.weight.value[c] * inv_std[c];
                mean_dy[c] = (sum_dy[c] / n) as f32;
                mean_dy_xhat[c] = (sum_dy_xhat[c] / n) as f32;
            }
            for (d, xh) in dg.chunks_exact_mut(C).zip(hg.chunks_exact(C)) {
                for c in 0..C {
                    d[c] = k[c] * (d[c] - mean_dy[c] - xh[c] * mean_dy_xhat[c]);
                }
            }
        }
    }
}

impl<const C: usize> Default for BatchNorm<C> {
    fn default() -> Self {
        Self::new()
    }
}

impl<const C: usize> Layer for BatchNorm<C> {
    fn tensors(&self) -> Vec<(&'static str, &Param)> {
        vec![
            ("weight", &self.weight),
            ("bias", &self.bias),
            ("running_mean", &self.running_mean),
            ("running_var", &self.running_var),
        ]
    }
    fn tensors_mut(&mut self) -> Vec<(&'static str, &mut Param)> {
        vec![
            ("weight", &mut self.weight),
            ("bias", &mut self.bias),
            ("running_mean", &mut self.running_mean),
            ("running_var", &mut self.running_var),
        ]
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Test values in [-2, 2).
    fn values(n: usize, seed: u32) -> Vec<f32> {
        crate::train::testing::values(n, seed)
            .into_iter()
            .map(|v| 2.0 * v)
            .collect()
    }

    #[test]
    fn normalises_each_channel_and_tracks_running_statistics() {
        let mut bn = BatchNorm::<3>::new();
        bn.weight.value = vec![2.0, 1.0, 0.5];
        bn.bias.value = vec![0.0, 1.0, -1.0];
        let x0 = values(40 * 3, 1);
        let mut x = x0.clone();
        bn.forward_train(&mut x, 1, Act::Identity);
        for c in 0..3 {
            let col: Vec<f64> = x.iter().skip(c).step_by(3).map(|&v| v as f64).collect();
            let mean = col.iter().sum::<f64>() / 40.0;
            let var = col.iter().map(|v| (v - mean).powi(2)).sum::<f64>() / 40.0;
            assert!((mean - bn.bias.value[c] as f64).abs() < 1e-5);
            let w = bn.weight.value[c] as f64;
            assert!((var - w * w).abs() < 1e-3 * w * w, "channel {c}: {var}");
            let raw: Vec<f64> = x0.iter().skip(c).step_by(3).map(|&v| v as f64).collect();
            let raw_mean = raw.iter().sum::<f64>() / 40.0;
            let raw_var = raw.iter().map(|v| (v - raw_mean).powi(2)).sum::<f64>() / 39.0;
            assert!((bn.running_mean.value[c] as f64 - 0.1 * raw_mean).abs() < 1e-6);
            assert!((bn.running_var.value[c] as f64 - (0.9 + 0.1 * raw_var)).abs() < 1e-5);
        }
        // Evaluation with statistics equal to the batch's gives the training output.
        let mut eval = bn.clone();
        for c in 0..3 {
            let raw: Vec<f32> = x0.iter().skip(c).step_by(3).copied().collect();
            let m = raw.iter().sum::<f32>() / 40.0;
            eval.running_mean.value[c] = m;
            eval.running_var.value[c] = raw.iter().map(|v| (v - m).powi(2)).sum::<f32>() / 40.0;
        }
        let mut y = x0.clone();
        eval.forward_eval(&mut y, Act::Identity);
        for (a, b) in y.iter().zip(&x) {
            assert!((a - b).abs() < 1e-4);
        }
    }

    #[test]
    fn backward_matches_finite_differences() {
        for (groups, act) in [(1, Act::Relu), (2, Act::Leaky(0.2)), (3, Act::Identity)] {
            let mut bn = BatchNorm::<2>::new();
            bn.weight.value = vec![1.5, 0.7];
            bn.bias.value = vec![0.2, 0.1];
            let x0 = values(6 * 2, 3);
            let r = values(6 * 2, 4);
            // loss = <act(bn(x)), r>
            let loss = |bn: &BatchNorm<2>, x: &[f32]| -> f64 {
                let mut b = bn.clone();
                let mut y = x.to_vec();
                b.forward_train(&mut y, groups, act);
                y.iter()
                    .zip(&r)
                    .map(|(a, b)| (*a as f64) * (*b as f64))
                    .sum()
            };
            let mut y = x0.clone();
            let mut trained = bn.clone();
            trained.forward_train(&mut y, groups, act);
            let mut d = r.clone();
            trained.backward(&mut d, &y, act);
            let h = 1e-3f32;
            for i in 0..x0.len() {
                let (mut up, mut down) = (x0.clone(), x0.clone());
                up[i] += h;
                down[i] -= h;
                let numeric = (loss(&bn, &up) - loss(&bn, &down)) / (2.0 * h as f64);
                assert!(
                    (d[i] as f64 - numeric).abs() < 2e-3,
                    "{groups} groups, {act:?}: x[{i}]: {} vs {numeric}",
                    d[i]
                );
            }
            for c in 0..2 {
                let mut up = bn.clone();
                up.weight.value[c] += h;
                let mut down = bn.clone();
                down.weight.value[c] -= h;
                let numeric = (loss(&up, &x0) - loss(&down, &x0)) / (2.0 * h as f64);
                let g = trained.weight.grad[c] as f64;
                assert!((g - numeric).abs() < 2e-3, "weight {c}: {g} vs {numeric}");
                let mut up = bn.clone();
                up.bias.value[c] += h;
                let mut down = bn.clone();
                down.bias.value[c] -= h;
                let numeric = (loss(&up, &x0) - loss(&down, &x0)) / (2.0 * h as f64);
                let g = trained.bias.grad[c] as f64;
                assert!((g - numeric).abs() < 2e-3, "bias {c}: {g} vs {numeric}");
            }
        }
    }

    #[test]
    fn groups_are_normalised_apart() {
        // Two groups with very different means each come out centred.
        let mut bn = BatchNorm::<1>::new();
        let mut x = vec![10.0, 11.0, 12.0, -5.0, -4.0, -3.0];
        bn.forward_train(&mut x, 2, Act::Identity);
        for g in x.chunks(3) {
            assert!(g.iter().sum::<f32>().abs() < 1e-5, "{x:?}");
        }
        // The running mean took both groups' means in turn: 0.9 * (0.1 * 11) + 0.1 * -4.
        assert!((bn.running_mean.value[0] - (0.99 - 0.4)).abs() < 1e-5);
    }
}
