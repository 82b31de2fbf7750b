//! Scores the epoch checkpoints of finished runs with the judge and prints the README's preset
//! table: judge score, Fréchet distance (and its ratio to the real-digit floor), recognised share,
//! smallest class share and, for conditional presets, agreement with the requested digit, after
//! the chosen epochs; and the wall time per epoch from the run's `metrics.jsonl`.
//!
//! ```text
//! gan-tui --no-tui --preset dcgan --epochs 10 --seed 1 --run-dir runs/dcgan
//! cargo run --release --example score_runs -- runs/dcgan [more run folders] [--epochs 1,5,10] [--count 10000]
//! ```

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::ExitCode;

use gan_tui::judge::{FLOOR_DIGITS, Judge};
use gan_tui::run_dir::{MetricsRecord, RunDir};
use gan_tui::train::evaluate::evaluate_checkpoint;

/// The noise seed of the scored digits.
const EVAL_SEED: u64 = 1;

struct Args {
    runs: Vec<PathBuf>,
    epochs: Vec<u32>,
    count: usize,
}

fn parse_args() -> Result<Args, String> {
    let mut args = Args {
        runs: Vec::new(),
        epochs: vec![1, 5, 10],
        count: FLOOR_DIGITS,
    };
    let mut it = std::env::args().skip(1);
    while let Some(a) = it.next() {
        match a.as_str() {
            "--epochs" => {
                let v = it.next().ok_or("--epochs needs a list such as 1,5,10")?;
                args.epochs = v
                    .split(',')
                    .map(|e| e.trim().parse::<u32>())
                    .collect::<Result<_, _>>()
                    .map_err(|e| format!("--epochs {v}: {e}"))?;
            }
            "--count" => {
                let v = it.next().ok_or("--count needs a number")?;
                args.count = v.parse().map_err(|e| format!("--count {v}: {e}"))?;
            }
            _ => args.runs.push(PathBuf::from(a)),
        }
    }
    if args.runs.is_empty() {
        return Err("give one or more run folders".into());
    }
    Ok(args)
}

/// Mean seconds per epoch over the run's whole epochs, from the last record of each epoch.
fn seconds_per_epoch(metrics: &Path) -> Option<f64> {
    let text = std::fs::read_to_string(metrics).ok()?;
    let mut end_of: BTreeMap<u32, f64> = BTreeMap::new();
    for line in text.lines() {
        let r: MetricsRecord = serde_json::from_str(line).ok()?;
        let e = end_of.entry(r.epoch).or_insert(0.0);
        *e = e.max(r.elapsed_s);
    }
    let (&last, &end) = end_of.iter().next_back()?;
    Some(end / f64::from(last))
}

fn main() -> ExitCode {
    let args = match parse_args() {
        Ok(a) => a,
        Err(e) => {
            eprintln!("score_runs: {e}");
            return ExitCode::from(2);
        }
    };
    let judge = match Judge::builtin() {
        Ok(j) => j,
        Err(e) => {
            eprintln!("score_runs: {e}");
            return ExitCode::FAILURE;
        }
    };
    let floor = match judge.real_floor(args.count.min(60_000)) {
        Ok(f) => {
            println!("real-digit floor ({} training digits): {f}", f.count);
            Some(f.fcd)
        }
        Err(e) => {
            eprintln!("score_runs: floor: {e}");
            None
        }
    };
    println!(
        "| run | preset | epoch | score | fcd | fcd / floor | recognised | smallest class | agreement | s/epoch |"
    );
    println!("|---|---|---|---|---|---|---|---|---|---|");
    let mut failed = false;
    for run in &args.runs {
        if !run.is_dir() {
            eprintln!("score_runs: {} is not a run folder", run.display());
            failed = true;
            continue;
        }
        // The folder exists, so this only names its parts.
        let dir = match RunDir::create(run) {
            Ok(d) => d,
            Err(e) => {
                eprintln!("score_runs: {}: {e}", run.display());
                failed = true;
                continue;
            }
        };
        let per_epoch = seconds_per_epoch(&dir.metrics_file());
        for &epoch in &args.epochs {
            let path = dir.epoch_checkpoint(epoch);
            if !path.exists() {
                continue;
            }
            match evaluate_checkpoint(&path, &judge, args.count, EVAL_SEED) {
                Ok((ckpt, e)) => {
                    let s = &e.scores;
                    let smallest = s.class_shares.iter().copied().fold(1.0, f64::min);
                    println!(
                        "| {} | {} | {epoch} | {:.3} | {:.3} | {} | {:.1}% | {:.1}% | {} | {} |",
                        run.display(),
                        ckpt.preset,
                        s.score,
                        s.fcd,
                        floor.map_or("-".into(), |f| format!("{:.1}x", s.fcd / f)),
                        100.0 * s.recognised,
                        100.0 * smallest,
                        e.agreement
                            .map_or("-".into(), |a| format!("{:.1}%", 100.0 * a)),
                        per_epoch.map_or("-".into(), |t| format!("{t:.1}")),
                    );
                }
                Err(e) => {
                    eprintln!("score_runs: {e}");
                    failed = true;
                }
            }
        }
    }
    if failed {
        ExitCode::FAILURE
    } else {
        ExitCode::SUCCESS
    }
}
