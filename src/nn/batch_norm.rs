//! Batch normalisation over the last axis (PyTorch's `BatchNorm1d` over rows of features,
//! `BatchNorm2d` over channels-last images: statistics per channel over every row or pixel of the
//! batch) fused with the activation that follows it, as a dfdx module whose passes are one
//! custom op.
//!
//! Two threads may train clones of one network at once on different batches (a
//! discriminator's real and fake batch, `bce_step::Apart`): their batch norms then record the
//! statistics they find (`recording`) and the network's running statistics follow them
//! afterwards, in order (`follow_recorded`).

use std::cell::RefCell;
use std::marker::PhantomData;

use dfdx::nn::tensor_collection::{
    ModuleVisitor, RecursiveWalker, TensorCollection, TensorOptions, TensorVisitor, ViewTensorMut,
    ViewTensorName,
};
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
/// The names of the running statistics, as PyTorch's.
const RUNNING_MEAN: &str = "running_mean";
const RUNNING_VAR: &str = "running_var";

/// Batch norm of `C` channels then the activation `A`, with learned scale (`weight`, initialised
/// as `Init` says) and shift (`bias`) and running statistics for evaluation, as PyTorch names
/// them. A training pass (`forward_mut`) normalises with the batch's own statistics and moves
/// the running statistics; an evaluation pass (`forward`) uses the running statistics. It takes
/// rows of `C` features as well as channels-last images (`ChannelsLast`).
#[derive(Debug, Clone)]
pub struct BatchNorm2d<const C: usize, A, E: Dtype = f32, D: Storage<E> = Cpu, Init = DcganScale> {
    pub weight: Tensor<Rank1<C>, E, D>,
    pub bias: Tensor<Rank1<C>, E, D>,
    pub running_mean: Tensor<Rank1<C>, E, D>,
    pub running_var: Tensor<Rank1<C>, E, D>,
    pub act: PhantomData<(A, Init)>,
}

/// The same layer over rows of `C` features, with PyTorch's initial scale of 1 (the tuned MLP's
/// generator).
pub type BatchNorm1d<const C: usize, A> = BatchNorm2d<C, A, f32, Cpu, UnitScale>;

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
    const LEAKY_SLOPE: Option<f32> = Some(0.0);
    fn bias_act(y: &mut [f32], bias: &[f32]) {
        kernels::bias_leaky_relu(y, bias, 0.0);
    }
    fn grad(g: &mut [f32], y: &[f32]) {
        kernels::leaky_relu_grad(g, y, 0.0);
    }
}

impl<const C: usize, A: Activation, I: ScaleInit> BuildOnDevice<Cpu, f32>
    for BatchNorm2d<C, A, f32, Cpu, I>
{
    type Built = Self;
}

impl<const C: usize, A: Activation, I: ScaleInit> TensorCollection<f32, Cpu>
    for BatchNorm2d<C, A, f32, Cpu, I>
{
    type To<E2: Dtype, D2: Device<E2>> = BatchNorm2d<C, A, E2, D2, I>;

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
                    RUNNING_MEAN,
                    |s| &s.running_mean,
                    |s| &mut s.running_mean,
                    TensorOptions::detached(|t| t.try_fill_with_zeros()),
                ),
                Self::tensor(
                    RUNNING_VAR,
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
    /// The batch's own (training).
    Batch,
    /// The running ones (evaluation).
    Running,
}

