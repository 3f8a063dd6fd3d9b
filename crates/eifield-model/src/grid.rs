//! The lattice geometry: cell indexing, boundaries and the 4-neighbour stencil.

use serde::{Deserialize, Serialize};

/// How the lattice treats its edges.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub enum Boundary {
    /// A missing neighbour contributes nothing.
    #[default]
    Open,
    /// The grid wraps around in both directions (a torus), like `numpy.roll`.
    Periodic,
}

/// A `rows × cols` lattice with row-major cell indices `k = row * cols + col`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct Grid {
    /// Number of rows (row 0 is the top).
    pub rows: usize,
    /// Number of columns.
    pub cols: usize,
    /// Edge treatment.
    pub boundary: Boundary,
}

/// The notebook's lattice size.
pub const DEFAULT_GRID_SIDE: usize = 7;

impl Default for Grid {
    fn default() -> Self {
        Self {
            rows: DEFAULT_GRID_SIDE,
            cols: DEFAULT_GRID_SIDE,
            boundary: Boundary::Open,
        }
    }
}

impl Grid {
    /// A grid of the given shape.
    pub fn new(rows: usize, cols: usize, boundary: Boundary) -> Self {
        Self {
            rows,
            cols,
            boundary,
        }
    }

    /// Number of cells.
    pub fn len(&self) -> usize {
        self.rows * self.cols
    }

    /// True when the grid has no cells.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Row-major index of a cell.
    pub fn index(&self, row: usize, col: usize) -> usize {
        row * self.cols + col
    }

    /// `(row, col)` of a row-major index.
    pub fn position(&self, index: usize) -> (usize, usize) {
        (index / self.cols, index % self.cols)
    }

    /// The stencil neighbours of a cell, in the order up, down, left, right.
    ///
    /// With an open boundary, missing neighbours are left out. With a periodic
    /// boundary the grid wraps; on a grid one or two cells wide the same cell can
    /// appear more than once (and a cell can be its own neighbour), exactly as
    /// a sum of `numpy.roll`-shifted copies counts it.
    pub fn neighbours(&self, row: usize, col: usize) -> Vec<usize> {
        let mut out = Vec::with_capacity(4);
        let (r, c) = (row as isize, col as isize);
        for (dr, dc) in [(-1isize, 0isize), (1, 0), (0, -1), (0, 1)] {
            let (nr, nc) = (r + dr, c + dc);
            match self.boundary {
                Boundary::Open => {
                    if nr >= 0 && nc >= 0 && (nr as usize) < self.rows && (nc as usize) < self.cols
                    {
                        out.push(self.index(nr as usize, nc as usize));
                    }
                }
                Boundary::Periodic => {
                    let wr = nr.rem_euclid(self.rows as isize) as usize;
                    let wc = nc.rem_euclid(self.cols as isize) as usize;
                    out.push(self.index(wr, wc));
                }
            }
        }
        out
    }

    /// The row above `row` for the stencil, or `None` at an open top edge.
    pub fn row_above(&self, row: usize) -> Option<usize> {
        match (row, self.boundary) {
            (0, Boundary::Open) => None,
            (0, Boundary::Periodic) => Some(self.rows - 1),
            _ => Some(row - 1),
        }
    }

    /// The row below `row` for the stencil, or `None` at an open bottom edge.
    pub fn row_below(&self, row: usize) -> Option<usize> {
        if row + 1 < self.rows {
            Some(row + 1)
        } else {
            match self.boundary {
                Boundary::Open => None,
                Boundary::Periodic => Some(0),
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn counts(grid: &Grid) -> Vec<usize> {
        (0..grid.len())
            .map(|k| {
                let (r, c) = grid.position(k);
                grid.neighbours(r, c).len()
            })
            .collect()
    }

    #[test]
    fn open_boundary_counts_on_non_square_grid() {
        let grid = Grid::new(3, 5, Boundary::Open);
        let n = counts(&grid);
        // Corners have 2, edges 3, interior 4.
        assert_eq!(n[grid.index(0, 0)], 2);
        assert_eq!(n[grid.index(0, 4)], 2);
        assert_eq!(n[grid.index(2, 0)], 2);
        assert_eq!(n[grid.index(2, 4)], 2);
        assert_eq!(n[grid.index(0, 2)], 3);
        assert_eq!(n[grid.index(1, 0)], 3);
        assert_eq!(n[grid.index(1, 4)], 3);
        assert_eq!(n[grid.index(1, 2)], 4);
        // Total directed edges: 2 * (rows*(cols-1) + cols*(rows-1)).
        assert_eq!(n.iter().sum::<usize>(), 2 * (3 * 4 + 5 * 2));
    }

    #[test]
    fn periodic_boundary_wraps_on_non_square_grid() {
        let grid = Grid::new(4, 6, Boundary::Periodic);
        assert!(counts(&grid).iter().all(|&n| n == 4));
        let nb = grid.neighbours(0, 0);
        assert_eq!(
            nb,
            vec![
                grid.index(3, 0),
                grid.index(1, 0),
                grid.index(0, 5),
                grid.index(0, 1)
            ]
        );
    }

    #[test]
    fn single_row_and_single_cell_grids() {
        let line = Grid::new(1, 4, Boundary::Open);
        assert_eq!(counts(&line), vec![1, 2, 2, 1]);
        let one = Grid::new(1, 1, Boundary::Open);
        assert_eq!(counts(&one), vec![0]);
        let one_periodic = Grid::new(1, 1, Boundary::Periodic);
        assert_eq!(one_periodic.neighbours(0, 0), vec![0, 0, 0, 0]);
    }

    #[test]
    fn row_neighbours_follow_boundary() {
        let open = Grid::new(3, 2, Boundary::Open);
        assert_eq!(open.row_above(0), None);
        assert_eq!(open.row_below(2), None);
        assert_eq!(open.row_above(2), Some(1));
        let periodic = Grid::new(3, 2, Boundary::Periodic);
        assert_eq!(periodic.row_above(0), Some(2));
        assert_eq!(periodic.row_below(2), Some(0));
    }
}
