//! WGAN-GP's gradient penalty for a LeakyReLU MLP critic, exact and as one custom op.
//!
//! dfdx has no gradient of a gradient, but none is needed: for a critic
//! `f(x) = w3 . lrelu(W2 lrelu(W1 x + b1) + b2) + b3` the input gradient is
//! `df/dx = W1^T diag(m1) W2^T diag(m2) w3^T`, the slopes `m` (1 or 0.2) constant almost
//! everywhere, so the penalty `lambda * mean over rows of (|df/dx| - 1)^2` is an ordinary forward
//! graph of the weights, and its weight gradients are products like any layer's. The biases and
//! the points themselves only choose the slopes: their gradients are zero almost everywhere.

use dfdx::prelude::*;
use dfdx::tensor::Tape;

use super::dense::{Dense, Identity, LeakyRelu};
use super::kernels;
use super::ops::{self, put_grad, take_grad};

/// The critic shape the penalty is written for: `I -> H1 -> H2 -> 1`, LeakyReLU 0.2 between.
pub type MlpCritic<const I: usize, const H1: usize, const H2: usize> = (
    Dense<I, H1, LeakyRelu>,
    Dense<H1, H2, LeakyRelu>,
    Dense<H2, 1, Identity>,
);

/// The slope of LeakyReLU at each unit, read from its output's sign.
fn slopes(h: &[f32]) -> Vec<f32> {
    h.iter()
        .map(|&v| if v > 0.0 { 1.0 } else { LeakyRelu::SLOPE })
        .collect()
}

/// Everything the penalty's backward pass reuses from its forward pass.
struct Saved {
    w1: Vec<f32>,
    w2: Vec<f32>,
    m1: Vec<f32>,
    m2: Vec<f32>,
    g2: Vec<f32>,
    g1: Vec<f32>,
    /// `d(penalty)/d(gx)` for an upstream gradient of 1.
    u: Vec<f32>,
}

/// `lambda * mean over the rows of x of (|df/dx| - 1)^2` for `critic` `f`, on `x`'s tape; its
/// backward pass adds the gradients of the critic's three weight matrices.
pub fn gradient_penalty<const I: usize, const H1: usize, const H2: usize, T: Tape<f32, Cpu>>(
    critic: &MlpCritic<I, H1, H2>,
    x: Tensor<(usize, Const<I>), f32, Cpu, T>,
    lambda: f32,
) -> Result<Tensor<Rank0, f32, Cpu, T>, CpuError> {
    let (xv, x, mut tape) = ops::take_input(x)?;
    let batch = x.shape().0;
    let (l1, l2, l3) = critic;
    let (w1, b1) = (ops::read(&l1.weight)?, ops::read(&l1.bias)?);
    let (w2, b2) = (ops::read(&l2.weight)?, ops::read(&l2.bias)?);
    let w3 = ops::read(&l3.weight)?;
    // The forward pass, for the slopes.
    let mut h1 = vec![0.0; batch * H1];
    kernels::forward(&xv, &w1, &mut h1, batch, I, H1);
    kernels::bias_leaky_relu(&mut h1, &b1, LeakyRelu::SLOPE);
    let mut h2 = vec![0.0; batch * H2];
    kernels::forward(&h1, &w2, &mut h2, batch, H1, H2);
    kernels::bias_leaky_relu(&mut h2, &b2, LeakyRelu::SLOPE);
    let (m1, m2) = (slopes(&h1), slopes(&h2));
    // g2 = m2 * w3, g1 = m1 * (g2 W2), gx = g1 W1.
    let g2: Vec<f32> = m2
        .chunks_exact(H2)
        .flat_map(|row| row.iter().zip(&w3).map(|(m, w)| m * w))
        .collect();
    let mut g1 = vec![0.0; batch * H1];
    kernels::input_grad(&g2, &w2, &mut g1, batch, H1, H2);
    g1.iter_mut().zip(&m1).for_each(|(g, m)| *g *= m);
    let mut gx = vec![0.0; batch * I];
    kernels::input_grad(&g1, &w1, &mut gx, batch, I, H1);
    // The penalty, and d(penalty)/d(gx_b) = 2 lambda / B (|gx_b| - 1) gx_b / |gx_b|.
    let mut total = 0.0f64;
    let mut u = vec![0.0f32; batch * I];
    for (gx, u) in gx.chunks_exact(I).zip(u.chunks_exact_mut(I)) {
        let norm = gx.iter().map(|&v| f64::from(v).powi(2)).sum::<f64>().sqrt();
        total += (norm - 1.0) * (norm - 1.0);
        let k = if norm > 0.0 {
            (2.0 * f64::from(lambda) / batch as f64 * (norm - 1.0) / norm) as f32
        } else {
            0.0
        };
        u.iter_mut().zip(gx).for_each(|(u, &g)| *u = k * g);
    }
    let value = (f64::from(lambda) * total / batch.max(1) as f64) as f32;
    let out = x.device().try_tensor_from_vec(vec![value], ())?;
    if T::OWNS_TAPE {
        let saved = Saved {
            w1,
            w2,
            m1,
            m2,
            g2,
            g1,
            u,
        };
        let ids = (l1.weight.ghost(), l2.weight.ghost(), l3.weight.ghost());
        let out_id = out.ghost();
        tape.add_backward_op(move |grads| {
            let upstream = grads.get_or_alloc_mut(&out_id)?[0];
            let Saved {
                w1,
                w2,
                m1,
                m2,
                g2,
                g1,
                mut u,
            } = saved;
            u.iter_mut().for_each(|v| *v *= upstream);
            // gx = g1 W1: dW1 += g1^T u, dg1 = u W1^T.
            let mut dw1: Vec<f32> = take_grad!(grads, ids.0);
            kernels::weight_grad(&g1, &u, &mut dw1, batch, I, H1, true);
            put_grad!(grads, ids.0, dw1);
            let mut dg1 = vec![0.0; batch * H1];
            kernels::forward(&u, &w1, &mut dg1, batch, I, H1);
            // g1 = m1 * (g2 W2): dW2 += g2^T (m1 * dg1), dg2 = (m1 * dg1) W2^T.
            dg1.iter_mut().zip(&m1).for_each(|(d, m)| *d *= m);
            let mut dw2: Vec<f32> = take_grad!(grads, ids.1);
            kernels::weight_grad(&g2, &dg1, &mut dw2, batch, H1, H2, true);
            put_grad!(grads, ids.1, dw2);
            let mut dg2 = vec![0.0; batch * H2];
            kernels::forward(&dg1, &w2, &mut dg2, batch, H1, H2);
            // g2 = m2 * w3: dw3 += sum over the rows of m2 * dg2.
            let dw3 = grads.get_or_alloc_mut(&ids.2)?;
            for (dg, m) in dg2.chunks_exact(H2).zip(m2.chunks_exact(H2)) {
                for ((d, &g), &m) in dw3.iter_mut().zip(dg).zip(m) {
                    *d += g * m;
                }
            }
            Ok(())
        });
    }
    Ok(out.put_tape(tape))
}

