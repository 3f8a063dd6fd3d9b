//! The command line and what each command does: `run` (headless runs to
//! NumPy arrays), `analyze` (the spread of activity in a run), `render`
//! (offscreen videos), `plot` (figures of a run),
//! `bench` (engine throughput), `scenes` (the built-in scenes) and `view`
//! (the window; its plugins are [`crate::viewer`]'s).
//!
//! Every failure is an [`AppError`] ([`crate::error`]), whose kind gives
//! the exit code.

pub mod analyze;
pub mod bench;
pub mod cli;
pub mod plot;
pub mod progress;
pub mod render;
pub mod run;
pub mod sweep;
pub mod view;

pub use crate::error::*;
