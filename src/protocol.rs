//! The messages between the trainer thread and a front end: plain data only, no tensors.
//!
//! `TrainMsg` flows from the trainer to the front end, `Command` the other way. These are the
//! only types the trainer and the front ends share. They derive serde's traits: a line of
//! `metrics.jsonl` records a `StepStats`, and the control socket carries both kinds to viewers
//! in another process.

use std::path::PathBuf;

/// What the front end asks the trainer to do.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Command {
    /// Stop taking steps until `Resume` (the trainer blocks, using no CPU).
    Pause,
    Resume,
    /// Write a checkpoint now.
    SaveCheckpoint,
    /// Draw new noise for the sample grid and send a fresh grid at once, even while paused.
    Resample,
    /// `true`: every sample refresh uses fresh noise; `false`: the fixed noise batch.
    FreshNoise(bool),
    /// Score the generator with the judge now (a `Quality` message follows).
    Evaluate,
    /// Conditional recipes: draw the sample grid as this digit only, or (`None`) all ten.
    ShowDigit(Option<u8>),
    /// Turn a probe of the generator on or off; while on, a `Probes` message follows every
    /// sample grid (and one at once).
    Probe {
        probe: Probe,
        on: bool,
    },
    /// Finish the current step, save a checkpoint and end the run.
    Stop,
}

/// The probes of the generator the dashboard can ask for.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Probe {
    /// A strip of digits morphing between two noise vectors (and two digits, if conditional).
    Morph,
    /// Each shown digit's nearest training digit in the judge's feature space.
    Nearest,
    /// The judge's reading (digit, confidence) of each shown digit.
    Reading,
}

/// What the probes that are on found, for the sample grid of the same step.
#[derive(Debug, Clone, PartialEq, Default, serde::Serialize, serde::Deserialize)]
pub struct ProbeReport {
    pub step: u64,
    pub morph: Option<MorphStrip>,
    /// One per digit of the sample grid, in its order.
    pub readings: Option<Vec<Reading>>,
    pub nearest: Option<NearestReport>,
}

/// Digits of the generator along straight lines between two inputs, as grey pixels.
#[derive(Debug, Clone, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct MorphStrip {
    pub width: usize,
    pub height: usize,
    /// Digits per row.
    pub steps: usize,
    /// Row after row of `steps` digits: first from noise vector A to B (conditional: as digit
    /// `digits.0`), then, for conditional presets, from digit `digits.0` to `digits.1` (noise A).
    pub pixels: Vec<u8>,
    pub digits: Option<(u8, u8)>,
}

/// The judge's reading of one digit.
#[derive(Debug, Clone, Copy, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct Reading {
    pub digit: u8,
    /// The judge's probability of that digit.
    pub confidence: f32,
}

/// Each shown digit's nearest training digit in the judge's feature space.
#[derive(Debug, Clone, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct NearestReport {
    pub width: usize,
    pub height: usize,
    /// One nearest training digit per shown digit, grey pixels, digit after digit.
    pub pixels: Vec<u8>,
    /// The feature-space distance of each shown digit to its nearest training digit.
    pub distances: Vec<f32>,
    /// Median of `distances`.
    pub generated_median: f32,
    /// Median distance of real test digits to their nearest training digit: what a generator
    /// that does not copy should not beat.
    pub test_median: f32,
    /// Training digits searched.
    pub searched: usize,
}

impl NearestReport {
    /// The shown digits sit closer to training digits than real test digits do.
    pub fn memorising(&self) -> bool {
        self.generated_median < self.test_median
    }
}

/// Facts about a run that do not change while it trains.
#[derive(Debug, Clone, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct RunInfo {
    pub preset: String,
    /// Where the digits come from: "built-in MNIST" or a folder.
    pub data_source: String,
    pub images: usize,
    pub epochs: u32,
    pub batch_size: usize,
    pub steps_per_epoch: u64,
    /// Steps the run will take (epochs x steps per epoch, or `--max-steps` if smaller).
    pub total_steps: u64,
    /// The step the run starts from (non-zero when resuming).
    pub start_step: u64,
    pub run_dir: PathBuf,
    pub seed: u64,
    /// Digits the judge scores after each epoch and on request; 0: scoring is off.
    pub eval_count: usize,
}

