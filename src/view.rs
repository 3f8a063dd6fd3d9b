//! The view plugin: the whole lattice drawn as one height/colour mesh, with
//! smooth normals, a switch between E and I, and a flat top-down heat map mode.
//! Render systems read the simulation state and never write it.

use bevy::asset::RenderAssetUsages;
use bevy::mesh::{Indices, PrimitiveTopology, VertexAttributeValues};
use bevy::prelude::*;
use eifield_model::scene::{ColorMapName, ViewField, ViewSpec};
use eifield_model::{FieldScene, Grid};

pub use eifield_model::scene::ViewMode;

use crate::camera::{CameraPose, OrbitCamera, frame_grid, pose_relative_to};
use crate::colormap::{ColorMapKind, LUT_SIZE, lut_index};
use crate::sim::{Excitatory, GridPosition, Inhibitory, Neighbours};

/// Which population the surface shows.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum Field {
    /// Excitatory activity E.
    #[default]
    Excitatory,
    /// Inhibitory activity I.
    Inhibitory,
}

impl From<ViewField> for Field {
    fn from(field: ViewField) -> Self {
        match field {
            ViewField::E => Field::Excitatory,
            ViewField::I => Field::Inhibitory,
        }
    }
}

impl From<Field> for ViewField {
    fn from(field: Field) -> Self {
        match field {
            Field::Excitatory => ViewField::E,
            Field::Inhibitory => ViewField::I,
        }
    }
}

impl From<ColorMapName> for ColorMapKind {
    fn from(name: ColorMapName) -> Self {
        match name {
            ColorMapName::Viridis => ColorMapKind::Viridis,
            ColorMapName::Hot => ColorMapKind::Hot,
            ColorMapName::BlueWhiteRed => ColorMapKind::BlueWhiteRed,
        }
    }
}

impl From<ColorMapKind> for ColorMapName {
    fn from(kind: ColorMapKind) -> Self {
        match kind {
            ColorMapKind::Viridis => ColorMapName::Viridis,
            ColorMapKind::Hot => ColorMapName::Hot,
            ColorMapKind::BlueWhiteRed => ColorMapName::BlueWhiteRed,
        }
    }
}

/// What the surface shows and how.
#[derive(Resource, Clone, Debug, PartialEq)]
pub struct ViewSettings {
    /// E or I.
    pub field: Field,
    /// Surface or heat map.
    pub mode: ViewMode,
    /// Colour map.
    pub colormap: ColorMapKind,
    /// World units of height per unit of the field (surface mode).
    pub height_scale: f32,
    /// Field values mapped to the two ends of the colour map.
    pub range: (f32, f32),
}

/// Default colour range for E (its typical span in the notebook's regime).
pub const DEFAULT_E_RANGE: (f32, f32) = (-1.5, 2.5);
/// Default height per unit of E, in cell spacings.
pub const DEFAULT_HEIGHT_SCALE: f32 = 1.0;

impl Default for ViewSettings {
    fn default() -> Self {
        Self {
            field: Field::Excitatory,
            mode: ViewMode::Surface,
            colormap: ColorMapKind::Viridis,
            height_scale: DEFAULT_HEIGHT_SCALE,
            range: DEFAULT_E_RANGE,
        }
    }
}

impl ViewSettings {
    /// The settings a scene asks for in its `view` section, with defaults
    /// (and a height scale suited to the lattice) for what it leaves out.
    pub fn for_scene(scene: &FieldScene) -> Self {
        let spec = scene.view.clone().unwrap_or_default();
        let defaults = Self::default();
        Self {
            field: spec.field.map_or(defaults.field, Field::from),
            mode: spec.mode.unwrap_or(defaults.mode),
            colormap: spec.colormap.map_or(defaults.colormap, ColorMapKind::from),
            height_scale: spec
                .height_scale
                .map_or_else(|| default_height_scale(&scene.grid), |h| h as f32),
            range: spec
                .range
                .map_or(defaults.range, |(lo, hi)| (lo as f32, hi as f32)),
        }
    }

    /// These settings as a scene's `view` section, with the camera's pose
    /// relative to the framed view (`orbit` and `framed`), if given, and the
    /// recording settings of `base`.
    pub fn to_spec(
        &self,
        camera: Option<(&OrbitCamera, &OrbitCamera)>,
        base: &ViewSpec,
    ) -> ViewSpec {
        ViewSpec {
            mode: Some(self.mode),
            field: Some(self.field.into()),
            colormap: Some(self.colormap.into()),
            height_scale: Some(self.height_scale as f64),
            range: Some((self.range.0 as f64, self.range.1 as f64)),
            camera: camera
                .map(|(orbit, framed)| pose_relative_to(orbit, framed))
                .or(base.camera),
            time_per_frame: base.time_per_frame,
            fps: base.fps,
        }
    }
}

