//! Trains one preset in-process as the trainer would (seed, shuffle, noise, batch 64) and
//! scores its generator with the judge every so many steps: a quick loop for tuning a recipe,
//! without checkpoints or a run folder.
//!
//! ```text
//! cargo run --release --example tune -- dcgan [--steps 2814] [--every 938] [--count 2000] [--lr 2e-4] [--seed 1] [--png DIR] [--schedule linear]
//! ```
//!
//! With `--png DIR` it also writes the first 100 scored digits as `DIR/step-N.png`.

use std::process::ExitCode;
use std::time::Instant;

use gan_tui::config::{Config, Preset};
use gan_tui::data::{self, Split};
use gan_tui::judge::Judge;
use gan_tui::train::evaluate::evaluate;
use gan_tui::train::gan::{self, Batch};
use gan_tui::train::noise::{NoiseKind, NoiseStream};
use gan_tui::train::schedule::{Schedule, ScheduleKind, lr_at};

fn main() -> ExitCode {
    match run() {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("tune: {e}");
            ExitCode::FAILURE
        }
    }
}

fn run() -> Result<(), String> {
    let mut args = std::env::args().skip(1);
    let name = args.next().ok_or("give a preset name")?;
    let preset = Preset::from_name(&name).ok_or(format!("no preset `{name}`"))?;
    let (mut steps, mut every, mut count) = (2814u64, 938u64, 2000usize);
    let mut lr = preset.default_lr();
    let mut seed = 1u64;
    let mut png_dir: Option<std::path::PathBuf> = None;
    let mut schedule = Schedule::default();
    while let Some(flag) = args.next() {
        let value = args.next().ok_or(format!("{flag} needs a value"))?;
        let bad = |e: &dyn std::fmt::Display| format!("{flag} {value}: {e}");
        match flag.as_str() {
            "--steps" => steps = value.parse().map_err(|e| bad(&e))?,
            "--every" => every = value.parse().map_err(|e| bad(&e))?,
            "--count" => count = value.parse().map_err(|e| bad(&e))?,
            "--lr" => lr = value.parse().map_err(|e| bad(&e))?,
            "--seed" => seed = value.parse().map_err(|e| bad(&e))?,
            "--png" => png_dir = Some(value.into()),
            "--schedule" => {
                schedule.kind = ScheduleKind::from_name(&value).ok_or_else(|| bad(&"unknown"))?
            }
            _ => return Err(format!("unknown flag {flag}")),
        }
    }
    let cfg = Config {
        preset,
        seed,
        lr,
        ..Config::default()
    };
    let set = data::load(None, Split::Train).map_err(|e| e.to_string())?;
    let judge = Judge::builtin().map_err(|e| e.to_string())?;
    let floor = judge.real_floor(count).map_err(|e| e.to_string())?;
    println!("real-digit floor at {count}: {floor}");
    let mut model = gan::build(&cfg);
    let latent = model.latent_dim();
    let mut noise = NoiseStream::new(seed, NoiseKind::Train);
    let per_epoch = data::batches_per_epoch(set.len(), cfg.batch_size);
    let (mut real, mut labels, mut z) = (Vec::new(), Vec::new(), Vec::new());
    let mut order = Vec::new();
    let mut train_time = 0.0f64;
    let mut sums = [0.0f64; 4];
    for step in 0..steps {
        let (epoch, batch) = ((step / per_epoch) as u32 + 1, step % per_epoch);
        if batch == 0 {
            order = data::epoch_order(set.len(), seed, epoch);
        }
        let idx = data::batch_indices(&order, cfg.batch_size, batch).ok_or("no batch")?;
        data::fill_batch(&set, idx, &mut real).map_err(|e| e.to_string())?;
        data::fill_labels(&set, idx, &mut labels).map_err(|e| e.to_string())?;
        noise.fill(&mut z, idx.len() * latent);
        model.set_lr(lr_at(&schedule, lr, step, steps));
        let start = Instant::now();
        let l = model
            .train_step(&Batch {
                real: &real,
                labels: &labels,
                z: &z,
                count: idx.len(),
            })
            .map_err(|e| e.to_string())?;
        train_time += start.elapsed().as_secs_f64();
        for (s, v) in sums
            .iter_mut()
            .zip([l.d_loss, l.g_loss, l.d_real, l.d_fake])
        {
            *s += v as f64;
        }
        if (step + 1) % every == 0 || step + 1 == steps {
            let e = evaluate(model.as_ref(), &judge, count, 1).map_err(|e| e.to_string())?;
            if let Some(dir) = &png_dir {
                let (pixels, _) = gan_tui::train::evaluate::generate(model.as_ref(), 100, 1)
                    .map_err(|e| e.to_string())?;
                let grey = gan_tui::image::to_grey(&pixels);
                let png = gan_tui::image::grid_png(&grey, 28, 28, 10).map_err(|e| e.to_string())?;
                std::fs::create_dir_all(dir).map_err(|e| e.to_string())?;
                std::fs::write(dir.join(format!("step-{}.png", step + 1)), png)
                    .map_err(|e| e.to_string())?;
            }
            let s = &e.scores;
            let n = every as f64;
            let smallest = s.class_shares.iter().copied().fold(1.0, f64::min);
            println!(
                "{name} step {:>6} ({:.2} ep) | score {:.3} fcd {:8.2} rec {:5.1}% min class {:4.1}%{} | D {:.3} G {:.3} D(x) {:.3} D(G(z)) {:.3} | {:.1} ms/step",
                step + 1,
                (step + 1) as f64 / per_epoch as f64,
                s.score,
                s.fcd,
                100.0 * s.recognised,
                100.0 * smallest,
                e.agreement
                    .map_or(String::new(), |a| format!(" agree {:.1}%", 100.0 * a)),
                sums[0] / n,
                sums[1] / n,
                sums[2] / n,
                sums[3] / n,
                1e3 * train_time / (step + 1) as f64,
            );
            sums = [0.0; 4];
        }
    }
    Ok(())
}
