//! The recording plugin: recording the viewer's window into an MP4 (F9 or
//! the Record button) with a fixed amount of model time per video frame, and
//! PNG screenshots (F12), optionally with the overlay of talk videos (the
//! scene's name, the model time, the colour bar). Files get fresh numbered
//! names; nothing is overwritten.

use std::collections::VecDeque;
use std::path::PathBuf;
use std::time::Duration;

use bevy::prelude::*;
use bevy::render::view::screenshot::{Screenshot, save_to_disk};
use bevy::time::TimeUpdateStrategy;
use bevy::window::PrimaryWindow;
use bevy_egui::input::egui_wants_any_keyboard_input;

use super::CaptureSystems;
use super::frames::{CaptureFrame, CapturedFrames};
use super::overlay::Overlay;
use super::video::{VideoOutput, VideoWriter, next_free_path};
use crate::sim::{ActiveScene, SimClock, SimStatus};
use crate::view::ViewSettings;
use crate::viewer::controls::{PageHost, PageRequest, download_name};

/// Video frames per second when neither the options nor the scene say.
pub const DEFAULT_FPS: u32 = 30;
/// Model time per video frame when neither the options nor the scene say.
pub const DEFAULT_TIME_PER_FRAME: f64 = 0.05;

/// Key that starts and stops recording.
pub const RECORD_KEY: KeyCode = KeyCode::F9;
/// Key that saves a screenshot.
pub const SCREENSHOT_KEY: KeyCode = KeyCode::F12;
/// Frames requested from the GPU and not yet written, at most.
const MAX_IN_FLIGHT: u64 = 3;
/// Frames a stopping recording waits for the frames still in flight.
const STOP_TIMEOUT_FRAMES: u32 = 120;
/// Folder for recordings and screenshots when none is given.
pub const DEFAULT_CAPTURE_DIR: &str = "captures";

/// A request from the UI, a key or a script.
#[derive(Message, Debug, Clone, PartialEq)]
pub enum CaptureCommand {
    /// Start recording, or stop a recording in progress.
    ToggleRecording,
    /// Save a PNG of the window.
    Screenshot,
}

/// A recording in progress.
pub struct ActiveRecording {
    writer: VideoWriter,
    /// The video file.
    pub path: PathBuf,
    /// Fixed ticks of the simulation per video frame.
    pub ticks_per_frame: u32,
    /// Model time per video frame (a whole number of ticks).
    pub time_per_frame: f64,
    requested: u64,
    written: u64,
    /// Capture a frame once the clock reaches this tick.
    awaiting: Option<u64>,
    stopping: bool,
    /// Frames waited since stopping, for the frames still in flight.
    stop_wait: u32,
    failure: Option<String>,
    saved_speed: f64,
    saved_max_delta: Duration,
    /// The overlay drawn on every frame, if asked for.
    overlay: Option<Overlay>,
    /// Model times of the frames requested and not yet written.
    frame_times: VecDeque<f64>,
}

impl ActiveRecording {
    /// Frames written to the video so far.
    pub fn frames(&self) -> u64 {
        self.written
    }

    /// Seconds of video so far.
    pub fn video_seconds(&self) -> f64 {
        self.written as f64 / self.writer.fps() as f64
    }
}

/// Recording settings and state, and the last outcome to show.
#[derive(Resource)]
pub struct ScreenCapture {
    /// Folder for recordings and screenshots.
    pub dir: PathBuf,
    /// Model time per video frame asked for (rounded to whole ticks when recording starts).
    pub time_per_frame: f64,
    /// Video frames per second.
    pub fps: u32,
    /// Draw no panels while recording, so that the video shows the 3D view alone.
    pub hide_panels: bool,
    /// Draw the overlay (the scene's name, the model time, the colour bar) on
    /// the video's frames.
    pub overlay: bool,
    /// The recording in progress, if any.
    pub recording: Option<ActiveRecording>,
    /// What happened last (shown in the panel).
    pub message: Option<String>,
    /// The last failure (shown in the panel).
    pub error: Option<String>,
}

impl Default for ScreenCapture {
    fn default() -> Self {
        Self {
            dir: PathBuf::from(DEFAULT_CAPTURE_DIR),
            time_per_frame: DEFAULT_TIME_PER_FRAME,
            fps: DEFAULT_FPS,
            hide_panels: false,
            overlay: false,
            recording: None,
            message: None,
            error: None,
        }
    }
}

impl ScreenCapture {
    /// True while a recording is in progress.
    pub fn is_recording(&self) -> bool {
        self.recording.is_some()
    }

    /// The indicator text while recording: elapsed video time and frames.
    pub fn indicator(&self) -> Option<String> {
        self.recording.as_ref().map(|r| {
            format!(
                "● REC {:.1} s, {} frames ({} per frame) → {}",
                r.video_seconds(),
                r.frames(),
                r.time_per_frame,
                r.path.display()
            )
        })
    }
}

