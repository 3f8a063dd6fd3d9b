//! The web page's entry point: the viewer app on the page's canvas, chosen
//! by the page's query (`?scene=NAME`, `?backend=cpu|gpu|auto`,
//! `?precision=f64|f32`, `?run_until=T`, `?renderer=webgpu|webgl2`, which
//! `index.html` reads to pick the build) or a shared scene in its address
//! (`#scene=…`, [`share_link`]), the page's side of the viewer's
//! [`PageRequest`]s (file picker, downloads, sharing, recording the
//! canvas, through the helpers `index.html` defines as `eifieldPage`), and
//! the JavaScript interface that tests and scripts use (`window.eifield`:
//! [`status`], [`state`], [`open_scene`], [`share_link`]).
//!
//! The page is built twice, for WebGPU (feature `webgpu`, the default) and
//! for WebGL2 (feature `webgl2`: the CPU engine only, the surface drawn
//! from textures); `index.html` loads the WebGPU build where the browser
//! gives a WebGPU adapter, else the WebGL2 one.
//!
//! The crate is empty but in wasm builds (`scripts/web` builds the page);
//! what a native build does with files, the terminal and threads is not
//! here (see the `eifield` crate's top-level docs for the seam).
#![cfg(target_arch = "wasm32")]

use std::cell::RefCell;
use std::io::{Read, Write};
use std::path::Path;

use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use bevy::prelude::*;
use bevy::render::renderer::RenderAdapterInfo;
use eifield_model::FieldScene;
use eifield_model::scene::{SceneSource, builtin_names};
use wasm_bindgen::prelude::*;

use eifield::sim::ActiveScene;
use eifield::sim::backend::{
    AUTO_GPU_MIN_CELLS, BackendChoice, BackendRequest, PrecisionChoice, adapter_label,
};
use eifield::sim::session::Session;
use eifield::sim::session::session_text;
use eifield::sim::stimulus::Perturb;
use eifield::sim::{Lattice, SimClock, SimSystems};
use eifield::view::current_view_spec;
use eifield::viewer::controls::{
    ControlStatus, PageHost, PageRequest, SimCommand, download_name, scene_text, set_status,
};
use eifield::viewer::{DEFAULT_SPEED, ViewerSystems, viewer_app};

/// The scene the page opens without `?scene=`.
pub const DEFAULT_SCENE: &str = "waves";
/// The canvas the app draws into (`index.html` has it).
pub const CANVAS: &str = "#eifield-canvas";
/// Relative speed of model time while running to `?run_until=T`: as fast
/// as the frame budget lets the simulation go.
const RUN_UNTIL_SPEED: f64 = 1.0e6;
/// The browser's renderer this build draws with, as `?renderer=` and
/// `status()` name it.
pub const RENDERER: &str = if cfg!(feature = "webgl2") {
    "webgl2"
} else {
    "webgpu"
};

/// Weight of the newest frame in the frame rate.
const FPS_SMOOTHING: f64 = 0.1;

/// What the page asked for in its query.
#[derive(Debug, Clone, PartialEq)]
pub struct PageQuery {
    /// A built-in scene's name.
    pub scene: String,
    /// The engine.
    pub backend: BackendRequest,
    /// Run as fast as possible to this model time, then pause.
    pub run_until: Option<f64>,
}

