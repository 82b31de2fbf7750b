//! Checkpoint files: safetensors holding both networks, both optimisers' moments, the fixed sample
//! noise, and in the metadata the recipe, the architecture, the run's progress and RNG positions.
//!
//! The generator's tensors carry PyTorch's names (`model.0.weight`, ...), so
//! `safetensors.torch.load_file` and `load_state_dict` take them directly.

use std::collections::{BTreeMap, HashMap};
use std::path::{Path, PathBuf};

use safetensors::SafeTensorError;
use safetensors::tensor::{Dtype, SafeTensors, TensorView};

use super::gan::{Gan, GanState, StateError};
use crate::nn::params::NamedTensor;

const FORMAT: &str = "gan-tui checkpoint";
const VERSION: &str = "1";
const SAMPLE_NOISE: &str = "trainer.sample_noise";
const COUNTER_PREFIX: &str = "counter.";
/// Larger than any recipe's checkpoint by far; a bigger file is not ours (or is /dev/zero).
const MAX_CHECKPOINT_BYTES: u64 = 1 << 30;
/// The largest header the safetensors crate reads; a length prefix beyond it is not one.
const MAX_HEADER_BYTES: u64 = 100_000_000;

/// Where a run stands: the next step continues from here.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Progress {
    /// Steps taken in all.
    pub step: u64,
    /// The 1-based epoch in progress.
    pub epoch: u32,
    /// Batches of `epoch` already taken.
    pub batch: u64,
}

/// Positions of the run's random streams (ChaCha word positions), so a resumed run draws the
/// same numbers next.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct RngPositions {
    pub train_noise: u128,
    pub sample_noise: u128,
}

/// Sums over the steps of the epoch in progress, for the epoch's means.
#[derive(Debug, Clone, Copy, PartialEq, Default)]
pub struct EpochTally {
    pub steps: u64,
    pub d_loss: f64,
    pub g_loss: f64,
    pub d_real: f64,
    pub d_fake: f64,
}

/// Everything in a checkpoint file.
#[derive(Debug, Clone, PartialEq)]
pub struct Checkpoint {
    pub preset: String,
    pub architecture: String,
    pub seed: u64,
    pub progress: Progress,
    pub rng: RngPositions,
    /// The run's resolved config, as TOML.
    pub config_toml: String,
    /// Training time so far, pauses not counted.
    pub elapsed_s: f64,
    pub tally: EpochTally,
    /// The noise batch the sample grid is drawn from: `sample_count x latent` values.
    pub sample_noise: NamedTensor,
    pub state: GanState,
}

/// Why a checkpoint could not be written or read.
#[derive(Debug, thiserror::Error)]
pub enum CheckpointError {
    #[error("{path}: cannot write checkpoint: {source}")]
    Write {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("{path}: cannot read checkpoint: {source}")]
    Read {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("{path}: not a safetensors file ({reason})")]
    NotSafetensors { path: PathBuf, reason: String },
    #[error(
        "{path}: the checkpoint is damaged: {reason}; use another checkpoint (a run folder keeps several)"
    )]
    Damaged { path: PathBuf, reason: String },
    #[error("{path}: a safetensors file, but not a gan-tui checkpoint ({reason})")]
    NotOurs { path: PathBuf, reason: String },
    #[error("{path}: tensor `{name}` is {dtype}, checkpoints hold F32 tensors")]
    WrongDtype {
        path: PathBuf,
        name: String,
        dtype: String,
    },
    #[error(
        "{path}: holds preset `{found}` ({found_arch}), but the model here is preset `{expected}` ({expected_arch})"
    )]
    WrongModel {
        path: PathBuf,
        found: String,
        found_arch: String,
        expected: String,
        expected_arch: String,
    },
    #[error("{path}: {source}")]
    State { path: PathBuf, source: StateError },
    #[error("cannot encode checkpoint: {0}")]
    Encode(String),
    #[error("{path}: holds preset `{preset}`, which this gan-tui does not know")]
    UnknownPreset { path: PathBuf, preset: String },
}

