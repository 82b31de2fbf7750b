//! The threads the engine's work runs on: how many (`--threads`, `train.threads`; by default
//! the cores this process may use), and, step by step, whether a training step runs on all of
//! them or on one. A step takes the same operations in the same order on either (products
//! split their output, never a sum), so the choice changes speed only, never a result.
//!
//! Why choose: with a core taken by another program, a second thread of ours fights it for the
//! one free core and a step gets several times slower than on one thread. So with the default
//! setting, training steps are timed, now and then a few run on the other choice, and the faster
//! one is kept; a probe that confirms the choice waits twice as long before the next one, and a
//! probe step more than a quarter slower than the choice ends its probe at once.

use std::collections::VecDeque;
use std::sync::{Arc, Mutex, PoisonError};
use std::time::{Duration, Instant};

use rayon::{ThreadPool, ThreadPoolBuilder};

/// How many threads the engine may use.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Threads {
    /// Up to all the cores this process may use, one thread when more do not pay.
    Auto,
    /// Exactly this many.
    Fixed(usize),
}

impl Threads {
    /// `train.threads` / `--threads`: 0 is `Auto`.
    pub fn from_setting(n: usize) -> Threads {
        if n == 0 {
            Threads::Auto
        } else {
            Threads::Fixed(n)
        }
    }

    /// The most threads a step may run on.
    pub fn most(self) -> usize {
        match self {
            Threads::Auto => available_cores(),
            Threads::Fixed(n) => n,
        }
    }
}

/// The cores this process may run on (its CPU affinity mask), at least 1.
pub fn available_cores() -> usize {
    #[cfg(target_os = "linux")]
    {
        // SAFETY: `set` is a plain bit mask that sched_getaffinity fills for this process (pid
        // 0); its size is passed along.
        let count = unsafe {
            let mut set: libc::cpu_set_t = std::mem::zeroed();
            if libc::sched_getaffinity(0, std::mem::size_of::<libc::cpu_set_t>(), &mut set) == 0 {
                libc::CPU_COUNT(&set)
            } else {
                0
            }
        };
        if count > 0 {
            return count as usize;
        }
    }
    std::thread::available_parallelism().map_or(1, |n| n.get())
}

#[derive(Debug, thiserror::Error)]
#[error("cannot start {threads} worker threads: {source}")]
pub struct ThreadsError {
    threads: usize,
    source: rayon::ThreadPoolBuildError,
}

/// The pools steps run on: one thread, and (when more than one is allowed) all of them.
struct Pools {
    setting: Threads,
    one: ThreadPool,
    all: Option<ThreadPool>,
}

impl Pools {
    fn new(setting: Threads) -> Result<Pools, ThreadsError> {
        let build = |threads: usize| {
            ThreadPoolBuilder::new()
                .num_threads(threads)
                .thread_name(|i| format!("gan-tui-{i}"))
                .build()
                .map_err(|source| ThreadsError { threads, source })
        };
        // Before the threads start, so they share one heap (see `memory`).
        super::memory::keep_freed_memory();
        let most = setting.most();
        Ok(Pools {
            setting,
            one: build(1)?,
            all: if most > 1 { Some(build(most)?) } else { None },
        })
    }
}

static POOLS: Mutex<Option<Arc<Pools>>> = Mutex::new(None);
static CHOOSER: Mutex<Chooser> = Mutex::new(Chooser::new());

/// Sets how many threads the engine uses from now on (the first step starts the threads).
pub fn set(setting: Threads) -> Result<(), ThreadsError> {
    let mut pools = POOLS.lock().unwrap_or_else(PoisonError::into_inner);
    if pools.as_ref().is_some_and(|p| p.setting == setting) {
        return Ok(());
    }
    *pools = Some(Arc::new(Pools::new(setting)?));
    *CHOOSER.lock().unwrap_or_else(PoisonError::into_inner) = Chooser::new();
    Ok(())
}

/// The setting in force.
pub fn setting() -> Threads {
    pools().map_or(Threads::Auto, |p| p.setting)
}

fn pools() -> Option<Arc<Pools>> {
    let mut pools = POOLS.lock().unwrap_or_else(PoisonError::into_inner);
    if pools.is_none() {
        // Without a pool of its own the work runs on rayon's global pool (see `run`).
        *pools = Pools::new(Threads::Auto).ok().map(Arc::new);
    }
    pools.clone()
}

