//! `report toy`: Figures 1-4 of the report's section 2, from the grids that
//! `trainer ramp` probed, and each model's share of the input cube per class.
//!
//! Decision spaces are drawn as voxels, one per probe grid point: only the faces
//! that border an undrawn voxel and face the viewer are painted, farthest first.

use std::path::{Path, PathBuf};

use anyhow::{bail, ensure, Context, Result};
use clap::Args;
use nullclass::ramp::{self, DOWN, UP};
use plotters::prelude::*;
use plotters::style::text_anchor::{HPos, Pos, VPos};
use serde::Deserialize;

use crate::arrays;
use crate::canvas::{draw_png, grey, Area, FAMILY};

#[derive(Args, Debug, Clone)]
pub struct Config {
    /// Artifacts root: reads ramp/ (`trainer ramp`'s outputs), writes report/toy/.
    #[arg(long, default_value = "artifacts")]
    pub artifacts: PathBuf,
}

/// The report's colours: magenta for down, cyan for up.
const MAGENTA: RGBColor = RGBColor(230, 0, 230);
const CYAN: RGBColor = RGBColor(0, 215, 235);

fn class_colour(class: i64) -> RGBColor {
    if class == DOWN {
        MAGENTA
    } else {
        CYAN
    }
}

/// Viewpoint: looking down into the corner where pixel 1 = 0 and pixel 3 = 0, the
/// two walls the ramps' background pixel lies on, so all four slabs face the viewer.
const YAW: f64 = 0.62;
const PITCH: f64 = 0.42;
const PANEL: (u32, u32) = (620, 640);

#[derive(Debug, Deserialize)]
struct Shares {
    down: f64,
    up: f64,
    null: f64,
}

#[derive(Debug, Deserialize)]
struct Sample {
    pixels: [f32; 3],
    label: i64,
}

/// The part of `trainer ramp`'s JSON the report shows.
#[derive(Debug, Deserialize)]
struct ModelSummary {
    ramp_accuracy: f64,
    train_seconds: f64,
    epochs: usize,
    grid: i64,
    grid_file: String,
    cube_shares: Shares,
    optimal_cube_shares: Shares,
    start: String,
    keep: String,
    kept_epoch: usize,
    #[serde(default)]
    optimal_grid_file: Option<String>,
    #[serde(default)]
    samples: Vec<Sample>,
}

/// Labels of an n x n x n probe grid, C order: `[i, j, k]` is the image
/// `(i/n, j/n, k/n)`.
struct Grid {
    n: usize,
    labels: Vec<i64>,
}

