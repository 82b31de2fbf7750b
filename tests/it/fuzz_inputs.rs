//! Property tests for the readers of untrusted files (the IDX reader, the config loader, the
//! checkpoint decoder and the theme parser): random bytes, and valid files with bits flipped, bytes cut, inserted
//! or overwritten, header words replaced and pieces of other files spliced in. None may panic;
//! each input parses (and then holds together) or gives an error whose message names the file.
//!
//! Each property runs `PROPTEST_CASES` inputs (a few hundred by default, so CI stays fast) and
//! prints how many ran; `PROPTEST_CASES=50000 cargo test --release --test fuzz_inputs --
//! --nocapture` is a longer local run. A failure prints the smallest input that fails.

use std::borrow::Cow;
use std::cell::RefCell;
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::Mutex;

use gan_tui::config::{self, Config, Overrides};
use gan_tui::data::idx;
use gan_tui::nn::params::NamedTensor;
use gan_tui::train::checkpoint::{
    Checkpoint, EpochTally, Progress, RngPositions, sample_noise_tensor,
};
use gan_tui::train::gan::GanState;
use gan_tui::train::gan::Preset;
use gan_tui::train::{nets, presets};
use proptest::prelude::*;
use proptest::sample::Index;
use proptest::test_runner::{Config as RunnerConfig, TestCaseError, TestRunner};

/// Runs `test` on `PROPTEST_CASES` (else `default_cases`) inputs from `strategy`, prints how
/// many ran and how they ended (`test` returns a label: "parsed" or the error's kind), and fails
/// with the smallest failing input if any fails or panics.
fn fuzz<S: Strategy>(
    name: &str,
    default_cases: u32,
    strategy: S,
    test: impl Fn(S::Value) -> Result<String, TestCaseError>,
) {
    let cases = std::env::var("PROPTEST_CASES")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default_cases);
    let mut runner = TestRunner::new(RunnerConfig {
        cases,
        // The smallest failing input is printed; there is no source file to keep it beside.
        failure_persistence: None,
        ..RunnerConfig::default()
    });
    let outcomes = Mutex::new(BTreeMap::<String, u64>::new());
    let result = runner.run(&strategy, |value| {
        let label = test(value)?;
        *outcomes.lock().unwrap().entry(label).or_default() += 1;
        Ok(())
    });
    let outcomes = outcomes.into_inner().unwrap();
    let ran: u64 = outcomes.values().sum();
    let mut by_count: Vec<_> = outcomes.into_iter().collect();
    by_count.sort_by_key(|(_, n)| std::cmp::Reverse(*n));
    let tally: Vec<String> = by_count.iter().map(|(k, n)| format!("{k} {n}")).collect();
    eprintln!("{name}: {ran} inputs ran: {}", tally.join(", "));
    if let Err(e) = result {
        panic!("{name}: {e}");
    }
}

/// An error's variant name, from its `Debug` form: `Truncated { .. }` gives `Truncated`.
fn kind(e: &impl std::fmt::Debug) -> String {
    let debug = format!("{e:?}");
    let end = debug.find([' ', '(', '{']).unwrap_or(debug.len());
    debug[..end].to_string()
}

// ---------------------------------------------------------------------------------------------
// Mutations of valid inputs.

/// One change to a byte string; positions are fractions of its length, so any change fits any
/// input.
#[derive(Debug, Clone)]
enum Mutation {
    FlipBit(Index, u8),
    SetByte(Index, u8),
    Truncate(Index),
    Insert(Index, Vec<u8>),
    Remove(Index, usize),
    /// Overwrites four bytes with a word that means something in a header, either byte order.
    Word(Index, u32, bool),
    /// Copies a run of another valid input (a "donor") over this one at the same place.
    Splice(Index, usize, usize),
}

fn interesting_u32() -> impl Strategy<Value = u32> {
    prop_oneof![
        Just(0u32),
        Just(1),
        Just(2),
        Just(28),
        Just(2049),
        Just(2051),
        Just(0x7fff_ffff),
        Just(u32::MAX),
        any::<u32>(),
    ]
}

