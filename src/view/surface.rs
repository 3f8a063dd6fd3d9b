//! The surface plugin: the whole lattice drawn as one flat grid mesh that a
//! vertex shader displaces by the field (height and colour from E or I, smooth
//! normals), with a flat top-down heat map mode. Each frame uploads only the
//! field values; the mesh itself never changes. Render systems read the
//! simulation state and never write it.

use std::path::{Path, PathBuf};

use bevy::asset::RenderAssetUsages;
use bevy::asset::io::embedded::EmbeddedAssetRegistry;
use bevy::camera::visibility::NoFrustumCulling;
use bevy::mesh::{Indices, MeshVertexBufferLayoutRef, PrimitiveTopology};
use bevy::pbr::{MaterialPipeline, MaterialPipelineKey};
use bevy::prelude::*;
use bevy::render::render_resource::{
    AsBindGroup, RenderPipelineDescriptor, ShaderType, SpecializedMeshPipelineError,
};
use bevy::shader::ShaderRef;
use eifield_model::Grid;
use eifield_model::scene::{ColorMapName, ViewField};

pub use eifield_model::scene::ViewMode;

use super::colormap::{ColorMapLut, LUT_SIZE};
use super::field_store::{self, FieldStore};
use super::gpu_feed::{FeedSource, GpuSurfaceFeed, Snapshots};
use super::settings::{DEFAULT_E_RANGE, ViewSettings, ViewSystems};
use crate::sim::backend::{FieldEngine, GpuDevice};
use crate::sim::probes::ActivationTimes;
use crate::sim::{Lattice, Neighbours};

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

/// The value shown for cells not yet activated on the activation map.
const NOT_YET_ACTIVATED: f32 = 1e30;

/// The shader that displaces and colours the lattice mesh.
const SURFACE_SHADER: &str = "embedded://eifield/shaders/lattice_surface.wgsl";
/// Where [`SURFACE_SHADER`] lives in the embedded asset source.
const SURFACE_SHADER_PATH: &str = "eifield/shaders/lattice_surface.wgsl";

/// Direction towards the light of the surface shading.
const LIGHT_DIRECTION: Vec3 = Vec3::new(-0.4, 1.0, 0.6);

/// The uniform part of [`LatticeSurfaceMaterial`].
#[derive(ShaderType, Debug, Clone, Copy, PartialEq)]
pub struct SurfaceParams {
    /// Lattice rows.
    pub rows: u32,
    /// Lattice columns.
    pub cols: u32,
    /// Mesh vertex rows (at least 2).
    pub vertex_rows: u32,
    /// Mesh vertex columns (at least 2).
    pub vertex_cols: u32,
    /// World height per unit of the field.
    pub height_scale: f32,
    /// Field value at the low end of the colour map.
    pub low: f32,
    /// Field value at the high end of the colour map.
    pub high: f32,
    /// 1 for the flat, unlit heat map; 0 for the lit surface.
    pub flat_shading: u32,
    /// Direction towards the light (w unused).
    pub light_direction: Vec4,
}

/// The material of the lattice surface: the field values per cell and the
/// colour table, read by the vertex shader from storage buffers, or from
/// float textures where the renderer has no storage buffers (feature
/// `webgl2`; see [`field_store`]).
#[derive(Asset, TypePath, AsBindGroup, Debug, Clone)]
pub struct LatticeSurfaceMaterial {
    /// Shape, height scale, colour range and shading.
    #[uniform(0)]
    pub params: SurfaceParams,
    /// The shown field, one `f32` per cell: row-major, or one texel per
    /// cell (`cols` × `rows`).
    #[cfg_attr(not(feature = "webgl2"), storage(1, read_only))]
    #[cfg_attr(
        feature = "webgl2",
        texture(1, sample_type = "float", filterable = false)
    )]
    pub field: Handle<FieldStore>,
    /// The colour map as linear RGBA, low to high (a texture of
    /// `LUT_SIZE` × 1 texels on WebGL2).
    #[cfg_attr(not(feature = "webgl2"), storage(2, read_only))]
    #[cfg_attr(
        feature = "webgl2",
        texture(2, sample_type = "float", filterable = false)
    )]
    pub lut: Handle<FieldStore>,
}

impl Material for LatticeSurfaceMaterial {
    fn vertex_shader() -> ShaderRef {
        SURFACE_SHADER.into()
    }

    fn fragment_shader() -> ShaderRef {
        SURFACE_SHADER.into()
    }

