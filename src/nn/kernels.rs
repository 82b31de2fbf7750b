//! The fused kernels of the fast step: matrix products through `gemm` (AVX-512 where the CPU has
//! it), and single-pass element-wise work (bias + activation, activation gradients, Adam).
//!
//! Matrices are row-major `f32` slices. A layer's weight `w` is `out x in`, as dfdx and PyTorch
//! store it.

use std::mem::MaybeUninit;

use gemm::Parallelism;

use super::threads;

/// Defines `pub fn $name` whose body is compiled three times: for AVX-512, for AVX2 with FMA and
/// for the baseline, choosing at run time by what the CPU has. Element-wise loops then run 16 or
/// 8 lanes wide instead of 4. Every path does the same IEEE operations on each element (no
/// reordering, and a fused multiply-add only where the body asks for one with `mul_add`, which
/// the baseline computes in software), so results are bit-for-bit the same on every CPU.
macro_rules! simd_fn {
    ($(#[$meta:meta])* pub fn $name:ident($($arg:ident: $ty:ty),* $(,)?) $body:block) => {
        $(#[$meta])*
        pub fn $name($($arg: $ty),*) {
            #[inline(always)]
            fn body($($arg: $ty),*) $body
            #[cfg(target_arch = "x86_64")]
            {
                #[target_feature(enable = "avx512f")]
                fn avx512($($arg: $ty),*) {
                    body($($arg),*)
                }
                #[target_feature(enable = "avx2,fma")]
                fn avx2($($arg: $ty),*) {
                    body($($arg),*)
                }
                if std::arch::is_x86_feature_detected!("avx512f") {
                    // SAFETY: the CPU has AVX-512F, checked just above.
                    return unsafe { avx512($($arg),*) };
                }
                if std::arch::is_x86_feature_detected!("avx2")
                    && std::arch::is_x86_feature_detected!("fma")
                {
                    // SAFETY: the CPU has AVX2 and FMA, checked just above.
                    return unsafe { avx2($($arg),*) };
                }
            }
            body($($arg),*)
        }
    };
}

pub(crate) use simd_fn;

/// Products smaller than this many multiply-adds run on one thread: below it, handing work to a
/// second thread costs more than it saves (measured on the step's shapes).
const PARALLEL_MIN_WORK: usize = 16 * 1024 * 1024;

thread_local! {
    /// Set while this thread runs one side of a `side_by_side` (for the op timings only).
    static SIDE_BY_SIDE: std::cell::Cell<bool> = const { std::cell::Cell::new(false) };
}

/// Runs `a` here and `b` on the pool's other thread when it is free (else here, after `a`).
/// Work inside either is cut in pieces again where it pays (`split_product`, `half_point`):
/// while the other thread is busy with its own side, the pieces run here one after the other
/// (a join whose half nobody takes costs 30-40 ns on this kind of machine); once it is free,
/// it takes them over. So two sides that end at different times, because they differ or
/// because the machine serves the threads unequally, still keep both threads busy to the end.
/// (Keeping each side on one thread, its products whole, left a thread idle for 0.5-1.7 ms of
/// each `cgan` step's 9-10 ms passes of D.)
pub fn side_by_side<A: FnOnce() + Send, B: FnOnce() + Send>(a: A, b: B) {
    rayon::join(|| one_side(a), || one_side(b));
}

/// `side_by_side` for an `a` that must stay on this thread (it records on a tape, which is not
/// `Send`), returning what it gives: `b` is offered to the pool's other thread first, and runs
/// here after `a` if nobody took it.
pub fn beside<R>(a: impl FnOnce() -> R, b: impl FnOnce() + Send) -> R {
    rayon::in_place_scope(|scope| {
        scope.spawn(|_| one_side(b));
        one_side(a)
    })
}

/// Runs `f` as one side of `side_by_side` or `beside` (or work handed to the pool beside a
/// pass, `deferred`). A thread waiting for the other side may run it itself, inside its own:
/// hence the flag is put back as it was, not cleared.
pub(crate) fn one_side<R>(f: impl FnOnce() -> R) -> R {
    let was = SIDE_BY_SIDE.with(|s| s.replace(true));
    let r = f();
    SIDE_BY_SIDE.with(|s| s.set(was));
    r
}

/// How many threads share the wall time of this one's work, for the op timings: 2 inside one
/// side of `side_by_side` on a pool of two or more threads (each side has a thread, mostly),
/// else 1.
pub fn threads_side_by_side() -> u32 {
    if SIDE_BY_SIDE.with(|s| s.get()) && rayon::current_num_threads() > 1 {
        2
    } else {
        1
    }
}

/// Runs `work` on this pool thread while another pool thread stays awake for its whole
/// length, taking the pieces of work `work` hands out instead of falling asleep between them.
/// Waking a sleeping thread costs a system call on each side, several times per step.
fn with_helper_awake<R: Send>(work: impl FnOnce() -> R + Send) -> R {
    use std::sync::atomic::{AtomicBool, Ordering};
    let done = AtomicBool::new(false);
    let (result, ()) = rayon::join(
        || {
            let r = work();
            done.store(true, Ordering::Release);
            r
        },
        // Stolen first (thieves take the oldest job), so it never sits under `work`'s own
        // jobs on this thread; if nobody steals it, it runs after `work` and returns at once.
        || help_until(&done),
    );
    result
}

/// Takes up pool work, or spins, until `done` is set (by work on another thread).
pub(crate) fn help_until(done: &std::sync::atomic::AtomicBool) {
    while !done.load(std::sync::atomic::Ordering::Acquire) {
        if rayon::yield_now() != Some(rayon::Yield::Executed) {
            std::hint::spin_loop();
        }
    }
}

/// Runs `work` (a training step) on the threads `threads` chooses for it, on a thread of the
/// pool with the pool's other thread kept awake: the products in it then hand work over
/// directly, instead of each waking the pool from outside and sleeping until it is done
/// (measured on the reference step: 6.1 -> 4.8 ms).
pub fn in_pool<R: Send>(work: impl FnOnce() -> R + Send) -> R {
    threads::run_step(|| rayon::scope(|_| with_helper_awake(work)))
}

/// `in_pool` for work other than a training step (sampling): on the threads steps run on now.
pub fn in_pool_untimed<R: Send>(work: impl FnOnce() -> R + Send) -> R {
    threads::run(|| rayon::scope(|_| with_helper_awake(work)))
}

fn parallelism(m: usize, n: usize, k: usize) -> Parallelism {
    let threads = rayon::current_num_threads();
    if threads > 1 && m * n * k >= PARALLEL_MIN_WORK {
        Parallelism::Rayon(threads)
    } else {
        Parallelism::None
    }
}

/// One `gemm` call: `dst (m x n) = lhs (m x k) * rhs (k x n)`, each operand given by its
/// strides (`cs` between columns, `rs` between rows), or `dst += ...` when `accumulate`.
#[allow(clippy::too_many_arguments)]
fn product(
    m: usize,
    n: usize,
    k: usize,
    dst: &mut [MaybeUninit<f32>],
    (dst_cs, dst_rs): (usize, usize),
    lhs: &[f32],
    (lhs_cs, lhs_rs): (usize, usize),
    rhs: &[f32],
    (rhs_cs, rhs_rs): (usize, usize),
    accumulate: bool,
) {
    let last = |cs: usize, rs: usize, rows: usize, cols: usize| {
        if rows == 0 || cols == 0 {
            0
        } else {
            (rows - 1) * rs + (cols - 1) * cs + 1
        }
    };
    // The shapes come from const generics and the batch size; a mismatch is a bug here, and
    // the checks keep the raw-pointer call below in bounds.
    assert!(
        dst.len() >= last(dst_cs, dst_rs, m, n),
        "gemm: dst too short"
    );
    assert!(
        lhs.len() >= last(lhs_cs, lhs_rs, m, k),
        "gemm: lhs too short"
    );
    assert!(
        rhs.len() >= last(rhs_cs, rhs_rs, k, n),
        "gemm: rhs too short"
    );
    let operands = Operands {
        dst: dst.as_mut_ptr().cast::<f32>(),
        dst_strides: (dst_cs, dst_rs),
        lhs: lhs.as_ptr(),
        lhs_strides: (lhs_cs, lhs_rs),
        rhs: rhs.as_ptr(),
        rhs_strides: (rhs_cs, rhs_rs),
        accumulate,
    };
    // SAFETY: the asserts above keep every element gemm touches inside the slices; `dst` is a
    // unique borrow, so it overlaps neither input. Without `accumulate` gemm does not read
    // `dst` (it writes every element first), so `dst` may be uninitialised then.
    unsafe { split_product(m, n, k, operands) }
}

/// A product's operands as raw parts, so that halves of it can go to two threads.
#[derive(Clone, Copy)]
struct Operands {
    dst: *mut f32,
    dst_strides: (usize, usize),
    lhs: *const f32,
    lhs_strides: (usize, usize),
    rhs: *const f32,
    rhs_strides: (usize, usize),
    accumulate: bool,
}

// SAFETY: the halves `split_product` hands to two threads write disjoint parts of `dst` and only
// read `lhs` and `rhs`.
unsafe impl Send for Operands {}

impl Operands {
    /// The product from output row `row` and column `col` on.
    fn from(self, row: usize, col: usize) -> Operands {
        Operands {
            dst: self
                .dst
                .wrapping_add(row * self.dst_strides.1 + col * self.dst_strides.0),
            lhs: self.lhs.wrapping_add(row * self.lhs_strides.1),
            rhs: self.rhs.wrapping_add(col * self.rhs_strides.0),
            ..self
        }
    }
}

/// Products of at least this many multiply-adds are cut in two halves that run on two threads
/// (each with no threads of its own): for the step's shapes, rows 64 to 6272 by columns 1 to
/// 784, this scales better than gemm's own splitting.
const SPLIT_MIN_WORK: usize = 1 << 20;

/// Products of at least this many multiply-adds go in four pieces, not two, so a thread that
/// ends its pieces early takes over the other's last one instead of waiting for it.
const FOUR_PIECES_MIN_WORK: usize = 32 << 20;

/// `dst = lhs * rhs` (or `+=`), cut along its longer output side into halves side by side when
/// it is large enough and there are two threads, and each half in two again when the product is
/// larger still (`FOUR_PIECES_MIN_WORK`). Rows are cut at multiples of 64 (the rows gemm's
/// AVX-512 kernel takes at once) where there are enough of them: a product of whole tiles, as
/// the step's 3136-row ones, is cut into pieces of whole tiles, none ending in a narrower
/// kernel.
///
/// # Safety
/// The operands, with their strides, must cover `m x n`, `m x k` and `k x n` elements, `dst`
/// must overlap neither input, and without `accumulate` `dst` may be uninitialised.
unsafe fn split_product(m: usize, n: usize, k: usize, ops: Operands) {
    let threads = rayon::current_num_threads();
    let work = m * n * k;
    if threads > 1 && work >= SPLIT_MIN_WORK && m.max(n) >= 32 {
        // SAFETY: as the caller promises.
        unsafe { in_pieces(m, n, k, ops, work >= FOUR_PIECES_MIN_WORK) }
    } else {
        // SAFETY: as the caller promises.
        unsafe { gemm_call(m, n, k, ops, parallelism(m, n, k)) }
    }
}

/// The product in two halves side by side, each cut in two again when `again`.
///
/// # Safety
/// As `split_product`.
unsafe fn in_pieces(m: usize, n: usize, k: usize, ops: Operands, again: bool) {
    let ((m1, n1), (m2, n2), second) = if m >= n {
        let tile = if m >= 128 { 64 } else { 16 };
        let half = ((m / 2 + tile / 2) / tile * tile).clamp(tile.min(m), m);
        ((half, n), (m - half, n), ops.from(half, 0))
    } else {
        let half = (n / 2).next_multiple_of(16).min(n);
        ((m, half), (m, n - half), ops.from(0, half))
    };
    let piece = move |m: usize, n: usize, ops: Operands| {
        if again {
            // SAFETY: a sub-rectangle of the caller's product.
            unsafe { in_pieces(m, n, k, ops, false) }
        } else {
            // SAFETY: a sub-rectangle of the caller's product.
            unsafe { gemm_call(m, n, k, ops, Parallelism::None) }
        }
    };
    // The two halves are disjoint in `dst`.
    side_by_side(move || piece(m1, n1, ops), move || piece(m2, n2, second));
}

/// One `gemm::gemm` call on `ops`.
///
/// # Safety
/// As `split_product`.
unsafe fn gemm_call(m: usize, n: usize, k: usize, ops: Operands, parallelism: Parallelism) {
    if m == 0 || n == 0 {
        return;
    }
    // SAFETY: as the caller promises.
    unsafe {
        gemm::gemm(
            m,
            n,
            k,
            ops.dst,
            ops.dst_strides.0 as isize,
            ops.dst_strides.1 as isize,
            ops.accumulate,
            ops.lhs,
            ops.lhs_strides.0 as isize,
            ops.lhs_strides.1 as isize,
            ops.rhs,
            ops.rhs_strides.0 as isize,
            ops.rhs_strides.1 as isize,
            1.0,
            1.0,
            false,
            false,
            false,
            parallelism,
        );
    }
}

/// `dst` as a slice gemm may write to.
fn written(dst: &mut [f32]) -> &mut [MaybeUninit<f32>] {
    // SAFETY: same layout; gemm writes only initialised values through it.
    unsafe { &mut *(dst as *mut [f32] as *mut [MaybeUninit<f32>]) }
}

/// `y (b x o) = x (b x i) * w^T`, for a weight `w` of `o x i`.
pub fn forward(x: &[f32], w: &[f32], y: &mut [f32], b: usize, i: usize, o: usize) {
    product(b, o, i, written(y), (1, o), x, (1, i), w, (i, 1), false);
}

/// `forward` into a new buffer, never zero-filled (the product writes every value).
pub fn forward_new(x: &[f32], w: &[f32], b: usize, i: usize, o: usize) -> Vec<f32> {
    let len = b * o;
    let mut y = Vec::with_capacity(len);
    product(
        b,
        o,
        i,
        &mut y.spare_capacity_mut()[..len],
        (1, o),
        x,
        (1, i),
        w,
        (i, 1),
        false,
    );
    // SAFETY: a product without `accumulate` writes all `b x o` values of its destination.
    unsafe { y.set_len(len) };
    y
}

/// `dx (b x i) = dy (b x o) * w`.
pub fn input_grad(dy: &[f32], w: &[f32], dx: &mut [f32], b: usize, i: usize, o: usize) {
    product(b, i, o, written(dx), (1, i), dy, (1, o), w, (1, i), false);
}

/// `dx (b x i) += dy (b x o) * w`.
pub fn input_grad_add(dy: &[f32], w: &[f32], dx: &mut [f32], b: usize, i: usize, o: usize) {
    product(b, i, o, written(dx), (1, i), dy, (1, o), w, (1, i), true);
}

/// `dw (o x i) = dy^T * x`, summed over the batch; `+=` when `accumulate`.
pub fn weight_grad(
    dy: &[f32],
    x: &[f32],
    dw: &mut [f32],
    b: usize,
    i: usize,
    o: usize,
    accumulate: bool,
) {
    product(
        o,
        i,
        b,
        written(dw),
        (1, i),
        dy,
        (o, 1),
        x,
        (1, i),
        accumulate,
    );
}

simd_fn! {
/// `db[j] += dy[., lo + j]` over rows of `stride` values, in row order, in f32.
pub fn bias_grad_part(dy: &[f32], stride: usize, lo: usize, db: &mut [f32]) {
    for row in dy.chunks_exact(stride.max(1)) {
        for (acc, &g) in db.iter_mut().zip(&row[lo..]) {
            *acc += g;
        }
    }
}
}

/// `db[j] = sum over rows of dy[., j]`; `+=` when `accumulate`. Sums in row order, in f32, as a
/// plain reduction would; the two halves of the columns side by side when it pays, each into a
/// copy of its own (not into a cache line the other half writes too).
pub fn bias_grad(dy: &[f32], db: &mut [f32], accumulate: bool) {
    if !accumulate {
        db.iter_mut().for_each(|v| *v = 0.0);
    }
    let o = db.len();
    let pays = o >= 16 && half_point(dy.len(), o).is_some();
    if !pays {
        return bias_grad_part(dy, o, 0, db);
    }
    let at = o / 2;
    let (a, b) = db.split_at_mut(at);
    let own = |lo: usize, part: &mut [f32]| {
        let mut mine = part.to_vec();
        bias_grad_part(dy, o, lo, &mut mine);
        part.copy_from_slice(&mine);
    };
    side_by_side(|| own(0, a), || own(at, b));
}

simd_fn! {
/// `y = leaky_relu(y + bias)` row by row.
pub fn bias_leaky_relu_part(y: &mut [f32], bias: &[f32], slope: f32) {
    for row in y.chunks_exact_mut(bias.len().max(1)) {
        for (v, &b) in row.iter_mut().zip(bias) {
            let x = *v + b;
            *v = if x < 0.0 { x * slope } else { x };
        }
    }
}
}

simd_fn! {
/// `y = tanh(y + bias)` row by row, with `fast_tanh`.
pub fn bias_tanh_part(y: &mut [f32], bias: &[f32]) {
    for row in y.chunks_exact_mut(bias.len().max(1)) {
        for (v, &b) in row.iter_mut().zip(bias) {
            *v = fast_tanh(*v + b);
        }
    }
}
}

simd_fn! {
/// `y = y + bias` row by row.
pub fn add_bias_part(y: &mut [f32], bias: &[f32]) {
    for row in y.chunks_exact_mut(bias.len().max(1)) {
        for (v, &b) in row.iter_mut().zip(bias) {
            *v += b;
        }
    }
}
}

simd_fn! {
/// Gradient through a LeakyReLU, from its output `y` (the sign of the input is the sign of the
/// output): `g *= 1` where `y > 0`, else `slope`.
pub fn leaky_relu_grad_part(g: &mut [f32], y: &[f32], slope: f32) {
    for (g, &y) in g.iter_mut().zip(y) {
        *g *= if y > 0.0 { 1.0 } else { slope };
    }
}
}

simd_fn! {
/// Gradient through tanh, from its output: `g *= 1 - y^2`.
pub fn tanh_grad_part(g: &mut [f32], y: &[f32]) {
    for (g, &y) in g.iter_mut().zip(y) {
        *g *= 1.0 - y * y;
    }
}
}

/// Element-wise passes over at least this many values are cut in two halves that run side by
/// side (each value is computed alike either way, so results do not change).
const HALVES_MIN_VALUES: usize = 1 << 15;

/// Where to cut `len` values in rows of `row` into two halves, when it pays to: there are two
/// threads and enough values.
fn half_point(len: usize, row: usize) -> Option<usize> {
    let row = row.max(1);
    let pays = len >= HALVES_MIN_VALUES && rayon::current_num_threads() > 1;
    pays.then(|| (len / row / 2) * row)
        .filter(|&at| at > 0 && at < len)
}

/// `f(y)`, on the two halves of `y` (cut between rows of `row`) side by side when it pays.
fn on_halves(y: &mut [f32], row: usize, f: impl Fn(&mut [f32]) + Sync) {
    match half_point(y.len(), row) {
        Some(at) => {
            let (a, b) = y.split_at_mut(at);
            side_by_side(|| f(a), || f(b));
        }
        None => f(y),
    }
}

/// `sums(0..at)` and `sums(at..items)` for the two halves of `items` (`at` half of them), side by
/// side, the second then added into the first: the same values whether the halves run on one
/// thread or two (a weight gradient summed image by image within each half).
pub fn summed_over_halves(
    items: usize,
    sums: impl Fn(std::ops::Range<usize>) -> Vec<f32> + Sync,
) -> Vec<f32> {
    let at = items / 2;
    let (mut first, mut second) = (Vec::new(), Vec::new());
    side_by_side(|| first = sums(0..at), || second = sums(at..items));
    for (f, s) in first.iter_mut().zip(&second) {
        *f += s;
    }
    first
}

/// `f(dst part, src part)` on the two halves of a batch of items, `dst_item` values of `dst` and
/// `src_item` of `src` each, cut between items and run side by side when it pays.
pub fn on_item_halves<T: Send>(
    dst: &mut [T],
    dst_item: usize,
    src: &[f32],
    src_item: usize,
    f: impl Fn(&mut [T], &[f32]) + Sync,
) {
    on_labelled_item_halves(dst, dst_item, src, src_item, None, |d, s, _| f(d, s));
}

/// `on_item_halves`, also cutting `labels` (one per item, when given) where the items are cut:
/// `f(dst part, src part, labels part)`.
fn on_labelled_item_halves<T: Send>(
    dst: &mut [T],
    dst_item: usize,
    src: &[f32],
    src_item: usize,
    labels: Option<&[usize]>,
    f: impl Fn(&mut [T], &[f32], &[usize]) + Sync,
) {
    let (dst_item, src_item) = (dst_item.max(1), src_item.max(1));
    let items = (dst.len() / dst_item)
        .min(src.len() / src_item)
        .min(labels.map_or(usize::MAX, <[usize]>::len));
    match half_point(items * dst_item.max(src_item), 1) {
        Some(_) if items >= 2 => {
            let at = items / 2;
            let (d1, d2) = dst.split_at_mut(at * dst_item);
            let (s1, s2) = src.split_at(at * src_item);
            let (y1, y2) = labels.map_or((&[][..], &[][..]), |y| y.split_at(at));
            side_by_side(|| f(d1, s1, y1), || f(d2, s2, y2));
        }
        _ => f(dst, src, labels.unwrap_or(&[])),
    }
}

/// Rows shorter than this are passed over several at a time (`on_bias_rows`).
const SHORT_ROW: usize = 16;

/// `f(rows, bias)` over the rows of `y`, each of `bias.len()` values, on halves side by side when
/// it pays. Short rows (one channel's images) go several at a time, with the bias repeated to
/// match: a loop over a row of one value does not vectorise (it cost 7 ns a value in G's last
/// layer), and each value is computed alike either way.
fn on_bias_rows(y: &mut [f32], bias: &[f32], f: impl Fn(&mut [f32], &[f32]) + Sync) {
    let c = bias.len();
    if c == 0 || c >= SHORT_ROW {
        return on_halves(y, c, |y| f(y, bias));
    }
    let wide = bias.repeat((4 * SHORT_ROW).div_ceil(c));
    let whole = y.len() / wide.len() * wide.len();
    let (body, tail) = y.split_at_mut(whole);
    on_halves(body, wide.len(), |y| f(y, &wide));
    f(tail, bias);
}

/// `bias_leaky_relu_part` over the rows of `y` (`on_bias_rows`).
pub fn bias_leaky_relu(y: &mut [f32], bias: &[f32], slope: f32) {
    on_bias_rows(y, bias, |y, bias| bias_leaky_relu_part(y, bias, slope));
}

/// `bias_tanh_part` over the rows of `y` (`on_bias_rows`).
pub fn bias_tanh(y: &mut [f32], bias: &[f32]) {
    on_bias_rows(y, bias, bias_tanh_part);
}

/// `add_bias_part` over the rows of `y` (`on_bias_rows`).
pub fn add_bias(y: &mut [f32], bias: &[f32]) {
    on_bias_rows(y, bias, add_bias_part);
}

/// `leaky_relu_grad_part` on halves, side by side when it pays.
pub fn leaky_relu_grad(g: &mut [f32], y: &[f32], slope: f32) {
    on_item_halves(g, 1, y, 1, |g, y| leaky_relu_grad_part(g, y, slope));
}

/// `tanh_grad_part` on halves, side by side when it pays.
pub fn tanh_grad(g: &mut [f32], y: &[f32]) {
    on_item_halves(g, 1, y, 1, tanh_grad_part);
}

/// `dst = src`, on halves side by side when it pays.
pub fn copy(dst: &mut [f32], src: &[f32]) {
    on_item_halves(dst, 1, src, 1, |d, s| d.copy_from_slice(s));
}

/// A copy of `src` in a new buffer, never zero-filled, on halves side by side when it pays.
pub fn copy_new(src: &[f32]) -> Vec<f32> {
    let len = src.len();
    let mut dst = Vec::with_capacity(len);
    on_item_halves(&mut dst.spare_capacity_mut()[..len], 1, src, 1, |d, s| {
        d.write_copy_of_slice(s);
    });
    // SAFETY: the halves (or the whole) cover all `len` values, as `src` has `len` of them.
    unsafe { dst.set_len(len) };
    dst
}

/// `add_into_part` on halves, side by side when it pays.
pub fn add_into(dst: &mut [f32], src: &[f32]) {
    on_item_halves(dst, 1, src, 1, add_into_part);
}

/// Where per-channel sums over `len` values in rows of `c` cut the rows in two halves, whose
/// sums are then added: always the same place, on one thread or two, so the sums are too.
fn sum_halves_at(len: usize, c: usize) -> usize {
    len / c.max(1) / 2 * c
}

/// Per-channel sums over two halves of `len` values in rows of `c = sums[0].len()`: `first` and
/// `second` each add one half's into zeroed buffers of their own (side by side when it pays), and
/// `first`'s plus `second`'s are then added into each of `sums`.
fn sums_of_halves<const K: usize>(
    len: usize,
    sums: [&mut [f64]; K],
    first: impl FnOnce(&mut [Vec<f64>; K]) + Send,
    second: impl FnOnce(&mut [Vec<f64>; K]) + Send,
) {
    let c = sums.first().map_or(0, |s| s.len());
    let zeros = || std::array::from_fn(|_| vec![0.0f64; c]);
    let (mut a, mut b): ([Vec<f64>; K], [Vec<f64>; K]) = (zeros(), zeros());
    let (pa, pb) = (&mut a, &mut b);
    if half_point(len, c).is_some() {
        side_by_side(|| first(pa), || second(pb));
    } else {
        first(pa);
        second(pb);
    }
    for ((sum, a), b) in sums.into_iter().zip(&a).zip(&b) {
        for ((s, a), b) in sum.iter_mut().zip(a).zip(b) {
            *s += a + b;
        }
    }
}

/// `channel_sums_part` over two halves of the rows (`sum_halves_at`).
pub fn channel_sums(x: &[f32], sums: &mut [f64]) {
    let (x1, x2) = x.split_at(sum_halves_at(x.len(), sums.len()));
    sums_of_halves(
        x.len(),
        [sums],
        |[s]| channel_sums_part(x1, s),
        |[s]| channel_sums_part(x2, s),
    );
}

/// `channel_square_deviations_part` over two halves of the rows (`sum_halves_at`).
pub fn channel_square_deviations(x: &[f32], mean: &[f64], squares: &mut [f64]) {
    let (x1, x2) = x.split_at(sum_halves_at(x.len(), squares.len()));
    sums_of_halves(
        x.len(),
        [squares],
        |[s]| channel_square_deviations_part(x1, mean, s),
        |[s]| channel_square_deviations_part(x2, mean, s),
    );
}

/// `channel_grad_sums_part` over two halves of the rows (`sum_halves_at`).
pub fn channel_grad_sums(dy: &[f32], xhat: &[f32], sum_dy: &mut [f64], sum_dy_xhat: &mut [f64]) {
    let at = sum_halves_at(dy.len(), sum_dy.len());
    let ((d1, d2), (h1, h2)) = (dy.split_at(at), xhat.split_at(at.min(xhat.len())));
    sums_of_halves(
        dy.len(),
        [sum_dy, sum_dy_xhat],
        |[s, t]| channel_grad_sums_part(d1, h1, s, t),
        |[s, t]| channel_grad_sums_part(d2, h2, s, t),
    );
}

/// `leaky_grad_channel_sums_part` over two halves of the rows (`sum_halves_at`).
pub fn leaky_grad_channel_sums(
    dy: &mut [f32],
    y: &[f32],
    slope: f32,
    xhat: &[f32],
    sum_dy: &mut [f64],
    sum_dy_xhat: &mut [f64],
) {
    let len = dy.len();
    let at = sum_halves_at(len, sum_dy.len());
    let (d1, d2) = dy.split_at_mut(at);
    let ((y1, y2), (h1, h2)) = (
        y.split_at(at.min(y.len())),
        xhat.split_at(at.min(xhat.len())),
    );
    sums_of_halves(
        len,
        [sum_dy, sum_dy_xhat],
        |[s, t]| leaky_grad_channel_sums_part(d1, y1, slope, h1, s, t),
        |[s, t]| leaky_grad_channel_sums_part(d2, y2, slope, h2, s, t),
    );
}

/// Batch norm's normalisation (`normalise_rows_part`), on halves side by side when it pays.
pub fn normalise_rows(
    x: &mut [f32],
    y: &mut [MaybeUninit<f32>],
    mean: &[f32],
    inv_std: &[f32],
    scale: &[f32],
    scale_input: bool,
    leaky: Option<(&[f32], f32)>,
) {
    match half_point(x.len().min(y.len()), mean.len()) {
        Some(at) => {
            let ((x1, x2), (y1, y2)) = (x.split_at_mut(at), y.split_at_mut(at));
            side_by_side(
                || normalise_rows_part(x1, y1, mean, inv_std, scale, scale_input, leaky),
                || normalise_rows_part(x2, y2, mean, inv_std, scale, scale_input, leaky),
            );
        }
        None => normalise_rows_part(x, y, mean, inv_std, scale, scale_input, leaky),
    }
}

/// Batch norm's input gradient added into `dx` (`normalised_input_grad_part`), on halves side by
/// side when it pays.
pub fn normalised_input_grad(
    dy: &[f32],
    xhat: &[f32],
    dx: &mut [f32],
    k: &[f32],
    mean_dy: &[f32],
    mean_dy_xhat: &[f32],
) {
    match half_point(dx.len(), k.len()) {
        Some(at) => {
            let (dx1, dx2) = dx.split_at_mut(at);
            let ((dy1, dy2), (h1, h2)) = (dy.split_at(at), xhat.split_at(at));
            side_by_side(
                || normalised_input_grad_part(dy1, h1, dx1, k, mean_dy, mean_dy_xhat),
                || normalised_input_grad_part(dy2, h2, dx2, k, mean_dy, mean_dy_xhat),
            );
        }
        None => normalised_input_grad_part(dy, xhat, dx, k, mean_dy, mean_dy_xhat),
    }
}

/// tanh as a rational function (Eigen's `generic_fast_tanh_float`): within a few ulp of
/// `f32::tanh`, and a plain sequence of multiplies, adds and one divide, so a loop of it
/// vectorises where the library call does not.
#[inline(always)]
pub fn fast_tanh(x: f32) -> f32 {
    const CLAMP: f32 = 7.905_311;
    const A1: f32 = 4.893_524_6e-3;
    const A3: f32 = 6.372_619_3e-4;
    const A5: f32 = 1.485_722_4e-5;
    const A7: f32 = 5.122_297e-8;
    const A9: f32 = -8.604_672e-11;
    const A11: f32 = 2.000_188e-13;
    const A13: f32 = -2.760_768_5e-16;
    const B0: f32 = 4.893_525e-3;
    const B2: f32 = 2.268_434_7e-3;
    const B4: f32 = 1.185_347_1e-4;
    const B6: f32 = 1.198_258_4e-6;
    let x = x.clamp(-CLAMP, CLAMP);
    let x2 = x * x;
    let mut p = x2 * A13 + A11;
    p = x2 * p + A9;
    p = x2 * p + A7;
    p = x2 * p + A5;
    p = x2 * p + A3;
    p = x2 * p + A1;
    p *= x;
    let mut q = x2 * B6 + B4;
    q = x2 * q + B2;
    q = x2 * q + B0;
    p / q
}

/// Binary cross-entropy with logits against a constant target, and its gradient: returns the
/// mean loss over `logits` and writes `d(mean loss)/d(logit)` scaled by `scale` into `grad`.
/// The loss is PyTorch's stable form `max(x, 0) - x t + log(1 + exp(-|x|))`.
pub fn bce_with_logits(logits: &[f32], target: f32, grad: &mut [f32], scale: f32) -> f32 {
    let mut sum = 0.0f64;
    for (g, &x) in grad.iter_mut().zip(logits) {
        let loss = x.max(0.0) - x * target + (-x.abs()).exp().ln_1p();
        sum += loss as f64;
        *g = (sigmoid(x) - target) * scale;
    }
    (sum / logits.len().max(1) as f64) as f32
}

pub fn sigmoid(x: f32) -> f32 {
    1.0 / (1.0 + (-x).exp())
}

/// Adam's hyper-parameters for one update, precomputed as dfdx's kernel does.
#[derive(Debug, Clone, Copy)]
pub struct AdamStep {
    pub lr: f32,
    pub beta1: f32,
    pub beta2: f32,
    pub eps: f32,
    /// `1 / (1 - beta1^t)`
    pub bias1_recip: f32,
    /// `1 / (1 - beta2^t)`
    pub bias2_recip: f32,
}

impl AdamStep {
    /// The constants of update number `t` (1-based), computed in f32 like dfdx's Adam kernel.
    pub fn new(lr: f64, betas: [f64; 2], eps: f64, t: u64) -> Self {
        let t = i32::try_from(t).unwrap_or(i32::MAX);
        let (b1, b2) = (betas[0] as f32, betas[1] as f32);
        AdamStep {
            lr: lr as f32,
            beta1: b1,
            beta2: b2,
            eps: eps as f32,
            bias1_recip: (1.0 - b1.powi(t)).recip(),
            bias2_recip: (1.0 - b2.powi(t)).recip(),
        }
    }
}

simd_fn! {
    /// One Adam update's change of each parameter, `-(lr * m_hat / (sqrt(v_hat) + eps))`, in
    /// dfdx's operation order, written to `delta`; moves the moments and zeroes each gradient
    /// as it is read (dfdx's gradients accumulate, so the next step needs them zero).
    pub fn adam_delta_chunk(
        delta: &mut [MaybeUninit<f32>],
        g: &mut [f32],
        m: &mut [f32],
        v: &mut [f32],
        s: AdamStep,
    ) {
        for (((d, g), m), v) in delta.iter_mut().zip(g.iter_mut()).zip(m.iter_mut()).zip(v.iter_mut()) {
            let grad = *g;
            *g = 0.0;
            *m = *m * s.beta1 + grad * (1.0 - s.beta1);
            *v = *v * s.beta2 + grad * grad * (1.0 - s.beta2);
            let m_hat = *m * s.bias1_recip;
            let v_hat = *v * s.bias2_recip;
            d.write(-(s.lr * m_hat / (v_hat.sqrt() + s.eps)));
        }
    }
}

/// One Adam update from `grad` (left zeroed) as the change to add to each parameter, on two
/// halves side by side for large tensors. `p + delta` is bit for bit dfdx's Adam step
/// `p - lr * ...` (IEEE subtraction is the addition of the negation), so the parameter itself
/// is never read here: it is updated in place by dfdx (`Tensor::axpy`), without a copy out and
/// back.
pub fn adam_delta(grad: &mut [f32], m: &mut [f32], v: &mut [f32], s: AdamStep) -> Vec<f32> {
    let len = grad.len();
    // A shorter moment would end the zips early and leave values of `delta` unwritten.
    assert!(
        m.len() >= len && v.len() >= len,
        "adam_delta: moments too short"
    );
    let mut delta = Vec::with_capacity(len);
    let out = &mut delta.spare_capacity_mut()[..len];
    let (grad, m, v) = (&mut grad[..len], &mut m[..len], &mut v[..len]);
    match half_point(len, 16) {
        Some(at) => {
            let (d1, d2) = out.split_at_mut(at);
            let ((g1, g2), (m1, m2), (v1, v2)) = (
                grad.split_at_mut(at),
                m.split_at_mut(at),
                v.split_at_mut(at),
            );
            side_by_side(
                || adam_delta_chunk(d1, g1, m1, v1, s),
                || adam_delta_chunk(d2, g2, m2, v2, s),
            );
        }
        None => adam_delta_chunk(out, grad, m, v, s),
    }
    // SAFETY: the halves (or the whole) cover `..len` (gradient and moments have at least `len`
    // values, asserted above) and each writes every value of its part of `delta`.
    unsafe { delta.set_len(len) };
    delta
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::train::testing::values;

    fn naive_matmul(a: &[f32], b: &[f32], m: usize, k: usize, n: usize) -> Vec<f32> {
        let mut c = vec![0.0f32; m * n];
        for r in 0..m {
            for col in 0..n {
                let mut acc = 0.0f64;
                for j in 0..k {
                    acc += a[r * k + j] as f64 * b[j * n + col] as f64;
                }
                c[r * n + col] = acc as f32;
            }
        }
        c
    }

    fn transpose(a: &[f32], rows: usize, cols: usize) -> Vec<f32> {
        let mut t = vec![0.0; a.len()];
        for r in 0..rows {
            for c in 0..cols {
                t[c * rows + r] = a[r * cols + c];
            }
        }
        t
    }

    fn assert_close(a: &[f32], b: &[f32], tol: f32) {
        assert_eq!(a.len(), b.len());
        for (i, (x, y)) in a.iter().zip(b).enumerate() {
            assert!((x - y).abs() <= tol * (1.0 + y.abs()), "at {i}: {x} vs {y}");
        }
    }

    #[test]
    fn the_three_products_match_a_naive_matmul() {
        // Sizes big enough to take the threaded path, and odd ones.
        for &(b, i, o) in &[(3usize, 5usize, 7usize), (64, 512, 784), (37, 100, 256)] {
            let x = values(b * i, 1);
            let w = values(o * i, 2);
            let dy = values(b * o, 3);
            let mut y = vec![0.0; b * o];
            forward(&x, &w, &mut y, b, i, o);
            assert_close(&y, &naive_matmul(&x, &transpose(&w, o, i), b, i, o), 1e-4);
            let mut dx = vec![0.0; b * i];
            input_grad(&dy, &w, &mut dx, b, i, o);
            assert_close(&dx, &naive_matmul(&dy, &w, b, o, i), 1e-4);
            let mut dw = vec![1.0; o * i];
            weight_grad(&dy, &x, &mut dw, b, i, o, false);
            let expect = naive_matmul(&transpose(&dy, b, o), &x, o, b, i);
            assert_close(&dw, &expect, 1e-4);
            weight_grad(&dy, &x, &mut dw, b, i, o, true);
            let twice: Vec<f32> = expect.iter().map(|v| 2.0 * v).collect();
            assert_close(&dw, &twice, 1e-4);
        }
    }

    #[test]
    fn fast_tanh_is_within_a_few_ulp_of_tanh() {
        let mut worst = 0.0f32;
        let mut x = -12.0f32;
        while x <= 12.0 {
            let err = (fast_tanh(x) - x.tanh()).abs();
            worst = worst.max(err);
            x += 1.0 / 4096.0;
        }
        assert!(worst < 5e-7, "worst abs error {worst}");
        assert_eq!(fast_tanh(0.0), 0.0);
        assert_eq!(fast_tanh(100.0), 1.0);
        assert_eq!(fast_tanh(-100.0), -1.0);
    }

    #[test]
    fn element_wise_kernels() {
        let mut y = vec![1.0, -1.0, 0.5, -0.5];
        bias_leaky_relu(&mut y, &[0.0, 0.5], 0.2);
        assert_eq!(y, [1.0, -0.1, 0.5, 0.0]);
        let mut g = vec![1.0; 4];
        leaky_relu_grad(&mut g, &y, 0.2);
        assert_eq!(g, [1.0, 0.2, 1.0, 0.2]);
        let mut g = vec![2.0, 2.0];
        tanh_grad(&mut g, &[0.5, -1.0]);
        assert_eq!(g, [1.5, 0.0]);
        let mut db = vec![9.0; 2];
        bias_grad(&[1.0, 2.0, 3.0, 4.0], &mut db, false);
        assert_eq!(db, [4.0, 6.0]);
    }

    #[test]
    fn short_rows_go_several_at_a_time_with_the_same_values() {
        // One, three and five channels; lengths with and without a tail past the widened rows,
        // and long enough to be cut in halves.
        for c in [1usize, 3, 5] {
            for rows in [7usize, 64 * 14, HALVES_MIN_VALUES / c + 11] {
                let y = values(rows * c, c as u32);
                let bias = values(c, 7);
                let by_row = |f: fn(&mut [f32], &[f32])| {
                    let mut want = y.clone();
                    want.chunks_exact_mut(c).for_each(|r| f(r, &bias));
                    want
                };
                let mut got = y.clone();
                bias_tanh(&mut got, &bias);
                assert_eq!(got, by_row(bias_tanh_part), "tanh, {c} x {rows}");
                let mut got = y.clone();
                add_bias(&mut got, &bias);
                assert_eq!(got, by_row(add_bias_part), "add, {c} x {rows}");
                let mut got = y.clone();
                bias_leaky_relu(&mut got, &bias, 0.2);
                let leaky: fn(&mut [f32], &[f32]) = |r, b| bias_leaky_relu_part(r, b, 0.2);
                assert_eq!(got, by_row(leaky), "leaky, {c} x {rows}");
            }
        }
    }

    #[test]
    fn bce_matches_its_definition_and_gradient() {
        let logits = [-3.0f32, 0.0, 2.5];
        let mut grad = [0.0; 3];
        let loss = bce_with_logits(&logits, 1.0, &mut grad, 1.0 / 3.0);
        let expect: f32 = logits.iter().map(|&x| -(sigmoid(x).ln())).sum::<f32>() / 3.0;
        assert!((loss - expect).abs() < 1e-6);
        for (g, &x) in grad.iter().zip(&logits) {
            assert!((g - (sigmoid(x) - 1.0) / 3.0).abs() < 1e-7);
        }
        let loss0 = bce_with_logits(&logits, 0.0, &mut grad, 1.0);
        let expect0: f32 = logits
            .iter()
            .map(|&x| -((1.0 - sigmoid(x)).ln()))
            .sum::<f32>()
            / 3.0;
        assert!((loss0 - expect0).abs() < 1e-5);
    }

    #[test]
    fn projection_passes_on_halves_of_the_rows_are_the_whole_passes() {
        let (rows, n, classes) = (64, 3136, 10);
        let (h, w, e) = (values(rows * n, 1), values(n, 2), values(classes * n, 3));
        let labels: Vec<usize> = (0..rows).map(|r| (r * 7) % classes).collect();
        let dl = values(rows, 4);
        let pool = rayon::ThreadPoolBuilder::new()
            .num_threads(2)
            .build()
            .unwrap();
        assert!(
            pool.install(|| half_point(rows * n, 1)).is_some(),
            "cut in halves"
        );
        let (mut whole, mut halves) = (vec![0.0; rows], vec![0.0; rows]);
        projection_logits_part(&h, &w, &e, &labels, 0.5, &mut whole);
        pool.install(|| projection_logits(&h, &w, &e, &labels, 0.5, &mut halves));
        assert_eq!(whole, halves);
        let (mut whole, mut halves) = (h.clone(), h.clone());
        projection_input_grad_part(&dl, &labels, &w, &e, &mut whole);
        pool.install(|| projection_input_grad(&dl, &labels, &w, &e, &mut halves));
        assert_eq!(whole, halves);
    }

    #[test]
    fn adam_matches_dfdx_bit_for_bit() {
        use dfdx::prelude::*;
        let dev: Cpu = Default::default();
        let n = 3 * HALVES_MIN_VALUES + 17; // long enough to be cut in halves
        let p0 = values(n, 4);
        let mut p = p0.clone();
        let (mut m, mut v) = (vec![0.0; n], vec![0.0; n]);
        let cfg = crate::nn::adam::pytorch_defaults(2e-4);
        let mut theirs: Tensor<(usize,), f32, Cpu> = dev.tensor_from_vec(p0, (n,));
        let mut tm = dev.try_alloc_len(n).unwrap();
        let mut tv = dev.try_alloc_len(n).unwrap();
        for t in 1..=3u64 {
            let g = values(n, 10 + t as u32);
            let mut ours = g.clone();
            let delta = adam_delta(
                &mut ours,
                &mut m,
                &mut v,
                AdamStep::new(cfg.lr, cfg.betas, cfg.eps, t),
            );
            assert!(ours.iter().all(|&g| g == 0.0), "the gradient is zeroed");
            let mut mine: Tensor<(usize,), f32, Cpu> = dev.tensor_from_vec(p.clone(), (n,));
            mine.axpy(1.0, &dev.tensor_from_vec(delta, (n,)), 1.0);
            p = mine.as_vec();
            let mut tg = dev.try_alloc_len(n).unwrap();
            tg.copy_from_slice(&g);
            cfg.try_update(t as i32, &mut theirs, &mut tm, &mut tv, &tg)
                .unwrap();
        }
        assert_eq!(p, theirs.as_vec());
    }
}

// Batch norm's passes over channels-last rows of `c` values. Each channel's sums run in row order
// in f64, and every element sees the same operations as a plain loop, so the vector widths the
// CPU offers change nothing in the results.

/// Lanes of the projection's sums: value `j` of a row adds into lane `j mod LANES`.
const LANES: usize = 16;

simd_fn! {
    /// `out[r] = h_r . (w + e[y_r]) + b` for rows `h_r` of `w.len()` values and their labels
    /// `y_r`, each sum kept in `LANES` lanes then added pairwise: the same sums on every CPU.
    pub fn projection_logits_part(
        h: &[f32],
        w: &[f32],
        e: &[f32],
        labels: &[usize],
        b: f32,
        out: &mut [f32],
    ) {
        let n = w.len().max(1);
        for ((h, &y), out) in h.chunks_exact(n).zip(labels).zip(out.iter_mut()) {
            let ey = &e[y * n..][..n];
            let mut acc = [0.0f32; LANES];
            let (hs, ws, es) = (h.chunks_exact(LANES), w.chunks_exact(LANES), ey.chunks_exact(LANES));
            let tails = (hs.remainder(), ws.remainder(), es.remainder());
            for ((h, w), e) in hs.zip(ws).zip(es) {
                for (((a, &h), &w), &e) in acc.iter_mut().zip(h).zip(w).zip(e) {
                    *a += h * (w + e);
                }
            }
            for (((a, &h), &w), &e) in acc.iter_mut().zip(tails.0).zip(tails.1).zip(tails.2) {
                *a += h * (w + e);
            }
            let mut width = LANES;
            while width > 1 {
                width /= 2;
                let (low, high) = acc.split_at_mut(width);
                for (a, &b) in low.iter_mut().zip(high.iter()) {
                    *a += b;
                }
            }
            *out = acc[0] + b;
        }
    }
}

simd_fn! {
    /// `dh_r += dl_r (w + e[y_r])` for rows `dh_r` of `w.len()` values.
    pub fn projection_input_grad_part(dl: &[f32], labels: &[usize], w: &[f32], e: &[f32], dh: &mut [f32]) {
        let n = w.len().max(1);
        for ((dh, &y), &d) in dh.chunks_exact_mut(n).zip(labels).zip(dl) {
            let ey = &e[y * n..][..n];
            for ((g, &w), &e) in dh.iter_mut().zip(w).zip(ey) {
                *g += d * (w + e);
            }
        }
    }
}

/// `projection_logits_part` on two halves of the rows side by side when it pays (each row's
/// logit is computed alike either way).
pub fn projection_logits(
    h: &[f32],
    w: &[f32],
    e: &[f32],
    labels: &[usize],
    b: f32,
    out: &mut [f32],
) {
    let n = w.len();
    on_labelled_item_halves(out, 1, h, n, Some(labels), |out, h, labels| {
        projection_logits_part(h, w, e, labels, b, out)
    });
}

/// `projection_input_grad_part` on two halves of the rows side by side when it pays.
pub fn projection_input_grad(dl: &[f32], labels: &[usize], w: &[f32], e: &[f32], dh: &mut [f32]) {
    let n = w.len();
    on_labelled_item_halves(dh, n, dl, 1, Some(labels), |dh, dl, labels| {
        projection_input_grad_part(dl, labels, w, e, dh)
    });
}

simd_fn! {
    /// `dw += dl_r h_r` and `de[y_r] += dl_r h_r`, row by row, for rows `h_r` of `dw.len()`
    /// values.
    pub fn projection_param_grads(
        dl: &[f32],
        labels: &[usize],
        h: &[f32],
        dw: &mut [f32],
        de: &mut [f32],
    ) {
        let n = dw.len().max(1);
        for ((h, &y), &d) in h.chunks_exact(n).zip(labels).zip(dl) {
            let dey = &mut de[y * n..][..n];
            for ((gw, ge), &h) in dw.iter_mut().zip(dey).zip(h) {
                *gw += d * h;
                *ge += d * h;
            }
        }
    }
}

simd_fn! {
    /// `sums[ch] += x[., ch]` in f64, row by row.
    pub fn channel_sums_part(x: &[f32], sums: &mut [f64]) {
        for row in x.chunks_exact(sums.len().max(1)) {
            for (s, &v) in sums.iter_mut().zip(row) {
                *s += v as f64;
            }
        }
    }
}

simd_fn! {
    /// `squares[ch] += (x[., ch] - mean[ch])^2` in f64, row by row.
    pub fn channel_square_deviations_part(x: &[f32], mean: &[f64], squares: &mut [f64]) {
        for row in x.chunks_exact(squares.len().max(1)) {
            for ((s, &v), &m) in squares.iter_mut().zip(row).zip(mean) {
                let d = v as f64 - m;
                *s += d * d;
            }
        }
    }
}

simd_fn! {
    /// Normalises rows in place (`x = (x - mean) * inv_std`) and writes `y = scale * x` for the
    /// normalised value (training) or, with `scale_input`, for the input (a folded evaluation):
    /// every value of `y` up to the shorter of the two. With `leaky` (a bias and a slope), `y`
    /// then has the bias added and goes through a leaky ReLU in the same pass, as
    /// `bias_leaky_relu_part` would do after it.
    pub fn normalise_rows_part(
        x: &mut [f32],
        y: &mut [MaybeUninit<f32>],
        mean: &[f32],
        inv_std: &[f32],
        scale: &[f32],
        scale_input: bool,
        leaky: Option<(&[f32], f32)>,
    ) {
        let c = mean.len().max(1);
        for (xr, yr) in x.chunks_exact_mut(c).zip(y.chunks_exact_mut(c)) {
            let values = xr.iter_mut().zip(yr.iter_mut()).zip(mean).zip(inv_std).zip(scale);
            match leaky {
                Some((bias, slope)) => {
                    for (((((xv, yv), &m), &s), &w), &b) in values.zip(bias) {
                        let h = (*xv - m) * s;
                        let v = if scale_input { *xv * w } else { w * h } + b;
                        yv.write(if v < 0.0 { v * slope } else { v });
                        *xv = h;
                    }
                }
                None => {
                    for ((((xv, yv), &m), &s), &w) in values {
                        let h = (*xv - m) * s;
                        yv.write(if scale_input { *xv * w } else { w * h });
                        *xv = h;
                    }
                }
            }
        }
    }
}

simd_fn! {
    /// `leaky_relu_grad_part` of `dy` through the output `y`, then `channel_grad_sums_part` of it, in
    /// one pass.
    pub fn leaky_grad_channel_sums_part(
        dy: &mut [f32],
        y: &[f32],
        slope: f32,
        xhat: &[f32],
        sum_dy: &mut [f64],
        sum_dy_xhat: &mut [f64],
    ) {
        let c = sum_dy.len().max(1);
        let rows = dy.chunks_exact_mut(c).zip(y.chunks_exact(c)).zip(xhat.chunks_exact(c));
        for ((d, y), h) in rows {
            let sums = sum_dy.iter_mut().zip(sum_dy_xhat.iter_mut());
            for ((((s, t), d), &y), &h) in sums.zip(d).zip(y).zip(h) {
                *d *= if y > 0.0 { 1.0 } else { slope };
                *s += *d as f64;
                *t += (*d * h) as f64;
            }
        }
    }
}

simd_fn! {
    /// `sum_dy[ch] += dy` and `sum_dy_xhat[ch] += dy * xhat` (the product in f32) in f64.
    pub fn channel_grad_sums_part(dy: &[f32], xhat: &[f32], sum_dy: &mut [f64], sum_dy_xhat: &mut [f64]) {
        let c = sum_dy.len().max(1);
        for (d, h) in dy.chunks_exact(c).zip(xhat.chunks_exact(c)) {
            for (((s, t), &d), &h) in sum_dy.iter_mut().zip(sum_dy_xhat.iter_mut()).zip(d).zip(h) {
                *s += d as f64;
                *t += (d * h) as f64;
            }
        }
    }
}

simd_fn! {
    /// Batch norm's input gradient added into `dx`: `dx += k * (dy - mean_dy - xhat *
    /// mean_dy_xhat)` per channel (into a zeroed `dx`, exactly the gradient itself).
    pub fn normalised_input_grad_part(
        dy: &[f32],
        xhat: &[f32],
        dx: &mut [f32],
        k: &[f32],
        mean_dy: &[f32],
        mean_dy_xhat: &[f32],
    ) {
        let c = k.len().max(1);
        for ((d, h), out) in dy.chunks_exact(c).zip(xhat.chunks_exact(c)).zip(dx.chunks_exact_mut(c)) {
            for (((((o, &d), &h), &k), &md), &mdh) in
                out.iter_mut().zip(d).zip(h).zip(k).zip(mean_dy).zip(mean_dy_xhat)
            {
                *o += k * (d - md - h * mdh);
            }
        }
    }
}

simd_fn! {
    /// `dst += src`, element by element.
    pub fn add_into_part(dst: &mut [f32], src: &[f32]) {
        for (d, &s) in dst.iter_mut().zip(src) {
            *d += s;
        }
    }
}
