//! Training the judge on MNIST's 60,000 training digits, reproducibly for a seed.
//!
//! Cross-entropy, Adam (the engine's savable one, through dfdx's `Optimizer` trait) with a learning rate cut by
//! 30% every epoch, batches in the seeded epoch order the GAN trainer uses.

use std::time::Instant;

use dfdx::optim::{Optimizer, OptimizerUpdateError};
use dfdx::prelude::*;

use super::Judge;
use super::error::JudgeError;
use super::net::{BODY_PREFIX, CLASSES, HEAD_PREFIX, Net};
use crate::data::{self, DIGIT_PIXELS, DigitSet, Split};
use crate::nn::adam::{Adam, pytorch_defaults};

/// The training recipe's fixed numbers; `epochs` and `seed` are the caller's.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct TrainSettings {
    pub epochs: u32,
    pub seed: u64,
    pub batch_size: usize,
    /// Learning rate of the first epoch; each later epoch's is 0.7 times the one before.
    pub lr: f64,
}

impl TrainSettings {
    pub const DEFAULT_EPOCHS: u32 = 4;
    pub const DEFAULT_SEED: u64 = 0;

    pub fn new(epochs: u32, seed: u64) -> Self {
        TrainSettings {
            epochs,
            seed,
            batch_size: 64,
            lr: 1e-3,
        }
    }

    fn lr_for(&self, epoch: u32) -> f64 {
        self.lr * LR_DECAY.powi(i32::try_from(epoch.saturating_sub(1)).unwrap_or(i32::MAX))
    }
}

/// Progress of a training run.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum TrainEvent {
    /// Every few hundred batches: the mean loss and training accuracy since the last report.
    Batches {
        epoch: u32,
        epochs: u32,
        done: u64,
        total: u64,
        loss: f32,
        accuracy: f32,
    },
    /// An epoch finished; `test_accuracy` is the share of held-out digits classified right, when
    /// there are any.
    Epoch {
        epoch: u32,
        epochs: u32,
        seconds: f64,
        test_accuracy: Option<f32>,
    },
    /// Training is over; the test digits are being classified.
    Testing,
}

/// A trained judge and what it cost.
#[derive(Debug, Clone)]
pub struct Trained {
    pub judge: Judge,
    /// Share of the 10,000 test digits classified correctly.
    pub test_accuracy: f32,
    /// Wall time of the whole run, test pass included.
    pub seconds: f64,
}

/// An optimiser's failure as the judge reports it.
fn update_error(e: OptimizerUpdateError<CpuError>) -> JudgeError {
    JudgeError::Device(e.to_string())
}

/// Each epoch's learning rate is the last one's times this.
const LR_DECAY: f64 = 0.7;

/// Batches between `TrainEvent::Batches` reports.
const REPORT_EVERY: u64 = 200;

/// Trains a judge from scratch on the built-in MNIST training digits. The same `epochs` and
/// `seed` give the same weights, bit for bit.
pub fn train_judge(
    epochs: u32,
    seed: u64,
    progress: impl FnMut(&TrainEvent),
) -> Result<Trained, JudgeError> {
    let start = Instant::now();
    let settings = TrainSettings::new(epochs, seed);
    let set = data::load(None, Split::Train)?;
    let test = data::load(None, Split::Test)?;
    let mut progress = progress;
    let net = train_on(&set, Some(&test), &settings, &mut progress)?;
    progress(&TrainEvent::Testing);
    let judge = Judge::from_net(net, seed, epochs)?;
    Ok(Trained {
        test_accuracy: judge.info().test_accuracy,
        judge,
        seconds: start.elapsed().as_secs_f64(),
    })
}