fn mutation() -> impl Strategy<Value = Mutation> {
    prop_oneof![
        (any::<Index>(), 0u8..8).prop_map(|(i, b)| Mutation::FlipBit(i, b)),
        (any::<Index>(), any::<u8>()).prop_map(|(i, b)| Mutation::SetByte(i, b)),
        any::<Index>().prop_map(Mutation::Truncate),
        (any::<Index>(), prop::collection::vec(any::<u8>(), 1..16))
            .prop_map(|(i, v)| Mutation::Insert(i, v)),
        (any::<Index>(), 1usize..64).prop_map(|(i, n)| Mutation::Remove(i, n)),
        (any::<Index>(), interesting_u32(), any::<bool>())
            .prop_map(|(i, w, be)| Mutation::Word(i, w, be)),
        (any::<Index>(), any::<usize>(), 1usize..256)
            .prop_map(|(i, d, n)| Mutation::Splice(i, d, n)),
    ]
}

fn mutations() -> impl Strategy<Value = Vec<Mutation>> {
    prop::collection::vec(mutation(), 1..5)
}

fn apply(base: &[u8], donors: &[Vec<u8>], mutations: &[Mutation]) -> Vec<u8> {
    let mut out = base.to_vec();
    for m in mutations {
        // Positions pick from 0..=len so that inserting and cutting can happen at the end.
        let at = |i: &Index, out: &Vec<u8>| i.index(out.len() + 1);
        match m {
            Mutation::FlipBit(i, bit) if !out.is_empty() => {
                let at = i.index(out.len());
                out[at] ^= 1 << bit;
            }
            Mutation::SetByte(i, byte) if !out.is_empty() => {
                let at = i.index(out.len());
                out[at] = *byte;
            }
            Mutation::Truncate(i) => out.truncate(at(i, &out)),
            Mutation::Insert(i, bytes) => {
                let at = at(i, &out);
                out.splice(at..at, bytes.iter().copied());
            }
            Mutation::Remove(i, n) => {
                let at = at(i, &out);
                let end = at.saturating_add(*n).min(out.len());
                out.drain(at..end);
            }
            Mutation::Word(i, word, big_endian) => {
                let bytes = if *big_endian {
                    word.to_be_bytes()
                } else {
                    word.to_le_bytes()
                };
                let at = at(i, &out);
                let end = (at + 4).min(out.len());
                out.splice(at..end, bytes);
            }
            Mutation::Splice(i, donor, n) if !donors.is_empty() => {
                let donor = &donors[donor % donors.len()];
                let at = at(i, &out).min(donor.len());
                let end = at.saturating_add(*n).min(donor.len());
                let piece = &donor[at..end];
                let stop = (at + piece.len()).min(out.len());
                out.splice(at..stop, piece.iter().copied());
            }
            _ => {}
        }
    }
    out
}

/// Random bytes, or one of `bases` mutated (with the bases as donors for splicing).
fn bytes_from(bases: Vec<Vec<u8>>) -> impl Strategy<Value = Vec<u8>> {
    let count = bases.len();
    prop_oneof![
        1 => prop::collection::vec(any::<u8>(), 0..128),
        4 => (0..count, mutations()).prop_map(move |(b, m)| apply(&bases[b], &bases, &m)),
    ]
}

// ---------------------------------------------------------------------------------------------
// IDX.

fn idx_header(magic: u32, dims: &[u32]) -> Vec<u8> {
    let mut out = magic.to_be_bytes().to_vec();
    for d in dims {
        out.extend_from_slice(&d.to_be_bytes());
    }
    out
}

/// Headers with any magic and any sizes (zeros, huge, products that overflow), then a body.
fn spliced_idx() -> impl Strategy<Value = Vec<u8>> {
    (
        prop_oneof![Just(2049u32), Just(2051), Just(0x0308_0000), any::<u32>()],
        prop::collection::vec(interesting_u32(), 0..4),
        prop::collection::vec(any::<u8>(), 0..96),
    )
        .prop_map(|(magic, dims, body)| {
            let mut out = idx_header(magic, &dims);
            out.extend(body);
            out
        })
}

fn valid_idx_files() -> Vec<Vec<u8>> {
    let pixels: Vec<u8> = (0..3 * 28 * 28).map(|i| (i * 37 % 256) as u8).collect();
    let images = idx::encode_images(28, 28, &pixels).unwrap();
    let small = idx::encode_images(2, 3, &[1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12]).unwrap();
    let labels = idx::encode_labels(&[5, 0, 4]).unwrap();
    let mut files = vec![images, small, labels];
    let zipped: Vec<Vec<u8>> = files.iter().map(|f| idx::gzip(f).unwrap()).collect();
    files.extend(zipped);
    files
}

