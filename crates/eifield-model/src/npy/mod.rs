//! Incremental `.npy` writing: rows are appended as they are computed, and the
//! header's shape is rewritten on every flush, so the file is a valid,
//! loadable array holding every flushed row even if the process stops early.
//!
//! NPY libraries write the shape once, before the data; a recording whose
//! length is not known in advance needs the header patched in place, which is
//! what this small writer does (format version 1.0, little-endian float64,
//! or float32 for the runs of the f32 engine). The rows of a 2-D array start
//! on a 4 KiB boundary (its header is padded to that length), so that they
//! can go to the disk with direct I/O ([`direct`]).

mod direct;

use std::fs::File;
use std::io::{Seek, SeekFrom, Write};
use std::path::{Path, PathBuf};

pub use direct::AlignedBuf;
use direct::{Appender, BLOCK};

use crate::real::Precision;

/// Magic string of the NPY format, version 1.0.
const MAGIC: &[u8] = b"\x93NUMPY\x01\x00";
/// Fixed header length (magic, length field and padded dictionary), leaving
/// room for any shape this writer can produce: that of 1-D arrays, and of
/// the 2-D arrays of earlier versions.
const HEADER_LEN: usize = 128;
/// The header length of 2-D arrays: one direct-I/O block.
const BLOCK_HEADER_LEN: usize = BLOCK;

/// An error while writing an array.
#[derive(Debug, thiserror::Error)]
#[error("{path}: {source}")]
pub struct NpyError {
    /// The file.
    pub path: PathBuf,
    /// The cause.
    #[source]
    pub source: std::io::Error,
}

/// A float64 (or float32) array of shape `[rows]` (when `cols` is `None`) or
/// `[rows, cols]`, written a row at a time.
pub struct NpyWriter {
    path: PathBuf,
    out: Appender,
    /// Bytes before the data.
    header_len: usize,
    cols: Option<usize>,
    rows: u64,
    /// Rows that the header counted at the last flush.
    flushed: u64,
    precision: Precision,
    /// A row's bytes, reused.
    bytes: Vec<u8>,
}

impl NpyWriter {
    /// Creates (or truncates) `path` and writes an empty float64 array's header.
    pub fn create(path: &Path, cols: Option<usize>) -> Result<Self, NpyError> {
        Self::create_with(path, cols, Precision::F64)
    }

    /// As [`NpyWriter::create`], with elements of `precision` (rows are
    /// given as f64 and rounded to f32 where asked: exact for values that
    /// an f32 engine computed).
    pub fn create_with(
        path: &Path,
        cols: Option<usize>,
        precision: Precision,
    ) -> Result<Self, NpyError> {
        let err = |source| NpyError {
            path: path.to_owned(),
            source,
        };
        let header_len = if cols.is_some() {
            BLOCK_HEADER_LEN
        } else {
            HEADER_LEN
        };
        let file = std::fs::OpenOptions::new()
            .read(true)
            .write(true)
            .create(true)
            .truncate(true)
            .open(path)
            .map_err(err)?;
        let out = Appender::open(file, path, header_len as u64, header_len as u64).map_err(err)?;
        let writer = Self {
            path: path.to_owned(),
            out,
            header_len,
            cols,
            rows: 0,
            flushed: 0,
            precision,
            bytes: Vec::new(),
        };
        writer.out.file().write_all(&writer.header()).map_err(err)?;
        Ok(writer)
    }

