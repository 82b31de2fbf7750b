//! The plumbing of the engine's custom ops on dfdx's Cpu tensors: reading a tensor's values,
//! moving a computed buffer in as a tensor, and borrowing gradients on the tape.
//!
//! dfdx 0.13 gives no public view of a Cpu tensor's buffer (`Tensorlike::data` is
//! crate-private), so reading one is a `memcpy` through `copy_into`, on one thread; an op reads
//! each input once and keeps that copy for its backward pass. An op's output is moved in
//! without a copy (`try_tensor_from_vec`) and, through `made`, a copy of it (made on both
//! threads) is kept for the next op to take instead of reading the tensor. Gradients are
//! borrowed in place (`Gradients::get_or_alloc_mut`).

use std::any::Any;
use std::cell::RefCell;
use std::collections::{BTreeMap, VecDeque};
use std::sync::Arc;
use std::sync::{Mutex, PoisonError};

use dfdx::prelude::*;
use dfdx::tensor::Tape;

use super::profile::{self, OpKind, Pass};

/// A tape-free Cpu tensor of `f32`.
pub type Plain<S> = Tensor<S, f32, Cpu>;

/// Buffers kept for reuse, by length: a step reads the same tensors every time, and a buffer
/// that already has the right length is overwritten without first being zeroed (a fresh one
/// is zeroed by `resize`, then copied over). At most `KEPT_PER_LENGTH` of each length and
/// `KEPT_VALUES` values in all (32 MB), so a large evaluation batch is not kept.
static SPARE_BUFFERS: Mutex<Spare> = Mutex::new(Spare::new());
const KEPT_PER_LENGTH: usize = 8;
const KEPT_VALUES: usize = 8 << 20;

struct Spare {
    by_len: BTreeMap<usize, Vec<Vec<f32>>>,
    /// Values in all the kept buffers.
    values: usize,
}

impl Spare {
    const fn new() -> Spare {
        Spare {
            by_len: BTreeMap::new(),
            values: 0,
        }
    }

    fn take(&mut self, len: usize) -> Option<Vec<f32>> {
        let buf = self.by_len.get_mut(&len).and_then(Vec::pop)?;
        self.values -= len;
        Some(buf)
    }

    fn keep(&mut self, buf: Vec<f32>) {
        let len = buf.len();
        if len == 0 || self.values + len > KEPT_VALUES {
            return;
        }
        let kept = self.by_len.entry(len).or_default();
        if kept.len() < KEPT_PER_LENGTH {
            kept.push(buf);
            self.values += len;
        }
    }
}

fn spare_buffers() -> std::sync::MutexGuard<'static, Spare> {
    SPARE_BUFFERS.lock().unwrap_or_else(PoisonError::into_inner)
}

/// A buffer of `len` values, reused if one was given back (its values are then old ones).
pub fn buffer(len: usize) -> Vec<f32> {
    let reused = spare_buffers().take(len);
    reused.unwrap_or_else(|| vec![0.0; len])
}

/// A copy of `values`, in a buffer given back earlier if there is one, else in a new one that
/// is never zero-filled (give it back with `recycle` when done).
pub fn copy_of(values: &[f32]) -> Vec<f32> {
    let reused = spare_buffers().take(values.len());
    match reused {
        Some(mut buf) => {
            super::kernels::copy(&mut buf, values);
            buf
        }
        None => super::kernels::copy_new(values),
    }
}

/// Gives `buffers` back for `buffer` to hand out again.
pub fn recycle<const N: usize>(buffers: [Vec<f32>; N]) {
    let mut spare = spare_buffers();
    for buf in buffers {
        spare.keep(buf);
    }
}

/// Values read by more than one owner, none of which changes them: an op's output kept both
/// for its own backward pass and for the next op.
pub type Shared = Arc<Vec<f32>>;

