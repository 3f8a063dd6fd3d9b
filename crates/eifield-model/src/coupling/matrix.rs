//! General coupling matrices: the sparse operator that a `Matrix` kernel
//! runs as (rows by receiving cell), and reading it from a float64 `.npy`
//! or from scipy's `save_npz` (CSR or CSC), refusing bad input by name.

use crate::real::Real;
use std::fs::File;
use std::io::{BufReader, Read, Seek};
use std::path::Path;

use npyz::NpyFile;

/// A coupling matrix `M` stored by receiving cell: row `i` lists the cells
/// `j` with `M[j, i] ≠ 0` and those weights, so that cell `i` is fed by
/// `Σ_j M[j, i]·E_j` (the notebook's column rule).
#[derive(Clone, Debug, PartialEq)]
pub struct CouplingMatrix {
    /// Number of cells (the matrix is `n × n`).
    pub n: usize,
    /// `offsets[i] .. offsets[i + 1]` are receiving cell `i`'s entries.
    pub offsets: Vec<usize>,
    /// The sending cell `j` of each entry.
    pub sources: Vec<u32>,
    /// The weight `M[j, i]` of each entry.
    pub weights: Vec<f64>,
}

impl CouplingMatrix {
    /// Builds the operator from entries `(j, i, M[j, i])` of an `n × n`
    /// matrix (any order; repeated entries add up).
    pub fn from_entries(n: usize, entries: impl IntoIterator<Item = (usize, usize, f64)>) -> Self {
        let entries: Vec<(usize, usize, f64)> = entries.into_iter().collect();
        let mut offsets = vec![0usize; n + 1];
        for &(_, i, _) in &entries {
            offsets[i + 1] += 1;
        }
        for k in 0..n {
            offsets[k + 1] += offsets[k];
        }
        let mut fill = offsets.clone();
        let mut sources = vec![0u32; entries.len()];
        let mut weights = vec![0.0; entries.len()];
        for &(j, i, w) in &entries {
            sources[fill[i]] = j as u32;
            weights[fill[i]] = w;
            fill[i] += 1;
        }
        Self {
            n,
            offsets,
            sources,
            weights,
        }
    }

    /// The operator of a dense row-major `n × n` matrix (zeros left out).
    pub fn from_dense(n: usize, m: &[f64]) -> Self {
        assert_eq!(m.len(), n * n, "a dense matrix has n² entries");
        Self::from_entries(
            n,
            (0..n).flat_map(|j| {
                (0..n).filter_map(move |i| {
                    let w = m[j * n + i];
                    (w != 0.0).then_some((j, i, w))
                })
            }),
        )
    }

    /// Stored entries.
    pub fn nnz(&self) -> usize {
        self.weights.len()
    }

    /// `Σ_j M[j, i]·e[j]` for the receiving cells `i0 .. i0 + out.len()`.
    #[inline]
    /// In f32 each weight is rounded to f32 as it is used.
    pub fn inflow<T: Real>(&self, e: &[T], i0: usize, out: &mut [T]) {
        for (k, o) in out.iter_mut().enumerate() {
            let i = i0 + k;
            let span = self.offsets[i]..self.offsets[i + 1];
            let mut s = T::ZERO;
            for (&j, &w) in self.sources[span.clone()].iter().zip(&self.weights[span]) {
                s += T::of(w) * e[j as usize];
            }
            *o = s;
        }
    }

    /// The sending cells of receiving cell `i` with their weights.
    pub fn inputs_of(&self, i: usize) -> impl Iterator<Item = (usize, f64)> + '_ {
        let span = self.offsets[i]..self.offsets[i + 1];
        self.sources[span.clone()]
            .iter()
            .zip(&self.weights[span])
            .map(|(&j, &w)| (j as usize, w))
    }

    /// Reads an `n × n` matrix from a float64 `.npy` or a scipy sparse
    /// `.npz` (CSR or CSC), refusing a wrong shape, non-finite weights, and
    /// a matrix larger than the memory this machine has free (before reading).
    pub fn read(path: &Path, n: usize) -> Result<Self, String> {
        let file = File::open(path).map_err(|e| format!("cannot open {}: {e}", path.display()))?;
        let mut reader = BufReader::new(file);
        let mut magic = [0u8; 4];
        reader
            .read_exact(&mut magic)
            .map_err(|e| format!("cannot read {}: {e}", path.display()))?;
        reader
            .rewind()
            .map_err(|e| format!("cannot read {}: {e}", path.display()))?;
        let what = path.display();
        if magic == *b"PK\x03\x04" {
            read_npz(reader, n).map_err(|e| format!("{what}: {e}"))
        } else if magic == *b"\x93NUM" {
            read_dense(reader, n).map_err(|e| format!("{what}: {e}"))
        } else {
            Err(format!(
                "{what}: neither a .npy array nor a scipy.sparse .npz archive"
            ))
        }
    }
}

