//! The lattice picking plugin: a picking backend that turns pointer rays into
//! hits on the surface (ray against the height field), the hovered cell, and
//! the click observer that perturbs a cell, toggles a stimulator or a probe.

use bevy::picking::PickingSystems;
use bevy::picking::backend::ray::RayMap;
use bevy::picking::backend::{HitData, PointerHits};
use bevy::picking::pointer::{PointerId, PointerLocation};
use bevy::prelude::*;
use bevy_egui::input::egui_wants_any_pointer_input;
use eifield_model::Grid;
use eifield_model::scene::Stimulus;

use super::camera::{FreeViewArea, OrbitCamera};
use super::surface::{DrawnField, LatticeSurface, cell_at};
use crate::sim::probes::{FollowedCells, Probes, Raster};
use crate::sim::stimulus::Perturb;
use crate::sim::{ActiveScene, Neighbours};

/// Step of the ray march, in cell widths.
const PICK_STEP: f32 = 0.1;
/// Most march steps per ray (a 4096-cell diagonal at a tenth of a cell).
const MAX_PICK_STEPS: usize = 60_000;
/// Vertical margin around the height range, in world units.
const PICK_MARGIN: f32 = 1e-2;
/// Bisections that refine a crossing found by the march.
const PICK_BISECTIONS: usize = 40;

/// What a left click on the lattice does.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum Tool {
    /// Kick the cell with a [`Perturb`] message.
    #[default]
    Perturb,
    /// Add a pulse-train stimulator at the cell, or remove the ones there.
    Stimulator,
    /// Add a probe at the cell, or remove it.
    Probe,
    /// Two clicks give the ends of a line of cells: the raster becomes a
    /// kymograph along it.
    Line,
}

/// The click tool and the perturbation it sends.
#[derive(Resource, Clone, Debug, PartialEq)]
pub struct ClickSettings {
    /// The tool of a plain left click (Ctrl + click toggles a stimulator,
    /// Alt + click a probe, whatever the tool).
    pub tool: Tool,
    /// Drive added by a perturbation.
    pub amount: f64,
    /// How long a perturbation lasts.
    pub duration: f64,
    /// The first end of a line being drawn with [`Tool::Line`].
    pub line_start: Option<(usize, usize)>,
}

/// Default drive of a click perturbation (as a pulse of the notebook's train).
pub const DEFAULT_KICK_AMOUNT: f64 = 6.0;
/// Default duration of a click perturbation.
pub const DEFAULT_KICK_DURATION: f64 = 1.3;

impl Default for ClickSettings {
    fn default() -> Self {
        Self {
            tool: Tool::Perturb,
            amount: DEFAULT_KICK_AMOUNT,
            duration: DEFAULT_KICK_DURATION,
            line_start: None,
        }
    }
}

/// The cell under the mouse pointer, if any.
#[derive(Resource, Clone, Copy, Debug, Default, PartialEq)]
pub struct HoveredCell(pub Option<(usize, usize)>);

/// Where a ray meets the lattice's height field: the cell and the point.
///
/// Each cell is a column over its unit square, as high as the cell's drawn
/// height (`height_of(index)`). The ray is marched in steps of a tenth of a
/// cell through the grid's box, and the first crossing into a column is then
/// bisected to full precision, so that on a flat field the result is the exact
/// cut with the plane.
pub fn ray_to_cell(
    origin: Vec3,
    direction: Vec3,
    grid: &Grid,
    height_of: impl Fn(usize) -> f32,
) -> Option<((usize, usize), Vec3)> {
    let (lo, hi) = (0..grid.len())
        .map(&height_of)
        .fold((0.0f32, 0.0f32), |(a, b), h| (a.min(h), b.max(h)));
    // A margin so that a flat field is a slab, not a plane the march could step over.
    let (lo, hi) = (lo - PICK_MARGIN, hi + PICK_MARGIN);
    let (hw, hd) = (grid.cols as f32 * 0.5, grid.rows as f32 * 0.5);
    // Slab intersection with the box [-hw, hw] × [lo, hi] × [-hd, hd].
    let (mut t0, mut t1) = (0.0f32, f32::INFINITY);
    for (o, d, min, max) in [
        (origin.x, direction.x, -hw, hw),
        (origin.y, direction.y, lo, hi),
        (origin.z, direction.z, -hd, hd),
    ] {
        if d.abs() < 1e-12 {
            if o < min || o > max {
                return None;
            }
        } else {
            let (a, b) = ((min - o) / d, (max - o) / d);
            t0 = t0.max(a.min(b));
            t1 = t1.min(a.max(b));
        }
    }
    if t0.partial_cmp(&t1).is_none_or(|o| o.is_gt()) || !t1.is_finite() {
        return None;
    }
    let at = |t: f32| origin + direction * t;
    let below = |t: f32| {
        let p = at(t);
        cell_at(grid, p.x, p.z).is_some_and(|(r, c)| p.y <= height_of(grid.index(r, c)))
    };
    if below(t0) {
        let p = at(t0);
        return cell_at(grid, p.x, p.z).map(|cell| (cell, p));
    }
    // March in whole steps (counted, so that float rounding cannot stall it).
    let horizontal = Vec2::new(direction.x, direction.z).length();
    let span = t1 - t0;
    let steps = if horizontal > 1e-9 {
        ((span * horizontal / PICK_STEP).ceil() as usize).clamp(1, MAX_PICK_STEPS)
    } else {
        1
    };
    let mut previous = t0;
    for k in 1..=steps {
        let t = t0 + span * k as f32 / steps as f32;
        if below(t) {
            let (mut a, mut b) = (previous, t);
            for _ in 0..PICK_BISECTIONS {
                let m = 0.5 * (a + b);
                if below(m) {
                    b = m;
                } else {
                    a = m;
                }
            }
            let p = at(b);
            return cell_at(grid, p.x, p.z).map(|cell| (cell, p));
        }
        previous = t;
    }
    None
}