pub fn run(config: &Config) -> Result<()> {
    crate::fonts::register()?;
    let ramp_dir = config.artifacts.join("ramp");
    let out = config.artifacts.join("report").join("toy");

    // Both models' outputs are read before anything is drawn, so a missing run
    // fails at once rather than after half the figures.
    let models = [
        (
            "base",
            "fig3_base_spaces.png",
            "Conventional training (no nulls)",
        ),
        (
            "null",
            "fig4_null_spaces.png",
            "Training with uniform-noise nulls",
        ),
    ]
    .into_iter()
    .map(|(variant, file, title)| {
        let summary = read_summary(&ramp_dir.join(format!("{variant}.json")))?;
        let grid = read_grid(&ramp_dir.join(&summary.grid_file), summary.grid)?;
        Ok((variant, file, title, grid, summary))
    })
    .collect::<Result<Vec<_>>>()?;
    let base = &models[0].4;
    let optimal_file = base.optimal_grid_file.as_deref().with_context(|| {
        format!(
            "{}: no optimal_grid_file (rerun `trainer ramp --variant base`)",
            ramp_dir.join("base.json").display()
        )
    })?;
    let optimal = read_grid(&ramp_dir.join(optimal_file), base.grid)?;
    ensure!(
        base.samples.len() >= 12
            && base
                .samples
                .iter()
                .all(|s| s.label == DOWN || s.label == UP),
        "{}: Figure 1 needs 12 ramp samples (rerun `trainer ramp --variant base`)",
        ramp_dir.join("base.json").display()
    );
    std::fs::create_dir_all(&out).with_context(|| format!("cannot create {}", out.display()))?;

    draw_png(&out.join("fig1_ramps.png"), (1300, 560), |root| {
        fig1(root, &base.samples[..12])
    })?;

    draw_png(
        &out.join("fig2_optimal_spaces.png"),
        (PANEL.0 + 80, PANEL.1 + 90),
        |root| {
            let root = root.titled(
                "Optimal decision spaces (down magenta, up cyan)",
                (FAMILY, 26),
            )?;
            voxel_panel(&root, &optimal, &[DOWN, UP], "down and up")
        },
    )?;
    print_shares("optimal", &base.optimal_cube_shares, None);

    for (variant, file, title, grid, summary) in &models {
        draw_png(&out.join(file), (3 * PANEL.0, PANEL.1 + 60), |root| {
            let root = root.titled(
                &format!(
                    "{title}: decision spaces (down magenta, up cyan; the rest is null); {}",
                    protocol(summary)
                ),
                (FAMILY, 22),
            )?;
            let panels = root.split_evenly((1, 3));
            voxel_panel(&panels[0], grid, &[DOWN, UP], "down and up")?;
            voxel_panel(&panels[1], grid, &[DOWN], "down alone")?;
            voxel_panel(&panels[2], grid, &[UP], "up alone")
        })?;
        print_shares(variant, &summary.cube_shares, Some(summary));
    }
    println!("figures in {}", out.display());
    Ok(())
}

/// How the model was trained and probed, as the figure states it.
fn protocol(s: &ModelSummary) -> String {
    let start = if s.start == "base" {
        "continued from the trained baseline"
    } else {
        "fresh weights"
    };
    let keep = if s.keep == "train-loss" {
        "lowest training loss"
    } else {
        "last epoch"
    };
    format!(
        "{start}, kept epoch {} of {} ({keep}), {}-point grid",
        s.kept_epoch, s.epochs, s.grid
    )
}

fn print_shares(name: &str, shares: &Shares, summary: Option<&ModelSummary>) {
    let mut line = format!(
        "{name:>7}: cube down {:6.2}%, up {:6.2}%, null {:6.2}%",
        100.0 * shares.down,
        100.0 * shares.up,
        100.0 * shares.null
    );
    if let Some(s) = summary {
        line += &format!(
            "; fresh ramps {:.2}% correct; {} epochs in {:.0} s (start {}, kept epoch {} by {}, {}-point grid)",
            100.0 * s.ramp_accuracy,
            s.epochs,
            s.train_seconds,
            s.start,
            s.kept_epoch,
            s.keep,
            s.grid
        );
    }
    println!("{line}");
}

fn read_summary(path: &Path) -> Result<ModelSummary> {
    let text = std::fs::read_to_string(path)
        .with_context(|| format!("cannot read {} (run `trainer ramp` first)", path.display()))?;
    serde_json::from_str(&text).with_context(|| {
        format!(
            "{} is not a ramp model report of this version (rerun `trainer ramp`)",
            path.display()
        )
    })
}

fn read_grid(path: &Path, n: i64) -> Result<Grid> {
    ensure!(n >= 1, "{}: grid size {n}", path.display());
    let (_, labels) = arrays::i64s(path, &[n, n, n])
        .context("cannot read the probe grid (run `trainer ramp` first)")?;
    if let Some(bad) = labels.iter().find(|l| !(0..ramp::NUM_CLASSES).contains(l)) {
        bail!("{}: label {bad} is not a ramp class", path.display());
    }
    Ok(Grid {
        n: n as usize,
        labels,
    })
}

