//! Checks every recipe's tests share: a few steps on real digits, exact resume from a saved
//! state, and refusal of a damaged state.

use std::collections::BTreeMap;
use std::path::Path;
use std::sync::OnceLock;

use super::gan::{
    Batch, DeviceError, Gan, GanState, GradNorms, PhaseTimes, StateError, StepLosses,
};
use super::noise::{NoiseKind, NoiseStream};
use super::trainer::{GanBuilder, TrainJob};
use crate::config::{Config, Preset};
use crate::data::{self, DigitSet, Split};
use crate::files::run_dir::RunDir;
use crate::nn::params::NamedTensor;

/// `n` spread-out test values in [-1, 1), the same for the same `seed`.
pub fn values(n: usize, seed: u32) -> Vec<f32> {
    (0..n)
        .map(|i| {
            (((i as u32).wrapping_mul(2654435761).wrapping_add(seed) >> 8) % 1000) as f32 / 500.0
                - 1.0
        })
        .collect()
}

/// The first 320 training digits, loaded once.
fn digits() -> &'static DigitSet {
    static SET: OnceLock<DigitSet> = OnceLock::new();
    SET.get_or_init(|| data::load(None, Split::Train).unwrap().take(320))
}

/// `steps` steps of batch `batch` over the first 320 real digits, with their labels, the
/// batches in the order of `seed`'s first epoch and the noise of `seed`'s training stream.
pub fn train(gan: &mut dyn Gan, steps: usize, batch: usize, seed: u64) -> Vec<StepLosses> {
    let set = digits();
    let order = data::epoch_order(set.len(), seed, 1);
    let per_epoch = data::batches_per_epoch(set.len(), batch);
    let mut noise = NoiseStream::new(seed, NoiseKind::Train);
    let (mut real, mut labels, mut z) = (Vec::new(), Vec::new(), Vec::new());
    (0..steps)
        .map(|i| {
            let idx = data::batch_indices(&order, batch, i as u64 % per_epoch).unwrap();
            data::fill_batch(set, idx, &mut real).unwrap();
            data::fill_labels(set, idx, &mut labels).unwrap();
            noise.fill(&mut z, idx.len() * gan.latent_dim());
            let losses = gan
                .train_step(&Batch {
                    real: &real,
                    labels: &labels,
                    z: &z,
                    count: idx.len(),
                })
                .unwrap();
            assert!(losses.all_finite(), "step {i}: {losses:?}");
            losses
        })
        .collect()
}

/// Trains a fresh `build()` for a few steps on one thread and another on two, and checks that
/// both take the same steps bit for bit (the thread choice may change speed only). Batch 64, so
/// the large products do run split across the two threads.
pub fn assert_threads_change_nothing(build: impl Fn() -> Box<dyn Gan> + Sync) {
    let on = |threads: usize| {
        let pool = rayon::ThreadPoolBuilder::new()
            .num_threads(threads)
            .build()
            .unwrap();
        pool.install(|| {
            let mut gan = build();
            let losses = train(gan.as_mut(), 2, 64, 3);
            (format!("{losses:?}"), state_map(&gan.state()))
        })
    };
    let (one, two) = (on(1), on(2));
    assert_eq!(one.0, two.0);
    assert!(one.1 == two.1, "the states differ");
}

pub fn state_map(state: &GanState) -> BTreeMap<String, NamedTensor> {
    state
        .tensors
        .iter()
        .map(|t| (t.name.clone(), t.clone()))
        .collect()
}

/// Trains `a` for `k` steps, loads its state into `b` (built with another seed), and checks that
/// both then generate the same digits, take the same next steps bit for bit and end in the same
/// state.
pub fn assert_resumes_identically(
    mut a: Box<dyn Gan>,
    mut b: Box<dyn Gan>,
    k: usize,
    batch: usize,
) {
    train(a.as_mut(), k, batch, 5);
    let state = a.state();
    b.load_state(&state_map(&state), &state.counters).unwrap();
    assert_eq!(
        b.state(),
        state,
        "a loaded state reads back as it was saved"
    );
    let latent = a.latent_dim();
    let z = NoiseStream::new(1, NoiseKind::Samples).draw(6 * latent);
    let labels = [3u8, 1, 4, 1, 5, 9];
    assert_eq!(
        a.generate(&z, Some(&labels), 6).unwrap(),
        b.generate(&z, Some(&labels), 6).unwrap()
    );
    assert_eq!(
        train(a.as_mut(), 3, batch, 6),
        train(b.as_mut(), 3, batch, 6)
    );
    assert_eq!(a.state(), b.state());
}

