//! Tests of folding trainer messages into a run's state.

use super::*;
use crate::run::history::{FULL_POINTS, RECENT_POINTS};

/// A 50-epoch run's facts, for tests of what folds them (here and in the dashboard's).
pub(crate) fn info() -> RunInfo {
    RunInfo {
        preset: "reference".to_string(),
        data_source: "built-in MNIST".to_string(),
        images: 60_000,
        epochs: 50,
        batch_size: 64,
        steps_per_epoch: 938,
        total_steps: 46_900,
        start_step: 0,
        run_dir: PathBuf::from("/runs/2024-01-01"),
        seed: 7,
        eval_count: 2000,
    }
}

/// Step `n`'s numbers, with D's loss `d_loss` and G's twice it.
pub(crate) fn step(n: u64, d_loss: f32) -> StepStats {
    StepStats {
        step: n,
        epoch: 1 + (n / 938) as u32,
        batch: n % 938 + 1,
        d_loss,
        g_loss: 2.0 * d_loss,
        d_real: 0.75,
        d_fake: 0.25,
        lr: 2e-4,
        steps_per_s: 100.0,
        elapsed_s: n as f64 / 100.0,
        g_grad_norm: Some(0.5),
        d_grad_norm: Some(0.25),
    }
}

#[test]
fn a_fifty_epoch_run_uses_the_same_memory_as_a_short_one() {
    let mut run = RunState::new();
    run.on_msg(&TrainMsg::Started(info()));
    for n in 1..=50 * 938u64 {
        run.on_msg(&TrainMsg::Step(step(n, 1.0 / n as f32)));
    }
    for series in Series::ALL {
        let h = run.history(series);
        assert_eq!(h.recent.len(), RECENT_POINTS);
        assert!(h.full.points().len() <= FULL_POINTS + 1);
        assert_eq!(h.full.total(), 50 * 938);
    }
    assert_eq!(run.last_step().map(|s| s.step), Some(46_900));
}

#[test]
fn the_learning_rate_is_the_latest_steps() {
    let mut run = RunState::new();
    assert_eq!(run.learning_rate(), None);
    run.on_msg(&TrainMsg::Started(info()));
    let mut stats = step(1, 1.0);
    stats.lr = 1e-4;
    run.on_msg(&TrainMsg::Step(stats));
    assert_eq!(run.learning_rate(), Some(1e-4));
}

#[test]
fn a_silent_disconnect_fails_the_run_but_a_finished_one_stays_finished() {
    let mut run = RunState::new();
    run.on_msg(&TrainMsg::Started(info()));
    run.on_disconnect();
    assert!(matches!(run.phase(), Phase::Failed(_)));
    let mut done = RunState::new();
    done.on_msg(&TrainMsg::Finished {
        reason: FinishReason::Completed,
        step: 3,
        last_checkpoint: None,
    });
    done.on_disconnect();
    assert_eq!(done.phase(), &Phase::Finished(FinishReason::Completed));
}
