//! The notebook's figures for a recorded run, drawn with plotters into PNGs:
//! stacked E traces, a cells × time raster in blue-white-red, the stimulated
//! cell's trace with its stimulus under it, kymographs along a line of cells,
//! and the analysis figures (activation map with isochrones, distance against
//! first-activation time with the speed fit).

use std::path::{Path, PathBuf};

use eifield_model::stimulus::PulseTrain;
use eifield_model::{FieldScene, Grid};
use plotters::coord::Shift;
use plotters::prelude::*;

use eifield_model::scene::ColorMapName;

use crate::capture::overlay::FONT;
pub use crate::capture::overlay::register_font;
use crate::view::colormap::{ColorMapLut, lut_index};

/// The figure files, in the order they are written.
pub const FIGURE_FILES: [&str; 3] = ["traces.png", "raster.png", "stimulus.png"];
/// The kymograph's file (with `--kymograph`).
pub const KYMOGRAPH_FILE: &str = "kymograph.png";
/// Default figure size in pixels.
pub const DEFAULT_FIGURE_SIZE: (u32, u32) = (1200, 800);
/// Lattices up to this many cells show every cell in the traces and raster.
pub const ALL_CELLS_LIMIT: usize = 64;
/// Cells in the default subset of a big lattice's traces.
pub const SUBSET_CELLS: usize = 12;
/// Lattices up to this many cells show every cell in the raster; bigger ones
/// show the row through the stimulated cell.
pub const RASTER_ALL_LIMIT: usize = 1024;

/// What to draw.
#[derive(Debug, Clone)]
pub struct FigureOptions {
    /// Pixel size of each figure.
    pub size: (u32, u32),
    /// Cells for the traces, `(row, col)`; `None` picks them (all cells of a
    /// small lattice, a row of cells through the stimulus on a big one).
    pub cells: Option<Vec<(usize, usize)>>,
    /// Replace existing figure files.
    pub force: bool,
    /// The ends of a line of cells for a kymograph.
    pub kymograph: Option<CellLine>,
}

impl Default for FigureOptions {
    fn default() -> Self {
        Self {
            size: DEFAULT_FIGURE_SIZE,
            cells: None,
            force: false,
            kymograph: None,
        }
    }
}

/// The ends of a straight line of cells, `(row, col)` each.
pub type CellLine = ((usize, usize), (usize, usize));

/// Parses `r0,c0:r1,c1`, the ends of a line of cells.
pub fn parse_line(text: &str) -> Result<CellLine, String> {
    let (a, b) = text
        .split_once(':')
        .ok_or_else(|| format!("expected ROW,COL:ROW,COL (got {text:?})"))?;
    let ends = parse_cells(&format!("{a};{b}"))?;
    Ok((ends[0], ends[1]))
}

/// A list of cells given on the command line.
#[derive(Debug, Clone, PartialEq)]
pub struct CellList(pub Vec<(usize, usize)>);

/// Parses `r,c;r,c;…` (for the command line).
pub fn parse_cell_list(text: &str) -> Result<CellList, String> {
    parse_cells(text).map(CellList)
}

/// Parses `r,c;r,c;…`.
pub fn parse_cells(text: &str) -> Result<Vec<(usize, usize)>, String> {
    text.split(';')
        .filter(|s| !s.trim().is_empty())
        .enumerate()
        .map(|(k, pair)| {
            let (r, c) = pair
                .split_once(',')
                .ok_or_else(|| format!("cell {k} (`{pair}`) is not `row,col`"))?;
            let parse = |s: &str, what: &str| {
                s.trim()
                    .parse::<usize>()
                    .map_err(|_| format!("cell {k} (`{pair}`): the {what} is not a whole number"))
            };
            Ok((parse(r, "row")?, parse(c, "column")?))
        })
        .collect()
}

