//! Per-cell arrays of a scene (explicit drives, an explicit initial state):
//! in a `.npy` file beside the scene file, named by its path relative to
//! the scene file (what runs and saved scenes write, so that a scene stays
//! small at any lattice size), or inline as a list (older scenes, and
//! scenes written by hand).

use std::path::{Path, PathBuf};

use serde::de::{self, SeqAccess, Visitor};
use serde::{Deserialize, Deserializer, Serialize, Serializer};

/// One value per cell, row-major (see the module docs).
#[derive(Clone, Debug, Default)]
pub struct CellArray {
    values: Vec<f64>,
    /// The `.npy` file that holds the values, if they live in one
    /// (absolute once read, relative to the scene file as written).
    file: Option<PathBuf>,
}

impl CellArray {
    /// Values kept in memory (written inline until stored beside a scene).
    pub fn new(values: Vec<f64>) -> Self {
        Self { values, file: None }
    }

    /// The file the values live in, if any.
    pub fn file(&self) -> Option<&Path> {
        self.file.as_deref()
    }

    /// Whether the values still have to be read from their file.
    pub fn is_unread(&self) -> bool {
        self.file.is_some() && self.values.is_empty()
    }

    /// Keeps the values in memory only (written inline from now on).
    pub fn detach(&mut self) {
        self.file = None;
    }

    /// Why the values are missing, if their file is not read yet.
    pub fn unread_reason(&self) -> Option<String> {
        self.is_unread().then(|| {
            format!(
                "{} is not read: a scene that names .npy files is loaded from its file \
                 (the paths are relative to it)",
                self.file.as_deref().unwrap_or(Path::new("")).display()
            )
        })
    }

    /// The values, taken out.
    pub fn into_values(self) -> Vec<f64> {
        self.values
    }

    /// Reads the values of a named file that is not read yet (a relative
    /// path from `base`), checking that it holds `cells` values.
    pub fn read(&mut self, base: &Path, cells: usize) -> Result<(), String> {
        let Some(file) = self.file.clone().filter(|_| self.values.is_empty()) else {
            return Ok(());
        };
        let path = if file.is_absolute() {
            file
        } else {
            base.join(file)
        };
        let values = read_values(&path).map_err(|e| format!("{}: {e}", path.display()))?;
        if values.len() != cells {
            return Err(format!(
                "{} holds {} values; the lattice has {cells} (rows × cols)",
                path.display(),
                values.len()
            ));
        }
        self.values = values;
        self.file = Some(path);
        Ok(())
    }

    /// Writes the values to `dir/name` as a `[rows, cols]` float64 array
    /// and names that file (relative) from now on.
    pub fn store(&mut self, dir: &Path, name: &str, shape: [usize; 2]) -> Result<(), String> {
        let path = dir.join(name);
        crate::npy::write_array(&path, &shape, &self.values)
            .map_err(|e| format!("cannot write {}: {e}", path.display()))?;
        self.file = Some(PathBuf::from(name));
        Ok(())
    }
}

/// The float values of a `.npy` file (float64 or float32, any shape).
fn read_values(path: &Path) -> Result<Vec<f64>, String> {
    let bytes = std::fs::read(path).map_err(|e| e.to_string())?;
    let npy = npyz::NpyFile::new(&bytes[..]).map_err(|e| e.to_string())?;
    match npy.dtype() {
        npyz::DType::Plain(t) if t.type_char() == npyz::TypeChar::Float && t.size_field() == 8 => {
            npy.into_vec::<f64>().map_err(|e| e.to_string())
        }
        npyz::DType::Plain(t) if t.type_char() == npyz::TypeChar::Float && t.size_field() == 4 => {
            let single = npy.into_vec::<f32>().map_err(|e| e.to_string())?;
            Ok(single.into_iter().map(f64::from).collect())
        }
        other => Err(format!(
            "expected a float64 or float32 array, found dtype {}",
            other.descr()
        )),
    }
}

impl From<Vec<f64>> for CellArray {
    fn from(values: Vec<f64>) -> Self {
        Self::new(values)
    }
}

impl std::ops::Deref for CellArray {
    type Target = Vec<f64>;
    fn deref(&self) -> &Vec<f64> {
        &self.values
    }
}

impl std::ops::DerefMut for CellArray {
    /// Editing the values detaches them from their file.
    fn deref_mut(&mut self) -> &mut Vec<f64> {
        self.file = None;
        &mut self.values
    }
}

impl PartialEq for CellArray {
    /// The same values, wherever they live; unread files by their path.
    fn eq(&self, other: &Self) -> bool {
        if self.is_unread() || other.is_unread() {
            return self.file == other.file && self.values == other.values;
        }
        self.values == other.values
    }
}

impl Serialize for CellArray {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        match &self.file {
            Some(file) => s.serialize_str(&file.to_string_lossy()),
            None => self.values.serialize(s),
        }
    }
}

impl<'de> Deserialize<'de> for CellArray {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct Either;
        impl<'de> Visitor<'de> for Either {
            type Value = CellArray;
            fn expecting(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
                f.write_str("a list of numbers or the path of a .npy file")
            }
            fn visit_str<E: de::Error>(self, path: &str) -> Result<CellArray, E> {
                Ok(CellArray {
                    values: Vec::new(),
                    file: Some(PathBuf::from(path)),
                })
            }
            fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<CellArray, A::Error> {
                let mut values = Vec::with_capacity(seq.size_hint().unwrap_or(0));
                while let Some(v) = seq.next_element::<f64>()? {
                    values.push(v);
                }
                Ok(CellArray::new(values))
            }
        }
        d.deserialize_any(Either)
    }
}