/// The training loop proper, on any labelled digit set, with `test` digits classified after each
/// epoch to show how training goes (they play no part in it).
pub(super) fn train_on(
    set: &DigitSet,
    test: Option<&DigitSet>,
    settings: &TrainSettings,
    progress: &mut impl FnMut(&TrainEvent),
) -> Result<Net, JudgeError> {
    if settings.epochs == 0 {
        return Err(JudgeError::NoEpochs {
            epochs: settings.epochs,
        });
    }
    let mut net = Net::new(settings.seed);
    let mut opt_body = Adam::new(pytorch_defaults(settings.lr), BODY_PREFIX);
    let mut opt_head = Adam::new(pytorch_defaults(settings.lr), HEAD_PREFIX);
    let mut grads = net.body.alloc_grads();
    // Both halves' gradients are kept through backward passes and zeroed after each update.
    net.head.try_zero_grads(&mut grads)?;
    let total = data::batches_per_epoch(set.len(), settings.batch_size);
    let (mut pixels, mut labels, mut targets) = (Vec::new(), Vec::new(), Vec::new());
    for epoch in 1..=settings.epochs {
        let epoch_start = Instant::now();
        let lr = settings.lr_for(epoch);
        opt_body.cfg.lr = lr;
        opt_head.cfg.lr = lr;
        let order = data::epoch_order(set.len(), settings.seed, epoch);
        let (mut loss_sum, mut correct, mut seen, mut batches) = (0.0f64, 0usize, 0usize, 0u64);
        let mut batch = 0u64;
        while let Some(indices) = data::batch_indices(&order, settings.batch_size, batch) {
            let n = indices.len();
            data::fill_batch(set, indices, &mut pixels)?;
            data::fill_labels(set, indices, &mut labels)?;
            targets.clear();
            targets.resize(n * CLASSES, 0.0f32);
            for (row, &label) in targets.chunks_exact_mut(CLASSES).zip(&labels) {
                row[usize::from(label)] = 1.0;
            }
            let x = net
                .dev
                .try_tensor_from_vec(pixels.clone(), (n, Const::<DIGIT_PIXELS>))?;
            let y = net
                .dev
                .try_tensor_from_vec(targets.clone(), (n, Const::<CLASSES>))?;
            let taken = std::mem::replace(&mut grads, Gradients::leaky());
            let features = net.body.try_forward(x.traced(taken))?;
            let logits = net.head.try_forward(features)?;
            let logit_values = logits.as_vec();
            let loss = cross_entropy_with_logits_loss(logits, y);
            let loss_value = loss.array();
            if !loss_value.is_finite() {
                return Err(JudgeError::Diverged {
                    epoch,
                    batch,
                    loss: loss_value,
                });
            }
            grads = loss.backward();
            Optimizer::update(&mut opt_body, &mut net.body, &grads).map_err(update_error)?;
            Optimizer::update(&mut opt_head, &mut net.head, &grads).map_err(update_error)?;
            net.body.try_zero_grads(&mut grads)?;
            net.head.try_zero_grads(&mut grads)?;

            loss_sum += f64::from(loss_value);
            batches += 1;
            seen += n;
            correct += logit_values
                .chunks_exact(CLASSES)
                .zip(&labels)
                .filter(|(row, label)| super::argmax(row) == usize::from(**label))
                .count();
            batch += 1;
            if batch.is_multiple_of(REPORT_EVERY) || batch == total {
                progress(&TrainEvent::Batches {
                    epoch,
                    epochs: settings.epochs,
                    done: batch,
                    total,
                    loss: (loss_sum / batches as f64) as f32,
                    accuracy: correct as f32 / seen.max(1) as f32,
                });
                (loss_sum, correct, seen, batches) = (0.0, 0, 0, 0);
            }
        }
        let seconds = epoch_start.elapsed().as_secs_f64();
        let test_accuracy = match test {
            Some(t) => Some(super::accuracy_with(&net, t)?),
            None => None,
        };
        progress(&TrainEvent::Epoch {
            epoch,
            epochs: settings.epochs,
            seconds,
            test_accuracy,
        });
    }
    Ok(net)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::nn::params;

    fn small_run(seed: u64) -> (Net, Vec<TrainEvent>) {
        let set = data::load(None, Split::Train).unwrap().take(320);
        let mut settings = TrainSettings::new(2, seed);
        settings.batch_size = 32;
        let mut events = Vec::new();
        let net = train_on(&set, None, &settings, &mut |e: &TrainEvent| events.push(*e)).unwrap();
        (net, events)
    }

    fn weights(net: &Net) -> Vec<params::NamedTensor> {
        params::export(&net.body, "")
            .into_iter()
            .chain(params::export(&net.head, ""))
            .collect()
    }

    #[test]
    fn the_same_seed_gives_the_same_weights() {
        let (a, events) = small_run(5);
        let (b, _) = small_run(5);
        let (c, _) = small_run(6);
        assert_eq!(weights(&a), weights(&b));
        assert_ne!(weights(&a), weights(&c));
        // 10 batches per epoch: one report at the epoch's end, then the epoch itself.
        let reports: Vec<_> = events
            .iter()
            .filter(|e| matches!(e, TrainEvent::Batches { .. }))
            .collect();
        assert_eq!(reports.len(), 2);
        assert!(matches!(
            events.last(),
            Some(TrainEvent::Epoch { epoch: 2, .. })
        ));
    }

    #[test]
    fn the_loss_falls() {
        let (_, events) = small_run(1);
        let losses: Vec<f32> = events
            .iter()
            .filter_map(|e| match e {
                TrainEvent::Batches { loss, .. } => Some(*loss),
                _ => None,
            })
            .collect();
        // Chance is ln 10 = 2.3.
        assert!(losses[0] < 2.4 && losses[1] < losses[0] - 0.3, "{losses:?}");
    }

    #[test]
    fn zero_epochs_is_refused() {
        let set = data::load(None, Split::Test).unwrap().take(4);
        let err = train_on(
            &set,
            None,
            &TrainSettings::new(0, 1),
            &mut |_: &TrainEvent| {},
        );
        assert!(matches!(err, Err(JudgeError::NoEpochs { epochs: 0 })));
    }
}
