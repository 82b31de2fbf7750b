//! Two differentiable tensor ops dfdx 0.13 builds only on nightly: the im2col patch layout a
//! convolution needs, and 2x2 max-pooling (with the ReLU before it folded in). Both work on channels-last images.
//!
//! Each is a plain Rust loop forward, with its exact adjoint recorded on dfdx's tape through the
//! public `Tape::add_backward_op`, so everything around them stays ordinary dfdx autograd.

use dfdx::prelude::*;

/// The shape of a batch of channels-last images: `batch` x `height` x `width` x `channels`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ImageShape {
    pub batch: usize,
    pub height: usize,
    pub width: usize,
    pub channels: usize,
}

impl ImageShape {
    fn len(&self) -> usize {
        self.batch * self.height * self.width * self.channels
    }
}

/// Runs `forward` on `x`'s values, giving a tensor of `out_shape`, and records `backward`, which
/// adds the input's gradient given the output's, on `x`'s tape.
fn custom_op<Si: Shape, So: Shape, T: Tape<f32, Cpu>, Ctx: 'static>(
    x: Tensor<Si, f32, Cpu, T>,
    out_shape: So,
    forward: impl FnOnce(&[f32]) -> (Vec<f32>, Ctx),
    backward: impl FnOnce(&Ctx, &[f32], &mut [f32]) + 'static,
) -> Result<Tensor<So, f32, Cpu, T>, CpuError> {
    let (x, mut tape) = x.split_tape();
    // `as_vec` walks the tensor index by index; a contiguous tensor's buffer can be copied whole.
    let x = x.try_contiguous()?;
    let mut input = vec![0.0f32; x.shape().num_elements()];
    x.copy_into(&mut input);
    let (values, ctx) = forward(&input);
    if values.len() != out_shape.num_elements() {
        return Err(CpuError::WrongNumElements);
    }
    let out = x.device().try_tensor_from_vec(values, out_shape)?;
    let (in_ghost, out_ghost) = (x.ghost(), out.ghost());
    tape.add_backward_op(move |grads| {
        let grad_out = grads.get_or_alloc_mut(&out_ghost)?.to_vec();
        let grad_in = grads.get_or_alloc_mut(&in_ghost)?;
        backward(&ctx, &grad_out, grad_in);
        Ok(())
    });
    Ok(out.put_tape(tape))
}

/// The `k` x `k` patch under every position of a valid (unpadded, stride 1) convolution: one row
/// per (image, y, x) output position, its values ordered (channel, ky, kx) as PyTorch orders a
/// `Conv2d` filter, so the filters reshaped to (out, in*k*k) multiply the rows directly. Each row
/// ends with an extra 1, so a bias row below the filters adds the bias in the same product.
pub fn im2col<Si: Shape, T: Tape<f32, Cpu>>(
    x: Tensor<Si, f32, Cpu, T>,
    s: ImageShape,
    k: usize,
) -> Result<Tensor<(usize, usize), f32, Cpu, T>, CpuError> {
    if s.len() != x.shape().num_elements() || k == 0 || k > s.height || k > s.width {
        return Err(CpuError::WrongNumElements);
    }
    let (oh, ow) = (s.height - k + 1, s.width - k + 1);
    let rows = s.batch * oh * ow;
    let taps = s.channels * k * k;
    let cols = taps + 1;
    custom_op(
        x,
        (rows, cols),
        |input| {
            let mut out = Vec::with_capacity(rows * cols);
            let mut in_row = 0;
            patch_sources(s, k, &mut |i| {
                out.push(input[i]);
                in_row += 1;
                if in_row == taps {
                    out.push(1.0);
                    in_row = 0;
                }
            });
            (out, ())
        },
        move |_, grad_out, grad_in| {
            let (mut next, mut in_row) = (0, 0);
            patch_sources(s, k, &mut |i| {
                grad_in[i] += grad_out[next];
                next += 1;
                in_row += 1;
                if in_row == taps {
                    // The constant column has no input to send a gradient to.
                    next += 1;
                    in_row = 0;
                }
            });
        },
    )
}

/// Calls `each` with the flat input index of every value `im2col` lays out, in its order:
/// forward gathers from these, backward scatters back to them.
fn patch_sources(s: ImageShape, k: usize, each: &mut impl FnMut(usize)) {
    let (oh, ow) = (s.height - k + 1, s.width - k + 1);
    for b in 0..s.batch {
        for oy in 0..oh {
            for ox in 0..ow {
                for c in 0..s.channels {
                    for ky in 0..k {
                        let base = ((b * s.height + oy + ky) * s.width + ox) * s.channels + c;
                        for kx in 0..k {
                            each(base + kx * s.channels);
                        }
                    }
                }
            }
        }
    }
}

