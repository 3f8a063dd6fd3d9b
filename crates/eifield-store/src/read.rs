//! A run folder read back, whichever format it holds: its sample times and
//! its E and I, whole or one sample.

use std::path::{Path, PathBuf};

use eifield_model::Precision;
use eifield_model::scene::OutputFormat;

use crate::zarr::{STORE_NAME, ZarrRun};
use crate::{Layout, StoreError};

/// The recorded arrays of a run folder.
pub struct StoredRun {
    dir: PathBuf,
    /// Which files hold them.
    pub format: OutputFormat,
    /// What they record of which lattice.
    pub layout: Layout,
    /// Samples in every array.
    pub samples: u64,
    zarr: Option<ZarrRun>,
}

impl StoredRun {
    /// Opens the arrays of the run folder `dir` of a `rows × cols` lattice:
    /// `run.zarr` if there is one, else `E.npy`, `I.npy` and `t.npy`.
    pub fn open(dir: &Path, rows: usize, cols: usize) -> Result<Self, StoreError> {
        let root = dir.join(STORE_NAME);
        if root.exists() {
            let zarr = ZarrRun::open(&root)?;
            if (zarr.layout.rows, zarr.layout.cols) != (rows, cols) {
                return Err(StoreError::new(
                    &root,
                    format!(
                        "it records a {} × {} lattice; the run's scene has {rows} × {cols}",
                        zarr.layout.rows, zarr.layout.cols
                    ),
                ));
            }
            return Ok(Self {
                dir: dir.to_owned(),
                format: OutputFormat::Zarr,
                layout: zarr.layout,
                samples: zarr.samples,
                zarr: Some(zarr),
            });
        }
        let cells = rows * cols;
        let mut dtype = Precision::F64;
        let mut samples = u64::MAX;
        for (name, width) in [("E.npy", cells), ("I.npy", cells), ("t.npy", 0)] {
            let (shape, precision) = npy_header(&dir.join(name))?;
            let expected: &[u64] = if width == 0 {
                &[shape[0]]
            } else {
                &[shape[0], width as u64]
            };
            if shape != expected {
                return Err(StoreError::new(
                    dir.join(name),
                    format!(
                        "has shape {shape:?}; expected [samples{}]",
                        if width == 0 {
                            String::new()
                        } else {
                            format!(", {width}")
                        }
                    ),
                ));
            }
            if width != 0 {
                dtype = precision;
            }
            samples = samples.min(shape[0]);
        }
        Ok(Self {
            dir: dir.to_owned(),
            format: OutputFormat::Npy,
            layout: Layout::full(rows, cols, dtype),
            samples,
            zarr: None,
        })
    }

    /// The sample times.
    pub fn times(&self) -> Result<Vec<f64>, StoreError> {
        match &self.zarr {
            Some(zarr) => zarr.times(),
            None => {
                let mut t = read_npy(&self.dir.join("t.npy"))?;
                t.truncate(self.samples as usize);
                Ok(t)
            }
        }
    }

    /// Every sample of `E` or `I` (`name`), as f64, `[sample, kept cell]`.
    pub fn read(&self, name: &str) -> Result<Vec<f64>, StoreError> {
        match &self.zarr {
            Some(zarr) => zarr.read(name, 0..self.samples),
            None => {
                let mut values = read_npy(&self.dir.join(format!("{name}.npy")))?;
                values.truncate(self.samples as usize * self.layout.kept_cells());
                Ok(values)
            }
        }
    }

    /// Sample `index` of `E` or `I` (`name`), as f64 (only it is read).
    pub fn sample(&self, name: &str, index: u64) -> Result<Vec<f64>, StoreError> {
        match &self.zarr {
            Some(zarr) => zarr.read(name, index..index + 1),
            None => {
                let path = self.dir.join(format!("{name}.npy"));
                eifield_model::npy::read_row(
                    &path,
                    self.layout.kept_cells(),
                    self.layout.dtype,
                    index,
                )
                .map_err(|e| StoreError::new(&path, e))
            }
        }
    }
}

/// The shape and element type of a float64 or float32 `.npy` file.
fn npy_header(path: &Path) -> Result<(Vec<u64>, Precision), StoreError> {
    let err = |e: &dyn std::fmt::Display| StoreError::new(path, e);
    let file = std::fs::File::open(path).map_err(|e| err(&e))?;
    let header = npyz::NpyFile::new(std::io::BufReader::new(file)).map_err(|e| err(&e))?;
    let precision = match header.dtype() {
        npyz::DType::Plain(t) if t.to_string() == "<f8" => Precision::F64,
        npyz::DType::Plain(t) if t.to_string() == "<f4" => Precision::F32,
        other => {
            return Err(err(&format!(
                "holds {}; expected little-endian float64 or float32",
                other.descr()
            )));
        }
    };
    if header.order() != npyz::Order::C {
        return Err(err(&"is in Fortran order; expected C order"));
    }
    Ok((header.shape().to_vec(), precision))
}

/// A float64 or float32 `.npy` file's values, as f64.
fn read_npy(path: &Path) -> Result<Vec<f64>, StoreError> {
    let err = |e: &dyn std::fmt::Display| StoreError::new(path, e);
    let (_, precision) = npy_header(path)?;
    let bytes = std::fs::read(path).map_err(|e| err(&e))?;
    let npy = npyz::NpyFile::new(&bytes[..]).map_err(|e| err(&e))?;
    match precision {
        Precision::F64 => npy.into_vec::<f64>().map_err(|e| err(&e)),
        Precision::F32 => npy
            .into_vec::<f32>()
            .map(|v| v.into_iter().map(f64::from).collect())
            .map_err(|e| err(&e)),
    }
}
