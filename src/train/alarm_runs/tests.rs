//! Real training runs made to fail in each way the doctor knows, on the first 1024 training
//! digits (16 steps an epoch), and a healthy one: each raises its alarm (and only a healthy run
//! raises none), written to `events.jsonl` as the front ends get it.

use std::path::Path;
use std::sync::mpsc;
use std::time::Duration;

use super::checkpoint::Checkpoint;
use super::trainer::{TrainJob, spawn};
use crate::config::{Config, Preset};
use crate::data::{self, Split};
use crate::files::run_dir::RunDir;
use crate::protocol::{Alarm, AlarmKind, FinishReason, TrainMsg};

/// A run's alarms, how it finished, and the best checkpoint it reported.
struct Outcome {
    alarms: Vec<Alarm>,
    finished: FinishReason,
    best: Option<(u64, f64)>,
}

fn run(dir: &Path, config: Config, digits: usize) -> Outcome {
    let job = TrainJob {
        config_toml: config.to_toml(),
        config,
        data: data::load(None, Split::Train).unwrap().take(digits),
        run_dir: RunDir::create(dir).unwrap(),
        resume: None,
        builder: None,
    };
    let (msg_tx, msg_rx) = mpsc::channel();
    let (_cmd_tx, cmd_rx) = mpsc::channel();
    let handle = spawn(job, msg_tx, cmd_rx).unwrap();
    let (mut alarms, mut best) = (Vec::new(), None);
    let finished = loop {
        match msg_rx.recv_timeout(Duration::from_secs(300)).unwrap() {
            TrainMsg::Alarm(a) => alarms.push(a),
            TrainMsg::BestCheckpoint { step, fcd, .. } => best = Some((step, fcd)),
            TrainMsg::Finished { reason, .. } => break reason,
            TrainMsg::Error(e) => panic!("{e}"),
            _ => {}
        }
    };
    handle.join().unwrap();
    // The events file says what the front end was told, line for line.
    let text = std::fs::read_to_string(dir.join("events.jsonl")).unwrap();
    let written: Vec<Alarm> = text
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    assert_eq!(written, alarms);
    Outcome {
        alarms,
        finished,
        best,
    }
}

fn kinds(alarms: &[Alarm]) -> Vec<AlarmKind> {
    alarms.iter().map(|a| a.kind).collect()
}

/// The reference MLP GAN at a rate `lr`, logging every step.
fn reference(lr: f64, epochs: u32, eval_count: usize) -> Config {
    Config {
        preset: Preset::Reference,
        lr,
        epochs,
        log_every: 1,
        eval_count,
        keep_checkpoints: 1,
        ..Config::default()
    }
}

#[test]
fn a_rate_far_too_high_lets_d_win_and_explodes_the_gradients() {
    let tmp = tempfile::tempdir().unwrap();
    // 100 times the reference's rate.
    let out = run(tmp.path(), reference(0.02, 8, 0), 1024);
    let kinds = kinds(&out.alarms);
    assert!(kinds.contains(&AlarmKind::DWins), "{:?}", out.alarms);
    assert!(
        kinds.contains(&AlarmKind::ExplodingGradients),
        "{:?}",
        out.alarms
    );
    for a in &out.alarms {
        assert!(a.message.contains("Try "), "{a:?}");
    }
    // The gradient norms are in every metrics line.
    let metrics = std::fs::read_to_string(tmp.path().join("metrics.jsonl")).unwrap();
    for line in metrics.lines() {
        let v: serde_json::Value = serde_json::from_str(line).unwrap();
        assert!(v["g_grad_norm"].as_f64().is_some(), "{line}");
        assert!(v["d_grad_norm"].as_f64().is_some(), "{line}");
    }
}

#[test]
fn a_generator_stuck_on_one_picture_collapses_stalls_and_stops_early() {
    let tmp = tempfile::tempdir().unwrap();
    // A rate so high that G's tanh saturates: every digit is the same picture.
    let config = Config {
        early_stop: 3,
        ..reference(0.5, 20, 200)
    };
    let out = run(tmp.path(), config, 1024);
    let kinds = kinds(&out.alarms);
    assert!(kinds.contains(&AlarmKind::ModeCollapse), "{:?}", out.alarms);
    assert!(kinds.contains(&AlarmKind::Stalled), "{:?}", out.alarms);
    // The first scoring was the best; three more without a better one end the run.
    assert_eq!(out.finished, FinishReason::EarlyStopped);
    let (best_step, _) = out.best.unwrap();
    assert_eq!(best_step, 16);
    let best = Checkpoint::load(&tmp.path().join("checkpoints/best.safetensors")).unwrap();
    assert_eq!(best.progress.step, 16);
    // keep_checkpoints = 1 pruned the older numbered ones, never the best.
    let latest = Checkpoint::load(&tmp.path().join("checkpoints/latest.safetensors")).unwrap();
    assert_eq!(latest.progress.step, 64);
    assert!(
        !tmp.path()
            .join("checkpoints/epoch-001.safetensors")
            .exists()
    );
}

#[test]
fn the_default_recipe_training_normally_raises_no_alarm() {
    let tmp = tempfile::tempdir().unwrap();
    // The default preset and settings on all the digits for 300 steps (30 logged), no scoring.
    let config = Config {
        max_steps: Some(300),
        eval_count: 0,
        ..Config::default()
    };
    let out = run(tmp.path(), config, 60_000);
    assert_eq!(out.finished, FinishReason::StepLimit);
    assert!(out.alarms.is_empty(), "{:?}", out.alarms);
}
