//! `cargo bench`: one training step of the reference recipe, timed by the same
//! code as `gan-tui bench` (median of five windows). Run it under `perf record` or callgrind to
//! see where a step's time goes.

use gan_tui::commands::bench;
use gan_tui::config::Preset;

fn main() {
    // `cargo bench` passes `--bench`; a number argument sets the steps.
    let steps = std::env::args()
        .skip(1)
        .find_map(|a| a.parse().ok())
        .unwrap_or(400);
    match bench::run(Preset::Reference, steps, 64) {
        Ok(report) => println!("{}\n{}\n", report.text(), report.json()),
        Err(e) => {
            eprintln!("bench failed: {e}");
            std::process::exit(1);
        }
    }
}
