//! The font every figure draws its text with. It is bundled (DejaVu Sans, see
//! `assets/DejaVuSans-LICENSE.txt`) rather than looked up, so figures render the
//! same on a fresh machine that has no system fonts and no fontconfig.

use std::sync::OnceLock;

use anyhow::{anyhow, Result};
use plotters::style::{register_font, FontStyle};

static DEJAVU_SANS: &[u8] = include_bytes!("../assets/DejaVuSans.ttf");

/// The family name to ask for in text styles.
pub const FAMILY: &str = "sans-serif";

/// Registers the bundled font under the generic family names plotters' defaults
/// use, so styles built from either a tuple or a default resolve to it. Safe to
/// call more than once.
pub fn register() -> Result<()> {
    static DONE: OnceLock<bool> = OnceLock::new();
    let ok = *DONE.get_or_init(|| {
        ["sans-serif", "serif", "monospace"].iter().all(|name| {
            [FontStyle::Normal, FontStyle::Bold, FontStyle::Italic]
                .into_iter()
                .all(|style| register_font(name, style, DEJAVU_SANS).is_ok())
        })
    });
    if ok {
        Ok(())
    } else {
        Err(anyhow!(
            "the bundled DejaVuSans.ttf could not be loaded as a font"
        ))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use plotters::prelude::*;

    #[test]
    fn text_renders_with_the_bundled_font() {
        register().unwrap();
        let (w, h) = (120u32, 40u32);
        let mut buf = vec![255u8; (w * h * 3) as usize];
        {
            let root = BitMapBackend::with_buffer(&mut buf, (w, h)).into_drawing_area();
            root.draw(&Text::new("pixel 1", (5, 5), (FAMILY, 24)))
                .unwrap();
            root.present().unwrap();
        }
        let inked = buf.chunks(3).filter(|px| px[0] < 128).count();
        assert!(
            inked > 50,
            "only {inked} dark pixels: the text did not render"
        );
    }
}