/// Removes each kind of entry a state has (one tensor, one counter) and checks that loading
/// fails naming it, leaving the model as it was.
pub fn assert_damaged_states_change_nothing(mut gan: Box<dyn Gan>) {
    let before = gan.state();
    let full = state_map(&before);
    let names: Vec<String> = full.keys().cloned().collect();
    for name in [names.first(), names.last()].into_iter().flatten() {
        let mut map = full.clone();
        map.remove(name);
        let err = gan.load_state(&map, &before.counters).unwrap_err();
        assert!(err.to_string().contains(name.as_str()), "{err}");
        assert_eq!(gan.state(), before);
    }
    for counter in before.counters.keys() {
        let mut counters = before.counters.clone();
        counters.remove(counter);
        let err = gan.load_state(&full, &counters).unwrap_err();
        assert!(err.to_string().contains(counter.as_str()), "{err}");
        assert_eq!(gan.state(), before);
    }
}

/// The share of steps in which D told real from fake (its mean verdict on real digits above its
/// mean verdict on G's), after the first `skip`.
pub fn share_told_apart(losses: &[StepLosses], skip: usize) -> f64 {
    let later = &losses[skip.min(losses.len())..];
    later.iter().filter(|l| l.d_real > l.d_fake).count() as f64 / later.len().max(1) as f64
}

/// A recipe, except that from step `nan_at` on its losses are NaN.
pub struct Diverging {
    inner: Box<dyn Gan>,
    steps: u64,
    nan_at: u64,
}

impl Diverging {
    pub fn new(inner: Box<dyn Gan>, nan_at: u64) -> Self {
        Diverging {
            inner,
            steps: 0,
            nan_at,
        }
    }
}

impl Gan for Diverging {
    fn preset(&self) -> Preset {
        self.inner.preset()
    }
    fn latent_dim(&self) -> usize {
        self.inner.latent_dim()
    }
    fn train_step(&mut self, batch: &Batch) -> Result<StepLosses, DeviceError> {
        self.steps += 1;
        let mut l = self.inner.train_step(batch)?;
        if self.steps >= self.nan_at {
            l.d_loss = f32::NAN;
        }
        Ok(l)
    }
    fn phase_times(&self) -> PhaseTimes {
        self.inner.phase_times()
    }
    fn measure_grad_norms(&mut self, on: bool) {
        self.inner.measure_grad_norms(on)
    }
    fn grad_norms(&self) -> GradNorms {
        self.inner.grad_norms()
    }
    fn step_flops(&self, batch: usize) -> f64 {
        self.inner.step_flops(batch)
    }
    fn generate(
        &self,
        z: &[f32],
        labels: Option<&[u8]>,
        count: usize,
    ) -> Result<Vec<f32>, DeviceError> {
        self.inner.generate(z, labels, count)
    }
    fn set_lr(&mut self, lr: f64) {
        self.inner.set_lr(lr)
    }
    fn state(&self) -> GanState {
        self.inner.state()
    }
    fn load_state(
        &mut self,
        state: &BTreeMap<String, NamedTensor>,
        counters: &BTreeMap<String, u64>,
    ) -> Result<(), StateError> {
        self.inner.load_state(state, counters)
    }
}

/// A training job over the first 128 training digits (2 steps an epoch of 64) with its run
/// folder in `dir`.
pub fn small_job(dir: &Path, config: Config, builder: Option<GanBuilder>) -> TrainJob {
    TrainJob {
        config_toml: config.to_toml(),
        config,
        data: data::load(None, Split::Train).unwrap().take(128),
        run_dir: RunDir::create(dir).unwrap(),
        resume: None,
        builder,
    }
}

/// A reference run of 3 epochs of 2 steps, a checkpoint after each (all kept, no scoring), whose
/// losses turn NaN at step `nan_at`.
pub fn diverging_job(dir: &Path, nan_at: u64) -> TrainJob {
    let config = Config {
        preset: Preset::Reference,
        epochs: 3,
        keep_checkpoints: 0,
        eval_count: 0,
        ..Config::default()
    };
    let builder: GanBuilder =
        Box::new(move |cfg: &Config| Box::new(Diverging::new(super::presets::build(cfg), nan_at)));
    small_job(dir, config, Some(builder))
}