/// One 3-pixel image as a strip of squares with a frame, top-left at `at`.
fn strip(area: &Area, at: (i32, i32), cell: i32, px: [f32; 3], values: bool) -> Result<()> {
    for (d, &v) in px.iter().enumerate() {
        let x = at.0 + d as i32 * cell;
        area.draw(&Rectangle::new(
            [(x, at.1), (x + cell, at.1 + cell)],
            grey(v).filled(),
        ))?;
        if values {
            let colour = if v > 0.5 { BLACK } else { WHITE };
            let style = TextStyle::from((FAMILY, 17))
                .color(&colour)
                .pos(Pos::new(HPos::Center, VPos::Center));
            area.draw(&Text::new(
                format!("{v:.3}"),
                (x + cell / 2, at.1 + cell / 2),
                style,
            ))?;
        }
    }
    let frame = [(at.0, at.1), (at.0 + 3 * cell, at.1 + cell)];
    area.draw(&Rectangle::new(frame, BLACK.stroke_width(2)))?;
    for d in 1..3 {
        let x = at.0 + d * cell;
        area.draw(&PathElement::new(
            vec![(x, at.1), (x, at.1 + cell)],
            RGBColor(128, 128, 128),
        ))?;
    }
    Ok(())
}

/// Figure 1: the four prototypes (left) and random training samples (right).
fn fig1(root: &Area, samples: &[Sample]) -> Result<()> {
    let (left, right) = root.split_horizontally(560);
    let title = (FAMILY, 26);
    let label = (FAMILY, 20);
    left.draw(&Text::new("Prototypes", (30, 20), title))?;
    let cell = 86;
    for (row, (class, offset)) in [(DOWN, 0), (DOWN, 1), (UP, 0), (UP, 1)]
        .into_iter()
        .enumerate()
    {
        let y = 80 + row as i32 * (cell + 30);
        let name = format!(
            "{} ramp,\n{}",
            ramp::CLASS_NAMES[class as usize],
            ["left", "right"][offset as usize]
        );
        for (k, line) in name.lines().enumerate() {
            left.draw(&Text::new(
                line.to_string(),
                (30, y + 18 + 26 * k as i32),
                label.into_font().color(&class_colour(class).mix(1.0)),
            ))?;
        }
        strip(
            &left,
            (170, y),
            cell,
            ramp::prototype(class, offset).map(|v| v as f32),
            true,
        )?;
    }

    right.draw(&Text::new(
        "Random training samples (noise U(-0.05, 0.05), clipped)",
        (20, 20),
        title,
    ))?;
    let cell = 36;
    for (r, sample) in samples.iter().enumerate() {
        let col = (r / 6) as i32;
        let y = 70 + (r % 6) as i32 * (cell + 36);
        let x = 30 + col * 370;
        let (px, class) = (sample.pixels, sample.label);
        let text = format!("{:<4}", ramp::CLASS_NAMES[class as usize]);
        right.draw(&Text::new(
            text,
            (x, y + 8),
            label.into_font().color(&class_colour(class)),
        ))?;
        strip(&right, (x + 60, y), cell, px, false)?;
        let values = format!("({:.2}, {:.2}, {:.2})", px[0], px[1], px[2]);
        right.draw(&Text::new(
            values,
            (x + 60 + 3 * cell + 14, y + 8),
            (FAMILY, 17),
        ))?;
    }
    Ok(())
}

/// A face of one voxel: the voxel's grid index, the axis its normal lies on and
/// whether the normal points to +1 along it.
#[derive(Clone, Copy, Debug)]
struct Face {
    voxel: [usize; 3],
    axis: usize,
    positive: bool,
    class: i64,
}

