//! Tests of the reference preset: its step against a plain-dfdx oracle, its sampler and checkpoints.

use super::*;
use crate::train::noise::{NoiseKind, NoiseStream};
use crate::train::testing::{self, state_map};

#[test]
fn one_thread_or_two_take_the_same_steps() {
    testing::assert_threads_change_nothing(|| Box::new(Reference::new(4, 2e-4)));
}

/// The reference recipe in plain dfdx, the oracle the engine is checked against: dfdx's
/// `Linear`, its LeakyReLU (`prelu`) and tanh, its autograd and its own Adam, with the step
/// written as the PyTorch program writes it (two D passes, D's weight gradients in G's step).
mod plain {
    use super::*;
    use dfdx::optim::{Adam, Optimizer};

    pub type G = (Linear<LATENT, 256>, Linear<256, 512>, Linear<512, IMAGE>);
    pub type D = (Linear<IMAGE, 512>, Linear<512, 256>, Linear<256, 1>);
    type BuiltG = <G as BuildOnDevice<Cpu, f32>>::Built;
    type BuiltD = <D as BuildOnDevice<Cpu, f32>>::Built;
    type Rows<const N: usize, T> = Tensor<(usize, Const<N>), f32, Cpu, T>;

    pub struct Oracle {
        pub dev: Cpu,
        pub g: BuiltG,
        pub d: BuiltD,
        opt_g: Adam<BuiltG, f32, Cpu>,
        opt_d: Adam<BuiltD, f32, Cpu>,
    }

    fn g_forward<T: Tape<f32, Cpu>>(g: &BuiltG, z: Rows<LATENT, T>) -> Rows<IMAGE, T> {
        let h = g.0.forward(z).prelu(0.2);
        let h = g.1.forward(h).prelu(0.2);
        g.2.forward(h).tanh()
    }

    fn d_forward<T: Tape<f32, Cpu>>(d: &BuiltD, x: Rows<IMAGE, T>) -> Rows<1, T> {
        let h = d.0.forward(x).prelu(0.2);
        let h = d.1.forward(h).prelu(0.2);
        d.2.forward(h)
    }

    impl Oracle {
        pub fn new(seed: u64, lr: f64) -> Self {
            let dev = Cpu::seed_from_u64(seed);
            let g = dev.build_module::<G, f32>();
            let d = dev.build_module::<D, f32>();
            let (opt_g, opt_d) = (
                Adam::new(&g, pytorch_defaults(lr)),
                Adam::new(&d, pytorch_defaults(lr)),
            );
            Oracle {
                dev,
                g,
                d,
                opt_g,
                opt_d,
            }
        }

        pub fn step(&mut self, b: &Batch) -> StepLosses {
            let n = b.count;
            let real = self
                .dev
                .tensor_from_vec(b.real.to_vec(), (n, Const::<IMAGE>));
            let z = self.dev.tensor_from_vec(b.z.to_vec(), (n, Const::<LATENT>));
            let ones = self.dev.ones_like(&(n, Const::<1>));
            let zeros = self.dev.zeros_like(&(n, Const::<1>));
            let fake = g_forward(&self.g, z.traced(self.g.alloc_grads()));
            let (fake, g_tape) = fake.split_tape();
            let real_logits = d_forward(&self.d, real.traced(self.d.alloc_grads()));
            let d_real = crate::nn::loss::mean_sigmoid(&real_logits.as_vec());
            let real_loss = binary_cross_entropy_with_logits_loss(real_logits, ones.clone());
            let real_value = real_loss.array();
            let grads = real_loss.backward();
            let fake_logits = d_forward(&self.d, fake.clone().traced(grads));
            let d_fake = crate::nn::loss::mean_sigmoid(&fake_logits.as_vec());
            let fake_loss = binary_cross_entropy_with_logits_loss(fake_logits, zeros);
            let fake_value = fake_loss.array();
            let grads = fake_loss.backward();
            self.opt_d.update(&mut self.d, &grads).unwrap();
            let logits = d_forward(&self.d, fake.put_tape(g_tape));
            let g_loss = binary_cross_entropy_with_logits_loss(logits, ones);
            let g_value = g_loss.array();
            let grads = g_loss.backward();
            self.opt_g.update(&mut self.g, &grads).unwrap();
            StepLosses {
                d_loss: real_value + fake_value,
                g_loss: g_value,
                d_real,
                d_fake,
            }
        }
    }
}

fn max_rel_diff(a: &[f32], b: &[f32]) -> f32 {
    a.iter()
        .zip(b)
        .map(|(p, q)| (p - q).abs() / (1e-3 + q.abs()))
        .fold(0.0, f32::max)
}

