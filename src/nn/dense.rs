//! The fused dense layer: `y = act(x W^T + b)` as one dfdx module with its sizes and activation
//! in its type, computed by one custom op (product, bias and activation in one pass; weight,
//! bias and input gradients side by side on the way back).
//!
//! A network is a tuple of them, so a mis-chained one does not compile:
//!
//! ```compile_fail
//! use dfdx::prelude::*;
//! use gan_tui::nn::{Dense, LeakyRelu, Tanh};
//! type Broken = (Dense<100, 256, LeakyRelu>, Dense<512, 784, Tanh>);
//! let dev: Cpu = Default::default();
//! let g = dev.build_module::<Broken, f32>();
//! let z: Tensor<(usize, Const<100>), f32, Cpu> = dev.zeros_like(&(4, Const));
//! let _ = g.forward(z); // 256 outputs do not feed 512 inputs
//! ```
//!
//! and a well-chained one does:
//!
//! ```
//! use dfdx::prelude::*;
//! use gan_tui::nn::{Dense, LeakyRelu, Tanh};
//! type Fine = (Dense<100, 256, LeakyRelu>, Dense<256, 784, Tanh>);
//! let dev: Cpu = Default::default();
//! let g = dev.build_module::<Fine, f32>();
//! let z: Tensor<(usize, Const<100>), f32, Cpu> = dev.zeros_like(&(4, Const));
//! let x: Tensor<(usize, Const<784>), f32, Cpu> = g.forward(z);
//! ```

use std::marker::PhantomData;

use dfdx::nn::tensor_collection::{ModuleVisitor, TensorCollection, TensorOptions};
use dfdx::prelude::*;
use dfdx::tensor::Tape;
use rand_distr::Uniform;

use super::frozen::{Constant, FrozenModule};
use super::kernels;
use super::ops::{self, put_grad, take_grad};
use super::profile::{self, OpKind, Pass};

/// An activation the dense layer applies in the same pass as its bias.
pub trait Activation: Copy + Default + std::fmt::Debug + Send + Sync + 'static {
    /// Whether the gradient needs the layer's output (an identity's does not).
    const NEEDS_OUTPUT: bool;
    /// `y = act(y + bias)`, row by row.
    fn bias_act(y: &mut [f32], bias: &[f32]);
    /// `g *= act'`, computed from the output `y`.
    fn grad(g: &mut [f32], y: &[f32]);
    /// The slope for negative inputs when this is a leaky ReLU (0 for a ReLU), which a layer
    /// may then apply in its own passes (`bias_act` and `grad` do the same).
    const LEAKY_SLOPE: Option<f32> = None;
}

/// LeakyReLU with slope 0.2 for negative inputs, the GAN literature's and the reference
/// program's. (dfdx's own `LeakyReLU` defaults to 0.05: a model type naming it would silently
/// train another network.)
#[derive(Debug, Default, Clone, Copy)]
pub struct LeakyRelu;

impl LeakyRelu {
    pub const SLOPE: f32 = 0.2;
}

impl Activation for LeakyRelu {
    const NEEDS_OUTPUT: bool = true;
    const LEAKY_SLOPE: Option<f32> = Some(Self::SLOPE);
    fn bias_act(y: &mut [f32], bias: &[f32]) {
        kernels::bias_leaky_relu(y, bias, Self::SLOPE);
    }
    fn grad(g: &mut [f32], y: &[f32]) {
        kernels::leaky_relu_grad(g, y, Self::SLOPE);
    }
}

/// tanh, for images in [-1, 1].
#[derive(Debug, Default, Clone, Copy)]
pub struct Tanh;

impl Activation for Tanh {
    const NEEDS_OUTPUT: bool = true;
    fn bias_act(y: &mut [f32], bias: &[f32]) {
        kernels::bias_tanh(y, bias);
    }
    fn grad(g: &mut [f32], y: &[f32]) {
        kernels::tanh_grad(g, y);
    }
}

/// No activation: logits, critic values.
#[derive(Debug, Default, Clone, Copy)]
pub struct Identity;

impl Activation for Identity {
    const NEEDS_OUTPUT: bool = false;
    fn bias_act(y: &mut [f32], bias: &[f32]) {
        kernels::add_bias(y, bias);
    }
    fn grad(_: &mut [f32], _: &[f32]) {}
}

