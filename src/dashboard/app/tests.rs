//! Tests of the dashboard state: keys, acknowledgements, notes, the summary.

use std::path::PathBuf;

use super::*;
use crate::dashboard::theme::{Theme, ThemeSet};
use crate::protocol::{EpochSummary, FinishReason, QualityReport, SampleGrid, SaveReason};
use crate::run::history::SCORE_POINTS;
use crate::run::state::tests::{info, step};

fn running() -> App {
    let mut app = App::new();
    app.on_msg(TrainMsg::Started(info()));
    app
}

#[test]
fn quit_sends_stop_then_waits_for_finished() {
    let mut app = running();
    assert_eq!(app.update(Action::Quit), Some(Command::Stop));
    assert_eq!(app.run().phase(), &Phase::Stopping);
    assert!(!app.should_exit());
    // Commands are refused while stopping.
    assert_eq!(app.update(Action::SaveCheckpoint), None);
    assert_eq!(app.update(Action::TogglePause), None);
    app.on_msg(TrainMsg::CheckpointSaved {
        path: PathBuf::from("/runs/x/ckpt-900.safetensors"),
        step: 900,
        reason: SaveReason::Exit,
    });
    assert!(!app.should_exit());
    app.on_msg(TrainMsg::Finished {
        reason: FinishReason::Stopped,
        step: 900,
        last_checkpoint: Some(PathBuf::from("/runs/x/ckpt-900.safetensors")),
    });
    assert!(app.should_exit());
    assert_eq!(app.run().phase(), &Phase::Finished(FinishReason::Stopped));
}

#[test]
fn quitting_twice_stops_waiting() {
    let mut app = running();
    assert_eq!(app.update(Action::Quit), Some(Command::Stop));
    assert_eq!(app.update(Action::Quit), None);
    assert!(app.should_exit());
}

#[test]
fn esc_closes_help_before_it_quits() {
    let mut app = running();
    assert_eq!(app.update(Action::ToggleHelp), None);
    assert!(app.help_open());
    assert_eq!(app.update(Action::Back), None);
    assert!(!app.help_open());
    assert_eq!(app.run().phase(), &Phase::Training);
    assert_eq!(app.update(Action::Back), Some(Command::Stop));
}

#[test]
fn paused_shows_only_what_the_trainer_acknowledged() {
    let mut app = running();
    assert_eq!(app.update(Action::TogglePause), Some(Command::Pause));
    assert!(!app.run().paused());
    assert_eq!(app.pause_requested(), Some(true));
    app.on_msg(TrainMsg::Paused { step: 10 });
    assert!(app.run().paused());
    assert_eq!(app.pause_requested(), None);
    assert_eq!(app.update(Action::TogglePause), Some(Command::Resume));
    assert!(app.run().paused());
    app.on_msg(TrainMsg::Resumed { step: 10 });
    assert!(!app.run().paused());
}

#[test]
fn pressing_pause_twice_before_the_ack_asks_for_resume() {
    let mut app = running();
    assert_eq!(app.update(Action::TogglePause), Some(Command::Pause));
    assert_eq!(app.update(Action::TogglePause), Some(Command::Resume));
    assert_eq!(app.pause_requested(), None);
    app.on_msg(TrainMsg::Paused { step: 3 });
    assert!(app.run().paused());
    app.on_msg(TrainMsg::Resumed { step: 3 });
    assert!(!app.run().paused());
    assert_eq!(app.pause_requested(), None);
}

#[test]
fn local_toggles_send_nothing_and_noise_toggle_sends_its_state() {
    let mut app = running();
    assert_eq!(app.update(Action::ToggleDigitMode), None);
    assert_eq!(app.digit_mode(), DigitMode::HalfBlock);
    assert_eq!(app.update(Action::ToggleDigitMode), None);
    assert_eq!(app.digit_mode(), DigitMode::Ascii);
    assert_eq!(app.update(Action::ToggleHistory), None);
    assert_eq!(app.history_view(), HistoryView::WholeRun);
    assert_eq!(app.update(Action::Resample), Some(Command::Resample));
    assert_eq!(
        app.update(Action::ToggleFreshNoise),
        Some(Command::FreshNoise(true))
    );
    assert_eq!(
        app.update(Action::ToggleFreshNoise),
        Some(Command::FreshNoise(false))
    );
}

