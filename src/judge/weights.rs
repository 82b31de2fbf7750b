//! The judge's weights file: safetensors with the network (F32, PyTorch layouts), the test digits'
//! feature statistics (F64) so start-up needs no pass over the test set, and in the metadata the
//! architecture and how the weights were trained.

use std::collections::{BTreeMap, HashMap};

use nalgebra::{DMatrix, DVector};
use safetensors::tensor::{Dtype, SafeTensors, TensorView};

use super::error::JudgeError;
use super::frechet::GaussianStats;
use super::net::{ARCHITECTURE, BODY_PREFIX, FEATURES, HEAD_PREFIX, Net};
use crate::nn::params::{self, NamedTensor};

const FORMAT: &str = "gan-tui judge";
const VERSION: &str = "1";
const STATS_MEAN: &str = "test_features.mean";
const STATS_COV: &str = "test_features.cov";
/// The weights are made from MNIST, so they carry its credit and licence.
const TRAINED_ON: &str = "MNIST's 60,000 training digits (Yann LeCun, Corinna Cortes, \
     Christopher J.C. Burges; CC BY-SA 3.0)";

/// How a set of weights was made.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct JudgeInfo {
    pub seed: u64,
    pub epochs: u32,
    /// Share of MNIST's 10,000 test digits classified correctly.
    pub test_accuracy: f32,
}

/// Everything a weights file holds.
#[derive(Debug, Clone)]
pub struct JudgeFile {
    pub net: Net,
    pub test_stats: GaussianStats,
    pub info: JudgeInfo,
}

fn f32_bytes(data: &[f32]) -> Vec<u8> {
    data.iter().flat_map(|v| v.to_le_bytes()).collect()
}

fn f64_bytes(data: impl Iterator<Item = f64>) -> Vec<u8> {
    data.flat_map(|v| v.to_le_bytes()).collect()
}

pub fn encode(
    net: &Net,
    test_stats: &GaussianStats,
    info: &JudgeInfo,
) -> Result<Vec<u8>, JudgeError> {
    let meta = HashMap::from([
        ("format".to_string(), FORMAT.to_string()),
        ("format_version".to_string(), VERSION.to_string()),
        ("architecture".to_string(), ARCHITECTURE.to_string()),
        ("seed".to_string(), info.seed.to_string()),
        ("epochs".to_string(), info.epochs.to_string()),
        ("test_accuracy".to_string(), info.test_accuracy.to_string()),
        ("trained_on".to_string(), TRAINED_ON.to_string()),
    ]);
    let tensors: Vec<NamedTensor> = params::export(&net.body, BODY_PREFIX)
        .into_iter()
        .chain(params::export(&net.head, HEAD_PREFIX))
        .collect();
    let dim = test_stats.dim();
    // nalgebra stores column-major; the covariance is symmetric, but write it row-major anyway so
    // the file means what it says.
    let cov_rows = (0..dim).flat_map(|r| (0..dim).map(move |c| (r, c)));
    let mut blobs: Vec<(String, Dtype, Vec<usize>, Vec<u8>)> = tensors
        .iter()
        .map(|t| {
            (
                t.name.clone(),
                Dtype::F32,
                t.shape.clone(),
                f32_bytes(&t.data),
            )
        })
        .collect();
    blobs.push((
        STATS_MEAN.to_string(),
        Dtype::F64,
        vec![dim],
        f64_bytes(test_stats.mean.iter().copied()),
    ));
    blobs.push((
        STATS_COV.to_string(),
        Dtype::F64,
        vec![dim, dim],
        f64_bytes(cov_rows.map(|(r, c)| test_stats.cov[(r, c)])),
    ));
    let mut views = Vec::with_capacity(blobs.len());
    for (name, dtype, shape, bytes) in &blobs {
        let view = TensorView::new(*dtype, shape.clone(), bytes)
            .map_err(|e| JudgeError::Encode(format!("tensor `{name}`: {e}")))?;
        views.push((name.clone(), view));
    }
    safetensors::serialize(views, Some(meta)).map_err(|e| JudgeError::Encode(e.to_string()))
}