/// ReLU of 2x2 max-pooling with stride 2 (the same as pooling after ReLU, in one pass over a
/// quarter of the values) of channels-last images with even sides. The gradient goes to the first
/// largest value of each window, as PyTorch's `MaxPool2d` sends it, where that value is positive.
pub fn max_pool2_relu<Si: Shape, So: Shape, T: Tape<f32, Cpu>>(
    x: Tensor<Si, f32, Cpu, T>,
    s: ImageShape,
    out_shape: So,
) -> Result<Tensor<So, f32, Cpu, T>, CpuError> {
    let (oh, ow) = (s.height / 2, s.width / 2);
    let odd = !s.height.is_multiple_of(2) || !s.width.is_multiple_of(2);
    if odd || s.len() != x.shape().num_elements() || out_shape.num_elements() != s.len() / 4 {
        return Err(CpuError::WrongNumElements);
    }
    custom_op(
        x,
        out_shape,
        |input| {
            let n = s.len() / 4;
            let (mut out, mut from) = (Vec::with_capacity(n), Vec::with_capacity(n));
            for b in 0..s.batch {
                for oy in 0..oh {
                    for ox in 0..ow {
                        for c in 0..s.channels {
                            let at = |dy: usize, dx: usize| {
                                ((b * s.height + 2 * oy + dy) * s.width + 2 * ox + dx) * s.channels
                                    + c
                            };
                            let mut best = at(0, 0);
                            for i in [at(0, 1), at(1, 0), at(1, 1)] {
                                if input[i] > input[best] {
                                    best = i;
                                }
                            }
                            out.push(input[best].max(0.0));
                            // usize::MAX: ReLU cut this window off, it passes no gradient.
                            from.push(if input[best] > 0.0 { best } else { usize::MAX });
                        }
                    }
                }
            }
            (out, from)
        },
        |from: &Vec<usize>, grad_out, grad_in| {
            for (&i, g) in from.iter().zip(grad_out) {
                if let Some(slot) = grad_in.get_mut(i) {
                    *slot += g;
                }
            }
        },
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    fn shape(batch: usize, height: usize, width: usize, channels: usize) -> ImageShape {
        ImageShape {
            batch,
            height,
            width,
            channels,
        }
    }

    #[test]
    fn patches_follow_the_pytorch_filter_order() {
        let dev: Cpu = Cpu::seed_from_u64(0);
        // One 3x3 image with 2 channels: value = 10*y + x + 100*channel.
        let values: Vec<f32> = (0..3)
            .flat_map(|y| {
                (0..3).flat_map(move |x| (0..2).map(move |c| (10 * y + x + 100 * c) as f32))
            })
            .collect();
        let x = dev.tensor_from_vec(values, (18usize,));
        let p = im2col(x, shape(1, 3, 3, 2), 2).unwrap();
        assert_eq!(*p.shape(), (4, 9));
        let rows = p.as_vec();
        // Position (1, 0): channel 0 then channel 1, each (ky, kx) row-major, then the bias 1.
        assert_eq!(
            rows[2 * 9..3 * 9],
            [10.0, 11.0, 20.0, 21.0, 110.0, 111.0, 120.0, 121.0, 1.0]
        );
    }

    #[test]
    fn im2col_backward_sums_over_overlapping_patches() {
        let dev: Cpu = Cpu::seed_from_u64(0);
        let x: Tensor<(usize,), f32, _> = dev.sample_uniform_like(&(9,));
        let grads = Gradients::leaky();
        let p = im2col(x.clone().traced(grads), shape(1, 3, 3, 1), 2).unwrap();
        let g = p.sum().backward();
        // Each pixel's gradient counts the 2x2 patches that contain it; the bias column adds none.
        assert_eq!(
            g.get(&x).as_vec(),
            [1.0, 2.0, 1.0, 2.0, 4.0, 2.0, 1.0, 2.0, 1.0]
        );
    }

    #[test]
    fn max_pool_takes_window_maxima_and_routes_their_gradient() {
        let dev: Cpu = Cpu::seed_from_u64(0);
        // A 2x6 single-channel image: windows [1 5 | 2 0], [3 3 | 8 4] and [-1 -2 | -3 -1].
        let x = dev.tensor_from_vec(
            vec![
                1.0f32, 5.0, 3.0, 3.0, -1.0, -2.0, 2.0, 0.0, 8.0, 4.0, -3.0, -1.0,
            ],
            (12usize,),
        );
        let grads = Gradients::leaky();
        let y = max_pool2_relu(x.clone().traced(grads), shape(1, 2, 6, 1), (3usize,)).unwrap();
        assert_eq!(y.as_vec(), [5.0, 8.0, 0.0]);
        let w = dev.tensor_from_vec(vec![1.0f32, 10.0, 100.0], (3usize,));
        let g = (y * w).sum().backward();
        // The all-negative window is cut off by the ReLU: no gradient.
        assert_eq!(
            g.get(&x).as_vec(),
            [0.0, 1.0, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0, 10.0, 0.0, 0.0, 0.0]
        );
    }

    #[test]
    fn bad_geometry_is_an_error_not_a_panic() {
        let dev: Cpu = Cpu::seed_from_u64(0);
        let x: Tensor<(usize,), f32, _> = dev.zeros_like(&(9,));
        assert!(im2col(x.clone(), shape(1, 3, 3, 1), 4).is_err());
        assert!(im2col(x.clone(), shape(2, 3, 3, 1), 2).is_err());
        assert!(max_pool2_relu(x, shape(1, 3, 3, 1), (2usize,)).is_err());
    }
}