/// A recorded run read back from its folder.
pub struct RunData {
    /// The resolved scene of the run.
    pub scene: FieldScene,
    /// Sample times.
    pub t: Vec<f64>,
    /// E per sample, row-major cells per sample.
    pub e: Vec<f64>,
}

impl RunData {
    /// Reads `scene.ron` and the times and E of a run folder (NPY files or
    /// a Zarr store) that recorded every cell.
    pub fn load(dir: &Path) -> Result<Self, String> {
        let scene = FieldScene::load(&dir.join("scene.ron")).map_err(|e| e.to_string())?;
        let stored = eifield_store::StoredRun::open(dir, scene.grid.rows, scene.grid.cols)
            .map_err(|e| e.to_string())?;
        if stored.layout.stride != 1 {
            return Err(format!(
                "{}: the run kept every {}th cell; this needs a run that recorded every cell",
                dir.display(),
                stored.layout.stride
            ));
        }
        let t = stored.times().map_err(|e| e.to_string())?;
        let e = stored.read("E").map_err(|e| e.to_string())?;
        if t.is_empty() {
            return Err(format!("{}: the run has no samples", dir.display()));
        }
        Ok(Self { scene, t, e })
    }

    fn cells(&self) -> usize {
        self.scene.grid.len()
    }

    fn series(&self, cell: usize) -> impl Iterator<Item = (f64, f64)> + '_ {
        let n = self.cells();
        self.t
            .iter()
            .enumerate()
            .map(move |(k, &t)| (t, self.e[k * n + cell]))
    }

    /// The first and last sample times (a unit apart at least).
    pub fn t_range(&self) -> (f64, f64) {
        let (a, b) = (self.t[0], *self.t.last().expect("not empty"));
        if b > a { (a, b) } else { (a, a + 1.0) }
    }
}

/// The first stimulated cell of a scene, `(row, col)`.
pub fn stimulated_cell(scene: &FieldScene) -> Option<(usize, usize)> {
    scene.effective_stimuli().first().map(|s| {
        let eifield_model::scene::Stimulus::PulseTrain { row, col, .. } = *s;
        (row, col)
    })
}

/// The cells whose traces are drawn: all of a small lattice, else
/// [`SUBSET_CELLS`] cells evenly spaced along the row through the stimulus,
/// from the stimulus outwards.
pub fn default_trace_cells(grid: &Grid, stimulus: Option<(usize, usize)>) -> Vec<(usize, usize)> {
    if grid.len() <= ALL_CELLS_LIMIT {
        return (0..grid.len()).map(|k| grid.position(k)).collect();
    }
    let (row, col) = stimulus.unwrap_or((grid.rows / 2, grid.cols / 2));
    // Towards the farther edge of the row.
    let (start, end) = if grid.cols - 1 - col >= col {
        (col as f64, (grid.cols - 1) as f64)
    } else {
        (col as f64, 0.0)
    };
    let count = SUBSET_CELLS.min(grid.cols);
    let mut cells: Vec<(usize, usize)> = (0..count)
        .map(|k| {
            let f = if count > 1 {
                k as f64 / (count - 1) as f64
            } else {
                0.0
            };
            (row, (start + f * (end - start)).round() as usize)
        })
        .collect();
    cells.dedup();
    cells
}

/// A figure's drawing area.
pub type Area<'a> = DrawingArea<BitMapBackend<'a>, Shift>;

/// The range of the finite values, widened to one unit each side when flat.
fn finite_range(values: impl Iterator<Item = f64>) -> (f64, f64) {
    let (lo, hi) = values
        .filter(|v| v.is_finite())
        .fold((f64::INFINITY, f64::NEG_INFINITY), |(a, b), v| {
            (a.min(v), b.max(v))
        });
    if lo < hi {
        (lo, hi)
    } else if lo.is_finite() {
        (lo - 1.0, lo + 1.0)
    } else {
        (-1.0, 1.0)
    }
}