#[test]
fn cycling_themes_changes_the_theme_and_warns_only_about_bad_ones() {
    let dir = tempfile::tempdir().ok();
    let dir = dir
        .as_ref()
        .map(|d| d.path())
        .unwrap_or(std::path::Path::new("/nonexistent"));
    std::fs::write(dir.join("zz-bad.toml"), "title = \"nocolour\"\n").ok();
    let (set, warning) = ThemeSet::load("amber", dir, false);
    let mut app = running();
    app.set_themes(set.choice(), warning);
    app.on_msg(TrainMsg::CheckpointSaved {
        path: PathBuf::from("/runs/x/ckpt.safetensors"),
        step: 5,
        reason: SaveReason::EpochEnd,
    });
    assert_eq!(app.theme_name(), "amber");
    assert_eq!(app.update(Action::CycleTheme), None);
    assert_eq!(app.theme_name(), "zz-bad");
    assert_eq!(set.get(app.theme_index()), &Theme::default());
    assert!(app.run().note().is_some_and(|n| n.kind == NoteKind::Warning
        && n.text.contains("zz-bad.toml")
        && n.text.contains("nocolour")));
    assert_eq!(app.update(Action::CycleTheme), None);
    assert_eq!(app.theme_name(), "default");
    assert_eq!(app.run().note(), None);
    app.update(Action::CycleTheme);
    assert_eq!(set.get(app.theme_index()).name, "light");
    // A checkpoint note is not cleared by cycling themes.
    app.on_msg(TrainMsg::CheckpointSaved {
        path: PathBuf::from("/runs/x/ckpt2.safetensors"),
        step: 6,
        reason: SaveReason::Requested,
    });
    app.update(Action::CycleTheme);
    assert!(app.run().note().is_some_and(|n| n.text.contains("ckpt2")));
}

#[test]
fn save_shows_the_path_or_the_error() {
    let mut app = running();
    assert_eq!(
        app.update(Action::SaveCheckpoint),
        Some(Command::SaveCheckpoint)
    );
    assert!(app.saving());
    app.on_msg(TrainMsg::CheckpointFailed {
        path: PathBuf::from("/ro/ckpt.safetensors"),
        error: "permission denied".to_string(),
    });
    assert!(!app.saving());
    let note = app.run().note().cloned();
    assert_eq!(note.as_ref().map(|n| n.kind), Some(NoteKind::Error));
    let text = note.map(|n| n.text).unwrap_or_default();
    assert!(text.contains("/ro/ckpt.safetensors") && text.contains("permission denied"));

    app.on_msg(TrainMsg::CheckpointSaved {
        path: PathBuf::from("/runs/x/ckpt.safetensors"),
        step: 5,
        reason: SaveReason::Requested,
    });
    assert_eq!(
        app.run().last_checkpoint(),
        Some(&PathBuf::from("/runs/x/ckpt.safetensors"))
    );
    assert!(
        app.run()
            .note()
            .is_some_and(|n| n.kind == NoteKind::Ok && n.text.contains("/runs/x/ckpt.safetensors"))
    );
}

#[test]
fn finishing_on_its_own_stays_open_until_quit() {
    let mut app = running();
    app.on_msg(TrainMsg::Finished {
        reason: FinishReason::Completed,
        step: 46_900,
        last_checkpoint: None,
    });
    assert!(!app.should_exit());
    assert_eq!(app.update(Action::Resample), None);
    assert_eq!(app.update(Action::Quit), None);
    assert!(app.should_exit());

    let mut app = running();
    app.set_stay_open_when_done(false);
    app.on_msg(TrainMsg::Finished {
        reason: FinishReason::StepLimit,
        step: 100,
        last_checkpoint: None,
    });
    assert!(app.should_exit());
}

