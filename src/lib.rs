//! gan-tui: trains a GAN on handwritten digits and shows it learning in the terminal.
//!
//! `run` wires the pieces: config, paths, data, the trainer thread and one front end.

pub mod action;
pub mod app;
pub mod config;
pub mod data;
pub mod paths;
pub mod protocol;
pub mod theme;
pub mod train;
pub mod tui;
pub mod ui;
