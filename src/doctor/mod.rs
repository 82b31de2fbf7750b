//! The GAN doctor: health rules over a run's logged steps and the judge's scores, each raising an
//! `Alarm` on the step it starts to hold, with what was seen and what to try. It also keeps the
//! best Fréchet distance so far, which the best checkpoint and `train.early_stop` follow.
//!
//! Plain numbers in, alarms out: no I/O, no tensors. The trainer feeds it and writes what it
//! says to `events.jsonl`; the README's "Health alarms" section states every rule below.

use std::collections::VecDeque;

use crate::protocol::{Alarm, AlarmKind, QualityReport, StepStats};

/// `d_wins`: logged steps the rule looks back over.
pub const D_WINS_STEPS: usize = 20;
/// `d_wins`: D(x) at least this, and D(G(z)) at most `D_WINS_FAKE`, on every one of them...
pub const D_WINS_REAL: f32 = 0.9;
pub const D_WINS_FAKE: f32 = 0.1;
/// ... and G's loss climbing (its mean over the newer half of them above the older half's), or
/// at least this high on every one of them (D(G(z)) under 0.7%: G's gradient has all but
/// vanished, whichever way its loss drifts).
pub const D_WINS_G_LOSS: f32 = 5.0;

/// `exploding_gradients`: a norm more than this many times the median of the norms logged
/// before it...
pub const EXPLODE_FACTOR: f32 = 50.0;
/// ... over at most this many logged steps, once there are at least `EXPLODE_MIN` of them.
pub const EXPLODE_WINDOW: usize = 50;
pub const EXPLODE_MIN: usize = 10;

/// `mode_collapse`: a digit the judge reads this rarely (a fifth of a fair tenth) has all but
/// vanished from the generator's repertoire.
pub const RARE_SHARE: f64 = 0.02;
/// `mode_collapse`: the generated digits of a class spread less than this share of real
/// digits' spread in the judge's feature space.
pub const NARROW_SPREAD: f64 = 0.25;
/// `mode_collapse`, conditional recipes: the judge reads the asked-for digit less often.
pub const MIN_AGREEMENT: f64 = 0.5;

/// `stalled`: epoch scorings in a row without a Fréchet distance below the best before them.
pub const STALL_SCORINGS: u32 = 3;

/// What the messages suggest, once each.
const TRY_LOWER_RATE: &str = "a lower learning rate (--lr)";
const BEST_FILE: &str = "checkpoints/best.safetensors";

/// A rule's memory of whether it has already spoken: an alarm is raised when the rule starts
/// to hold, and again only after it has stopped holding for `release` checks in a row.
#[derive(Debug, Clone)]
struct Latch {
    raised: bool,
    quiet: usize,
    release: usize,
}

impl Latch {
    fn new(release: usize) -> Latch {
        Latch {
            raised: false,
            quiet: 0,
            release: release.max(1),
        }
    }

    /// Whether to raise the alarm, given whether the rule holds now.
    fn check(&mut self, holds: bool) -> bool {
        if holds {
            self.quiet = 0;
            let first = !self.raised;
            self.raised = true;
            first
        } else {
            self.quiet += 1;
            if self.quiet >= self.release {
                self.raised = false;
            }
            false
        }
    }
}

/// The best Fréchet distance of a run's epoch scorings and how many came after it.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Best {
    pub fcd: f64,
    pub step: u64,
    /// Epoch scorings since the best one that were no better.
    pub since: u32,
}

/// Watches one run. Feed it every logged step and every scoring, in order.
#[derive(Debug, Clone)]
pub struct Doctor {
    recent: VecDeque<StepStats>,
    g_norms: VecDeque<f32>,
    d_norms: VecDeque<f32>,
    best: Option<Best>,
    d_wins: Latch,
    exploding: Latch,
    collapse: Latch,
    stalled: Latch,
}

impl Default for Doctor {
    fn default() -> Self {
        Doctor::new()
    }
}

impl Doctor {
    pub fn new() -> Doctor {
        Doctor {
            recent: VecDeque::with_capacity(D_WINS_STEPS + 1),
            g_norms: VecDeque::with_capacity(EXPLODE_WINDOW + 1),
            d_norms: VecDeque::with_capacity(EXPLODE_WINDOW + 1),
            best: None,
            d_wins: Latch::new(D_WINS_STEPS),
            exploding: Latch::new(EXPLODE_MIN),
            collapse: Latch::new(1),
            stalled: Latch::new(1),
        }
    }

