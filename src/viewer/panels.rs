//! The panels plugin: the egui control panel (run controls, every live parameter,
//! stimuli, view settings, scene load/save, status line), the hover tooltip,
//! and the probe and raster plots.

use std::path::PathBuf;

use bevy::diagnostic::{DiagnosticsStore, FrameTimeDiagnosticsPlugin};
use bevy::ecs::component::Mutable;
use bevy::ecs::system::SystemParam;
use bevy::prelude::*;
use bevy::render::renderer::RenderAdapterInfo;
use bevy_egui::{EguiContexts, EguiPrimaryContextPass, egui};
use egui_plot::{Legend, Line, Plot, PlotImage, PlotPoint, PlotPoints, Points};
use eifield_model::analysis::{FrozenInputs, nullclines};
use eifield_model::coupling::{Coupler, MAX_DISK_RADIUS, MIN_DISK_RADIUS};
use eifield_model::scene::{IntegratorSpec, Kernel, Noise, Profile, Stimulus};

use eifield_model::scene::{ColorMapName, NamedChoice, ViewField, ViewMode};

use super::ViewerSystems;
use super::controls::{ControlStatus, PageHost, PageRequest, SimCommand};
use crate::capture::recording::{CaptureCommand, ScreenCapture, panels_hidden};
use crate::sim::backend::{adapter_label, graphics_api};
use crate::sim::probes::{FollowedCells, HISTORY_SPAN, Probes, Raster};
use crate::sim::{ActiveScene, Lattice, Neighbours, SimClock, SimStatus};
use crate::view::ViewSettings;
use crate::view::camera::FreeViewArea;
use crate::view::colormap::{ColorMapLut, lut_index};
use crate::view::picking::{ClickSettings, HoveredCell, Tool};
use crate::view::surface::DrawnField;

/// Speeds offered by the speed slider, in model time per second.
const SPEED_RANGE: std::ops::RangeInclusive<f64> = 0.05..=200.0;
/// Default pink-noise settings when noise is switched on in the panel.
const DEFAULT_NOISE: Noise = Noise::Pink {
    sigma: 0.5,
    seed: 1,
    sample_rate: 100.0,
};

/// Text fields of the panel that are not part of any other state.
#[derive(Resource, Debug, Clone)]
pub struct PanelState {
    /// Path typed for loading and saving.
    pub scene_path: String,
    /// Replace an existing file on save.
    pub overwrite: bool,
}

impl Default for PanelState {
    fn default() -> Self {
        Self {
            scene_path: "scenes/my_scene.ron".into(),
            overwrite: false,
        }
    }
}

/// Simulation throughput, measured between frames.
#[derive(Resource, Debug, Clone, Default)]
pub struct Throughput {
    /// Smoothed cell-steps per second of wall time.
    pub cell_steps_per_s: f64,
    last: Option<(u64, f64)>,
}

/// Adds the panel, plots and tooltip.
pub struct PanelsPlugin;

impl Plugin for PanelsPlugin {
    fn build(&self, app: &mut App) {
        if !app.is_plugin_added::<FrameTimeDiagnosticsPlugin>() {
            app.add_plugins(FrameTimeDiagnosticsPlugin::default());
        }
        app.init_resource::<PanelState>()
            .init_resource::<Throughput>()
            .init_resource::<FreeViewArea>()
            .add_systems(
                Update,
                (measure_throughput, free_whole_window.run_if(panels_hidden))
                    .in_set(ViewerSystems::Panels),
            )
            .add_systems(EguiPrimaryContextPass, ui_system.run_if(not(panels_hidden)));
    }
}

fn measure_throughput(
    lattice: Option<Res<Lattice>>,
    time: Res<Time<Real>>,
    mut throughput: ResMut<Throughput>,
) {
    let Some(lattice) = lattice else {
        return;
    };
    let now = time.elapsed_secs_f64();
    let steps = lattice.engine().steps();
    if let Some((last_steps, last_time)) = throughput.last {
        let dt = now - last_time;
        if dt > 0.0 && steps >= last_steps {
            let rate = (steps - last_steps) as f64 * lattice.state().grid.len() as f64 / dt;
            throughput.cell_steps_per_s = 0.9 * throughput.cell_steps_per_s + 0.1 * rate;
        }
    }
    throughput.last = Some((steps, now));
}

/// Lets `edit` change a copy of a resource, and writes it back only if it
/// changed, so that an idle frame does not mark the resource changed.
fn edit_if_changed<T>(res: &mut ResMut<T>, edit: impl FnOnce(&mut T))
where
    T: Resource<Mutability = Mutable> + Clone + PartialEq,
{
    let mut copy = T::clone(res);
    edit(&mut copy);
    res.set_if_neq(copy);
}

/// Edits a value with a drag control; returns true when it changed.
fn drag(ui: &mut egui::Ui, label: &str, value: &mut f64, speed: f64) -> bool {
    ui.horizontal(|ui| {
        ui.label(label);
        ui.add(egui::DragValue::new(value).speed(speed).max_decimals(4))
            .changed()
    })
    .inner
}

