//! Trainable tensors of the fused recipes as flat buffers (values, gradient, Adam moments), the
//! Adam step over them, and their checkpoint form: named tensors in PyTorch's layout.
//!
//! A layer may keep a tensor in another element order than PyTorch saves it (a convolution's
//! filters are faster channels-last); the `Param` then carries the permutation, and the
//! checkpoint still holds PyTorch's `(out, in, kh, kw)` so a reader needs no gan-tui knowledge.

use std::collections::BTreeMap;
use std::sync::Arc;

use super::gan::{GanState, StateError, counter};
use crate::nn::average::ema_decay;
use crate::nn::kernels::{self, AdamStep};
use crate::nn::params::{NamedTensor, ParamError};

/// One tensor of a model. Non-trainable ones (batch norm's running statistics) have no gradient
/// or moments and are skipped by the optimiser.
#[derive(Debug, Clone)]
pub struct Param {
    pub value: Vec<f32>,
    pub grad: Vec<f32>,
    m: Vec<f32>,
    v: Vec<f32>,
    /// The shape as saved.
    shape: Vec<usize>,
    /// `value[i]` is saved at `saved[order[i]]`; `None` when both orders are the same.
    order: Option<Arc<Vec<usize>>>,
    trainable: bool,
}

impl Param {
    /// A trainable tensor saved as `shape`, with the same element order inside.
    pub fn new(shape: &[usize], value: Vec<f32>) -> Self {
        let n = value.len();
        debug_assert_eq!(n, shape.iter().product::<usize>());
        Param {
            value,
            grad: vec![0.0; n],
            m: vec![0.0; n],
            v: vec![0.0; n],
            shape: shape.to_vec(),
            order: None,
            trainable: true,
        }
    }

    /// A trainable tensor kept in another order than it is saved in: `order[i]` is where
    /// `value[i]` goes in the saved `shape`. `value` is in the inside order.
    pub fn permuted(shape: &[usize], value: Vec<f32>, order: Vec<usize>) -> Self {
        debug_assert_eq!(order.len(), value.len());
        let mut p = Param::new(shape, value);
        p.order = Some(Arc::new(order));
        p
    }

    /// This tensor, whose values are in the saved order now, kept in another order from here
    /// on: `order[i]` is the saved index of inside element `i`.
    pub fn reordered(self, order: Vec<usize>) -> Self {
        let value = order.iter().map(|&from| self.value[from]).collect();
        Param::permuted(&self.shape, value, order)
    }

    /// A tensor the optimiser leaves alone (running statistics).
    pub fn buffer(shape: &[usize], value: Vec<f32>) -> Self {
        Param {
            value,
            grad: Vec::new(),
            m: Vec::new(),
            v: Vec::new(),
            shape: shape.to_vec(),
            order: None,
            trainable: false,
        }
    }

    pub fn len(&self) -> usize {
        self.value.len()
    }

    pub fn is_empty(&self) -> bool {
        self.value.is_empty()
    }

    pub fn is_trainable(&self) -> bool {
        self.trainable
    }

    /// One Adam update from `grad`; the gradient is left as it is (each step overwrites it).
    pub fn adam(&mut self, s: AdamStep) {
        if self.trainable {
            kernels::adam(&mut self.value, &self.grad, &mut self.m, &mut self.v, s);
        }
    }

    /// The sum of the squares of the gradient Adam applies to it (0 when it is not trained).
    pub fn grad_squares(&self) -> f64 {
        if self.trainable {
            crate::nn::norm::sum_of_squares(&self.grad)
        } else {
            0.0
        }
    }

    fn inside_to_saved(&self, data: &[f32]) -> Vec<f32> {
        match &self.order {
            None => data.to_vec(),
            Some(order) => {
                let mut out = vec![0.0; data.len()];
                for (&to, &x) in order.iter().zip(data) {
                    out[to] = x;
                }
                out
            }
        }
    }

    fn saved_to_inside(&self, data: &[f32]) -> Vec<f32> {
        match &self.order {
            None => data.to_vec(),
            Some(order) => order.iter().map(|&from| data[from]).collect(),
        }
    }