fn drawing_error(e: impl std::fmt::Display) -> String {
    format!("drawing a figure: {e}")
}

/// Draws with `draw` into a `size` RGB buffer and saves it as a PNG.
pub fn save_png(
    path: &Path,
    size: (u32, u32),
    draw: impl FnOnce(&Area) -> Result<(), String>,
) -> Result<(), String> {
    let mut buffer = vec![0u8; size.0 as usize * size.1 as usize * 3];
    {
        let root = BitMapBackend::with_buffer(&mut buffer, size).into_drawing_area();
        root.fill(&WHITE).map_err(drawing_error)?;
        draw(&root)?;
        root.present().map_err(drawing_error)?;
    }
    image::save_buffer(
        path,
        &buffer,
        size.0,
        size.1,
        image::ExtendedColorType::Rgb8,
    )
    .map_err(|e| format!("{}: {e}", path.display()))
}

fn rgb(kind: ColorMapName, v: f64, lo: f64, hi: f64) -> RGBColor {
    thread_local! {
        static LUTS: std::cell::RefCell<Vec<(ColorMapName, Vec<[u8; 3]>)>> = const { std::cell::RefCell::new(Vec::new()) };
    }
    LUTS.with(|luts| {
        let mut luts = luts.borrow_mut();
        if !luts.iter().any(|(k, _)| *k == kind) {
            luts.push((kind, kind.lut_srgb8()));
        }
        let lut = &luts.iter().find(|(k, _)| *k == kind).expect("inserted").1;
        let [r, g, b] = lut[lut_index(v as f32, lo as f32, hi as f32)];
        RGBColor(r, g, b)
    })
}

fn stacked_traces(root: &Area, run: &RunData, cells: &[(usize, usize)]) -> Result<(), String> {
    let grid = run.scene.grid;
    let index: Vec<usize> = cells.iter().map(|&(r, c)| grid.index(r, c)).collect();
    let (lo, hi) = finite_range(index.iter().flat_map(|&i| run.series(i).map(|(_, e)| e)));
    let offset = (hi - lo) * 1.1;
    let (t0, t1) = run.t_range();
    let n = index.len();
    let mut chart = ChartBuilder::on(root)
        .caption(
            format!(
                "E of {n} cells, stacked ({} × {} lattice)",
                grid.rows, grid.cols
            ),
            (FONT, 26),
        )
        .margin(12)
        .x_label_area_size(44)
        .y_label_area_size(70)
        .build_cartesian_2d(t0..t1, lo - 0.05 * offset..lo + offset * n as f64)
        .map_err(drawing_error)?;
    chart
        .configure_mesh()
        .disable_y_mesh()
        .light_line_style(WHITE)
        .x_desc("t (model time)")
        .y_desc("cell (row, col), each trace offset upwards")
        .y_labels(0)
        .label_style((FONT, 16))
        .draw()
        .map_err(drawing_error)?;
    for (k, (&cell, &(r, c))) in index.iter().zip(cells).enumerate() {
        let shift = offset * k as f64;
        let colour = rgb(ColorMapName::Viridis, k as f64, 0.0, n.max(2) as f64 * 1.15);
        chart
            .draw_series(LineSeries::new(
                run.series(cell).map(|(t, e)| (t, e + shift)),
                colour.stroke_width(if n > 24 { 1 } else { 2 }),
            ))
            .map_err(drawing_error)?;
        if n <= 24 || k % (n / 24 + 1) == 0 {
            chart
                .draw_series(std::iter::once(Text::new(
                    format!("({r},{c})"),
                    (t0, shift + lo + 0.5 * (hi - lo)),
                    (FONT, 14).into_font().color(&BLACK),
                )))
                .map_err(drawing_error)?;
        }
    }
    Ok(())
}

