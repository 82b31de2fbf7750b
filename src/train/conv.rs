//! Strided convolutions and transposed convolutions on stable Rust: the patch layout (im2col)
//! and its adjoint (col2im) in plain loops, and one `gemm` product per layer.
//!
//! dfdx 0.13 builds its `conv2d` and `convtrans2d` only on nightly, so these layers carry their
//! shapes as const generics (square images, channels-last) and check at compile time that the
//! sides follow from kernel, stride and padding. Weights are kept in the order the product wants
//! and saved in PyTorch's (`Conv2d`: out, in, kh, kw; `ConvTranspose2d`: in, out, kh, kw).

use dfdx::prelude::*;
use rayon::prelude::*;

use super::param::{Layer, Param};
use crate::nn::kernels;

/// How a small grid of `small x small` positions maps onto a big one of `big x big` through a
/// `k x k` kernel with stride `s` and padding `p`: position `(y, x)` of the small grid and tap
/// `(ky, kx)` meet pixel `(y*s + ky - p, x*s + kx - p)` of the big one, which has `ch` channels.
/// A convolution reads the big grid (its input) at the taps of each small one (its output); a
/// transposed convolution writes the big grid (its output) from each small one (its input).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Geometry {
    pub big: usize,
    pub small: usize,
    pub ch: usize,
    pub k: usize,
    pub s: usize,
    pub p: usize,
}

impl Geometry {
    /// Values per image in the big grid.
    pub fn big_len(&self) -> usize {
        self.big * self.big * self.ch
    }

    /// Patch length: values per small-grid position.
    pub fn taps(&self) -> usize {
        self.k * self.k * self.ch
    }

    /// Patch values per image.
    pub fn cols_len(&self) -> usize {
        self.small * self.small * self.taps()
    }

    /// The big-grid coordinate tap `t` of small coordinate `y` meets, if inside the grid.
    fn at(&self, y: usize, t: usize) -> Option<usize> {
        (y * self.s + t)
            .checked_sub(self.p)
            .filter(|&v| v < self.big)
    }

    /// `cols` (one row of `taps` per small-grid position) from the big grid `big`, one image.
    fn gather_one(&self, big: &[f32], cols: &mut [f32]) {
        let (k, c) = (self.k, self.ch);
        let mut rows = cols.chunks_exact_mut(self.taps());
        for y in 0..self.small {
            for x in 0..self.small {
                let Some(row) = rows.next() else { return };
                for ky in 0..k {
                    for kx in 0..k {
                        let dst = &mut row[(ky * k + kx) * c..][..c];
                        match (self.at(y, ky), self.at(x, kx)) {
                            (Some(by), Some(bx)) => {
                                dst.copy_from_slice(&big[(by * self.big + bx) * c..][..c])
                            }
                            _ => dst.fill(0.0),
                        }
                    }
                }
            }
        }
    }

    /// The adjoint of `gather_one`: `big` is overwritten with the sum of every patch value that
    /// came from each pixel.
    fn scatter_one(&self, cols: &[f32], big: &mut [f32]) {
        let (k, c) = (self.k, self.ch);
        big.fill(0.0);
        let mut rows = cols.chunks_exact(self.taps());
        for y in 0..self.small {
            for x in 0..self.small {
                let Some(row) = rows.next() else { return };
                for ky in 0..k {
                    let Some(by) = self.at(y, ky) else { continue };
                    for kx in 0..k {
                        let Some(bx) = self.at(x, kx) else { continue };
                        let src = &row[(ky * k + kx) * c..][..c];
                        let dst = &mut big[(by * self.big + bx) * c..][..c];
                        for (d, &s) in dst.iter_mut().zip(src) {
                            *d += s;
                        }
                    }
                }
            }
        }
    }

    /// im2col over a batch of images, one image per task.
    pub fn gather(&self, big: &[f32], cols: &mut Vec<f32>, batch: usize) {
        cols.resize(batch * self.cols_len(), 0.0);
        cols.par_chunks_mut(self.cols_len().max(1))
            .zip(big[..batch * self.big_len()].par_chunks(self.big_len().max(1)))
            .for_each(|(c, b)| self.gather_one(b, c));
    }

