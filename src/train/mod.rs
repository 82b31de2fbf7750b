//! The trainer: dfdx models, losses, the optimiser, checkpoints and the training loop.