#[test]
fn errors_and_silent_disconnects_end_the_loop() {
    let mut app = running();
    app.on_msg(TrainMsg::Error("out of memory".to_string()));
    assert!(app.should_exit());
    assert_eq!(
        app.run().phase(),
        &Phase::Failed("out of memory".to_string())
    );

    let mut app = running();
    app.on_disconnect();
    assert!(app.should_exit());
    assert!(matches!(app.run().phase(), Phase::Failed(e) if e.contains("panicked")));

    // After a normal finish, the channel closing changes nothing.
    let mut app = running();
    app.on_msg(TrainMsg::Finished {
        reason: FinishReason::Completed,
        step: 1,
        last_checkpoint: None,
    });
    app.on_disconnect();
    assert_eq!(app.run().phase(), &Phase::Finished(FinishReason::Completed));
    assert!(!app.should_exit());
}

#[test]
fn summary_tells_the_story_of_the_run() {
    let mut app = running();
    app.on_msg(TrainMsg::Step(step(1234, 0.5432)));
    app.update(Action::Quit);
    app.on_msg(TrainMsg::Finished {
        reason: FinishReason::Stopped,
        step: 1234,
        last_checkpoint: Some(PathBuf::from("/runs/2024-01-01/ckpt-1234.safetensors")),
    });
    let text = app.summary();
    for want in [
        "reference",
        "built-in MNIST",
        "was stopped",
        "step 1234 of 46900",
        "epoch 2 of 50",
        "D 0.543",
        "G 1.086",
        "12.3s elapsed",
        "/runs/2024-01-01/ckpt-1234.safetensors",
        "Run folder: /runs/2024-01-01",
    ] {
        assert!(text.contains(want), "missing {want:?} in {text}");
    }
    assert!(!text.contains('\n'));

    let mut never = App::new();
    never.on_msg(TrainMsg::Error("no data in /x".to_string()));
    assert!(never.summary().contains("no data in /x"));
}

#[test]
fn the_step_shown_is_the_latest_any_message_mentions() {
    let mut app = running();
    assert_eq!(app.run().step(), None);
    app.on_msg(TrainMsg::Step(step(460, 1.0)));
    app.on_msg(TrainMsg::Paused { step: 466 });
    assert_eq!(app.run().step(), Some(466));
    app.on_msg(TrainMsg::Finished {
        reason: FinishReason::Stopped,
        step: 468,
        last_checkpoint: None,
    });
    assert_eq!(app.run().step(), Some(468));
    assert!(
        app.summary().contains("at step 468 of"),
        "{}",
        app.summary()
    );
}

#[test]
fn a_signal_quits_and_is_remembered() {
    let mut app = running();
    assert_eq!(app.signalled(), None);
    assert_eq!(app.on_signal(15), Some(Command::Stop));
    assert_eq!(app.signalled(), Some(15));
    assert_eq!(app.run().phase(), &Phase::Stopping);
}

#[test]
fn eta_needs_a_speed() {
    let mut app = running();
    assert_eq!(app.run().eta_s(), None);
    app.on_msg(TrainMsg::Step(step(900, 1.0)));
    assert_eq!(app.run().eta_s(), Some(460.0));
    let mut stalled = step(901, 1.0);
    stalled.steps_per_s = 0.0;
    app.on_msg(TrainMsg::Step(stalled));
    assert_eq!(app.run().eta_s(), None);
}

fn report(step: u64, score: f64) -> QualityReport {
    QualityReport {
        step,
        epoch: 1,
        count: 2000,
        score,
        fcd: 12.0,
        fcd_floor: 8.0,
        recognised: 0.9,
        class_shares: [0.1; 10],
        agreement: None,
        kid: 0.0123,
        kid_std: 0.0011,
        kid_floor: 0.0001,
        precision: 0.71,
        recall: 0.52,
        precision_ceiling: 0.78,
        recall_ceiling: 0.77,
        class_spread: [Some(0.9); 10],
        seconds: 1.5,
    }
}

fn epoch_done(quality: Option<QualityReport>) -> EpochSummary {
    EpochSummary {
        epoch: 1,
        epochs: 50,
        step: 938,
        d_loss: 1.0,
        g_loss: 1.0,
        d_real: 0.5,
        d_fake: 0.5,
        steps_per_s: 100.0,
        elapsed_s: 9.4,
        sample_png: None,
        quality,
    }
}