/// Run condition: a recording is in progress.
pub fn recording(capture: Res<ScreenCapture>) -> bool {
    capture.is_recording()
}

/// Run condition: the panels are hidden for a recording.
pub fn panels_hidden(capture: Res<ScreenCapture>) -> bool {
    capture.is_recording() && capture.hide_panels
}

/// Whole ticks per video frame for `time_per_frame` at `ticks_per_unit` (at least one).
pub fn ticks_per_frame(time_per_frame: f64, ticks_per_unit: f64) -> u32 {
    (time_per_frame * ticks_per_unit)
        .round()
        .clamp(1.0, u32::MAX as f64) as u32
}

/// Adds recording and screenshots to the viewer.
pub struct ScreenCapturePlugin;

impl Plugin for ScreenCapturePlugin {
    fn build(&self, app: &mut App) {
        app.add_message::<CaptureCommand>()
            .init_resource::<ScreenCapture>()
            .add_systems(
                Update,
                (
                    capture_keys.run_if(not(egui_wants_any_keyboard_input)),
                    handle_capture_commands,
                )
                    .chain()
                    .in_set(CaptureSystems::Commands),
            )
            .add_systems(PostUpdate, drive_recording.in_set(CaptureSystems::Drive));
    }
}

fn capture_keys(keys: Res<ButtonInput<KeyCode>>, mut commands: MessageWriter<CaptureCommand>) {
    if keys.just_pressed(RECORD_KEY) {
        commands.write(CaptureCommand::ToggleRecording);
    }
    if keys.just_pressed(SCREENSHOT_KEY) {
        commands.write(CaptureCommand::Screenshot);
    }
}

fn handle_capture_commands(
    mut messages: MessageReader<CaptureCommand>,
    mut capture: ResMut<ScreenCapture>,
    mut time: ResMut<Time<Virtual>>,
    (windows, clock): (Query<&Window, With<PrimaryWindow>>, Option<Res<SimClock>>),
    mut commands: Commands,
    (scene, view): (Option<Res<ActiveScene>>, Res<ViewSettings>),
    (page, mut page_requests): (Option<Res<PageHost>>, MessageWriter<PageRequest>),
) {
    for message in messages.read() {
        match message {
            // The web page downloads screenshots (Bevy's `save_to_disk`
            // does there) and records its canvas itself.
            CaptureCommand::Screenshot if page.is_some() => {
                let name = scene.as_ref().map_or("eifield", |s| s.0.name.as_str());
                let t = clock.as_ref().map_or(0.0, |c| c.time());
                let file = download_name(&format!("{name} t={t:.2}"), ".png");
                commands
                    .spawn(Screenshot::primary_window())
                    .observe(save_to_disk(PathBuf::from(&file)));
                capture.message = Some(format!("screenshot downloaded as {file}"));
                capture.error = None;
            }
            CaptureCommand::ToggleRecording if page.is_some() => {
                page_requests.write(PageRequest::ToggleRecording);
            }
            CaptureCommand::Screenshot => {
                if let Err(e) = std::fs::create_dir_all(&capture.dir) {
                    capture.error = Some(format!("{}: {e}", capture.dir.display()));
                    continue;
                }
                let path = next_free_path(&capture.dir, "screenshot", "png");
                commands
                    .spawn(Screenshot::primary_window())
                    .observe(save_to_disk(path.clone()));
                capture.message = Some(format!("screenshot saved to {}", path.display()));
                capture.error = None;
            }
            CaptureCommand::ToggleRecording => {
                if let Some(recording) = &mut capture.recording {
                    recording.stopping = true;
                    continue;
                }
                let (Ok(window), Some(clock)) = (windows.single(), clock.as_deref()) else {
                    continue;
                };
                let size = window.physical_size();
                let path = next_free_path(&capture.dir, "recording", "mp4");
                match VideoWriter::create(&path, size.x, size.y, capture.fps) {
                    Ok((writer, notice)) => {
                        let ticks = ticks_per_frame(capture.time_per_frame, clock.ticks_per_unit);
                        let recording = ActiveRecording {
                            writer,
                            path: path.clone(),
                            ticks_per_frame: ticks,
                            time_per_frame: ticks as f64 / clock.ticks_per_unit,
                            requested: 0,
                            written: 0,
                            awaiting: Some(clock.ticks),
                            stopping: false,
                            stop_wait: 0,
                            failure: None,
                            saved_speed: time.relative_speed_f64(),
                            saved_max_delta: time.max_delta(),
                            overlay: capture.overlay.then(|| Overlay {
                                name: scene
                                    .as_ref()
                                    .map_or_else(String::new, |s| s.0.name.clone()),
                                field: view.field,
                                colormap: view.colormap,
                                range: (view.range.0 as f64, view.range.1 as f64),
                            }),
                            frame_times: VecDeque::new(),
                        };
                        // Model time advances by whole ticks per frame, never by wall time.
                        time.set_relative_speed_f64(1.0);
                        time.set_max_delta(Duration::from_secs(u32::MAX as u64));
                        commands.insert_resource(TimeUpdateStrategy::FixedTimesteps(0));
                        capture.recording = Some(recording);
                        capture.error = None;
                        capture.message = notice;
                        if let Some(notice) = &capture.message {
                            warn!("{notice}");
                        }
                    }
                    Err(e) => capture.error = Some(e),
                }
            }
        }
    }
}

