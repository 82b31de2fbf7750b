//! Batch normalisation over the last axis (PyTorch's `BatchNorm1d` over rows of features,
//! `BatchNorm2d` over channels-last images: statistics per channel over every row or pixel of the
//! batch) fused with the activation that follows it, as a dfdx module whose passes are one
//! custom op.
//!
//! A discriminator shown real and fake images in one pass must still normalise each half with
//! its own statistics, as two PyTorch calls would: `GROUPS` says how many batches one training
//! pass holds, one after the other.

use std::marker::PhantomData;

use dfdx::nn::tensor_collection::{ModuleVisitor, TensorCollection, TensorOptions};
use dfdx::prelude::*;
use dfdx::tensor::Tape;
use rand_distr::Normal;

use super::conv::{INIT_STD, Wants};
use super::dense::Activation;
use super::frozen::FrozenModule;
use super::kernels;
use super::ops::{self, put_grad, take_grad};
use super::profile::{self, OpKind, Pass};

/// PyTorch's defaults (`EPS` as an `f32`, as the checkpoints of the first engine were trained and
/// sampled with it, so they still sample the same digits).
const EPS: f32 = 1e-5;
const MOMENTUM: f32 = 0.1;

/// Batch norm of `C` channels then the activation `A`, with learned scale (`weight`, initialised
/// as `Init` says) and shift (`bias`) and running statistics for evaluation, as PyTorch names
/// them. A training pass (`forward_mut`) normalises each of its `GROUPS` equal parts with its own
/// statistics and moves the running statistics; an evaluation pass (`forward`) uses the running
/// statistics. It takes rows of `C` features as well as channels-last images (`ChannelsLast`).
#[derive(Debug, Clone)]
pub struct BatchNorm2d<
    const C: usize,
    A,
    const GROUPS: usize = 1,
    E: Dtype = f32,
    D: Storage<E> = Cpu,
    Init = DcganScale,
> {
    pub weight: Tensor<Rank1<C>, E, D>,
    pub bias: Tensor<Rank1<C>, E, D>,
    pub running_mean: Tensor<Rank1<C>, E, D>,
    pub running_var: Tensor<Rank1<C>, E, D>,
    pub act: PhantomData<(A, Init)>,
}

/// The same layer over rows of `C` features, with PyTorch's initial scale of 1 (the tuned MLP's
/// generator).
pub type BatchNorm1d<const C: usize, A> = BatchNorm2d<C, A, 1, f32, Cpu, UnitScale>;

/// A batch whose last axis holds the `C` channels a batch norm normalises: rows of features
/// `(B, C)` or channels-last images `(B, H, W, C)`.
pub trait ChannelsLast<const C: usize>: Shape {}

impl<B: Dim, const C: usize> ChannelsLast<C> for (B, Const<C>) {}

impl<B: Dim, const H: usize, const W: usize, const C: usize> ChannelsLast<C>
    for (B, Const<H>, Const<W>, Const<C>)
{
}

/// How a batch norm's scale starts.
pub trait ScaleInit: std::fmt::Debug + Clone + Send + Sync + 'static {
    fn fill<const C: usize>(t: &mut Tensor<Rank1<C>, f32, Cpu>) -> Result<(), CpuError>;
}

/// DCGAN's: normal around 1 with deviation 0.02, drawn from the device's stream.
#[derive(Debug, Default, Clone, Copy)]
pub struct DcganScale;

impl ScaleInit for DcganScale {
    fn fill<const C: usize>(t: &mut Tensor<Rank1<C>, f32, Cpu>) -> Result<(), CpuError> {
        match Normal::new(1.0, INIT_STD) {
            Ok(normal) => t.try_fill_with_distr(normal),
            Err(_) => Err(CpuError::WrongNumElements),
        }
    }
}

/// PyTorch's default: 1, drawing nothing.
#[derive(Debug, Default, Clone, Copy)]
pub struct UnitScale;

impl ScaleInit for UnitScale {
    fn fill<const C: usize>(t: &mut Tensor<Rank1<C>, f32, Cpu>) -> Result<(), CpuError> {
        t.try_fill_with_ones()
    }
}

