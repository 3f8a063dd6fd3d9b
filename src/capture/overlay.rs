//! The overlay of videos made for talks: the scene's name and the model time
//! (top left) and a colour bar with its range and the field's name (right),
//! drawn onto captured frames before they are encoded. Nothing outside
//! [`Overlay::regions`] is touched.

use std::sync::Once;

use eifield_model::scene::{ColorMapName, ViewField};
use plotters::prelude::*;
#[cfg(not(target_arch = "wasm32"))]
use plotters::style::FontStyle;

use crate::view::colormap::{ColorMapLut, lut_index};

/// The name the embedded font is registered under with plotters (so that
/// figures and overlays need no system fonts).
pub const FONT: &str = "sans-serif";
/// The font of figures and overlays (Ubuntu Light, under the Ubuntu Font
/// Licence), embedded so that they look the same on every machine.
#[cfg(not(target_arch = "wasm32"))]
const FONT_TTF: &[u8] = include_bytes!("../../assets/fonts/Ubuntu-Light.ttf");

/// Registers the embedded font with plotters (once). (The web page draws
/// no overlays: plotters has no font files there.)
pub fn register_font() {
    static ONCE: Once = Once::new();
    ONCE.call_once(|| {
        // The font is valid TrueType; failing here would be a build defect.
        #[cfg(not(target_arch = "wasm32"))]
        let _ = plotters::style::register_font(FONT, FontStyle::Normal, FONT_TTF);
    });
}

/// Width of the title box, in pixels at a 720-pixel-high frame.
const TITLE_WIDTH: f64 = 420.0;
/// Height of the title box.
const TITLE_HEIGHT: f64 = 86.0;
/// Width of the colour bar box.
const BAR_WIDTH: f64 = 110.0;
/// Height of the colour bar box.
const BAR_HEIGHT: f64 = 300.0;
/// Distance of the boxes from the frame's edges.
const MARGIN: f64 = 16.0;

/// What the overlay shows.
#[derive(Debug, Clone)]
pub struct Overlay {
    /// The scene's name.
    pub name: String,
    /// The field shown.
    pub field: ViewField,
    /// The colour map.
    pub colormap: ColorMapName,
    /// Field values at the low and high ends of the colour map.
    pub range: (f64, f64),
}

/// A rectangle of a frame: left, top, width, height in pixels.
pub type Region = (u32, u32, u32, u32);

impl Overlay {
    /// The colour bar: the field's name on top, the ramp, five values beside it.
    fn draw_bar<DB: DrawingBackend>(
        &self,
        area: &DrawingArea<DB, plotters::coord::Shift>,
        scale: f64,
    ) -> Result<(), DrawingAreaErrorKind<DB::ErrorType>> {
        let (w, h) = area.dim_in_pixel();
        let (w, h) = (w as i32, h as i32);
        let px = |v: f64| (v * scale).round() as i32;
        let text = RGBColor(230, 230, 235);
        let label = match self.field {
            ViewField::E => "E",
            ViewField::I => "I",
        };
        let font = |size: f64| (FONT, px(size).max(7) as u32).into_font().color(&text);
        area.draw_text(label, &font(24.0), (px(12.0), px(10.0)))?;
        let (top, bottom) = (px(48.0), h - px(14.0));
        let (left, right) = (px(14.0), px(14.0) + (w / 4).max(4));
        let lut = self.colormap.lut_srgb8();
        let (lo, hi) = self.range;
        for y in top..bottom {
            // The top of the ramp is the high end.
            let v = hi + (lo - hi) * (y - top) as f64 / (bottom - top).max(1) as f64;
            let [r, g, b] = lut[lut_index(v as f32, lo as f32, hi as f32)];
            area.draw(&Rectangle::new(
                [(left, y), (right, y + 1)],
                RGBColor(r, g, b).filled(),
            ))?;
        }
        area.draw(&Rectangle::new(
            [(left, top), (right, bottom)],
            text.stroke_width(1),
        ))?;
        for k in 0..=4 {
            let y = top + (bottom - top) * k / 4;
            let v = hi + (lo - hi) * k as f64 / 4.0;
            area.draw(&PathElement::new(
                vec![(right, y), (right + px(6.0), y)],
                text,
            ))?;
            area.draw_text(
                &format!("{v:.1}"),
                &font(18.0),
                (right + px(10.0), y - px(9.0)),
            )?;
        }
        Ok(())
    }

