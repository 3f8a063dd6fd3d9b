//! The capture plugin: screenshots of the view tagged with a frame number,
//! read back from the GPU asynchronously and handed out in frame order, for
//! videos rendered offscreen or recorded in the viewer.

use std::collections::BTreeMap;

use bevy::camera::RenderTarget;
use bevy::prelude::*;
use bevy::render::view::screenshot::{Screenshot, ScreenshotCaptured};

/// Tags a [`Screenshot`] entity with the video frame it becomes.
#[derive(Component, Debug, Clone, Copy, PartialEq, Eq)]
pub struct CaptureFrame(pub u64);

/// One captured frame as RGBA pixels, top row first.
#[derive(Debug, Clone, PartialEq)]
pub struct RgbaFrame {
    /// Width in pixels.
    pub width: u32,
    /// Height in pixels.
    pub height: u32,
    /// `width × height × 4` bytes.
    pub pixels: Vec<u8>,
}

/// Frames captured so far and not yet taken, by frame number.
#[derive(Resource, Debug, Default)]
pub struct CapturedFrames {
    ready: BTreeMap<u64, Result<RgbaFrame, String>>,
}

impl CapturedFrames {
    /// Takes the frame numbered `next`, if it has arrived (frames can arrive
    /// out of order; the caller asks for them in order).
    pub fn take(&mut self, next: u64) -> Option<Result<RgbaFrame, String>> {
        self.ready.remove(&next)
    }

    /// Frames that have arrived and not been taken.
    pub fn waiting(&self) -> usize {
        self.ready.len()
    }

    /// Forgets every frame (a recording was stopped).
    pub fn clear(&mut self) {
        self.ready.clear();
    }
}

/// Asks the renderer for a screenshot of `target` that becomes frame `frame`.
pub fn request_frame(commands: &mut Commands, target: RenderTarget, frame: u64) {
    commands.spawn((Screenshot(target), CaptureFrame(frame)));
}

/// Adds [`CapturedFrames`] and the observer that fills it.
pub struct CapturePlugin;

impl Plugin for CapturePlugin {
    fn build(&self, app: &mut App) {
        app.init_resource::<CapturedFrames>()
            .add_observer(collect_frame);
    }
}

fn collect_frame(
    captured: On<ScreenshotCaptured>,
    tags: Query<&CaptureFrame>,
    mut frames: ResMut<CapturedFrames>,
) {
    let Ok(&CaptureFrame(frame)) = tags.get(captured.entity) else {
        return;
    };
    let (width, height) = (captured.image.width(), captured.image.height());
    let result = captured
        .image
        .clone()
        .try_into_dynamic()
        .map(|image| RgbaFrame {
            width,
            height,
            pixels: image.into_rgba8().into_raw(),
        })
        .map_err(|e| format!("frame {frame}: cannot read the captured image: {e}"));
    frames.ready.insert(frame, result);
}