    /// col2im over a batch of images, one image per task.
    pub fn scatter(&self, cols: &[f32], big: &mut Vec<f32>, batch: usize) {
        big.resize(batch * self.big_len(), 0.0);
        big.par_chunks_mut(self.big_len().max(1))
            .zip(cols[..batch * self.cols_len()].par_chunks(self.cols_len().max(1)))
            .for_each(|(b, c)| self.scatter_one(c, b));
    }
}

/// `order[i]` for a weight kept as `(a, b, c, d)` and saved as the axes `to` of it: the saved
/// index of inside element `i`.
fn order4(dims: [usize; 4], to: [usize; 4]) -> Vec<usize> {
    let saved_dims = to.map(|axis| dims[axis]);
    let mut order = Vec::with_capacity(dims.iter().product());
    for a in 0..dims[0] {
        for b in 0..dims[1] {
            for c in 0..dims[2] {
                for d in 0..dims[3] {
                    let idx = [a, b, c, d];
                    let mut flat = 0;
                    for (axis, &n) in to.iter().zip(&saved_dims) {
                        flat = flat * n + idx[*axis];
                    }
                    order.push(flat);
                }
            }
        }
    }
    order
}

/// For a `side x side` image with `ch` channels: where each channels-last (y, x, c) index sits
/// in PyTorch's channels-first (c, y, x) order.
pub fn hwc_to_chw(side: usize, ch: usize) -> Vec<usize> {
    (0..side * side * ch)
        .map(|i| {
            let (pixel, c) = (i / ch, i % ch);
            c * side * side + pixel
        })
        .collect()
}

/// A matrix order whose rows are reordered by `rows` (each row `cols` long), and whose columns by
/// `cols_order` when given: for a dense layer whose outputs or inputs are an image.
pub fn matrix_order(rows: &[usize], cols: usize, cols_order: Option<&[usize]>) -> Vec<usize> {
    let mut order = Vec::with_capacity(rows.len() * cols);
    for &r in rows {
        for j in 0..cols {
            order.push(r * cols + cols_order.map_or(j, |o| o[j]));
        }
    }
    order
}

/// Normal(0, `std`) values drawn as a dfdx tensor of the saved shape `(A, B, K, K)`, returned in
/// that (row-major) order.
fn normal_weights<const A: usize, const B: usize, const K: usize>(dev: &Cpu, std: f32) -> Vec<f32> {
    let w: Tensor<Rank4<A, B, K, K>, f32, Cpu> = dev.sample_normal();
    w.as_vec().into_iter().map(|v| v * std).collect()
}

/// Reorders `saved` (row-major in the saved shape) into the inside order `order` describes.
fn to_inside(saved: &[f32], order: &[usize]) -> Vec<f32> {
    order.iter().map(|&i| saved[i]).collect()
}

/// A convolution from `C` to `O` channels with a `K x K` kernel, stride `S` and padding `P`:
/// images `H x H x C` to `OH x OH x O`, channels-last.
#[derive(Debug, Clone)]
pub struct Conv2d<
    const C: usize,
    const O: usize,
    const K: usize,
    const S: usize,
    const P: usize,
    const H: usize,
    const OH: usize,
> {
    /// Inside `(O, K, K, C)`, saved `(O, C, K, K)`.
    pub weight: Param,
    pub bias: Param,
}

impl<
    const C: usize,
    const O: usize,
    const K: usize,
    const S: usize,
    const P: usize,
    const H: usize,
    const OH: usize,
