//! How the loss plots are read: smoothing by an exponential moving average (TensorBoard's
//! slider, debiased the same way) and a log scale, as the maths on plain points.

/// The smoothing weights `z` cycles through; the first is off.
pub const SMOOTHING_WEIGHTS: [f32; 4] = [0.0, 0.6, 0.9, 0.99];

/// The dashboard's choice of smoothing and scale for the loss plots.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct CurveView {
    /// Index into `SMOOTHING_WEIGHTS`.
    smoothing: usize,
    log_scale: bool,
}

/// How values map to bar heights.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Scale {
    Linear,
    /// log10 of the value: every value plotted is positive.
    Log,
    /// sign(v) x log10(1 + |v|), for a plot with values <= 0 while the log scale is on: a log
    /// scale cannot show them, this one is logarithmic for large values of either sign and
    /// passes through 0.
    SymLog,
}

impl Scale {
    pub fn apply(self, value: f32) -> f32 {
        match self {
            Scale::Linear => value,
            Scale::Log => value.log10(),
            Scale::SymLog => value.signum() * value.abs().ln_1p() / std::f32::consts::LN_10,
        }
    }

    pub fn apply_all(self, points: &[f32]) -> Vec<f32> {
        points.iter().map(|&v| self.apply(v)).collect()
    }
}

impl CurveView {
    /// The smoothing weight: 0 is off.
    pub fn smoothing(self) -> f32 {
        SMOOTHING_WEIGHTS
            .get(self.smoothing)
            .copied()
            .unwrap_or(0.0)
    }

    /// Off, 0.6, 0.9, 0.99, off, ...
    pub fn next_smoothing(&mut self) {
        self.smoothing = (self.smoothing + 1) % SMOOTHING_WEIGHTS.len();
    }

    pub fn log_scale(self) -> bool {
        self.log_scale
    }

    pub fn toggle_log_scale(&mut self) {
        self.log_scale = !self.log_scale;
    }

    /// The points smoothed at the chosen weight (as they are when smoothing is off).
    pub fn smooth(self, points: &[f32]) -> Vec<f32> {
        ema(points, self.smoothing())
    }

    /// The scale for a plot of `points`: linear, or with the log scale on, log10 if every
    /// finite value is positive, else the symmetric log.
    pub fn scale_for(self, points: &[f32]) -> Scale {
        if !self.log_scale {
            Scale::Linear
        } else if points.iter().filter(|v| v.is_finite()).all(|&v| v > 0.0) {
            Scale::Log
        } else {
            Scale::SymLog
        }
    }

    /// The loss panel title's words for the choice: `smooth 0.9`, `log`; none when neither.
    pub fn labels(self) -> Vec<String> {
        let mut out = Vec::new();
        let weight = self.smoothing();
        if weight > 0.0 {
            out.push(format!("smooth {weight}"));
        }
        if self.log_scale {
            out.push("log".to_string());
        }
        out
    }
}

/// An exponential moving average debiased as TensorBoard's smoothing is: each point is
/// `last = weight * last + (1 - weight) * value`, divided by `1 - weight^n` after `n` values so
/// the curve does not start at 0. Non-finite values stay where they are (a gap) and do not
/// enter the average. Weight 0 returns the points as they are.
pub fn ema(points: &[f32], weight: f32) -> Vec<f32> {
    if weight <= 0.0 {
        return points.to_vec();
    }
    let weight = f64::from(weight.min(0.999_999));
    let (mut last, mut debias) = (0.0f64, 1.0f64);
    points
        .iter()
        .map(|&v| {
            if !v.is_finite() {
                return v;
            }
            last = weight * last + (1.0 - weight) * f64::from(v);
            debias *= weight;
            (last / (1.0 - debias)) as f32
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn close(a: &[f32], b: &[f32]) -> bool {
        a.len() == b.len()
            && a.iter()
                .zip(b)
                .all(|(x, y)| (x.is_nan() && y.is_nan()) || (x - y).abs() <= 1e-5 * (1.0 + y.abs()))
    }

    #[test]
    fn the_average_is_debiased_like_tensorboards() {
        // By hand: 0.5-weighted, debiased by 1 - 0.5^n.
        let smoothed = ema(&[2.0, 4.0, 8.0], 0.5);
        let want = [2.0, (0.5 * 1.0 + 2.0) / 0.75, (0.5 * 2.5 + 4.0) / 0.875];
        assert!(close(&smoothed, &want), "{smoothed:?}");
        // A constant stays constant from the first point on, at any weight.
        for w in SMOOTHING_WEIGHTS {
            assert!(close(&ema(&[3.0; 50], w), &[3.0; 50]), "{w}");
        }
        // Off is the identity; a heavier weight follows a step more slowly.
        let jump: Vec<f32> = (0..20).map(|i| if i < 10 { 0.0 } else { 1.0 }).collect();
        assert_eq!(ema(&jump, 0.0), jump);
        let light = ema(&jump, 0.6);
        let heavy = ema(&jump, 0.9);
        assert!(light[12] > heavy[12] && heavy[12] > 0.0 && light[12] < 1.0);
    }

    #[test]
    fn gaps_stay_gaps_and_do_not_poison_the_average() {
        let smoothed = ema(&[1.0, f32::NAN, 1.0, f32::INFINITY, 1.0], 0.9);
        assert!(smoothed[1].is_nan());
        assert_eq!(smoothed[3], f32::INFINITY);
        assert!(close(&[smoothed[0], smoothed[2], smoothed[4]], &[1.0; 3]));
    }

    #[test]
    fn smoothing_cycles_through_its_weights_and_back_to_off() {
        let mut view = CurveView::default();
        let mut seen = Vec::new();
        for _ in 0..5 {
            seen.push(view.smoothing());
            view.next_smoothing();
        }
        assert_eq!(seen, vec![0.0, 0.6, 0.9, 0.99, 0.0]);
        assert!(view.labels().contains(&"smooth 0.6".to_string()));
        view.toggle_log_scale();
        assert_eq!(view.labels(), vec!["smooth 0.6", "log"]);
    }

    #[test]
    fn the_log_scale_takes_symlog_for_values_at_or_below_zero() {
        let mut view = CurveView::default();
        assert_eq!(view.scale_for(&[-1.0, 2.0]), Scale::Linear);
        view.toggle_log_scale();
        assert_eq!(view.scale_for(&[0.1, 2.0, f32::NAN]), Scale::Log);
        assert_eq!(view.scale_for(&[0.0, 2.0]), Scale::SymLog);
        assert_eq!(view.scale_for(&[-3.0, 2.0]), Scale::SymLog);
        assert!(close(
            &Scale::Log.apply_all(&[0.01, 1.0, 100.0]),
            &[-2.0, 0.0, 2.0]
        ));
        // Odd, through 0, and logarithmic far from it.
        let sym = Scale::SymLog.apply_all(&[-99.0, 0.0, 9.0, 999.0]);
        assert!(close(&sym, &[-2.0, 0.0, 1.0, 3.0]), "{sym:?}");
        assert!(Scale::SymLog.apply(f32::NAN).is_nan());
        // Order is kept, so the bars rise and fall with the values.
        let values = [-50.0, -1.0, -0.1, 0.0, 0.2, 3.0, 40.0];
        let mapped = Scale::SymLog.apply_all(&values);
        assert!(mapped.windows(2).all(|w| w[0] < w[1]), "{mapped:?}");
    }
}
