//! Values per cell stored in less than a lattice's memory where they can
//! be: once when every cell has the same (the inhibitory drive of most
//! scenes), or as another array with a few cells changed (the drive of an
//! f64 engine without noise: `h_ex` and the driven cells). The stepper
//! reads them a chunk of cells at a time.

use std::ops::Range;

use crate::rhs::CHUNK;

/// A value per cell, owned; stored once when all cells share it.
#[derive(Clone, Debug, PartialEq)]
pub enum PerCell<T> {
    /// Every one of `len` cells has the value that `run` holds [`CHUNK`]
    /// times (so that any chunk of cells reads it as a slice).
    Uniform {
        /// The value, repeated.
        run: Vec<T>,
        /// The number of cells.
        len: usize,
    },
    /// One value per cell.
    Each(Vec<T>),
}

impl<T: Copy + PartialEq> PerCell<T> {
    /// The values of the cells, stored once if they are all equal.
    pub fn new(values: Vec<T>) -> Self {
        match values.first() {
            Some(&first) if values.iter().all(|&v| v == first) => Self::Uniform {
                run: vec![first; CHUNK],
                len: values.len(),
            },
            _ => Self::Each(values),
        }
    }

    /// `value` at each of `len` cells.
    pub fn uniform(value: T, len: usize) -> Self {
        Self::Uniform {
            run: vec![value; CHUNK],
            len,
        }
    }

    /// The number of cells.
    pub fn len(&self) -> usize {
        match self {
            Self::Uniform { len, .. } => *len,
            Self::Each(values) => values.len(),
        }
    }

    /// Whether there are no cells.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// The value of cell `k` (which must be below [`PerCell::len`]).
    pub fn get(&self, k: usize) -> T {
        self.view().get(k)
    }

    /// Sets the value of cell `k`; a uniform value becomes one per cell
    /// where `value` differs from it.
    pub fn set(&mut self, k: usize, value: T) {
        match self {
            Self::Uniform { run, len } => {
                assert!(k < *len, "cell {k} of {len}");
                if run[0] != value {
                    let mut values = vec![run[0]; *len];
                    values[k] = value;
                    *self = Self::Each(values);
                }
            }
            Self::Each(values) => values[k] = value,
        }
    }

    /// The values of every cell, in order.
    pub fn iter(&self) -> impl Iterator<Item = T> + '_ {
        (0..self.len()).map(|k| self.get(k))
    }

    /// The values of every cell as a vector.
    pub fn to_vec(&self) -> Vec<T> {
        match self {
            Self::Uniform { run, len } => vec![run[0]; *len],
            Self::Each(values) => values.clone(),
        }
    }

    /// Each value mapped by `f`, kept uniform where it is.
    pub fn map<U: Copy + PartialEq>(&self, f: impl Fn(T) -> U) -> PerCell<U> {
        match self {
            Self::Uniform { run, len } => PerCell::uniform(f(run[0]), *len),
            Self::Each(values) => PerCell::Each(values.iter().map(|&v| f(v)).collect()),
        }
    }

    /// Values held (a uniform value holds one chunk's).
    pub fn stored(&self) -> usize {
        match self {
            Self::Uniform { run, .. } => run.capacity(),
            Self::Each(values) => values.capacity(),
        }
    }

    /// A borrowed view, as the stepper reads it.
    pub fn view(&self) -> Cells<'_, T> {
        match self {
            Self::Uniform { run, len } => Cells::Uniform { run, len: *len },
            Self::Each(values) => Cells::Each(values),
        }
    }
}

impl<T: Copy + PartialEq> From<Vec<T>> for PerCell<T> {
    fn from(values: Vec<T>) -> Self {
        Self::new(values)
    }
}

/// A value per cell, borrowed: a slice, one value repeated, or a slice with
/// a few cells changed.
#[derive(Clone, Copy, Debug)]
pub enum Cells<'a, T> {
    /// Every one of `len` cells has the value that `run` repeats (at least
    /// as long as any span asked of it).
    Uniform {
        /// The value, repeated.
        run: &'a [T],
        /// The number of cells.
        len: usize,
    },
    /// One value per cell.
    Each(&'a [T]),
    /// The values of `base`, except at the cells that `changed` lists
    /// (sorted by cell, each once).
    Changed {
        /// The values of the other cells.
        base: &'a [T],
        /// `(cell, value)`, sorted by cell.
        changed: &'a [(usize, T)],
    },
}

impl<'a, T: Copy> Cells<'a, T> {
    /// The number of cells.
    pub fn len(&self) -> usize {
        match self {
            Self::Uniform { len, .. } => *len,
            Self::Each(values) | Self::Changed { base: values, .. } => values.len(),
        }
    }

