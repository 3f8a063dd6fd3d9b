//! eifield: a lattice of coupled excitatory–inhibitory oscillators as a Bevy app.
//!
//! | plugin | concern |
//! |---|---|
//! | [`sim::SimPlugin`] | oscillator entities, neighbour stencil, clock, fixed-step integration |
//! | [`stimulus::StimulusPlugin`] | pulse trains, noise and [`stimulus::Perturb`] into the per-cell drive |
//! | [`record::RecordPlugin`] | `.npy` recording of a run |
//!
//! [`headless`] drives them without a window; [`cli`] is the command line.

pub mod bench;
pub mod cli;
pub mod headless;
pub mod record;
pub mod sim;
pub mod stimulus;