/// What a saved session holds.
const SESSION_HINT: &str = "the scene as loaded and every change since (clicks, stimulators, edits, resets), \
     at the tick it took effect: `eifield run` replays it bit for bit";

/// Everything the control panel reads and edits.
#[derive(SystemParam)]
struct PanelParams<'w> {
    scene: Option<ResMut<'w, ActiveScene>>,
    view: ResMut<'w, ViewSettings>,
    click: ResMut<'w, ClickSettings>,
    panel: ResMut<'w, PanelState>,
    virtual_time: ResMut<'w, Time<Virtual>>,
    commands: MessageWriter<'w, SimCommand>,
    status: Res<'w, ControlStatus>,
    sim_status: Res<'w, SimStatus>,
    clock: Option<Res<'w, SimClock>>,
    throughput: Res<'w, Throughput>,
    diagnostics: Res<'w, DiagnosticsStore>,
    lattice: Option<Res<'w, Lattice>>,
    capture: ResMut<'w, ScreenCapture>,
    capture_commands: MessageWriter<'w, CaptureCommand>,
    free_area: ResMut<'w, FreeViewArea>,
    /// The web page, where there is one (no files then).
    page: Option<Res<'w, PageHost>>,
    page_requests: MessageWriter<'w, PageRequest>,
    /// The renderer's adapter.
    renderer: Option<Res<'w, RenderAdapterInfo>>,
}

/// Everything the plots and the tooltip read.
#[derive(SystemParam)]
struct PlotParams<'w> {
    probes: Res<'w, Probes>,
    raster: Res<'w, Raster>,
    hovered: Res<'w, HoveredCell>,
    drawn: Res<'w, DrawnField>,
    followed: Res<'w, FollowedCells>,
    lattice: Option<Res<'w, Lattice>>,
    neighbours: Option<Res<'w, Neighbours>>,
}

/// The colour of every stretch of the E-nullcline.
const E_NULLCLINE_COLOUR: egui::Color32 = egui::Color32::from_rgb(90, 160, 255);

/// The colour of the I-nullcline.
const I_NULLCLINE_COLOUR: egui::Color32 = egui::Color32::from_rgb(240, 170, 60);

/// Points along the E axis at which the phase plane's nullclines are drawn.
const NULLCLINE_POINTS: usize = 300;

/// The phase plane of the first probed cell: its (E, I) trajectory over the
/// probe history, the current point, and its nullclines with the neighbours'
/// input and the drive frozen at their current values.
fn phase_plane(ui: &mut egui::Ui, params: &PlotParams) {
    let (Some(probe), Some(lattice), Some(neighbours)) = (
        params.probes.0.first(),
        params.lattice.as_deref(),
        params.neighbours.as_deref(),
    ) else {
        ui.label("Phase plane: probe a cell (Alt + click)");
        return;
    };
    let state = lattice.state();
    let Some((e_now, i_now, _)) = state.cell(probe.row, probe.col) else {
        return;
    };
    ui.label(format!("Phase plane of ({}, {})", probe.row, probe.col));
    let k = state.grid.index(probe.row, probe.col);
    // The coupling's other cells frozen at their current E (the engine's
    // coupling, with the boundary the lattice is integrated with).
    let mut coupler = lattice.engine().coupler().clone();
    coupler.set_boundary(neighbours.grid().boundary);
    let inputs = FrozenInputs::of_cell(
        &coupler,
        lattice.engine().coeffs(),
        state.e,
        k,
        state.drive.get(k),
        state.h_in.get(k),
    );
    let (lo, hi) = probe
        .history
        .iter()
        .map(|s| s.e)
        .filter(|e| e.is_finite())
        .fold((-2.0f64, 4.0f64), |(lo, hi), e| {
            (lo.min(e - 0.5), hi.max(e + 0.5))
        });
    let (e_null, i_null) = nullclines(
        lattice.engine().coeffs(),
        inputs,
        (lo, hi),
        NULLCLINE_POINTS,
    );
    // The E-nullcline is undefined where |tanh I| would exceed 1: one line per defined stretch.
    let gap = 1.5 * (hi - lo) / (NULLCLINE_POINTS - 1) as f64;
    let mut stretches: Vec<Vec<[f64; 2]>> = Vec::new();
    for (e, i) in e_null {
        match stretches.last_mut() {
            Some(s) if s.last().is_some_and(|p| e - p[0] <= gap) => s.push([e, i]),
            _ => stretches.push(vec![[e, i]]),
        }
    }
    Plot::new("phase_plane")
        .height(200.0)
        .legend(Legend::default())
        .x_axis_label("E")
        .y_axis_label("I")
        .show(ui, |plot| {
            let trajectory: PlotPoints = probe.history.iter().map(|s| [s.e, s.i]).collect();
            plot.line(Line::new("trajectory", trajectory));
            for stretch in stretches {
                plot.line(
                    Line::new("dE/dt = 0", PlotPoints::from(stretch)).color(E_NULLCLINE_COLOUR),
                );
            }
            let i_points: PlotPoints = i_null.into_iter().map(|(e, i)| [e, i]).collect();
            plot.line(Line::new("dI/dt = 0", i_points).color(I_NULLCLINE_COLOUR));
            plot.points(Points::new("now", vec![[e_now, i_now]]).radius(5.0));
        });
}

