//! `gan-tui sample`: digits from a checkpoint's generator, written as IDX (raw or gzip) or PNG.

use std::path::{Path, PathBuf};

use crate::cli::SampleArgs;
use crate::data::{self, idx};
use crate::files::image;
use crate::train::checkpoint::{self, CheckpointError};
use crate::train::noise::{NoiseKind, NoiseStream};

#[derive(Debug, thiserror::Error)]
pub enum SampleError {
    #[error(transparent)]
    Checkpoint(#[from] CheckpointError),
    #[error(
        "{path}: holds preset `{preset}`, whose generator does not take a digit; --digit needs a conditional preset"
    )]
    NotConditional { path: PathBuf, preset: String },
    #[error("{0}: unknown output type; name the file .png, .idx or .idx.gz")]
    OutputType(PathBuf),
    #[error("the generator failed: {0}")]
    Generate(String),
    #[error("cannot encode the digits: {0}")]
    Encode(String),
    #[error("{path}: cannot write: {source}")]
    Write {
        path: PathBuf,
        source: std::io::Error,
    },
}

/// What to write, from the output file's name.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum OutputKind {
    Png,
    Idx,
    IdxGz,
}

impl OutputKind {
    pub fn from_path(path: &Path) -> Option<OutputKind> {
        let name = path.file_name()?.to_str()?.to_ascii_lowercase();
        if name.ends_with(".png") {
            Some(OutputKind::Png)
        } else if name.ends_with(".idx.gz") {
            Some(OutputKind::IdxGz)
        } else if name.ends_with(".idx") {
            Some(OutputKind::Idx)
        } else {
            None
        }
    }
}

/// Generates `args.count` digits and writes them to `args.out`. Returns what was written.
pub fn run(args: &SampleArgs) -> Result<String, SampleError> {
    let kind = OutputKind::from_path(&args.out)
        .ok_or_else(|| SampleError::OutputType(args.out.clone()))?;
    let (model, ckpt) = checkpoint::load_model(&args.checkpoint)?;
    if args.digit.is_some() && !model.is_conditional() {
        return Err(SampleError::NotConditional {
            path: args.checkpoint.clone(),
            preset: ckpt.preset.clone(),
        });
    }
    let count = args.count as usize;
    let noise = NoiseStream::new(args.seed, NoiseKind::Samples).draw(count * model.latent_dim());
    // Generate in slices so memory stays small for large counts.
    let mut pixels = Vec::with_capacity(count * data::DIGIT_PIXELS);
    for (i, chunk) in noise.chunks(256 * model.latent_dim()).enumerate() {
        let n = chunk.len() / model.latent_dim();
        // A conditional model draws the digit asked for, or 0-9 in turn.
        let labels: Vec<u8> = (0..n)
            .map(|j| args.digit.unwrap_or(((i * 256 + j) % 10) as u8))
            .collect();
        let wanted = model.is_conditional().then_some(labels.as_slice());
        let images = model
            .generate(chunk, wanted, n)
            .map_err(|e| SampleError::Generate(e.to_string()))?;
        pixels.extend(image::to_grey(&images));
    }
    let bytes = match kind {
        OutputKind::Png => image::grid_png(
            &pixels,
            data::DIGIT_COLS,
            data::DIGIT_ROWS,
            image::square_columns(count),
        )
        .map_err(|e| SampleError::Encode(e.to_string()))?,
        OutputKind::Idx | OutputKind::IdxGz => {
            let raw = idx::encode_images(data::DIGIT_ROWS, data::DIGIT_COLS, &pixels)
                .map_err(|e| SampleError::Encode(e.to_string()))?;
            if kind == OutputKind::IdxGz {
                idx::gzip(&raw).map_err(|e| SampleError::Encode(e.to_string()))?
            } else {
                raw
            }
        }
    };
    crate::files::atomic::write(&args.out, &bytes).map_err(|source| SampleError::Write {
        path: args.out.clone(),
        source,
    })?;
    Ok(format!(
        "wrote {count} digits from {} (preset {}, step {}) to {}",
        args.checkpoint.display(),
        ckpt.preset,
        ckpt.progress.step,
        args.out.display()
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn output_kind_follows_the_name() {
        assert_eq!(
            OutputKind::from_path(Path::new("a/b.PNG")),
            Some(OutputKind::Png)
        );
        assert_eq!(
            OutputKind::from_path(Path::new("d.idx")),
            Some(OutputKind::Idx)
        );
        assert_eq!(
            OutputKind::from_path(Path::new("d.idx.gz")),
            Some(OutputKind::IdxGz)
        );
        assert_eq!(OutputKind::from_path(Path::new("d.gz")), None);
        assert_eq!(OutputKind::from_path(Path::new("d")), None);
    }
}