/// The engine's step against the plain dfdx formulation, step by step on real digits, with
/// full batches and a short one.
#[test]
fn steps_match_the_plain_dfdx_formulation() {
    let mut ours = Reference::new(11, 2e-4);
    let mut oracle = plain::Oracle::new(11, 2e-4);
    let set = crate::data::load(None, crate::data::Split::Train)
        .unwrap()
        .take(96);
    let mut noise = NoiseStream::new(11, NoiseKind::Train);
    let order = crate::data::epoch_order(set.len(), 11, 1);
    let (mut real, mut z) = (Vec::new(), Vec::new());
    for step in 0..4u64 {
        let idx = crate::data::batch_indices(&order, 40, step % 3).unwrap();
        crate::data::fill_batch(&set, idx, &mut real).unwrap();
        noise.fill(&mut z, idx.len() * LATENT);
        let labels = vec![0u8; idx.len()];
        let batch = Batch {
            real: &real,
            labels: &labels,
            z: &z,
            count: idx.len(),
        };
        let a = oracle.step(&batch);
        let b = ours.train_step(&batch).unwrap();
        for (x, y) in [
            (a.d_loss, b.d_loss),
            (a.g_loss, b.g_loss),
            (a.d_real, b.d_real),
            (a.d_fake, b.d_fake),
        ] {
            assert!((x - y).abs() < 1e-4, "step {step}: plain {a:?} ours {b:?}");
        }
    }
    let (g, d) = (&ours.nets.g, &ours.nets.d);
    for (a, b) in [
        (g.0.weight.as_vec(), oracle.g.0.weight.as_vec()),
        (g.2.bias.as_vec(), oracle.g.2.bias.as_vec()),
        (d.0.weight.as_vec(), oracle.d.0.weight.as_vec()),
        (d.2.weight.as_vec(), oracle.d.2.weight.as_vec()),
    ] {
        let diff = max_rel_diff(&a, &b);
        assert!(diff < 1e-3, "parameters differ by up to {diff}");
    }
    let z = NoiseStream::new(1, NoiseKind::Samples).draw(5 * LATENT);
    let zt = oracle.dev.tensor_from_vec(z.clone(), (5, Const::<LATENT>));
    let theirs = {
        let h = oracle.g.0.forward(zt).prelu(0.2);
        let h = oracle.g.1.forward(h).prelu(0.2);
        oracle.g.2.forward(h).tanh().as_vec()
    };
    let mine = ours.generate(&z, None, 5).unwrap();
    let worst = mine
        .iter()
        .zip(&theirs)
        .map(|(x, y)| (x - y).abs())
        .fold(0.0, f32::max);
    assert!(worst < 1e-4, "samples differ by up to {worst}");
}

#[test]
fn starts_from_the_weights_dfdx_linear_draws() {
    let ours = Reference::new(3, 2e-4);
    let oracle = plain::Oracle::new(3, 2e-4);
    assert_eq!(ours.nets.g.1.weight.as_vec(), oracle.g.1.weight.as_vec());
    assert_eq!(ours.nets.d.2.bias.as_vec(), oracle.d.2.bias.as_vec());
}

#[test]
fn losses_start_near_chance_and_move() {
    let mut gan = Reference::new(1, 2e-4);
    let losses = testing::train(&mut gan, 24, 64, 1);
    let first = losses[0];
    // An untrained D says ~0.5 to everything: BCE ln 2 per term.
    assert!(
        (first.d_loss - 2.0 * std::f32::consts::LN_2).abs() < 0.1,
        "{first:?}"
    );
    assert!((first.d_real - 0.5).abs() < 0.05 && (first.d_fake - 0.5).abs() < 0.05);
    let last = losses[losses.len() - 1];
    // D quickly learns to tell real from fake: its loss falls, G's rises.
    assert!(last.d_loss < first.d_loss - 0.2, "{first:?} -> {last:?}");
    assert!(last.g_loss > first.g_loss + 0.03, "{first:?} -> {last:?}");
    assert!(last.d_real > last.d_fake);
}

#[test]
fn the_same_seed_gives_the_same_losses() {
    let a = testing::train(&mut Reference::new(3, 2e-4), 5, 32, 3);
    let b = testing::train(&mut Reference::new(3, 2e-4), 5, 32, 3);
    let c = testing::train(&mut Reference::new(4, 2e-4), 5, 32, 4);
    assert_eq!(a, b);
    assert_ne!(a, c);
}

#[test]
fn a_restored_state_continues_identically() {
    testing::assert_resumes_identically(
        Box::new(Reference::new(5, 2e-4)),
        Box::new(Reference::new(99, 2e-4)),
        3,
        32,
    );
}

#[test]
fn a_damaged_state_changes_nothing() {
    testing::assert_damaged_states_change_nothing(Box::new(Reference::new(2, 2e-4)));
}

#[test]
fn tensors_keep_the_names_and_shapes_checkpoints_use() {
    let state = Reference::new(1, 2e-4).state();
    let names: Vec<(&str, &[usize])> = state
        .tensors
        .iter()
        .map(|t| (t.name.as_str(), t.shape.as_slice()))
        .collect();
    assert_eq!(
        names[..6],
        [
            ("model.0.weight", &[256, 100][..]),
            ("model.0.bias", &[256][..]),
            ("model.2.weight", &[512, 256][..]),
            ("model.2.bias", &[512][..]),
            ("model.4.weight", &[784, 512][..]),
            ("model.4.bias", &[784][..]),
        ]
    );
    let map = state_map(&state);
    for name in [
        "discriminator.model.4.bias",
        "optimizer.generator.exp_avg.model.0.weight",
        "optimizer.discriminator.exp_avg_sq.discriminator.model.2.bias",
    ] {
        assert!(map.contains_key(name), "{name}");
    }
    assert_eq!(state.tensors.len(), 12 * 3);
    assert_eq!(state.counters["optimizer.generator.steps"], 0);
}
