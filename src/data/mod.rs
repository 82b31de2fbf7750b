//! Digit data: IDX files (raw or gzip), the built-in MNIST, shuffling and batches.
