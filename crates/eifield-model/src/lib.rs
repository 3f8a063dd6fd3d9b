//! The numerics of eifield, free of any engine, UI or command line (no Bevy,
//! no clap): the scene schema, its validation and the built-in scenes, the
//! lattice geometry, the right-hand side of the E–I model, fixed-step
//! integrators with one SIMD dispatch, piecewise-constant inputs (pulse
//! trains, perturbations, pink noise) and incremental NPY recording.
//!
//! I/O: [`scene::FieldScene::load`] reads a scene file and [`npy::NpyWriter`]
//! writes `.npy` arrays. Both live here so that every front end (the Bevy app
//! today, a Python package later) reads scenes and writes runs the same way;
//! nothing else touches files.
#![warn(missing_docs)]

pub mod analysis;
pub mod coupling;
pub mod engine;
pub mod fastmath;
pub mod grid;
pub mod lanes;
pub mod noise;
pub mod npy;
pub mod per_cell;
pub mod real;
pub mod rhs;
pub mod scene;
pub mod simd;
pub mod stepper;
pub mod stimulus;
pub mod sweep;
#[cfg(test)]
mod test_data;

pub use engine::{BlowUp, Engine, EngineError, EngineOptions};
pub use grid::{Boundary, Grid};
pub use real::{Precision, Real};
pub use scene::{FieldScene, SceneError};