/// Lays out the bottom plots panel, then the left control panel, in one root Ui.
fn ui_system(
    mut contexts: EguiContexts,
    mut params: PanelParams,
    plots: PlotParams,
    mut raster_texture: Local<Option<egui::TextureHandle>>,
) -> Result {
    let ctx = contexts.ctx_mut()?.clone();
    let mut root = egui::Ui::new(
        ctx.clone(),
        "root".into(),
        egui::UiBuilder::new()
            .layer_id(egui::LayerId::background())
            .max_rect(ctx.viewport_rect()),
    );
    plots_panel(&ctx, &mut root, &plots, &mut raster_texture);
    control_panel(&mut root, &mut params);
    hover_tooltip(&ctx, &plots, params.scene.as_deref());
    // What the panels leave free is where the lattice is framed.
    let free = root.available_rect_before_wrap();
    let area = (free.width() > 1.0 && free.height() > 1.0)
        .then(|| Rect::new(free.min.x, free.min.y, free.max.x, free.max.y));
    if params.free_area.0 != area {
        params.free_area.0 = area;
    }
    Ok(())
}

/// With the panels hidden, the whole window is free.
fn free_whole_window(mut free_area: ResMut<FreeViewArea>) {
    if free_area.0.is_some() {
        free_area.0 = None;
    }
}