impl PageQuery {
    /// Reads the query string (`?scene=waves&backend=cpu`); an unknown
    /// value is an error that names the parameter.
    pub fn parse(search: &str) -> Result<Self, String> {
        let mut query = Self {
            scene: DEFAULT_SCENE.to_owned(),
            backend: BackendRequest {
                backend: BackendChoice::Auto,
                precision: None,
            },
            run_until: None,
        };
        let search = search.strip_prefix('?').unwrap_or(search);
        for pair in search.split('&').filter(|p| !p.is_empty()) {
            let (key, value) = pair.split_once('=').unwrap_or((pair, ""));
            let value = js_sys::decode_uri_component(value)
                .ok()
                .and_then(|v| v.as_string())
                .unwrap_or_else(|| value.to_owned());
            match key {
                "scene" => {
                    if !builtin_names().contains(&value.as_str()) {
                        return Err(format!(
                            "?scene={value}: not a built-in scene ({})",
                            builtin_names().join(", ")
                        ));
                    }
                    query.scene = value;
                }
                "backend" => {
                    query.backend.backend = match value.as_str() {
                        "cpu" => BackendChoice::Cpu,
                        "gpu" => BackendChoice::Gpu,
                        "auto" => BackendChoice::Auto,
                        _ => return Err(format!("?backend={value}: expected cpu, gpu or auto")),
                    }
                }
                "precision" => {
                    query.backend.precision = Some(match value.as_str() {
                        "f64" => PrecisionChoice::F64,
                        "f32" => PrecisionChoice::F32,
                        _ => return Err(format!("?precision={value}: expected f64 or f32")),
                    })
                }
                "run_until" => match value.parse::<f64>() {
                    Ok(t) if t.is_finite() && t >= 0.0 => query.run_until = Some(t),
                    _ => {
                        return Err(format!(
                            "?run_until={value}: expected a model time (a number ≥ 0)"
                        ));
                    }
                },
                // index.html picks the build; here only the value is checked.
                "renderer" if !["webgpu", "webgl2", "auto"].contains(&value.as_str()) => {
                    return Err(format!(
                        "?renderer={value}: expected webgpu, webgl2 or auto"
                    ));
                }
                // Other parameters belong to whoever links to the page.
                _ => {}
            }
        }
        Ok(query)
    }
}

/// The engine the page runs for `request` and a lattice of `cells` cells,
/// drawn with WebGPU (`webgpu`) or WebGL2: WebGPU has no f64, so the GPU
/// engine runs in f32; `auto` takes it for lattices of at least
/// [`AUTO_GPU_MIN_CELLS`] cells unless f64 is asked for, and the CPU engine
/// (f64 unless asked otherwise) for the rest. WebGL2 has no compute
/// shaders: the CPU engine only.
pub fn page_backend(
    request: BackendRequest,
    cells: usize,
    webgpu: bool,
) -> Result<BackendRequest, String> {
    let gpu = BackendRequest {
        backend: BackendChoice::Gpu,
        precision: Some(PrecisionChoice::F32),
    };
    let cpu = BackendRequest {
        backend: BackendChoice::Cpu,
        precision: request.precision,
    };
    match (request.backend, request.precision) {
        (BackendChoice::Gpu, _) if !webgpu => Err(
            "?backend=gpu: the GPU engine needs WebGPU, and this page draws with WebGL2 \
             (the browser gave no WebGPU adapter, or ?renderer=webgl2 asked for it); \
             the CPU engine runs with ?backend=cpu"
                .into(),
        ),
        (BackendChoice::Auto, _) if !webgpu => Ok(cpu),
        (BackendChoice::Gpu, Some(PrecisionChoice::F64)) => Err(
            "?backend=gpu&precision=f64: WebGPU has no f64; the GPU engine runs in f32 \
             (?precision=f32), the CPU engine in f64 (?backend=cpu)"
                .into(),
        ),
        (BackendChoice::Gpu, _) => Ok(gpu),
        (BackendChoice::Auto, Some(PrecisionChoice::F64)) | (BackendChoice::Cpu, _) => Ok(cpu),
        (BackendChoice::Auto, _) if cells >= AUTO_GPU_MIN_CELLS => Ok(gpu),
        (BackendChoice::Auto, _) => Ok(cpu),
    }
}

/// What `window.eifield.status()` returns.
#[derive(Debug, Clone, Default, serde::Serialize)]
struct PageStatus {
    t: f64,
    tick: u64,
    paused: bool,
    backend: String,
    precision: String,
    /// `webgpu` or `webgl2`.
    renderer: String,
    adapter: String,
    rows: usize,
    cols: usize,
    fps: f64,
    perturbations: u64,
    /// The cell of the last perturbation: `{row, col}`.
    last_perturbation: Option<CellAt>,
    /// Why the page could not start, if it could not.
    error: Option<String>,
    /// Why the last load, download or share failed (the panel shows it
    /// too), if it did.
    command_error: Option<String>,
}

/// A cell of the lattice.
#[derive(Debug, Clone, Copy, Default, serde::Serialize)]
struct CellAt {
    row: usize,
    col: usize,
}

/// The state as `window.eifield.state()` returns it.
#[derive(Debug, Clone, Default)]
struct PageState {
    t: f64,
    e: Vec<f64>,
    i: Vec<f64>,
}