/// What share of training steps ran on one thread since the setting was last made.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, serde::Serialize)]
pub struct StepCounts {
    pub on_one: u64,
    pub on_all: u64,
}

pub fn step_counts() -> StepCounts {
    CHOOSER
        .lock()
        .unwrap_or_else(PoisonError::into_inner)
        .counts
}

/// Runs a training step: on one thread or all of them, as the choice stands, timing it for the
/// next choice. Work started from a pool thread (a test choosing its pool, a step inside
/// another) runs where it is.
pub fn run_step<R: Send>(work: impl FnOnce() -> R + Send) -> R {
    run_with(work, true)
}

/// Runs other work (sampling, scoring) where training steps run now, untimed.
pub fn run<R: Send>(work: impl FnOnce() -> R + Send) -> R {
    run_with(work, false)
}

fn run_with<R: Send>(work: impl FnOnce() -> R + Send, timed: bool) -> R {
    if rayon::current_thread_index().is_some() {
        return work();
    }
    let Some(pools) = pools() else {
        return rayon::scope(|_| work());
    };
    let all = match (&pools.all, pools.setting) {
        (None, _) => None,
        (Some(all), Threads::Fixed(_)) => Some(all),
        (Some(all), Threads::Auto) => {
            let mut chooser = CHOOSER.lock().unwrap_or_else(PoisonError::into_inner);
            let on_one = if timed {
                chooser.next_on_one()
            } else {
                chooser.current_on_one
            };
            (!on_one).then_some(all)
        }
    };
    let start = Instant::now();
    let result = match all {
        Some(pool) => pool.install(work),
        None => pools.one.install(work),
    };
    if timed {
        let mut chooser = CHOOSER.lock().unwrap_or_else(PoisonError::into_inner);
        chooser.record(all.is_none(), start.elapsed());
    }
    result
}

/// Steps timed per choice; the median of them is the choice's time.
const SAMPLES: usize = 5;
/// Steps of the other choice in one probe.
const PROBE_STEPS: u32 = 3;
/// Steps before the first probe, and before the next one after a switch.
const FIRST_PROBE_AFTER: u32 = 6;
/// The longest wait between probes.
const MOST_STEPS_BETWEEN_PROBES: u32 = 200;
/// The other choice must be this much faster to be taken.
const SWITCH_MARGIN: f64 = 0.95;
/// A probe step this many times slower than the current choice's median ends its probe: it has
/// shown enough, and each more such step is time lost (two threads fighting another program,
/// or one thread on a quiet machine, 1.6-1.8 times slower on the `cgan` step, where the three
/// steps of each probe cost about 1% of a run). The other choice is taken only when its median
/// is `SWITCH_MARGIN` of the current one's.
const PROBE_GIVE_UP: f64 = 1.25;

/// Chooses, step by step, between one thread and all of them.
#[derive(Debug)]
struct Chooser {
    current_on_one: bool,
    /// Steps left before the next probe, or in the running probe.
    left: u32,
    probing: bool,
    wait: u32,
    /// Recent step times: [all threads, one thread].
    times: [VecDeque<Duration>; 2],
    counts: StepCounts,
}

impl Chooser {
    const fn new() -> Chooser {
        Chooser {
            current_on_one: false,
            left: FIRST_PROBE_AFTER,
            probing: false,
            wait: FIRST_PROBE_AFTER,
            times: [VecDeque::new(), VecDeque::new()],
            counts: StepCounts {
                on_one: 0,
                on_all: 0,
            },
        }
    }

    /// Whether the next step runs on one thread.
    fn next_on_one(&mut self) -> bool {
        if self.left == 0 {
            if self.probing {
                self.end_probe();
            } else {
                self.probing = true;
                self.left = PROBE_STEPS;
                self.times[usize::from(!self.current_on_one)].clear();
            }
        }
        self.left = self.left.saturating_sub(1);
        self.current_on_one != self.probing
    }

    fn end_probe(&mut self) {
        self.probing = false;
        let current = self.median(self.current_on_one);
        let other = self.median(!self.current_on_one);
        let switch = match (current, other) {
            (Some(c), Some(o)) => o.as_secs_f64() < SWITCH_MARGIN * c.as_secs_f64(),
            _ => false,
        };
        if switch {
            self.current_on_one = !self.current_on_one;
            self.wait = FIRST_PROBE_AFTER;
        } else {
            self.wait = (self.wait * 2).min(MOST_STEPS_BETWEEN_PROBES);
        }
        self.left = self.wait;
    }