/// Parses a weights file; `origin` names it in errors.
pub fn decode(bytes: &[u8], origin: &str) -> Result<JudgeFile, JudgeError> {
    let not_st = |reason: String| JudgeError::NotSafetensors {
        origin: origin.to_string(),
        reason,
    };
    let not_ours = |reason: String| JudgeError::NotAJudge {
        origin: origin.to_string(),
        reason,
    };
    if bytes.is_empty() {
        return Err(not_st("the file is empty".into()));
    }
    let (_, header) = SafeTensors::read_metadata(bytes).map_err(|e| not_st(e.to_string()))?;
    let st = SafeTensors::deserialize(bytes).map_err(|e| not_st(e.to_string()))?;
    let meta = header
        .metadata()
        .clone()
        .ok_or_else(|| not_ours("no metadata".into()))?;
    let text = |key: &str| {
        meta.get(key)
            .cloned()
            .ok_or_else(|| not_ours(format!("metadata key `{key}` is missing")))
    };
    let format = text("format")?;
    if format != FORMAT {
        return Err(not_ours(format!("format is {format:?}")));
    }
    let version = text("format_version")?;
    if version != VERSION {
        return Err(not_ours(format!(
            "format version {version}, this gan-tui reads version {VERSION}"
        )));
    }
    let architecture = text("architecture")?;
    if architecture != ARCHITECTURE {
        return Err(JudgeError::WrongArchitecture {
            origin: origin.to_string(),
            found: architecture,
            expected: ARCHITECTURE.to_string(),
        });
    }
    let bad_number =
        |key: &str, v: &str| not_ours(format!("metadata `{key}` = {v:?} is not a number"));
    let seed_text = text("seed")?;
    let epochs_text = text("epochs")?;
    let accuracy_text = text("test_accuracy")?;
    let info = JudgeInfo {
        seed: seed_text
            .parse()
            .map_err(|_| bad_number("seed", &seed_text))?,
        epochs: epochs_text
            .parse()
            .map_err(|_| bad_number("epochs", &epochs_text))?,
        test_accuracy: accuracy_text
            .parse()
            .map_err(|_| bad_number("test_accuracy", &accuracy_text))?,
    };

    let read = |name: &str, dtype: Dtype| -> Result<(Vec<usize>, Vec<u8>), JudgeError> {
        let view = st
            .tensor(name)
            .map_err(|_| not_ours(format!("tensor `{name}` is missing")))?;
        if view.dtype() != dtype {
            return Err(JudgeError::WrongDtype {
                origin: origin.to_string(),
                name: name.to_string(),
                dtype: format!("{:?}", view.dtype()),
                expected: if dtype == Dtype::F32 { "F32" } else { "F64" },
            });
        }
        Ok((view.shape().to_vec(), view.data().to_vec()))
    };

    let mut net = Net::new(0);
    let mut source = BTreeMap::new();
    let wanted = params::export(&net.body, BODY_PREFIX)
        .into_iter()
        .chain(params::export(&net.head, HEAD_PREFIX));
    for t in wanted {
        let (shape, raw) = read(&t.name, Dtype::F32)?;
        let data = raw
            .chunks_exact(4)
            .map(|c| f32::from_le_bytes([c[0], c[1], c[2], c[3]]))
            .collect();
        source.insert(
            t.name.clone(),
            NamedTensor {
                name: t.name,
                shape,
                data,
            },
        );
    }
    let params_error = |source| JudgeError::Params {
        origin: origin.to_string(),
        source,
    };
    params::import(&mut net.body, BODY_PREFIX, &source).map_err(params_error)?;
    params::import(&mut net.head, HEAD_PREFIX, &source).map_err(params_error)?;

    let bad_stats = |reason: String| JudgeError::BadStats {
        origin: origin.to_string(),
        reason,
    };
    let f64s = |raw: Vec<u8>| -> Vec<f64> {
        raw.chunks_exact(8)
            .map(|c| f64::from_le_bytes([c[0], c[1], c[2], c[3], c[4], c[5], c[6], c[7]]))
            .collect()
    };
    let (mean_shape, mean) = read(STATS_MEAN, Dtype::F64)?;
    let (cov_shape, cov) = read(STATS_COV, Dtype::F64)?;
    if mean_shape != [FEATURES] || cov_shape != [FEATURES, FEATURES] {
        return Err(bad_stats(format!(
            "`{STATS_MEAN}` has shape {mean_shape:?} and `{STATS_COV}` {cov_shape:?}, expected \
             [{FEATURES}] and [{FEATURES}, {FEATURES}]"
        )));
    }
    let mean = f64s(mean);
    let cov = f64s(cov);
    if let Some(v) = mean.iter().chain(&cov).find(|v| !v.is_finite()) {
        return Err(bad_stats(format!("holds the non-finite value {v}")));
    }
    let test_stats = GaussianStats {
        mean: DVector::from_vec(mean),
        cov: DMatrix::from_row_slice(FEATURES, FEATURES, &cov),
    };
    Ok(JudgeFile {
        net,
        test_stats,
        info,
    })
}
