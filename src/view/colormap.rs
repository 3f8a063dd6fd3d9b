//! Colour maps for the surface and the raster, sampled once into lookup tables
//! from the colorgrad library.

use colorgrad::Gradient;
use eifield_model::scene::ColorMapName;

/// Entries in a colour lookup table.
pub const LUT_SIZE: usize = 256;

/// Colour lookup tables for the scene's colour maps.
pub trait ColorMapLut {
    /// A lookup table of sRGB colours (`[r, g, b]`, 0–255), from low to high.
    fn lut_srgb8(self) -> Vec<[u8; 3]>;
}

impl ColorMapLut for ColorMapName {
    fn lut_srgb8(self) -> Vec<[u8; 3]> {
        let g = gradient(self);
        (0..LUT_SIZE)
            .map(|k| {
                let [r, gg, b, _] = g.at(k as f32 / (LUT_SIZE - 1) as f32).to_rgba8();
                [r, gg, b]
            })
            .collect()
    }
}

fn gradient(map: ColorMapName) -> Box<dyn Gradient> {
    match map {
        ColorMapName::Viridis => Box::new(colorgrad::preset::viridis()),
        ColorMapName::Hot => Box::new(
            colorgrad::GradientBuilder::new()
                .colors(&[
                    colorgrad::Color::new(0.0, 0.0, 0.0, 1.0),
                    colorgrad::Color::new(1.0, 0.0, 0.0, 1.0),
                    colorgrad::Color::new(1.0, 1.0, 0.0, 1.0),
                    colorgrad::Color::new(1.0, 1.0, 1.0, 1.0),
                ])
                .domain(&[0.0, 0.375, 0.75, 1.0])
                .build::<colorgrad::LinearGradient>()
                .expect("a valid gradient"),
        ),
        // RdBu runs red to blue; reversed it is blue–white–red.
        ColorMapName::BlueWhiteRed => Box::new(ReversedRdBu(colorgrad::preset::rd_bu())),
    }
}

#[derive(Clone)]
struct ReversedRdBu(colorgrad::BasisGradient);

impl Gradient for ReversedRdBu {
    fn at(&self, t: f32) -> colorgrad::Color {
        self.0.at(1.0 - t)
    }
}

/// Maps a value to a table index given the colour range `[lo, hi]`.
pub fn lut_index(value: f32, lo: f32, hi: f32) -> usize {
    let span = hi - lo;
    // A reversed range (lo > hi) reverses the map; an empty one gives the middle.
    let t = if span != 0.0 {
        (value - lo) / span
    } else {
        0.5
    };
    let t = if t.is_nan() { 0.0 } else { t.clamp(0.0, 1.0) };
    (t * (LUT_SIZE - 1) as f32).round() as usize
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn maps_run_in_the_expected_direction() {
        let hot = ColorMapName::Hot.lut_srgb8();
        assert_eq!(hot[0], [0, 0, 0]);
        assert_eq!(hot[LUT_SIZE - 1], [255, 255, 255]);
        let bwr = ColorMapName::BlueWhiteRed.lut_srgb8();
        let (lo, mid, hi) = (bwr[0], bwr[LUT_SIZE / 2], bwr[LUT_SIZE - 1]);
        assert!(lo[2] > lo[0], "low end is blue: {lo:?}");
        assert!(hi[0] > hi[2], "high end is red: {hi:?}");
        assert!(
            mid.iter().all(|&c| c > 220),
            "middle is near white: {mid:?}"
        );
        let viridis = ColorMapName::Viridis.lut_srgb8();
        assert!(viridis[0][2] > viridis[0][1], "viridis starts purple");
        assert!(viridis[LUT_SIZE - 1][1] > 200, "viridis ends yellow");
    }

    #[test]
    fn index_clamps_and_handles_flat_ranges() {
        assert_eq!(lut_index(-10.0, 0.0, 1.0), 0);
        assert_eq!(lut_index(10.0, 0.0, 1.0), LUT_SIZE - 1);
        assert_eq!(lut_index(0.5, 0.0, 1.0), 128);
        assert_eq!(lut_index(3.0, 1.0, 1.0), 128);
        assert_eq!(lut_index(f32::NAN, 0.0, 1.0), 0);
        // A reversed range reverses the map.
        assert_eq!(lut_index(1.0, 1.0, 0.0), 0);
        assert_eq!(lut_index(0.0, 1.0, 0.0), LUT_SIZE - 1);
    }
}