fn grid(labels: Option<Vec<u8>>) -> SampleGrid {
    SampleGrid {
        step: 10,
        width: 28,
        height: 28,
        pixels: vec![0; 10 * 784],
        labels,
    }
}

#[test]
fn e_asks_for_scores_once_and_the_report_answers_the_note() {
    let mut app = running();
    assert_eq!(app.update(Action::Evaluate), Some(Command::Evaluate));
    assert!(app.scoring());
    assert_eq!(
        app.run().note().map(|n| n.text.as_str()),
        Some(SCORING_NOTE)
    );
    // Asked again before the answer: nothing more is sent.
    assert_eq!(app.update(Action::Evaluate), None);
    app.on_msg(TrainMsg::Quality(report(120, 7.25)));
    assert!(!app.scoring());
    assert_eq!(app.run().quality().map(|q| q.step), Some(120));
    assert!(
        app.run().note().is_some_and(|n| n.kind == NoteKind::Ok
            && n.text.contains("2000 digits of step 120")
            && n.text.contains("score 7.25")),
        "{:?}",
        app.run().note()
    );
    // An epoch's report does not touch another note.
    app.on_msg(TrainMsg::CheckpointSaved {
        path: PathBuf::from("/runs/x/epoch-001.safetensors"),
        step: 938,
        reason: SaveReason::EpochEnd,
    });
    app.on_msg(TrainMsg::Quality(report(938, 8.0)));
    assert!(
        app.run()
            .note()
            .is_some_and(|n| n.text.contains("epoch-001"))
    );
    assert_eq!(app.run().score_history().points(), vec![7.25, 8.0]);
    assert_eq!(app.update(Action::Evaluate), Some(Command::Evaluate));
}

#[test]
fn e_is_refused_once_the_trainer_cannot_answer() {
    let mut app = running();
    app.on_msg(TrainMsg::Diverged {
        step: 5,
        d_loss: f32::NAN,
        g_loss: 1.0,
    });
    assert_eq!(app.update(Action::Evaluate), None);
    assert!(
        app.run()
            .note()
            .is_some_and(|n| n.text == "cannot score the digits: training diverged")
    );
    let mut app = running();
    app.update(Action::Quit);
    assert_eq!(app.update(Action::Evaluate), None);
    assert!(!app.scoring());
}

#[test]
fn an_epoch_without_scores_means_none_will_come() {
    let mut app = running();
    assert_eq!(app.update(Action::Evaluate), Some(Command::Evaluate));
    app.on_msg(TrainMsg::EpochDone(epoch_done(None)));
    assert!(app.run().scoring_off() && !app.scoring());
    assert!(
        app.run()
            .note()
            .is_some_and(|n| n.kind == NoteKind::Warning && n.text.contains("run.eval_count = 0"))
    );
    assert_eq!(app.update(Action::Evaluate), None);
    // Scores after all: the judge works.
    app.on_msg(TrainMsg::Quality(report(1876, 8.0)));
    app.on_msg(TrainMsg::EpochDone(epoch_done(None)));
    assert!(!app.run().scoring_off());
    assert_eq!(app.update(Action::Evaluate), Some(Command::Evaluate));

    // An epoch with scores changes nothing.
    let mut app = running();
    app.on_msg(TrainMsg::Quality(report(938, 5.0)));
    app.on_msg(TrainMsg::EpochDone(epoch_done(Some(report(938, 5.0)))));
    assert!(!app.run().scoring_off());
}

