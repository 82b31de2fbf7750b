//! Writes `tests/bad_inputs/`: the small bad files the bad-input suite (`tests/it/bad_inputs/`)
//! feeds the real binary, built from a few real MNIST digits and a real checkpoint's header.
//!
//! Run `cargo run --release --example make_bad_inputs` after changing a case; it rewrites every
//! generated file (hand-written ones, such as the config files, are written here too, so the
//! folder is exactly what this program makes).

use std::collections::{BTreeMap, HashMap};
use std::fs;
use std::path::{Path, PathBuf};

use gan_tui::config::Config;
use gan_tui::data::{self, Split, idx};
use gan_tui::nn::params::NamedTensor;
use gan_tui::train::checkpoint::{
    Checkpoint, EpochTally, Progress, RngPositions, sample_noise_tensor,
};
use gan_tui::train::gan::{GanState, Preset};
use gan_tui::train::{nets, presets};
use safetensors::tensor::{Dtype, TensorView};

/// Real digits in each bad data file: enough to be real, few enough to keep files small.
const DIGITS: usize = 2;

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/bad_inputs");
    for sub in ["config", "data", "checkpoints", "themes", "run"] {
        let dir = root.join(sub);
        if dir.exists() {
            fs::remove_dir_all(&dir)?;
        }
        fs::create_dir_all(&dir)?;
    }
    configs(&root.join("config"))?;
    data_sets(&root.join("data"))?;
    checkpoints(&root.join("checkpoints"))?;
    themes(&root.join("themes"))?;
    runs(&root.join("run"))?;
    println!("wrote {}", root.display());
    Ok(())
}

fn write(path: PathBuf, bytes: impl AsRef<[u8]>) -> std::io::Result<()> {
    if let Some(parent) = path.parent() {
        fs::create_dir_all(parent)?;
    }
    fs::write(path, bytes)
}

fn configs(dir: &Path) -> std::io::Result<()> {
    let files: &[(&str, &[u8])] = &[
        ("syntax_error.toml", b"[train\nepochs = 3\n"),
        ("unknown_key.toml", b"[train]\nepochs = 3\nepoch = 3\n"),
        ("unknown_table.toml", b"[training]\nepochs = 3\n"),
        ("top_level_key.toml", b"epochs = 3\n"),
        ("wrong_type.toml", b"[train]\nepochs = \"three\"\n"),
        ("table_as_value.toml", b"train = 3\n"),
        ("zero_batch.toml", b"[train]\nbatch_size = 0\n"),
        ("zero_epochs.toml", b"[train]\nepochs = 0\n"),
        ("negative_lr.toml", b"[train]\nlr = -0.0002\n"),
        ("nan_lr.toml", b"[train]\nlr = nan\n"),
        ("absurd_batch.toml", b"[train]\nbatch_size = 1000000\n"),
        (
            "absurd_epochs.toml",
            b"[train]\nepochs = 99999999999999999999\n",
        ),
        (
            "absurd_sample_count.toml",
            b"[run]\nsample_count = 100000\n",
        ),
        ("unknown_preset.toml", b"[train]\npreset = \"stylegan\"\n"),
        (
            "bad_theme_name.toml",
            b"[ui]\ntheme = \"../../etc/passwd\"\n",
        ),
        ("not_utf8.toml", b"# caf\xe9\n[train]\nepochs = 3\n"),
        // Fine in itself; the folder it names (relative to this file) holds a cut-off file.
        (
            "data_dir_truncated.toml",
            b"[data]\ndir = \"../data/truncated_images\"\n",
        ),
    ];
    for (name, text) in files {
        write(dir.join(name), text)?;
    }
    // A folder where a file belongs; the note inside only keeps it in git.
    write(
        dir.join("is_a_directory.toml/keep"),
        "git keeps no empty folders\n",
    )
}