/// Adds the backend, the hovered cell and the click observer.
pub struct LatticePickingPlugin;

impl Plugin for LatticePickingPlugin {
    fn build(&self, app: &mut App) {
        app.init_resource::<ClickSettings>()
            .init_resource::<HoveredCell>()
            .add_systems(
                PreUpdate,
                lattice_backend
                    .in_set(PickingSystems::Backend)
                    .run_if(not(egui_wants_any_pointer_input)),
            )
            .add_systems(
                PreUpdate,
                clear_hover_over_egui
                    .in_set(PickingSystems::Backend)
                    .run_if(egui_wants_any_pointer_input),
            )
            .add_observer(on_surface_click);
    }
}

fn clear_hover_over_egui(mut hovered: ResMut<HoveredCell>) {
    hovered.0 = None;
}

/// Reports a hit on the surface entity for every pointer ray that meets the lattice.
/// True when a pointer lies where the panels cover the window: the lattice
/// behind a panel is never hovered or clicked.
fn over_a_panel(
    pointer: PointerId,
    free: Option<&FreeViewArea>,
    pointers: &Query<(&PointerId, &PointerLocation)>,
) -> bool {
    let Some(area) = free.and_then(|f| f.0) else {
        return false;
    };
    pointers
        .iter()
        .find(|(id, _)| **id == pointer)
        .and_then(|(_, location)| location.location())
        .is_some_and(|location| !area.contains(location.position))
}

#[allow(clippy::too_many_arguments)]
fn lattice_backend(
    rays: Res<RayMap>,
    cameras: Query<&Camera, With<OrbitCamera>>,
    surfaces: Query<(Entity, &LatticeSurface)>,
    drawn: Res<DrawnField>,
    free: Option<Res<FreeViewArea>>,
    pointers: Query<(&PointerId, &PointerLocation)>,
    (mut hovered, mut followed): (ResMut<HoveredCell>, ResMut<FollowedCells>),
    mut hits: MessageWriter<PointerHits>,
) {
    let Ok((entity, surface)) = surfaces.single() else {
        return;
    };
    let grid = surface.grid;
    let height_of = |k: usize| drawn.heights.get(k).copied().unwrap_or(0.0);
    let mut mouse_cell = None;
    for (ray_id, ray) in rays.iter() {
        let Ok(camera) = cameras.get(ray_id.camera) else {
            continue;
        };
        if over_a_panel(ray_id.pointer, free.as_deref(), &pointers) {
            continue;
        }
        let Some((cell, point)) = ray_to_cell(ray.origin, *ray.direction, &grid, height_of) else {
            continue;
        };
        if ray_id.pointer == PointerId::Mouse {
            mouse_cell = Some(cell);
        }
        let depth = ray.origin.distance(point);
        let hit = HitData::new(ray_id.camera, depth, Some(point), Some(Vec3::Y));
        hits.write(PointerHits::new(
            ray_id.pointer,
            vec![(entity, hit)],
            camera.order as f32,
        ));
    }
    hovered.0 = mouse_cell;
    // A GPU engine gathers the hovered cell's values after every tick.
    let extra: Vec<usize> = mouse_cell
        .map(|(row, col)| grid.index(row, col))
        .into_iter()
        .collect();
    if followed.extra != extra {
        followed.extra = extra;
    }
}

/// What a click on a cell does, after the modifiers are taken into account.
pub fn click_action(settings: &ClickSettings, ctrl: bool, alt: bool) -> Tool {
    if ctrl {
        Tool::Stimulator
    } else if alt {
        Tool::Probe
    } else {
        settings.tool
    }
}