/// `I` inputs to `O` outputs through activation `A`. The weight is `O x I`, as dfdx's `Linear`
/// and PyTorch's `nn.Linear` store it, initialised as theirs are (uniform in +-1/sqrt(I), weight
/// then bias), so a `Dense` draws the same numbers from a seeded device as a `Linear` would.
#[derive(Debug, Clone)]
pub struct Dense<const I: usize, const O: usize, A, E: Dtype = f32, D: Storage<E> = Cpu> {
    pub weight: Tensor<Rank2<O, I>, E, D>,
    pub bias: Tensor<Rank1<O>, E, D>,
    activation: PhantomData<A>,
}

impl<const I: usize, const O: usize, A> Dense<I, O, A> {
    /// Floating-point operations of one matrix product over `rows` rows (2 per multiply-add):
    /// the forward pass, the weight gradient and the input gradient each cost this much.
    pub const fn product_flops(rows: usize) -> f64 {
        2.0 * (rows * I * O) as f64
    }
}

impl<const I: usize, const O: usize, A: Activation, D: Device<f32>> TensorCollection<f32, D>
    for Dense<I, O, A, f32, D>
{
    type To<E2: Dtype, D2: Device<E2>> = Dense<I, O, A, E2, D2>;

    fn iter_tensors<V: ModuleVisitor<Self, f32, D>>(
        visitor: &mut V,
    ) -> Result<Option<Self::To<V::E2, V::D2>>, V::Err> {
        visitor.visit_fields(
            (
                Self::tensor(
                    "weight",
                    |s| &s.weight,
                    |s| &mut s.weight,
                    TensorOptions::reset_with(|t| {
                        let bound = 1.0 / (I as f32).sqrt();
                        t.try_fill_with_distr(Uniform::new(-bound, bound))
                    }),
                ),
                Self::tensor(
                    "bias",
                    |s| &s.bias,
                    |s| &mut s.bias,
                    TensorOptions::reset_with(|t| {
                        let bound = 1.0 / (I as f32).sqrt();
                        t.try_fill_with_distr(Uniform::new(-bound, bound))
                    }),
                ),
            ),
            |(weight, bias)| Dense {
                weight,
                bias,
                activation: PhantomData,
            },
        )
    }
}

impl<const I: usize, const O: usize, A: Activation, D: Device<f32>> BuildOnDevice<D, f32>
    for Dense<I, O, A, f32, D>
{
    type Built = Self;
}

impl<const I: usize, const O: usize, A> NonMutableModule for Dense<I, O, A> {}

/// Which gradients a pass records.
#[derive(Debug, Clone, Copy)]
struct Wants {
    /// Of the weight and the bias (not when the layer is frozen).
    params: bool,
    /// Of the input (not when it is a `Constant`).
    input: bool,
}

type Batch<const N: usize, B, T> = Tensor<(B, Const<N>), f32, Cpu, T>;

impl<const I: usize, const O: usize, A: Activation> Dense<I, O, A> {
    /// The custom op: forward on copies of the input and the parameters (dfdx has no public
    /// view of a Cpu tensor's buffer), the output moved in, and with a tape, a backward op that
    /// keeps those copies for the gradients `wants` asks for.
    fn forward_op<B: Dim, T: Tape<f32, Cpu>>(
        &self,
        x: Batch<I, B, T>,
        wants: Wants,
    ) -> Result<Batch<O, B, T>, CpuError> {
        profile::timed(OpKind::Dense, Pass::Forward, || {
            let (xv, x, mut tape) = ops::take_input_shared(x)?;
            let rows = x.shape().0;
            let batch = rows.size();
            let w = ops::read(&self.weight)?;
            let b = ops::read(&self.bias)?;
            let mut y = kernels::forward_new(&xv, &w, batch, I, O);
            A::bias_act(&mut y, &b);
            ops::recycle([b]);
            if !T::OWNS_TAPE {
                ops::recycle_shared(xv);
                ops::recycle([w]);
                let out = ops::made(x.device(), y, (rows, Const::<O>))?;
                return Ok(out.put_tape(tape));
            }
            let (out, y_kept) =
                ops::made_keeping(x.device(), y, (rows, Const::<O>), A::NEEDS_OUTPUT)?;
            let y_kept = y_kept.unwrap_or_default();
            let (x_id, w_id, b_id, out_id) = (
                x.ghost(),
                self.weight.ghost(),
                self.bias.ghost(),
                out.ghost(),
            );
            tape.add_backward_op(move |grads| {
                profile::timed(OpKind::Dense, Pass::Backward, || {
                    // The gradient before the activation, from the output's (left as it is).
                    let out_grad = grads.get_or_alloc_mut(&out_id)?;
                    let mut dy = ops::copy_of(out_grad);
                    A::grad(&mut dy, &y_kept);
                    let mut dx: Vec<f32> = if wants.input {
                        take_grad!(grads, x_id)
                    } else {
                        Vec::new()
                    };
                    let input_grad = |dx: &mut Vec<f32>| {
                        if wants.input {
                            kernels::input_grad_add(&dy, &w, dx, batch, I, O);
                        }
                    };
                    if wants.params {
                        let mut dw: Vec<f32> = take_grad!(grads, w_id);
                        let mut db: Vec<f32> = take_grad!(grads, b_id);
                        let mut params_grad = || {
                            kernels::weight_grad(&dy, &xv, &mut dw, batch, I, O, true);
                            kernels::bias_grad(&dy, &mut db, true);
                        };
                        // Two products side by side; one alone takes both threads.
                        if wants.input {
                            kernels::side_by_side(params_grad, || input_grad(&mut dx));
                        } else {
                            params_grad();
                        }
                        put_grad!(grads, w_id, dw);
                        put_grad!(grads, b_id, db);
                    } else {
                        input_grad(&mut dx);
                    }
                    if wants.input {
                        put_grad!(grads, x_id, dx);
                    }
                    ops::recycle([dy, w]);
                    ops::recycle_shared(xv);
                    ops::recycle_shared(y_kept);
                    Ok(())
                })
            });
            Ok(out.put_tape(tape))
        })
    }
}