thread_local! {
    /// The app's status and state after the last frame (the page has one
    /// thread; JavaScript reads them between frames).
    static STATUS: RefCell<PageStatus> = RefCell::default();
    static STATE: RefCell<PageState> = RefCell::default();
    /// Scene files given to the page (picker, drop, script), to load.
    static OPENED: RefCell<Vec<(String, String)>> = RefCell::default();
    /// The link [`share_link`] made last.
    static SHARED: RefCell<Option<String>> = RefCell::default();
}

/// The prefix of a shared scene in the page's address.
const SHARE_PREFIX: &str = "#scene=";

#[wasm_bindgen]
extern "C" {
    /// Offers `data` as a download named `name`.
    #[wasm_bindgen(js_namespace = eifieldPage, js_name = download)]
    fn page_download(name: &str, data: &[u8], mime: &str);
    /// Opens the file picker (its file comes back through [`open_scene`]).
    #[wasm_bindgen(js_namespace = eifieldPage, js_name = openFile)]
    fn page_open_file();
    /// Shows `url` in the address bar and copies it to the clipboard.
    #[wasm_bindgen(js_namespace = eifieldPage, js_name = share)]
    fn page_share(url: &str);
    /// Starts recording the canvas, or stops and downloads it as `name`;
    /// true while recording.
    #[wasm_bindgen(js_namespace = eifieldPage, js_name = toggleRecording)]
    fn page_toggle_recording(name: &str) -> bool;
}

/// Loads a scene file's text (`name` for messages) into the page, as the
/// file picker and a dropped file do; a bad scene shows its error and the
/// current one keeps running.
#[wasm_bindgen]
pub fn open_scene(name: String, text: String) {
    OPENED.with(|o| o.borrow_mut().push((name, text)));
}

/// The link that opens the current scene, as the panel's Share button
/// makes it (after the next frame; `undefined` before any).
#[wasm_bindgen]
pub fn share_link() -> Option<String> {
    SHARED.with(|s| s.borrow().clone())
}

/// A scene's text as it travels in a link: deflated, URL-safe base64.
fn encode_scene(text: &str) -> String {
    let mut deflate = flate2::write::DeflateEncoder::new(Vec::new(), flate2::Compression::best());
    deflate
        .write_all(text.as_bytes())
        .expect("writing into memory cannot fail");
    URL_SAFE_NO_PAD.encode(deflate.finish().expect("writing into memory cannot fail"))
}

/// The scene text a link carries (see [`encode_scene`]).
fn decode_scene(encoded: &str) -> Result<String, String> {
    let bytes = URL_SAFE_NO_PAD
        .decode(encoded.trim_end_matches('='))
        .map_err(|e| format!("{SHARE_PREFIX}…: not a shared scene ({e})"))?;
    let mut text = String::new();
    flate2::read::DeflateDecoder::new(&bytes[..])
        .read_to_string(&mut text)
        .map_err(|e| format!("{SHARE_PREFIX}…: not a shared scene ({e})"))?;
    Ok(text)
}

/// The current scene's link: the active scene with its draws kept as seeds
/// and the current view, without the state (which a link cannot hold).
fn make_share_link(world: &mut World) -> Result<String, String> {
    let active = world
        .get_resource::<ActiveScene>()
        .ok_or("no scene is loaded")?
        .0
        .clone();
    let mut scene = active.resolved();
    if let Some(view) = current_view_spec(world, &active) {
        scene.view = Some(view);
    }
    let location = web_sys::window().ok_or("no window")?.location();
    let base = format!(
        "{}{}{}",
        location.origin().unwrap_or_default(),
        location.pathname().unwrap_or_default(),
        location.search().unwrap_or_default(),
    );
    Ok(format!(
        "{base}{SHARE_PREFIX}{}",
        encode_scene(&scene.to_ron_string())
    ))
}