    /// Opens an array this writer wrote (a run's, perhaps killed) to append
    /// to it after its first `rows` rows: the file is cut to them (a row
    /// written after the last flush is dropped) and the header is updated at
    /// the next flush. Its element type must be `precision` and its rows
    /// `cols` wide.
    pub fn resume(
        path: &Path,
        cols: Option<usize>,
        precision: Precision,
        rows: u64,
    ) -> Result<Self, NpyError> {
        let err = |source| NpyError {
            path: path.to_owned(),
            source,
        };
        let invalid = |message: String| err(std::io::Error::other(message));
        let offset = data_offset(path).map_err(err)?;
        if offset != HEADER_LEN as u64 && offset != BLOCK_HEADER_LEN as u64 {
            return Err(invalid(format!(
                "not an array written by a run (its header is {offset} bytes, \
                 not {HEADER_LEN} or {BLOCK_HEADER_LEN})"
            )));
        }
        let (descr, width) = (descr_of(precision), precision.bytes());
        let mut head = Vec::with_capacity(HEADER_LEN);
        {
            use std::io::Read;
            File::open(path)
                .and_then(|f| f.take(offset).read_to_end(&mut head))
                .map_err(err)?;
        }
        let text = String::from_utf8_lossy(&head).into_owned();
        if !text.contains(&format!("'descr': '{descr}'")) {
            return Err(invalid(format!("its elements are not {descr}")));
        }
        let row_bytes = (cols.unwrap_or(1) * width) as u64;
        let file = std::fs::OpenOptions::new()
            .read(true)
            .write(true)
            .open(path)
            .map_err(err)?;
        let held = file.metadata().map_err(err)?.len().saturating_sub(offset) / row_bytes;
        if held < rows {
            return Err(invalid(format!("it holds {held} rows, not {rows}")));
        }
        let end = offset + rows * row_bytes;
        file.set_len(end).map_err(err)?;
        let out = Appender::open(file, path, offset, end).map_err(err)?;
        Ok(Self {
            path: path.to_owned(),
            out,
            header_len: offset as usize,
            cols,
            rows,
            flushed: rows,
            precision,
            bytes: Vec::new(),
        })
    }

    fn header(&self) -> Vec<u8> {
        header(
            descr_of(self.precision),
            &shape_of(self.rows, self.cols),
            self.header_len,
        )
    }

    /// Whether rows go to the disk with direct I/O (around the page cache).
    pub fn is_direct(&self) -> bool {
        self.out.is_direct()
    }

    /// Appends one row (its length must be `cols`, or 1 for a 1-D array).
    pub fn append(&mut self, row: &[f64]) -> Result<(), NpyError> {
        debug_assert_eq!(row.len(), self.cols.unwrap_or(1));
        // One write of the row's bytes (as fast as the disk).
        self.bytes.clear();
        match self.precision {
            // On little-endian machines the values are the file's bytes.
            Precision::F64 if cfg!(target_endian = "little") => {
                return self.write_row_bytes(bytemuck::cast_slice(row));
            }
            Precision::F64 => {
                self.bytes.reserve(8 * row.len());
                row.iter().for_each(|&v| v.push_le(&mut self.bytes));
            }
            Precision::F32 => {
                self.bytes.reserve(4 * row.len());
                row.iter()
                    .for_each(|&v| (v as f32).push_le(&mut self.bytes));
            }
        }
        let bytes = std::mem::take(&mut self.bytes);
        let written = self.write_row_bytes(&bytes);
        self.bytes = bytes;
        written
    }

    fn write_row_bytes(&mut self, bytes: &[u8]) -> Result<(), NpyError> {
        self.out.append(bytes).map_err(|source| NpyError {
            path: self.path.clone(),
            source,
        })?;
        self.rows += 1;
        Ok(())
    }

    /// Rows appended so far.
    pub fn rows(&self) -> u64 {
        self.rows
    }

    /// Rows that the header counted at the last flush: what a reader finds.
    pub fn flushed_rows(&self) -> u64 {
        self.flushed
    }

    /// Writes buffered rows, updates the header's shape to match them, and
    /// waits until the disk has them (see [`NpyWriter::flush_to`]).
    pub fn flush(&mut self) -> Result<(), NpyError> {
        self.flush_to(true)
    }