    /// Appends the tensor as `name`, and its moments as `{opt}exp_avg.{name}` and
    /// `{opt}exp_avg_sq.{name}` (PyTorch's names for them) when it is trainable.
    pub fn export(
        &self,
        name: &str,
        opt: &str,
        params: &mut Vec<NamedTensor>,
        moments: &mut Vec<NamedTensor>,
    ) {
        let t = |name: String, data: Vec<f32>| NamedTensor {
            name,
            shape: self.shape.clone(),
            data,
        };
        params.push(t(name.to_string(), self.inside_to_saved(&self.value)));
        if self.trainable {
            moments.push(t(
                format!("{opt}exp_avg.{name}"),
                self.inside_to_saved(&self.m),
            ));
            moments.push(t(
                format!("{opt}exp_avg_sq.{name}"),
                self.inside_to_saved(&self.v),
            ));
        }
    }

    /// Reads what `export` wrote into this tensor; checks names and shapes first and changes
    /// nothing on error.
    pub fn import(
        &mut self,
        name: &str,
        opt: &str,
        state: &BTreeMap<String, NamedTensor>,
    ) -> Result<(), StateError> {
        let get = |name: String| -> Result<Vec<f32>, StateError> {
            match state.get(&name) {
                None => Err(ParamError::Missing { name }.into()),
                Some(t) if t.shape != self.shape || t.data.len() != self.value.len() => {
                    Err(ParamError::WrongShape {
                        name,
                        found: t.shape.clone(),
                        expected: self.shape.clone(),
                    }
                    .into())
                }
                Some(t) => Ok(self.saved_to_inside(&t.data)),
            }
        };
        let value = get(name.to_string())?;
        if self.trainable {
            let m = get(format!("{opt}exp_avg.{name}"))?;
            let v = get(format!("{opt}exp_avg_sq.{name}"))?;
            (self.m, self.v) = (m, v);
        }
        self.value = value;
        Ok(())
    }
}

/// A network made of `Param`s, each with a name relative to the network (`0.weight`, ...).
pub trait Params {
    fn params(&self) -> Vec<(String, &Param)>;
    fn params_mut(&mut self) -> Vec<(String, &mut Param)>;
}

/// The L2 norm of the gradients of all of `net`'s trainable tensors.
pub fn grad_norm(net: &impl Params) -> f32 {
    net.params()
        .iter()
        .map(|(_, p)| p.grad_squares())
        .sum::<f64>()
        .sqrt() as f32
}

/// A layer's tensors by their PyTorch names within the layer (`weight`, `bias`, ...).
pub trait Layer {
    fn tensors(&self) -> Vec<(&'static str, &Param)>;
    fn tensors_mut(&mut self) -> Vec<(&'static str, &mut Param)>;
}

/// The tensors of `layers`, each named `{index}.{tensor}` as in a PyTorch `nn.Sequential`.
pub fn sequential<'a>(layers: Vec<(&str, &'a dyn Layer)>) -> Vec<(String, &'a Param)> {
    layers
        .into_iter()
        .flat_map(|(index, layer)| {
            layer
                .tensors()
                .into_iter()
                .map(move |(name, p)| (format!("{index}.{name}"), p))
        })
        .collect()
}

/// `sequential` for changing the tensors.
pub fn sequential_mut<'a>(layers: Vec<(&str, &'a mut dyn Layer)>) -> Vec<(String, &'a mut Param)> {
    layers
        .into_iter()
        .flat_map(|(index, layer)| {
            layer
                .tensors_mut()
                .into_iter()
                .map(move |(name, p)| (format!("{index}.{name}"), p))
        })
        .collect()
}

/// Adam's settings and step count for one network.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Optim {
    pub lr: f64,
    pub betas: [f64; 2],
    pub eps: f64,
    steps: u64,
}

impl Optim {
    pub fn new(lr: f64, betas: [f64; 2]) -> Self {
        Optim {
            lr,
            betas,
            eps: 1e-8,
            steps: 0,
        }
    }

    pub fn steps(&self) -> u64 {
        self.steps
    }

    pub fn set_steps(&mut self, steps: u64) {
        self.steps = steps;
    }

    /// One Adam update of every trainable tensor of `net` from its gradient.
    pub fn step(&mut self, net: &mut impl Params) {
        self.steps += 1;
        let s = AdamStep::new(self.lr, self.betas, self.eps, self.steps);
        for (_, p) in net.params_mut() {
            p.adam(s);
        }
    }
}

/// Appends `net`'s tensors under `prefix` and their moments under `opt`.
pub fn export(
    net: &impl Params,
    prefix: &str,
    opt: &str,
    params: &mut Vec<NamedTensor>,
    moments: &mut Vec<NamedTensor>,
) {
    for (name, p) in net.params() {
        p.export(&format!("{prefix}{name}"), opt, params, moments);
    }
}