/// Carries out the viewer's [`PageRequest`]s and loads the files the page
/// was given.
fn serve_page(world: &mut World) {
    for (name, text) in OPENED.with(|o| std::mem::take(&mut *o.borrow_mut())) {
        world.write_message(SimCommand::LoadText { name, text });
    }
    let requests: Vec<PageRequest> = world
        .resource_mut::<Messages<PageRequest>>()
        .drain()
        .collect();
    let name = world
        .get_resource::<ActiveScene>()
        .map_or_else(|| "eifield".to_owned(), |s| s.0.name.clone());
    for request in requests {
        match request {
            PageRequest::OpenFile => page_open_file(),
            PageRequest::DownloadScene => {
                let result = scene_text(world).map(|(text, note)| {
                    let file = download_name(&name, ".ron");
                    page_download(&file, text.as_bytes(), "text/plain");
                    match note {
                        Some(note) => format!("downloaded {file}; {note}"),
                        None => format!("downloaded {file}"),
                    }
                });
                set_status(world, result);
            }
            PageRequest::DownloadSession => {
                let result = session_text(world).map(|(text, summary)| {
                    let file = download_name(&name, "_session.ron");
                    page_download(&file, text.as_bytes(), "text/plain");
                    format!("downloaded the session ({summary}) as {file}")
                });
                set_status(world, result);
            }
            PageRequest::Share => {
                let result = make_share_link(world).map(|url| {
                    page_share(&url);
                    let note = format!(
                        "the link to this scene is in the address bar and the clipboard ({} characters)",
                        url.len()
                    );
                    SHARED.with(|s| *s.borrow_mut() = Some(url));
                    note
                });
                set_status(world, result);
            }
            PageRequest::ToggleRecording => {
                let recording = page_toggle_recording(&download_name(&name, ".webm"));
                world.resource_mut::<PageHost>().recording = recording;
            }
        }
    }
    // The link of the scene as it is now, for scripts.
    if world.is_resource_changed::<ActiveScene>()
        && let Ok(url) = make_share_link(world)
    {
        SHARED.with(|s| *s.borrow_mut() = Some(url));
    }
}

/// The status after the last frame: `{t, tick, paused, backend, precision,
/// renderer, adapter, rows, cols, fps, perturbations, last_perturbation:
/// {row, col}, error, command_error}`.
#[wasm_bindgen]
pub fn status() -> Result<JsValue, JsValue> {
    let text = STATUS
        .with(|s| serde_json::to_string(&*s.borrow()))
        .map_err(|e| JsValue::from_str(&e.to_string()))?;
    js_sys::JSON::parse(&text)
}

/// The full state after the last frame: `{t, E, I}`, E and I row-major
/// `Float64Array`s (with the GPU engine, its latest copy: `t` says when).
#[wasm_bindgen]
pub fn state() -> Result<JsValue, JsValue> {
    STATE.with(|s| {
        let s = s.borrow();
        let object = js_sys::Object::new();
        js_sys::Reflect::set(&object, &"t".into(), &s.t.into())?;
        js_sys::Reflect::set(
            &object,
            &"E".into(),
            &js_sys::Float64Array::from(&s.e[..]).into(),
        )?;
        js_sys::Reflect::set(
            &object,
            &"I".into(),
            &js_sys::Float64Array::from(&s.i[..]).into(),
        )?;
        Ok(object.into())
    })
}

/// Starts the app when the module is instantiated.
#[wasm_bindgen(start)]
pub fn start() {
    let search = web_sys::window()
        .and_then(|w| w.location().search().ok())
        .unwrap_or_default();
    if let Err(message) = open(&search) {
        web_sys::console::error_1(&JsValue::from_str(&message));
        STATUS.with(|s| {
            let mut s = s.borrow_mut();
            s.error = Some(message);
            s.renderer = RENDERER.to_owned();
        });
    }
}

/// Builds and runs the viewer app for the page's query.
fn open(search: &str) -> Result<(), String> {
    let query = PageQuery::parse(search)?;
    let hash = web_sys::window()
        .and_then(|w| w.location().hash().ok())
        .unwrap_or_default();
    let (scene, source) = match hash.strip_prefix(SHARE_PREFIX) {
        Some(encoded) => {
            let source = "the shared scene (#scene=…)".to_owned();
            let text = decode_scene(encoded)?;
            let scene = FieldScene::from_ron_str(&text, &source).map_err(|e| e.to_string())?;
            (scene, source)
        }
        None => {
            let source = SceneSource::resolve(Path::new(&query.scene));
            let scene = source.load().map_err(|e| e.to_string())?;
            (scene, source.to_string())
        }
    };
    let window = Window {
        title: format!("eifield: {}", scene.name),
        canvas: Some(CANVAS.to_owned()),
        fit_canvas_to_parent: true,
        prevent_default_event_handling: true,
        ..default()
    };
    // One thread: the page's.
    let webgpu = RENDERER == "webgpu";
    let backend = page_backend(query.backend, scene.grid.len(), webgpu)?;
    let mut app = viewer_app(window, &scene, &source, 1, backend, Path::new(""))?;
    app.add_plugins(WebPagePlugin {
        run_until: query.run_until,
    });
    app.run();
    Ok(())
}