#[allow(clippy::too_many_arguments)]
fn drive_recording(
    mut capture: ResMut<ScreenCapture>,
    mut frames: ResMut<CapturedFrames>,
    mut time: ResMut<Time<Virtual>>,
    clock: Option<Res<SimClock>>,
    status: Res<SimStatus>,
    mut commands: Commands,
) {
    let Some(recording) = capture.recording.as_mut() else {
        return;
    };
    while recording.failure.is_none()
        && let Some(frame) = frames.take(recording.written)
    {
        let pushed = frame.and_then(|f| {
            let size = recording.writer.size();
            if (f.width, f.height) != size {
                return Err(format!(
                    "the window changed size during the recording ({}x{} to {}x{}); the video was closed",
                    size.0, size.1, f.width, f.height
                ));
            }
            let mut pixels = f.pixels;
            let t = recording.frame_times.pop_front().unwrap_or_default();
            if let Some(overlay) = &recording.overlay {
                overlay.draw(&mut pixels, size, t)?;
            }
            recording.writer.push_rgba(&pixels)
        });
        match pushed {
            Ok(()) => recording.written += 1,
            Err(e) => recording.failure = Some(e),
        }
    }
    let ticks_now = clock.as_ref().map_or(0, |c| c.ticks);
    let k = recording.ticks_per_frame as u64;
    if let Some(target) = recording.awaiting
        && ticks_now + k < target
    {
        // The lattice was reset or reloaded: go on from its new state.
        recording.awaiting = Some(ticks_now);
    }
    let finishing = recording.stopping || recording.failure.is_some();
    if !finishing
        && let Some(target) = recording.awaiting
        && ticks_now >= target
    {
        commands.spawn((
            Screenshot::primary_window(),
            CaptureFrame(recording.requested),
        ));
        recording
            .frame_times
            .push_back(clock.as_ref().map_or(0.0, |c| c.time()));
        recording.requested += 1;
        recording.awaiting = None;
    }
    if finishing {
        recording.stop_wait += 1;
        if recording.stop_wait > STOP_TIMEOUT_FRAMES && recording.failure.is_none() {
            recording.failure = Some(format!(
                "{} frames never came back from the GPU; the video ends before them",
                recording.requested - recording.written
            ));
        }
    }
    let done =
        finishing && (recording.written == recording.requested || recording.failure.is_some());
    if done {
        let recording = capture.recording.take().expect("checked above");
        time.set_relative_speed_f64(recording.saved_speed);
        time.set_max_delta(recording.saved_max_delta);
        commands.insert_resource(TimeUpdateStrategy::Automatic);
        frames.clear();
        let frames_written = recording.written;
        let seconds = recording.video_seconds();
        let failure = recording.failure.clone();
        match recording.writer.finish() {
            Ok(output) => {
                let what = match &output {
                    VideoOutput::Mp4(p) | VideoOutput::Still(p) => {
                        format!("video saved to {}", p.display())
                    }
                    VideoOutput::PngFrames(p) => format!("frames saved as PNGs in {}", p.display()),
                };
                let message = format!("{what} ({frames_written} frames, {seconds:.1} s)");
                info!("{message}");
                capture.message = Some(message);
                capture.error = failure;
            }
            Err(e) => capture.error = Some(e),
        }
        return;
    }
    let strategy = if finishing || *status != SimStatus::Running {
        TimeUpdateStrategy::FixedTimesteps(0)
    } else {
        if recording.awaiting.is_none() && recording.requested - recording.written < MAX_IN_FLIGHT {
            recording.awaiting = Some(ticks_now + k);
        }
        let ticks = if recording.awaiting.is_some() {
            recording.ticks_per_frame
        } else {
            0
        };
        TimeUpdateStrategy::FixedTimesteps(ticks)
    };
    commands.insert_resource(strategy);
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn frames_take_whole_ticks() {
        assert_eq!(ticks_per_frame(0.05, 100.0), 5);
        assert_eq!(ticks_per_frame(0.05, 10.0), 1);
        assert_eq!(ticks_per_frame(0.001, 10.0), 1);
        assert_eq!(ticks_per_frame(0.26, 10.0), 3);
    }
}
