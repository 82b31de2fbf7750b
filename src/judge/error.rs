//! What can go wrong loading, training or asking the judge, each message saying where and what.

use std::path::PathBuf;

use super::frechet::FrechetError;
use crate::data::DataError;
use crate::nn::params::ParamError;

#[derive(Debug, thiserror::Error)]
pub enum JudgeError {
    #[error("{}: cannot read the judge's weights: {source}", .path.display())]
    Read {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("{}: cannot write the judge's weights: {source}", .path.display())]
    Write {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("{origin}: not a safetensors file ({reason})")]
    NotSafetensors { origin: String, reason: String },
    #[error("{origin}: a safetensors file, but not gan-tui judge weights ({reason})")]
    NotAJudge { origin: String, reason: String },
    #[error(
        "{origin}: the weights are for the network `{found}`, this gan-tui's judge is `{expected}`; \
         retrain them with `gan-tui judge train`"
    )]
    WrongArchitecture {
        origin: String,
        found: String,
        expected: String,
    },
    #[error("{origin}: tensor `{name}` is {dtype}, the judge's file holds {expected} there")]
    WrongDtype {
        origin: String,
        name: String,
        dtype: String,
        expected: &'static str,
    },
    #[error("{origin}: {source}")]
    Params { origin: String, source: ParamError },
    #[error("{origin}: test-feature statistics: {reason}")]
    BadStats { origin: String, reason: String },
    #[error("cannot encode the judge's weights: {0}")]
    Encode(String),
    #[error(
        "{len} pixel values are not a whole number of 784-pixel digits ({} digits and {} values over)",
        .len / 784, .len % 784
    )]
    BadImageLength { len: usize },
    #[error(
        "pixel {index} (digit {}) is {value}; the judge takes finite pixels in [-1, 1]",
        .index / 784
    )]
    NotFinite { index: usize, value: f32 },
    #[error("Fréchet distance: {0}")]
    Frechet(#[from] FrechetError),
    #[error("scoring needs at least 2 digits (a covariance needs two), got {count}")]
    TooFew { count: usize },
    #[error("training the judge needs at least one epoch, got {epochs}")]
    NoEpochs { epochs: u32 },
    #[error("the loss became {loss} in epoch {epoch}, batch {batch}; try another --seed")]
    Diverged { epoch: u32, batch: u64, loss: f32 },
    #[error(transparent)]
    Data(#[from] DataError),
    #[error("the tensor library failed: {0}")]
    Device(String),
}

impl From<dfdx::tensor::CpuError> for JudgeError {
    fn from(e: dfdx::tensor::CpuError) -> Self {
        JudgeError::Device(e.to_string())
    }
}