impl CouplingMatrix {
    /// Writes the matrix as scipy's `save_npz` does, in CSC form (which is
    /// how it is stored: column `i` holds what feeds cell `i`).
    pub fn write_npz(&self, path: &Path) -> std::io::Result<()> {
        use npyz::WriterBuilder;
        use std::io::Write;
        fn array<T: npyz::AutoSerialize + Copy>(
            shape: &[u64],
            values: &[T],
        ) -> std::io::Result<Vec<u8>> {
            let mut out = Vec::new();
            let mut w = npyz::WriteOptions::new()
                .default_dtype()
                .shape(shape)
                .writer(&mut out)
                .begin_nd()?;
            w.extend(values.iter().copied())?;
            w.finish()?;
            Ok(out)
        }
        let mut format = Vec::new();
        {
            let mut w = npyz::WriteOptions::<String>::new()
                .dtype(npyz::DType::Plain("|S3".parse().expect("a type string")))
                .shape(&[])
                .writer(&mut format)
                .begin_nd()?;
            w.push(&"csc".to_owned())?;
            w.finish()?;
        }
        let n = self.n as i64;
        let indptr: Vec<i64> = self.offsets.iter().map(|&o| o as i64).collect();
        let indices: Vec<i64> = self.sources.iter().map(|&j| i64::from(j)).collect();
        let files = [
            ("indices.npy", array(&[indices.len() as u64], &indices)?),
            ("indptr.npy", array(&[indptr.len() as u64], &indptr)?),
            ("format.npy", format),
            ("shape.npy", array(&[2], &[n, n])?),
            (
                "data.npy",
                array(&[self.weights.len() as u64], &self.weights)?,
            ),
        ];
        let mut zip = zip::ZipWriter::new(File::create(path)?);
        let options = zip::write::SimpleFileOptions::default()
            .compression_method(zip::CompressionMethod::Deflated)
            .large_file(true);
        for (name, bytes) in files {
            zip.start_file(name, options)
                .map_err(std::io::Error::other)?;
            zip.write_all(&bytes)?;
        }
        zip.finish().map_err(std::io::Error::other)?;
        Ok(())
    }
}

/// Bytes of memory free for new data, where the system says.
fn available_memory() -> Option<u64> {
    let text = std::fs::read_to_string("/proc/meminfo").ok()?;
    let line = text.lines().find(|l| l.starts_with("MemAvailable:"))?;
    let kb: u64 = line.split_whitespace().nth(1)?.parse().ok()?;
    Some(kb * 1024)
}

/// Refuses to read `bytes` of matrix data that cannot fit in memory.
fn check_memory(bytes: u128, what: &str) -> Result<(), String> {
    let limit = available_memory().map_or(u64::MAX as u128, u128::from);
    if bytes > limit {
        return Err(format!(
            "{what} needs {:.1} GB to read, more than the {:.1} GB of memory free; \
             store it as a sparse matrix (scipy.sparse.save_npz)",
            bytes as f64 / 1e9,
            limit as f64 / 1e9
        ));
    }
    Ok(())
}

fn read_dense(reader: impl Read, n: usize) -> Result<CouplingMatrix, String> {
    let npy = NpyFile::new(reader).map_err(|e| format!("not a readable .npy file: {e}"))?;
    let shape = npy.shape().to_vec();
    if shape != [n as u64, n as u64] {
        return Err(format!(
            "the matrix has shape {shape:?}; the lattice has n = rows × cols = {n} cells, \
             so it must be {n} × {n}"
        ));
    }
    let descr = npy.dtype().descr();
    if !descr.contains("f8") {
        return Err(format!("the matrix has dtype {descr}; it must be float64"));
    }
    check_memory((n as u128).pow(2) * 8 * 2, "the dense matrix")?;
    let fortran = npy.order() == npyz::Order::Fortran;
    let values: Vec<f64> = npy
        .into_vec()
        .map_err(|e| format!("cannot read the matrix: {e}"))?;
    let at = |j: usize, i: usize| {
        if fortran {
            values[i * n + j]
        } else {
            values[j * n + i]
        }
    };
    let mut entries = Vec::new();
    for j in 0..n {
        for i in 0..n {
            let w = at(j, i);
            if !w.is_finite() {
                return Err(format!(
                    "the weight M[{j}, {i}] is {w}; weights must be finite"
                ));
            }
            if w != 0.0 {
                entries.push((j, i, w));
            }
        }
    }
    Ok(CouplingMatrix::from_entries(n, entries))
}