#[cfg(test)]
mod tests {
    use super::*;

    type Small = MlpCritic<6, 5, 4>;

    fn points(dev: &Cpu, n: usize) -> Tensor<(usize, Const<6>), f32, Cpu> {
        dev.sample_normal_like(&(n, Const))
    }

    /// The critic's input gradient at each point from dfdx's own backward pass through it.
    #[test]
    fn the_penalty_is_that_of_the_critics_own_input_gradient() {
        let dev = Cpu::seed_from_u64(1);
        let critic = dev.build_module::<Small, f32>();
        let x = points(&dev, 7);
        // Each row's output depends on its row only, so d(sum f)/dx is each row's gradient.
        let grads = critic.forward(x.clone().leaky_traced()).sum().backward();
        let gx = grads.get(&x).as_vec();
        let expect: f64 = gx
            .chunks_exact(6)
            .map(|g| {
                let n = g.iter().map(|&v| f64::from(v).powi(2)).sum::<f64>().sqrt();
                (n - 1.0).powi(2)
            })
            .sum::<f64>()
            * 10.0
            / 7.0;
        let ours: f32 = gradient_penalty(&critic, x, 10.0).unwrap().array();
        assert!(
            (f64::from(ours) - expect).abs() < 1e-4 * expect.max(1.0),
            "{ours} vs {expect}"
        );
    }

    /// Weight gradients against central finite differences of the penalty itself.
    #[test]
    fn weight_gradients_match_finite_differences() {
        let dev = Cpu::seed_from_u64(2);
        let critic = dev.build_module::<Small, f32>();
        let x = points(&dev, 9);
        let penalty = |c: &Small| -> f64 {
            let p: f32 = gradient_penalty(c, x.clone(), 10.0).unwrap().array();
            f64::from(p)
        };
        let grads = gradient_penalty(&critic, x.clone().leaky_traced(), 10.0)
            .unwrap()
            .backward();
        let h = 1e-3f32;
        let checks: [(usize, Vec<f32>); 3] = [
            (0, grads.get(&critic.0.weight).as_vec()),
            (1, grads.get(&critic.1.weight).as_vec()),
            (2, grads.get(&critic.2.weight).as_vec()),
        ];
        for (layer, analytic) in checks {
            for (i, &g) in analytic.iter().enumerate() {
                let nudge = |d: f32| {
                    let mut c = critic.clone();
                    let mut w = match layer {
                        0 => c.0.weight.as_vec(),
                        1 => c.1.weight.as_vec(),
                        _ => c.2.weight.as_vec(),
                    };
                    w[i] += d;
                    match layer {
                        0 => c.0.weight.copy_from(&w),
                        1 => c.1.weight.copy_from(&w),
                        _ => c.2.weight.copy_from(&w),
                    }
                    penalty(&c)
                };
                let numeric = (nudge(h) - nudge(-h)) / (2.0 * f64::from(h));
                assert!(
                    (f64::from(g) - numeric).abs() < 2e-2 * numeric.abs().max(1.0),
                    "layer {layer} weight {i}: {g} vs {numeric}"
                );
            }
        }
        // The biases only choose the slopes: no gradient.
        let mut probe = grads.clone();
        assert!(
            probe
                .get_or_alloc_mut(&critic.0.bias)
                .unwrap()
                .iter()
                .all(|&v| v == 0.0)
        );
    }

    #[test]
    fn a_unit_gradient_costs_nothing() {
        // A critic that passes the first input straight through has |df/dx| = 1 everywhere.
        let dev: Cpu = Default::default();
        let mut c = dev.build_module::<Small, f32>();
        let mut w1 = vec![0.0; 30];
        w1[0] = 1.0;
        c.0.weight.copy_from(&w1);
        c.0.bias.copy_from(&[5.0; 5]);
        let mut w2 = vec![0.0; 20];
        w2[0] = 1.0;
        c.1.weight.copy_from(&w2);
        c.1.bias.copy_from(&[5.0; 4]);
        c.2.weight.copy_from(&[1.0, 0.0, 0.0, 0.0]);
        let x = dev.tensor_from_vec(vec![0.1f32; 18], (3, Const::<6>));
        let p: f32 = gradient_penalty(&c, x, 10.0).unwrap().array();
        assert!(p.abs() < 1e-10, "{p}");
    }
}