/// `net` with every tensor read from `state` (names as `export` wrote them), or the first
/// problem; `net` itself is not touched, so a bad state changes nothing.
pub fn import<N: Params + Clone>(
    net: &N,
    prefix: &str,
    opt: &str,
    state: &BTreeMap<String, NamedTensor>,
) -> Result<N, StateError> {
    let mut staged = net.clone();
    for (name, p) in staged.params_mut() {
        p.import(&format!("{prefix}{name}"), opt, state)?;
    }
    Ok(staged)
}

/// Moves every tensor of `avg` (weights and running statistics alike) towards `net`'s:
/// `avg = decay avg + (1 - decay) net`. Both must be the same network type.
pub fn ema_update<N: Params>(avg: &mut N, net: &N, decay: f32) {
    for ((_, a), (_, p)) in avg.params_mut().into_iter().zip(net.params()) {
        for (a, &p) in a.value.iter_mut().zip(&p.value) {
            *a = decay * *a + (1.0 - decay) * p;
        }
    }
}

/// A generator and a discriminator with their optimisers: the part of every fused recipe's state
/// that is tensors, saved under the names the reference recipe uses (`model.`,
/// `discriminator.model.`, `optimizer.generator.`, ...).
#[derive(Debug, Clone)]
pub struct Pair<G, D> {
    pub g: G,
    pub d: D,
    pub opt_g: Optim,
    pub opt_d: Optim,
    /// A running average of G's weights, which draws the samples when there is one (saved as
    /// `ema.model.*`), and the decay it is kept with.
    pub ema: Option<(G, f32)>,
}

pub use super::nets::{EMA_DECAY, EMA_PREFIX};

impl<G: Params + Clone, D: Params + Clone> Pair<G, D> {
    /// Tensors and step counters (`optimizer.generator.steps`, ...).
    pub fn state(&self) -> GanState {
        use super::nets::{D_OPT_PREFIX, D_PREFIX, D_STEPS, G_OPT_PREFIX, G_PREFIX, G_STEPS};
        let (mut tensors, mut moments) = (Vec::new(), Vec::new());
        export(&self.g, G_PREFIX, G_OPT_PREFIX, &mut tensors, &mut moments);
        export(&self.d, D_PREFIX, D_OPT_PREFIX, &mut tensors, &mut moments);
        if let Some((ema, _)) = &self.ema {
            for (name, p) in ema.params() {
                tensors.push(NamedTensor {
                    name: format!("{EMA_PREFIX}{name}"),
                    shape: p.shape.clone(),
                    data: p.inside_to_saved(&p.value),
                });
            }
        }
        tensors.extend(moments);
        let counters = BTreeMap::from([
            (G_STEPS.to_string(), self.opt_g.steps()),
            (D_STEPS.to_string(), self.opt_d.steps()),
        ]);
        GanState { tensors, counters }
    }

    /// This pair as `state` describes it, or the first problem; `self` is left as it is.
    pub fn loaded(
        &self,
        state: &BTreeMap<String, NamedTensor>,
        counters: &BTreeMap<String, u64>,
    ) -> Result<Self, StateError> {
        use super::nets::{D_OPT_PREFIX, D_PREFIX, D_STEPS, G_OPT_PREFIX, G_PREFIX, G_STEPS};
        let (g_steps, d_steps) = (counter(counters, G_STEPS)?, counter(counters, D_STEPS)?);
        let ema = match &self.ema {
            None => None,
            Some((ema, decay)) => {
                let mut staged = ema.clone();
                for (name, p) in staged.params_mut() {
                    let name = format!("{EMA_PREFIX}{name}");
                    match state.get(&name) {
                        None => return Err(ParamError::Missing { name }.into()),
                        Some(t) if t.shape != p.shape || t.data.len() != p.value.len() => {
                            return Err(ParamError::WrongShape {
                                name,
                                found: t.shape.clone(),
                                expected: p.shape.clone(),
                            }
                            .into());
                        }
                        Some(t) => p.value = p.saved_to_inside(&t.data),
                    }
                }
                Some((staged, *decay))
            }
        };
        let mut out = Pair {
            g: import(&self.g, G_PREFIX, G_OPT_PREFIX, state)?,
            d: import(&self.d, D_PREFIX, D_OPT_PREFIX, state)?,
            opt_g: self.opt_g,
            opt_d: self.opt_d,
            ema,
        };
        out.opt_g.set_steps(g_steps);
        out.opt_d.set_steps(d_steps);
        Ok(out)
    }

