//! Binary cross-entropy with logits as a custom op: several groups of rows, each against its own
//! constant target, in one pass, on the tape.

use dfdx::prelude::*;
use dfdx::tensor::Tape;

use super::kernels;
use super::ops;
use super::profile::{self, OpKind, Pass};

/// A loss: one number on a tape.
pub type Scalar<T> = Tensor<Rank0, f32, Cpu, T>;

/// One group of consecutive rows and the target its logits are taught.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Target {
    pub rows: usize,
    pub value: f32,
}

/// What `bce_with_logits` measured besides the loss tensor.
#[derive(Debug, Clone, PartialEq)]
pub struct BceParts {
    /// Each group's mean loss, in order.
    pub means: Vec<f32>,
    /// The logits, as read.
    pub logits: Vec<f32>,
}

/// The sum over `groups` of each group's mean binary cross-entropy of its logits against its
/// target, PyTorch's stable `max(x, 0) - x t + log(1 + exp(-|x|))` (so for a real and a fake
/// group this is PyTorch's `BCE(D(x), 1) + BCE(D(G(z)), 0)`), as a scalar on `logits`' tape.
/// The groups must cover the rows exactly.
pub fn bce_with_logits<T: Tape<f32, Cpu>>(
    logits: Tensor<(usize, Const<1>), f32, Cpu, T>,
    groups: &[Target],
) -> Result<(Scalar<T>, BceParts), CpuError> {
    profile::timed(OpKind::Loss, Pass::Forward, || {
        let (values, logits, mut tape) = ops::take_input(logits)?;
        if groups.iter().map(|g| g.rows).sum::<usize>() != values.len() {
            return Err(CpuError::WrongNumElements);
        }
        let mut grad = vec![0.0f32; values.len()];
        let mut means = Vec::with_capacity(groups.len());
        let mut start = 0;
        for g in groups {
            let end = start + g.rows;
            let scale = 1.0 / g.rows.max(1) as f32;
            means.push(kernels::bce_with_logits(
                &values[start..end],
                g.value,
                &mut grad[start..end],
                scale,
            ));
            start = end;
        }
        let total: f32 = means.iter().sum();
        let loss = logits.device().try_tensor_from_vec(vec![total], ())?;
        if T::OWNS_TAPE {
            let (logits_id, loss_id) = (logits.ghost(), loss.ghost());
            tape.add_backward_op(move |grads| {
                profile::timed(OpKind::Loss, Pass::Backward, || {
                    let upstream = grads.get_or_alloc_mut(&loss_id)?[0];
                    let dl = grads.get_or_alloc_mut(&logits_id)?;
                    for (d, g) in dl.iter_mut().zip(&grad) {
                        *d += upstream * g;
                    }
                    Ok(())
                })
            });
        }
        let parts = BceParts {
            means,
            logits: values,
        };
        Ok((loss.put_tape(tape), parts))
    })
}

/// The mean of sigmoid over `logits`, summed in f64: the mean probability D gives.
pub fn mean_sigmoid(logits: &[f32]) -> f32 {
    let sum: f64 = logits.iter().map(|&l| kernels::sigmoid(l) as f64).sum();
    (sum / logits.len().max(1) as f64) as f32
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn matches_dfdx_bce_on_two_groups() {
        let dev: Cpu = Cpu::seed_from_u64(4);
        let x: Tensor<(usize, Const<1>), f32, Cpu> = dev.sample_normal_like(&(7, Const));
        let groups = [
            Target {
                rows: 3,
                value: 0.9,
            },
            Target {
                rows: 4,
                value: 0.0,
            },
        ];
        let (ours, parts) = bce_with_logits(x.clone().leaky_traced(), &groups).unwrap();
        let ours_value = ours.array();
        let g_ours = ours.backward();
        // dfdx: the same as two means over a masked target, summed.
        let v = x.as_vec();
        let targets: Vec<f32> = (0..7).map(|i| if i < 3 { 0.9 } else { 0.0 }).collect();
        let weights: Vec<f32> = (0..7)
            .map(|i| if i < 3 { 7.0 / 3.0 } else { 7.0 / 4.0 })
            .collect();
        let t = dev.tensor_from_vec(targets, (7, Const::<1>));
        let w = dev.tensor_from_vec(weights, (7, Const::<1>));
        let xt = x.clone().leaky_traced();
        let per_row = (xt.with_empty_tape().relu() - xt.with_empty_tape() * t)
            + (xt.abs().negate().exp() + 1.0).ln();
        let theirs: Tensor<Rank0, f32, Cpu, _> = (per_row * w).mean();
        let theirs_value: f32 = theirs.array();
        assert!((theirs_value - ours_value).abs() < 1e-5);
        assert!((parts.means[0] + parts.means[1] - ours_value).abs() < 1e-6);
        assert_eq!(parts.logits, v);
        let g_theirs = theirs.backward();
        for (a, b) in g_ours
            .get(&x)
            .as_vec()
            .iter()
            .zip(g_theirs.get(&x).as_vec())
        {
            assert!((a - b).abs() < 1e-6, "{a} vs {b}");
        }
    }

    #[test]
    fn groups_must_cover_the_rows() {
        let dev: Cpu = Default::default();
        let x: Tensor<(usize, Const<1>), f32, Cpu> = dev.zeros_like(&(3, Const));
        let one = [Target {
            rows: 2,
            value: 1.0,
        }];
        assert!(bce_with_logits(x, &one).is_err());
    }
}