fn raster(root: &Area, run: &RunData) -> Result<(), String> {
    let grid = run.scene.grid;
    let (cells, axis): (Vec<usize>, String) = if grid.len() <= RASTER_ALL_LIMIT {
        ((0..grid.len()).collect(), "cell (row-major index)".into())
    } else {
        let row = stimulated_cell(&run.scene).map_or(grid.rows / 2, |(r, _)| r);
        (
            (0..grid.cols).map(|c| grid.index(row, c)).collect(),
            format!("column (row {row}, through the stimulus)"),
        )
    };
    cells_against_time(root, run, &cells, "E raster (cells × time)", &axis)
}

/// E of `cells` (in order, bottom to top) against time in blue-white-red,
/// with a colour bar: the raster and the kymographs.
fn cells_against_time(
    root: &Area,
    run: &RunData,
    cells: &[usize],
    caption: &str,
    axis: &str,
) -> Result<(), String> {
    let (t0, t1) = run.t_range();
    let (lo, hi) = finite_range(cells.iter().flat_map(|&i| run.series(i).map(|(_, e)| e)));
    let (main, bar) = root.split_horizontally(root.dim_in_pixel().0 as i32 - 110);
    let mut chart = ChartBuilder::on(&main)
        .caption(caption, (FONT, 26))
        .margin(12)
        .x_label_area_size(44)
        .y_label_area_size(70)
        .build_cartesian_2d(t0..t1, 0.0..cells.len() as f64)
        .map_err(drawing_error)?;
    chart
        .configure_mesh()
        .disable_mesh()
        .x_desc("t (model time)")
        .y_desc(axis)
        .y_label_formatter(&|v| format!("{v:.0}"))
        .label_style((FONT, 16))
        .draw()
        .map_err(drawing_error)?;
    // One rectangle per pixel-sized bin at most.
    let (px_w, px_h) = chart.plotting_area().dim_in_pixel();
    let samples = run.t.len();
    let time_bins = samples.min(px_w.max(1) as usize);
    let cell_bins = cells.len().min(px_h.max(1) as usize);
    let n = run.cells();
    let dt = (t1 - t0) / time_bins as f64;
    let mut rects = Vec::with_capacity(time_bins * cell_bins);
    for cb in 0..cell_bins {
        let cell = cells[cb * cells.len() / cell_bins];
        let (y0, y1) = (
            (cb * cells.len() / cell_bins) as f64,
            ((cb + 1) * cells.len() / cell_bins) as f64,
        );
        for tb in 0..time_bins {
            let sample = (tb * samples / time_bins).min(samples - 1);
            let v = run.e[sample * n + cell];
            let x0 = t0 + tb as f64 * dt;
            rects.push(Rectangle::new(
                [(x0, y0), (x0 + dt, y1)],
                rgb(ColorMapName::BlueWhiteRed, v, lo, hi).filled(),
            ));
        }
    }
    chart.draw_series(rects).map_err(drawing_error)?;
    colour_bar(&bar, (lo, hi), ColorMapName::BlueWhiteRed, "E")
}

/// A vertical colour bar of `map` over `range`, labelled `label`.
fn colour_bar(
    area: &Area,
    (lo, hi): (f64, f64),
    map: ColorMapName,
    label: &str,
) -> Result<(), String> {
    let mut chart = ChartBuilder::on(area)
        .margin_top(52)
        .margin_bottom(56)
        .margin_right(12)
        .y_label_area_size(52)
        .build_cartesian_2d(0.0..1.0, lo..hi)
        .map_err(drawing_error)?;
    chart
        .configure_mesh()
        .disable_mesh()
        .disable_x_axis()
        .y_desc(label)
        .label_style((FONT, 14))
        .draw()
        .map_err(drawing_error)?;
    let steps = 200;
    let step = (hi - lo) / steps as f64;
    chart
        .draw_series((0..steps).map(|k| {
            let v = lo + (k as f64 + 0.5) * step;
            Rectangle::new(
                [
                    (0.0, lo + k as f64 * step),
                    (1.0, lo + (k + 1) as f64 * step),
                ],
                rgb(map, v, lo, hi).filled(),
            )
        }))
        .map_err(drawing_error)?;
    Ok(())
}