    /// The best epoch scoring so far.
    pub fn best(&self) -> Option<Best> {
        self.best
    }

    /// The rules over logged steps: `d_wins` and `exploding_gradients`.
    pub fn on_step(&mut self, s: &StepStats) -> Vec<Alarm> {
        let mut alarms = Vec::new();
        self.recent.push_back(*s);
        if self.recent.len() > D_WINS_STEPS {
            self.recent.pop_front();
        }
        let d_wins = self.d_wins_text();
        if self.d_wins.check(d_wins.is_some())
            && let Some(message) = d_wins
        {
            alarms.push(alarm(s.step, AlarmKind::DWins, message));
        }
        let exploding = [
            ("G", s.g_grad_norm, &mut self.g_norms),
            ("D", s.d_grad_norm, &mut self.d_norms),
        ]
        .into_iter()
        .filter_map(|(net, norm, window)| exploding_text(net, norm?, window))
        .collect::<Vec<_>>();
        if self.exploding.check(!exploding.is_empty()) {
            let message = format!(
                "{}. Try {TRY_LOWER_RATE} or a decaying train.lr_schedule; if the losses go wild, resume from an earlier checkpoint (a loss that turns NaN stops the run by itself)",
                exploding.join("; ")
            );
            alarms.push(alarm(s.step, AlarmKind::ExplodingGradients, message));
        }
        alarms
    }

    /// `d_wins`'s reading of the recent steps, when it holds.
    fn d_wins_text(&self) -> Option<String> {
        let steps = &self.recent;
        if steps.len() < D_WINS_STEPS {
            return None;
        }
        let sure = steps
            .iter()
            .all(|s| s.d_real >= D_WINS_REAL && s.d_fake <= D_WINS_FAKE);
        let half = steps.len() / 2;
        let mean = |it: &mut dyn Iterator<Item = &StepStats>, f: fn(&StepStats) -> f32| {
            let v: Vec<f32> = it.map(f).collect();
            v.iter().sum::<f32>() / v.len().max(1) as f32
        };
        let older = mean(&mut steps.iter().take(half), |s| s.g_loss);
        let newer = mean(&mut steps.iter().skip(half), |s| s.g_loss);
        let high = steps.iter().all(|s| s.g_loss >= D_WINS_G_LOSS);
        if !(sure && (newer > older || high)) {
            return None;
        }
        let (first, last) = (steps.front()?.step, steps.back()?.step);
        Some(format!(
            "D tells real from fake almost perfectly: D(x) {:.3} and D(G(z)) {:.3} on average over steps {first}-{last}, while G's loss went from {older:.2} to {newer:.2}, so G learns little. Try {TRY_LOWER_RATE}, a preset that holds D back (tuned: label smoothing and dropout), or wgan-gp, whose critic keeps giving G useful gradients",
            mean(&mut steps.iter(), |s| s.d_real),
            mean(&mut steps.iter(), |s| s.d_fake),
        ))
    }

    /// `mode_collapse`, after any scoring.
    pub fn on_scoring(&mut self, q: &QualityReport) -> Vec<Alarm> {
        let mut seen = Vec::new();
        let rare: Vec<String> = (0..)
            .zip(q.class_shares)
            .filter(|(_, share)| *share < RARE_SHARE)
            .map(|(digit, share)| format!("{digit} ({:.1}%)", share * 100.0))
            .collect();
        if !rare.is_empty() {
            seen.push(format!(
                "the judge reads almost none of the digits as {} (a fair share is 10%)",
                rare.join(", ")
            ));
        }
        let narrow: Vec<String> = (0..)
            .zip(q.class_spread)
            .filter_map(|(digit, r)| Some((digit, r.filter(|r| *r < NARROW_SPREAD)?)))
            .map(|(digit, r)| format!("{digit}s {r:.2}x"))
            .collect();
        if !narrow.is_empty() {
            seen.push(format!(
                "generated digits spread far less than real ones of their class in the judge's feature space ({})",
                narrow.join(", ")
            ));
        }
        if let Some(a) = q.agreement.filter(|a| *a < MIN_AGREEMENT) {
            seen.push(format!(
                "the judge reads the asked-for digit in only {:.0}% of the digits",
                a * 100.0
            ));
        }
        let mut alarms = Vec::new();
        if self.collapse.check(!seen.is_empty()) {
            let message = format!(
                "mode collapse at the scoring of step {}: {}. Try {TRY_LOWER_RATE}, resuming from {BEST_FILE}, or wgan-gp, which resists collapse",
                q.step,
                seen.join("; ")
            );
            alarms.push(alarm(q.step, AlarmKind::ModeCollapse, message));
        }
        alarms
    }