/// The control panel on the left.
fn control_panel(root: &mut egui::Ui, p: &mut PanelParams) {
    let PanelParams {
        scene,
        view,
        click,
        panel,
        virtual_time,
        commands,
        status,
        sim_status,
        clock,
        throughput,
        diagnostics,
        lattice,
        capture,
        capture_commands,
        page,
        page_requests,
        renderer,
        ..
    } = p;
    let recording = capture.is_recording();
    egui::Panel::left("controls").default_size(300.0).show(root, |ui| {
        egui::ScrollArea::vertical().show(ui, |ui| {
            ui.heading("eifield");
            // Status line.
            let fps = diagnostics
                .get(&FrameTimeDiagnosticsPlugin::FPS)
                .and_then(|d| d.smoothed())
                .unwrap_or(0.0);
            let t = clock.as_ref().map_or(0.0, |c| c.time());
            ui.label(format!(
                "t = {t:.2}   {fps:.0} fps   {:.3e} cell-steps/s",
                throughput.cell_steps_per_s
            ));
            match &**sim_status {
                SimStatus::BlownUp(b) => {
                    ui.colored_label(egui::Color32::RED, b.to_string());
                }
                SimStatus::Failed(message) => {
                    ui.colored_label(egui::Color32::RED, message);
                }
                SimStatus::Running => {}
            }
            if let Some(lattice) = &lattice {
                let g = lattice.state().grid;
                let info = lattice.engine().info();
                ui.label(format!("{} × {} cells, {:?}", g.rows, g.cols, g.boundary));
                ui.label(match info.backend {
                    "gpu" if info.gpu_step == Some("per stage") => format!(
                        "GPU engine ({}) on {}, one dispatch per stage (a kernel too wide \
                         for the fused step)",
                        info.precision, info.adapter
                    ),
                    "gpu" => format!("GPU engine ({}) on {}", info.precision, info.adapter),
                    _ => format!("{} engine ({})", info.adapter, info.precision),
                });
            }
            if let Some(renderer) = renderer {
                // Cut to the panel's width (the whole text on hover): an
                // adapter's long name must not widen the panel.
                ui.add(
                    egui::Label::new(egui::RichText::new(renderer_label(renderer)).small())
                        .truncate(),
                );
            }

            ui.separator();
            ui.horizontal(|ui| {
                let label = if virtual_time.is_paused() { "▶ Play" } else { "⏸ Pause" };
                if ui.button(label).clicked() {
                    commands.write(SimCommand::TogglePause);
                }
                if ui
                    .add_enabled(virtual_time.is_paused() && !recording, egui::Button::new("Step"))
                    .clicked()
                {
                    commands.write(SimCommand::Step);
                }
                if ui.button("Reset").clicked() {
                    commands.write(SimCommand::Reset);
                }
            });
            if recording {
                ui.label("Speed: one video frame per rendered frame while recording.");
            } else {
                let mut speed = virtual_time.relative_speed_f64();
                if ui
                    .add(egui::Slider::new(&mut speed, SPEED_RANGE).logarithmic(true).text("time / s"))
                    .changed()
                {
                    virtual_time.set_relative_speed_f64(speed);
                }
            }

            ui.separator();
            let page_recording = page.as_ref().is_some_and(|p| p.recording);
            ui.horizontal(|ui| {
                let label = if recording || page_recording {
                    "⏹ Stop (F9)"
                } else {
                    "⏺ Record (F9)"
                };
                if ui.button(label).clicked() {
                    capture_commands.write(CaptureCommand::ToggleRecording);
                }
                if ui.button("Screenshot (F12)").clicked() {
                    capture_commands.write(CaptureCommand::Screenshot);
                }
            });
            if let Some(indicator) = capture.indicator() {
                ui.colored_label(egui::Color32::from_rgb(230, 60, 60), indicator);
            } else if page.is_some() {
                // The page records its canvas as it is drawn (WebM).
                if page_recording {
                    ui.colored_label(
                        egui::Color32::from_rgb(230, 60, 60),
                        "recording the canvas (WebM); Stop downloads it",
                    );
                }
            } else {
                ui.horizontal(|ui| {
                    drag(ui, "model time per frame", &mut capture.time_per_frame, 0.005);
                    capture.time_per_frame = capture.time_per_frame.max(1e-4);
                });
                ui.horizontal(|ui| {
                    ui.add(egui::DragValue::new(&mut capture.fps).range(1..=240).suffix(" fps"));
                    ui.checkbox(&mut capture.hide_panels, "hide panels in the video");
                });
                ui.checkbox(
                    &mut capture.overlay,
                    "overlay in the video (name, time, colour bar)",
                );
            }
            if let Some(error) = &capture.error {
                ui.colored_label(egui::Color32::from_rgb(230, 80, 60), error);
            }
            if let Some(message) = &capture.message {
                ui.small(message);
            }

            ui.separator();
            ui.label("View");
            edit_if_changed(view, |view| {
                ui.horizontal(|ui| {
                    ui.radio_value(&mut view.field, ViewField::E, "E");
                    ui.radio_value(&mut view.field, ViewField::I, "I");
                    ui.separator();
                    ui.radio_value(&mut view.mode, ViewMode::Surface, "3D surface");
                    ui.radio_value(&mut view.mode, ViewMode::Heatmap, "heat map");
                });
                egui::ComboBox::from_label("colour map")
                    .selected_text(view.colormap.name())
                    .show_ui(ui, |ui| {
                        for &map in ColorMapName::ALL {
                            ui.selectable_value(&mut view.colormap, map, map.name());
                        }
                    });
                ui.checkbox(
                    &mut view.activation_map,
                    "activation map (first crossing of E = 1 since the last load; top colour: not yet)",
                );
                ui.add(egui::Slider::new(&mut view.height_scale, 0.0..=10.0).text("height scale"));
                ui.horizontal(|ui| {
                    ui.label("colour range");
                    ui.add(egui::DragValue::new(&mut view.range.0).speed(0.05));
                    ui.add(egui::DragValue::new(&mut view.range.1).speed(0.05));
                });
            });

            ui.separator();
            ui.label("Left click");
            edit_if_changed(click, |click| {
                ui.horizontal(|ui| {
                    ui.radio_value(&mut click.tool, Tool::Perturb, "perturb");
                    ui.radio_value(&mut click.tool, Tool::Stimulator, "stimulator");
                    ui.radio_value(&mut click.tool, Tool::Probe, "probe");
                    ui.radio_value(&mut click.tool, Tool::Line, "line");
                });
                if click.tool == Tool::Line {
                    ui.small(match click.line_start {
                        None => "Line: click its first cell, then its last; the raster becomes a kymograph along it.".to_owned(),
                        Some((r, c)) => format!("Line from ({r}, {c}): click its last cell."),
                    });
                }
                ui.small("Ctrl + click: stimulator, Alt + click: probe. Right drag: orbit, middle drag: pan, wheel: zoom, R: reset view.");
                drag(ui, "kick amount", &mut click.amount, 0.1);
                drag(ui, "kick duration", &mut click.duration, 0.05);
                click.duration = click.duration.max(1e-3);
            });

            if let Some(scene) = scene.as_mut() {
                // Only a real, valid edit marks the scene changed (and so
                // reaches the engine); an idle frame changes nothing.
                let mut edited = scene.0.clone();
                parameter_editors(ui, &mut edited);
                if edited != scene.0 && edited.validate().is_ok() {
                    scene.0 = edited;
                }
            }

            ui.separator();
            if page.is_some() {
                page_scene_buttons(ui, page_requests);
            } else {
                file_scene_buttons(ui, panel, commands);
            }
            if let Some(error) = &status.error {
                ui.colored_label(egui::Color32::from_rgb(230, 80, 60), error);
            }
            if let Some(info) = &status.info {
                ui.label(info);
            }
        });
    });
}

/// The renderer as the panel names it: its graphics interface and adapter.
fn renderer_label(info: &RenderAdapterInfo) -> String {
    format!(
        "drawn with {} on {}",
        graphics_api(&info.0),
        adapter_label(&info.0)
    )
}