fn stimulus_figure(root: &Area, run: &RunData, (row, col): (usize, usize)) -> Result<(), String> {
    let grid = run.scene.grid;
    let cell = grid.index(row, col);
    let trains: Vec<PulseTrain> = run
        .scene
        .effective_stimuli()
        .iter()
        .map(|s| PulseTrain::from_stimulus(s, grid.cols))
        .filter(|p| p.cell == cell)
        .collect();
    let (t0, t1) = run.t_range();
    // The pulse trains are piecewise constant: sample them finely enough to show every edge.
    let fine = (run.t.len() * 4).max(2000);
    let stimulus: Vec<(f64, f64)> = (0..=fine)
        .map(|k| {
            let t = t0 + (t1 - t0) * k as f64 / fine as f64;
            (t, trains.iter().map(|p| p.value(t)).sum())
        })
        .collect();
    let height = root.dim_in_pixel().1;
    let (upper, lower) = root.split_vertically((height as f64 * 0.68) as i32);
    let (lo, hi) = finite_range(run.series(cell).map(|(_, e)| e));
    let pad = 0.05 * (hi - lo);
    let mut top = ChartBuilder::on(&upper)
        .caption(
            format!("Stimulated cell ({row},{col}): E and its stimulus"),
            (FONT, 26),
        )
        .margin(12)
        .x_label_area_size(30)
        .y_label_area_size(70)
        .build_cartesian_2d(t0..t1, lo - pad..hi + pad)
        .map_err(drawing_error)?;
    top.configure_mesh()
        .y_desc("E")
        .label_style((FONT, 16))
        .draw()
        .map_err(drawing_error)?;
    top.draw_series(LineSeries::new(run.series(cell), BLUE.stroke_width(2)))
        .map_err(drawing_error)?;
    let s_max = stimulus.iter().map(|&(_, s)| s).fold(0.0f64, f64::max);
    let s_min = stimulus.iter().map(|&(_, s)| s).fold(0.0f64, f64::min);
    let s_pad = 0.1 * (s_max - s_min).max(1e-9);
    let mut bottom = ChartBuilder::on(&lower)
        .margin(12)
        .x_label_area_size(44)
        .y_label_area_size(70)
        .build_cartesian_2d(t0..t1, s_min - s_pad..s_max + s_pad)
        .map_err(drawing_error)?;
    bottom
        .configure_mesh()
        .x_desc("t (model time)")
        .y_desc("stimulus")
        .label_style((FONT, 16))
        .draw()
        .map_err(drawing_error)?;
    bottom
        .draw_series(LineSeries::new(stimulus, RED.stroke_width(2)))
        .map_err(drawing_error)?;
    Ok(())
}

/// A kymograph: E of the cells along a line (in order) against time.
pub fn kymograph(root: &Area, run: &RunData, line: &[(usize, usize)]) -> Result<(), String> {
    let grid = run.scene.grid;
    let cells: Vec<usize> = line.iter().map(|&(r, c)| grid.index(r, c)).collect();
    let (a, b) = (line[0], line[line.len() - 1]);
    cells_against_time(
        root,
        run,
        &cells,
        &format!(
            "Kymograph: E along the line ({},{}) to ({},{})",
            a.0, a.1, b.0, b.1
        ),
        &format!("cell along the line ({} cells)", cells.len()),
    )
}

