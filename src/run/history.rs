//! Bounded loss histories: a ring of recent values and a down-sampled whole run per series, so a
//! 50-epoch run costs the same memory and drawing time as a short one.

use std::collections::VecDeque;

use crate::protocol::StepStats;

/// Logged steps kept at full resolution per series: more than any terminal is wide.
pub const RECENT_POINTS: usize = 512;
/// Points kept for the whole-run view per series, however long the run.
pub const FULL_POINTS: usize = 256;
/// Judge reports kept for the score's trend, however long the run (one point per report until
/// then, after that means of neighbouring reports).
pub const SCORE_POINTS: usize = 256;

/// A bounded ring of the latest values.
#[derive(Debug, Clone, PartialEq)]
pub struct Ring {
    values: VecDeque<f32>,
    capacity: usize,
}

impl Ring {
    pub fn new(capacity: usize) -> Ring {
        Ring {
            values: VecDeque::with_capacity(capacity),
            capacity: capacity.max(1),
        }
    }

    pub fn push(&mut self, value: f32) {
        if self.values.len() == self.capacity {
            self.values.pop_front();
        }
        self.values.push_back(value);
    }

    pub fn len(&self) -> usize {
        self.values.len()
    }

    pub fn is_empty(&self) -> bool {
        self.values.is_empty()
    }

    /// The last `n` values, oldest first.
    pub fn tail(&self, n: usize) -> Vec<f32> {
        let skip = self.values.len().saturating_sub(n);
        self.values.iter().skip(skip).copied().collect()
    }
}

/// The whole run in at most `capacity` points: each point is the mean of `per_point` values,
/// and when the points fill up, neighbours merge pairwise and `per_point` doubles. Memory and
/// drawing cost stay the same from the first step to the last.
#[derive(Debug, Clone, PartialEq)]
pub struct Downsampled {
    points: Vec<f32>,
    capacity: usize,
    per_point: u64,
    pending_sum: f64,
    pending_count: u64,
    total: u64,
}

impl Downsampled {
    /// `capacity` is rounded up to an even number of at least 2 so pairs always merge whole.
    pub fn new(capacity: usize) -> Downsampled {
        let capacity = capacity.max(2).div_ceil(2) * 2;
        Downsampled {
            points: Vec::with_capacity(capacity),
            capacity,
            per_point: 1,
            pending_sum: 0.0,
            pending_count: 0,
            total: 0,
        }
    }

    pub fn push(&mut self, value: f32) {
        self.total += 1;
        self.pending_sum += f64::from(value);
        self.pending_count += 1;
        if self.pending_count < self.per_point {
            return;
        }
        self.points
            .push((self.pending_sum / self.pending_count as f64) as f32);
        self.pending_sum = 0.0;
        self.pending_count = 0;
        if self.points.len() >= self.capacity {
            self.points = self
                .points
                .chunks(2)
                .map(|pair| pair.iter().sum::<f32>() / pair.len() as f32)
                .collect();
            self.per_point *= 2;
        }
    }

    /// The points, oldest first, including a partly filled last one.
    pub fn points(&self) -> Vec<f32> {
        let mut points = self.points.clone();
        if self.pending_count > 0 {
            points.push((self.pending_sum / self.pending_count as f64) as f32);
        }
        points
    }

    /// Values averaged into each full point.
    pub fn per_point(&self) -> u64 {
        self.per_point
    }

    /// Values pushed since the start.
    pub fn total(&self) -> u64 {
        self.total
    }
}

/// One plotted series: a recent ring and the down-sampled whole run.
#[derive(Debug, Clone, PartialEq)]
pub struct History {
    pub recent: Ring,
    pub full: Downsampled,
}

impl Default for History {
    fn default() -> Self {
        History {
            recent: Ring::new(RECENT_POINTS),
            full: Downsampled::new(FULL_POINTS),
        }
    }
}

impl History {
    pub fn push(&mut self, value: f32) {
        self.recent.push(value);
        self.full.push(value);
    }
}

/// The plotted numbers of a step.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Series {
    DLoss,
    GLoss,
    DReal,
    DFake,
    /// The norm of G's gradient.
    GGradNorm,
    /// The norm of D's gradient.
    DGradNorm,
}

impl Series {
    /// The losses and D's verdicts, each plotted on its own.
    pub const ALL: [Series; 4] = [Series::DLoss, Series::GLoss, Series::DReal, Series::DFake];
    /// The gradient norms, plotted side by side.
    pub const GRAD_NORMS: [Series; 2] = [Series::GGradNorm, Series::DGradNorm];
    /// Every series a run keeps a history of.
    pub const KEPT: [Series; 6] = [
        Series::DLoss,
        Series::GLoss,
        Series::DReal,
        Series::DFake,
        Series::GGradNorm,
        Series::DGradNorm,
    ];

    pub fn label(self) -> &'static str {
        match self {
            Series::DLoss => "D loss",
            Series::GLoss => "G loss",
            Series::DReal => "D(x)",
            Series::DFake => "D(G(z))",
            Series::GGradNorm => "|∇G|",
            Series::DGradNorm => "|∇D|",
        }
    }

    pub fn value(self, stats: &StepStats) -> f32 {
        match self {
            Series::DLoss => stats.d_loss,
            Series::GLoss => stats.g_loss,
            Series::DReal => stats.d_real,
            Series::DFake => stats.d_fake,
            // Not measured at this step: a gap in the plot.
            Series::GGradNorm => stats.g_grad_norm.unwrap_or(f32::NAN),
            Series::DGradNorm => stats.d_grad_norm.unwrap_or(f32::NAN),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ring_keeps_only_the_latest_values() {
        let mut ring = Ring::new(3);
        for v in 0..10 {
            ring.push(v as f32);
        }
        assert_eq!(ring.len(), 3);
        assert_eq!(ring.tail(10), vec![7.0, 8.0, 9.0]);
        assert_eq!(ring.tail(2), vec![8.0, 9.0]);
    }

    #[test]
    fn downsampled_stays_bounded_and_keeps_the_mean_shape() {
        let mut full = Downsampled::new(8);
        for v in 0..1000 {
            full.push(v as f32);
        }
        let points = full.points();
        assert!(points.len() <= 9, "{} points", points.len());
        assert!(points.len() >= 4, "{} points", points.len());
        assert_eq!(full.total(), 1000);
        // Means of consecutive runs of a ramp rise steadily and span the range.
        assert!(points.windows(2).all(|w| w[0] < w[1]), "{points:?}");
        let first = points.first().copied().unwrap_or(f32::NAN);
        assert!(
            (first - (full.per_point() as f32 - 1.0) / 2.0).abs() < 1e-3,
            "{points:?}"
        );
    }

    #[test]
    fn downsampled_merges_pairwise_exactly() {
        let mut full = Downsampled::new(4);
        for v in [1.0, 3.0, 5.0, 7.0] {
            full.push(v);
        }
        // Four points filled the capacity and merged into two of two each.
        assert_eq!(full.points(), vec![2.0, 6.0]);
        assert_eq!(full.per_point(), 2);
        full.push(9.0);
        assert_eq!(full.points(), vec![2.0, 6.0, 9.0]);
        full.push(11.0);
        assert_eq!(full.points(), vec![2.0, 6.0, 10.0]);
    }
}