/// Shows `scene` as its `view` section asks: view settings and camera pose.
pub fn apply_scene_view(world: &mut World, scene: &FieldScene) {
    world.insert_resource(ViewSettings::for_scene(scene));
    let pose = scene
        .view
        .as_ref()
        .and_then(|v| v.camera)
        .unwrap_or_default();
    world.insert_resource(CameraPose(pose));
}

/// The view section describing what `world` shows now: the view settings and
/// the camera's pose relative to the framed view.
pub fn current_view_spec(world: &mut World, scene: &FieldScene) -> Option<ViewSpec> {
    let settings = world.get_resource::<ViewSettings>()?.clone();
    let base = scene.view.clone().unwrap_or_default();
    let camera = world
        .query::<(&Camera, &OrbitCamera)>()
        .iter(world)
        .next()
        .filter(|_| settings.mode == ViewMode::Surface)
        .map(|(camera, orbit)| {
            let aspect = camera
                .logical_viewport_size()
                .filter(|s| s.y > 0.0)
                .map_or(16.0 / 9.0, |s| s.x / s.y);
            let framed = frame_grid(&scene.grid, aspect, settings.mode, settings.height_scale);
            (*orbit, framed)
        });
    Some(settings.to_spec(camera.as_ref().map(|(o, f)| (o, f)), &base))
}

/// Marks the entity that carries the lattice mesh.
#[derive(Component, Debug, Clone, Copy)]
pub struct LatticeSurface {
    /// The grid the mesh was built for.
    pub grid: Grid,
}

/// The field values currently drawn, row-major (also used for picking heights and tooltips).
#[derive(Resource, Debug, Default, Clone)]
pub struct DrawnField {
    /// E per cell.
    pub e: Vec<f32>,
    /// I per cell.
    pub i: Vec<f32>,
    /// World height of each cell's vertex.
    pub heights: Vec<f32>,
}

/// The view's system sets in `Update`.
#[derive(SystemSet, Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum ViewSystems {
    /// Rebuild the mesh when the lattice changes shape.
    Rebuild,
    /// Write heights, colours and normals.
    Update,
}

/// Adds the lattice surface.
pub struct ViewPlugin;

impl Plugin for ViewPlugin {
    fn build(&self, app: &mut App) {
        app.init_resource::<ViewSettings>()
            .init_resource::<DrawnField>()
            .configure_sets(Update, (ViewSystems::Rebuild, ViewSystems::Update).chain())
            .add_systems(Update, rebuild_surface.in_set(ViewSystems::Rebuild))
            .add_systems(Update, update_surface.in_set(ViewSystems::Update));
    }
}

/// World position (x, z) of a cell's centre: cells are one unit apart and the
/// grid is centred on the origin; row 0 is at the far side (−z).
pub fn cell_centre(grid: &Grid, row: usize, col: usize) -> Vec2 {
    Vec2::new(
        col as f32 - (grid.cols as f32 - 1.0) * 0.5,
        row as f32 - (grid.rows as f32 - 1.0) * 0.5,
    )
}

/// The cell under world position (x, z), if any (each cell owns a unit square around its centre).
pub fn cell_at(grid: &Grid, x: f32, z: f32) -> Option<(usize, usize)> {
    let col = (x + (grid.cols as f32 - 1.0) * 0.5 + 0.5).floor();
    let row = (z + (grid.rows as f32 - 1.0) * 0.5 + 0.5).floor();
    if col < 0.0 || row < 0.0 || col >= grid.cols as f32 || row >= grid.rows as f32 {
        return None;
    }
    Some((row as usize, col as usize))
}

/// Vertex grid of the mesh: one vertex per cell, at least 2 × 2 so that a
/// single row or column still has area.
fn vertex_dims(grid: &Grid) -> (usize, usize) {
    (grid.rows.max(2), grid.cols.max(2))
}

/// The cell whose value a vertex shows.
fn vertex_cell(grid: &Grid, vr: usize, vc: usize) -> usize {
    grid.index(vr.min(grid.rows - 1), vc.min(grid.cols - 1))
}

/// Vertex (x, z) positions; a one-cell-wide direction spans its cell's square.
fn vertex_xz(grid: &Grid, vr: usize, vc: usize) -> Vec2 {
    let x = if grid.cols == 1 {
        vc as f32 - 0.5
    } else {
        cell_centre(grid, 0, vc).x
    };
    let z = if grid.rows == 1 {
        vr as f32 - 0.5
    } else {
        cell_centre(grid, vr, 0).y
    };
    Vec2::new(x, z)
}