impl Face {
    /// Corners in pixel space (pixel 1, pixel 2, pixel 3), each in [0, 1].
    fn corners(&self, n: usize) -> [[f64; 3]; 4] {
        let lo = self.voxel.map(|i| i as f64 / n as f64);
        let step = 1.0 / n as f64;
        let (a, b) = ((self.axis + 1) % 3, (self.axis + 2) % 3);
        let mut base = lo;
        if self.positive {
            base[self.axis] += step;
        }
        let at = |da: f64, db: f64| {
            let mut p = base;
            p[a] += da;
            p[b] += db;
            p
        };
        [at(0.0, 0.0), at(step, 0.0), at(step, step), at(0.0, step)]
    }

    fn centre(&self, n: usize) -> [f64; 3] {
        let c = self.corners(n);
        [0, 1, 2].map(|d| (c[0][d] + c[2][d]) / 2.0)
    }
}

/// Pixel space to chart space: pixel 1 along x, pixel 3 up (plotters' y), pixel 2
/// along plotters' z.
fn chart_point(p: [f64; 3]) -> (f64, f64, f64) {
    (p[0], p[2], p[1])
}

/// Faces of the voxels labelled with one of `shown` that border a voxel not shown
/// (or the cube's boundary) and whose normal points to the viewer.
fn visible_faces(grid: &Grid, shown: &[i64], facing: &[[bool; 2]; 3]) -> Vec<Face> {
    let (n, labels) = (grid.n, &grid.labels);
    let idx = |v: [usize; 3]| (v[0] * n + v[1]) * n + v[2];
    let drawn = |v: [usize; 3]| shown.contains(&labels[idx(v)]);
    let mut faces = Vec::new();
    for i in 0..n {
        for j in 0..n {
            for k in 0..n {
                let v = [i, j, k];
                if !drawn(v) {
                    continue;
                }
                for axis in 0..3 {
                    for positive in [false, true] {
                        if !facing[axis][usize::from(positive)] {
                            continue;
                        }
                        let neighbour = match (positive, v[axis]) {
                            (false, 0) => None,
                            (true, c) if c + 1 == n => None,
                            (false, c) => Some(c - 1),
                            (true, c) => Some(c + 1),
                        };
                        let covered = neighbour.is_some_and(|c| {
                            let mut w = v;
                            w[axis] = c;
                            drawn(w)
                        });
                        if !covered {
                            faces.push(Face {
                                voxel: v,
                                axis,
                                positive,
                                class: labels[idx(v)],
                            });
                        }
                    }
                }
            }
        }
    }
    faces
}

/// Shading by face orientation, so the voxels read as solids.
fn shade(colour: RGBColor, axis: usize) -> RGBColor {
    // Pixel 3 is up: its faces are lit from above; the two side orientations differ.
    let f = match axis {
        2 => 1.0,
        0 => 0.80,
        _ => 0.62,
    };
    let s = |c: u8| (c as f64 * f).round() as u8;
    RGBColor(s(colour.0), s(colour.1), s(colour.2))
}

fn darker(c: RGBColor) -> RGBColor {
    let s = |v: u8| (v as f64 * 0.7).round() as u8;
    RGBColor(s(c.0), s(c.1), s(c.2))
}