#[test]
fn a_judge_that_fails_ends_the_wait_with_its_reason() {
    let mut app = running();
    app.update(Action::Evaluate);
    app.on_msg(TrainMsg::ScoringFailed(
        "the judge could not score the digits: non-finite pixels".to_string(),
    ));
    assert!(!app.scoring());
    let note = app.run().note().cloned();
    assert_eq!(note.as_ref().map(|n| n.kind), Some(NoteKind::Error));
    let text = note.map(|n| n.text).unwrap_or_default();
    assert_eq!(
        text,
        "the judge could not score the digits: non-finite pixels; training goes on"
    );
    // Other files keep their path.
    app.on_msg(TrainMsg::WriteFailed {
        what: "metrics".to_string(),
        path: PathBuf::from("/runs/x/metrics.jsonl"),
        error: "No space left on device (os error 28)".to_string(),
    });
    assert_eq!(
        app.run().note().map(|n| n.text.as_str()),
        Some(
            "metrics failed at /runs/x/metrics.jsonl: No space left on device (os error 28); training goes on"
        )
    );
    assert!(
        app.run()
            .last_error()
            .is_some_and(|e| e.starts_with("metrics failed"))
    );
}

#[test]
fn digit_keys_choose_a_digit_on_conditional_runs_only() {
    // Before any grid, nothing is known about the generator.
    let mut app = running();
    assert_eq!(app.update(Action::ShowDigit(3)), None);
    assert!(
        app.run()
            .note()
            .is_some_and(|n| n.text.contains("no digits drawn yet"))
    );

    // Unconditional: a note names the preset, nothing is sent.
    app.on_msg(TrainMsg::Samples(grid(None)));
    assert_eq!(app.run().conditional(), Some(false));
    assert_eq!(app.update(Action::ShowDigit(3)), None);
    assert_eq!(app.update(Action::AllDigits), None);
    assert!(
        app.run().note().is_some_and(|n| n.kind == NoteKind::Warning
            && n.text.contains("preset `reference`")
            && n.text.contains("does not take a digit")),
        "{:?}",
        app.run().note()
    );
    assert_eq!(app.digit_request(), None);

    // Conditional: a digit, the same digit again for all ten, another, then `a`.
    let mut app = running();
    app.on_msg(TrainMsg::Samples(grid(Some((0..10).collect()))));
    assert_eq!(app.run().conditional(), Some(true));
    assert_eq!(
        app.update(Action::ShowDigit(3)),
        Some(Command::ShowDigit(Some(3)))
    );
    assert_eq!(app.digit_request(), Some(3));
    assert_eq!(
        app.update(Action::ShowDigit(3)),
        Some(Command::ShowDigit(None))
    );
    assert_eq!(app.digit_request(), None);
    assert_eq!(
        app.update(Action::ShowDigit(7)),
        Some(Command::ShowDigit(Some(7)))
    );
    assert_eq!(
        app.update(Action::ShowDigit(0)),
        Some(Command::ShowDigit(Some(0)))
    );
    assert_eq!(
        app.update(Action::AllDigits),
        Some(Command::ShowDigit(None))
    );
    // Already all ten: nothing to ask.
    assert_eq!(app.update(Action::AllDigits), None);
    // Not a digit: ignored.
    assert_eq!(app.update(Action::ShowDigit(10)), None);
    assert_eq!(app.digit_request(), None);

    // Once the run is over, the trainer cannot redraw.
    app.on_msg(TrainMsg::Finished {
        reason: FinishReason::Completed,
        step: 46_900,
        last_checkpoint: None,
    });
    assert_eq!(app.update(Action::ShowDigit(4)), None);
    assert!(
        app.run()
            .note()
            .is_some_and(|n| n.text == "cannot choose a digit: training has ended")
    );
}

#[test]
fn the_score_history_stays_bounded_over_any_number_of_reports() {
    let mut app = running();
    for n in 0..10_000u64 {
        app.on_msg(TrainMsg::Quality(report(n, 1.0 + (n % 9) as f64)));
    }
    let history = app.run().score_history();
    assert_eq!(history.total(), 10_000);
    assert!(history.points().len() <= SCORE_POINTS + 1);
    assert_eq!(app.run().quality().map(|q| q.step), Some(9_999));
}