/// The activation map: each cell coloured by its first activation time (grey
/// where it never activated), isochrones every `step` units of time drawn as
/// the cell edges where the time band changes, stimulated cells ringed.
pub fn activation_map(
    root: &Area,
    grid: &Grid,
    first: &[f64],
    stimulated: &[usize],
    step: f64,
) -> Result<(), String> {
    let (lo, hi) = finite_range(first.iter().copied());
    let (main, bar) = root.split_horizontally(root.dim_in_pixel().0 as i32 - 110);
    let (rows, cols) = (grid.rows as f64, grid.cols as f64);
    let mut chart = ChartBuilder::on(&main)
        .caption(
            format!("First activation time (isochrones every {step:.3})"),
            (FONT, 26),
        )
        .margin(12)
        .x_label_area_size(44)
        .y_label_area_size(60)
        .build_cartesian_2d(0.0..cols, rows..0.0)
        .map_err(drawing_error)?;
    chart
        .configure_mesh()
        .disable_mesh()
        .x_desc("column")
        .y_desc("row")
        .label_style((FONT, 16))
        .draw()
        .map_err(drawing_error)?;
    chart
        .draw_series((0..grid.len()).map(|k| {
            let (r, c) = grid.position(k);
            let colour = if first[k].is_finite() {
                rgb(ColorMapName::Viridis, first[k], lo, hi)
            } else {
                RGBColor(200, 200, 200)
            };
            Rectangle::new(
                [(c as f64, r as f64), (c as f64 + 1.0, r as f64 + 1.0)],
                colour.filled(),
            )
        }))
        .map_err(drawing_error)?;
    let band = |k: usize| {
        first[k]
            .is_finite()
            .then(|| (first[k] / step).floor() as i64)
    };
    let mut edges = Vec::new();
    for k in 0..grid.len() {
        let (r, c) = grid.position(k);
        if c + 1 < grid.cols && band(k) != band(k + 1) {
            let x = (c + 1) as f64;
            edges.push(vec![(x, r as f64), (x, r as f64 + 1.0)]);
        }
        if r + 1 < grid.rows && band(k) != band(k + grid.cols) {
            let y = (r + 1) as f64;
            edges.push(vec![(c as f64, y), (c as f64 + 1.0, y)]);
        }
    }
    chart
        .draw_series(
            edges
                .into_iter()
                .map(|e| PathElement::new(e, BLACK.stroke_width(2))),
        )
        .map_err(drawing_error)?;
    chart
        .draw_series(stimulated.iter().map(|&k| {
            let (r, c) = grid.position(k);
            Circle::new((c as f64 + 0.5, r as f64 + 0.5), 8, RED.stroke_width(3))
        }))
        .map_err(drawing_error)?;
    colour_bar(&bar, (lo, hi), ColorMapName::Viridis, "t")
}

/// Distance to the nearest stimulated cell against first activation time,
/// one point per cell used, with the least-squares line.
pub fn distance_time(
    root: &Area,
    points: &[(f64, f64)],
    fit: Option<(f64, f64)>,
    title: &str,
) -> Result<(), String> {
    let (t0, t1) = finite_range(points.iter().map(|p| p.0));
    let (_, r1) = finite_range(points.iter().map(|p| p.1));
    let mut chart = ChartBuilder::on(root)
        .caption(title, (FONT, 26))
        .margin(16)
        .x_label_area_size(44)
        .y_label_area_size(60)
        .build_cartesian_2d(t0..t1, 0.0..r1 * 1.05)
        .map_err(drawing_error)?;
    chart
        .configure_mesh()
        .x_desc("first activation time")
        .y_desc("distance to the stimulus (cells)")
        .label_style((FONT, 16))
        .draw()
        .map_err(drawing_error)?;
    chart
        .draw_series(
            points
                .iter()
                .map(|&(t, r)| Circle::new((t, r), 3, BLUE.mix(0.6).filled())),
        )
        .map_err(drawing_error)?;
    if let Some((speed, intercept)) = fit {
        chart
            .draw_series(LineSeries::new(
                [t0, t1].map(|t| (t, speed * t + intercept)),
                RED.stroke_width(3),
            ))
            .map_err(drawing_error)?;
    }
    Ok(())
}

