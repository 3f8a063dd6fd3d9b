//! Where the surface shader reads the field and the colour table: storage
//! buffers, or, in a WebGL2 build (feature `webgl2`: WebGL2 has no storage
//! buffers), float textures read with `textureLoad` in the vertex shader.
//! The one place that knows which.

use bevy::asset::RenderAssetUsages;
use bevy::prelude::*;
use eifield_model::Grid;

#[cfg(not(feature = "webgl2"))]
pub use buffers::*;
#[cfg(feature = "webgl2")]
pub use textures::*;

/// `values` as bytes.
fn f32_bytes(values: &[f32]) -> Vec<u8> {
    bytemuck::cast_slice(values).to_vec()
}

#[cfg(not(feature = "webgl2"))]
mod buffers {
    use super::*;
    use bevy::render::storage::ShaderBuffer;

    /// A storage buffer of `f32`.
    pub type FieldStore = ShaderBuffer;

    /// No shader definition: the shader reads storage buffers.
    pub const SHADER_DEF: Option<&str> = None;

    /// The field of `grid`, one value per cell, all zero.
    pub fn field(grid: &Grid) -> FieldStore {
        store(&vec![0.0; grid.len()])
    }

    /// A colour table of `entries` RGBA colours, all white.
    pub fn colour_table(entries: usize) -> FieldStore {
        store(&vec![1.0; 4 * entries])
    }

    fn store(values: &[f32]) -> FieldStore {
        ShaderBuffer::new(&f32_bytes(values), RenderAssetUsages::default())
    }

    /// Replaces the values of `store` (as many as it was made with).
    pub fn write(store: &mut FieldStore, values: &[f32]) {
        store.data = Some(f32_bytes(values));
    }

    /// Every lattice fits a storage buffer the renderer can hold (the
    /// engines check the size they need).
    pub fn fits(_grid: &Grid) -> Result<(), String> {
        Ok(())
    }

    /// The buffer a GPU engine on the renderer's device may fill directly.
    pub fn feed_target(store: &Handle<FieldStore>) -> Option<AssetId<ShaderBuffer>> {
        Some(store.id())
    }
}

#[cfg(feature = "webgl2")]
mod textures {
    use super::*;
    use bevy::render::render_resource::{Extent3d, TextureDimension, TextureFormat};
    use bevy::render::storage::ShaderBuffer;

    /// A float texture: one `R32Float` texel per cell, or one `Rgba32Float`
    /// texel per colour.
    pub type FieldStore = Image;

    /// Tells the shader to read textures.
    pub const SHADER_DEF: Option<&str> = Some("FIELD_TEXTURES");

    /// The field of `grid`, one texel per cell (`cols` × `rows`), all zero.
    pub fn field(grid: &Grid) -> FieldStore {
        store(grid.cols, grid.rows, TextureFormat::R32Float, 1)
    }

    /// A colour table of `entries` RGBA colours (`entries` × 1), all white.
    pub fn colour_table(entries: usize) -> FieldStore {
        let mut table = store(entries, 1, TextureFormat::Rgba32Float, 4);
        write(&mut table, &vec![1.0; 4 * entries]);
        table
    }

    fn store(width: usize, height: usize, format: TextureFormat, channels: usize) -> FieldStore {
        let size = Extent3d {
            width: width as u32,
            height: height as u32,
            depth_or_array_layers: 1,
        };
        Image::new(
            size,
            TextureDimension::D2,
            f32_bytes(&vec![0.0; width * height * channels]),
            format,
            RenderAssetUsages::default(),
        )
    }

    /// Replaces the texels of `store` (as many as it was made with).
    pub fn write(store: &mut FieldStore, values: &[f32]) {
        store.data = Some(f32_bytes(values));
    }

    /// The widest texture WebGL2 promises (its renderers may hold more;
    /// Bevy asks for no more than this).
    pub const MAX_SIDE: usize = 2048;

    /// Whether the lattice fits one texture: at most [`MAX_SIDE`] cells a side.
    pub fn fits(grid: &Grid) -> Result<(), String> {
        if grid.rows.max(grid.cols) > MAX_SIDE {
            return Err(format!(
                "grid: {} × {} cells; on WebGL2 the page draws at most {MAX_SIDE} a side",
                grid.rows, grid.cols
            ));
        }
        Ok(())
    }

    /// None: a GPU engine needs WebGPU, so none feeds a WebGL2 surface.
    pub fn feed_target(_store: &Handle<FieldStore>) -> Option<AssetId<ShaderBuffer>> {
        None
    }
}