/// The scene's buttons in the web page: the page's file picker, downloads
/// and link.
fn page_scene_buttons(ui: &mut egui::Ui, requests: &mut MessageWriter<PageRequest>) {
    ui.label("Scene");
    ui.horizontal_wrapped(|ui| {
        if ui
            .button("Open…")
            .on_hover_text("load a scene file (or drop one on the page)")
            .clicked()
        {
            requests.write(PageRequest::OpenFile);
        }
        if ui
            .button("Download")
            .on_hover_text("the scene with the current state as its initial state")
            .clicked()
        {
            requests.write(PageRequest::DownloadScene);
        }
        if ui
            .button("Download session")
            .on_hover_text(SESSION_HINT)
            .clicked()
        {
            requests.write(PageRequest::DownloadSession);
        }
        if ui
            .button("Share")
            .on_hover_text(
                "put the scene (parameters, stimuli, kernel, view) into the page's address: \
                 opening that link opens it",
            )
            .clicked()
        {
            requests.write(PageRequest::Share);
        }
    });
}

/// The scene's file, named in the panel, to load and save.
fn file_scene_buttons(
    ui: &mut egui::Ui,
    panel: &mut PanelState,
    commands: &mut MessageWriter<SimCommand>,
) {
    ui.label("Scene file");
    ui.text_edit_singleline(&mut panel.scene_path);
    ui.horizontal(|ui| {
        if ui.button("Load").clicked() {
            commands.write(SimCommand::Load(PathBuf::from(&panel.scene_path)));
        }
        if ui.button("Save").clicked() {
            commands.write(SimCommand::Save {
                path: PathBuf::from(&panel.scene_path),
                overwrite: panel.overwrite,
            });
        }
        if ui
            .button("Save session")
            .on_hover_text(SESSION_HINT)
            .clicked()
        {
            commands.write(SimCommand::SaveSession {
                path: PathBuf::from(&panel.scene_path),
                overwrite: panel.overwrite,
            });
        }
        ui.checkbox(&mut panel.overwrite, "overwrite");
    });
}

/// The default numbers of each stencil kernel, when one is chosen.
const DEFAULT_MOORE_DIAGONAL: f64 = 0.5;
/// The default radius of a disk kernel.
const DEFAULT_DISK_RADIUS: f64 = 3.0;
/// The default width of a Gaussian disk (and a Mexican hat's centre).
const DEFAULT_DISK_SIGMA: f64 = 1.5;

/// A choice of stencil kernel and its numbers (the numbers kept within the
/// ranges validation allows, so that a drag never leaves a valid scene).
fn kernel_editor(ui: &mut egui::Ui, label: &str, kernel: &mut Kernel) {
    let names = ["Nearest (4)", "Moore (8)", "Disk"];
    let mut choice = match kernel {
        Kernel::Nearest | Kernel::Matrix { .. } => 0,
        Kernel::Moore { .. } => 1,
        Kernel::Disk { .. } => 2,
    };
    let before = choice;
    egui::ComboBox::from_label(label)
        .selected_text(names[choice])
        .show_ui(ui, |ui| {
            for (k, name) in names.iter().enumerate() {
                ui.selectable_value(&mut choice, k, *name);
            }
        });
    if choice != before {
        *kernel = match choice {
            1 => Kernel::Moore {
                diagonal: DEFAULT_MOORE_DIAGONAL,
            },
            2 => Kernel::Disk {
                radius: DEFAULT_DISK_RADIUS,
                profile: Profile::Gaussian {
                    sigma: DEFAULT_DISK_SIGMA,
                },
            },
            _ => Kernel::Nearest,
        };
    }
    let bounded = |ui: &mut egui::Ui, name: &str, value: &mut f64, range: (f64, f64)| {
        ui.horizontal(|ui| {
            ui.label(name);
            ui.add(
                egui::DragValue::new(value)
                    .speed(0.01)
                    .range(range.0..=range.1)
                    .max_decimals(3),
            );
        });
    };
    match kernel {
        Kernel::Moore { diagonal } => bounded(ui, "diagonal", diagonal, (-10.0, 10.0)),
        Kernel::Disk { radius, profile } => {
            bounded(ui, "radius", radius, (MIN_DISK_RADIUS, MAX_DISK_RADIUS));
            let shapes = ["flat", "Gaussian", "Mexican hat"];
            let mut shape = match profile {
                Profile::Flat => 0,
                Profile::Gaussian { .. } => 1,
                Profile::MexicanHat { .. } => 2,
            };
            let was = shape;
            egui::ComboBox::from_label(format!("{label} profile"))
                .selected_text(shapes[shape])
                .show_ui(ui, |ui| {
                    for (k, name) in shapes.iter().enumerate() {
                        ui.selectable_value(&mut shape, k, *name);
                    }
                });
            if shape != was {
                *profile = match shape {
                    1 => Profile::Gaussian {
                        sigma: DEFAULT_DISK_SIGMA,
                    },
                    2 => Profile::MexicanHat {
                        sigma_center: DEFAULT_DISK_SIGMA,
                        sigma_surround: 2.0 * DEFAULT_DISK_SIGMA,
                        surround: 0.2,
                    },
                    _ => Profile::Flat,
                };
            }
            let sigmas = (0.05, 100.0);
            match profile {
                Profile::Flat => {}
                Profile::Gaussian { sigma } => bounded(ui, "sigma", sigma, sigmas),
                Profile::MexicanHat {
                    sigma_center,
                    sigma_surround,
                    surround,
                } => {
                    bounded(ui, "sigma centre", sigma_center, sigmas);
                    bounded(ui, "sigma surround", sigma_surround, sigmas);
                    bounded(ui, "surround", surround, (0.0, 10.0));
                }
            }
            if let Err((_, message)) = kernel.check() {
                ui.colored_label(egui::Color32::from_rgb(230, 80, 60), message);
            }
        }
        Kernel::Nearest | Kernel::Matrix { .. } => {}
    }
}