/// Writes the figures of the run in `run_dir` into `run_dir/figures/` and
/// returns their paths. Existing figure files are replaced only with `force`.
pub fn write_figures(run_dir: &Path, options: &FigureOptions) -> Result<Vec<PathBuf>, String> {
    let (w, h) = options.size;
    if !(200..=8192).contains(&w) || !(150..=8192).contains(&h) {
        return Err(format!(
            "figure size {w}x{h} is outside 200x150 … 8192x8192 pixels"
        ));
    }
    let run = RunData::load(run_dir)?;
    let grid = run.scene.grid;
    let cells = match &options.cells {
        Some(cells) => {
            for (k, &(r, c)) in cells.iter().enumerate() {
                if r >= grid.rows || c >= grid.cols {
                    return Err(format!(
                        "cells[{k}] = ({r},{c}) is outside the {} × {} lattice",
                        grid.rows, grid.cols
                    ));
                }
            }
            if cells.is_empty() {
                return Err("the cell list is empty".into());
            }
            cells.clone()
        }
        None => default_trace_cells(&grid, stimulated_cell(&run.scene)),
    };
    let line = match options.kymograph {
        Some((a, b)) => {
            for (name, (r, c)) in [("start", a), ("end", b)] {
                if r >= grid.rows || c >= grid.cols {
                    return Err(format!(
                        "the kymograph's {name} ({r},{c}) is outside the {} × {} lattice",
                        grid.rows, grid.cols
                    ));
                }
            }
            Some(eifield_model::analysis::line_cells(a, b))
        }
        None => None,
    };
    let out = run_dir.join("figures");
    let mut paths: Vec<PathBuf> = FIGURE_FILES.iter().map(|f| out.join(f)).collect();
    if line.is_some() {
        paths.push(out.join(KYMOGRAPH_FILE));
    }
    if !options.force
        && let Some(existing) = paths.iter().find(|p| p.exists())
    {
        return Err(format!(
            "{} exists; pass --force to replace the figures",
            existing.display()
        ));
    }
    std::fs::create_dir_all(&out).map_err(|e| format!("{}: {e}", out.display()))?;
    register_font();
    let mut written = Vec::new();
    save_png(&paths[0], options.size, |root| {
        stacked_traces(root, &run, &cells)
    })?;
    written.push(paths[0].clone());
    save_png(&paths[1], options.size, |root| raster(root, &run))?;
    written.push(paths[1].clone());
    if let Some(stimulated) = stimulated_cell(&run.scene) {
        save_png(&paths[2], options.size, |root| {
            stimulus_figure(root, &run, stimulated)
        })?;
        written.push(paths[2].clone());
    }
    if let Some(line) = &line {
        save_png(&paths[3], options.size, |root| kymograph(root, &run, line))?;
        written.push(paths[3].clone());
    }
    Ok(written)
}

#[cfg(test)]
mod tests {
    use super::*;
    use eifield_model::Boundary;

    #[test]
    fn cell_lists_parse_and_errors_name_the_entry() {
        assert_eq!(parse_cells("3,3; 0,6"), Ok(vec![(3, 3), (0, 6)]));
        assert!(parse_cells("3,3;4").unwrap_err().contains("cell 1"));
        assert!(parse_cells("x,3").unwrap_err().contains("row"));
    }

    #[test]
    fn big_lattices_trace_a_row_outwards_from_the_stimulus() {
        let small = Grid::new(7, 7, Boundary::Open);
        assert_eq!(default_trace_cells(&small, Some((3, 3))).len(), 49);
        let big = Grid::new(64, 64, Boundary::Open);
        let cells = default_trace_cells(&big, Some((32, 40)));
        assert_eq!(cells.len(), SUBSET_CELLS);
        assert_eq!(cells[0], (32, 40));
        assert!(cells.iter().all(|&(r, _)| r == 32));
        // The longer side of the row is towards column 0.
        assert_eq!(cells.last(), Some(&(32, 0)));
    }
}