    /// Whether there are no cells.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// The value of cell `k`.
    pub fn get(&self, k: usize) -> T {
        match self {
            Self::Uniform { run, len } => {
                assert!(k < *len, "cell {k} of {len}");
                run[0]
            }
            Self::Each(values) => values[k],
            Self::Changed { base, changed } => match changed.binary_search_by_key(&k, |c| c.0) {
                Ok(at) => changed[at].1,
                Err(_) => base[k],
            },
        }
    }

    /// The values of every cell, in order.
    pub fn iter(&self) -> impl Iterator<Item = T> + '_ {
        (0..self.len()).map(|k| self.get(k))
    }

    /// The values of every cell as a vector.
    pub fn to_vec(&self) -> Vec<T> {
        self.iter().collect()
    }

    /// The values of the cells `cells` (at most [`CHUNK`] of them when the
    /// value is uniform or some are changed), put together in `scratch`
    /// (at least as long) where a changed cell is among them.
    #[inline(always)]
    pub fn span<'s>(&self, cells: Range<usize>, scratch: &'s mut [T]) -> &'s [T]
    where
        'a: 's,
    {
        match *self {
            Self::Uniform { run, .. } => &run[..cells.len()],
            Self::Each(values) => &values[cells],
            Self::Changed { base, changed } => {
                let first = changed.partition_point(|c| c.0 < cells.start);
                let inside = &changed[first..];
                if inside.first().is_none_or(|c| c.0 >= cells.end) {
                    return &base[cells];
                }
                let out = &mut scratch[..cells.len()];
                out.copy_from_slice(&base[cells.clone()]);
                for &(k, v) in inside.iter().take_while(|c| c.0 < cells.end) {
                    out[k - cells.start] = v;
                }
                out
            }
        }
    }
}

impl<'a, T> From<&'a [T]> for Cells<'a, T> {
    fn from(values: &'a [T]) -> Self {
        Self::Each(values)
    }
}

impl<'a, T> From<&'a Vec<T>> for Cells<'a, T> {
    fn from(values: &'a Vec<T>) -> Self {
        Self::Each(values)
    }
}

impl<'a, T: Copy + PartialEq> From<&'a PerCell<T>> for Cells<'a, T> {
    fn from(values: &'a PerCell<T>) -> Self {
        values.view()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn equal_values_are_stored_once_and_read_back_per_cell() {
        let mut h = PerCell::new(vec![-4.0; 100_000]);
        assert!(matches!(h, PerCell::Uniform { .. }));
        assert_eq!(h.stored(), CHUNK);
        assert_eq!((h.len(), h.get(99_999)), (100_000, -4.0));
        let mut scratch = [0.0; CHUNK];
        assert_eq!(
            h.view().span(500..500 + CHUNK, &mut scratch),
            &[-4.0; CHUNK][..]
        );
        assert_eq!(h.to_vec(), vec![-4.0; 100_000]);
        // Setting the same value keeps it uniform; another value does not.
        h.set(7, -4.0);
        assert!(matches!(h, PerCell::Uniform { .. }));
        h.set(7, -3.0);
        assert_eq!((h.get(6), h.get(7), h.stored()), (-4.0, -3.0, 100_000));
        assert_eq!(h.view().span(6..9, &mut scratch), &[-4.0, -3.0, -4.0][..]);
    }

    #[test]
    fn different_values_are_kept_per_cell() {
        let h = PerCell::new(vec![1.0f32, 2.0, 1.0]);
        assert_eq!(h, PerCell::Each(vec![1.0, 2.0, 1.0]));
        assert_eq!(h.map(f64::from).to_vec(), vec![1.0, 2.0, 1.0]);
        assert!(PerCell::<f64>::new(Vec::new()).is_empty());
        assert_eq!(
            PerCell::uniform(2.5f32, 3).map(f64::from).to_vec(),
            vec![2.5; 3]
        );
    }

    #[test]
    fn changed_cells_read_as_their_values_in_every_span() {
        let base: Vec<f64> = (0..40).map(f64::from).collect();
        let changed = [(0, -1.0), (17, -2.0), (39, -3.0)];
        let cells = Cells::Changed {
            base: &base,
            changed: &changed,
        };
        let mut want = base.clone();
        for &(k, v) in &changed {
            want[k] = v;
        }
        assert_eq!(cells.to_vec(), want);
        let mut scratch = [0.0; CHUNK];
        for start in 0..40 {
            for end in start..=40 {
                assert_eq!(cells.span(start..end, &mut scratch), &want[start..end]);
            }
        }
    }
}