thread_local! {
    /// Copies of the values of tensors made by `made` on this thread, for the op that reads
    /// them next (a tensor read on another thread is read through dfdx). Each is found by the
    /// address of its tensor's buffer, and holds a clone of the tensor: while the entry lives,
    /// that buffer can be neither freed (so its address names no other tensor) nor changed in
    /// place (dfdx writes in place only into a buffer nobody else holds). At most `MADE_KEPT`
    /// entries and `KEPT_VALUES` values; the oldest go first, and a tensor whose copy is gone
    /// is read through dfdx as any other.
    static MADE: RefCell<VecDeque<Made>> = const { RefCell::new(VecDeque::new()) };
}
const MADE_KEPT: usize = 8;

struct Made {
    address: usize,
    /// The tensor, held only so that its buffer stays as it is.
    _tensor: Box<dyn Any>,
    values: Shared,
}

/// Where `t`'s buffer starts: its identity while a clone of it is held (`None` when empty).
fn buffer_address<S: Shape, T>(t: &Tensor<S, f32, Cpu, T>) -> Option<usize> {
    (t.shape().num_elements() > 0).then(|| std::ptr::from_ref(&t[Default::default()]) as usize)
}

/// The tensor of `values` with `shape`, an op's output: the values move in, and a copy of them
/// is kept for the next op's `take_input` or `read` (when it fits in `KEPT_VALUES`).
pub fn made<S: Shape>(dev: &Cpu, values: Vec<f32>, shape: S) -> Result<Plain<S>, CpuError> {
    Ok(made_keeping(dev, values, shape, false)?.0)
}

/// `made`, also handing back the copy when `keep` (for the op's own backward pass): one copy,
/// shared with the next op.
pub fn made_keeping<S: Shape>(
    dev: &Cpu,
    values: Vec<f32>,
    shape: S,
    keep: bool,
) -> Result<(Plain<S>, Option<Shared>), CpuError> {
    let fits = values.len() <= KEPT_VALUES / 2;
    let copy = (fits || keep)
        .then(|| profile::timed(OpKind::Copies, Pass::Forward, || Arc::new(copy_of(&values))));
    let t = dev.try_tensor_from_vec(values, shape)?;
    if let (true, Some(values), Some(address)) = (fits, &copy, buffer_address(&t)) {
        MADE.with_borrow_mut(|made| {
            made.push_back(Made {
                address,
                _tensor: Box::new(t.clone()),
                values: Arc::clone(values),
            });
            let mut total: usize = made.iter().map(|m| m.values.len()).sum();
            while made.len() > MADE_KEPT || total > KEPT_VALUES {
                let Some(old) = made.pop_front() else { break };
                total -= old.values.len();
                recycle_shared(old.values);
            }
        });
    }
    Ok((t, copy.filter(|_| keep)))
}

/// The kept copy of `t`'s values, if `made` kept one and nobody took it yet. `t` must be
/// contiguous: a permuted view of a made tensor starts at the same address.
fn take_made<S: Shape>(t: &Plain<S>) -> Option<Shared> {
    let address = buffer_address(t)?;
    let len = t.shape().num_elements();
    MADE.with_borrow_mut(|made| {
        let at = made
            .iter()
            .position(|m| m.address == address && m.values.len() == len)?;
        made.remove(at).map(|m| m.values)
    })
}

/// `values` as a buffer of one's own: itself when nobody else holds it, else a copy.
fn owned(values: Shared) -> Vec<f32> {
    Arc::try_unwrap(values).unwrap_or_else(|values| copy_of(&values))
}

/// Gives `values` back for `buffer` to hand out again, if nobody else holds them.
pub fn recycle_shared(values: Shared) {
    if let Ok(values) = Arc::try_unwrap(values) {
        recycle([values]);
    }
}

/// The values of `t` in row-major order, written over `buf` (resized to fit).
///
/// `t` is made contiguous first, which for a contiguous tensor (a parameter, anything an op of
/// this engine made) keeps its buffer and id; only a broadcast or permuted view is laid out anew.
pub fn read_into<S: Shape>(t: &Plain<S>, buf: &mut Vec<f32>) -> Result<(), CpuError> {
    profile::timed(OpKind::Copies, Pass::Forward, || {
        let t = t.clone().try_contiguous()?;
        buf.resize(t.shape().num_elements(), 0.0);
        t.copy_into(buf);
        Ok(())
    })
}