/// Side in points of one cell of the kernel picture.
const KERNEL_PICTURE_CELL: f32 = 7.0;
/// The widest reach the kernel picture shows around the cell.
const KERNEL_PICTURE_REACH: isize = 8;

/// A small picture of the excitatory weights with which the cells around
/// `(row, col)` feed it (red positive, blue negative, the cell itself
/// outlined); cells past an open edge are left out.
fn kernel_picture(ui: &mut egui::Ui, coupler: &Coupler, row: usize, col: usize) {
    let grid = coupler.grid();
    let k = grid.index(row, col);
    let inputs = coupler.inputs_of(k);
    let reach = (coupler.reach().max(1) as isize).min(KERNEL_PICTURE_REACH);
    let largest = inputs
        .iter()
        .map(|w| w.1.abs())
        .fold(0.0f64, f64::max)
        .max(f64::MIN_POSITIVE);
    let side = (2 * reach + 1) as f32 * KERNEL_PICTURE_CELL;
    let (rect, _) = ui.allocate_exact_size(egui::vec2(side, side), egui::Sense::hover());
    let painter = ui.painter_at(rect);
    painter.rect_filled(rect, 0.0, egui::Color32::from_gray(30));
    for dr in -reach..=reach {
        for dc in -reach..=reach {
            let Some(j) = coupler.offset_cell(row, col, dr, dc) else {
                continue;
            };
            let weight = inputs.iter().find(|w| w.0 == j).map_or(0.0, |w| w.1);
            let level = (weight.abs() / largest).sqrt();
            let shade = (60.0 + 195.0 * level) as u8;
            let colour = if weight > 0.0 {
                egui::Color32::from_rgb(shade, 60, 40)
            } else if weight < 0.0 {
                egui::Color32::from_rgb(40, 80, shade)
            } else {
                egui::Color32::from_gray(45)
            };
            let at = rect.min
                + egui::vec2(
                    (dc + reach) as f32 * KERNEL_PICTURE_CELL,
                    (dr + reach) as f32 * KERNEL_PICTURE_CELL,
                );
            let cell =
                egui::Rect::from_min_size(at, egui::vec2(KERNEL_PICTURE_CELL, KERNEL_PICTURE_CELL))
                    .shrink(0.5);
            painter.rect_filled(cell, 0.0, colour);
            if (dr, dc) == (0, 0) {
                painter.rect_stroke(
                    cell,
                    0.0,
                    egui::Stroke::new(1.0, egui::Color32::WHITE),
                    egui::StrokeKind::Inside,
                );
            }
        }
    }
}