/// `max(x, 0)`, the activation after a generator's batch norm.
#[derive(Debug, Default, Clone, Copy)]
pub struct Relu;

impl Activation for Relu {
    const NEEDS_OUTPUT: bool = true;
    fn bias_act(y: &mut [f32], bias: &[f32]) {
        kernels::bias_leaky_relu(y, bias, 0.0);
    }
    fn grad(g: &mut [f32], y: &[f32]) {
        kernels::leaky_relu_grad(g, y, 0.0);
    }
}

impl<const C: usize, A: Activation, const GROUPS: usize, I: ScaleInit> BuildOnDevice<Cpu, f32>
    for BatchNorm2d<C, A, GROUPS, f32, Cpu, I>
{
    type Built = Self;
}

impl<const C: usize, A: Activation, const GROUPS: usize, I: ScaleInit> TensorCollection<f32, Cpu>
    for BatchNorm2d<C, A, GROUPS, f32, Cpu, I>
{
    type To<E2: Dtype, D2: Device<E2>> = BatchNorm2d<C, A, GROUPS, E2, D2, I>;

    fn iter_tensors<V: ModuleVisitor<Self, f32, Cpu>>(
        visitor: &mut V,
    ) -> Result<Option<Self::To<V::E2, V::D2>>, V::Err> {
        visitor.visit_fields(
            (
                Self::tensor(
                    "weight",
                    |s| &s.weight,
                    |s| &mut s.weight,
                    TensorOptions::reset_with(I::fill::<C>),
                ),
                Self::tensor(
                    "bias",
                    |s| &s.bias,
                    |s| &mut s.bias,
                    TensorOptions::reset_to_zeros(),
                ),
                Self::tensor(
                    "running_mean",
                    |s| &s.running_mean,
                    |s| &mut s.running_mean,
                    TensorOptions::detached(|t| t.try_fill_with_zeros()),
                ),
                Self::tensor(
                    "running_var",
                    |s| &s.running_var,
                    |s| &mut s.running_var,
                    TensorOptions::detached(|t| t.try_fill_with_ones()),
                ),
            ),
            |(weight, bias, running_mean, running_var)| BatchNorm2d {
                weight,
                bias,
                running_mean,
                running_var,
                act: PhantomData,
            },
        )
    }
}

/// A batch of values on tape `T`.
type Values<S, T> = Tensor<S, f32, Cpu, T>;

/// Where the statistics of a pass come from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Statistics {
    /// The batch's own, in this many equal groups (training).
    Batch(usize),
    /// The running ones (evaluation).
    Running,
}