fn idx_input() -> impl Strategy<Value = Vec<u8>> {
    let bases = valid_idx_files();
    prop_oneof![
        3 => bytes_from(bases),
        1 => spliced_idx(),
        // A spliced header, gzipped and maybe damaged after.
        1 => (spliced_idx(), prop::collection::vec(mutation(), 0..3))
            .prop_map(|(raw, m)| apply(&idx::gzip(&raw).unwrap(), &[], &m)),
    ]
}

/// A header's u32 at `at`, as the reader sees it.
fn be_u32(bytes: &[u8], at: usize) -> u64 {
    u64::from(u32::from_be_bytes(bytes[at..at + 4].try_into().unwrap()))
}

#[test]
fn the_idx_reader_never_panics_and_names_the_file() {
    let origin = "fuzz/train-images-idx3-ubyte";
    fuzz("IDX reader", 2000, idx_input(), |bytes| {
        let named = |e: gan_tui::data::DataError| {
            let msg = e.to_string();
            prop_assert!(msg.contains(origin), "error does not name the file: {msg}");
            prop_assert!(!msg.contains('\n'), "not one line: {msg:?}");
            Ok(kind(&e))
        };
        let data = match idx::decode(Cow::Borrowed(&bytes), origin) {
            Ok(data) => data,
            Err(e) => return named(e),
        };
        let as_images = match idx::parse_images(data.clone(), origin) {
            Ok(images) => {
                let header = &data.bytes;
                prop_assert!(images.count > 0 && images.rows > 0 && images.cols > 0);
                prop_assert_eq!(images.count as u64, be_u32(header, 4));
                prop_assert_eq!(
                    images.pixels.len(),
                    images.count * images.rows * images.cols
                );
                prop_assert_eq!(images.pixels.as_slice(), &header[16..]);
                "images parsed".to_string()
            }
            Err(e) => named(e)?,
        };
        let as_labels = match idx::parse_labels(data.clone(), origin) {
            Ok(labels) => {
                prop_assert!(!labels.is_empty());
                prop_assert_eq!(labels.len() as u64, be_u32(&data.bytes, 4));
                prop_assert_eq!(labels.as_slice(), &data.bytes[8..]);
                "labels parsed".to_string()
            }
            Err(e) => named(e)?,
        };
        // Most inputs are one kind or the other; the label says how far the right one got.
        Ok(if as_images == "WrongKind" {
            as_labels
        } else {
            as_images
        })
    });
}

// ---------------------------------------------------------------------------------------------
// Config.

fn toml_key() -> impl Strategy<Value = String> {
    let known = [
        "preset",
        "epochs",
        "batch_size",
        "seed",
        "max_steps",
        "lr",
        "dir",
        "log_every",
        "sample_every",
        "sample_count",
        "keep_checkpoints",
        "on_write_error",
        "theme",
        "fps",
        "train",
        "data",
        "run",
        "ui",
        "train.epochs",
        "\"lr\"",
    ];
    prop_oneof![
        4 => prop::sample::select(known.to_vec()).prop_map(str::to_string),
        1 => "[a-z_]{1,10}",
        1 => "[ -~]{0,6}",
    ]
}

fn toml_value() -> impl Strategy<Value = String> {
    prop_oneof![
        any::<i64>().prop_map(|i| i.to_string()),
        (-3i64..300).prop_map(|i| i.to_string()),
        prop::sample::select(vec![
            "0",
            "-1",
            "4096",
            "4097",
            "10000",
            "99999999999999999999",
            "-9223372036854775808",
            "nan",
            "+inf",
            "-inf",
            "-0.0",
            "1e308",
            "0.0002",
            "1.0",
            "true",
            "\"\"",
            "\"reference\"",
            "\"continue\"",
            "\"stop\"",
            "\"default\"",
            "\"../../etc\"",
            "\"a\\u0000b\"",
            "[1, 2]",
            "{ a = 1 }",
            "1979-05-27",
            "'''multi\nline'''",
        ])
        .prop_map(str::to_string),
        any::<f64>().prop_map(|f| format!("{f:?}")),
        "\"[^\"\\\\\\n]{0,12}\"",
        "[ -~]{0,10}",
    ]
}