/// One 3-D view of the cube with the decision spaces of the `shown` classes.
fn voxel_panel(area: &Area, grid: &Grid, shown: &[i64], caption: &str) -> Result<()> {
    let n = grid.n;
    let mut chart = ChartBuilder::on(area)
        .caption(caption, (FAMILY, 22))
        .margin(10)
        .build_cartesian_3d(0.0..1.0, 0.0..1.0, 0.0..1.0)?;
    chart.with_projection(|mut pb| {
        pb.yaw = YAW;
        pb.pitch = PITCH;
        pb.scale = 0.78;
        pb.into_matrix()
    });
    chart
        .configure_axes()
        .x_labels(3)
        .y_labels(3)
        .z_labels(3)
        .max_light_lines(1)
        .label_style((FAMILY, 15))
        .axis_panel_style(RGBColor(235, 235, 235))
        .bold_grid_style(RGBColor(190, 190, 190))
        .light_grid_style(RGBColor(218, 218, 218))
        .draw()?;

    // Depth is linear in position; plotters counts larger depth as farther away.
    let coord = chart.as_coord_spec();
    let depth = |p: [f64; 3]| {
        let (x, y, z) = chart_point(p);
        coord.projected_depth(&(1000.0 * x), &(1000.0 * y), &(1000.0 * z)) as f64
    };
    let centre = depth([0.5; 3]);
    let mut facing = [[false; 2]; 3];
    for (axis, f) in facing.iter_mut().enumerate() {
        let mut p = [0.5; 3];
        p[axis] = 0.6;
        f[1] = depth(p) < centre;
        f[0] = !f[1];
    }

    let mut faces = visible_faces(grid, shown, &facing);
    let mut keyed: Vec<(f64, Face)> = faces.drain(..).map(|f| (depth(f.centre(n)), f)).collect();
    keyed.sort_by(|a, b| b.0.total_cmp(&a.0));
    // Each face with its outline before the next nearer face, so outlines are
    // hidden like the faces they belong to; outlines only where voxels are few
    // enough for them to help count the voxels.
    let outline = keyed.len() < 20_000;
    let plot = chart.plotting_area();
    for (_, f) in &keyed {
        let corners: Vec<_> = f.corners(n).iter().map(|&p| chart_point(p)).collect();
        let colour = shade(class_colour(f.class), f.axis);
        plot.draw(&Polygon::new(corners.clone(), colour.filled()))?;
        if outline {
            let mut ring = corners;
            ring.push(ring[0]);
            plot.draw(&PathElement::new(ring, darker(colour).stroke_width(1)))?;
        }
    }

    let axis_title = TextStyle::from((FAMILY, 18)).pos(Pos::new(HPos::Center, VPos::Center));
    // Beside the edges that carry each axis's tick labels from this viewpoint.
    chart.draw_series([
        Text::new("pixel 1", (0.5, -0.13, 1.13), axis_title.clone()),
        Text::new("pixel 2", (1.16, -0.13, 0.5), axis_title.clone()),
        Text::new("pixel 3", (0.0, 1.1, 1.0), axis_title),
    ])?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use nullclass::ramp::NULL;

    const ALL_FACING: [[bool; 2]; 3] = [[true, true]; 3];

    #[test]
    fn faces_are_drawn_only_on_the_region_surface() {
        let n = 48;
        let mut grid = Grid {
            n,
            labels: vec![NULL; n * n * n],
        };
        assert!(visible_faces(&grid, &[DOWN], &ALL_FACING).is_empty());
        grid.labels[(3 * n + 4) * n + 5] = DOWN;
        let faces = visible_faces(&grid, &[DOWN, UP], &ALL_FACING);
        assert_eq!(faces.len(), 6);
        assert!(faces
            .iter()
            .all(|f| f.voxel == [3, 4, 5] && f.class == DOWN));
        // Only faces pointing at the viewer are kept.
        let front = [[false, true]; 3];
        assert_eq!(visible_faces(&grid, &[DOWN], &front).len(), 3);

        // A filled cube shows its outer surface only, whatever the classes inside.
        let full = Grid {
            n,
            labels: (0..n * n * n).map(|i| (i % 2) as i64).collect(),
        };
        assert_eq!(
            visible_faces(&full, &[DOWN, UP], &ALL_FACING).len(),
            6 * n * n
        );
    }

    #[test]
    fn face_corners_lie_on_the_face() {
        let f = Face {
            voxel: [1, 2, 3],
            axis: 2,
            positive: true,
            class: UP,
        };
        let n = 48;
        for c in f.corners(n) {
            assert!((c[2] - 4.0 / n as f64).abs() < 1e-12);
            assert!(c[0] >= 1.0 / n as f64 - 1e-12 && c[0] <= 2.0 / n as f64 + 1e-12);
        }
    }
}
