//! PNG copies of the SVG plots, for places that show no SVG (chat, slides, some review tools).
//!
//! The SVG is rasterised as it is, so the two never differ in content. Its text is set in the
//! DejaVu Sans shipped in `assets/` (Bitstream Vera licence, `assets/DejaVuSans-LICENSE`): no
//! system font is looked up, so a PNG made on a bare server reads the same as one made on a
//! desktop.

use std::path::Path;
use std::sync::OnceLock;

use resvg::{tiny_skia, usvg};

use crate::error::{Result, TrainError};

/// The font every PNG's text is set in, compiled into the binary.
const FONT: &[u8] = include_bytes!("../assets/DejaVuSans.ttf");

/// Pixels per SVG unit: twice the SVG's size, sharp on high-density screens and in print.
pub const SCALE: f32 = 2.0;

/// Parsing options with only the shipped font, loaded once.
fn options() -> &'static usvg::Options<'static> {
    static OPTIONS: OnceLock<usvg::Options<'static>> = OnceLock::new();
    OPTIONS.get_or_init(|| {
        let mut options = usvg::Options::default();
        let fonts = options.fontdb_mut();
        fonts.load_font_data(FONT.to_vec());
        // Plotters names the generic families; all of them map to the one font shipped.
        fonts.set_sans_serif_family("DejaVu Sans");
        fonts.set_serif_family("DejaVu Sans");
        fonts.set_monospace_family("DejaVu Sans");
        options.font_family = "DejaVu Sans".into();
        options
    })
}

/// Renders `svg` at [`SCALE`] on white and encodes it as PNG; `path` names the plot in errors.
pub fn render(svg: &str, path: &Path) -> Result<Vec<u8>> {
    let error = |message: String| TrainError::Checkpoint {
        path: path.to_owned(),
        message: format!("rendering the PNG: {message}"),
    };
    let tree = usvg::Tree::from_str(svg, options()).map_err(|e| error(e.to_string()))?;
    let size = tree.size().to_int_size().scale_by(SCALE).ok_or_else(|| error("empty".into()))?;
    let mut pixmap = tiny_skia::Pixmap::new(size.width(), size.height())
        .ok_or_else(|| error(format!("{}×{} pixels is too large", size.width(), size.height())))?;
    pixmap.fill(tiny_skia::Color::WHITE);
    resvg::render(&tree, tiny_skia::Transform::from_scale(SCALE, SCALE), &mut pixmap.as_mut());
    pixmap.encode_png().map_err(|e| error(e.to_string()))
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Decodes a PNG back to pixels (tiny-skia reads what it writes).
    fn decode(png: &[u8]) -> tiny_skia::Pixmap {
        tiny_skia::Pixmap::decode_png(png).expect("a PNG")
    }

    fn dark_pixels(pixmap: &tiny_skia::Pixmap) -> usize {
        pixmap.pixels().iter().filter(|p| p.red() < 128 && p.alpha() > 0).count()
    }

    #[test]
    fn text_is_drawn_with_the_shipped_font() {
        // Text only: without a usable font the image would be blank white.
        let svg = r#"<svg xmlns="http://www.w3.org/2000/svg" width="200" height="40">
            <text x="5" y="30" font-family="sans-serif" font-size="24">AUC ± 0.01</text></svg>"#;
        let pixmap = decode(&render(svg, Path::new("t.png")).unwrap());
        assert_eq!((pixmap.width(), pixmap.height()), (400, 80));
        let dark = dark_pixels(&pixmap);
        assert!(dark > 500, "only {dark} dark pixels: the text was not drawn");
        // The background is white, not transparent.
        let corner = pixmap.pixel(0, 0).unwrap();
        assert_eq!((corner.red(), corner.alpha()), (255, 255));
    }

    #[test]
    fn a_plotters_svg_renders_with_its_text() {
        use plotters::prelude::*;
        let mut svg = String::new();
        {
            let root = SVGBackend::with_string(&mut svg, (300, 200)).into_drawing_area();
            root.fill(&WHITE).unwrap();
            root.draw(&Text::new("watch_ratio", (20, 100), ("sans-serif", 20))).unwrap();
            root.present().unwrap();
        }
        let with_text = dark_pixels(&decode(&render(&svg, Path::new("t.png")).unwrap()));
        assert!(with_text > 200, "only {with_text} dark pixels");
    }

    #[test]
    fn malformed_svg_is_an_error_naming_the_plot() {
        let message = render("<svg", Path::new("gains.png")).unwrap_err().to_string();
        assert!(message.contains("gains.png"), "{message}");
    }
}
