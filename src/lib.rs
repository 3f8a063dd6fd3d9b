//! eifield: a lattice of coupled excitatory–inhibitory oscillators as a Bevy app.
//!
//! Folders by concern; each holds one plugin per concern and a plugin group
//! that the commands assemble:
//!
//! | module | plugin group | concern |
//! |---|---|---|
//! | [`sim`] | [`sim::SimPlugins`] | oscillator entities over one engine, stimuli, recording, probes |
//! | [`view`] | [`view::ViewPlugins`] | the lattice surface, camera, colour maps, picking |
//! | [`capture`] | [`capture::CapturePlugins`] | frames read back from the GPU, recording and screenshots, MP4 writing |
//! | [`viewer`] | [`viewer::ViewerPlugins`] | the window's panels, controls and scripted runs |
//! | [`commands`] | | the command line: `run`, `render`, `plot`, `analyze`, `sweep`, `bench`, `scenes`, `view` (native builds) |
//!
//! A headless run builds `SimPlugins`; an offscreen render adds `ViewPlugins`
//! and frame capture; the viewer adds the window, `ViewerPlugins` and all of
//! `CapturePlugins`. `docs/architecture.md` draws the data flow.
//!
//! The one seam between a native build and the web page is here: the
//! command line (files, terminal, signals, threads) is native, the page's
//! entry point is the `eifield-web` crate, and both build the same viewer app
//! ([`viewer::viewer_app`]). Inside the plugins, only the recording of run
//! folders ([`sim::record`]) is native.

pub mod capture;
#[cfg(not(target_arch = "wasm32"))]
pub mod commands;
pub mod error;
pub mod sim;
pub mod view;
pub mod viewer;