impl<const C: usize, A: Activation, const GROUPS: usize, I: ScaleInit>
    BatchNorm2d<C, A, GROUPS, f32, Cpu, I>
{
    /// The forward pass with statistics from `stats`; the backward pass adds the gradients
    /// `wants` asks for. Returns the output and, for batch statistics, each group's mean and
    /// unbiased variance.
    pub fn forward_op<S: ChannelsLast<C>, T: Tape<f32, Cpu>>(
        &self,
        x: Values<S, T>,
        stats: Statistics,
        wants: Wants,
    ) -> Result<(Values<S, T>, Vec<GroupStats>), CpuError> {
        profile::timed(OpKind::BatchNorm, Pass::Forward, || {
            self.untimed_forward_op(x, stats, wants)
        })
    }

    /// `forward_op` without the op timing.
    fn untimed_forward_op<S: ChannelsLast<C>, T: Tape<f32, Cpu>>(
        &self,
        x: Values<S, T>,
        stats: Statistics,
        wants: Wants,
    ) -> Result<(Values<S, T>, Vec<GroupStats>), CpuError> {
        let (xv, x, mut tape) = ops::take_input(x)?;
        let rows = xv.len() / C.max(1);
        let (weight, bias) = (ops::read(&self.weight)?, ops::read(&self.bias)?);
        let groups = match stats {
            Statistics::Batch(g) => g,
            Statistics::Running => 1,
        };
        if groups == 0 || rows == 0 || !rows.is_multiple_of(groups) {
            return Err(CpuError::WrongNumElements);
        }
        let per = rows / groups;
        // Per group and channel: 1/sqrt(var + eps) and the mean the pass normalises with.
        let mut inv_std = vec![0.0f32; groups * C];
        let mut means = vec![0.0f32; groups * C];
        let mut found = Vec::new();
        // Evaluation folds the statistics into one scale and shift per channel, as PyTorch's
        // kernel does: `y = x * scale + shift`.
        let mut folded: Option<(Vec<f32>, Vec<f32>)> = None;
        match stats {
            Statistics::Running => {
                let (rm, rv) = (
                    ops::read(&self.running_mean)?,
                    ops::read(&self.running_var)?,
                );
                let scale: Vec<f32> = (0..C).map(|c| weight[c] / (rv[c] + EPS).sqrt()).collect();
                let shift: Vec<f32> = (0..C).map(|c| bias[c] - rm[c] * scale[c]).collect();
                for c in 0..C {
                    means[c] = rm[c];
                    inv_std[c] = (1.0 / (rv[c] as f64 + EPS as f64).sqrt()) as f32;
                }
                folded = Some((scale, shift));
            }
            Statistics::Batch(_) => {
                let stats = each_group(xv.chunks_exact(per * C).collect(), |xg| {
                    group_stats::<C>(xg, per)
                });
                for (gi, s) in stats.into_iter().enumerate() {
                    for c in 0..C {
                        means[gi * C + c] = s.mean[c] as f32;
                        inv_std[gi * C + c] = (1.0 / (s.biased_var[c] + EPS as f64).sqrt()) as f32;
                    }
                    found.push(GroupStats {
                        mean: s.mean.iter().map(|&m| m as f32).collect(),
                        unbiased_var: s.unbiased_var.iter().map(|&v| v as f32).collect(),
                    });
                }
            }
        }
        let mut xhat = xv;
        let len = rows * C;
        let mut y = Vec::with_capacity(len);
        for (gi, (xg, yg)) in xhat
            .chunks_exact_mut(per * C)
            .zip(y.spare_capacity_mut()[..len].chunks_exact_mut(per * C))
            .enumerate()
        {
            let (m, s) = (&means[gi * C..][..C], &inv_std[gi * C..][..C]);
            match &folded {
                Some((scale, _)) => kernels::normalise_rows(xg, yg, m, s, scale, true),
                None => kernels::normalise_rows(xg, yg, m, s, &weight, false),
            }
        }
        // SAFETY: the `groups` parts of `per * C` values cover `rows * C` (`rows` is `groups *
        // per`), and each is written whole, as its part of `xhat` is as long.
        unsafe { y.set_len(len) };
        A::bias_act(&mut y, folded.as_ref().map_or(&bias, |(_, shift)| shift));
        let keep = T::OWNS_TAPE && A::NEEDS_OUTPUT;
        let (out, kept_y) = ops::made_keeping(x.device(), y, *x.shape(), keep)?;
        if T::OWNS_TAPE {
            let (x_ghost, out_ghost) = (x.ghost(), out.ghost());
            let (w_ghost, b_ghost) = (self.weight.ghost(), self.bias.ghost());
            let batch_stats = stats != Statistics::Running;
            tape.add_backward_op(move |grads| {
                profile::timed(OpKind::BatchNorm, Pass::Backward, || {
                    let mut dy: Vec<f32> = take_grad!(grads, out_ghost);
                    if let Some(kept) = kept_y {
                        A::grad(&mut dy, &kept);
                        ops::recycle_shared(kept);
                    }
                    let mut dweight = vec![0.0f32; C];
                    let mut dbias = vec![0.0f32; C];
                    // The input's gradient, added to in place (no buffer of its own).
                    let mut dx: Vec<f32> = if wants.input {
                        take_grad!(grads, x_ghost)
                    } else {
                        Vec::new()
                    };
                    let parts: Vec<_> = dy
                        .chunks_exact(per * C)
                        .zip(xhat.chunks_exact(per * C))
                        .collect();
                    let sums = each_group(parts.clone(), |(dg, hg)| {
                        let mut sum_dy = vec![0.0f64; C];
                        let mut sum_dy_xhat = vec![0.0f64; C];
                        kernels::channel_grad_sums(dg, hg, &mut sum_dy, &mut sum_dy_xhat);
                        (sum_dy, sum_dy_xhat)
                    });
                    // One part per group, none when the input needs no gradient.
                    let mut dx_parts = dx.chunks_exact_mut(per * C);
                    for (gi, ((dg, hg), (sum_dy, sum_dy_xhat))) in
                        parts.into_iter().zip(sums).enumerate()
                    {
                        let n = per as f64;
                        let mut k = vec![0.0f32; C];
                        let mut mean_dy = vec![0.0f32; C];
                        let mut mean_dy_xhat = vec![0.0f32; C];
                        for c in 0..C {
                            dweight[c] += sum_dy_xhat[c] as f32;
                            dbias[c] += sum_dy[c] as f32;
                            k[c] = weight[c] * inv_std[gi * C + c];
                            if batch_stats {
                                mean_dy[c] = (sum_dy[c] / n) as f32;
                                mean_dy_xhat[c] = (sum_dy_xhat[c] / n) as f32;
                            }
                        }
                        if let Some(dxg) = dx_parts.next() {
                            kernels::normalised_input_grad(
                                dg,
                                hg,
                                dxg,
                                &k,
                                &mean_dy,
                                &mean_dy_xhat,
                            );
                        }
                    }
                    if wants.input {
                        put_grad!(grads, x_ghost, dx);
                    }
                    if wants.params {
                        let add = kernels::add_into;
                        add(grads.get_or_alloc_mut(&w_ghost)?, &dweight);
                        add(grads.get_or_alloc_mut(&b_ghost)?, &dbias);
                    }
                    put_grad!(grads, out_ghost, dy);
                    ops::recycle([xhat]);
                    Ok(())
                })
            });
        }
        Ok((out.put_tape(tape), found))
    }

    /// Moves the running statistics a tenth of the way to each group's, group by group (the
    /// variance unbiased, as PyTorch does).
    pub fn track(&mut self, found: &[GroupStats]) -> Result<(), CpuError> {
        profile::timed(OpKind::BatchNorm, Pass::Forward, || {
            self.untimed_track(found)
        })
    }

    fn untimed_track(&mut self, found: &[GroupStats]) -> Result<(), CpuError> {
        let (mut rm, mut rv) = (
            ops::read(&self.running_mean)?,
            ops::read(&self.running_var)?,
        );
        for s in found {
            for c in 0..C {
                rm[c] = (1.0 - MOMENTUM) * rm[c] + MOMENTUM * s.mean[c];
                rv[c] = (1.0 - MOMENTUM) * rv[c] + MOMENTUM * s.unbiased_var[c];
            }
        }
        self.running_mean.copy_from(&rm);
        self.running_var.copy_from(&rv);
        Ok(())
    }
}

