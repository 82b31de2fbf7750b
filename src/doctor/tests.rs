//! Tests of the health rules on made-up steps and scores.

use super::*;

fn step(n: u64, d_real: f32, d_fake: f32, g_loss: f32) -> StepStats {
    StepStats {
        step: n,
        epoch: 1,
        batch: n,
        d_loss: 0.5,
        g_loss,
        d_real,
        d_fake,
        lr: 2e-4,
        steps_per_s: 10.0,
        elapsed_s: 1.0,
        g_grad_norm: Some(1.0),
        d_grad_norm: Some(2.0),
    }
}

fn report(step: u64, fcd: f64) -> QualityReport {
    QualityReport {
        step,
        epoch: 1,
        count: 2000,
        score: 9.0,
        fcd,
        fcd_floor: 6.0,
        recognised: 0.95,
        class_shares: [0.1; 10],
        agreement: Some(0.98),
        kid: 0.01,
        kid_std: 0.001,
        kid_floor: 0.0,
        precision: 0.7,
        recall: 0.6,
        precision_ceiling: 0.75,
        recall_ceiling: 0.75,
        class_spread: [Some(0.9); 10],
        seconds: 1.0,
    }
}

fn kinds(alarms: &[Alarm]) -> Vec<AlarmKind> {
    alarms.iter().map(|a| a.kind).collect()
}

#[test]
fn d_wins_needs_a_sure_d_for_the_whole_window_and_a_climbing_g_loss() {
    let mut doctor = Doctor::new();
    let mut raised = Vec::new();
    for n in 1..=40u64 {
        let alarms = doctor.on_step(&step(n * 10, 0.97, 0.03, 3.0 + n as f32 * 0.1));
        raised.extend(alarms);
    }
    // Raised once, on the first step the window was full.
    assert_eq!(kinds(&raised), vec![AlarmKind::DWins]);
    assert_eq!(raised[0].step, D_WINS_STEPS as u64 * 10);
    assert!(raised[0].message.contains("Try"), "{}", raised[0].message);

    // A flat, moderate G loss, or one step where D was unsure, is not D winning; a G loss too
    // high to matter which way it drifts is.
    let mut flat = Doctor::new();
    let mut unsure = Doctor::new();
    let mut falling_but_high = Doctor::new();
    let mut high = Vec::new();
    for n in 1..=40u64 {
        assert!(flat.on_step(&step(n, 0.97, 0.03, 3.0)).is_empty());
        high.extend(falling_but_high.on_step(&step(n, 1.0, 0.0, 1000.0 - n as f32)));
        let d_real = if n % 10 == 0 { 0.6 } else { 0.97 };
        assert!(unsure.on_step(&step(n, d_real, 0.03, n as f32)).is_empty());
    }
    assert_eq!(kinds(&high), vec![AlarmKind::DWins]);
}

#[test]
fn a_healthy_balance_raises_nothing() {
    let mut doctor = Doctor::new();
    for n in 1..=500u64 {
        let wobble = (n as f32 * 0.7).sin();
        let mut s = step(
            n,
            0.7 + 0.1 * wobble,
            0.3 - 0.1 * wobble,
            1.0 + 0.5 * wobble,
        );
        s.g_grad_norm = Some(1.0 + 0.5 * wobble);
        s.d_grad_norm = Some(2.0 - wobble);
        assert!(doctor.on_step(&s).is_empty(), "step {n}");
    }
}

#[test]
fn a_gradient_far_above_its_median_explodes_once() {
    let mut doctor = Doctor::new();
    for n in 1..=(EXPLODE_MIN as u64) {
        assert!(doctor.on_step(&step(n, 0.7, 0.3, 1.0)).is_empty());
    }
    let mut big = step(100, 0.7, 0.3, 1.0);
    big.d_grad_norm = Some(120.0);
    let alarms = doctor.on_step(&big);
    assert_eq!(kinds(&alarms), vec![AlarmKind::ExplodingGradients]);
    assert!(
        alarms[0]
            .message
            .starts_with("D's gradient norm 120.000 is 60x its median 2.000"),
        "{}",
        alarms[0].message
    );
    // Still high at the next step: the same episode, not a new alarm.
    assert!(doctor.on_step(&big).is_empty());
    // Too few steps to know a median: nothing.
    let mut early = Doctor::new();
    assert!(early.on_step(&big).is_empty());
}