/// The numbers of one logged training step; `metrics.jsonl` holds one per line (all but `batch`).
#[derive(Debug, Clone, Copy, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct StepStats {
    /// Steps taken so far in the run (1 after the first step).
    pub step: u64,
    /// 1-based epoch this step belongs to.
    pub epoch: u32,
    /// 1-based batch index within the epoch; not in `metrics.jsonl` (the step and the epoch
    /// length give it).
    #[serde(skip)]
    pub batch: u64,
    pub d_loss: f32,
    pub g_loss: f32,
    /// Mean D(x) over the real batch, as a probability.
    pub d_real: f32,
    /// Mean D(G(z)) over the fake batch, as a probability.
    pub d_fake: f32,
    pub lr: f64,
    pub steps_per_s: f64,
    pub elapsed_s: f64,
    /// L2 norm of the gradient G's optimiser applied at this step (all of G's trainable
    /// tensors as one vector); absent when G took no update in it (wgan-gp's G, four steps in
    /// five).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub g_grad_norm: Option<f32>,
    /// The same for D.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub d_grad_norm: Option<f32>,
}

/// A batch of generated digits, as 8-bit grey pixels (0 = black background, 255 = white ink).
#[derive(Debug, Clone, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct SampleGrid {
    /// The training step whose generator drew these digits.
    pub step: u64,
    pub width: usize,
    pub height: usize,
    /// `count * height * width` pixels, digit after digit, each row-major.
    pub pixels: Vec<u8>,
    /// The digit each sample was asked for, for conditional models.
    pub labels: Option<Vec<u8>>,
}

impl SampleGrid {
    /// Whole digits held; 0 for a grid whose sizes are zero or absurd (one from a viewer's
    /// socket can say anything).
    pub fn count(&self) -> usize {
        let per = self.width.checked_mul(self.height).unwrap_or(0);
        self.pixels.len().checked_div(per).unwrap_or(0)
    }

    /// The pixels of digit `i`, row-major, or `None` past the end.
    pub fn digit(&self, i: usize) -> Option<&[u8]> {
        let per = self.width.checked_mul(self.height)?;
        let start = i.checked_mul(per)?;
        self.pixels.get(start..start.checked_add(per)?)
    }
}

/// Means over one finished epoch.
#[derive(Debug, Clone, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct EpochSummary {
    pub epoch: u32,
    pub epochs: u32,
    pub step: u64,
    pub d_loss: f32,
    pub g_loss: f32,
    pub d_real: f32,
    pub d_fake: f32,
    pub steps_per_s: f64,
    pub elapsed_s: f64,
    /// The sample grid written for this epoch, if writing it worked.
    pub sample_png: Option<PathBuf>,
    /// The judge's scores at the epoch's end, when scoring is on.
    pub quality: Option<QualityReport>,
}

/// The digit judge's view of the generator's digits.
#[derive(Debug, Clone, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct QualityReport {
    /// The step whose generator was scored.
    pub step: u64,
    pub epoch: u32,
    /// Digits scored.
    pub count: usize,
    /// exp(mean KL(p(y|x) || p(y))): 10 is perfect, 1 is one class.
    pub score: f64,
    /// Fréchet distance between the judge's features of these digits and of the test digits.
    pub fcd: f64,
    /// The same distance for as many real training digits: the floor a generator can reach.
    pub fcd_floor: f64,
    /// Share of digits the judge recognises with p > 0.9.
    pub recognised: f64,
    /// Share of digits the judge reads as 0, 1, ..., 9.
    pub class_shares: [f64; 10],
    /// Conditional recipes: share of digits the judge reads as the digit asked for.
    pub agreement: Option<f64>,
    /// KID against the test digits: the unbiased squared kernel MMD of the judge's features,
    /// averaged over random subsets, and its standard deviation over them.
    pub kid: f64,
    pub kid_std: f64,
    /// The KID of as many real training digits: the floor, near 0.
    pub kid_floor: f64,
    /// Share of these digits inside the test digits' k-nearest-neighbour manifold (realism).
    pub precision: f64,
    /// Share of test digits inside these digits' manifold (variety covered).
    pub recall: f64,
    /// Real training digits' own precision and recall: the ceiling.
    pub precision_ceiling: f64,
    pub recall_ceiling: f64,
    /// Per digit the judge reads: how widely these digits spread in its feature space, as a
    /// share of how widely real test digits of that class spread; `None` for a class too few
    /// digits were read as.
    pub class_spread: [Option<f64>; 10],
    /// Wall time the scoring took.
    pub seconds: f64,
}

