//! A run folder read back: steps, scores, the newest grid and how the run ended.

use super::*;
use crate::files::run_dir::{JsonLines, QualityFields};
use crate::protocol::StepStats;

fn info(dir: &Path) -> RunInfo {
    RunInfo {
        preset: "reference".to_string(),
        data_source: "built-in MNIST".to_string(),
        images: 100,
        epochs: 2,
        batch_size: 10,
        steps_per_epoch: 10,
        total_steps: 20,
        start_step: 0,
        run_dir: dir.to_path_buf(),
        seed: 0,
        eval_count: 50,
    }
}

#[test]
fn a_finished_run_replays_its_steps_scores_grid_and_end() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = RunDir::create(tmp.path()).unwrap();
    let mut status = status::StatusFile::new(tmp.path());
    assert_eq!(status.on_msg(&TrainMsg::Started(info(tmp.path()))), None);
    let mut log = JsonLines::open(&dir.metrics_file()).unwrap();
    for step in (5..=20).step_by(5) {
        let stats = StepStats {
            step,
            epoch: if step <= 10 { 1 } else { 2 },
            batch: 0,
            d_loss: 1.0,
            g_loss: 2.0,
            d_real: 0.5,
            d_fake: 0.5,
            lr: 2e-4,
            steps_per_s: 10.0,
            elapsed_s: 1.0,
            g_grad_norm: Some(step as f32),
            d_grad_norm: None,
        };
        let quality = (step % 10 == 0).then_some(QualityFields {
            score: step as f64 / 10.0,
            fcd: 1.0,
            fcd_floor: 0.5,
            recognised: 0.5,
            class_shares: [0.1; 10],
            agreement: None,
            kid: 0.25,
            kid_std: 0.01,
            kid_floor: 0.001,
            precision: 0.75,
            recall: 0.5,
            precision_ceiling: 0.9,
            recall_ceiling: 0.9,
            class_spread: [Some(0.8); 10],
        });
        log.append(&MetricsRecord { stats, quality }).unwrap();
    }
    // Two alarms, written out of order; one line is damaged.
    std::fs::write(
        dir.events_file(),
        "{\"step\":15,\"kind\":\"stalled\",\"message\":\"later\"}\n\
         {\"step\":\n\
         {\"step\":5,\"kind\":\"d_wins\",\"message\":\"first\"}\n",
    )
    .unwrap();
    std::fs::write(dir.metrics_file().with_extension("jsonl"), {
        let mut text = std::fs::read_to_string(dir.metrics_file()).unwrap();
        text.push_str("not json\n");
        text
    })
    .unwrap();
    let pixels: Vec<u8> = (0..4 * 784).map(|i| (i % 251) as u8 + 1).collect();
    let png = crate::files::image::grid_png(&pixels, 28, 28, 2).unwrap();
    std::fs::write(dir.epoch_samples(2), png).unwrap();
    let checkpoint = dir.step_checkpoint(20);
    status.on_msg(&TrainMsg::Finished {
        reason: FinishReason::Completed,
        step: 20,
        last_checkpoint: Some(checkpoint.clone()),
    });

    let replay = load(tmp.path()).unwrap();
    assert_eq!(replay.last_step, 20);
    assert_eq!(replay.last_quality_step, Some(20));
    assert_eq!(replay.bad_lines, 1);
    let mut state = crate::run::state::RunState::new();
    for msg in &replay.msgs {
        state.on_msg(msg);
    }
    assert_eq!(state.step(), Some(20));
    assert_eq!(state.score_history().total(), 2);
    assert_eq!(state.quality().map(|q| q.score), Some(2.0));
    assert_eq!(state.quality().map(|q| q.kid), Some(0.25));
    assert_eq!(state.last_step().and_then(|s| s.g_grad_norm), Some(20.0));
    let alarms: Vec<_> = replay
        .msgs
        .iter()
        .filter_map(|m| match m {
            TrainMsg::Alarm(a) => Some((a.step, a.kind)),
            _ => None,
        })
        .collect();
    assert_eq!(
        alarms,
        [
            (5, crate::protocol::AlarmKind::DWins),
            (15, crate::protocol::AlarmKind::Stalled)
        ]
    );
    assert_eq!(state.last_alarm().map(|a| a.step), Some(15));
    assert_eq!(state.samples().map(|g| (g.step, g.count())), Some((20, 4)));
    assert_eq!(state.samples().map(|g| g.pixels.clone()), Some(pixels));
    assert_eq!(state.last_checkpoint(), Some(&checkpoint));
    assert_eq!(
        *state.phase(),
        crate::run::state::Phase::Finished(FinishReason::Completed)
    );
    let note = replay.ended_note(tmp.path());
    assert!(
        note.contains("not running") && note.contains("completed at step 20"),
        "{note}"
    );
    assert!(note.contains("step-0000020.safetensors"), "{note}");
}

#[test]
fn a_killed_run_says_it_ended_without_a_word() {
    let tmp = tempfile::tempdir().unwrap();
    let mut status = status::StatusFile::new(tmp.path());
    status.on_msg(&TrainMsg::Started(info(tmp.path())));
    let replay = load(tmp.path()).unwrap();
    assert!(
        replay.ended_note(tmp.path()).contains("killed?"),
        "{}",
        replay.ended_note(tmp.path())
    );
    assert!(
        !replay
            .msgs
            .iter()
            .any(|m| matches!(m, TrainMsg::Finished { .. }))
    );
}

#[test]
fn a_folder_that_is_no_run_is_an_error() {
    let tmp = tempfile::tempdir().unwrap();
    let err = load(tmp.path()).unwrap_err().to_string();
    assert!(err.contains("not a gan-tui run folder"), "{err}");
    assert!(load(&tmp.path().join("missing")).is_err());
}
