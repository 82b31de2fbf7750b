//! Bad checkpoints (tests/bad_inputs/checkpoints): refused naming the file and the problem.

use super::*;

#[test]
fn bad_checkpoint_files_are_refused_naming_the_file_and_the_problem() {
    let cases: &[(&str, &str)] = &[
        (
            "zero_length.safetensors",
            ": not a safetensors file (the file is empty)",
        ),
        (
            "not_safetensors.safetensors",
            ": not a safetensors file (its first 8 bytes should hold the header's length",
        ),
        (
            "garbage_header.safetensors",
            ": not a safetensors file (invalid JSON in header",
        ),
        (
            "truncated.safetensors",
            ": the checkpoint is damaged: cut short: its header describes 13118044 bytes of \
             tensor data, but only 64 follow",
        ),
        (
            "foreign.safetensors",
            ": a safetensors file, but not a gan-tui checkpoint (no metadata)",
        ),
        (
            "newer_format.safetensors",
            ": a safetensors file, but not a gan-tui checkpoint (format version 9",
        ),
        (
            "other_preset.safetensors",
            ": holds preset `stylegan`, which this gan-tui does not know",
        ),
        (
            "other_architecture.safetensors",
            ": holds preset `reference` (mlp G 100-128-784; D 784-128-1), but the model here is",
        ),
        (
            "wrong_dtype.safetensors",
            ": tensor `trainer.sample_noise` is F16, checkpoints hold F32 tensors",
        ),
        (
            "missing_tensors.safetensors",
            ": tensor `model.0.weight` is missing",
        ),
        (
            "wrong_shape.safetensors",
            ": tensor `model.0.weight` has shape [2, 2], the model needs [256, 100]",
        ),
    ];
    for (name, words) in cases {
        let file = input(&format!("checkpoints/{name}"));
        sampling(&file).fails_with(&[&format!("{}{words}", shown(&file))]);
    }
    let tmp = tempfile::tempdir().unwrap();
    let missing = tmp.path().join("latest.safetensors");
    sampling(&missing).fails_with(&[
        &format!("{}: cannot read checkpoint", shown(&missing)),
        "No such file",
    ]);
}

/// A real checkpoint from a one-step run on a few real digits, and `sample` working on it, so
/// the refusals below are of the damage and not of something else.
fn real_checkpoint(home: &Path) -> PathBuf {
    let data = small_mnist(&home.join("digits"), 64);
    let run = home.join("run");
    let out = gan_tui(home)
        .args([
            "--no-tui",
            "--preset",
            "reference",
            "--max-steps",
            "1",
            "--data-dir",
        ])
        .arg(&data)
        .arg("--run-dir")
        .arg(&run)
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", text(&out));
    let ckpt = run.join("checkpoints/latest.safetensors");
    let png = home.join("digits.png");
    let out = gan_tui(home)
        .args(["sample", "--count", "4", "--checkpoint"])
        .arg(&ckpt)
        .arg("--out")
        .arg(&png)
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", text(&out));
    ckpt
}

#[test]
fn damaged_copies_of_a_real_checkpoint_are_refused() {
    // Made here: a real checkpoint is 13 MB, too big to commit.
    let home = tempfile::tempdir().unwrap();
    let ckpt = real_checkpoint(home.path());
    let bytes = std::fs::read(&ckpt).unwrap();
    let good = Checkpoint::decode(&ckpt, &bytes).unwrap();
    let bad = home.path().join("bad");
    std::fs::create_dir(&bad).unwrap();
    let write = |name: &str, bytes: &[u8]| {
        let path = bad.join(name);
        std::fs::write(&path, bytes).unwrap();
        path
    };

    let cut = write("half.safetensors", &bytes[..bytes.len() / 2]);
    sampling(&cut).fails_with(&[
        &format!("{}: the checkpoint is damaged: cut short: ", shown(&cut)),
        "use another checkpoint",
    ]);

    let mut without = good.clone();
    without.state.tensors.retain(|t| t.name != "model.2.bias");
    let without = write("without_bias.safetensors", &without.encode().unwrap());
    sampling(&without).fails_with(&[&format!(
        "{}: tensor `model.2.bias` is missing",
        shown(&without)
    )]);

    let mut transposed = good.clone();
    for t in &mut transposed.state.tensors {
        if t.name == "model.0.weight" {
            t.shape.reverse();
        }
    }
    let transposed = write("transposed.safetensors", &transposed.encode().unwrap());
    sampling(&transposed).fails_with(&[&format!(
        "{}: tensor `model.0.weight` has shape [100, 256], the model needs [256, 100]",
        shown(&transposed)
    )]);

    let mut other = good.clone();
    other.preset = "stylegan".to_string();
    let other = write("stylegan.safetensors", &other.encode().unwrap());
    sampling(&other).fails_with(&[&format!("{}: holds preset `stylegan`", shown(&other))]);

    // A flipped bit in the header's length prefix: 256 MiB more, beyond any header.
    let mut flipped = bytes.clone();
    flipped[3] ^= 0x10;
    let flipped = write("flipped.safetensors", &flipped);
    sampling(&flipped).fails_with(&[&format!(
        "{}: not a safetensors file (its first 8 bytes should hold the header's length",
        shown(&flipped)
    )]);

    // The real checkpoint was only read.
    assert_eq!(std::fs::read(&ckpt).unwrap(), bytes);
}