/// A health alarm: a rule of `doctor` that started to hold at `step`. `events.jsonl` in the run
/// folder holds one per line.
#[derive(Debug, Clone, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct Alarm {
    pub step: u64,
    pub kind: AlarmKind,
    /// What was seen, with numbers, and what to try.
    pub message: String,
}

/// The health rules (`doctor` defines each).
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum AlarmKind {
    DWins,
    ModeCollapse,
    ExplodingGradients,
    Stalled,
}

impl AlarmKind {
    pub const ALL: [AlarmKind; 4] = [
        AlarmKind::DWins,
        AlarmKind::ModeCollapse,
        AlarmKind::ExplodingGradients,
        AlarmKind::Stalled,
    ];

    /// The name `events.jsonl` and the front ends use.
    pub fn name(self) -> &'static str {
        match self {
            AlarmKind::DWins => "d_wins",
            AlarmKind::ModeCollapse => "mode_collapse",
            AlarmKind::ExplodingGradients => "exploding_gradients",
            AlarmKind::Stalled => "stalled",
        }
    }

    /// One letter marking the alarm on the dashboard's plots.
    pub fn letter(self) -> char {
        match self {
            AlarmKind::DWins => 'd',
            AlarmKind::ModeCollapse => 'c',
            AlarmKind::ExplodingGradients => 'x',
            AlarmKind::Stalled => 's',
        }
    }
}

/// Why a checkpoint was written.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub enum SaveReason {
    Requested,
    EpochEnd,
    Exit,
}

/// Why the run ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub enum FinishReason {
    /// Every epoch ran.
    Completed,
    /// `max_steps` was reached.
    StepLimit,
    /// The front end asked to stop.
    Stopped,
    /// A loss became NaN or infinite; nothing after the last good checkpoint was saved.
    Diverged,
    /// `train.early_stop` scorings in a row found no lower Fréchet distance than the best.
    EarlyStopped,
}

/// What the trainer tells the front end.
#[derive(Debug, Clone, PartialEq, serde::Serialize, serde::Deserialize)]
pub enum TrainMsg {
    Started(RunInfo),
    Step(StepStats),
    Samples(SampleGrid),
    /// The judge's scores, after each epoch and on `Command::Evaluate`.
    Quality(QualityReport),
    EpochDone(EpochSummary),
    CheckpointSaved {
        path: PathBuf,
        step: u64,
        reason: SaveReason,
    },
    CheckpointFailed {
        path: PathBuf,
        error: String,
    },
    /// Another file of the run (metrics, a sample grid) could not be written; training goes on.
    WriteFailed {
        /// What the file is, e.g. "metrics" or "sample grid".
        what: String,
        path: PathBuf,
        error: String,
    },
    /// A health rule started to hold (also appended to `events.jsonl`).
    Alarm(Alarm),
    /// An epoch's scoring found the lowest Fréchet distance so far: its checkpoint was copied to
    /// `path` (`checkpoints/best.safetensors`).
    BestCheckpoint {
        path: PathBuf,
        step: u64,
        fcd: f64,
    },
    /// The judge could not score the digits (a request, or an epoch's end); training goes on.
    ScoringFailed(String),
    /// The probes that are on, for the sample grid just sent.
    Probes(ProbeReport),
    /// A probe could not be computed (the judge failed to load, say); it is turned off.
    ProbeFailed {
        probe: Probe,
        error: String,
    },
    /// A loss became NaN or infinite at `step`. The trainer waits, paused, for `Stop`; it saves
    /// nothing more, so the last good checkpoint stays the newest.
    Diverged {
        step: u64,
        d_loss: f32,
        g_loss: f32,
    },
    Paused {
        step: u64,
    },
    Resumed {
        step: u64,
    },
    /// The run is over; no further messages follow.
    Finished {
        reason: FinishReason,
        step: u64,
        last_checkpoint: Option<PathBuf>,
    },
    /// The run cannot go on; no further messages follow.
    Error(String),
}
