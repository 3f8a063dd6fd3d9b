//! The eifield lattice on a GPU, free of Bevy: a `wgpu` engine that integrates
//! the same model with the same integrators, inputs and step boundaries as
//! the CPU engine of `eifield-model`, in f64 (where the adapter has f64
//! shaders) or f32. It runs on a device it opens itself ([`GpuContext::open`])
//! or on one a host hands over ([`GpuContext::from_device`]), so the viewer's
//! renderer can read its state buffers directly.
//!
//! I/O: none besides the GPU; the state comes back to the CPU only when asked,
//! waiting for it or collected later ([`PendingRead`]), whole or only the
//! cells a host watches ([`CellWatch`]).
#![warn(missing_docs)]

pub mod context;
pub mod engine;
pub mod ensemble;
pub mod readback;
pub mod run;
pub mod shader;
pub mod watch;

pub use context::{AdapterSummary, ContextRequest, GpuContext, GpuError};
pub use engine::{AdvanceError, BuildError, FiniteCheck, GpuEngine, initial_state};
pub use ensemble::{BatchKey, GpuEnsemble};
pub use readback::PendingRead;
pub use shader::Precision;
pub use watch::{ActivationTracker, CellWatch, PendingWatch, WatchedTick};
/// The `wgpu` this crate is built on (the one Bevy 0.19 uses).
pub use wgpu;