impl<
    const C: usize,
    A: Activation,
    const GROUPS: usize,
    I: ScaleInit,
    S: ChannelsLast<C>,
    T: Tape<f32, Cpu>,
> FrozenModule<Tensor<S, f32, Cpu, T>> for BatchNorm2d<C, A, GROUPS, f32, Cpu, I>
{
    type Output = Tensor<S, f32, Cpu, T>;

    /// A frozen discriminator in the generator's step: the training pass with the whole batch
    /// as one group, gradients for the input only, the running statistics untouched.
    fn try_forward_frozen(&self, x: Tensor<S, f32, Cpu, T>) -> Result<Self::Output, CpuError> {
        Ok(self.forward_op(x, Statistics::Batch(1), Wants::INPUT)?.0)
    }
}

/// One group's batch statistics, as `track` takes them.
#[derive(Debug, Clone, PartialEq)]
pub struct GroupStats {
    pub mean: Vec<f32>,
    pub unbiased_var: Vec<f32>,
}

/// Mean, biased and unbiased variance per channel of `per` rows of `C`, in f64.
struct Moments {
    mean: Vec<f64>,
    biased_var: Vec<f64>,
    unbiased_var: Vec<f64>,
}

/// `f` of each group, two groups (a discriminator's real and fake halves) side by side: each
/// group's sums are their own, so this changes nothing in them.
fn each_group<G: Send, R: Send>(groups: Vec<G>, f: impl Fn(G) -> R + Sync) -> Vec<R> {
    match <[G; 2]>::try_from(groups) {
        Ok([a, b]) => {
            let (mut ra, mut rb) = (None, None);
            kernels::side_by_side(|| ra = Some(f(a)), || rb = Some(f(b)));
            ra.into_iter().chain(rb).collect()
        }
        Err(groups) => groups.into_iter().map(f).collect(),
    }
}