impl<const I: usize, const O: usize, A: Activation, B: Dim, T: Tape<f32, Cpu>>
    Module<Batch<I, B, T>> for Dense<I, O, A>
{
    type Output = Batch<O, B, T>;
    type Error = CpuError;

    fn try_forward(&self, x: Batch<I, B, T>) -> Result<Self::Output, CpuError> {
        let wants = Wants {
            params: true,
            input: true,
        };
        self.forward_op(x, wants)
    }
}

impl<const I: usize, const O: usize, A: Activation, B: Dim, T: Tape<f32, Cpu>>
    Module<Constant<Batch<I, B, T>>> for Dense<I, O, A>
{
    type Output = Batch<O, B, T>;
    type Error = CpuError;

    fn try_forward(&self, x: Constant<Batch<I, B, T>>) -> Result<Self::Output, CpuError> {
        let wants = Wants {
            params: true,
            input: false,
        };
        self.forward_op(x.0, wants)
    }
}

impl<const I: usize, const O: usize, A: Activation, B: Dim, T: Tape<f32, Cpu>>
    FrozenModule<Batch<I, B, T>> for Dense<I, O, A>
{
    type Output = Batch<O, B, T>;

    fn try_forward_frozen(&self, x: Batch<I, B, T>) -> Result<Self::Output, CpuError> {
        let wants = Wants {
            params: false,
            input: true,
        };
        self.forward_op(x, wants)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::nn::frozen::Freeze;

    type Ours = (
        Dense<5, 7, LeakyRelu>,
        Dense<7, 4, Tanh>,
        Dense<4, 3, Identity>,
    );
    /// The same network from dfdx's own modules (prelu with a = 0.2 is LeakyReLU 0.2).
    type Theirs = (
        dfdx::nn::builders::Linear<5, 7>,
        dfdx::nn::builders::Linear<7, 4>,
        dfdx::nn::builders::Linear<4, 3>,
    );

    fn theirs_forward<T: Tape<f32, Cpu>>(
        m: &<Theirs as BuildOnDevice<Cpu, f32>>::Built,
        x: Tensor<(usize, Const<5>), f32, Cpu, T>,
    ) -> Tensor<(usize, Const<3>), f32, Cpu, T> {
        let h = m.0.forward(x).prelu(0.2);
        let h = m.1.forward(h).tanh();
        m.2.forward(h)
    }

    fn close(a: &[f32], b: &[f32], what: &str) {
        assert_eq!(a.len(), b.len(), "{what}");
        for (i, (x, y)) in a.iter().zip(b).enumerate() {
            assert!(
                (x - y).abs() <= 1e-5 * (1.0 + y.abs()),
                "{what}[{i}]: {x} vs {y}"
            );
        }
    }

    fn pair() -> (
        Cpu,
        <Ours as BuildOnDevice<Cpu, f32>>::Built,
        <Theirs as BuildOnDevice<Cpu, f32>>::Built,
    ) {
        let ours = Cpu::seed_from_u64(3).build_module::<Ours, f32>();
        let dev = Cpu::seed_from_u64(3);
        let theirs = dev.build_module::<Theirs, f32>();
        (dev, ours, theirs)
    }

    #[test]
    fn draws_the_same_initial_weights_as_dfdx_linear() {
        let (_, ours, theirs) = pair();
        assert_eq!(ours.0.weight.as_vec(), theirs.0.weight.as_vec());
        assert_eq!(ours.0.bias.as_vec(), theirs.0.bias.as_vec());
        assert_eq!(ours.2.weight.as_vec(), theirs.2.weight.as_vec());
        assert_eq!(ours.2.bias.as_vec(), theirs.2.bias.as_vec());
    }

    #[test]
    fn values_and_gradients_match_dfdx_linear_and_activations() {
        let (dev, ours, theirs) = pair();
        let x: Tensor<(usize, Const<5>), f32, Cpu> = dev.sample_normal_like(&(6, Const));
        let r: Tensor<(usize, Const<3>), f32, Cpu> = dev.sample_normal_like(&(6, Const));
        let go = ours.forward(x.clone().traced(ours.alloc_grads()));
        let gt = theirs_forward(&theirs, x.clone().traced(theirs.alloc_grads()));
        close(&go.as_vec(), &gt.as_vec(), "output");
        // A loss sum(y * r) and an input that is a leaf of the graph.
        // (A traced tensor keeps its id, so `x` names the input's gradient.)
        let lo = (ours.forward(x.clone().leaky_traced()) * r.clone()).sum();
        let lt = (theirs_forward(&theirs, x.clone().leaky_traced()) * r.clone()).sum();
        let (go, gt) = (lo.backward(), lt.backward());
        close(&go.get(&x).as_vec(), &gt.get(&x).as_vec(), "input");
        for (a, b, what) in [
            (
                go.get(&ours.0.weight).as_vec(),
                gt.get(&theirs.0.weight).as_vec(),
                "w0",
            ),
            (
                go.get(&ours.0.bias).as_vec(),
                gt.get(&theirs.0.bias).as_vec(),
                "b0",
            ),
            (
                go.get(&ours.1.weight).as_vec(),
                gt.get(&theirs.1.weight).as_vec(),
                "w1",
            ),
            (
                go.get(&ours.2.weight).as_vec(),
                gt.get(&theirs.2.weight).as_vec(),
                "w2",
            ),
            (
                go.get(&ours.2.bias).as_vec(),
                gt.get(&theirs.2.bias).as_vec(),
                "b2",
            ),
        ] {
            close(&a, &b, what);
        }
    }

    #[test]
    fn gradients_add_to_what_is_there() {
        let (dev, ours, _) = pair();
        let x: Tensor<(usize, Const<5>), f32, Cpu> = dev.sample_normal_like(&(4, Const));
        let once = ours
            .forward(x.clone().traced(ours.alloc_grads()))
            .sum()
            .backward();
        let grads = ours
            .forward(x.clone().traced(once.clone()))
            .sum()
            .backward();
        let (a, b) = (
            once.get(&ours.1.weight).as_vec(),
            grads.get(&ours.1.weight).as_vec(),
        );
        let doubled: Vec<f32> = a.iter().map(|v| 2.0 * v).collect();
        close(&b, &doubled, "accumulated");
    }

    #[test]
    fn frozen_layers_and_constant_inputs_skip_their_gradients() {
        let (dev, ours, _) = pair();
        let x: Tensor<(usize, Const<5>), f32, Cpu> = dev.sample_normal_like(&(4, Const));
        let full = ours.forward(x.clone().leaky_traced()).sum().backward();
        // Frozen: the input gets the same gradient, no parameter gets one.
        let frozen = ours
            .frozen()
            .forward(x.clone().leaky_traced())
            .sum()
            .backward();
        close(
            &frozen.get(&x).as_vec(),
            &full.get(&x).as_vec(),
            "frozen input",
        );
        let mut probe = frozen.clone();
        let w = probe.get_or_alloc_mut(&ours.0.weight).unwrap();
        assert!(
            w.iter().all(|&v| v == 0.0),
            "a frozen weight took a gradient"
        );
        // Constant: parameters get the full gradients, the input none.
        let constant = ours
            .forward(Constant(x.clone().leaky_traced()))
            .sum()
            .backward();
        close(
            &constant.get(&ours.0.weight).as_vec(),
            &full.get(&ours.0.weight).as_vec(),
            "constant-input weight",
        );
        let mut probe = constant.clone();
        let gx = probe.get_or_alloc_mut(&x).unwrap();
        assert!(
            gx.iter().all(|&v| v == 0.0),
            "a constant input took a gradient"
        );
    }

    #[test]
    fn without_a_tape_it_only_computes() {
        let (dev, ours, theirs) = pair();
        let x: Tensor<(usize, Const<5>), f32, Cpu> = dev.sample_normal_like(&(3, Const));
        close(
            &ours.forward(x.clone()).as_vec(),
            &theirs_forward(&theirs, x).as_vec(),
            "untraced",
        );
    }
}