/// Applies a tool to a cell.
pub fn apply_tool(
    tool: Tool,
    (row, col): (usize, usize),
    settings: &mut ClickSettings,
    mut scene: Mut<ActiveScene>,
    (probes, raster): (&mut Probes, &mut Raster),
    perturbs: &mut MessageWriter<Perturb>,
) {
    match tool {
        Tool::Perturb => {
            perturbs.write(Perturb {
                row,
                col,
                amount: settings.amount,
                duration: settings.duration,
            });
        }
        Tool::Stimulator => {
            let grid = scene.0.grid;
            let mut list = scene.0.effective_stimuli();
            let before = list.len();
            list.retain(|s| !matches!(s, Stimulus::PulseTrain { row: r, col: c, .. } if *r == row && *c == col));
            if list.len() == before {
                let mut stimulus = Stimulus::default_for(&grid);
                let Stimulus::PulseTrain { row: r, col: c, .. } = &mut stimulus;
                (*r, *c) = (row, col);
                list.push(stimulus);
            }
            scene.0.stimuli = Some(list);
        }
        Tool::Probe => probes.toggle(row, col),
        Tool::Line => match settings.line_start.take() {
            None => settings.line_start = Some((row, col)),
            Some(start) => raster.line = Some((start, (row, col))),
        },
    }
}