fn data_sets(dir: &Path) -> Result<(), Box<dyn std::error::Error>> {
    let set = data::load(None, Split::Train)?.take(DIGITS);
    let images = idx::encode_images(28, 28, &set.images)?;
    let labels = idx::encode_labels(&set.labels)?;
    let images_name = Split::Train.images_file();
    let labels_name = Split::Train.labels_file();
    let case = |name: &str, images_file: &[u8], labels_file: &[u8]| {
        write(dir.join(name).join(images_name), images_file)?;
        write(dir.join(name).join(labels_name), labels_file)
    };

    write(dir.join("missing_labels").join(images_name), &images)?;
    // Files a user might have named by hand: dots where MNIST has dashes.
    write(dir.join("misnamed/train-images.idx3-ubyte"), &images)?;
    write(dir.join("misnamed/train-labels.idx1-ubyte"), &labels)?;

    case("truncated_images", &images[..images.len() - 300], &labels)?;
    case("truncated_header", &images[..10], &labels)?;
    let mut bad_magic = images.clone();
    bad_magic[..4].copy_from_slice(b"\x89PNG");
    case("wrong_magic", &bad_magic, &labels)?;
    case("swapped", &labels, &images)?;
    let mut zero = images.clone();
    zero[4..8].copy_from_slice(&0u32.to_be_bytes());
    case("zero_count", &zero, &labels)?;
    let mut trailing = images.clone();
    trailing.extend_from_slice(b"appended junk");
    case("trailing_bytes", &trailing, &labels)?;

    // The digits cropped to their middle 14x14.
    let cropped: Vec<u8> = set
        .images
        .chunks(784)
        .flat_map(|img| {
            img.chunks(28)
                .skip(7)
                .take(14)
                .flat_map(|row| row[7..21].to_vec())
        })
        .collect();
    case("not_28x28", &idx::encode_images(14, 14, &cropped)?, &labels)?;
    case(
        "count_mismatch",
        &images,
        &idx::encode_labels(&set.labels[..DIGITS - 1])?,
    )?;
    let mut bad_labels = set.labels.clone();
    bad_labels[DIGITS - 1] = 10;
    case("bad_label", &images, &idx::encode_labels(&bad_labels)?)?;

    // Gzip: a flipped byte inside the deflate stream, and a download cut short.
    let gz_images = idx::gzip(&images)?;
    let gz_labels = idx::gzip(&labels)?;
    let mut corrupt = gz_images.clone();
    let middle = corrupt.len() / 2;
    corrupt[middle] ^= 0xff;
    write(dir.join(format!("corrupt_gzip/{images_name}.gz")), &corrupt)?;
    write(
        dir.join(format!("corrupt_gzip/{labels_name}.gz")),
        &gz_labels,
    )?;
    // Whole and intact but for the trailer's size field, which claims 4 GiB.
    let mut lying = gz_images.clone();
    let at = lying.len() - 4;
    lying[at..].copy_from_slice(&u32::MAX.to_le_bytes());
    write(
        dir.join(format!("gzip_claims_4gib/{images_name}.gz")),
        &lying,
    )?;
    write(
        dir.join(format!("gzip_claims_4gib/{labels_name}.gz")),
        &gz_labels,
    )?;
    write(
        dir.join(format!("truncated_gzip/{images_name}.gz")),
        &gz_images[..gz_images.len() / 2],
    )?;
    write(
        dir.join(format!("truncated_gzip/{labels_name}.gz")),
        &gz_labels,
    )?;
    Ok(())
}

/// A checkpoint whose metadata is right for this build but which holds only the sample noise
/// plus `tensors`: small, and it gets as far as restoring the state.
fn small_checkpoint(tensors: Vec<NamedTensor>) -> Checkpoint {
    let counters = BTreeMap::from([
        (nets::G_STEPS.to_string(), 0),
        (nets::D_STEPS.to_string(), 0),
    ]);
    Checkpoint {
        preset: "reference".to_string(),
        architecture: Preset::Reference.architecture().to_string(),
        seed: 0,
        progress: Progress::default(),
        rng: RngPositions::default(),
        config_toml: Config::default().to_toml(),
        elapsed_s: 0.0,
        tally: EpochTally::default(),
        sample_noise: sample_noise_tensor(1, 100, vec![0.0; 100]),
        state: GanState { tensors, counters },
    }
}