impl<const C: usize, A: Activation, I: ScaleInit> BatchNorm2d<C, A, f32, Cpu, I> {
    /// The forward pass with statistics from `stats`; the backward pass adds the gradients
    /// `wants` asks for. Returns the output and, for batch statistics, the batch's mean and
    /// unbiased variance.
    pub fn forward_op<S: ChannelsLast<C>, T: Tape<f32, Cpu>>(
        &self,
        x: Values<S, T>,
        stats: Statistics,
        wants: Wants,
    ) -> Result<(Values<S, T>, Option<BatchStats>), CpuError> {
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
    ) -> Result<(Values<S, T>, Option<BatchStats>), CpuError> {
        let (xv, x, mut tape) = ops::take_input(x)?;
        let rows = xv.len() / C.max(1);
        if rows == 0 {
            return Err(CpuError::WrongNumElements);
        }
        let (weight, bias) = (ops::read(&self.weight)?, ops::read(&self.bias)?);
        // Per channel: the mean the pass normalises with and 1/sqrt(var + eps).
        let mut inv_std = vec![0.0f32; C];
        let mut means = vec![0.0f32; C];
        let mut found = None;
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
            Statistics::Batch => {
                let s = moments::<C>(&xv, rows);
                for c in 0..C {
                    means[c] = s.mean[c] as f32;
                    inv_std[c] = (1.0 / (s.biased_var[c] + EPS as f64).sqrt()) as f32;
                }
                found = Some(BatchStats {
                    mean: s.mean.iter().map(|&m| m as f32).collect(),
                    unbiased_var: s.unbiased_var.iter().map(|&v| v as f32).collect(),
                });
            }
        }
        let mut xhat = xv;
        let len = rows * C;
        let mut y = Vec::with_capacity(len);
        let y_parts = &mut y.spare_capacity_mut()[..len];
        let shift = folded.as_ref().map_or(&bias, |(_, shift)| shift);
        // A leaky ReLU (or ReLU) is applied in the same pass, with the shift.
        let leaky = A::LEAKY_SLOPE.map(|slope| (&shift[..], slope));
        let (scale, scale_input) = match &folded {
            Some((scale, _)) => (scale, true),
            None => (&weight, false),
        };
        kernels::normalise_rows(
            &mut xhat,
            y_parts,
            &means,
            &inv_std,
            scale,
            scale_input,
            leaky,
        );
        // SAFETY: `normalise_rows` wrote all `len` values, as `xhat` is as long.
        unsafe { y.set_len(len) };
        if leaky.is_none() {
            A::bias_act(&mut y, shift);
        }
        let keep = T::OWNS_TAPE && A::NEEDS_OUTPUT;
        let (out, kept_y) = ops::made_keeping(x.device(), y, *x.shape(), keep)?;
        if T::OWNS_TAPE {
            let (x_ghost, out_ghost) = (x.ghost(), out.ghost());
            let (w_ghost, b_ghost) = (self.weight.ghost(), self.bias.ghost());
            let batch_stats = stats == Statistics::Batch;
            tape.add_backward_op(move |grads| {
                profile::timed(OpKind::BatchNorm, Pass::Backward, || {
                    let mut dy: Vec<f32> = take_grad!(grads, out_ghost);
                    let mut sum_dy = vec![0.0f64; C];
                    let mut sum_dy_xhat = vec![0.0f64; C];
                    let (sums, sums_xhat) = (&mut sum_dy, &mut sum_dy_xhat);
                    match (kept_y, A::LEAKY_SLOPE) {
                        (Some(kept), Some(slope)) => {
                            // The activation's gradient in the same pass as the sums.
                            let (dy, y) = (&mut dy, &kept);
                            kernels::leaky_grad_channel_sums(dy, y, slope, &xhat, sums, sums_xhat);
                            ops::recycle_shared(kept);
                        }
                        (kept, _) => {
                            if let Some(kept) = kept {
                                A::grad(&mut dy, &kept);
                                ops::recycle_shared(kept);
                            }
                            kernels::channel_grad_sums(&dy, &xhat, sums, sums_xhat);
                        }
                    }
                    if wants.input {
                        // Added to in place (no buffer of its own).
                        let mut dx: Vec<f32> = take_grad!(grads, x_ghost);
                        let n = rows as f64;
                        let mut k = vec![0.0f32; C];
                        let mut mean_dy = vec![0.0f32; C];
                        let mut mean_dy_xhat = vec![0.0f32; C];
                        for c in 0..C {
                            k[c] = weight[c] * inv_std[c];
                            if batch_stats {
                                mean_dy[c] = (sum_dy[c] / n) as f32;
                                mean_dy_xhat[c] = (sum_dy_xhat[c] / n) as f32;
                            }
                        }
                        kernels::normalised_input_grad(
                            &dy,
                            &xhat,
                            &mut dx,
                            &k,
                            &mean_dy,
                            &mean_dy_xhat,
                        );
                        put_grad!(grads, x_ghost, dx);
                    }
                    if wants.params {
                        let dweight: Vec<f32> = sum_dy_xhat.iter().map(|&s| s as f32).collect();
                        let dbias: Vec<f32> = sum_dy.iter().map(|&s| s as f32).collect();
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

    /// Moves the running statistics a tenth of the way to a batch's (the variance unbiased, as
    /// PyTorch does).
    pub fn track(&mut self, found: &BatchStats) -> Result<(), CpuError> {
        profile::timed(OpKind::BatchNorm, Pass::Forward, || {
            follow_tensor(&mut self.running_mean, &found.mean)?;
            follow_tensor(&mut self.running_var, &found.unbiased_var)
        })
    }
}

impl<const C: usize, A: Activation, I: ScaleInit, S: ChannelsLast<C>, T: Tape<f32, Cpu>>
    FrozenModule<Tensor<S, f32, Cpu, T>> for BatchNorm2d<C, A, f32, Cpu, I>
{
    type Output = Tensor<S, f32, Cpu, T>;

    /// A frozen discriminator in the generator's step: the training pass with the whole batch
    /// as one group, gradients for the input only, the running statistics untouched.
    fn try_forward_frozen(&self, x: Tensor<S, f32, Cpu, T>) -> Result<Self::Output, CpuError> {
        Ok(self.forward_op(x, Statistics::Batch, Wants::INPUT)?.0)
    }
}

/// Moves a running statistic a tenth of the way to a batch's.
fn follow_tensor<S: Shape>(
    running: &mut Tensor<S, f32, Cpu>,
    found: &[f32],
) -> Result<(), CpuError> {
    let mut r = ops::read(running)?;
    if r.len() != found.len() {
        return Err(CpuError::WrongNumElements);
    }
    for (r, &f) in r.iter_mut().zip(found) {
        *r = (1.0 - MOMENTUM) * *r + MOMENTUM * f;
    }
    running.copy_from(&r);
    Ok(())
}

/// A network being recorded on this thread: where it lies in memory, and what its batch norms
/// found so far.
struct Recording {
    start: usize,
    end: usize,
    found: Vec<BatchStats>,
}

thread_local! {
    /// The networks being recorded on this thread, innermost last.
    static RECORDING: RefCell<Vec<Recording>> = const { RefCell::new(Vec::new()) };
}

/// Runs `work` on `net` with the training pass of each batch norm inside `net` recording the
/// statistics it finds, in order, instead of moving its running statistics: two threads may
/// then train clones of one network at once, and `follow_recorded` moves the network's
/// afterwards. The batch norms must lie inside `net` itself (a tuple or struct of layers, not
/// behind a pointer).
///
/// A batch norm is told apart by its address, not by the thread alone: a thread waiting for
/// another may run unrelated work (another run's step) inside `work`, whose batch norms must
/// go on tracking as usual.
pub fn recording<M, R>(net: &mut M, work: impl FnOnce(&mut M) -> R) -> (R, Vec<BatchStats>) {
    let start = net as *mut M as usize;
    RECORDING.with(|r| {
        r.borrow_mut().push(Recording {
            start,
            end: start + std::mem::size_of::<M>(),
            found: Vec::new(),
        })
    });
    let result = work(net);
    let found = RECORDING.with(|r| r.borrow_mut().pop().map(|rec| rec.found));
    (result, found.unwrap_or_default())
}

/// `found` by the batch norm at `at`, kept when a network being recorded holds it, or given
/// back.
fn record(at: usize, found: BatchStats) -> Option<BatchStats> {
    RECORDING.with(|r| {
        let mut r = r.borrow_mut();
        match r
            .iter_mut()
            .rev()
            .find(|rec| (rec.start..rec.end).contains(&at))
        {
            Some(rec) => {
                rec.found.push(found);
                None
            }
            None => Some(found),
        }
    })
}

/// Moves the running statistics of each batch norm of `model` (in the order its tensors are
/// visited, which is the order of its passes) towards its batch's in `found`, as `recording`
/// kept them.
pub fn follow_recorded<M: TensorCollection<f32, Cpu>>(
    model: &mut M,
    found: &[BatchStats],
) -> Result<(), CpuError> {
    let mut follower = Follower { found, next: 0 };
    M::iter_tensors(&mut RecursiveWalker {
        m: (model, String::new()),
        f: &mut follower,
    })?;
    if follower.next == found.len() {
        Ok(())
    } else {
        Err(CpuError::WrongNumElements)
    }
}

/// Walks a model's tensors for `follow_recorded`: a batch norm's running mean, then its
/// running variance, then the next batch norm's.
struct Follower<'a> {
    found: &'a [BatchStats],
    next: usize,
}

impl TensorVisitor<f32, Cpu> for Follower<'_> {
    type Viewer = (ViewTensorMut, ViewTensorName);
    type Err = CpuError;
    type E2 = f32;
    type D2 = Cpu;

    fn visit<S: Shape>(
        &mut self,
        _: TensorOptions<S, f32, Cpu>,
        (t, path): (&mut Tensor<S, f32, Cpu>, String),
    ) -> Result<Option<Tensor<S, f32, Cpu>>, CpuError> {
        let is_mean = path.ends_with(RUNNING_MEAN);
        if !is_mean && !path.ends_with(RUNNING_VAR) {
            return Ok(None);
        }
        let s = self
            .found
            .get(self.next)
            .ok_or(CpuError::WrongNumElements)?;
        if is_mean {
            follow_tensor(t, &s.mean)?;
        } else {
            follow_tensor(t, &s.unbiased_var)?;
            self.next += 1;
        }
        Ok(None)
    }
}

/// A batch's statistics, as `track` takes them.
#[derive(Debug, Clone, PartialEq)]
pub struct BatchStats {
    pub mean: Vec<f32>,
    pub unbiased_var: Vec<f32>,
}

/// Mean, biased and unbiased variance per channel of `rows` rows of `C`, in f64.
struct Moments {
    mean: Vec<f64>,
    biased_var: Vec<f64>,
    unbiased_var: Vec<f64>,
}

fn moments<const C: usize>(x: &[f32], rows: usize) -> Moments {
    let n = rows as f64;
    let mut mean = vec![0.0f64; C];
    kernels::channel_sums(x, &mut mean);
    mean.iter_mut().for_each(|m| *m /= n);
    let mut ss = vec![0.0f64; C];
    kernels::channel_square_deviations(x, &mean, &mut ss);
    let biased_var = ss.iter().map(|s| s / n).collect();
    let unbiased_var = ss
        .iter()
        .map(|s| if rows > 1 { s / (n - 1.0) } else { s / n })
        .collect();
    Moments {
        mean,
        biased_var,
        unbiased_var,
    }
}

impl<const C: usize, A: Activation, I: ScaleInit, S: ChannelsLast<C>, T: Tape<f32, Cpu>>
    Module<Tensor<S, f32, Cpu, T>> for BatchNorm2d<C, A, f32, Cpu, I>
{
    type Output = Tensor<S, f32, Cpu, T>;
    type Error = CpuError;

    /// Evaluation: the running statistics.
    fn try_forward(&self, x: Tensor<S, f32, Cpu, T>) -> Result<Self::Output, CpuError> {
        Ok(self.forward_op(x, Statistics::Running, Wants::ALL)?.0)
    }
}

impl<const C: usize, A: Activation, I: ScaleInit, S: ChannelsLast<C>, T: Tape<f32, Cpu>>
    ModuleMut<Tensor<S, f32, Cpu, T>> for BatchNorm2d<C, A, f32, Cpu, I>
{
    type Output = Tensor<S, f32, Cpu, T>;
    type Error = CpuError;

    /// Training: the batch's own statistics, which the running statistics then follow (or
    /// which are recorded, while `recording`).
    fn try_forward_mut(&mut self, x: Tensor<S, f32, Cpu, T>) -> Result<Self::Output, CpuError> {
        let (y, found) = self.forward_op(x, Statistics::Batch, Wants::ALL)?;
        let at = self as *const Self as usize;
        if let Some(unrecorded) = found.and_then(|f| record(at, f)) {
            self.track(&unrecorded)?;
        }
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

    fn bn<A: Activation>(dev: &Cpu) -> BatchNorm2d<3, A, f32, Cpu> {
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
    /// scale and shift; and the frozen pass's input gradient.
    fn check<A: Activation>(stats: Statistics) {
        let dev = Cpu::seed_from_u64(0);
        let bn = bn::<A>(&dev);
        let x0 = values(6 * 3, 3);
        let r = values(6 * 3, 4);
        let loss = |bn: &BatchNorm2d<3, A, f32, Cpu>, x: &[f32]| -> f64 {
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
        let what = format!("{stats:?}, {}", std::any::type_name::<A>());
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
        check::<Relu>(Statistics::Batch);
        check::<LeakyRelu>(Statistics::Batch);
        check::<Identity>(Statistics::Batch);
        check::<LeakyRelu>(Statistics::Running);
    }

    #[test]
    fn recorded_statistics_followed_in_order_are_what_training_in_turn_tracks() {
        let dev = Cpu::seed_from_u64(0);
        let mut tracked = dev.build_module::<BatchNorm2d<1, Identity>, f32>();
        tracked.weight.copy_from(&[1.0]);
        let mut recorded = tracked.clone();
        let image = |v: &[f32]| {
            dev.tensor_from_vec(v.to_vec(), (3usize, Const::<1>, Const::<1>, Const::<1>))
        };
        let (a, b) = ([10.0, 11.0, 12.0], [-5.0, -4.0, -3.0]);
        let train = |bn: &mut BatchNorm2d<1, Identity>, v: &[f32]| {
            bn.try_forward_mut(image(v)).unwrap().as_vec()
        };
        let (ya, yb) = (train(&mut tracked, &a), train(&mut tracked, &b));
        // Each batch comes out centred on its own mean; the running mean took both in turn.
        assert!(
            ya.iter().chain(&yb).all(|y| y.abs() <= 1.3),
            "{ya:?} {yb:?}"
        );
        assert!((tracked.running_mean.as_vec()[0] - (0.9 * 1.1 - 0.4)).abs() < 1e-5);

        let (ya2, found_a) = recording(&mut recorded, |bn| train(bn, &a));
        let (yb2, found_b) = recording(&mut recorded, |bn| train(bn, &b));
        assert_eq!((ya2, yb2), (ya, yb));
        // Recording moved nothing; following the records moves what training moved.
        assert_eq!(recorded.running_mean.as_vec(), [0.0]);
        assert_eq!(recorded.running_var.as_vec(), [1.0]);
        follow_recorded(&mut recorded, &found_a).unwrap();
        follow_recorded(&mut recorded, &found_b).unwrap();
        assert_eq!(
            recorded.running_mean.as_vec(),
            tracked.running_mean.as_vec()
        );
        assert_eq!(recorded.running_var.as_vec(), tracked.running_var.as_vec());
        // Outside `recording` a training pass tracks again.
        train(&mut recorded, &a);
        assert_ne!(
            recorded.running_mean.as_vec(),
            tracked.running_mean.as_vec()
        );
        // A batch norm outside the recorded network, trained meanwhile on the same thread (as
        // another run's step that a waiting thread picks up would be), tracks as usual.
        let mut other = recorded.clone();
        let before = other.running_mean.as_vec();
        let (_, found) = recording(&mut recorded, |bn| {
            train(&mut other, &a);
            train(bn, &b)
        });
        assert_eq!(found.len(), 1);
        assert_ne!(other.running_mean.as_vec(), before);
        // Records that do not match the network's batch norms are an error, not a panic.
        let mut two = (recorded.clone(), recorded.clone());
        assert!(follow_recorded(&mut two, &found_a).is_err());
        assert!(follow_recorded(&mut recorded, &[]).is_err());
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
