//! Capture: frames read back from the GPU in order, recording the viewer's
//! window and screenshots, and writing MP4 videos (or PNG sequences).
//!
//! | plugin | concern |
//! |---|---|
//! | [`frames::CapturePlugin`] | numbered screenshots read back asynchronously, handed out in frame order |
//! | [`recording::ScreenCapturePlugin`] | Record (F9) and Screenshot (F12) in the viewer |
//!
//! [`video`] pipes frames into `ffmpeg`; [`overlay`] draws the time, the
//! colour bar and the scene's name onto rendered frames. Offscreen renders use the frame
//! capture alone; the viewer adds [`CapturePlugins`].

pub mod frames;
pub mod overlay;
pub mod recording;
pub mod video;

use bevy::app::PluginGroupBuilder;
use bevy::prelude::*;

/// The recording's systems.
#[derive(SystemSet, Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum CaptureSystems {
    /// F9/F12 and the panel's buttons start, stop and take captures (`Update`).
    Commands,
    /// Frames are requested and written while recording (`PostUpdate`).
    Drive,
}

/// Frame capture plus the viewer's recording and screenshots.
pub struct CapturePlugins;

impl PluginGroup for CapturePlugins {
    fn build(self) -> PluginGroupBuilder {
        PluginGroupBuilder::start::<Self>()
            .add(frames::CapturePlugin)
            .add(recording::ScreenCapturePlugin)
    }
}