    /// The two boxes the overlay draws in, for a frame of `size` pixels
    /// (scaled with the frame's height, and kept inside it).
    pub fn regions(size: (u32, u32)) -> [Region; 2] {
        let scale = size.1 as f64 / 720.0;
        let px = |v: f64, max: u32| ((v * scale).round() as u32).min(max);
        let margin = px(MARGIN, size.0 / 8);
        let title = (
            margin,
            margin,
            px(TITLE_WIDTH, size.0.saturating_sub(2 * margin)),
            px(TITLE_HEIGHT, size.1.saturating_sub(2 * margin)),
        );
        let bar_w = px(BAR_WIDTH, size.0 / 3);
        let bar = (
            size.0.saturating_sub(bar_w + margin),
            margin,
            bar_w,
            px(BAR_HEIGHT, size.1.saturating_sub(2 * margin)),
        );
        [title, bar]
    }

    /// Draws the overlay for model time `t` onto an RGBA frame of `size`.
    pub fn draw(&self, rgba: &mut [u8], size: (u32, u32), t: f64) -> Result<(), String> {
        register_font();
        let (w, h) = (size.0 as usize, size.1 as usize);
        let mut rgb: Vec<u8> = rgba
            .chunks_exact(4)
            .flat_map(|p| [p[0], p[1], p[2]])
            .collect();
        let scale = size.1 as f64 / 720.0;
        let error = |e: &dyn std::fmt::Display| format!("drawing the overlay: {e}");
        {
            let root = BitMapBackend::with_buffer(&mut rgb, size).into_drawing_area();
            let [title, bar] = Self::regions(size);
            let panel = RGBColor(16, 16, 22).mix(0.72);
            let area = |(x, y, rw, rh): Region| root.clone().shrink((x, y), (rw, rh));
            let title_area = area(title);
            title_area.fill(&panel).map_err(|e| error(&e))?;
            let big = ((26.0 * scale).round() as u32).max(8);
            let small = ((22.0 * scale).round() as u32).max(7);
            let pad = (12.0 * scale).round() as i32;
            title_area
                .draw_text(
                    &self.name,
                    &(FONT, big).into_font().color(&WHITE),
                    (pad, pad),
                )
                .map_err(|e| error(&e))?;
            title_area
                .draw_text(
                    &format!("t = {t:.2}"),
                    &(FONT, small).into_font().color(&RGBColor(220, 220, 225)),
                    (pad, pad + big as i32 + (6.0 * scale) as i32),
                )
                .map_err(|e| error(&e))?;
            let bar_area = area(bar);
            bar_area.fill(&panel).map_err(|e| error(&e))?;
            self.draw_bar(&bar_area, scale).map_err(|e| error(&e))?;
            root.present().map_err(|e| error(&e))?;
        }
        for (k, p) in rgba.chunks_exact_mut(4).enumerate().take(w * h) {
            p[..3].copy_from_slice(&rgb[3 * k..3 * k + 3]);
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_overlay_draws_inside_its_regions_only() {
        let size = (640, 360);
        let frame: Vec<u8> = (0..size.0 * size.1 * 4).map(|k| (k % 251) as u8).collect();
        let mut drawn = frame.clone();
        Overlay {
            name: "Target waves".into(),
            field: ViewField::E,
            colormap: ColorMapName::Viridis,
            range: (-1.5, 2.5),
        }
        .draw(&mut drawn, size, 12.5)
        .unwrap();
        let regions = Overlay::regions(size);
        let inside = |x: u32, y: u32| {
            regions
                .iter()
                .any(|&(rx, ry, rw, rh)| x >= rx && x < rx + rw && y >= ry && y < ry + rh)
        };
        let mut changed_inside = 0;
        for y in 0..size.1 {
            for x in 0..size.0 {
                let k = 4 * (y * size.0 + x) as usize;
                if drawn[k..k + 4] != frame[k..k + 4] {
                    assert!(inside(x, y), "pixel ({x}, {y}) outside the overlay changed");
                    changed_inside += 1;
                }
            }
        }
        assert!(changed_inside > 1000, "{changed_inside} pixels drawn");
    }
}