/// A flat mesh for `grid` (heights, colours and normals are filled in each frame).
pub fn lattice_mesh(grid: &Grid) -> Mesh {
    let (vr, vc) = vertex_dims(grid);
    let mut positions = Vec::with_capacity(vr * vc);
    for r in 0..vr {
        for c in 0..vc {
            let p = vertex_xz(grid, r, c);
            positions.push([p.x, 0.0, p.y]);
        }
    }
    let mut indices = Vec::with_capacity((vr - 1) * (vc - 1) * 6);
    for r in 0..vr - 1 {
        for c in 0..vc - 1 {
            let a = (r * vc + c) as u32;
            let b = a + 1;
            let d = a + vc as u32;
            let e = d + 1;
            // Counter-clockwise seen from above (+y).
            indices.extend_from_slice(&[a, d, b, b, d, e]);
        }
    }
    let n = positions.len();
    Mesh::new(
        PrimitiveTopology::TriangleList,
        RenderAssetUsages::MAIN_WORLD | RenderAssetUsages::RENDER_WORLD,
    )
    .with_inserted_attribute(Mesh::ATTRIBUTE_POSITION, positions)
    .with_inserted_attribute(Mesh::ATTRIBUTE_NORMAL, vec![[0.0f32, 1.0, 0.0]; n])
    .with_inserted_attribute(Mesh::ATTRIBUTE_COLOR, vec![[1.0f32, 1.0, 1.0, 1.0]; n])
    .with_inserted_indices(Indices::U32(indices))
}

/// Smooth normals of a height field sampled on the vertex grid (central differences).
pub fn height_normals(vr: usize, vc: usize, heights: &[f32], out: &mut [[f32; 3]]) {
    for r in 0..vr {
        for c in 0..vc {
            let h = |rr: usize, cc: usize| heights[rr * vc + cc];
            let (c0, c1) = (c.saturating_sub(1), (c + 1).min(vc - 1));
            let (r0, r1) = (r.saturating_sub(1), (r + 1).min(vr - 1));
            let dx = (h(r, c1) - h(r, c0)) / (c1 - c0).max(1) as f32;
            let dz = (h(r1, c) - h(r0, c)) / (r1 - r0).max(1) as f32;
            let n = Vec3::new(-dx, 1.0, -dz).normalize();
            out[r * vc + c] = n.to_array();
        }
    }
}

/// A height scale that makes the surface's relief readable at any lattice size.
pub fn default_height_scale(grid: &Grid) -> f32 {
    (grid.rows.max(grid.cols) as f32 / 32.0).clamp(0.5, 16.0)
}

/// Spawns the surface for the current lattice (replacing an old one) when the grid changes.
fn rebuild_surface(
    mut commands: Commands,
    neighbours: Option<Res<Neighbours>>,
    surfaces: Query<(Entity, &LatticeSurface)>,
    mut meshes: ResMut<Assets<Mesh>>,
    mut materials: ResMut<Assets<StandardMaterial>>,
) {
    let Some(neighbours) = neighbours else {
        return;
    };
    let grid = neighbours.grid;
    if surfaces.iter().any(|(_, s)| s.grid == grid) {
        return;
    }
    for (entity, _) in &surfaces {
        commands.entity(entity).despawn();
    }
    let material = materials.add(StandardMaterial {
        base_color: Color::WHITE,
        perceptual_roughness: 0.7,
        double_sided: true,
        cull_mode: None,
        ..default()
    });
    commands.spawn((
        Name::new("lattice surface"),
        LatticeSurface { grid },
        Mesh3d(meshes.add(lattice_mesh(&grid))),
        MeshMaterial3d(material),
        Transform::default(),
    ));
}