/// Widgets for every live parameter of a scene.
fn parameter_editors(ui: &mut egui::Ui, scene: &mut eifield_model::FieldScene) {
    ui.separator();
    egui::CollapsingHeader::new("Model")
        .default_open(true)
        .show(ui, |ui| {
            let m = &mut scene.model;
            drag(ui, "tau_ex", &mut m.tau_ex, 0.01);
            drag(ui, "tau_in", &mut m.tau_in, 0.01);
            drag(ui, "c2", &mut m.c2, 0.05);
            drag(ui, "c4", &mut m.c4, 0.05);
            drag(ui, "c_ee", &mut m.c_ee, 0.05);
            drag(ui, "c_ei", &mut m.c_ei, 0.05);
        });
    egui::CollapsingHeader::new("Coupling")
        .default_open(true)
        .show(ui, |ui| {
            let c = &mut scene.coupling;
            if let Kernel::Matrix { ee, ei } = &c.kernel {
                ui.label("kernel: general matrices");
                ui.small(format!(
                    "ee: {}\nei: {}",
                    ee.path.display(),
                    ei.path.display()
                ));
                return;
            }
            drag(ui, "frac_ee", &mut c.frac_ee, 0.005);
            drag(ui, "frac_ei", &mut c.frac_ei, 0.005);
            drag(ui, "self_weight", &mut c.self_weight, 0.01);
            kernel_editor(ui, "kernel", &mut c.kernel);
            let mut separate = c.kernel_ei.is_some();
            if ui
                .checkbox(&mut separate, "another kernel for v (inhibitory)")
                .changed()
            {
                c.kernel_ei = separate.then(|| c.kernel.clone());
            }
            if let Some(kernel_ei) = &mut c.kernel_ei {
                kernel_editor(ui, "kernel_ei", kernel_ei);
            }
        });
    egui::CollapsingHeader::new("Drive and noise")
        .default_open(true)
        .show(ui, |ui| {
            let before = (scene.drive.h_ex, scene.drive.h_in);
            drag(ui, "h_ex", &mut scene.drive.h_ex, 0.01);
            drag(ui, "h_in", &mut scene.drive.h_in, 0.01);
            // Explicit drives are absolute: move them with the nominal values.
            if let eifield_model::scene::Heterogeneity::Explicit { h_ex, h_in } =
                &mut scene.drive.heterogeneity
            {
                let (dx, di) = (scene.drive.h_ex - before.0, scene.drive.h_in - before.1);
                h_ex.iter_mut().for_each(|v| *v += dx);
                h_in.iter_mut().for_each(|v| *v += di);
            }
            let mut noisy = matches!(scene.noise, Noise::Pink { .. });
            if ui.checkbox(&mut noisy, "pink noise").changed() {
                scene.noise = if noisy { DEFAULT_NOISE } else { Noise::None };
            }
            if let Noise::Pink {
                sigma,
                seed,
                sample_rate,
            } = &mut scene.noise
            {
                drag(ui, "sigma", sigma, 0.01);
                drag(ui, "noise rate", sample_rate, 1.0);
                ui.horizontal(|ui| {
                    ui.label("seed");
                    ui.add(egui::DragValue::new(seed));
                });
            }
        });
    egui::CollapsingHeader::new("Integrator").show(ui, |ui| {
        let mut dt = scene.integrator.dt();
        let mut method = match scene.integrator {
            IntegratorSpec::Rk4 { .. } => 0,
            IntegratorSpec::Heun { .. } => 1,
            IntegratorSpec::Euler { .. } => 2,
        };
        ui.horizontal(|ui| {
            ui.radio_value(&mut method, 0, "RK4");
            ui.radio_value(&mut method, 1, "Heun");
            ui.radio_value(&mut method, 2, "Euler");
        });
        drag(ui, "dt", &mut dt, 0.0005);
        scene.integrator = match method {
            0 => IntegratorSpec::Rk4 { dt },
            1 => IntegratorSpec::Heun { dt },
            _ => IntegratorSpec::Euler { dt },
        };
    });
    egui::CollapsingHeader::new("Stimuli")
        .default_open(true)
        .show(ui, |ui| {
            let grid = scene.grid;
            let mut list = scene.effective_stimuli();
            let mut remove = None;
            for (k, stimulus) in list.iter_mut().enumerate() {
                let Stimulus::PulseTrain {
                    row,
                    col,
                    freq,
                    width,
                    amp,
                    onset,
                    ..
                } = stimulus;
                ui.horizontal(|ui| {
                    ui.label(format!("#{k}"));
                    ui.add(
                        egui::DragValue::new(row)
                            .range(0..=grid.rows - 1)
                            .prefix("row "),
                    );
                    ui.add(
                        egui::DragValue::new(col)
                            .range(0..=grid.cols - 1)
                            .prefix("col "),
                    );
                    if ui.small_button("✖").clicked() {
                        remove = Some(k);
                    }
                });
                ui.horizontal(|ui| {
                    ui.add(
                        egui::DragValue::new(freq)
                            .speed(0.01)
                            .range(0.001..=100.0)
                            .prefix("f "),
                    );
                    ui.add(
                        egui::DragValue::new(width)
                            .speed(0.01)
                            .range(0.0..=100.0)
                            .prefix("w "),
                    );
                    ui.add(egui::DragValue::new(amp).speed(0.05).prefix("a "));
                    ui.add(
                        egui::DragValue::new(onset)
                            .speed(0.05)
                            .range(0.0..=1e6)
                            .prefix("t0 "),
                    );
                });
            }
            if let Some(k) = remove {
                list.remove(k);
            }
            if ui.button("Add at centre").clicked() {
                list.push(Stimulus::default_for(&grid));
            }
            scene.stimuli = Some(list);
        });
}