fn checkpoints(dir: &Path) -> Result<(), Box<dyn std::error::Error>> {
    write(dir.join("zero_length.safetensors"), [])?;
    write(
        dir.join("not_safetensors.safetensors"),
        "this is a text file someone renamed\n",
    )?;
    // A length prefix promising a header, then something that is not JSON.
    let mut garbage = 16u64.to_le_bytes().to_vec();
    garbage.extend_from_slice(b"not a JSON hdr!!");
    write(dir.join("garbage_header.safetensors"), garbage)?;

    // A real checkpoint of a fresh reference GAN, cut just after its header.
    let gan = presets::build(&Config::default());
    let full = Checkpoint {
        state: gan.state(),
        ..small_checkpoint(Vec::new())
    }
    .encode()
    .map(canonical)??;
    let header_len = u64::from_le_bytes(full[..8].try_into()?) as usize;
    write(
        dir.join("truncated.safetensors"),
        &full[..8 + header_len + 64],
    )?;

    // Valid safetensors, but not ours: no metadata.
    let data = [0u8; 8];
    let foreign =
        safetensors::serialize([("w", TensorView::new(Dtype::F32, vec![2], &data)?)], None)?;
    write(dir.join("foreign.safetensors"), foreign)?;

    let mut other_preset = small_checkpoint(Vec::new());
    other_preset.preset = "stylegan".to_string();
    write(
        dir.join("other_preset.safetensors"),
        canonical(other_preset.encode()?)?,
    )?;
    let mut other_arch = small_checkpoint(Vec::new());
    other_arch.architecture = "mlp G 100-128-784; D 784-128-1".to_string();
    write(
        dir.join("other_architecture.safetensors"),
        canonical(other_arch.encode()?)?,
    )?;
    let mut newer = canonical(small_checkpoint(Vec::new()).encode()?)?;
    replace_once(
        &mut newer,
        b"\"format_version\":\"1\"",
        b"\"format_version\":\"9\"",
    )?;
    write(dir.join("newer_format.safetensors"), newer)?;

    write(
        dir.join("missing_tensors.safetensors"),
        canonical(small_checkpoint(Vec::new()).encode()?)?,
    )?;
    // The generator's first layer, present but 2x2 instead of 256x100.
    let misshapen = NamedTensor {
        name: "model.0.weight".to_string(),
        shape: vec![2, 2],
        data: vec![0.0; 4],
    };
    write(
        dir.join("wrong_shape.safetensors"),
        canonical(small_checkpoint(vec![misshapen]).encode()?)?,
    )?;

    // The sample noise stored as F16: safetensors, our metadata, the wrong dtype.
    let ckpt = small_checkpoint(Vec::new());
    let meta: HashMap<String, String> = metadata_of(&ckpt.encode()?)?;
    let halves = vec![0u8; 2 * 100];
    let view = TensorView::new(Dtype::F16, vec![1, 100], &halves)?;
    write(
        dir.join("wrong_dtype.safetensors"),
        canonical(safetensors::serialize(
            [("trainer.sample_noise", view)],
            Some(meta),
        )?)?,
    )?;
    Ok(())
}

/// The same safetensors file with its header's keys in sorted order, so that this program writes
/// the same bytes every time (`Checkpoint::encode` keeps metadata in a `HashMap`).
fn canonical(file: Vec<u8>) -> Result<Vec<u8>, Box<dyn std::error::Error>> {
    let len = usize::try_from(u64::from_le_bytes(file[..8].try_into()?))?;
    let header: serde_json::Value = serde_json::from_slice(&file[8..8 + len])?;
    let mut json = serde_json::to_vec(&header)?;
    if json.len() > len {
        return Err("the sorted header is longer than the original".into());
    }
    // safetensors pads its header with spaces; keep the length, so data offsets stay valid.
    json.resize(len, b' ');
    let mut out = file[..8].to_vec();
    out.extend(json);
    out.extend_from_slice(&file[8 + len..]);
    Ok(out)
}

fn metadata_of(bytes: &[u8]) -> Result<HashMap<String, String>, Box<dyn std::error::Error>> {
    let (_, header) = safetensors::SafeTensors::read_metadata(bytes)?;
    Ok(header.metadata().clone().unwrap_or_default())
}

/// Replaces the one occurrence of `from` (same length as `to`) in `bytes`.
fn replace_once(bytes: &mut [u8], from: &[u8], to: &[u8]) -> Result<(), String> {
    let at = bytes
        .windows(from.len())
        .position(|w| w == from)
        .ok_or_else(|| format!("{} not found", String::from_utf8_lossy(from)))?;
    bytes[at..at + to.len()].copy_from_slice(to);
    Ok(())
}

fn themes(dir: &Path) -> std::io::Result<()> {
    let files: &[(&str, &str)] = &[
        (
            "bad_colour.toml",
            "title = \"bold\"\nloss_d = \"blurple\"\n",
        ),
        ("unknown_key.toml", "title = \"bold\"\nlos_g = \"green\"\n"),
        ("not_toml.toml", "title = \"bold\"\nloss_d = \n"),
        ("bad_ramp.toml", "digit_ramp = \"@\"\n"),
        ("wrong_type.toml", "digit_invert = \"yes\"\n"),
        ("bad_index.toml", "ok = 300\n"),
    ];
    for (name, text) in files {
        write(dir.join(name), text)?;
    }
    write(dir.join("not_utf8.toml"), b"title = \"bold\"\n# caf\xe9\n")
}

fn runs(dir: &Path) -> std::io::Result<()> {
    // A folder that already holds a run: a new run must refuse it and change nothing.
    let run = dir.join("existing_run");
    write(run.join("config.toml"), Config::default().to_toml())?;
    write(
        run.join("metrics.jsonl"),
        "{\"step\":10,\"epoch\":1,\"d_loss\":1.2,\"g_loss\":0.7,\"d_real\":0.5,\"d_fake\":0.4,\"lr\":0.0002,\"steps_per_s\":100.0,\"elapsed_s\":0.1}\n",
    )?;
    write(run.join("checkpoints/keep"), "stands in for a checkpoint\n")
}