> Conv2d<C, O, K, S, P, H, OH>
{
    /// Fails the build when `OH` is not what `H`, `K`, `S` and `P` give.
    const SHAPES_AGREE: () = assert!(
        S > 0 && K > 0 && H + 2 * P >= K && OH == (H + 2 * P - K) / S + 1,
        "Conv2d: the output side OH must be (H + 2P - K) / S + 1"
    );
    pub const IN: usize = H * H * C;
    pub const OUT: usize = OH * OH * O;

    pub const GEOMETRY: Geometry = Geometry {
        big: H,
        small: OH,
        ch: C,
        k: K,
        s: S,
        p: P,
    };

    /// Weights normal with deviation `std` (DCGAN's 0.02), biases 0.
    pub fn normal_init(dev: &Cpu, std: f32) -> Self {
        let () = Self::SHAPES_AGREE;
        let order = order4([O, K, K, C], [0, 3, 1, 2]);
        let weight = to_inside(&normal_weights::<O, C, K>(dev, std), &order);
        Conv2d {
            weight: Param::permuted(&[O, C, K, K], weight, order),
            bias: Param::new(&[O], vec![0.0; O]),
        }
    }

    /// Multiply-adds per image of the forward product (the same again for each gradient).
    pub const FLOPS_PER_IMAGE: f64 = 2.0 * (OH * OH * K * K * C * O) as f64;

    /// `y = conv(x)` without the bias (which the caller adds with its activation); `cols`
    /// keeps the patches for the weight gradient.
    pub fn product(&self, x: &[f32], cols: &mut Vec<f32>, y: &mut Vec<f32>, batch: usize) {
        let g = Self::GEOMETRY;
        g.gather(x, cols, batch);
        let rows = batch * OH * OH;
        y.resize(rows * O, 0.0);
        kernels::forward(cols, &self.weight.value, y, rows, g.taps(), O);
    }

    /// `y = conv(x) + b`.
    pub fn forward(&self, x: &[f32], cols: &mut Vec<f32>, y: &mut Vec<f32>, batch: usize) {
        self.product(x, cols, y, batch);
        kernels::add_bias(y, &self.bias.value);
    }

    /// Gradients of the weights and bias from `dy` and the patches `cols` of the forward pass.
    pub fn param_grads(&mut self, dy: &[f32], cols: &[f32], batch: usize) {
        let rows = batch * OH * OH;
        let taps = Self::GEOMETRY.taps();
        kernels::weight_grad(
            &dy[..rows * O],
            &cols[..rows * taps],
            &mut self.weight.grad,
            rows,
            taps,
            O,
            false,
        );
        kernels::bias_grad(&dy[..rows * O], &mut self.bias.grad, false);
    }

    /// `dx` from `dy`; `dcols` is working memory.
    pub fn input_grad(&self, dy: &[f32], dcols: &mut Vec<f32>, dx: &mut Vec<f32>, batch: usize) {
        let g = Self::GEOMETRY;
        let rows = batch * OH * OH;
        dcols.resize(rows * g.taps(), 0.0);
        kernels::input_grad(
            &dy[..rows * O],
            &self.weight.value,
            dcols,
            rows,
            g.taps(),
            O,
        );
        g.scatter(dcols, dx, batch);
    }
}

/// A transposed convolution from `C` to `O` channels with a `K x K` kernel, stride `S` and
/// padding `P`: images `H x H x C` to `OH x OH x O`, channels-last (PyTorch's
/// `ConvTranspose2d`, output padding 0).
#[derive(Debug, Clone)]
pub struct ConvT2d<
    const C: usize,
    const O: usize,
    const K: usize,
    const S: usize,
    const P: usize,
    const H: usize,
    const OH: usize,
> {
    /// Inside `(K, K, O, C)`, saved `(C, O, K, K)`.
    pub weight: Param,
    pub bias: Param,
}

impl<
    const C: usize,
    const O: usize,
    const K: usize,
    const S: usize,
    const P: usize,
    const H: usize,
    const OH: usize,
