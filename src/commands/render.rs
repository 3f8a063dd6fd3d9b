//! Offscreen rendering: `eifield render` draws the lattice without a window
//! (on a GPU, or on Mesa's software Vulkan) into an MP4, frame N showing the
//! state at exactly t = N × time-per-frame, with a progress bar.

use std::path::PathBuf;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use bevy::app::PluginsState;
use bevy::camera::RenderTarget;
use bevy::ecs::schedule::SingleThreadedExecutor;
use bevy::prelude::*;
use bevy::render::RenderPlugin;
use bevy::render::render_resource::{TextureFormat, TextureUsages};
use bevy::time::TimeUpdateStrategy;
use bevy::window::ExitCondition;
use bevy::winit::WinitPlugin;
use eifield_model::scene::SceneSource;
use eifield_model::scene::{CameraSpec, ColorMapName, MAX_VIDEO_FPS, ViewField, ViewMode};
use eifield_model::{EngineOptions, FieldScene};

use super::AppError;
use super::progress::DelayedProgress;
use crate::capture::frames::{CapturePlugin, CapturedFrames, request_frame};
use crate::capture::overlay::Overlay;
pub use crate::capture::recording::{DEFAULT_FPS, DEFAULT_TIME_PER_FRAME};
use crate::capture::video::{VideoOutput, VideoWriter};
use crate::sim::backend::{BackendRequest, FieldEngine, GpuDevice, renderer_context};
use crate::sim::probes::ProbesPlugin;
use crate::sim::session::install_replay;
use crate::sim::{EntityMirror, SimClock, SimPlugins, SimSettings, SimStatus};
use crate::view::camera::OffscreenTarget;
use crate::view::{ViewPlugins, ViewSettings, apply_scene_view};

/// Frame size when the options do not say.
pub const DEFAULT_SIZE: (u32, u32) = (1280, 720);
/// The largest frame side accepted.
pub const MAX_SIDE: u32 = 8192;
/// Cell-ticks integrated per update before a still's frame (bounds the
/// work between checks for Ctrl-C).
const CELL_TICKS_PER_UPDATE: usize = 1 << 16;
/// Frames requested from the GPU and not yet written, at most.
const MAX_IN_FLIGHT: u64 = 3;
/// Updates before frame 0, so that the surface is built and the camera framed.
const WARMUP_UPDATES: usize = 3;
/// Fewer pixels than this in a frame means the render cannot be checked by eye.
const MIN_SIDE: u32 = 16;

/// What to render and how; `None` takes the scene's `view` section, then the default.
#[derive(Debug, Clone, Default)]
pub struct RenderRequest {
    /// The scene file.
    pub scene: PathBuf,
    /// The MP4 to write (`None` with `discard`).
    pub out: Option<PathBuf>,
    /// Render and read back every frame but write nothing (to measure rendering speed).
    pub discard: bool,
    /// Replace an existing file.
    pub force: bool,
    /// No progress bar.
    pub quiet: bool,
    /// Surface or heat map.
    pub view: Option<ViewMode>,
    /// E or I.
    pub field: Option<ViewField>,
    /// Colour map.
    pub colormap: Option<ColorMapName>,
    /// Height per unit of the field.
    pub height_scale: Option<f64>,
    /// Camera yaw in degrees.
    pub yaw: Option<f64>,
    /// Camera pitch in degrees.
    pub pitch: Option<f64>,
    /// Camera zoom (fraction of the framing distance).
    pub zoom: Option<f64>,
    /// Frame size in pixels.
    pub size: Option<(u32, u32)>,
    /// Frames per second of playback.
    pub fps: Option<u32>,
    /// Model time per frame.
    pub time_per_frame: Option<f64>,
    /// Seconds of playback.
    pub duration: Option<f64>,
    /// Engine threads (`None`: all cores).
    pub threads: Option<usize>,
    /// Which engine, in which precision.
    pub backend: BackendRequest,
    /// Draw the scene's name, the model time and a colour bar onto the frames.
    pub overlay: bool,
    /// Write one frame as a PNG instead of a video, at this model time
    /// (`Some(None)`: the scene's `view.thumbnail_time`, else its run's end).
    pub still: Option<Option<f64>>,
}