/// Publishes the status and state for the page's JavaScript after every
/// frame, and runs to `?run_until=T`.
struct WebPagePlugin {
    run_until: Option<f64>,
}

/// Model time to run to as fast as possible, then pause.
#[derive(Resource)]
struct RunUntil(f64);

/// Perturbations sent so far (and the last one's cell), and the smoothed
/// frame rate.
#[derive(Resource, Default)]
struct PageCounters {
    perturbations: u64,
    last_perturbation: Option<CellAt>,
    fps: f64,
}

impl Plugin for WebPagePlugin {
    fn build(&self, app: &mut App) {
        app.init_resource::<PageCounters>()
            .init_resource::<PageHost>()
            .add_systems(Update, serve_page.before(ViewerSystems::Controls))
            .add_systems(Last, publish)
            .add_systems(
                FixedUpdate,
                stop_at_target
                    .run_if(resource_exists::<RunUntil>)
                    .after(SimSystems::Record),
            );
        if let Some(t) = self.run_until {
            app.insert_resource(RunUntil(t))
                .add_systems(Startup, |mut time: ResMut<Time<Virtual>>| {
                    time.set_relative_speed_f64(RUN_UNTIL_SPEED)
                });
        }
    }
}

/// Pauses at the first tick at or after the target time, ending the frame's
/// fixed ticks there.
fn stop_at_target(
    mut commands: Commands,
    target: Res<RunUntil>,
    clock: Option<Res<SimClock>>,
    mut fixed: ResMut<Time<Fixed>>,
    mut virtual_time: ResMut<Time<Virtual>>,
) {
    let Some(clock) = clock else {
        return;
    };
    if clock.time() >= target.0 - 1e-9 {
        let overstep = fixed.overstep();
        fixed.discard_overstep(overstep);
        virtual_time.pause();
        virtual_time.set_relative_speed_f64(DEFAULT_SPEED);
        commands.remove_resource::<RunUntil>();
    }
}

/// The renderer's adapter as the page knows it (browsers may hide the
/// name).
fn adapter_name(adapter: Option<&RenderAdapterInfo>) -> String {
    adapter
        .map(|info| adapter_label(&info.0))
        .unwrap_or_default()
}

/// Copies what `status()` and `state()` return.
fn publish(
    mut counters: ResMut<PageCounters>,
    mut perturbs: MessageReader<Perturb>,
    (real, virtual_time): (Res<Time<Real>>, Res<Time<Virtual>>),
    session: Res<Session>,
    clock: Option<Res<SimClock>>,
    lattice: Option<Res<Lattice>>,
    (adapter, control): (Option<Res<RenderAdapterInfo>>, Res<ControlStatus>),
) {
    for p in perturbs.read() {
        counters.perturbations += 1;
        counters.last_perturbation = Some(CellAt {
            row: p.row,
            col: p.col,
        });
    }
    let dt = real.delta_secs_f64();
    if dt > 0.0 {
        let fps = 1.0 / dt;
        counters.fps = if counters.fps == 0.0 {
            fps
        } else {
            counters.fps + FPS_SMOOTHING * (fps - counters.fps)
        };
    }
    let Some(lattice) = lattice else {
        return;
    };
    let t = clock.map_or(0.0, |c| c.time());
    let info = lattice.engine().info();
    let state = lattice.state();
    STATUS.with(|s| {
        let mut s = s.borrow_mut();
        let changed = lattice.is_changed() || s.rows == 0;
        *s = PageStatus {
            t,
            tick: session.tick,
            paused: virtual_time.is_paused(),
            backend: info.backend.to_owned(),
            precision: info.precision.to_owned(),
            renderer: RENDERER.to_owned(),
            adapter: adapter_name(adapter.as_deref()),
            rows: state.grid.rows,
            cols: state.grid.cols,
            fps: counters.fps,
            perturbations: counters.perturbations,
            last_perturbation: counters.last_perturbation,
            error: s.error.clone(),
            command_error: control.error.clone(),
        };
        if changed {
            STATE.with(|st| {
                let mut st = st.borrow_mut();
                // (The GPU engine's copy may be a few frames old.)
                st.t = state.t;
                st.e.clear();
                st.e.extend_from_slice(state.e);
                st.i.clear();
                st.i.extend_from_slice(state.i);
            });
        }
    });
}
