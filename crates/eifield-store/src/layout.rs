//! What a run records of its lattice (every `stride`-th cell in each
//! direction, in f64 or f32) and the Zarr chunk shape that suits it.

use eifield_model::Precision;

/// Bytes of the chunk row a Zarr writer holds (E and I together) before it
/// writes it: bounds its memory at any lattice size.
pub const CHUNK_ROW_BUDGET: usize = 256 << 20;
/// The size a chunk aims at (uncompressed).
pub const TARGET_CHUNK_BYTES: usize = 1 << 20;
/// The most samples in one chunk.
pub const MAX_CHUNK_SAMPLES: usize = 256;
/// Tile sides, in cells, that a chunk's rows and columns span at least and
/// at most.
pub const TILE_SIDES: (usize, usize) = (64, 512);

/// The recorded part of a `rows × cols` lattice.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Layout {
    /// The lattice's rows.
    pub rows: usize,
    /// The lattice's columns.
    pub cols: usize,
    /// Every `stride`-th row and column is kept (from the first).
    pub stride: usize,
    /// The element type of the recorded E and I.
    pub dtype: Precision,
}

impl Layout {
    /// Every cell, in `dtype`.
    pub fn full(rows: usize, cols: usize, dtype: Precision) -> Self {
        Self {
            rows,
            cols,
            stride: 1,
            dtype,
        }
    }

    /// Rows kept.
    pub fn kept_rows(&self) -> usize {
        self.rows.div_ceil(self.stride)
    }

    /// Columns kept.
    pub fn kept_cols(&self) -> usize {
        self.cols.div_ceil(self.stride)
    }

    /// Cells kept per sample.
    pub fn kept_cells(&self) -> usize {
        self.kept_rows() * self.kept_cols()
    }

    /// Bytes of one element.
    pub fn element_bytes(&self) -> usize {
        match self.dtype {
            Precision::F64 => 8,
            Precision::F32 => 4,
        }
    }

    /// The Zarr chunk shape `[samples, rows, cols]`: about
    /// [`TARGET_CHUNK_BYTES`], as many samples as [`CHUNK_ROW_BUDGET`]
    /// allows for a row of chunks across the lattice (at most
    /// [`MAX_CHUNK_SAMPLES`]), over square tiles (a power of two between
    /// the [`TILE_SIDES`], no larger than the lattice needs).
    pub fn chunk_shape(&self) -> [usize; 3] {
        let bytes = self.element_bytes();
        let per_sample = 2 * self.kept_cells() * bytes;
        let samples = (CHUNK_ROW_BUDGET / per_sample.max(1)).clamp(1, MAX_CHUNK_SAMPLES);
        let samples = prev_power_of_two(samples);
        let side = ((TARGET_CHUNK_BYTES / (samples * bytes)) as f64).sqrt() as usize;
        let side = prev_power_of_two(side.clamp(TILE_SIDES.0, TILE_SIDES.1));
        let fit = |n: usize| side.min(n.next_power_of_two());
        [samples, fit(self.kept_rows()), fit(self.kept_cols())]
    }

    /// Copies the kept cells of a full lattice `state` into `out` (row-major,
    /// `row_pitch` elements from one kept row to the next), converted to the
    /// element type `T`.
    pub fn gather<T: Element>(&self, state: &[f64], out: &mut [T], row_pitch: usize) {
        debug_assert_eq!(state.len(), self.rows * self.cols);
        let kept_cols = self.kept_cols();
        for (k, row) in (0..self.rows).step_by(self.stride).enumerate() {
            let src = &state[row * self.cols..(row + 1) * self.cols];
            let dst = &mut out[k * row_pitch..k * row_pitch + kept_cols];
            if self.stride == 1 {
                for (d, &s) in dst.iter_mut().zip(src) {
                    *d = T::from_f64(s);
                }
            } else {
                for (d, &s) in dst.iter_mut().zip(src.iter().step_by(self.stride)) {
                    *d = T::from_f64(s);
                }
            }
        }
    }
}

/// The NumPy name of an element type (`float64`, `float32`), as manifests
/// and attributes give it.
pub fn dtype_name(dtype: Precision) -> &'static str {
    match dtype {
        Precision::F64 => "float64",
        Precision::F32 => "float32",
    }
}

/// The largest power of two not above `n` (1 for 0).
fn prev_power_of_two(n: usize) -> usize {
    if n <= 1 {
        1
    } else {
        1 << (usize::BITS - 1 - n.leading_zeros())
    }
}

/// An element type of the recorded arrays.
pub trait Element: Copy + Send + Sync + 'static {
    /// The value nearest `v`.
    fn from_f64(v: f64) -> Self;
    /// As f64 (exact).
    fn to_f64(self) -> f64;
}

impl Element for f64 {
    fn from_f64(v: f64) -> Self {
        v
    }
    fn to_f64(self) -> f64 {
        self
    }
}

impl Element for f32 {
    fn from_f64(v: f64) -> Self {
        v as f32
    }
    fn to_f64(self) -> f64 {
        f64::from(self)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn chunks_stay_near_a_megabyte_and_a_chunk_row_within_its_budget() {
        for side in [7, 64, 256, 1024, 2048, 4096, 8192] {
            for dtype in [Precision::F64, Precision::F32] {
                let layout = Layout::full(side, side, dtype);
                let [t, r, c] = layout.chunk_shape();
                let chunk = t * r * c * layout.element_bytes();
                assert!(chunk <= 8 * TARGET_CHUNK_BYTES, "{side} {dtype:?}: {chunk}");
                if side >= 1024 {
                    assert!(chunk >= TARGET_CHUNK_BYTES / 4, "{side} {dtype:?}: {chunk}");
                }
                let row = 2 * t * layout.kept_cells() * layout.element_bytes();
                assert!(t == 1 || row <= CHUNK_ROW_BUDGET, "{side} {dtype:?}: {row}");
                assert!(r <= side.next_power_of_two() && c <= side.next_power_of_two());
            }
        }
        assert_eq!(
            Layout::full(7, 7, Precision::F64).chunk_shape(),
            [256, 8, 8]
        );
    }

    #[test]
    fn a_stride_keeps_every_nth_cell_from_the_first() {
        let layout = Layout {
            rows: 5,
            cols: 7,
            stride: 3,
            dtype: Precision::F32,
        };
        assert_eq!((layout.kept_rows(), layout.kept_cols()), (2, 3));
        let state: Vec<f64> = (0..35).map(f64::from).collect();
        let mut out = vec![f32::NAN; 2 * 4];
        layout.gather(&state, &mut out, 4);
        assert_eq!(&out[..3], &[0.0, 3.0, 6.0]);
        assert_eq!(&out[4..7], &[21.0, 24.0, 27.0]);
        assert!(out[3].is_nan() && out[7].is_nan());
    }
}