    /// The median recent step time of one thread (`on_one`) or all of them.
    fn median(&self, on_one: bool) -> Option<Duration> {
        let mut v: Vec<Duration> = self.times[usize::from(on_one)].iter().copied().collect();
        v.sort();
        v.get(v.len() / 2).copied()
    }

    fn record(&mut self, on_one: bool, took: Duration) {
        let probe_step = self.probing && on_one != self.current_on_one;
        if probe_step
            && self
                .median(self.current_on_one)
                .is_some_and(|m| took.as_secs_f64() > PROBE_GIVE_UP * m.as_secs_f64())
        {
            self.left = 0;
        }
        let times = &mut self.times[usize::from(on_one)];
        if times.len() == SAMPLES {
            times.pop_front();
        }
        times.push_back(took);
        if on_one {
            self.counts.on_one += 1;
        } else {
            self.counts.on_all += 1;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Drives the chooser with made-up step times: `all` and `one` per step.
    fn drive(chooser: &mut Chooser, steps: usize, all: u64, one: u64) -> Vec<bool> {
        (0..steps)
            .map(|_| {
                let on_one = chooser.next_on_one();
                let ms = if on_one { one } else { all };
                chooser.record(on_one, Duration::from_millis(ms));
                on_one
            })
            .collect()
    }

    #[test]
    fn the_chooser_moves_to_the_faster_choice_and_probes_less_while_it_holds() {
        let mut c = Chooser::new();
        // All threads faster: after the first probe it stays on them, probing ever more rarely.
        let quiet = drive(&mut c, 400, 8, 12);
        assert!(!c.current_on_one);
        let on_one = quiet.iter().filter(|&&o| o).count();
        assert!(on_one <= 6 * PROBE_STEPS as usize, "{on_one} probe steps");
        // The machine gets busy: all threads now slower; it moves to one within a probe.
        let busy = drive(&mut c, 2 * MOST_STEPS_BETWEEN_PROBES as usize, 34, 12);
        assert!(c.current_on_one);
        let on_all = busy.iter().filter(|&&o| !o).count();
        let most = (MOST_STEPS_BETWEEN_PROBES + 10 * PROBE_STEPS) as usize;
        assert!(on_all <= most, "{on_all} steps on all");
        // Quiet again: back to all threads.
        drive(&mut c, 2 * MOST_STEPS_BETWEEN_PROBES as usize, 8, 12);
        assert!(!c.current_on_one);
        let counts = c.counts;
        assert_eq!(
            counts.on_one + counts.on_all,
            400 + 4 * MOST_STEPS_BETWEEN_PROBES as u64
        );
    }

    #[test]
    fn a_probe_far_slower_than_the_choice_ends_after_one_step() {
        let mut c = Chooser::new();
        // Busy: all threads three times slower than one. The first probe of one thread moves
        // there; each later probe of all threads lasts one step.
        let steps = drive(&mut c, 400, 36, 12);
        assert!(c.current_on_one);
        let after_move = steps.iter().position(|&o| o).unwrap_or(0) + PROBE_STEPS as usize;
        let mut runs = Vec::new();
        let mut run = 0;
        for &on_one in &steps[after_move..] {
            if on_one {
                if run > 0 {
                    runs.push(run);
                }
                run = 0;
            } else {
                run += 1;
            }
        }
        assert!(!runs.is_empty(), "no probes in {steps:?}");
        assert!(runs.iter().all(|&r| r == 1), "probe lengths {runs:?}");
        // A probe only a little slower (1.125x) runs its whole length.
        let mut c = Chooser::new();
        let steps = drive(&mut c, 60, 8, 9);
        let first_probe = steps.iter().filter(|&&o| o).count();
        assert!(first_probe >= PROBE_STEPS as usize, "{steps:?}");
        // One thread on a quiet machine (1.7x): each probe lasts one step.
        let mut c = Chooser::new();
        let steps = drive(&mut c, 400, 12, 20);
        assert!(!c.current_on_one);
        assert!(steps.windows(2).all(|w| !(w[0] && w[1])), "{steps:?}");
    }

    #[test]
    fn cores_are_counted() {
        assert!(available_cores() >= 1);
        assert_eq!(Threads::from_setting(0), Threads::Auto);
        assert_eq!(Threads::from_setting(3).most(), 3);
    }
}