#[test]
fn divergence_asks_for_q_before_naming_the_checkpoint() {
    let mut app = running();
    app.on_msg(TrainMsg::CheckpointSaved {
        path: PathBuf::from("/runs/x/checkpoints/epoch-011.safetensors"),
        step: 10_318,
        reason: SaveReason::EpochEnd,
    });
    app.on_msg(TrainMsg::Diverged {
        step: 10_400,
        d_loss: f32::NAN,
        g_loss: 3.5,
    });
    let text = app.run().note().map(|n| n.text.clone()).unwrap_or_default();
    assert_eq!(
        text,
        "training diverged at step 10400 (D loss NaN, G loss 3.500) and stopped; press q to quit. \
         Nothing more is saved. The last good checkpoint is /runs/x/checkpoints/epoch-011.safetensors"
    );
    assert_eq!(app.run().phase(), &Phase::Diverged(10_400));
}

#[test]
fn a_live_viewer_steers_but_q_only_leaves_and_x_asks_first() {
    let mut app = running();
    app.set_watch(WatchMode::Live);
    assert_eq!(app.update(Action::TogglePause), Some(Command::Pause));
    // x: a question first; any other key takes it back.
    assert_eq!(app.update(Action::StopRun), None);
    assert_eq!(
        app.run().note().map(|n| n.text.as_str()),
        Some(STOP_CONFIRM_NOTE)
    );
    // News while it waits for the answer does not hide the question.
    app.on_msg(TrainMsg::CheckpointSaved {
        path: PathBuf::from("/runs/x/checkpoints/epoch-001.safetensors"),
        step: 938,
        reason: SaveReason::EpochEnd,
    });
    assert!(app.stop_prompt_shown());
    assert_eq!(app.update(Action::ToggleHistory), None);
    assert!(!app.stop_prompt_shown());
    assert_eq!(app.update(Action::StopRun), None);
    assert_eq!(app.update(Action::StopRun), Some(Command::Stop));
    assert_eq!(app.run().phase(), &Phase::Stopping);
    // q leaves at once and sends nothing.
    let mut app = running();
    app.set_watch(WatchMode::Live);
    assert_eq!(app.update(Action::Quit), None);
    assert!(app.should_exit());
}

#[test]
fn a_replay_refuses_commands_and_a_lost_run_keeps_the_viewer_open() {
    let mut app = running();
    app.set_watch(WatchMode::Replay);
    for action in [
        Action::TogglePause,
        Action::SaveCheckpoint,
        Action::Resample,
        Action::StopRun,
    ] {
        assert_eq!(app.update(action), None, "{action:?}");
    }
    assert!(
        app.run()
            .note()
            .is_some_and(|n| n.text.contains("not running")),
        "{:?}",
        app.run().note()
    );
    let mut app = running();
    app.set_watch(WatchMode::Live);
    app.on_disconnect();
    assert!(!app.should_exit());
    assert!(
        app.run()
            .note()
            .is_some_and(|n| n.text.starts_with("lost the run"))
    );
    app.on_msg(TrainMsg::Error("boom".to_string()));
    assert!(!app.should_exit());
}

#[test]
fn plain_news_from_outside_does_not_hide_a_warning() {
    let mut app = running();
    let news = |text: &str| Note {
        kind: NoteKind::Info,
        text: text.to_string(),
    };
    app.notify(news("control socket: here"));
    assert_eq!(
        app.run().note().map(|n| n.text.as_str()),
        Some("control socket: here")
    );
    app.notify(Note {
        kind: NoteKind::Warning,
        text: "theme bad_colour.toml: blurple".to_string(),
    });
    app.notify(news("viewer 1: pause"));
    assert_eq!(
        app.run().note().map(|n| (n.kind, n.text.as_str())),
        Some((NoteKind::Warning, "theme bad_colour.toml: blurple"))
    );
}

#[test]
fn probe_keys_toggle_their_probe_and_a_failure_turns_it_off() {
    let mut app = App::new();
    app.on_msg(TrainMsg::Started(info()));
    for (action, probe) in [
        (Action::ToggleMorph, Probe::Morph),
        (Action::ToggleNearest, Probe::Nearest),
        (Action::ToggleReading, Probe::Reading),
    ] {
        assert_eq!(app.update(action), Some(Command::Probe { probe, on: true }));
        assert_eq!(
            app.update(action),
            Some(Command::Probe { probe, on: false })
        );
    }
    app.update(Action::ToggleNearest);
    assert!(app.probes().nearest);
    app.on_msg(TrainMsg::ProbeFailed {
        probe: Probe::Nearest,
        error: "no judge".to_string(),
    });
    assert!(!app.probes().nearest);
    assert!(
        app.run()
            .note()
            .is_some_and(|n| n.text.contains("no judge"))
    );
}