/// What a finished render wrote.
#[derive(Debug, Clone)]
pub struct RenderSummary {
    /// The MP4, or the PNG folder when `ffmpeg` was missing (`None` when discarded).
    pub output: Option<VideoOutput>,
    /// Frames written.
    pub frames: u64,
    /// Frames the request asked for.
    pub frames_requested: u64,
    /// Frames per second of playback.
    pub fps: u32,
    /// Model time per frame.
    pub time_per_frame: f64,
    /// Frame size.
    pub size: (u32, u32),
    /// Wall time of the rendering loop.
    pub wall_time_s: f64,
    /// Model time shown by the last frame requested.
    pub last_frame_time: f64,
    /// Set when the render stopped early: why.
    pub stopped: Option<RenderStop>,
}

/// Why a render stopped before its last frame.
#[derive(Debug, Clone, PartialEq)]
pub enum RenderStop {
    /// Ctrl-C or SIGTERM.
    Interrupted,
    /// The state became non-finite (the message says where).
    BlowUp(String),
}

/// Parses `WIDTHxHEIGHT`.
pub fn parse_size(text: &str) -> Result<(u32, u32), String> {
    let (w, h) = text
        .split_once(['x', 'X'])
        .ok_or_else(|| format!("`{text}` is not a size like 1280x720"))?;
    let side = |s: &str, name: &str| -> Result<u32, String> {
        let v: u32 = s
            .trim()
            .parse()
            .map_err(|_| format!("`{text}`: the {name} `{s}` is not a whole number"))?;
        if !(MIN_SIDE..=MAX_SIDE).contains(&v) {
            return Err(format!(
                "`{text}`: the {name} must be between {MIN_SIDE} and {MAX_SIDE} pixels"
            ));
        }
        Ok(v)
    };
    Ok((side(w, "width")?, side(h, "height")?))
}

/// The frame timing a request resolves to.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct FramePlan {
    /// Frames per second of playback.
    pub fps: u32,
    /// Model time per frame.
    pub time_per_frame: f64,
    /// Frames to render: `duration × fps`, rounded.
    pub frames: u64,
}

impl FramePlan {
    /// Options first, then the scene's `view` section, then the defaults; the
    /// default duration plays the scene's whole run.
    pub fn resolve(request: &RenderRequest, scene: &FieldScene) -> Result<Self, String> {
        let view = scene.view.clone().unwrap_or_default();
        let fps = request.fps.or(view.fps).unwrap_or(DEFAULT_FPS);
        if !(1..=MAX_VIDEO_FPS).contains(&fps) {
            return Err(format!(
                "--fps must be between 1 and {MAX_VIDEO_FPS} (got {fps})"
            ));
        }
        let time_per_frame = request
            .time_per_frame
            .or(view.time_per_frame)
            .unwrap_or(DEFAULT_TIME_PER_FRAME);
        if !(time_per_frame.is_finite() && time_per_frame > 0.0) {
            return Err(format!(
                "--time-per-frame must be a finite number > 0 (got {time_per_frame})"
            ));
        }
        let duration = request
            .duration
            .unwrap_or(scene.run.duration / (time_per_frame * fps as f64));
        if !(duration.is_finite() && duration > 0.0) {
            return Err(format!(
                "--duration must be a finite number of seconds > 0 (got {duration})"
            ));
        }
        let frames = (duration * fps as f64).round();
        if frames < 1.0 {
            return Err(format!(
                "--duration {duration} s at {fps} fps is less than one frame"
            ));
        }
        if frames > 1e7 {
            return Err(format!(
                "--duration {duration} s at {fps} fps is {frames} frames; the most is 10 million"
            ));
        }
        Ok(Self {
            fps,
            time_per_frame,
            frames: frames as u64,
        })
    }
}

