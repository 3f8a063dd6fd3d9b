//! The numerics of eifield, free of any engine or UI: the scene schema and its
//! validation, the lattice geometry, the right-hand side of the E–I model,
//! fixed-step integrators, piecewise-constant inputs (pulse trains,
//! perturbations, pink noise) and incremental NPY recording.
#![warn(missing_docs)]

pub mod engine;
pub mod fastmath;
pub mod grid;
pub mod noise;
pub mod npy;
pub mod rhs;
pub mod scene;
pub mod simd;
pub mod stepper;
pub mod stimulus;
#[cfg(test)]
mod test_data;

pub use engine::{BlowUp, Engine, EngineError, EngineOptions};
pub use grid::{Boundary, Grid};
pub use scene::{FieldScene, SceneError};