#[test]
fn the_overlay_key_says_so_when_the_run_is_not_a_fork() {
    let mut app = App::new();
    assert_eq!(app.update(Action::ToggleParentOverlay), None);
    assert!(app.parent_overlay().is_none());
    assert!(
        app.run()
            .note()
            .is_some_and(|n| n.text.contains("not a fork"))
    );
}

/// A 2x2 grid drawn at `step`, its pixels telling it apart.
fn grid_at(step: u64) -> SampleGrid {
    SampleGrid {
        step,
        width: 2,
        height: 2,
        pixels: vec![(step % 251) as u8; 4],
        labels: None,
    }
}

/// A run through `epochs` epochs of 938 steps, a grid every 100 steps, each epoch's end told.
fn filmed(epochs: u32) -> App {
    let mut app = running();
    for epoch in 1..=epochs {
        let end = u64::from(epoch) * 938;
        for s in (end - 937..=end).filter(|s| s % 100 == 0) {
            app.on_msg(TrainMsg::Step(step(s, 1.0)));
            app.on_msg(TrainMsg::Samples(grid_at(s)));
        }
        app.on_msg(TrainMsg::EpochDone(EpochSummary {
            epoch,
            step: end,
            ..epoch_done(None)
        }));
    }
    app
}

fn shown_step(app: &App) -> Option<u64> {
    app.shown_samples().map(|g| g.step)
}

fn note(app: &App) -> String {
    app.run().note().map(|n| n.text.clone()).unwrap_or_default()
}

#[test]
fn brackets_step_back_through_the_kept_grids_and_forward_to_live() {
    let mut app = filmed(2);
    assert!(app.showing_live());
    assert_eq!(shown_step(&app), Some(1800));
    assert_eq!(app.update(Action::Filmstrip(FilmStep::Newer)), None);
    assert!(
        note(&app).contains("showing the live digits"),
        "{}",
        note(&app)
    );
    // Epoch 1's last grid, then the latest 8 (1100-1800, the live one among them).
    let kept: Vec<u64> = app
        .filmstrip()
        .frames()
        .iter()
        .map(|f| f.grid.step)
        .collect();
    assert_eq!(
        kept,
        vec![900, 1100, 1200, 1300, 1400, 1500, 1600, 1700, 1800]
    );
    assert_eq!(app.update(Action::Filmstrip(FilmStep::Older)), None);
    assert!(!app.showing_live());
    assert_eq!(shown_step(&app), Some(1700));
    // The shown pixels are that grid's, not the live one's.
    assert_eq!(
        app.shown_samples().map(|g| g.pixels.clone()),
        Some(vec![(1700 % 251) as u8; 4])
    );
    for _ in 0..7 {
        app.update(Action::Filmstrip(FilmStep::Older));
    }
    let at = app.film_position();
    assert_eq!(
        at.map(|p| p.label()),
        Some("step 900 · epoch 1 · 1/9".into())
    );
    app.update(Action::Filmstrip(FilmStep::Older));
    assert!(note(&app).contains("oldest grid kept"), "{}", note(&app));
    assert_eq!(shown_step(&app), Some(900));
    // A grid that comes meanwhile does not move the view.
    app.on_msg(TrainMsg::Samples(grid_at(1900)));
    assert_eq!(shown_step(&app), Some(900));
    // 1100 fell out of the latest 8 when 1900 came.
    for _ in 0..7 {
        app.update(Action::Filmstrip(FilmStep::Newer));
    }
    assert_eq!(shown_step(&app), Some(1800));
    app.update(Action::Filmstrip(FilmStep::Newer));
    assert!(app.showing_live());
    assert_eq!(shown_step(&app), Some(1900));
    assert!(note(&app).contains("back to the live digits"));
    // New grids show as they come again.
    app.on_msg(TrainMsg::Samples(grid_at(2000)));
    assert_eq!(shown_step(&app), Some(2000));
}