fn toml_line() -> impl Strategy<Value = String> {
    prop_oneof![
        2 => prop::sample::select(vec!["train", "data", "run", "ui", "training", "train.x", "[train]"])
            .prop_map(|t| format!("[{t}]")),
        6 => (toml_key(), toml_value()).prop_map(|(k, v)| format!("{k} = {v}")),
        1 => "#[ -~]{0,12}",
        1 => Just(String::new()),
        1 => "[ -~]{0,16}",
    ]
}

fn toml_text() -> impl Strategy<Value = Vec<u8>> {
    prop::collection::vec(toml_line(), 0..12).prop_map(|lines| {
        let mut text = lines.join("\n");
        text.push('\n');
        text.into_bytes()
    })
}

/// `key = value` for a real key of `table`, the value mostly of the right type and often in
/// range, so that whole files get past the parser to the range checks and the resolution.
fn known_setting() -> impl Strategy<Value = (&'static str, String)> {
    fn int(
        table: &'static str,
        key: &'static str,
        lo: i64,
        hi: i64,
    ) -> BoxedStrategy<(&'static str, String)> {
        prop_oneof![
            4 => (lo..=hi).prop_map(|v| v.to_string()),
            1 => prop::sample::select(vec![lo - 1, hi + 1, 0, -1, i64::MAX, i64::MIN])
                .prop_map(|v| v.to_string()),
            1 => toml_value(),
        ]
        .prop_map(move |v| (table, format!("{key} = {v}")))
        .boxed()
    }
    fn text(
        table: &'static str,
        key: &'static str,
        good: Vec<&'static str>,
    ) -> BoxedStrategy<(&'static str, String)> {
        prop_oneof![
            4 => prop::sample::select(good).prop_map(|v| format!("{v:?}")),
            1 => "\"[a-zA-Z0-9_./ -]{0,12}\"",
            1 => toml_value(),
        ]
        .prop_map(move |v| (table, format!("{key} = {v}")))
        .boxed()
    }
    let lr = prop_oneof![
        4 => (1e-6f64..1.0).prop_map(|v| format!("{v:?}")),
        1 => toml_value(),
    ]
    .prop_map(|v| ("train", format!("lr = {v}")))
    .boxed();
    prop::strategy::Union::new(vec![
        text("train", "preset", vec!["reference", "stylegan"]),
        int("train", "epochs", 1, 10_000),
        int("train", "batch_size", 1, 4096),
        int("train", "seed", 0, 1000),
        int("train", "max_steps", 0, 1000),
        lr,
        text("data", "dir", vec!["", "digits", "../fashion", "/tmp/x"]),
        text("run", "dir", vec!["", "runs/a", "/tmp/run"]),
        int("run", "log_every", 1, 100),
        int("run", "sample_every", 1, 1000),
        int("run", "sample_count", 1, 256),
        int("run", "keep_checkpoints", 0, 20),
        text("run", "on_write_error", vec!["continue", "stop"]),
        text(
            "ui",
            "theme",
            vec!["default", "amber", "my-theme_2", "../x"],
        ),
        int("ui", "fps", 1, 60),
    ])
}

/// A config file of real tables and keys, each table's settings under its header.
fn config_file() -> impl Strategy<Value = Vec<u8>> {
    prop::collection::vec(known_setting(), 0..10).prop_map(|mut settings| {
        // One line per key: a repeated key is a syntax error, which other inputs cover.
        let mut seen = std::collections::BTreeSet::new();
        settings.retain(|(table, line)| {
            let key = line.split(' ').next().unwrap_or("");
            seen.insert(format!("{table}.{key}"))
        });
        let mut text = String::new();
        for table in ["train", "data", "run", "ui"] {
            let lines: Vec<&str> = settings
                .iter()
                .filter(|(t, _)| *t == table)
                .map(|(_, line)| line.as_str())
                .collect();
            if !lines.is_empty() {
                text.push_str(&format!("[{table}]\n{}\n", lines.join("\n")));
            }
        }
        text.into_bytes()
    })
}

fn config_input() -> impl Strategy<Value = Vec<u8>> {
    let example = include_bytes!("../../config.example.toml").to_vec();
    let resolved = Config::default().to_toml().into_bytes();
    prop_oneof![
        4 => config_file(),
        2 => toml_text(),
        2 => bytes_from(vec![example, resolved]),
        1 => (config_file(), mutations()).prop_map(|(t, m)| apply(&t, &[], &m)),
    ]
}

