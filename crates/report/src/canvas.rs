//! What every study figure shares: the PNG it is drawn into, the report's colours
//! and text sizes.

use std::path::Path;

use anyhow::{Context, Result};
use nullclass::artifacts::write_atomic;
use plotters::coord::Shift;
use plotters::prelude::*;
use plotters::style::text_anchor::{HPos, Pos, VPos};

pub use crate::fonts::FAMILY;

pub type Area<'a> = DrawingArea<BitMapBackend<'a>, Shift>;

/// The report's colours for correct, misclassified and unclassified (null), Figure 10.
pub const GREEN: RGBColor = RGBColor(44, 160, 44);
pub const RED: RGBColor = RGBColor(214, 39, 40);
pub const BLUE: RGBColor = RGBColor(31, 119, 180);
pub const OUTCOME_COLOURS: [RGBColor; 3] = [GREEN, RED, BLUE];
pub const GREY: RGBColor = RGBColor(120, 120, 120);

pub const TITLE: u32 = 26;
pub const LABEL: u32 = 18;
pub const SMALL: u32 = 15;

/// Draws into a PNG that appears at `path` only once complete.
pub fn draw_png(
    path: &Path,
    size: (u32, u32),
    draw: impl FnOnce(&Area) -> Result<()>,
) -> Result<()> {
    write_atomic(path, |tmp| {
        let root = BitMapBackend::new(tmp, size).into_drawing_area();
        root.fill(&WHITE)?;
        draw(&root)?;
        root.present()?;
        Ok(())
    })
    .with_context(|| format!("cannot draw {}", path.display()))
}

/// Grey level of a pixel value: 0 black, 1 white.
pub fn grey(v: f32) -> RGBColor {
    let g = (255.0 * v.clamp(0.0, 1.0)).round() as u8;
    RGBColor(g, g, g)
}

/// A 28 x 28 image, `scale` pixels per image pixel, top-left at `at`.
pub fn image(area: &Area, at: (i32, i32), scale: i32, pixels: &[f32]) -> Result<()> {
    for (i, &v) in pixels.iter().enumerate() {
        let (r, c) = ((i / 28) as i32, (i % 28) as i32);
        let x = at.0 + c * scale;
        let y = at.1 + r * scale;
        area.draw(&Rectangle::new(
            [(x, y), (x + scale, y + scale)],
            grey(v).filled(),
        ))?;
    }
    Ok(())
}

/// Text centred on `at`.
pub fn centred(
    area: &Area,
    text: &str,
    at: (i32, i32),
    size: u32,
    colour: &RGBColor,
) -> Result<()> {
    let style = TextStyle::from((FAMILY, size))
        .color(colour)
        .pos(Pos::new(HPos::Center, VPos::Center));
    area.draw(&Text::new(text.to_string(), at, style))?;
    Ok(())
}

/// The mark beside a legend entry.
#[derive(Clone, Copy, Debug)]
pub enum Swatch {
    Box(RGBColor),
    Line(RGBColor),
    Cross,
}

/// A one-line legend centred on `centre`, outside any chart so it never hides data.
pub fn legend_row(area: &Area, centre: (i32, i32), items: &[(String, Swatch)]) -> Result<()> {
    let style = TextStyle::from((FAMILY, LABEL));
    let (mark, gap, pad) = (26, 8, 34);
    let widths = items
        .iter()
        .map(|(text, _)| Ok(area.estimate_text_size(text, &style)?.0 as i32))
        .collect::<Result<Vec<i32>>>()?;
    let total: i32 =
        widths.iter().map(|w| mark + gap + w).sum::<i32>() + pad * (items.len() as i32 - 1).max(0);
    let (mut x, y) = (centre.0 - total / 2, centre.1);
    for ((text, swatch), w) in items.iter().zip(widths) {
        match *swatch {
            Swatch::Box(c) => {
                area.draw(&Rectangle::new([(x, y - 9), (x + mark, y + 9)], c.filled()))?
            }
            Swatch::Line(c) => area.draw(&PathElement::new(
                vec![(x, y), (x + mark, y)],
                c.stroke_width(4),
            ))?,
            Swatch::Cross => area.draw(&Cross::new((x + mark / 2, y), 7, BLACK.stroke_width(3)))?,
        }
        let at = (x + mark + gap, y);
        area.draw(&Text::new(
            text.clone(),
            at,
            style.pos(Pos::new(HPos::Left, VPos::Center)),
        ))?;
        x += mark + gap + w + pad;
    }
    Ok(())
}
