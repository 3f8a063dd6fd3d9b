//! eifield: a lattice of coupled excitatory–inhibitory oscillators as a Bevy app.
//!
//! | plugin | concern |
//! |---|---|
//! | [`sim::SimPlugin`] | oscillator entities, neighbour stencil, clock, fixed-step integration, live parameter edits |
//! | [`stimulus::StimulusPlugin`] | pulse trains, noise and [`stimulus::Perturb`] into the per-cell drive |
//! | [`record::RecordPlugin`] | `.npy` recording of a headless run |
//! | [`probes::ProbesPlugin`] | probe time series and the raster |
//! | [`view::ViewPlugin`] | the lattice as one height/colour mesh |
//! | [`camera::CameraPlugin`] | orbit camera and framing |
//! | [`picking::LatticePickingPlugin`] | pointer rays to cells; click tools |
//! | [`control::ControlPlugin`] | play/pause, step, reset, load and save |
//! | [`ui::UiPlugin`] | the egui panel, plots and tooltip |
//! | [`script::ScriptPlugin`] | scripted viewer runs for automated checks |
//! | [`capture::CapturePlugin`] | numbered frames read back from the GPU, for videos |
//! | [`screen_capture::ScreenCapturePlugin`] | recording and screenshots in the viewer |
//!
//! [`headless`] drives the simulation without a window, [`render`] draws it
//! offscreen into videos, [`viewer`] opens a window, [`figures`] plots a
//! recorded run, [`video`] writes MP4s, and [`cli`] is the command line.

pub mod bench;
pub mod camera;
pub mod capture;
pub mod cli;
pub mod colormap;
pub mod control;
pub mod figures;
pub mod headless;
pub mod picking;
pub mod probes;
pub mod record;
pub mod render;
pub mod screen_capture;
pub mod script;
pub mod sim;
pub mod stimulus;
pub mod ui;
pub mod video;
pub mod view;
pub mod viewer;