#[test]
fn keys_that_redraw_the_digits_bring_the_live_grid_back() {
    for (action, command) in [
        (Action::Resample, Command::Resample),
        (Action::ToggleFreshNoise, Command::FreshNoise(true)),
        (
            Action::ToggleReading,
            Command::Probe {
                probe: Probe::Reading,
                on: true,
            },
        ),
    ] {
        let mut app = filmed(1);
        app.update(Action::Filmstrip(FilmStep::Older));
        assert!(!app.showing_live());
        assert_eq!(app.update(action), Some(command));
        assert!(app.showing_live(), "{action:?}");
        assert!(
            note(&app).starts_with("back to the live digits"),
            "{action:?}"
        );
    }
    // Keys that leave the digits alone keep the older grid shown.
    let mut app = filmed(1);
    app.update(Action::Filmstrip(FilmStep::Older));
    for action in [
        Action::TogglePause,
        Action::ToggleHistory,
        Action::CycleSmoothing,
        Action::ToggleLogScale,
    ] {
        app.update(action);
        assert!(!app.showing_live(), "{action:?}");
    }
    // A replay refuses to resample, and so stays where it is.
    let mut app = filmed(1);
    app.set_watch(WatchMode::Replay);
    app.update(Action::Filmstrip(FilmStep::Older));
    assert_eq!(app.update(Action::Resample), None);
    assert!(!app.showing_live());
    assert!(note(&app).contains("cannot resample"));
}

#[test]
fn a_replay_reviews_the_folders_epoch_grids() {
    let mut app = running();
    app.set_watch(WatchMode::Replay);
    for epoch in 1..=3u32 {
        app.add_epoch_grid(epoch, grid_at(u64::from(epoch) * 938));
    }
    for s in 1..=2814 {
        app.on_msg(TrainMsg::Step(step(s, 1.0)));
    }
    // The replay's newest grid comes as a message too: kept once.
    app.on_msg(TrainMsg::Samples(grid_at(2814)));
    assert_eq!(app.filmstrip().frames().len(), 3);
    app.update(Action::Filmstrip(FilmStep::Older));
    assert_eq!(
        app.film_position().map(|p| p.label()),
        Some("step 1876 · epoch 2 · 2/3".into())
    );
    // Nothing to ask the run for: the probes of an older grid are none.
    assert!(app.probes_of_shown().is_none());
}

#[test]
fn a_long_run_keeps_a_bounded_filmstrip() {
    use crate::dashboard::filmstrip::{EPOCH_GRIDS, RECENT_GRIDS};
    let app = filmed(150);
    let frames = app.filmstrip().frames();
    assert!(
        frames.len() <= EPOCH_GRIDS + RECENT_GRIDS,
        "{}",
        frames.len()
    );
    // The run can still be reviewed from its start: the oldest grid kept is an early epoch's.
    let first = frames.first().and_then(|f| f.epoch);
    assert!(first.is_some_and(|e| e <= 4), "{first:?}");
}

#[test]
fn brackets_before_any_grid_say_so() {
    let mut app = running();
    assert_eq!(app.update(Action::Filmstrip(FilmStep::Older)), None);
    assert!(note(&app).contains("no sample grids yet"), "{}", note(&app));
    assert!(app.showing_live());
}

#[test]
fn z_cycles_the_smoothing_and_l_toggles_the_log_scale() {
    let mut app = running();
    let mut weights = Vec::new();
    for _ in 0..5 {
        weights.push(app.curves().smoothing());
        assert_eq!(app.update(Action::CycleSmoothing), None);
    }
    assert_eq!(weights, vec![0.0, 0.6, 0.9, 0.99, 0.0]);
    assert!(!app.curves().log_scale());
    assert_eq!(app.update(Action::ToggleLogScale), None);
    assert!(app.curves().log_scale());
    app.update(Action::ToggleLogScale);
    assert!(!app.curves().log_scale());
}

#[test]
fn the_step_axis_follows_the_logged_steps() {
    let app = filmed(1);
    assert_eq!(app.step_axis().recent.tail(3), vec![700.0, 800.0, 900.0]);
}