/// The integers of an index array of a `.npz` (int32 or int64).
fn read_indices(npy: NpyFile<impl Read>, name: &str) -> Result<Vec<i64>, String> {
    let descr = npy.dtype().descr();
    let bad = |e: std::io::Error| format!("cannot read `{name}`: {e}");
    if descr.contains("i4") {
        Ok(npy
            .into_vec::<i32>()
            .map_err(bad)?
            .into_iter()
            .map(i64::from)
            .collect())
    } else if descr.contains("i8") {
        npy.into_vec::<i64>().map_err(bad)
    } else {
        Err(format!(
            "`{name}` has dtype {descr}; expected int32 or int64"
        ))
    }
}

fn read_npz(reader: impl Read + Seek, n: usize) -> Result<CouplingMatrix, String> {
    let mut zip = zip::ZipArchive::new(reader).map_err(|e| format!("not a readable .npz: {e}"))?;
    let mut open = |name: &str| -> Result<NpyFile<std::io::Cursor<Vec<u8>>>, String> {
        let mut entry = zip.by_name(&format!("{name}.npy")).map_err(|_| {
            format!(
                "the archive has no `{name}` array; save the matrix with \
                 scipy.sparse.save_npz (CSR or CSC)"
            )
        })?;
        // Check the size before inflating it.
        check_memory(entry.size() as u128, &format!("`{name}`"))?;
        let mut bytes = Vec::new();
        entry
            .read_to_end(&mut bytes)
            .map_err(|e| format!("cannot read `{name}`: {e}"))?;
        NpyFile::new(std::io::Cursor::new(bytes))
            .map_err(|e| format!("`{name}` is not a readable array: {e}"))
    };
    let format: Vec<String> = open("format")?
        .into_vec()
        .map_err(|e| format!("cannot read `format`: {e}"))?;
    let format = format.first().cloned().unwrap_or_default();
    let columns = match format.as_str() {
        "csr" => false,
        "csc" => true,
        other => {
            return Err(format!(
                "the matrix is stored as `{other}`; eifield reads CSR and CSC (matrix.tocsr())"
            ));
        }
    };
    let shape = read_indices(open("shape")?, "shape")?;
    if shape != [n as i64, n as i64] {
        return Err(format!(
            "the matrix has shape {shape:?}; the lattice has n = rows × cols = {n} cells, \
             so it must be {n} × {n}"
        ));
    }
    let data_file = open("data")?;
    let descr = data_file.dtype().descr();
    if !descr.contains("f8") {
        return Err(format!("`data` has dtype {descr}; it must be float64"));
    }
    let data: Vec<f64> = data_file
        .into_vec()
        .map_err(|e| format!("cannot read `data`: {e}"))?;
    let indices = read_indices(open("indices")?, "indices")?;
    let indptr = read_indices(open("indptr")?, "indptr")?;
    if indptr.len() != n + 1 {
        return Err(format!(
            "`indptr` has {} entries; a {n} × {n} matrix has {}",
            indptr.len(),
            n + 1
        ));
    }
    if indices.len() != data.len() || indptr[n] as usize != data.len() || indptr[0] != 0 {
        return Err(format!(
            "`indptr` (ending at {}), `indices` ({}) and `data` ({}) do not match",
            indptr[n],
            indices.len(),
            data.len()
        ));
    }
    let mut entries = Vec::with_capacity(data.len());
    for outer in 0..n {
        let (a, b) = (indptr[outer], indptr[outer + 1]);
        if b < a || b as usize > data.len() {
            return Err(format!("`indptr` is not increasing at {outer}"));
        }
        for k in a as usize..b as usize {
            let inner = indices[k];
            if inner < 0 || inner as usize >= n {
                return Err(format!("`indices[{k}]` = {inner} is outside 0..{n}"));
            }
            let (j, i) = if columns {
                (inner as usize, outer)
            } else {
                (outer, inner as usize)
            };
            let w = data[k];
            if !w.is_finite() {
                return Err(format!(
                    "the weight M[{j}, {i}] is {w}; weights must be finite"
                ));
            }
            entries.push((j, i, w));
        }
    }
    Ok(CouplingMatrix::from_entries(n, entries))
}