/// The scene with the request's view options written into its `view` section.
fn scene_with_view_options(scene: &FieldScene, request: &RenderRequest) -> FieldScene {
    let mut out = scene.clone();
    let mut view = out.view.take().unwrap_or_default();
    view.mode = request.view.or(view.mode);
    view.field = request.field.or(view.field);
    view.colormap = request.colormap.or(view.colormap);
    view.height_scale = request.height_scale.or(view.height_scale);
    if request.yaw.is_some() || request.pitch.is_some() || request.zoom.is_some() {
        let base = view.camera.unwrap_or_default();
        view.camera = Some(CameraSpec {
            yaw_deg: request.yaw.unwrap_or(base.yaw_deg),
            pitch_deg: request.pitch.unwrap_or(base.pitch_deg),
            zoom: request.zoom.unwrap_or(base.zoom),
        });
    }
    out.view = Some(view);
    out
}

/// A failure after the work started (exit code 1).
fn failed(message: String) -> AppError {
    AppError::Output(message)
}

/// A windowless app drawing the lattice into `target`.
fn offscreen_app(size: (u32, u32)) -> (App, Handle<Image>) {
    let mut app = App::new();
    app.add_plugins(
        DefaultPlugins
            .set(WindowPlugin {
                primary_window: None,
                exit_condition: ExitCondition::DontExit,
                ..default()
            })
            .set(bevy::log::LogPlugin {
                // A command-line tool: warnings and errors only.
                level: bevy::log::Level::WARN,
                filter: "warn,wgpu=error,naga=error".into(),
                ..default()
            })
            .set(RenderPlugin {
                // Every pipeline is ready on the first frame, so no frame is
                // drawn before the surface's shaders exist.
                synchronous_pipeline_compilation: true,
                ..default()
            })
            .disable::<WinitPlugin>(),
    );
    let mut image = Image::new_target_texture(size.0, size.1, TextureFormat::Rgba8UnormSrgb, None);
    image.texture_descriptor.usage |= TextureUsages::COPY_SRC;
    let handle = app.world_mut().resource_mut::<Assets<Image>>().add(image);
    app.insert_resource(OffscreenTarget(handle.clone()))
        .insert_resource(ClearColor(Color::srgb(0.08, 0.08, 0.1)))
        .insert_resource(EntityMirror::OnRequest)
        .add_plugins((
            SimPlugins.build().disable::<ProbesPlugin>(),
            ViewPlugins,
            CapturePlugin,
        ));
    app.edit_schedule(FixedUpdate, |s| {
        s.set_executor(SingleThreadedExecutor::new());
    });
    (app, handle)
}