#[allow(clippy::too_many_arguments)]
fn on_surface_click(
    click: On<Pointer<Click>>,
    surfaces: Query<&LatticeSurface>,
    neighbours: Option<Res<Neighbours>>,
    keys: Res<ButtonInput<KeyCode>>,
    mut settings: ResMut<ClickSettings>,
    mut scene: Option<ResMut<ActiveScene>>,
    (mut probes, mut raster): (ResMut<Probes>, ResMut<Raster>),
    mut perturbs: MessageWriter<Perturb>,
) {
    if click.event.button != PointerButton::Primary || surfaces.get(click.entity).is_err() {
        return;
    }
    let (Some(neighbours), Some(point)) = (neighbours, click.event.hit.position) else {
        return;
    };
    let Some(cell) = cell_at(&neighbours.grid(), point.x, point.z) else {
        return;
    };
    let ctrl = keys.any_pressed([KeyCode::ControlLeft, KeyCode::ControlRight]);
    let alt = keys.any_pressed([KeyCode::AltLeft, KeyCode::AltRight]);
    let tool = click_action(&settings, ctrl, alt);
    let Some(scene) = scene.as_mut() else {
        return;
    };
    // Only the stimulator tool changes the scene (and marks it changed).
    apply_tool(
        tool,
        cell,
        &mut settings,
        scene.reborrow(),
        (&mut probes, &mut raster),
        &mut perturbs,
    );
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::view::camera::{OrbitCamera, frame_grid};
    use crate::view::surface::cell_centre;
    use eifield_model::Boundary;
    use eifield_model::scene::ViewMode;

    /// A ray from `orbit`'s eye through the world point `target`.
    fn ray_through(orbit: &OrbitCamera, target: Vec3) -> (Vec3, Vec3) {
        let eye = orbit.transform().translation;
        (eye, (target - eye).normalize())
    }

    #[test]
    fn rays_through_cell_centres_pick_those_cells() {
        for (rows, cols) in [(7, 7), (5, 12), (1, 9), (64, 64)] {
            let grid = Grid::new(rows, cols, Boundary::Open);
            // A bumpy surface, so that the height refinement matters.
            let height = |k: usize| ((k * 7919) % 13) as f32 * 0.3 - 1.5;
            for orbit in [
                frame_grid(&grid, 1.6, ViewMode::Surface, 1.0),
                OrbitCamera {
                    yaw: 2.3,
                    pitch: 0.5,
                    ..frame_grid(&grid, 1.0, ViewMode::Surface, 1.0)
                },
                frame_grid(&grid, 1.6, ViewMode::Heatmap, 1.0),
            ] {
                for r in 0..rows {
                    for c in 0..cols {
                        let p = cell_centre(&grid, r, c);
                        let h = height(grid.index(r, c));
                        let (o, d) = ray_through(&orbit, Vec3::new(p.x, h, p.y));
                        let picked = ray_to_cell(o, d, &grid, height).map(|(cell, _)| cell);
                        // On a flat field every centre is found exactly.
                        let (o2, d2) = ray_through(&orbit, Vec3::new(p.x, 0.0, p.y));
                        assert_eq!(
                            ray_to_cell(o2, d2, &grid, |_| 0.0).map(|(cell, _)| cell),
                            Some((r, c))
                        );
                        // On the bumpy field the pick is the first column the ray
                        // enters, up to the march step at a column's corner.
                        let first =
                            first_column(o, d, &grid, height).expect("the ray meets some column");
                        let picked = picked.expect("the ray meets some column");
                        if picked != first.0 {
                            // Only a column the ray crosses for less than one march step may be missed.
                            let (entry, exit) =
                                column_span(o, d, &grid, first.0, height).expect("on the ray");
                            let step = PICK_STEP / Vec2::new(d.x, d.z).length();
                            assert!(
                                exit - entry <= step,
                                "{rows}x{cols}: picked {picked:?}, first column {first:?} crossed for {}",
                                exit - entry
                            );
                        }
                    }
                }
            }
        }
    }

    /// Where the ray enters and leaves the column of `cell` (up to its height), if it does.
    fn column_span(
        o: Vec3,
        d: Vec3,
        grid: &Grid,
        (r, c): (usize, usize),
        height: impl Fn(usize) -> f32,
    ) -> Option<(f32, f32)> {
        let p = cell_centre(grid, r, c);
        let h = height(grid.index(r, c));
        let (mut t0, mut t1) = (0.0f32, f32::INFINITY);
        for (oo, dd, min, max) in [
            (o.x, d.x, p.x - 0.5, p.x + 0.5),
            (o.y, d.y, -1e9, h),
            (o.z, d.z, p.y - 0.5, p.y + 0.5),
        ] {
            if dd.abs() < 1e-12 {
                if oo < min || oo > max {
                    return None;
                }
            } else {
                let (a, b) = ((min - oo) / dd, (max - oo) / dd);
                t0 = t0.max(a.min(b));
                t1 = t1.min(a.max(b));
            }
        }
        (t0 <= t1).then_some((t0, t1))
    }

    /// Brute force: the column the ray enters first.
    fn first_column(
        o: Vec3,
        d: Vec3,
        grid: &Grid,
        height: impl Fn(usize) -> f32 + Copy,
    ) -> Option<((usize, usize), f32)> {
        (0..grid.len())
            .filter_map(|k| {
                let cell = grid.position(k);
                column_span(o, d, grid, cell, height).map(|(t, _)| (cell, t))
            })
            .min_by(|a, b| a.1.total_cmp(&b.1))
    }

    #[test]
    fn grid_edges_are_inside_and_beyond_them_is_nothing() {
        let grid = Grid::new(4, 6, Boundary::Open);
        let orbit = frame_grid(&grid, 1.6, ViewMode::Heatmap, 1.0);
        let flat = |_: usize| 0.0;
        let (hw, hd) = (3.0f32, 2.0f32);
        let cases = [
            (Vec3::new(-hw + 0.01, 0.0, -hd + 0.01), Some((0, 0))),
            (Vec3::new(hw - 0.01, 0.0, hd - 0.01), Some((3, 5))),
            (Vec3::new(hw - 0.01, 0.0, -hd + 0.01), Some((0, 5))),
            (Vec3::new(-hw + 0.01, 0.0, hd - 0.01), Some((3, 0))),
            (Vec3::new(-hw - 0.01, 0.0, 0.0), None),
            (Vec3::new(0.0, 0.0, hd + 0.01), None),
            (Vec3::new(hw + 0.5, 0.0, -hd - 0.5), None),
        ];
        for (target, expected) in cases {
            let (o, d) = ray_through(&orbit, target);
            assert_eq!(
                ray_to_cell(o, d, &grid, flat).map(|(c, _)| c),
                expected,
                "{target}"
            );
        }
        // A ray grazing the slab of heights at a shallow angle terminates (it
        // once stalled a float-stepped march).
        let graze = ray_to_cell(
            Vec3::new(0.3, PICK_MARGIN * 0.999, -50.0),
            Vec3::new(0.0, -1e-7, 1.0).normalize(),
            &grid,
            flat,
        );
        assert!(graze.is_none_or(|(c, _)| c.0 < 4 && c.1 < 6));
        // A ray pointing away from the plane hits nothing.
        assert_eq!(
            ray_to_cell(Vec3::new(0.0, 5.0, 0.0), Vec3::Y, &grid, flat),
            None
        );
        assert_eq!(
            ray_to_cell(Vec3::new(0.0, 5.0, 0.0), Vec3::X, &grid, flat),
            None
        );
    }

    #[test]
    fn modifiers_choose_the_tool() {
        let settings = ClickSettings::default();
        assert_eq!(click_action(&settings, false, false), Tool::Perturb);
        assert_eq!(click_action(&settings, true, false), Tool::Stimulator);
        assert_eq!(click_action(&settings, false, true), Tool::Probe);
    }
}
