//! A run as every front end sees it: the state folded from the trainer's messages, its loss
//! histories, and how its numbers read.

pub mod format;
pub mod history;
pub mod signals;
pub mod state;