/// The values of `t`, to read only: the copy `made` kept if there is one (it is then gone),
/// else a copy read from `t` (in a buffer from `buffer`).
pub fn read_shared<S: Shape>(t: &Plain<S>) -> Result<Shared, CpuError> {
    let t = t.clone().try_contiguous()?;
    if let Some(values) = take_made(&t) {
        return Ok(values);
    }
    let mut buf = buffer(t.shape().num_elements());
    read_into(&t, &mut buf)?;
    Ok(Arc::new(buf))
}

/// The values of `t` in a buffer of one's own (give it back with `recycle` when done).
pub fn read<S: Shape>(t: &Plain<S>) -> Result<Vec<f32>, CpuError> {
    read_shared(t).map(owned)
}

/// Splits `x` into its values (a copy), the tensor itself without its tape, and the tape. A
/// non-contiguous `x` is laid out contiguously on the tape first, so gradients written to the
/// returned tensor reach the original.
pub fn take_input<S: Shape, T: Tape<f32, Cpu>>(
    x: Tensor<S, f32, Cpu, T>,
) -> Result<(Vec<f32>, Plain<S>, T), CpuError> {
    let (values, x, tape) = take_input_shared(x)?;
    Ok((owned(values), x, tape))
}

/// `take_input` for an op that only reads the values.
pub fn take_input_shared<S: Shape, T: Tape<f32, Cpu>>(
    x: Tensor<S, f32, Cpu, T>,
) -> Result<(Shared, Plain<S>, T), CpuError> {
    let x = x.try_contiguous()?;
    let (x, tape) = x.split_tape();
    let values = read_shared(&x)?;
    Ok((values, x, tape))
}

/// Takes the gradient buffer of a tensor (given by its `ghost()`) out of a `Gradients`,
/// allocating a zeroed one if there is none and leaving an empty one in its place, so a backward
/// pass can hold several gradients mutably at once without copying them; `put_grad!` gives it
/// back. (A macro because dfdx's ghost type cannot be named outside dfdx.) Used inside a
/// backward op, whose error type is `CpuError`.
macro_rules! take_grad {
    ($grads:expr, $ghost:expr) => {
        std::mem::take(&mut **$grads.get_or_alloc_mut(&$ghost)?)
    };
}

/// Puts back a gradient buffer taken with `take_grad!`.
macro_rules! put_grad {
    ($grads:expr, $ghost:expr, $values:expr) => {
        **$grads.get_or_alloc_mut(&$ghost)? = $values
    };
}