/// What `config::load` promises of a config it accepts.
fn check_ranges(c: &Config) -> Result<(), TestCaseError> {
    prop_assert!((1..=10_000).contains(&c.epochs), "{c:?}");
    prop_assert!((1..=4096).contains(&c.batch_size), "{c:?}");
    prop_assert!(c.lr.is_finite() && c.lr > 0.0 && c.lr <= 1.0, "{c:?}");
    prop_assert!(c.max_steps != Some(0), "{c:?}");
    prop_assert!(c.log_every >= 1 && c.sample_every >= 1, "{c:?}");
    prop_assert!((1..=256).contains(&c.sample_count), "{c:?}");
    prop_assert!((1..=60).contains(&c.fps), "{c:?}");
    prop_assert!(
        !c.theme.is_empty()
            && c.theme
                .chars()
                .all(|ch| ch.is_ascii_alphanumeric() || ch == '_' || ch == '-'),
        "{c:?}"
    );
    for dir in [&c.data_dir, &c.run_dir].into_iter().flatten() {
        prop_assert!(dir.is_absolute(), "{c:?}");
    }
    Ok(())
}

#[test]
fn the_config_loader_never_panics_names_the_file_and_round_trips_what_it_accepts() {
    let tmp = tempfile::tempdir().unwrap();
    let path = tmp.path().join("config.toml");
    let again = tmp.path().join("resolved.toml");
    let no_user_file = tmp.path().join("no-such-user-config.toml");
    let overrides = Overrides::default();
    fuzz("config loader", 500, config_input(), |bytes| {
        std::fs::write(&path, &bytes).unwrap();
        match config::load(Some(&path), &no_user_file, &overrides) {
            Ok(loaded) => {
                check_ranges(&loaded.config)?;
                let label = if loaded.config == Config::default() {
                    "parsed (defaults)"
                } else {
                    "parsed"
                };
                // The run folder's config.toml is this text; it must load back the same.
                std::fs::write(&again, loaded.config.to_toml()).unwrap();
                let back = config::load(Some(&again), &no_user_file, &overrides);
                prop_assert!(back.is_ok(), "to_toml does not load back: {back:?}");
                if let Ok(back) = back {
                    prop_assert_eq!(back.config, loaded.config);
                }
                Ok(label.to_string())
            }
            Err(e) => {
                let msg = e.to_string();
                prop_assert!(
                    msg.contains(&path.display().to_string()),
                    "error does not name the file: {msg}"
                );
                prop_assert!(!msg.contains('\n'), "not one line: {msg:?}");
                Ok(kind(&e))
            }
        }
    });
}

// ---------------------------------------------------------------------------------------------
// Checkpoints.

/// A small checkpoint with this build's metadata: a couple of tensors, counters, sample noise.
fn small_checkpoint(tensors: Vec<NamedTensor>) -> Vec<u8> {
    Checkpoint {
        preset: "reference".to_string(),
        architecture: Preset::Reference.architecture().to_string(),
        seed: 3,
        progress: Progress {
            step: 7,
            epoch: 1,
            batch: 7,
        },
        rng: RngPositions {
            train_noise: 12,
            sample_noise: 34,
        },
        config_toml: "[train]\nseed = 3\n".to_string(),
        elapsed_s: 1.5,
        tally: EpochTally::default(),
        sample_noise: sample_noise_tensor(2, 100, vec![0.25; 200]),
        state: GanState {
            tensors,
            counters: BTreeMap::from([
                (nets::G_STEPS.to_string(), 7),
                (nets::D_STEPS.to_string(), 7),
            ]),
        },
    }
    .encode()
    .unwrap()
}

fn valid_checkpoints() -> Vec<Vec<u8>> {
    let tensor = |name: &str, shape: Vec<usize>| NamedTensor {
        name: name.to_string(),
        data: vec![0.5; shape.iter().product()],
        shape,
    };
    vec![
        small_checkpoint(Vec::new()),
        small_checkpoint(vec![
            tensor("model.0.bias", vec![256]),
            tensor("model.0.weight", vec![2, 3]),
        ]),
    ]
}

