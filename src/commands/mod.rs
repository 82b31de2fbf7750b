//! The subcommands besides training: `sample`, `eval`, `bench` and `judge train`.

pub mod bench;
pub mod eval;
pub mod judge;
pub mod sample;
pub mod watch;