/// Reads the checkpoint at `path` and builds the recipe it holds, with its state restored.
pub fn load_model(path: &Path) -> Result<(Box<dyn Gan>, Checkpoint), CheckpointError> {
    let ckpt = Checkpoint::load(path)?;
    let preset = crate::config::Preset::from_name(&ckpt.preset).ok_or_else(|| {
        CheckpointError::UnknownPreset {
            path: path.to_path_buf(),
            preset: ckpt.preset.clone(),
        }
    })?;
    let cfg = crate::config::Config {
        preset,
        ..crate::config::Config::default()
    };
    let mut model = cfg.preset.build(cfg.seed, cfg.lr);
    ckpt.restore_into(model.as_mut(), path)?;
    Ok((model, ckpt))
}

fn f32_bytes(data: &[f32]) -> Vec<u8> {
    data.iter().flat_map(|v| v.to_le_bytes()).collect()
}

impl Checkpoint {
    /// The checkpoint as safetensors bytes.
    pub fn encode(&self) -> Result<Vec<u8>, CheckpointError> {
        let mut meta = HashMap::from([
            ("format".to_string(), FORMAT.to_string()),
            ("format_version".to_string(), VERSION.to_string()),
            ("preset".to_string(), self.preset.clone()),
            ("architecture".to_string(), self.architecture.clone()),
            ("seed".to_string(), self.seed.to_string()),
            ("step".to_string(), self.progress.step.to_string()),
            ("epoch".to_string(), self.progress.epoch.to_string()),
            ("batch".to_string(), self.progress.batch.to_string()),
            (
                "rng.train_noise".to_string(),
                self.rng.train_noise.to_string(),
            ),
            (
                "rng.sample_noise".to_string(),
                self.rng.sample_noise.to_string(),
            ),
            ("config".to_string(), self.config_toml.clone()),
            ("trainer.elapsed_s".to_string(), self.elapsed_s.to_string()),
            (
                "trainer.epoch_steps".to_string(),
                self.tally.steps.to_string(),
            ),
            (
                "trainer.epoch_sums".to_string(),
                // Rust prints f64 so that parsing gives back the same bits.
                [
                    self.tally.d_loss,
                    self.tally.g_loss,
                    self.tally.d_real,
                    self.tally.d_fake,
                ]
                .map(|v| v.to_string())
                .join(","),
            ),
        ]);
        for (name, value) in &self.state.counters {
            meta.insert(format!("{COUNTER_PREFIX}{name}"), value.to_string());
        }
        let tensors: Vec<&NamedTensor> = self
            .state
            .tensors
            .iter()
            .chain(std::iter::once(&self.sample_noise))
            .collect();
        let bytes: Vec<Vec<u8>> = tensors.iter().map(|t| f32_bytes(&t.data)).collect();
        let mut views = Vec::with_capacity(tensors.len());
        for (t, b) in tensors.iter().zip(&bytes) {
            let view = TensorView::new(Dtype::F32, t.shape.clone(), b)
                .map_err(|e| CheckpointError::Encode(format!("tensor `{}`: {e}", t.name)))?;
            views.push((t.name.clone(), view));
        }
        safetensors::serialize(views, Some(meta))
            .map_err(|e| CheckpointError::Encode(e.to_string()))
    }

    /// Writes the checkpoint to `path` atomically (temporary file, sync, rename).
    pub fn save(&self, path: &Path) -> Result<(), CheckpointError> {
        let bytes = self.encode()?;
        crate::files::atomic::write(path, &bytes).map_err(|source| CheckpointError::Write {
            path: path.to_path_buf(),
            source,
        })
    }

    /// Reads and checks a checkpoint file.
    pub fn load(path: &Path) -> Result<Checkpoint, CheckpointError> {
        let read_error = |source| CheckpointError::Read {
            path: path.to_path_buf(),
            source,
        };
        let file = std::fs::File::open(path).map_err(read_error)?;
        let meta = file.metadata().map_err(read_error)?;
        if !meta.is_file() {
            return Err(CheckpointError::NotSafetensors {
                path: path.to_path_buf(),
                reason: "it is not a regular file".to_string(),
            });
        }
        if meta.len() > MAX_CHECKPOINT_BYTES {
            return Err(CheckpointError::NotSafetensors {
                path: path.to_path_buf(),
                reason: format!(
                    "it is {} bytes; gan-tui checkpoints are under {MAX_CHECKPOINT_BYTES}",
                    meta.len()
                ),
            });
        }
        let mut bytes = Vec::with_capacity(meta.len() as usize);
        std::io::Read::read_to_end(
            &mut std::io::Read::take(file, MAX_CHECKPOINT_BYTES),
            &mut bytes,
        )
        .map_err(read_error)?;
        Checkpoint::decode(path, &bytes)
    }