/// Renders a scene to a video. `stop` is polled between frames.
pub fn render(request: &RenderRequest, stop: Arc<AtomicBool>) -> Result<RenderSummary, AppError> {
    let input = AppError::Input;
    let source = SceneSource::resolve(&request.scene);
    let scene = source.load()?;
    let scene = scene_with_view_options(&scene, request);
    if let Some(view) = &scene.view {
        view.validate()
            .map_err(|e| input(format!("{source} with the view options: {e}")))?;
    }
    let mut plan = FramePlan::resolve(request, &scene).map_err(input)?;
    // A still: one frame, after the ticks that reach its time.
    let still_ticks = match request.still {
        None => None,
        Some(at) => {
            let at = at
                .or(scene.view.as_ref().and_then(|v| v.thumbnail_time))
                .unwrap_or(scene.run.duration);
            if !(0.0..=eifield_model::scene::MAX_TIME).contains(&at) {
                return Err(input(format!("--at must be a time ≥ 0 (got {at})")));
            }
            plan.frames = 1;
            Some((at / plan.time_per_frame).round() as u64)
        }
    };
    let size = request.size.unwrap_or(DEFAULT_SIZE);
    let out = match (&request.out, request.discard) {
        (_, true) => None,
        (Some(out), false) => Some(out),
        (None, false) => return Err(input("--out is needed (or --discard)".into())),
    };
    if let Some(out) = out {
        let wanted = if still_ticks.is_some() { "png" } else { "mp4" };
        let is_wanted = out
            .extension()
            .is_some_and(|e| e.eq_ignore_ascii_case(wanted));
        if !is_wanted {
            return Err(input(format!(
                "--out {} must name a .{wanted} file",
                out.display()
            )));
        }
        if out.is_dir() {
            return Err(input(format!("--out {} is a folder", out.display())));
        }
        if out.exists() && !request.force {
            return Err(input(format!(
                "{} already exists; choose another --out, or pass --force to replace it",
                out.display()
            )));
        }
    }
    let threads = request
        .threads
        .unwrap_or_else(|| std::thread::available_parallelism().map_or(1, |n| n.get()));
    let cpu_options = EngineOptions {
        threads,
        simd: None,
    };
    let (mut app, target) = offscreen_app(size);
    while app.plugins_state() == PluginsState::Adding {
        bevy::tasks::tick_global_task_pools_on_main_thread();
    }
    app.finish();
    app.cleanup();
    // The GPU engine runs on the renderer's device, which then draws the
    // surface straight from the engine's buffers.
    let mut gpu = renderer_context(app.world());
    let shares = gpu.is_some();
    let engine = FieldEngine::build(&scene, request.backend, cpu_options, &mut gpu)
        .map_err(|e| input(format!("{source}: {e}")))?;

    // One fixed tick per frame: tick k ends at model time k × time-per-frame.
    let ticks_per_unit = 1.0 / plan.time_per_frame;
    let settings = SimSettings {
        ticks_per_unit,
        engine: cpu_options,
        backend: request.backend,
    };
    if let Some(context) = gpu {
        app.insert_resource(GpuDevice {
            context,
            renderer_shares_it: shares,
        });
    }
    install_replay(app.world_mut(), &scene, scene.clone(), engine, settings)
        .map_err(|e| input(format!("{source}: {e}")))?;
    apply_scene_view(app.world_mut(), &scene);
    let overlay = request.overlay.then(|| {
        let settings = app.world().resource::<ViewSettings>();
        Overlay {
            name: scene.name.clone(),
            field: settings.field,
            colormap: settings.colormap,
            range: (settings.range.0 as f64, settings.range.1 as f64),
        }
    });
    app.world_mut()
        .resource_mut::<Time<Virtual>>()
        .set_max_delta(Duration::from_secs(u32::MAX as u64));

    let mut writer = match out {
        Some(_) if still_ticks.is_some() => None,
        Some(out) => {
            let (writer, notice) =
                VideoWriter::create(out, size.0, size.1, plan.fps).map_err(failed)?;
            if let Some(notice) = notice {
                eprintln!("warning: {notice}");
            }
            Some(writer)
        }
        None => None,
    };
    let progress = DelayedProgress::new(
        plan.frames,
        "{spinner} [{elapsed_precise}] {wide_bar} frame {pos}/{len} ({per_sec}, eta {eta}) t = {msg}",
        request.quiet,
    );

    app.insert_resource(TimeUpdateStrategy::FixedTimesteps(0));
    for _ in 0..WARMUP_UPDATES {
        app.update();
    }
    // A still's frame comes after the ticks that reach its time.
    let mut first_tick = 0;
    if let Some(ticks) = still_ticks {
        let batch = (CELL_TICKS_PER_UPDATE / scene.grid.len().max(1)).max(1) as u64;
        while first_tick < ticks {
            // The frame loop below reports an interruption or a blow-up.
            if stop.load(Ordering::SeqCst)
                || *app.world().resource::<SimStatus>() != SimStatus::Running
            {
                break;
            }
            let n = batch.min(ticks - first_tick);
            app.insert_resource(TimeUpdateStrategy::FixedTimesteps(n as u32));
            app.update();
            first_tick += n;
        }
    }
    let mut still_frame = None;
    let render_target = RenderTarget::Image(target.into());
    let started = Instant::now();
    let mut requested = 0u64;
    let mut written = 0u64;
    let mut stopped = None;
    while written < plan.frames {
        if stop.load(Ordering::SeqCst) {
            stopped = Some(RenderStop::Interrupted);
            break;
        }
        if let SimStatus::BlownUp(b) = app.world().resource::<SimStatus>() {
            stopped = Some(RenderStop::BlowUp(b.to_string()));
            break;
        }
        let issue = requested < plan.frames && requested - written < MAX_IN_FLIGHT;
        // Frame 0 shows t = 0; each later frame first integrates one tick.
        let ticks = u32::from(issue && requested > 0);
        app.insert_resource(TimeUpdateStrategy::FixedTimesteps(ticks));
        if issue {
            let mut commands = app.world_mut().commands();
            request_frame(&mut commands, render_target.clone(), requested);
            app.world_mut().flush();
            requested += 1;
        }
        app.update();
        while let Some(frame) = app
            .world_mut()
            .resource_mut::<CapturedFrames>()
            .take(written)
        {
            let mut frame = frame.map_err(failed)?;
            if let Some(overlay) = &overlay {
                let t = (first_tick + written) as f64 * plan.time_per_frame;
                overlay.draw(&mut frame.pixels, size, t).map_err(failed)?;
            }
            if let Some(writer) = &mut writer {
                writer.push_rgba(&frame.pixels).map_err(failed)?;
            } else if still_ticks.is_some() {
                still_frame = Some(frame.pixels);
            }
            written += 1;
        }
        let clock = app.world().resource::<SimClock>();
        progress.update(written, format!("{:.3}", clock.time()));
    }
    let wall = started.elapsed();
    progress.finish();
    let mut output = writer
        .map(VideoWriter::finish)
        .transpose()
        .map_err(failed)?;
    if let (Some(pixels), Some(out)) = (still_frame, out) {
        image::save_buffer(
            out,
            &pixels,
            size.0,
            size.1,
            image::ExtendedColorType::Rgba8,
        )
        .map_err(|e| failed(format!("{}: {e}", out.display())))?;
        output = Some(VideoOutput::Still(out.clone()));
    }
    Ok(RenderSummary {
        output,
        frames: written,
        frames_requested: plan.frames,
        fps: plan.fps,
        time_per_frame: plan.time_per_frame,
        size,
        wall_time_s: wall.as_secs_f64(),
        last_frame_time: app.world().resource::<SimClock>().time(),
        stopped,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sizes_parse_and_bad_ones_name_the_problem() {
        assert_eq!(parse_size("1280x720"), Ok((1280, 720)));
        assert_eq!(parse_size("640X360"), Ok((640, 360)));
        assert!(parse_size("1280").unwrap_err().contains("like 1280x720"));
        assert!(parse_size("axb").unwrap_err().contains("width"));
        assert!(parse_size("100x99999").unwrap_err().contains("height"));
    }

    #[test]
    fn frame_plan_takes_options_then_scene_then_defaults() {
        let mut scene = FieldScene::default();
        scene.run.duration = 20.0;
        let request = RenderRequest::default();
        // 20 units at 0.05 per frame is 400 frames: 13.33 s at 30 fps.
        let plan = FramePlan::resolve(&request, &scene).unwrap();
        assert_eq!(plan.fps, DEFAULT_FPS);
        assert_eq!(plan.frames, 400);
        scene.view = Some(eifield_model::scene::ViewSpec {
            fps: Some(10),
            time_per_frame: Some(0.1),
            ..Default::default()
        });
        let plan = FramePlan::resolve(&request, &scene).unwrap();
        assert_eq!((plan.fps, plan.time_per_frame, plan.frames), (10, 0.1, 200));
        let request = RenderRequest {
            fps: Some(30),
            duration: Some(2.0),
            ..Default::default()
        };
        let plan = FramePlan::resolve(&request, &scene).unwrap();
        assert_eq!((plan.fps, plan.frames), (30, 60));
        let bad = RenderRequest {
            duration: Some(0.001),
            ..Default::default()
        };
        assert!(
            FramePlan::resolve(&bad, &scene)
                .unwrap_err()
                .contains("less than one frame")
        );
    }
}
