//! Integration tests of the eifield app, in one binary to keep link times down.

mod analysis;
mod common;
mod engine_ecs;
mod gallery;
mod gpu;
mod headless_cli;
mod recording;
mod session;
mod viewer_state;
mod viewer_window;
mod zarr_runs;
