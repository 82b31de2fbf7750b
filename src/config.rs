//! Settings: the file layer (serde, every key optional) resolved with defaults and command-line
//! overrides into one validated runtime `Config`.

use std::path::PathBuf;

/// A model recipe: architecture, losses and optimiser settings.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Preset {
    /// The reference MLP GAN, exactly as the PyTorch program has it.
    Reference,
}

impl Preset {
    pub const ALL: &'static [Preset] = &[Preset::Reference];

    pub fn name(self) -> &'static str {
        match self {
            Preset::Reference => "reference",
        }
    }

    pub fn from_name(name: &str) -> Option<Preset> {
        Preset::ALL.iter().copied().find(|p| p.name() == name)
    }

    /// The learning rate the recipe uses unless the config overrides it.
    pub fn default_lr(self) -> f64 {
        match self {
            Preset::Reference => 2e-4,
        }
    }
}

/// The resolved, validated settings of one run.
#[derive(Debug, Clone, PartialEq)]
pub struct Config {
    pub preset: Preset,
    pub epochs: u32,
    pub batch_size: usize,
    pub seed: u64,
    /// Stop after this many steps in all, if set.
    pub max_steps: Option<u64>,
    pub lr: f64,
    /// A folder holding the four MNIST-named IDX files; `None` is the built-in MNIST.
    pub data_dir: Option<PathBuf>,
    /// The run folder; `None` makes a new one under the runs directory.
    pub run_dir: Option<PathBuf>,
    /// Steps between logged steps (metrics.jsonl lines and dashboard points).
    pub log_every: u64,
    /// Steps between sample grids sent to the front end.
    pub sample_every: u64,
    /// Digits in the sample grid.
    pub sample_count: usize,
    pub theme: String,
    /// Dashboard frames per second.
    pub fps: u32,
}

impl Default for Config {
    fn default() -> Self {
        Config {
            preset: Preset::Reference,
            epochs: 50,
            batch_size: 64,
            seed: 0,
            max_steps: None,
            lr: Preset::Reference.default_lr(),
            data_dir: None,
            run_dir: None,
            log_every: 10,
            sample_every: 100,
            sample_count: 64,
            theme: "default".to_string(),
            fps: 20,
        }
    }
}
