//! The registry of recipes: each preset declared once, with its name, default learning rate,
//! the architecture text checkpoints store, and how it is built. The config, the command line,
//! checkpoints and the trainer all read it; the recipes themselves do not import it.

use super::gan::{Gan, Preset};
use super::schedule::ScheduleKind;
use super::{cgan, dcgan, reference, tuned, wgan_gp};

/// What the program knows about one preset.
#[derive(Debug, Clone, Copy)]
pub struct Recipe {
    pub preset: Preset,
    pub name: &'static str,
    /// The learning rate of both optimisers unless the config overrides it.
    pub default_lr: f64,
    /// How the rate changes over the run unless the config says.
    pub default_schedule: ScheduleKind,
    /// A one-line description of the networks, stored in checkpoints and compared on load.
    pub architecture: &'static str,
    /// The recipe with its weights initialised from `seed`, at learning rate `lr`.
    pub build: fn(seed: u64, lr: f64) -> Box<dyn Gan>,
}

/// Every preset, in `Preset`'s order (a test checks it).
pub const RECIPES: [Recipe; 5] = [
    Recipe {
        preset: Preset::Reference,
        name: "reference",
        default_lr: 2e-4,
        default_schedule: ScheduleKind::Constant,
        architecture: "mlp G 100-256-512-784 leaky0.2 tanh; D 784-512-256-1 leaky0.2",
        build: |seed, lr| Box::new(reference::Reference::new(seed, lr)),
    },
    Recipe {
        preset: Preset::Tuned,
        name: "tuned",
        default_lr: 2e-4,
        default_schedule: ScheduleKind::Constant,
        architecture: "mlp G 100-256-bn-512-bn-784 leaky0.2 tanh; D 784-512-256-1 leaky0.2 dropout0.3",
        build: |seed, lr| Box::new(tuned::Tuned::new(seed, lr)),
    },
    Recipe {
        preset: Preset::Dcgan,
        name: "dcgan",
        default_lr: 2e-4,
        default_schedule: ScheduleKind::Constant,
        architecture: "dcgan G 100-dense7x7x64-bn-convT32-bn-convT1 tanh; \
                       D conv32-conv64-bn-dense1 leaky0.2; k4 s2 p1",
        build: |seed, lr| Box::new(dcgan::Dcgan::new(seed, lr)),
    },
    Recipe {
        preset: Preset::WganGp,
        name: "wgan-gp",
        // The WGAN-GP paper's rate for its MNIST critic.
        default_lr: 1e-4,
        default_schedule: ScheduleKind::Constant,
        architecture: "mlp G 100-256-512-784 leaky0.2 tanh; critic 784-512-256-1 leaky0.2; \
                       wgan-gp lambda 10 n_critic 5",
        build: |seed, lr| Box::new(wgan_gp::WganGp::new(seed, lr)),
    },
    Recipe {
        preset: Preset::Cgan,
        name: "cgan",
        // G at four times this and D at a quarter of it (cgan::LR_FACTORS), the rate falling along
        // a cosine to 0 at the run's last step: seed 1 of a 10-epoch run reached fcd 17.0 after
        // 3 epochs and 13.7 after 10 (README, Recipes).
        default_lr: 4e-4,
        default_schedule: ScheduleKind::Cosine,
        architecture: "conditional dcgan G 100+10 one-hot-dense7x7x64-bn-convT32-bn-convT1 \
                       tanh; D conv32-conv64-bn-dense1 leaky0.2 with a 10x3136 label projection; \
                       k4 s2 p1",
        build: |seed, lr| Box::new(cgan::new(seed, lr)),
    },
];

impl Preset {
    /// Every preset, in the registry's order.
    pub const ALL: [Preset; RECIPES.len()] = {
        let mut all = [Preset::Reference; RECIPES.len()];
        let mut i = 0;
        while i < RECIPES.len() {
            all[i] = RECIPES[i].preset;
            i += 1;
        }
        all
    };

    /// This preset's entry in the registry.
    pub fn recipe(self) -> &'static Recipe {
        &RECIPES[self as usize]
    }

    pub fn name(self) -> &'static str {
        self.recipe().name
    }

    pub fn from_name(name: &str) -> Option<Preset> {
        RECIPES.iter().find(|r| r.name == name).map(|r| r.preset)
    }

    /// The learning rate the recipe uses unless the config overrides it.
    pub fn default_lr(self) -> f64 {
        self.recipe().default_lr
    }

    /// How the recipe's rate changes over the run unless the config says.
    pub fn default_schedule(self) -> ScheduleKind {
        self.recipe().default_schedule
    }

    /// The networks in one line, as checkpoints store it.
    pub fn architecture(self) -> &'static str {
        self.recipe().architecture
    }

    /// The recipe with its weights initialised from `seed`, at learning rate `lr`.
    pub fn build(self, seed: u64, lr: f64) -> Box<dyn Gan> {
        (self.recipe().build)(seed, lr)
    }

    /// Every preset name, for messages: `reference, ...`.
    pub fn known_names() -> String {
        let names: Vec<&str> = RECIPES.iter().map(|r| r.name).collect();
        names.join(", ")
    }
}

/// The recipe `cfg` names, built from its seed at its learning rate.
pub fn build(cfg: &crate::config::Config) -> Box<dyn Gan> {
    cfg.preset.build(cfg.seed, cfg.lr)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn each_preset_is_declared_once_at_its_own_index() {
        for (i, recipe) in RECIPES.iter().enumerate() {
            assert_eq!(recipe.preset as usize, i, "{}", recipe.name);
            assert_eq!(Preset::from_name(recipe.name), Some(recipe.preset));
        }
        assert_eq!(Preset::ALL.len(), RECIPES.len());
        assert_eq!(Preset::from_name("stylegan"), None);
    }

    #[test]
    fn every_recipe_builds_the_preset_it_is_declared_for() {
        for recipe in &RECIPES {
            let gan = recipe.preset.build(1, recipe.default_lr);
            assert_eq!(gan.preset(), recipe.preset);
        }
    }
}