    /// Writes buffered rows to the file and updates the header's shape to
    /// match them: the file then holds them for any reader, and after the
    /// process stops, however it stops. With `disk`, also waits until the
    /// disk has the rows, then the header (so that a power cut, too, leaves
    /// a header that counts only rows on the disk).
    pub fn flush_to(&mut self, disk: bool) -> Result<(), NpyError> {
        let header = self.header();
        let result = (|| {
            self.out.flush()?;
            if disk {
                self.out.sync_data()?;
            }
            let mut file = self.out.file();
            file.seek(SeekFrom::Start(0))?;
            file.write_all(&header)?;
            if disk {
                self.out.sync_data()?;
            }
            Ok(())
        })();
        if result.is_ok() {
            self.flushed = self.rows;
        }
        result.map_err(|source| NpyError {
            path: self.path.clone(),
            source,
        })
    }
}

/// Where the data of a `.npy` file starts (format 1.0, or 2.0 and 3.0
/// with their longer header length).
pub fn data_offset(path: &Path) -> std::io::Result<u64> {
    use std::io::Read;
    let mut start = [0u8; 12];
    std::fs::File::open(path)?.read_exact(&mut start)?;
    if &start[..6] != b"\x93NUMPY" {
        return Err(std::io::Error::other("not a .npy file"));
    }
    match start[6] {
        1 => Ok(10 + u64::from(u16::from_le_bytes([start[8], start[9]]))),
        2 | 3 => Ok(12
            + u64::from(u32::from_le_bytes([
                start[8], start[9], start[10], start[11],
            ]))),
        v => Err(std::io::Error::other(format!(
            "a .npy file of format {v}, which this version does not read"
        ))),
    }
}

/// Row `row` of a float64 (or float32) `[rows, cols]` array, as f64, read
/// where the row lies (whatever the header's row count says).
pub fn read_row(
    path: &Path,
    cols: usize,
    precision: Precision,
    row: u64,
) -> std::io::Result<Vec<f64>> {
    use std::io::Read;
    let offset = data_offset(path)?;
    let width = precision.bytes();
    let mut file = std::fs::File::open(path)?;
    file.seek(SeekFrom::Start(offset + row * (cols * width) as u64))?;
    let mut raw = vec![0u8; cols * width];
    file.read_exact(&mut raw)?;
    Ok(precision.decode(&raw))
}

/// NumPy's descriptor of the elements of `precision`.
fn descr_of(precision: Precision) -> &'static str {
    match precision {
        Precision::F64 => f64::DESCR,
        Precision::F32 => f32::DESCR,
    }
}

/// The shape `[rows, cols]`, or `[rows]` without `cols`.
fn shape_of(rows: u64, cols: Option<usize>) -> Vec<usize> {
    match cols {
        Some(c) => vec![rows as usize, c],
        None => vec![rows as usize],
    }
}

/// The header of an array of `descr` elements and `shape`, padded to `len`
/// bytes (a multiple of 64).
fn header(descr: &str, shape: &[usize], len: usize) -> Vec<u8> {
    let shape = match shape {
        [n] => format!("({n},)"),
        dims => format!(
            "({})",
            dims.iter()
                .map(usize::to_string)
                .collect::<Vec<_>>()
                .join(", ")
        ),
    };
    let dict = format!("{{'descr': '{descr}', 'fortran_order': False, 'shape': {shape}, }}");
    let dict_len = len - MAGIC.len() - 2;
    let mut text = dict.into_bytes();
    assert!(text.len() < dict_len, "NPY header too long");
    text.resize(dict_len - 1, b' ');
    text.push(b'\n');
    let mut header = Vec::with_capacity(len);
    header.extend_from_slice(MAGIC);
    header.extend_from_slice(&(dict_len as u16).to_le_bytes());
    header.extend_from_slice(&text);
    header
}

/// An element type of a whole array written by [`write_array`].
pub trait NpyElement: Copy {
    /// NumPy's type descriptor (`<f8`, `<i8`, `|b1`).
    const DESCR: &'static str;
    /// Appends the element's little-endian bytes.
    fn push_le(self, out: &mut Vec<u8>);
}

