//! The arrays of a run folder: the sampled E and I (and their times) written
//! as they are computed, as NumPy arrays or as a chunked, compressed Zarr
//! version 3 store, and read back whichever format a folder holds.
//!
//! Both formats stay readable at every flush, so that a run killed outright
//! leaves every sample up to its last flush: the NPY writer rewrites its
//! headers; the Zarr writer writes a chunk (atomically: a temporary file,
//! then a rename) before it grows the array's shape to cover it.

pub mod layout;
pub mod read;
pub mod sink;
pub mod zarr;

pub use layout::Layout;
pub use read::StoredRun;
pub use sink::{NpySink, SampleSink};
pub use zarr::ZarrSink;

/// Why a run's arrays could not be written or read.
#[derive(Debug, thiserror::Error)]
#[error("{path}: {message}")]
pub struct StoreError {
    /// The file or store.
    pub path: String,
    /// What went wrong.
    pub message: String,
}

impl StoreError {
    /// An error about `path`.
    pub fn new(path: impl AsRef<std::path::Path>, message: impl std::fmt::Display) -> Self {
        Self {
            path: path.as_ref().display().to_string(),
            message: message.to_string(),
        }
    }
}

impl From<eifield_model::npy::NpyError> for StoreError {
    fn from(e: eifield_model::npy::NpyError) -> Self {
        Self::new(&e.path, e.source)
    }
}