fn group_stats<const C: usize>(x: &[f32], per: usize) -> Moments {
    let n = per as f64;
    let mut mean = vec![0.0f64; C];
    kernels::channel_sums(x, &mut mean);
    mean.iter_mut().for_each(|m| *m /= n);
    let mut ss = vec![0.0f64; C];
    kernels::channel_square_deviations(x, &mean, &mut ss);
    let biased_var = ss.iter().map(|s| s / n).collect();
    let unbiased_var = ss
        .iter()
        .map(|s| if per > 1 { s / (n - 1.0) } else { s / n })
        .collect();
    Moments {
        mean,
        biased_var,
        unbiased_var,
    }
}

impl<
    const C: usize,
    A: Activation,
    const GROUPS: usize,
    I: ScaleInit,
    S: ChannelsLast<C>,
    T: Tape<f32, Cpu>,
> Module<Tensor<S, f32, Cpu, T>> for BatchNorm2d<C, A, GROUPS, f32, Cpu, I>
{
    type Output = Tensor<S, f32, Cpu, T>;
    type Error = CpuError;

    /// Evaluation: the running statistics.
    fn try_forward(&self, x: Tensor<S, f32, Cpu, T>) -> Result<Self::Output, CpuError> {
        Ok(self.forward_op(x, Statistics::Running, Wants::ALL)?.0)
    }
}

impl<
    const C: usize,
    A: Activation,
    const GROUPS: usize,
    I: ScaleInit,
    S: ChannelsLast<C>,
    T: Tape<f32, Cpu>,