    /// Parses checkpoint bytes; `path` only names the source in errors.
    pub fn decode(path: &Path, bytes: &[u8]) -> Result<Checkpoint, CheckpointError> {
        let not_st = |reason: String| CheckpointError::NotSafetensors {
            path: path.to_path_buf(),
            reason,
        };
        let not_ours = |reason: String| CheckpointError::NotOurs {
            path: path.to_path_buf(),
            reason,
        };
        let damaged = |reason: String| CheckpointError::Damaged {
            path: path.to_path_buf(),
            reason,
        };
        if bytes.is_empty() {
            return Err(not_st("the file is empty".into()));
        }
        // The framing is checked here first so that a file cut short (a full disk, a copy
        // interrupted) is called that, not "not a safetensors file".
        let Some(prefix) = bytes.first_chunk::<8>() else {
            return Err(not_st(format!(
                "it is {} bytes, too short for the 8-byte header length a safetensors file starts with",
                bytes.len()
            )));
        };
        let header_len = u64::from_le_bytes(*prefix);
        if header_len > MAX_HEADER_BYTES {
            return Err(not_st(format!(
                "its first 8 bytes should hold the header's length, but say {header_len} bytes"
            )));
        }
        let after_prefix = (bytes.len() - prefix.len()) as u64;
        if header_len > after_prefix {
            return Err(damaged(format!(
                "cut short in its header: the header is {header_len} bytes but only {after_prefix} follow"
            )));
        }
        let (_, header) = SafeTensors::read_metadata(bytes).map_err(|e| match e {
            SafeTensorError::MetadataIncompleteBuffer => {
                damaged(data_length_mismatch(bytes, header_len).unwrap_or_else(|| e.to_string()))
            }
            e => not_st(e.to_string()),
        })?;
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
        let number = |key: &str| -> Result<u128, CheckpointError> {
            let v = text(key)?;
            v.parse::<u128>()
                .map_err(|_| not_ours(format!("metadata `{key}` = {v:?} is not a number")))
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
        let narrow = |key: &str, v: u128| -> Result<u64, CheckpointError> {
            u64::try_from(v).map_err(|_| not_ours(format!("metadata `{key}` = {v} is too large")))
        };
        let progress = Progress {
            step: narrow("step", number("step")?)?,
            epoch: u32::try_from(number("epoch")?)
                .map_err(|_| not_ours("metadata `epoch` is too large".into()))?,
            batch: narrow("batch", number("batch")?)?,
        };
        let mut counters = BTreeMap::new();
        for k in meta.keys() {
            if let Some(name) = k.strip_prefix(COUNTER_PREFIX) {
                counters.insert(name.to_string(), narrow(k, number(k)?)?);
            }
        }
        let mut tensors = Vec::new();
        let mut sample_noise = None;
        let mut names: Vec<&str> = st.names();
        names.sort();
        for name in names {
            let view = st.tensor(name).map_err(|e| not_st(e.to_string()))?;
            if view.dtype() != Dtype::F32 {
                return Err(CheckpointError::WrongDtype {
                    path: path.to_path_buf(),
                    name: name.to_string(),
                    dtype: format!("{:?}", view.dtype()),
                });
            }
            let data: Vec<f32> = view
                .data()
                .chunks_exact(4)
                .map(|c| f32::from_le_bytes([c[0], c[1], c[2], c[3]]))
                .collect();
            let t = NamedTensor {
                name: name.to_string(),
                shape: view.shape().to_vec(),
                data,
            };
            if name == SAMPLE_NOISE {
                sample_noise = Some(t);
            } else {
                tensors.push(t);
            }
        }
        let sample_noise =
            sample_noise.ok_or_else(|| not_ours(format!("tensor `{SAMPLE_NOISE}` is missing")))?;
        let float = |key: &str, v: &str| -> Result<f64, CheckpointError> {
            v.parse::<f64>()
                .map_err(|_| not_ours(format!("metadata `{key}` = {v:?} is not a number")))
        };
        let elapsed_s = float("trainer.elapsed_s", &text("trainer.elapsed_s")?)?;
        let sums_text = text("trainer.epoch_sums")?;
        let sums: Vec<f64> = sums_text
            .split(',')
            .map(|v| float("trainer.epoch_sums", v))
            .collect::<Result<_, _>>()?;
        let [d_loss, g_loss, d_real, d_fake] = sums[..] else {
            return Err(not_ours(format!(
                "metadata `trainer.epoch_sums` = {sums_text:?} does not hold 4 numbers"
            )));
        };
        let tally = EpochTally {
            steps: narrow("trainer.epoch_steps", number("trainer.epoch_steps")?)?,
            d_loss,
            g_loss,
            d_real,
            d_fake,
        };
        Ok(Checkpoint {
            preset: text("preset")?,
            architecture: text("architecture")?,
            seed: narrow("seed", number("seed")?)?,
            progress,
            rng: RngPositions {
                train_noise: number("rng.train_noise")?,
                sample_noise: number("rng.sample_noise")?,
            },
            config_toml: text("config")?,
            elapsed_s,
            tally,
            sample_noise,
            state: GanState { tensors, counters },
        })
    }

    /// Puts this checkpoint's state into `gan`, refusing one of another preset or architecture.
    /// `path` only names the source in errors.
    pub fn restore_into(&self, gan: &mut dyn Gan, path: &Path) -> Result<(), CheckpointError> {
        if self.preset != gan.preset().name() || self.architecture != gan.preset().architecture() {
            return Err(CheckpointError::WrongModel {
                path: path.to_path_buf(),
                found: self.preset.clone(),
                found_arch: self.architecture.clone(),
                expected: gan.preset().name().to_string(),
                expected_arch: gan.preset().architecture().to_string(),
            });
        }
        let map: BTreeMap<String, NamedTensor> = self
            .state
            .tensors
            .iter()
            .map(|t| (t.name.clone(), t.clone()))
            .collect();
        gan.load_state(&map, &self.state.counters)
            .map_err(|source| CheckpointError::State {
                path: path.to_path_buf(),
                source,
            })
    }

    /// The sample noise as `(count, values)`, checked against the recipe's latent size.
    pub fn sample_noise_for(&self, latent: usize) -> Option<(usize, &[f32])> {
        let t = &self.sample_noise;
        match t.shape.as_slice() {
            [count, l] if *l == latent && count * l == t.data.len() => Some((*count, &t.data)),
            _ => None,
        }
    }
}

/// Why the tensor data after a well-formed header has the wrong length: how many bytes the
/// header describes and how many there are. `None` if the header cannot be read for it.
fn data_length_mismatch(bytes: &[u8], header_len: u64) -> Option<String> {
    let header_end = usize::try_from(header_len).ok()?.checked_add(8)?;
    let header: serde_json::Map<String, serde_json::Value> =
        serde_json::from_slice(bytes.get(8..header_end)?).ok()?;
    let described = header
        .iter()
        .filter(|(name, _)| *name != "__metadata__")
        .filter_map(|(_, info)| info.get("data_offsets")?.get(1)?.as_u64())
        .max()
        .unwrap_or(0);
    let present = (bytes.len() - header_end) as u64;
    Some(if present < described {
        format!(
            "cut short: its header describes {described} bytes of tensor data, but only {present} follow"
        )
    } else {
        format!(
            "{} bytes more than the {described} bytes of tensor data its header describes",
            present - described
        )
    })
}

/// A `NamedTensor` for the sample noise of `count` vectors of `latent` values.
pub fn sample_noise_tensor(count: usize, latent: usize, data: Vec<f32>) -> NamedTensor {
    NamedTensor {
        name: SAMPLE_NOISE.to_string(),
        shape: vec![count, latent],
        data,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::Config;

    fn checkpoint_of(gan: &dyn Gan) -> Checkpoint {
        Checkpoint {
            preset: gan.preset().name().to_string(),
            architecture: gan.preset().architecture().to_string(),
            seed: 9,
            progress: Progress {
                step: 12,
                epoch: 2,
                batch: 3,
            },
            rng: RngPositions {
                train_noise: 1 << 70,
                sample_noise: 17,
            },
            config_toml: "[train]\nseed = 9\n".to_string(),
            elapsed_s: 12.345678901234567,
            tally: EpochTally {
                steps: 3,
                d_loss: 0.1 + 0.2,
                g_loss: 2.5,
                d_real: 1.0 / 3.0,
                d_fake: 0.0,
            },
            sample_noise: sample_noise_tensor(2, gan.latent_dim(), vec![0.5; 2 * gan.latent_dim()]),
            state: gan.state(),
        }
    }

    #[test]
    fn save_then_load_round_trips_and_restores_the_same_samples() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("c.safetensors");
        let a = crate::train::presets::build(&Config {
            seed: 1,
            ..Config::default()
        });
        let ckpt = checkpoint_of(a.as_ref());
        ckpt.save(&path).unwrap();
        let back = Checkpoint::load(&path).unwrap();
        // Files keep tensors by name; compare in that order.
        let mut expected = ckpt.clone();
        expected.state.tensors.sort_by(|x, y| x.name.cmp(&y.name));
        assert_eq!(back, expected);
        let mut b = crate::train::presets::build(&Config {
            seed: 2,
            ..Config::default()
        });
        back.restore_into(b.as_mut(), &path).unwrap();
        let (n, z) = back.sample_noise_for(a.latent_dim()).unwrap();
        assert_eq!(
            a.generate(z, None, n).unwrap(),
            b.generate(z, None, n).unwrap()
        );
    }

    #[test]
    fn another_architecture_is_refused_by_name() {
        let reference = Config {
            preset: crate::config::Preset::Reference,
            ..Config::default()
        };
        let a = crate::train::presets::build(&reference);
        let mut ckpt = checkpoint_of(a.as_ref());
        ckpt.preset = "dcgan".into();
        let mut b = crate::train::presets::build(&reference);
        let err = ckpt
            .restore_into(b.as_mut(), Path::new("x.safetensors"))
            .unwrap_err();
        let text = err.to_string();
        assert!(
            text.contains("x.safetensors") && text.contains("dcgan") && text.contains("reference"),
            "{text}"
        );
    }

    #[test]
    fn bad_files_get_clear_errors() {
        let p = Path::new("bad.safetensors");
        let good = checkpoint_of(crate::train::presets::build(&Config::default()).as_ref())
            .encode()
            .unwrap();
        let cases: Vec<(&str, Vec<u8>, &str)> = vec![
            ("empty", vec![], "empty"),
            (
                "garbage",
                b"this is not a checkpoint at all".to_vec(),
                "not a safetensors file",
            ),
            (
                "short",
                b"abc".to_vec(),
                "too short for the 8-byte header length",
            ),
            (
                "text",
                b"this is not a checkpoint at all".to_vec(),
                "not a safetensors file (its first 8 bytes should hold the header's length, but say",
            ),
            (
                "truncated",
                good[..good.len() / 2].to_vec(),
                "the checkpoint is damaged: cut short: its header describes",
            ),
            (
                "cut in the header",
                good[..100].to_vec(),
                "the checkpoint is damaged: cut short in its header: the header is",
            ),
            (
                "appended",
                [good.as_slice(), b"junk"].concat(),
                "the checkpoint is damaged: 4 bytes more than the",
            ),
        ];
        for (what, bytes, expect) in cases {
            let err = Checkpoint::decode(p, &bytes).unwrap_err().to_string();
            assert!(
                err.contains("bad.safetensors") && err.contains(expect),
                "{what}: {err}"
            );
        }
        // A valid safetensors file that is not ours.
        let data = [0u8; 8];
        let view = TensorView::new(Dtype::F32, vec![2], &data).unwrap();
        let foreign = safetensors::serialize([("w", view)], None).unwrap();
        let err = Checkpoint::decode(p, &foreign).unwrap_err().to_string();
        assert!(err.contains("not a gan-tui checkpoint"), "{err}");
    }

    #[test]
    fn a_missing_tensor_is_named() {
        let a = crate::train::presets::build(&Config::default());
        let mut ckpt = checkpoint_of(a.as_ref());
        ckpt.state.tensors.retain(|t| t.name != "model.2.bias");
        let mut b = crate::train::presets::build(&Config::default());
        let err = ckpt
            .restore_into(b.as_mut(), Path::new("c.st"))
            .unwrap_err()
            .to_string();
        assert!(
            err.contains("model.2.bias") && err.contains("missing"),
            "{err}"
        );
    }
}