/// Edits one entry of a safetensors header as JSON and writes the file back with a length
/// prefix that fits, so the change gets past the framing to the checks behind it.
#[derive(Debug, Clone)]
enum HeaderEdit {
    Dtype(Index, String),
    Shape(Index, Vec<u64>),
    /// The same number of values in another shape: `[2, 100]` as `[100, 2]`, `[200]`, ...
    Reshape(Index, Index),
    Offsets(Index, u64, u64),
    Remove(Index),
    Metadata(Index, String),
    DropMetadata,
}

fn header_edit() -> impl Strategy<Value = HeaderEdit> {
    // I32 and U32 are the size of F32, so the file stays consistent and only the type is wrong.
    let dtype = prop::sample::select(vec![
        "I32", "U32", "F16", "F64", "BF16", "I8", "U8", "BOOL", "F32", "XX",
    ]);
    let number = prop_oneof![
        Just(0u64),
        Just(1),
        Just(4),
        Just(u64::from(u32::MAX)),
        Just(u64::MAX),
        0u64..5000,
    ];
    let text = prop::sample::select(vec![
        "",
        "-1",
        "0",
        "1e3",
        "18446744073709551616",
        "340282366920938463463374607431768211456",
        "stylegan",
        "gan-tui checkpoint",
        "2",
    ]);
    prop_oneof![
        (any::<Index>(), dtype).prop_map(|(i, d)| HeaderEdit::Dtype(i, d.to_string())),
        (any::<Index>(), prop::collection::vec(number.clone(), 0..4))
            .prop_map(|(i, s)| HeaderEdit::Shape(i, s)),
        (any::<Index>(), number.clone(), number).prop_map(|(i, a, b)| HeaderEdit::Offsets(i, a, b)),
        (any::<Index>(), any::<Index>()).prop_map(|(i, j)| HeaderEdit::Reshape(i, j)),
        any::<Index>().prop_map(HeaderEdit::Remove),
        (any::<Index>(), text).prop_map(|(i, t)| HeaderEdit::Metadata(i, t.to_string())),
        Just(HeaderEdit::DropMetadata),
    ]
}

fn edit_header(file: &[u8], edits: &[HeaderEdit]) -> Vec<u8> {
    let len = u64::from_le_bytes(file[..8].try_into().unwrap()) as usize;
    let mut header: serde_json::Map<String, serde_json::Value> =
        serde_json::from_slice(&file[8..8 + len]).unwrap();
    let data = &file[8 + len..];
    for edit in edits {
        let tensors: Vec<String> = header
            .keys()
            .filter(|k| *k != "__metadata__")
            .cloned()
            .collect();
        let tensor = |i: &Index| tensors[i.index(tensors.len())].clone();
        match edit {
            HeaderEdit::Dtype(i, d) if !tensors.is_empty() => {
                header[&tensor(i)]["dtype"] = d.clone().into();
            }
            HeaderEdit::Shape(i, s) if !tensors.is_empty() => {
                header[&tensor(i)]["shape"] = s.clone().into();
            }
            HeaderEdit::Reshape(i, j) if !tensors.is_empty() => {
                let name = tensor(i);
                let dims: Vec<u64> = header[&name]["shape"]
                    .as_array()
                    .map(|a| a.iter().filter_map(|d| d.as_u64()).collect())
                    .unwrap_or_default();
                let n: u64 = dims.iter().product();
                let mut reversed = dims.clone();
                reversed.reverse();
                let choices = [vec![n], vec![1, n], reversed, vec![n, 1], vec![]];
                header[&name]["shape"] = choices[j.index(choices.len())].clone().into();
            }
            HeaderEdit::Offsets(i, a, b) if !tensors.is_empty() => {
                header[&tensor(i)]["data_offsets"] = vec![*a, *b].into();
            }
            HeaderEdit::Remove(i) if !tensors.is_empty() => {
                header.remove(&tensor(i));
            }
            HeaderEdit::Metadata(i, text) => {
                if let Some(serde_json::Value::Object(meta)) = header.get_mut("__metadata__") {
                    let keys: Vec<String> = meta.keys().cloned().collect();
                    if !keys.is_empty() {
                        meta[&keys[i.index(keys.len())]] = text.clone().into();
                    }
                }
            }
            HeaderEdit::DropMetadata => {
                header.remove("__metadata__");
            }
            _ => {}
        }
    }
    let json = serde_json::to_vec(&header).unwrap();
    let mut out = (json.len() as u64).to_le_bytes().to_vec();
    out.extend(json);
    out.extend_from_slice(data);
    out
}