pub(crate) use {put_grad, take_grad};

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_permuted_views_in_their_own_order() {
        let dev: Cpu = Default::default();
        let t = dev.tensor([[1.0f32, 2.0, 3.0], [4.0, 5.0, 6.0]]);
        assert_eq!(read(&t).unwrap(), [1.0, 2.0, 3.0, 4.0, 5.0, 6.0]);
        let p: Plain<Rank2<3, 2>> = t.clone().permute();
        assert_eq!(read(&p).unwrap(), [1.0, 4.0, 2.0, 5.0, 3.0, 6.0]);
        let b: Plain<Rank2<2, 3>> = dev.tensor([7.0f32, 8.0, 9.0]).broadcast();
        assert_eq!(read(&b).unwrap(), [7.0, 8.0, 9.0, 7.0, 8.0, 9.0]);
    }

    #[test]
    fn a_made_tensors_copy_is_taken_once_and_its_views_read_in_their_own_order() {
        let dev: Cpu = Default::default();
        let values: Vec<f32> = (0..6).map(|i| i as f32).collect();
        let t: Plain<Rank2<2, 3>> = made(&dev, values.clone(), Rank2::<2, 3>::default()).unwrap();
        // A permuted view starts at the same address but is read in its own order.
        let p: Plain<Rank2<3, 2>> = t.clone().permute();
        assert_eq!(read(&p).unwrap(), [0.0, 3.0, 1.0, 4.0, 2.0, 5.0]);
        let first = read_shared(&t).unwrap();
        assert_eq!(*first, values);
        // The kept copy was taken by the first read (no longer held by the table).
        assert_eq!(Arc::strong_count(&first), 1);
        assert_eq!(read(&t).unwrap(), values, "a second read goes through dfdx");

        let (t, kept) = made_keeping(&dev, values.clone(), (6,), true).unwrap();
        let kept = kept.unwrap();
        let (taken, _, _) = take_input_shared(t.leaky_traced()).unwrap();
        assert!(
            Arc::ptr_eq(&kept, &taken),
            "the op and the next op share one copy"
        );
        let (t, _) = made_keeping(&dev, values.clone(), (6,), true).unwrap();
        let mut mine = read(&t).unwrap();
        mine[0] = 99.0;
        assert_eq!(
            t.as_vec(),
            values,
            "changing one's own copy leaves the tensor"
        );
    }

    #[test]
    fn made_copies_are_bounded() {
        let dev: Cpu = Default::default();
        let tensors: Vec<Plain<(usize,)>> = (0..MADE_KEPT + 4)
            .map(|i| made(&dev, vec![i as f32; 5], (5,)).unwrap())
            .collect();
        assert!(MADE.with_borrow(VecDeque::len) <= MADE_KEPT);
        for (i, t) in tensors.iter().enumerate() {
            assert_eq!(
                read(t).unwrap(),
                vec![i as f32; 5],
                "kept or not, the right values"
            );
        }
    }

    #[test]
    fn buffers_given_back_are_handed_out_again_a_bounded_number() {
        let mut spare = Spare::new();
        spare.keep(vec![7.0; 100]);
        assert_eq!(spare.take(100), Some(vec![7.0; 100]));
        assert_eq!(spare.take(100), None);
        spare.keep(vec![7.0; 100]);
        assert_eq!(spare.take(101), None, "only the same length");

        let mut spare = Spare::new();
        for _ in 0..KEPT_PER_LENGTH + 5 {
            spare.keep(vec![3.0; 10]);
        }
        let kept = std::iter::from_fn(|| spare.take(10)).count();
        assert_eq!(kept, KEPT_PER_LENGTH);
        assert_eq!(spare.values, 0);

        let mut spare = Spare::new();
        spare.keep(vec![1.0; KEPT_VALUES - 10]);
        spare.keep(vec![1.0; 11]);
        assert_eq!(spare.take(11), None, "over the budget: let go");
        spare.keep(vec![1.0; 10]);
        assert_eq!(spare.take(10).map(|b| b.len()), Some(10));
    }

    #[test]
    fn a_reused_buffers_old_values_never_show_through_a_read() {
        const LEN: usize = 12_347;
        recycle([vec![-1.0; LEN]]);
        let dev: Cpu = Default::default();
        let t = dev.tensor_from_vec((0..LEN).map(|i| i as f32).collect(), (LEN,));
        let values = read(&t).unwrap();
        assert!(values.iter().enumerate().all(|(i, &v)| v == i as f32));
    }

    #[test]
    fn gradients_taken_and_put_back_stay_in_place() {
        let dev: Cpu = Default::default();
        let t = dev.tensor([1.0f32, 2.0]);
        let mut grads = Gradients::leaky();
        let ghost = t.ghost();
        let run = |grads: &mut Gradients<f32, Cpu>| -> Result<(), CpuError> {
            let mut g: Vec<f32> = take_grad!(grads, ghost);
            assert_eq!(g, [0.0, 0.0]);
            g[1] = 5.0;
            put_grad!(grads, ghost, g);
            Ok(())
        };
        run(&mut grads).unwrap();
        assert_eq!(grads.get(&t).array(), [0.0, 5.0]);
    }
}