> ConvT2d<C, O, K, S, P, H, OH>
{
    /// Fails the build when `OH` is not what `H`, `K`, `S` and `P` give.
    const SHAPES_AGREE: () = assert!(
        S > 0 && K > 0 && H > 0 && (H - 1) * S + K >= 2 * P && OH == (H - 1) * S + K - 2 * P,
        "ConvT2d: the output side OH must be (H - 1) S + K - 2P"
    );
    pub const IN: usize = H * H * C;
    pub const OUT: usize = OH * OH * O;

    pub const GEOMETRY: Geometry = Geometry {
        big: OH,
        small: H,
        ch: O,
        k: K,
        s: S,
        p: P,
    };

    /// Weights normal with deviation `std` (DCGAN's 0.02), biases 0.
    pub fn normal_init(dev: &Cpu, std: f32) -> Self {
        let () = Self::SHAPES_AGREE;
        let order = order4([K, K, O, C], [3, 2, 0, 1]);
        let weight = to_inside(&normal_weights::<C, O, K>(dev, std), &order);
        ConvT2d {
            weight: Param::permuted(&[C, O, K, K], weight, order),
            bias: Param::new(&[O], vec![0.0; O]),
        }
    }

    /// Multiply-adds per image of the forward product (the same again for each gradient).
    pub const FLOPS_PER_IMAGE: f64 = 2.0 * (H * H * K * K * C * O) as f64;

    /// `y = convT(x)` without the bias (which the caller adds with its activation); `cols` is
    /// working memory.
    pub fn product(&self, x: &[f32], cols: &mut Vec<f32>, y: &mut Vec<f32>, batch: usize) {
        let g = Self::GEOMETRY;
        let rows = batch * H * H;
        cols.resize(rows * g.taps(), 0.0);
        kernels::forward(&x[..rows * C], &self.weight.value, cols, rows, C, g.taps());
        g.scatter(cols, y, batch);
    }

    /// `y = convT(x) + b`.
    pub fn forward(&self, x: &[f32], cols: &mut Vec<f32>, y: &mut Vec<f32>, batch: usize) {
        self.product(x, cols, y, batch);
        kernels::add_bias(y, &self.bias.value);
    }

    /// The patches of `dy` the backward pass works from, into `dcols`.
    pub fn grad_patches(&self, dy: &[f32], dcols: &mut Vec<f32>, batch: usize) {
        Self::GEOMETRY.gather(dy, dcols, batch);
    }

    /// Gradients of the weights and bias from `dy`, its patches `dcols` and the input `x`.
    pub fn param_grads(&mut self, dy: &[f32], dcols: &[f32], x: &[f32], batch: usize) {
        let rows = batch * H * H;
        let taps = Self::GEOMETRY.taps();
        kernels::weight_grad(
            &dcols[..rows * taps],
            &x[..rows * C],
            &mut self.weight.grad,
            rows,
            C,
            taps,
            false,
        );
        kernels::bias_grad(&dy[..batch * Self::OUT], &mut self.bias.grad, false);
    }

    /// `dx` from the patches `dcols` of `dy`.
    pub fn input_grad(&self, dcols: &[f32], dx: &mut Vec<f32>, batch: usize) {
        let rows = batch * H * H;
        let taps = Self::GEOMETRY.taps();
        dx.resize(rows * C, 0.0);
        kernels::input_grad(&dcols[..rows * taps], &self.weight.value, dx, rows, C, taps);
    }
}

impl<
    const C: usize,
    const O: usize,
    const K: usize,
    const S: usize,
    const P: usize,
    const H: usize,
    const OH: usize,
> Layer for Conv2d<C, O, K, S, P, H, OH>
{
    fn tensors(&self) -> Vec<(&'static str, &Param)> {
        vec![("weight", &self.weight), ("bias", &self.bias)]
    }
    fn tensors_mut(&mut self) -> Vec<(&'static str, &mut Param)> {
        vec![("weight", &mut self.weight), ("bias", &mut self.bias)]
    }
}

impl<
    const C: usize,
    const O: usize,
    const K: usize,
    const S: usize,
    const P: usize,
    const H: usize,
    const OH: usize,
