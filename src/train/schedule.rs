//! Learning-rate schedules: the rate of every step from the base rate, as a pure function the
//! training loop calls before each step (`gan.set_lr(lr_at(...))`).

use std::f64::consts::PI;

/// Which schedule; the config's `train.lr_schedule` names it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum ScheduleKind {
    /// The base rate throughout.
    #[default]
    Constant,
    /// The base rate times `gamma` after every `every` steps (PyTorch's `StepLR`).
    Step,
    /// Half a cosine from the base rate down to `final_factor` times it at the last step.
    Cosine,
    /// A straight line from the base rate down to `final_factor` times it at the last step.
    Linear,
}

impl ScheduleKind {
    pub const ALL: &'static [ScheduleKind] = &[
        ScheduleKind::Constant,
        ScheduleKind::Step,
        ScheduleKind::Cosine,
        ScheduleKind::Linear,
    ];

    pub fn name(self) -> &'static str {
        match self {
            ScheduleKind::Constant => "constant",
            ScheduleKind::Step => "step",
            ScheduleKind::Cosine => "cosine",
            ScheduleKind::Linear => "linear",
        }
    }

    pub fn from_name(name: &str) -> Option<ScheduleKind> {
        ScheduleKind::ALL.iter().copied().find(|k| k.name() == name)
    }
}

/// A schedule with its settings (those a kind does not use are ignored).
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Schedule {
    pub kind: ScheduleKind,
    /// Steps between drops of the step schedule (at least 1).
    pub every: u64,
    /// What each drop of the step schedule multiplies the rate by.
    pub gamma: f64,
    /// Where the cosine and linear schedules end, as a fraction of the base rate.
    pub final_factor: f64,
}

impl Default for Schedule {
    fn default() -> Self {
        Schedule {
            kind: ScheduleKind::Constant,
            every: 4690,
            gamma: 0.5,
            final_factor: 0.0,
        }
    }
}

/// The learning rate of step `step` (counting from 0: the rate the next update uses after
/// `step` updates) of a run of `total_steps`. Past the end the cosine and linear schedules stay
/// at their final rate; a run of 0 or 1 steps takes the base rate.
pub fn lr_at(schedule: &Schedule, base_lr: f64, step: u64, total_steps: u64) -> f64 {
    // How far through the run, 0 at the first step and 1 at the last.
    let progress = || {
        if total_steps <= 1 {
            0.0
        } else {
            (step.min(total_steps - 1) as f64) / ((total_steps - 1) as f64)
        }
    };
    let end = schedule.final_factor;
    match schedule.kind {
        ScheduleKind::Constant => base_lr,
        ScheduleKind::Step => {
            let drops = step / schedule.every.max(1);
            let drops = i32::try_from(drops).unwrap_or(i32::MAX);
            base_lr * schedule.gamma.powi(drops)
        }
        ScheduleKind::Cosine => {
            base_lr * (end + (1.0 - end) * 0.5 * (1.0 + (PI * progress()).cos()))
        }
        ScheduleKind::Linear => base_lr * (1.0 - (1.0 - end) * progress()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn with(kind: ScheduleKind) -> Schedule {
        Schedule {
            kind,
            ..Schedule::default()
        }
    }

    fn close(a: f64, b: f64) -> bool {
        (a - b).abs() <= 1e-12 * b.abs().max(1e-300)
    }

    #[test]
    fn constant_never_moves() {
        let s = with(ScheduleKind::Constant);
        for step in [0, 1, 500, 9379, 20_000] {
            assert_eq!(lr_at(&s, 2e-4, step, 9380), 2e-4);
        }
    }

    #[test]
    fn step_drops_by_gamma_every_n_steps() {
        let s = Schedule {
            kind: ScheduleKind::Step,
            every: 100,
            gamma: 0.1,
            final_factor: 0.0,
        };
        assert_eq!(lr_at(&s, 1.0, 0, 1000), 1.0);
        assert_eq!(lr_at(&s, 1.0, 99, 1000), 1.0);
        assert!(close(lr_at(&s, 1.0, 100, 1000), 0.1));
        assert!(close(lr_at(&s, 1.0, 250, 1000), 0.01));
        // `every` of 0 is taken as 1 rather than dividing by zero.
        let zero = Schedule { every: 0, ..s };
        assert!(close(lr_at(&zero, 1.0, 3, 10), 1e-3));
        // Very many drops underflow to 0 instead of wrapping.
        assert_eq!(lr_at(&zero, 1.0, u64::MAX, 10), 0.0);
    }

    #[test]
    fn cosine_runs_from_base_to_final_through_the_middle() {
        let s = Schedule {
            final_factor: 0.1,
            ..with(ScheduleKind::Cosine)
        };
        let total = 1001;
        assert!(close(lr_at(&s, 2.0, 0, total), 2.0));
        assert!(close(lr_at(&s, 2.0, 500, total), 2.0 * 0.55));
        assert!(close(lr_at(&s, 2.0, 1000, total), 0.2));
        assert!(close(lr_at(&s, 2.0, 5000, total), 0.2));
        // Falling all the way, flat at both ends.
        let rates: Vec<f64> = (0..total).map(|i| lr_at(&s, 2.0, i, total)).collect();
        assert!(rates.windows(2).all(|w| w[1] <= w[0]));
        assert!(rates[0] - rates[1] < rates[499] - rates[500]);
    }

    #[test]
    fn linear_falls_evenly_to_final() {
        let s = with(ScheduleKind::Linear);
        assert!(close(lr_at(&s, 1.0, 0, 11), 1.0));
        assert!(close(lr_at(&s, 1.0, 5, 11), 0.5));
        assert!(close(lr_at(&s, 1.0, 10, 11), 0.0) || lr_at(&s, 1.0, 10, 11) == 0.0);
        let half = Schedule {
            final_factor: 0.5,
            ..s
        };
        assert!(close(lr_at(&half, 1.0, 10, 11), 0.5));
        assert!(close(lr_at(&half, 1.0, 5, 11), 0.75));
    }

    #[test]
    fn tiny_runs_take_the_base_rate() {
        for kind in ScheduleKind::ALL {
            let s = with(*kind);
            assert_eq!(lr_at(&s, 3e-4, 0, 0), 3e-4, "{kind:?}");
            assert_eq!(lr_at(&s, 3e-4, 0, 1), 3e-4, "{kind:?}");
        }
    }

    #[test]
    fn names_round_trip() {
        for kind in ScheduleKind::ALL {
            assert_eq!(ScheduleKind::from_name(kind.name()), Some(*kind));
        }
        assert_eq!(ScheduleKind::from_name("exponential"), None);
    }
}