    fn specialize(
        _pipeline: &MaterialPipeline,
        descriptor: &mut RenderPipelineDescriptor,
        _layout: &MeshVertexBufferLayoutRef,
        _key: MaterialPipelineKey<Self>,
    ) -> Result<(), SpecializedMeshPipelineError> {
        // The surface is seen from both sides.
        descriptor.primitive.cull_mode = None;
        if let Some(def) = field_store::SHADER_DEF {
            descriptor.vertex.shader_defs.push(def.into());
            if let Some(fragment) = descriptor.fragment.as_mut() {
                fragment.shader_defs.push(def.into());
            }
        }
        Ok(())
    }
}

/// Adds the lattice surface.
pub struct SurfacePlugin;

impl Plugin for SurfacePlugin {
    fn build(&self, app: &mut App) {
        // From the top-level assets/ folder, compiled into the binary.
        app.world_mut()
            .resource_mut::<EmbeddedAssetRegistry>()
            .insert_asset(
                PathBuf::new(),
                Path::new(SURFACE_SHADER_PATH),
                include_bytes!("../../assets/shaders/lattice_surface.wgsl").as_slice(),
            );
        app.add_plugins(MaterialPlugin::<LatticeSurfaceMaterial>::default())
            .init_resource::<ViewSettings>()
            .init_resource::<DrawnField>()
            .configure_sets(
                Update,
                (
                    ViewSystems::Rebuild,
                    ViewSystems::Camera,
                    ViewSystems::Upload,
                )
                    .chain(),
            )
            .add_systems(Update, rebuild_surface.in_set(ViewSystems::Rebuild))
            .add_systems(Update, update_surface.in_set(ViewSystems::Upload));
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

/// A flat mesh for `grid`, one vertex per cell (the shader displaces it).
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
    Mesh::new(
        PrimitiveTopology::TriangleList,
        RenderAssetUsages::RENDER_WORLD,
    )
    .with_inserted_attribute(Mesh::ATTRIBUTE_POSITION, positions)
    .with_inserted_indices(Indices::U32(indices))
}

/// Spawns the surface for the current lattice (replacing an old one) when the grid changes.
fn rebuild_surface(
    mut commands: Commands,
    neighbours: Option<Res<Neighbours>>,
    surfaces: Query<(Entity, &LatticeSurface)>,
    mut meshes: ResMut<Assets<Mesh>>,
    mut materials: ResMut<Assets<LatticeSurfaceMaterial>>,
    mut buffers: ResMut<Assets<FieldStore>>,
) {
    let Some(neighbours) = neighbours else {
        return;
    };
    let grid = neighbours.grid();
    if surfaces.iter().any(|(_, s)| s.grid == grid) {
        return;
    }
    for (entity, _) in &surfaces {
        commands.entity(entity).despawn();
    }
    let (vr, vc) = vertex_dims(&grid);
    let material = materials.add(LatticeSurfaceMaterial {
        params: SurfaceParams {
            rows: grid.rows as u32,
            cols: grid.cols as u32,
            vertex_rows: vr as u32,
            vertex_cols: vc as u32,
            height_scale: 0.0,
            low: DEFAULT_E_RANGE.0,
            high: DEFAULT_E_RANGE.1,
            flat_shading: 0,
            light_direction: LIGHT_DIRECTION.extend(0.0),
        },
        field: buffers.add(field_store::field(&grid)),
        lut: buffers.add(field_store::colour_table(LUT_SIZE)),
    });
    commands.spawn((
        Name::new("lattice surface"),
        LatticeSurface { grid },
        Mesh3d(meshes.add(lattice_mesh(&grid))),
        MeshMaterial3d(material),
        Transform::default(),
        // The mesh is flat on the CPU; its displaced height is only known to the shader.
        NoFrustumCulling,
    ));
}

/// What the drawn values were last computed from: the GPU engine's copy
/// count, the field, the height scale's bits, flatness and the grid.
type DrawnKey = (Option<u64>, ViewField, u32, bool, Grid);

/// Uploads the shown field from the lattice state, and the shading settings
/// when they change; keeps [`DrawnField`] for picking and tooltips.
#[allow(clippy::too_many_arguments)]
fn update_surface(
    settings: Res<ViewSettings>,
    mut drawn: ResMut<DrawnField>,
    lattice: Option<Res<Lattice>>,
    surfaces: Query<(&LatticeSurface, &MeshMaterial3d<LatticeSurfaceMaterial>)>,
    mut materials: ResMut<Assets<LatticeSurfaceMaterial>>,
    mut buffers: ResMut<Assets<FieldStore>>,
    mut shown_map: Local<Option<(AssetId<LatticeSurfaceMaterial>, ColorMapName)>>,
    (activations, mut overlay): (Option<Res<ActivationTimes>>, Local<Vec<f32>>),
    mut drawn_for: Local<Option<DrawnKey>>,
    (gpu, mut feed, mut snapshots): (
        Option<Res<GpuDevice>>,
        ResMut<GpuSurfaceFeed>,
        ResMut<Snapshots>,
    ),
) {
    let Ok((surface, material)) = surfaces.single() else {
        return;
    };
    let grid = surface.grid;
    let n = grid.len();
    drawn.e.resize(n, 0.0);
    drawn.i.resize(n, 0.0);
    drawn.heights.resize(n, 0.0);
    let lattice = lattice.filter(|l| l.state().grid.len() == n);
    let activation_map = activations.filter(|_| settings.activation_map);
    let flat = settings.mode == ViewMode::Heatmap || activation_map.is_some();
    // Fed from the GPU, the surface needs nothing from the CPU; the drawn
    // values there serve picking and tooltips only, and change only when a
    // copy of the state arrives or the view changes.
    let copies = lattice.as_ref().and_then(|l| l.engine().copies());
    let fed_from_gpu = copies.is_some()
        && activation_map.is_none()
        && gpu.as_deref().is_some_and(|g| g.renderer_shares_it);
    let key = (
        copies,
        settings.field,
        settings.height_scale.to_bits(),
        flat,
        grid,
    );
    let unchanged = fed_from_gpu && *drawn_for == Some(key);
    *drawn_for = Some(key);
    if let Some(lattice) = lattice.as_ref().filter(|_| !unchanged) {
        let state = lattice.state();
        for (drawn, &value) in drawn.e.iter_mut().zip(state.e) {
            *drawn = value as f32;
        }
        for (drawn, &value) in drawn.i.iter_mut().zip(state.i) {
            *drawn = value as f32;
        }
    }
    let drawn = &mut *drawn;
    let mut range = settings.range;
    let values = match (&activation_map, settings.field) {
        (Some(times), _) => {
            // Cells not yet activated lie above the range: the map's top colour.
            overlay.clear();
            overlay.extend((0..n).map(|k| {
                times
                    .first
                    .get(k)
                    .filter(|t| t.is_finite())
                    .map_or(NOT_YET_ACTIVATED, |&t| t as f32)
            }));
            range = (0.0, (times.latest() as f32).max(1e-3));
            &*overlay
        }
        (None, ViewField::E) => &drawn.e,
        (None, ViewField::I) => &drawn.i,
    };
    if !unchanged {
        for (h, &v) in drawn.heights.iter_mut().zip(values) {
            *h = if flat || !v.is_finite() {
                0.0
            } else {
                v * settings.height_scale
            };
        }
    }
    let Some(current) = materials.get(&material.0) else {
        return;
    };
    // A GPU engine on the renderer's device feeds E or I to the surface
    // directly; the activation map and other engines go through the CPU.
    let source = match (&lattice, gpu.as_deref(), &activation_map) {
        (Some(lattice), Some(gpu), None) if gpu.renderer_shares_it => match lattice.engine() {
            FieldEngine::Gpu(engine) => field_store::feed_target(&current.field).map(|target| {
                let engine = &engine.engine;
                let (e, i) = engine.state_buffers();
                let shown = if settings.field == ViewField::E { e } else { i };
                let bytes = (n * engine.precision().bytes()) as u64;
                FeedSource {
                    state: snapshots.take(engine.context(), shown, bytes),
                    precision: engine.precision(),
                    cells: n as u32,
                    target,
                }
            }),
            FieldEngine::Cpu(_) | FieldEngine::CpuSingle(_) => None,
        },
        _ => None,
    };
    if source.is_none()
        && let Some(mut field) = buffers.get_mut(&current.field)
    {
        field_store::write(&mut field, values);
    }
    feed.0 = source;
    let params = SurfaceParams {
        height_scale: settings.height_scale,
        low: range.0,
        high: range.1,
        flat_shading: u32::from(flat),
        ..current.params
    };
    let lut = current.lut.clone();
    if params != current.params
        && let Some(mut m) = materials.get_mut(&material.0)
    {
        m.params = params;
    }
    let key = (material.0.id(), settings.colormap);
    if *shown_map != Some(key)
        && let Some(mut buffer) = buffers.get_mut(&lut)
    {
        let table: Vec<f32> = settings
            .colormap
            .lut_srgb8()
            .into_iter()
            .flat_map(|[r, g, b]| Color::srgb_u8(r, g, b).to_linear().to_f32_array())
            .collect();
        field_store::write(&mut buffer, &table);
        *shown_map = Some(key);
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
}