> Layer for ConvT2d<C, O, K, S, P, H, OH>
{
    fn tensors(&self) -> Vec<(&'static str, &Param)> {
        vec![("weight", &self.weight), ("bias", &self.bias)]
    }
    fn tensors_mut(&mut self) -> Vec<(&'static str, &mut Param)> {
        vec![("weight", &mut self.weight), ("bias", &mut self.bias)]
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::nn::params::NamedTensor;
    use crate::train::testing::values;

    fn saved(p: &Param) -> Vec<f32> {
        let (mut params, mut moments) = (Vec::<NamedTensor>::new(), Vec::new());
        p.export("w", "", &mut params, &mut moments);
        params.remove(0).data
    }

    fn assert_close(a: &[f32], b: &[f64], what: &str) {
        assert_eq!(a.len(), b.len(), "{what}");
        for (i, (x, y)) in a.iter().zip(b).enumerate() {
            assert!(
                (*x as f64 - y).abs() < 1e-4 * (1.0 + y.abs()),
                "{what} at {i}: {x} vs {y}"
            );
        }
    }

    fn dot(a: &[f32], b: &[f32]) -> f64 {
        a.iter().zip(b).map(|(x, y)| *x as f64 * *y as f64).sum()
    }

    // Small odd shapes: 2 -> 3 channels, kernel 4, stride 2, padding 1, 7 -> 3.
    type SmallConv = Conv2d<2, 3, 4, 2, 1, 7, 3>;
    // 3 -> 2 channels, kernel 4, stride 2, padding 1, 3 -> 6.
    type SmallConvT = ConvT2d<3, 2, 4, 2, 1, 3, 6>;

    /// PyTorch's Conv2d, directly, on channels-last images with PyTorch-ordered weights.
    fn naive_conv(x: &[f32], w: &[f32], b: &[f32], batch: usize) -> Vec<f64> {
        let (c, o, k, s, p, h, oh) = (2, 3, 4, 2, 1, 7, 3);
        let mut y = vec![0.0f64; batch * oh * oh * o];
        for n in 0..batch {
            for oy in 0..oh {
                for ox in 0..oh {
                    for oc in 0..o {
                        let mut acc = b[oc] as f64;
                        for ic in 0..c {
                            for ky in 0..k {
                                for kx in 0..k {
                                    let (iy, ix) = (oy * s + ky, ox * s + kx);
                                    if iy < p || ix < p || iy - p >= h || ix - p >= h {
                                        continue;
                                    }
                                    let xv = x[((n * h + iy - p) * h + ix - p) * c + ic];
                                    let wv = w[((oc * c + ic) * k + ky) * k + kx];
                                    acc += xv as f64 * wv as f64;
                                }
                            }
                        }
                        y[((n * oh + oy) * oh + ox) * o + oc] = acc;
                    }
                }
            }
        }
        y
    }

    /// PyTorch's ConvTranspose2d, directly: every input pixel adds its weighted kernel.
    fn naive_conv_t(x: &[f32], w: &[f32], b: &[f32], batch: usize) -> Vec<f64> {
        let (c, o, k, s, p, h, oh) = (3, 2, 4, 2, 1, 3, 6);
        let mut y = vec![0.0f64; batch * oh * oh * o];
        for n in 0..batch {
            for (i, v) in y[n * oh * oh * o..][..oh * oh * o].iter_mut().enumerate() {
                *v = b[i % o] as f64;
            }
            for iy in 0..h {
                for ix in 0..h {
                    for ic in 0..c {
                        let xv = x[((n * h + iy) * h + ix) * c + ic] as f64;
                        for oc in 0..o {
                            for ky in 0..k {
                                for kx in 0..k {
                                    let (oy, ox) = (iy * s + ky, ix * s + kx);
                                    if oy < p || ox < p || oy - p >= oh || ox - p >= oh {
                                        continue;
                                    }
                                    let wv = w[((ic * o + oc) * k + ky) * k + kx] as f64;
                                    y[((n * oh + oy - p) * oh + ox - p) * o + oc] += xv * wv;
                                }
                            }
                        }
                    }
                }
            }
        }
        y
    }

    #[test]
    fn conv_matches_pytorchs_definition_and_its_gradients_are_adjoint() {
        let dev = Cpu::seed_from_u64(3);
        let mut conv = SmallConv::normal_init(&dev, 0.5);
        conv.bias.value = vec![0.1, -0.2, 0.3];
        let batch = 2;
        let x = values(batch * SmallConv::IN, 1);
        let (mut cols, mut y) = (Vec::new(), Vec::new());
        conv.forward(&x, &mut cols, &mut y, batch);
        let w = saved(&conv.weight);
        assert_close(&y, &naive_conv(&x, &w, &conv.bias.value, batch), "forward");

        // For loss = <y, r>, each gradient is exact for a linear map; check it against the
        // forward map itself by perturbing one coordinate at a time.
        let r = values(y.len(), 2);
        conv.param_grads(&r, &cols, batch);
        let (mut dcols, mut dx) = (Vec::new(), Vec::new());
        conv.input_grad(&r, &mut dcols, &mut dx, batch);
        let loss = |conv: &SmallConv, x: &[f32]| {
            let (mut c, mut y) = (Vec::new(), Vec::new());
            conv.forward(x, &mut c, &mut y, batch);
            dot(&y, &r)
        };
        let base = loss(&conv, &x);
        let numeric_dx: Vec<f64> = (0..x.len())
            .map(|i| {
                let mut x2 = x.clone();
                x2[i] += 1.0;
                loss(&conv, &x2) - base
            })
            .collect();
        assert_close(&dx, &numeric_dx, "input gradient");
        let numeric_dw: Vec<f64> = (0..conv.weight.len())
            .map(|i| {
                let mut c2 = conv.clone();
                c2.weight.value[i] += 1.0;
                loss(&c2, &x) - base
            })
            .collect();
        assert_close(&conv.weight.grad, &numeric_dw, "weight gradient");
        let db: Vec<f64> = (0..3)
            .map(|oc| r.iter().skip(oc).step_by(3).map(|&v| v as f64).sum())
            .collect();
        assert_close(&conv.bias.grad, &db, "bias gradient");
    }

    #[test]
    fn transposed_conv_matches_pytorchs_definition_and_its_gradients_are_adjoint() {
        let dev = Cpu::seed_from_u64(5);
        let mut conv = SmallConvT::normal_init(&dev, 0.5);
        conv.bias.value = vec![0.25, -0.5];
        let batch = 3;
        let x = values(batch * SmallConvT::IN, 7);
        let (mut cols, mut y) = (Vec::new(), Vec::new());
        conv.forward(&x, &mut cols, &mut y, batch);
        let w = saved(&conv.weight);
        assert_close(
            &y,
            &naive_conv_t(&x, &w, &conv.bias.value, batch),
            "forward",
        );

        let r = values(y.len(), 8);
        let (mut dcols, mut dx) = (Vec::new(), Vec::new());
        conv.grad_patches(&r, &mut dcols, batch);
        conv.param_grads(&r, &dcols, &x, batch);
        conv.input_grad(&dcols, &mut dx, batch);
        let loss = |conv: &SmallConvT, x: &[f32]| {
            let (mut c, mut y) = (Vec::new(), Vec::new());
            conv.forward(x, &mut c, &mut y, batch);
            dot(&y, &r)
        };
        let base = loss(&conv, &x);
        let numeric_dx: Vec<f64> = (0..x.len())
            .map(|i| {
                let mut x2 = x.clone();
                x2[i] += 1.0;
                loss(&conv, &x2) - base
            })
            .collect();
        assert_close(&dx, &numeric_dx, "input gradient");
        let numeric_dw: Vec<f64> = (0..conv.weight.len())
            .map(|i| {
                let mut c2 = conv.clone();
                c2.weight.value[i] += 1.0;
                loss(&c2, &x) - base
            })
            .collect();
        assert_close(&conv.weight.grad, &numeric_dw, "weight gradient");
        let db: Vec<f64> = (0..2)
            .map(|oc| r.iter().skip(oc).step_by(2).map(|&v| v as f64).sum())
            .collect();
        assert_close(&conv.bias.grad, &db, "bias gradient");
    }

    #[test]
    fn weights_are_saved_in_pytorchs_order_from_a_dfdx_draw() {
        // The saved tensor is exactly the dfdx draw of shape (out, in, k, k) for Conv2d and
        // (in, out, k, k) for ConvT2d, scaled.
        let conv = SmallConv::normal_init(&Cpu::seed_from_u64(9), 2.0);
        let expect = normal_weights::<3, 2, 4>(&Cpu::seed_from_u64(9), 2.0);
        assert_eq!(saved(&conv.weight), expect);
        let conv_t = SmallConvT::normal_init(&Cpu::seed_from_u64(9), 2.0);
        let expect = normal_weights::<3, 2, 4>(&Cpu::seed_from_u64(9), 2.0);
        assert_eq!(saved(&conv_t.weight), expect);
        let (mut params, mut moments) = (Vec::<NamedTensor>::new(), Vec::new());
        conv_t.weight.export("w", "", &mut params, &mut moments);
        assert_eq!(params[0].shape, [3, 2, 4, 4]);
    }
}
