//! Opt-in timing of the engine's ops by kind (`bench` turns it on): each op's forward and
//! backward pass, the optimiser, the weight average and the copies across the dfdx boundary add
//! their own wall time (time in a nested timed op counts for that op, not its caller; time on
//! two threads side by side counts half on each) to process-wide totals. Off, a timed call
//! costs one relaxed atomic load.

use std::cell::RefCell;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::{Duration, Instant};

/// What a timed piece of work is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum OpKind {
    Dense,
    Conv,
    ConvTranspose,
    BatchNorm,
    Projection,
    Pool,
    Loss,
    Adam,
    Average,
    /// Reading tensors out of dfdx and laying batches out (`ops::read`, the real+fake join).
    Copies,
}

impl OpKind {
    pub const ALL: [OpKind; 10] = [
        OpKind::Dense,
        OpKind::Conv,
        OpKind::ConvTranspose,
        OpKind::BatchNorm,
        OpKind::Projection,
        OpKind::Pool,
        OpKind::Loss,
        OpKind::Adam,
        OpKind::Average,
        OpKind::Copies,
    ];

    pub fn name(self) -> &'static str {
        match self {
            OpKind::Dense => "dense",
            OpKind::Conv => "conv",
            OpKind::ConvTranspose => "convT",
            OpKind::BatchNorm => "batchnorm",
            OpKind::Projection => "projection",
            OpKind::Pool => "pool",
            OpKind::Loss => "loss",
            OpKind::Adam => "adam",
            OpKind::Average => "ema",
            OpKind::Copies => "copies",
        }
    }
}

/// Which pass of an op.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Pass {
    Forward,
    Backward,
}

const SLOTS: usize = OpKind::ALL.len() * 2;

static ENABLED: AtomicBool = AtomicBool::new(false);
static NANOS: [AtomicU64; SLOTS] = [const { AtomicU64::new(0) }; SLOTS];

thread_local! {
    /// Time spent in timed work nested inside each open timed call on this thread.
    static NESTED: RefCell<Vec<Duration>> = const { RefCell::new(Vec::new()) };
}

fn slot(kind: OpKind, pass: Pass) -> usize {
    kind as usize * 2 + usize::from(pass == Pass::Backward)
}

/// Runs `work`, adding its time (less that of timed work inside it) to `kind`'s `pass` when
/// timing is on.
pub fn timed<R>(kind: OpKind, pass: Pass, work: impl FnOnce() -> R) -> R {
    if !ENABLED.load(Ordering::Relaxed) {
        return work();
    }
    NESTED.with(|n| n.borrow_mut().push(Duration::ZERO));
    let start = Instant::now();
    let result = work();
    let spent = start.elapsed();
    NESTED.with(|n| {
        let mut n = n.borrow_mut();
        let inner = n.pop().unwrap_or_default();
        if let Some(outer) = n.last_mut() {
            *outer += spent;
        }
        // Work on two threads at once shares the wall time: each counts for half of it.
        let own = spent.saturating_sub(inner) / super::kernels::threads_side_by_side();
        let nanos = u64::try_from(own.as_nanos()).unwrap_or(u64::MAX);
        NANOS[slot(kind, pass)].fetch_add(nanos, Ordering::Relaxed);
    });
    result
}

/// Turns timing on or off; turning it on clears the totals.
pub fn set_enabled(on: bool) {
    if on {
        NANOS.iter().for_each(|n| n.store(0, Ordering::Relaxed));
    }
    ENABLED.store(on, Ordering::Relaxed);
}

/// One kind's totals since timing was turned on.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct OpTime {
    pub kind: OpKind,
    pub forward: Duration,
    pub backward: Duration,
}

/// Every kind's totals since timing was turned on, in `OpKind::ALL`'s order.
pub fn totals() -> Vec<OpTime> {
    let get = |kind, pass| Duration::from_nanos(NANOS[slot(kind, pass)].load(Ordering::Relaxed));
    OpKind::ALL
        .iter()
        .map(|&kind| OpTime {
            kind,
            forward: get(kind, Pass::Forward),
            backward: get(kind, Pass::Backward),
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Nested time goes to the inner kind only. Other tests may run ops while timing is on, so
    /// this one times slots no op uses: the backward pass of Adam and of the average.
    #[test]
    fn nested_work_counts_for_the_inner_kind() {
        set_enabled(true);
        let spin = |d: Duration| {
            let t = Instant::now();
            while t.elapsed() < d {}
        };
        let start = Instant::now();
        timed(OpKind::Average, Pass::Backward, || {
            spin(Duration::from_millis(2));
            timed(OpKind::Adam, Pass::Backward, || {
                spin(Duration::from_millis(20))
            });
        });
        let whole = start.elapsed();
        let t = totals();
        set_enabled(false);
        let outer = t[OpKind::Average as usize].backward;
        let inner = t[OpKind::Adam as usize].backward;
        assert!(inner >= Duration::from_millis(20), "{inner:?}");
        assert!(outer >= Duration::from_millis(2), "{outer:?}");
        // Counted once: had the outer kind kept the inner time, the two would exceed the whole.
        assert!(outer + inner <= whole, "{outer:?} + {inner:?} > {whole:?}");
    }
}