impl NpyElement for f64 {
    const DESCR: &'static str = "<f8";
    fn push_le(self, out: &mut Vec<u8>) {
        out.extend_from_slice(&self.to_le_bytes());
    }
}

impl NpyElement for f32 {
    const DESCR: &'static str = "<f4";
    fn push_le(self, out: &mut Vec<u8>) {
        out.extend_from_slice(&self.to_le_bytes());
    }
}

impl NpyElement for i64 {
    const DESCR: &'static str = "<i8";
    fn push_le(self, out: &mut Vec<u8>) {
        out.extend_from_slice(&self.to_le_bytes());
    }
}

impl NpyElement for bool {
    const DESCR: &'static str = "|b1";
    fn push_le(self, out: &mut Vec<u8>) {
        out.push(u8::from(self));
    }
}

/// Writes a whole array of `shape` (row-major `data`) to `path`.
pub fn write_array<T: NpyElement>(
    path: &Path,
    shape: &[usize],
    data: &[T],
) -> Result<(), NpyError> {
    debug_assert_eq!(shape.iter().product::<usize>(), data.len());
    let mut bytes = header(T::DESCR, shape, HEADER_LEN);
    for &v in data {
        v.push_le(&mut bytes);
    }
    std::fs::write(path, bytes).map_err(|source| NpyError {
        path: path.to_owned(),
        source,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn read(path: &Path) -> (Vec<u64>, Vec<f64>) {
        let bytes = std::fs::read(path).unwrap();
        let npy = npyz::NpyFile::new(&bytes[..]).unwrap();
        let shape = npy.shape().to_vec();
        (shape, npy.into_vec::<f64>().unwrap())
    }

    #[test]
    fn whole_arrays_of_each_type_load_with_their_shape() {
        let dir = std::env::temp_dir().join(format!("eifield-npy-whole-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let f = dir.join("f.npy");
        write_array(&f, &[2, 3], &[1.0, 2.0, 3.0, 4.0, 5.0, f64::NAN]).unwrap();
        let (shape, data) = read(&f);
        assert_eq!(shape, [2, 3]);
        assert_eq!(&data[..5], &[1.0, 2.0, 3.0, 4.0, 5.0]);
        let i = dir.join("i.npy");
        write_array(&i, &[3, 1], &[7i64, -1, 0]).unwrap();
        let bytes = std::fs::read(&i).unwrap();
        let npy = npyz::NpyFile::new(&bytes[..]).unwrap();
        assert_eq!(npy.shape(), [3, 1]);
        assert_eq!(npy.into_vec::<i64>().unwrap(), [7, -1, 0]);
        let b = dir.join("b.npy");
        write_array(&b, &[1, 3], &[true, false, true]).unwrap();
        let bytes = std::fs::read(&b).unwrap();
        assert!(String::from_utf8_lossy(&bytes[..HEADER_LEN]).contains("'|b1'"));
        assert_eq!(&bytes[HEADER_LEN..], &[1, 0, 1]);
        std::fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn flushed_rows_form_a_valid_array_at_every_stage() {
        let dir = std::env::temp_dir().join(format!("eifield-npy-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let path = dir.join("x.npy");
        let mut w = NpyWriter::create(&path, Some(3)).unwrap();
        assert_eq!(read(&path), (vec![0, 3], vec![]));
        w.append(&[1.0, 2.0, 3.0]).unwrap();
        w.flush().unwrap();
        assert_eq!(read(&path), (vec![1, 3], vec![1.0, 2.0, 3.0]));
        w.append(&[4.0, 5.0, 6.5]).unwrap();
        w.flush().unwrap();
        assert_eq!(
            read(&path),
            (vec![2, 3], vec![1.0, 2.0, 3.0, 4.0, 5.0, 6.5])
        );
        let bytes = std::fs::read(&path).unwrap();
        assert_eq!(bytes.len(), BLOCK_HEADER_LEN + 6 * 8);
        assert_eq!(HEADER_LEN % 64, 0);
        assert_eq!(BLOCK_HEADER_LEN % 64, 0);

        // Single precision: half the bytes, the values rounded once.
        let spath = dir.join("s.npy");
        let mut s = NpyWriter::create_with(&spath, Some(2), Precision::F32).unwrap();
        s.append(&[0.1, -2.5]).unwrap();
        s.flush().unwrap();
        let bytes = std::fs::read(&spath).unwrap();
        assert_eq!(bytes.len(), BLOCK_HEADER_LEN + 2 * 4);
        let npy = npyz::NpyFile::new(&bytes[..]).unwrap();
        assert_eq!(npy.shape(), [1, 2]);
        assert_eq!(npy.into_vec::<f32>().unwrap(), [0.1f32, -2.5]);

        let tpath = dir.join("t.npy");
        let mut t = NpyWriter::create(&tpath, None).unwrap();
        t.append(&[0.5]).unwrap();
        t.flush().unwrap();
        assert_eq!(read(&tpath), (vec![1], vec![0.5]));
        std::fs::remove_dir_all(&dir).unwrap();
    }

    /// Rows a whole number of blocks long (from an aligned buffer: written
    /// with no copy) and rows of any other length (staged), flushed and
    /// read back at every stage, then resumed: the file holds exactly the
    /// rows, whether the filesystem takes direct I/O or not.
    #[test]
    fn rows_of_any_length_land_whole_and_resume() {
        let dir = std::env::temp_dir().join(format!("eifield-npy-direct-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        for cols in [1024, 1000, 3, 300_000] {
            let path = dir.join(format!("x{cols}.npy"));
            let row = |k: usize| -> Vec<f64> { (0..cols).map(|c| (k * cols + c) as f64).collect() };
            let mut w = NpyWriter::create(&path, Some(cols)).unwrap();
            let mut buf = AlignedBuf::new();
            let mut expected = Vec::new();
            for k in 0..7 {
                let values = row(k);
                if k % 2 == 0 {
                    buf.copy_from(&values);
                    w.append(buf.as_f64()).unwrap();
                } else {
                    w.append(&values).unwrap();
                }
                expected.extend(values);
                if k == 2 || k == 6 {
                    w.flush_to(false).unwrap();
                    assert_eq!(
                        read(&path),
                        (vec![k as u64 + 1, cols as u64], expected.clone())
                    );
                }
            }
            drop(w);
            // Go on after five rows: the last two are dropped.
            let mut w = NpyWriter::resume(&path, Some(cols), Precision::F64, 5).unwrap();
            expected.truncate(5 * cols);
            for k in 10..12 {
                let values = row(k);
                buf.copy_from(&values);
                w.append(buf.as_f64()).unwrap();
                expected.extend(values);
            }
            w.flush().unwrap();
            assert_eq!(read(&path), (vec![7, cols as u64], expected));
            let len = std::fs::metadata(&path).unwrap().len();
            assert_eq!(len, (BLOCK_HEADER_LEN + 7 * cols * 8) as u64);
        }
        std::fs::remove_dir_all(&dir).unwrap();
    }

    /// Arrays of earlier versions (128-byte headers) are resumed too,
    /// through the page cache.
    #[test]
    fn arrays_with_the_short_header_resume() {
        let dir = std::env::temp_dir().join(format!("eifield-npy-short-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let path = dir.join("old.npy");
        write_array(&path, &[2, 3], &[1.0, 2.0, 3.0, 4.0, 5.0, 6.0]).unwrap();
        let mut w = NpyWriter::resume(&path, Some(3), Precision::F64, 1).unwrap();
        assert!(!w.is_direct());
        w.append(&[7.0, 8.0, 9.0]).unwrap();
        w.flush().unwrap();
        assert_eq!(
            read(&path),
            (vec![2, 3], vec![1.0, 2.0, 3.0, 7.0, 8.0, 9.0])
        );
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