> ModuleMut<Tensor<S, f32, Cpu, T>> for BatchNorm2d<C, A, GROUPS, f32, Cpu, I>
{
    type Output = Tensor<S, f32, Cpu, T>;
    type Error = CpuError;

    /// Training: each of the `GROUPS` parts of the batch with its own statistics, which the
    /// running statistics then follow.
    fn try_forward_mut(&mut self, x: Tensor<S, f32, Cpu, T>) -> Result<Self::Output, CpuError> {
        let (y, found) = self.forward_op(x, Statistics::Batch(GROUPS), Wants::ALL)?;
        self.track(&found)?;
        Ok(y)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::nn::dense::{Identity, LeakyRelu};

    /// Test values in [-2, 2).
    fn values(n: usize, seed: u32) -> Vec<f32> {
        crate::train::testing::values(n, seed)
            .into_iter()
            .map(|v| 2.0 * v)
            .collect()
    }

    type Rows<T> = Tensor<(usize, Const<1>, Const<1>, Const<3>), f32, Cpu, T>;

    fn rows(dev: &Cpu, x: &[f32]) -> Rows<NoneTape> {
        dev.tensor_from_vec(x.to_vec(), (x.len() / 3, Const, Const, Const))
    }

    fn bn<A: Activation>(dev: &Cpu) -> BatchNorm2d<3, A, 1, f32, Cpu> {
        let mut bn = dev.build_module::<BatchNorm2d<3, A>, f32>();
        bn.weight.copy_from(&[2.0, 1.0, 0.5]);
        bn.bias.copy_from(&[0.0, 1.0, -1.0]);
        bn
    }

    #[test]
    fn normalises_each_channel_and_tracks_running_statistics() {
        let dev = Cpu::seed_from_u64(0);
        let mut bn = bn::<Identity>(&dev);
        let x0 = values(40 * 3, 1);
        let x = bn.try_forward_mut(rows(&dev, &x0)).unwrap().as_vec();
        let (w, b) = (bn.weight.as_vec(), bn.bias.as_vec());
        let (rm, rv) = (bn.running_mean.as_vec(), bn.running_var.as_vec());
        for c in 0..3 {
            let col: Vec<f64> = x.iter().skip(c).step_by(3).map(|&v| v as f64).collect();
            let mean = col.iter().sum::<f64>() / 40.0;
            let var = col.iter().map(|v| (v - mean).powi(2)).sum::<f64>() / 40.0;
            assert!((mean - b[c] as f64).abs() < 1e-5);
            let w = w[c] as f64;
            assert!((var - w * w).abs() < 1e-3 * w * w, "channel {c}: {var}");
            let raw: Vec<f64> = x0.iter().skip(c).step_by(3).map(|&v| v as f64).collect();
            let raw_mean = raw.iter().sum::<f64>() / 40.0;
            let raw_var = raw.iter().map(|v| (v - raw_mean).powi(2)).sum::<f64>() / 39.0;
            assert!((rm[c] as f64 - 0.1 * raw_mean).abs() < 1e-6);
            assert!((rv[c] as f64 - (0.9 + 0.1 * raw_var)).abs() < 1e-5);
        }
        // Evaluation with running statistics equal to the batch's gives the training output.
        let mut eval = bn.clone();
        let (mut m, mut v) = (vec![0.0; 3], vec![0.0; 3]);
        for c in 0..3 {
            let raw: Vec<f32> = x0.iter().skip(c).step_by(3).copied().collect();
            m[c] = raw.iter().sum::<f32>() / 40.0;
            v[c] = raw.iter().map(|r| (r - m[c]).powi(2)).sum::<f32>() / 40.0;
        }
        eval.running_mean.copy_from(&m);
        eval.running_var.copy_from(&v);
        let y = eval.try_forward(rows(&dev, &x0)).unwrap().as_vec();
        for (a, b) in y.iter().zip(&x) {
            assert!((a - b).abs() < 1e-4);
        }
        // Evaluation changes nothing.
        assert_eq!(eval.running_mean.as_vec(), m);
    }

    /// Tape gradients of `sum(act(bn(x)) * r)` against central differences, for the input,
    /// scale and shift, in `groups` groups; and the frozen pass's input gradient.
    fn check<A: Activation>(groups: usize, stats: Statistics) {
        let dev = Cpu::seed_from_u64(0);
        let bn = bn::<A>(&dev);
        let x0 = values(6 * 3, 3);
        let r = values(6 * 3, 4);
        let loss = |bn: &BatchNorm2d<3, A, 1, f32, Cpu>, x: &[f32]| -> f64 {
            let (y, _) = bn.forward_op(rows(&dev, x), stats, Wants::ALL).unwrap();
            y.as_vec()
                .iter()
                .zip(&r)
                .map(|(a, b)| (*a as f64) * (*b as f64))
                .sum()
        };
        let x = rows(&dev, &x0);
        let rt = dev.tensor_from_vec(r.clone(), (6, Const, Const, Const));
        let (y, _) = bn.forward_op(x.leaky_trace(), stats, Wants::ALL).unwrap();
        let g = (y * rt.clone()).sum().backward();
        let (dx, dw, db) = (
            g.get(&x).as_vec(),
            g.get(&bn.weight).as_vec(),
            g.get(&bn.bias).as_vec(),
        );
        let h = 1e-3f32;
        let what = format!("{groups} groups, {}", std::any::type_name::<A>());
        for i in 0..x0.len() {
            let (mut up, mut down) = (x0.clone(), x0.clone());
            up[i] += h;
            down[i] -= h;
            let numeric = (loss(&bn, &up) - loss(&bn, &down)) / (2.0 * h as f64);
            assert!(
                (dx[i] as f64 - numeric).abs() < 2e-3,
                "{what}: x[{i}]: {} vs {numeric}",
                dx[i]
            );
        }
        for (t, grad, name) in [(0, &dw, "weight"), (1, &db, "bias")] {
            for c in 0..3 {
                let nudged = |d: f32| {
                    let mut b = bn.clone();
                    let p = if t == 0 { &mut b.weight } else { &mut b.bias };
                    let mut v = p.as_vec();
                    v[c] += d;
                    p.copy_from(&v);
                    loss(&b, &x0)
                };
                let numeric = (nudged(h) - nudged(-h)) / (2.0 * h as f64);
                let a = grad[c] as f64;
                assert!(
                    (a - numeric).abs() < 2e-3,
                    "{what}: {name} {c}: {a} vs {numeric}"
                );
            }
        }
        let (y, _) = bn.forward_op(x.leaky_trace(), stats, Wants::INPUT).unwrap();
        let frozen = (y * rt).sum().backward();
        assert_eq!(frozen.get(&x).as_vec(), dx);
    }

    #[test]
    fn backward_matches_finite_differences() {
        check::<Relu>(1, Statistics::Batch(1));
        check::<LeakyRelu>(2, Statistics::Batch(2));
        check::<Identity>(3, Statistics::Batch(3));
        check::<LeakyRelu>(1, Statistics::Running);
    }

    #[test]
    fn groups_are_normalised_apart() {
        // Two groups with very different means each come out centred.
        let dev = Cpu::seed_from_u64(0);
        let mut bn = dev.build_module::<BatchNorm2d<1, Identity, 2>, f32>();
        bn.weight.copy_from(&[1.0]);
        let x = dev.tensor_from_vec(
            vec![10.0, 11.0, 12.0, -5.0, -4.0, -3.0],
            (6usize, Const::<1>, Const::<1>, Const::<1>),
        );
        let y = bn.try_forward_mut(x).unwrap().as_vec();
        for g in y.chunks(3) {
            assert!(g.iter().sum::<f32>().abs() < 1e-5, "{y:?}");
        }
        // The running mean took both groups' means in turn: 0.9 * (0.1 * 11) + 0.1 * -4.
        assert!((bn.running_mean.as_vec()[0] - (0.99 - 0.4)).abs() < 1e-5);
        // A batch that does not split into the groups is an error, not a panic.
        let odd = dev.zeros_like(&(5usize, Const::<1>, Const::<1>, Const::<1>));
        assert!(bn.try_forward_mut(odd).is_err());
    }

    #[test]
    fn rows_of_features_are_one_pixel_images_and_the_1d_layer_starts_at_scale_one() {
        let dev = Cpu::seed_from_u64(5);
        let mut flat = dev.build_module::<BatchNorm1d<3, LeakyRelu>, f32>();
        assert_eq!(flat.weight.array(), [1.0; 3]);
        // Building it drew nothing from the device's stream.
        let next: Tensor<Rank1<4>, f32, Cpu> = dev.sample_normal();
        let fresh: Tensor<Rank1<4>, f32, Cpu> = Cpu::seed_from_u64(5).sample_normal();
        assert_eq!(next.array(), fresh.array());
        let mut image = bn::<LeakyRelu>(&dev);
        flat.weight.copy_from(&image.weight.as_vec());
        flat.bias.copy_from(&image.bias.as_vec());
        let x0 = values(8 * 3, 9);
        let x: Tensor<(usize, Const<3>), f32, Cpu> = dev.tensor_from_vec(x0.clone(), (8, Const));
        let y_flat = flat.try_forward_mut(x).unwrap().as_vec();
        let y_image = image.try_forward_mut(rows(&dev, &x0)).unwrap().as_vec();
        assert_eq!(y_flat, y_image);
        assert_eq!(flat.running_var.as_vec(), image.running_var.as_vec());
    }
}