    pub fn set_lr(&mut self, lr: f64) {
        self.opt_g.lr = lr;
        self.opt_d.lr = lr;
    }

    /// Moves the weight average, if any, towards G after a generator update.
    pub fn update_average(&mut self) {
        if let Some((ema, target)) = &mut self.ema {
            ema_update(ema, &self.g, ema_decay(*target, self.opt_g.steps()));
        }
    }

    /// The generator samples come from: the weight average when there is one.
    pub fn sampler(&self) -> &G {
        self.ema.as_ref().map_or(&self.g, |(ema, _)| ema)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[derive(Clone)]
    struct Two {
        a: Param,
        stats: Param,
    }

    impl Params for Two {
        fn params(&self) -> Vec<(String, &Param)> {
            vec![("a".into(), &self.a), ("stats".into(), &self.stats)]
        }
        fn params_mut(&mut self) -> Vec<(String, &mut Param)> {
            vec![("a".into(), &mut self.a), ("stats".into(), &mut self.stats)]
        }
    }

    fn two() -> Two {
        // Inside order (x, y) of a saved (y, x) 2 x 3 tensor: value i = (x, y) goes to y*3 + x.
        let order = (0..3)
            .flat_map(|x| (0..2).map(move |y| y * 3 + x))
            .collect();
        Two {
            a: Param::permuted(&[2, 3], vec![0.0, 3.0, 1.0, 4.0, 2.0, 5.0], order),
            stats: Param::buffer(&[2], vec![7.0, 8.0]),
        }
    }

    fn map(tensors: Vec<NamedTensor>) -> BTreeMap<String, NamedTensor> {
        tensors.into_iter().map(|t| (t.name.clone(), t)).collect()
    }

    #[test]
    fn permuted_tensors_are_saved_in_their_saved_order_and_read_back() {
        let mut net = two();
        net.a.grad = vec![1.0; 6];
        let mut opt = Optim::new(0.1, [0.5, 0.999]);
        opt.step(&mut net);
        let (mut params, mut moments) = (Vec::new(), Vec::new());
        export(&net, "g.", "opt.", &mut params, &mut moments);
        assert_eq!(params[0].name, "g.a");
        assert_eq!(params[0].shape, [2, 3]);
        // Saved row-major: 0-0.1, 1-0.1, 2-0.1 / 3-0.1, ...
        let saved: Vec<f32> = params[0].data.iter().map(|v| (v + 0.1).round()).collect();
        assert_eq!(saved, [0.0, 1.0, 2.0, 3.0, 4.0, 5.0]);
        // Buffers have no moments and the optimiser leaves them alone.
        assert_eq!(params[1].data, [7.0, 8.0]);
        let names: Vec<&str> = moments.iter().map(|t| t.name.as_str()).collect();
        assert_eq!(names, ["opt.exp_avg.g.a", "opt.exp_avg_sq.g.a"]);
        let all = map(params.into_iter().chain(moments).collect());
        let back = import(&two(), "g.", "opt.", &all).unwrap();
        assert_eq!(back.a.value, net.a.value);
        assert_eq!(back.a.m, net.a.m);
        assert_eq!(back.a.v, net.a.v);
    }

    #[test]
    fn the_average_warms_up_then_follows_slowly() {
        let mut avg = two();
        let mut net = two();
        net.a.value = vec![10.0; 6];
        net.stats.value = vec![0.0, 0.0];
        ema_update(&mut avg, &net, 0.75);
        assert_eq!(avg.a.value, [2.5, 4.75, 3.25, 5.5, 4.0, 6.25]);
        assert_eq!(avg.stats.value, [5.25, 6.0]);
    }

    #[test]
    fn a_missing_or_misshapen_tensor_is_named() {
        let net = two();
        let (mut params, mut moments) = (Vec::new(), Vec::new());
        export(&net, "", "o.", &mut params, &mut moments);
        let mut all = map(params.into_iter().chain(moments).collect());
        all.remove("o.exp_avg_sq.a");
        let err = import(&net, "", "o.", &all).err().unwrap();
        assert_eq!(err.to_string(), "tensor `o.exp_avg_sq.a` is missing");
        if let Some(t) = all.get_mut("stats") {
            t.shape = vec![1, 2];
        }
        all.insert("o.exp_avg_sq.a".into(), all["o.exp_avg.a"].clone());
        let err = import(&net, "", "o.", &all).err().unwrap();
        assert!(
            err.to_string().contains("`stats` has shape [1, 2]"),
            "{err}"
        );
    }
}