/// Writes heights, colours and normals from the entities' state.
fn update_surface(
    settings: Res<ViewSettings>,
    mut drawn: ResMut<DrawnField>,
    cells: Query<(&GridPosition, &Excitatory, &Inhibitory)>,
    surfaces: Query<(&LatticeSurface, &Mesh3d, &MeshMaterial3d<StandardMaterial>)>,
    mut meshes: ResMut<Assets<Mesh>>,
    mut materials: ResMut<Assets<StandardMaterial>>,
    mut lut: Local<Option<(ColorMapKind, Vec<[f32; 4]>)>>,
) {
    let Ok((surface, mesh3d, material)) = surfaces.single() else {
        return;
    };
    let grid = surface.grid;
    let n = grid.len();
    drawn.e.resize(n, 0.0);
    drawn.i.resize(n, 0.0);
    drawn.heights.resize(n, 0.0);
    for (pos, e, i) in &cells {
        if pos.index < n {
            drawn.e[pos.index] = e.0 as f32;
            drawn.i[pos.index] = i.0 as f32;
        }
    }
    if lut
        .as_ref()
        .is_none_or(|(kind, _)| *kind != settings.colormap)
    {
        let table = settings
            .colormap
            .lut_srgb8()
            .into_iter()
            .map(|[r, g, b]| Color::srgb_u8(r, g, b).to_linear().to_f32_array())
            .collect();
        *lut = Some((settings.colormap, table));
    }
    let table = &lut.as_ref().expect("filled above").1;
    debug_assert_eq!(table.len(), LUT_SIZE);
    let flat = settings.mode == ViewMode::Heatmap;
    let drawn = &mut *drawn;
    let values = match settings.field {
        Field::Excitatory => &drawn.e,
        Field::Inhibitory => &drawn.i,
    };
    for (h, &v) in drawn.heights.iter_mut().zip(values) {
        *h = if flat || !v.is_finite() {
            0.0
        } else {
            v * settings.height_scale
        };
    }
    let Some(mut mesh) = meshes.get_mut(&mesh3d.0) else {
        return;
    };
    let (vr, vc) = vertex_dims(&grid);
    let vertex_heights: Vec<f32> = (0..vr * vc)
        .map(|k| drawn.heights[vertex_cell(&grid, k / vc, k % vc)])
        .collect();
    if let Some(VertexAttributeValues::Float32x3(positions)) =
        mesh.attribute_mut(Mesh::ATTRIBUTE_POSITION)
    {
        for (p, &h) in positions.iter_mut().zip(&vertex_heights) {
            p[1] = h;
        }
    }
    if let Some(VertexAttributeValues::Float32x4(colors)) =
        mesh.attribute_mut(Mesh::ATTRIBUTE_COLOR)
    {
        let (lo, hi) = settings.range;
        for (k, c) in colors.iter_mut().enumerate() {
            let v = values[vertex_cell(&grid, k / vc, k % vc)];
            *c = table[lut_index(v, lo, hi)];
        }
    }
    if let Some(VertexAttributeValues::Float32x3(normals)) =
        mesh.attribute_mut(Mesh::ATTRIBUTE_NORMAL)
    {
        height_normals(vr, vc, &vertex_heights, normals);
    }
    if let Some(mut mat) = materials.get_mut(&material.0)
        && mat.unlit != flat
    {
        mat.unlit = flat;
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use eifield_model::Boundary;

    #[test]
    fn cells_own_unit_squares_around_their_centres() {
        for (rows, cols) in [(7, 7), (3, 10), (1, 1), (1, 5)] {
            let grid = Grid::new(rows, cols, Boundary::Open);
            for r in 0..rows {
                for c in 0..cols {
                    let p = cell_centre(&grid, r, c);
                    assert_eq!(cell_at(&grid, p.x, p.y), Some((r, c)));
                    assert_eq!(cell_at(&grid, p.x + 0.49, p.y - 0.49), Some((r, c)));
                }
            }
            let first = cell_centre(&grid, 0, 0);
            assert_eq!(cell_at(&grid, first.x - 0.51, first.y), None);
            let last = cell_centre(&grid, rows - 1, cols - 1);
            assert_eq!(cell_at(&grid, last.x, last.y + 0.51), None);
        }
    }

    #[test]
    fn mesh_has_one_vertex_per_cell_and_two_triangles_per_quad() {
        let grid = Grid::new(4, 6, Boundary::Open);
        let mesh = lattice_mesh(&grid);
        assert_eq!(mesh.count_vertices(), 24);
        assert_eq!(mesh.indices().unwrap().len(), 3 * 5 * 6);
        let line = lattice_mesh(&Grid::new(1, 5, Boundary::Open));
        assert_eq!(line.count_vertices(), 10);
    }

    #[test]
    fn normals_tilt_away_from_a_slope() {
        let (vr, vc) = (3, 3);
        // Height rises with x.
        let heights: Vec<f32> = (0..9).map(|k| (k % 3) as f32).collect();
        let mut normals = vec![[0.0; 3]; 9];
        height_normals(vr, vc, &heights, &mut normals);
        let n = normals[4];
        assert!(n[0] < 0.0 && n[1] > 0.0 && n[2].abs() < 1e-6, "{n:?}");
    }
}