fn checkpoint_input() -> impl Strategy<Value = Vec<u8>> {
    let bases = valid_checkpoints();
    let for_edits = bases.clone();
    prop_oneof![
        2 => bytes_from(bases),
        4 => (
            0..for_edits.len(),
            prop::collection::vec(header_edit(), 1..3),
            prop_oneof![3 => Just(Vec::new()), 1 => prop::collection::vec(mutation(), 1..2)],
        )
            .prop_map(move |(b, edits, m)| {
                apply(&edit_header(&for_edits[b], &edits), &[], &m)
            }),
        // A length prefix, then JSON-looking text.
        1 => (any::<u64>(), "\\{[ -~]{0,40}\\}").prop_map(|(n, j)| {
            let mut out = n.to_le_bytes().to_vec();
            out.extend(j.into_bytes());
            out
        }),
    ]
}

#[test]
fn the_checkpoint_loader_never_panics_and_names_the_file() {
    let path = PathBuf::from("fuzz/checkpoints/latest.safetensors");
    let shown = path.display().to_string();
    // One model for every input, as `gan-tui sample` has one; a failed restore leaves it unchanged.
    let model = RefCell::new(presets::build(&Config::default()));
    fuzz("checkpoint loader", 1000, checkpoint_input(), |bytes| {
        let named = |e: gan_tui::train::checkpoint::CheckpointError, stage: &str| {
            let msg = e.to_string();
            prop_assert!(msg.contains(&shown), "error does not name the file: {msg}");
            prop_assert!(!msg.contains('\n'), "not one line: {msg:?}");
            Ok(format!("{stage} {}", kind(&e)))
        };
        let ckpt = match Checkpoint::decode(&path, &bytes) {
            Ok(ckpt) => ckpt,
            Err(e) => return named(e, "decode:"),
        };
        let _ = ckpt.sample_noise_for(100);
        match ckpt.restore_into(model.borrow_mut().as_mut(), Path::new(&path)) {
            Ok(()) => Err(TestCaseError::fail(
                "a small checkpoint cannot hold a whole model",
            )),
            Err(e) => named(e, "restore:"),
        }
    });
}

// ---------------------------------------------------------------------------------------------
// Themes.

fn theme_input() -> impl Strategy<Value = Vec<u8>> {
    let shipped = vec![
        include_bytes!("../../themes/default.toml").to_vec(),
        include_bytes!("../../themes/amber.toml").to_vec(),
    ];
    let style = prop_oneof![
        prop::sample::select(vec![
            "\"lightred bold\"",
            "\"#ff8000 on 17\"",
            "\"on\"",
            "\"red blue\"",
            "\"blurple\"",
            "300",
            "-1",
            "\"\\u001b[2J\"",
            "\"a\\nb\"",
            "\" .:-=+*#%@\"",
            "\"@\"",
            "true",
            "[1]",
        ])
        .prop_map(str::to_string),
        toml_value(),
    ];
    let key = prop_oneof![
        prop::sample::select(vec![
            "loss_d",
            "title",
            "background",
            "digit_ramp",
            "half_block_grey",
            "digit_invert",
            "los_d",
            "\"a\\nb\"",
        ])
        .prop_map(str::to_string),
        "[a-z_]{1,8}",
    ];
    let file = prop::collection::vec((key, style), 0..6).prop_map(|lines| {
        let text: Vec<String> = lines.iter().map(|(k, v)| format!("{k} = {v}\n")).collect();
        text.concat().into_bytes()
    });
    prop_oneof![2 => file, 1 => bytes_from(shipped)]
}

#[test]
fn the_theme_parser_never_panics_and_warns_in_one_line() {
    let origin = "fuzz/themes/mine.toml";
    fuzz("theme parser", 500, theme_input(), |bytes| {
        let text = String::from_utf8_lossy(&bytes);
        match gan_tui::dashboard::theme::Theme::parse("mine", &text, origin) {
            Ok(theme) => {
                prop_assert!(theme.digit_ramp.len() >= 2);
                Ok("parsed".to_string())
            }
            Err(e) => {
                let msg = e.to_string();
                prop_assert!(msg.contains(origin), "error does not name the file: {msg}");
                prop_assert!(!msg.contains(['\n', '\u{1b}']), "not one line: {msg:?}");
                Ok(kind(&e))
            }
        }
    });
}