    /// An epoch's scoring: `mode_collapse` as any scoring, then the best Fréchet distance and
    /// `stalled`. The flag says whether this scoring is the new best.
    pub fn on_epoch_scoring(&mut self, q: &QualityReport) -> (Vec<Alarm>, bool) {
        let mut alarms = self.on_scoring(q);
        let improved = self.track_fcd(q.step, q.fcd);
        if let Some(message) = self.stalled_text(q.fcd) {
            alarms.push(alarm(q.step, AlarmKind::Stalled, message));
        }
        (alarms, improved)
    }

    /// Takes in an epoch scoring from before a resume: the best so far and `stalled`'s memory,
    /// without alarms (they were raised the first time).
    pub fn replay_epoch_fcd(&mut self, step: u64, fcd: f64) {
        self.track_fcd(step, fcd);
        let _ = self.stalled_text(fcd);
    }

    /// Whether `fcd` at `step` is the new best; counts the scorings since the best otherwise.
    fn track_fcd(&mut self, step: u64, fcd: f64) -> bool {
        if !fcd.is_finite() {
            if let Some(b) = &mut self.best {
                b.since += 1;
            }
            return false;
        }
        match &mut self.best {
            Some(b) if fcd >= b.fcd => {
                b.since += 1;
                false
            }
            _ => {
                self.best = Some(Best {
                    fcd,
                    step,
                    since: 0,
                });
                true
            }
        }
    }

    fn stalled_text(&mut self, fcd: f64) -> Option<String> {
        let best = self.best?;
        let holds = best.since >= STALL_SCORINGS;
        if !self.stalled.check(holds) {
            return None;
        }
        Some(format!(
            "the Fréchet distance has not improved on its best, {:.1} at step {}, for {} scorings (now {fcd:.1}). Try a decaying rate (train.lr_schedule = \"cosine\"), or stop: {BEST_FILE} holds the best generator, and train.early_stop ends such runs by itself",
            best.fcd, best.step, best.since
        ))
    }
}

/// The message of `exploding_gradients` for one network, when its new `norm` is far above the
/// median of the norms before it; then `norm` joins the window.
fn exploding_text(net: &str, norm: f32, window: &mut VecDeque<f32>) -> Option<String> {
    let text = if window.len() >= EXPLODE_MIN && norm.is_finite() {
        let mut sorted: Vec<f32> = window.iter().copied().filter(|v| v.is_finite()).collect();
        sorted.sort_by(f32::total_cmp);
        let median = sorted.get(sorted.len() / 2).copied().unwrap_or(f32::NAN);
        (median > 0.0 && norm > EXPLODE_FACTOR * median).then(|| {
            format!(
                "{net}'s gradient norm {} is {}x its median {} over the last {} logged steps",
                number(norm),
                ratio(norm / median),
                number(median),
                window.len()
            )
        })
    } else {
        None
    };
    window.push_back(norm);
    if window.len() > EXPLODE_WINDOW {
        window.pop_front();
    }
    text
}

/// A number in three decimals, or in scientific form when that would show nothing or too much:
/// `12.500`, `3.20e-7`, `1.67e21`.
fn number(v: f32) -> String {
    let a = v.abs();
    if a != 0.0 && !(1e-3..1e6).contains(&a) {
        format!("{v:.2e}")
    } else {
        format!("{v:.3}")
    }
}

/// A ratio in whole numbers, scientific beyond a million.
fn ratio(r: f32) -> String {
    if r < 1e6 {
        format!("{r:.0}")
    } else {
        format!("{r:.2e}")
    }
}

fn alarm(step: u64, kind: AlarmKind, message: String) -> Alarm {
    Alarm {
        step,
        kind,
        message,
    }
}

#[cfg(test)]
mod tests;