/// The plots panel; returns its height.
fn plots_panel(
    ctx: &egui::Context,
    root: &mut egui::Ui,
    params: &PlotParams,
    raster_texture: &mut Option<egui::TextureHandle>,
) -> f32 {
    let (probes, raster) = (&params.probes, &params.raster);
    egui::Panel::bottom("plots")
        .resizable(true)
        .default_size(260.0)
        .show(root, |ui| {
            ui.columns(3, |cols| {
                let ui = &mut cols[0];
                ui.label("Probes (Alt + click a cell)");
                let stimulated: Vec<_> = probes
                    .0
                    .iter()
                    .filter(|p| p.history.iter().any(|s| s.stimulus != 0.0))
                    .collect();
                let height = if stimulated.is_empty() { 200.0 } else { 130.0 };
                Plot::new("probe_traces")
                    .height(height)
                    .legend(Legend::default())
                    .x_axis_label("time")
                    .y_axis_label("E")
                    .show(ui, |plot| {
                        for p in &probes.0 {
                            let points: PlotPoints = p.history.iter().map(|s| [s.t, s.e]).collect();
                            plot.line(Line::new(format!("({}, {})", p.row, p.col), points));
                        }
                    });
                if !stimulated.is_empty() {
                    Plot::new("probe_stimuli")
                        .height(60.0)
                        .x_axis_label("time")
                        .y_axis_label("stimulus")
                        .show(ui, |plot| {
                            for p in &stimulated {
                                let points: PlotPoints =
                                    p.history.iter().map(|s| [s.t, s.stimulus]).collect();
                                plot.line(Line::new(format!("({}, {})", p.row, p.col), points));
                            }
                        });
                }

                phase_plane(&mut cols[1], params);

                let ui = &mut cols[2];
                match (raster.line, raster.row) {
                    (Some(((r0, c0), (r1, c1))), _) => ui.label(format!(
                        "Kymograph: E along the line ({r0}, {c0}) to ({r1}, {c1})"
                    )),
                    (None, None) => ui.label("Raster: E of every cell"),
                    (None, Some(r)) => {
                        ui.label(format!("Raster: E along row {r} (the first probe's row)"))
                    }
                };
                if let (Some(first), Some(last)) = (raster.times.front(), raster.times.back()) {
                    let height = raster.columns.front().map_or(0, |c| c.len());
                    let width = raster.columns.len();
                    if width > 0 && height > 0 {
                        let lut = ColorMapName::BlueWhiteRed.lut_srgb8();
                        let mut pixels = Vec::with_capacity(width * height);
                        for y in 0..height {
                            for column in &raster.columns {
                                let [r, g, b] = lut[lut_index(column[height - 1 - y], -2.0, 2.0)];
                                pixels.push(egui::Color32::from_rgb(r, g, b));
                            }
                        }
                        let image = egui::ColorImage::new([width, height], pixels);
                        let texture = match raster_texture.as_mut() {
                            Some(t) => {
                                t.set(image, egui::TextureOptions::NEAREST);
                                t
                            }
                            None => raster_texture.insert(ctx.load_texture(
                                "raster",
                                image,
                                egui::TextureOptions::NEAREST,
                            )),
                        };
                        let span = (last - first).max(1e-9);
                        let id = texture.id();
                        Plot::new("raster")
                            .height(200.0)
                            .x_axis_label("time")
                            .y_axis_label(match (raster.line, raster.row) {
                                (Some(_), _) => "cell along the line",
                                (None, Some(_)) => "column",
                                (None, None) => "cell",
                            })
                            .include_x(last - HISTORY_SPAN)
                            .show(ui, |plot| {
                                plot.image(PlotImage::new(
                                    "E",
                                    id,
                                    PlotPoint::new(first + span * 0.5, height as f64 * 0.5 - 0.5),
                                    [span as f32, height as f32],
                                ));
                            });
                    }
                }
            });
        })
        .response
        .rect
        .height()
}

fn hover_tooltip(ctx: &egui::Context, params: &PlotParams, scene: Option<&ActiveScene>) {
    let (Some((row, col)), Some(scene)) = (params.hovered.0, scene) else {
        return;
    };
    let Some(pos) = ctx.input(|i| i.pointer.hover_pos()) else {
        return;
    };
    let k = scene.0.grid.index(row, col);
    // With a GPU engine, the values gathered after the latest tick; else
    // (and until they arrive) the drawn ones.
    let (e, i) = match params.followed.values(k) {
        Some(values) => values,
        None => match (params.drawn.e.get(k), params.drawn.i.get(k)) {
            (Some(&e), Some(&i)) => (f64::from(e), f64::from(i)),
            _ => return,
        },
    };
    egui::Area::new(egui::Id::new("cell_tooltip"))
        .fixed_pos(pos + egui::vec2(16.0, 16.0))
        .interactable(false)
        .order(egui::Order::Tooltip)
        .show(ctx, |ui| {
            egui::Frame::popup(ui.style()).show(ui, |ui| {
                ui.label(format!("row {row}, col {col}\nE = {e:.4}\nI = {i:.4}"));
                if let Some(lattice) = params.lattice.as_deref() {
                    let mut coupler = lattice.engine().coupler().clone();
                    if let Some(neighbours) = params.neighbours.as_deref() {
                        coupler.set_boundary(neighbours.grid().boundary);
                    }
                    if k < coupler.grid().len() {
                        ui.small("weights feeding it (u):");
                        kernel_picture(ui, &coupler, row, col);
                    }
                }
            });
        });
}