#[test]
fn a_vanished_class_a_narrow_class_or_ignored_labels_is_mode_collapse() {
    let mut doctor = Doctor::new();
    assert!(doctor.on_scoring(&report(100, 30.0)).is_empty());
    let mut rare = report(200, 30.0);
    rare.class_shares[3] = 0.005;
    let alarms = doctor.on_scoring(&rare);
    assert_eq!(kinds(&alarms), vec![AlarmKind::ModeCollapse]);
    assert!(
        alarms[0].message.contains("as 3 (0.5%)"),
        "{}",
        alarms[0].message
    );
    // Held at the next scoring: no repeat; gone, then back: raised again.
    assert!(doctor.on_scoring(&rare).is_empty());
    assert!(doctor.on_scoring(&report(400, 30.0)).is_empty());
    let mut narrow = report(500, 30.0);
    narrow.class_spread[7] = Some(0.1);
    let alarms = doctor.on_scoring(&narrow);
    assert!(
        alarms[0].message.contains("feature space (7s 0.10x)"),
        "{}",
        alarms[0].message
    );
    let mut ignored = report(600, 30.0);
    ignored.agreement = Some(0.3);
    let mut fresh = Doctor::new();
    let alarms = fresh.on_scoring(&ignored);
    assert!(
        alarms[0].message.contains("asked-for digit in only 30%"),
        "{}",
        alarms[0].message
    );
}

#[test]
fn the_best_fcd_is_tracked_and_a_run_that_stops_improving_stalls() {
    let mut doctor = Doctor::new();
    let fcds = [90.0, 50.0, 40.0, 41.0, 40.0, 45.0, 39.0, 39.5];
    let mut log = Vec::new();
    for (i, fcd) in fcds.iter().enumerate() {
        let (alarms, improved) = doctor.on_epoch_scoring(&report(i as u64 * 100, *fcd));
        log.push((improved, kinds(&alarms)));
    }
    let improved: Vec<bool> = log.iter().map(|l| l.0).collect();
    assert_eq!(
        improved,
        [true, true, true, false, false, false, true, false]
    );
    // Stalled at the third scoring in a row without a new best (40.0 is not below 40.0).
    let stalled: Vec<usize> = log
        .iter()
        .enumerate()
        .filter(|(_, l)| l.1.contains(&AlarmKind::Stalled))
        .map(|(i, _)| i)
        .collect();
    assert_eq!(stalled, vec![5]);
    let best = doctor.best().unwrap();
    assert_eq!((best.fcd, best.step, best.since), (39.0, 600, 1));
}

#[test]
fn a_replayed_history_continues_where_it_was() {
    let mut doctor = Doctor::new();
    for (i, fcd) in [50.0, 40.0, 45.0, 46.0].iter().enumerate() {
        doctor.replay_epoch_fcd(i as u64, *fcd);
    }
    assert_eq!(doctor.best().map(|b| (b.fcd, b.since)), Some((40.0, 2)));
    let (alarms, improved) = doctor.on_epoch_scoring(&report(9, 47.0));
    assert!(!improved);
    assert_eq!(kinds(&alarms), vec![AlarmKind::Stalled]);
}

#[test]
fn numbers_in_messages_stay_readable_however_large_or_small() {
    assert_eq!(number(12.5), "12.500");
    assert_eq!(number(3.2e-7), "3.20e-7");
    assert_eq!(number(0.0), "0.000");
    assert_eq!(ratio(25.4), "25");
    assert_eq!(ratio(1.67e21), "1.67e21");
}

#[test]
fn alarms_are_written_as_the_events_file_says() {
    let a = alarm(12, AlarmKind::ExplodingGradients, "m".to_string());
    assert_eq!(
        serde_json::to_string(&a).unwrap(),
        r#"{"step":12,"kind":"exploding_gradients","message":"m"}"#
    );
    for kind in AlarmKind::ALL {
        let json = serde_json::to_string(&kind).unwrap();
        assert_eq!(json, format!("\"{}\"", kind.name()));
    }
}
