//! SVG charts of a run, drawn with `plotters` (SVG backend only, no font files: text is written
//! as SVG `<text>` elements and the viewer picks the font). `members-up.svg` shows, per
//! subcluster, how many members its nodes see up over time (the mean as a line, the
//! fewest–most as a band, the running count dashed); `traffic.svg` shows messages sent per
//! second; `vip-owners.svg` shows who held each DuraVIP address when. Every chart marks the
//! run's events (partitions, heals, crashes, leaves, restarts) as vertical lines, labelled
//! above the plot where there is room.
//!
//! Output depends on the inputs only (no clock, no hash order), so the same seed gives
//! byte-identical files. Nothing here panics on odd data: empty series, one point, NaN gaps,
//! all zeros and huge values all draw.
//!
//! # Layout
//!
//! - this file: event marks, the shared frame (title, legend, mark labels), [`write_plots`];
//! - [`lines`]: the members-up and traffic charts;
//! - [`owners`]: the DuraVIP owner timeline.

mod lines;
mod owners;
#[cfg(test)]
mod tests;

use std::path::{Path, PathBuf};

use plotters::coord::Shift;
use plotters::element::DashedPathElement;
use plotters::prelude::*;
use plotters::style::text_anchor::{HPos, Pos, VPos};

pub use self::lines::{members_up_svg, traffic_svg};
pub use self::owners::vip_owners_svg;
use crate::stats::{Change, Series};

/// Width of every chart, pixels.
const W: u32 = 960;
/// Height of the line charts, pixels.
const H: u32 = 440;
/// Width kept right of the plot for the legend.
const LEGEND_W: u32 = 190;
/// Height kept above the plot for event labels (when there are events).
const MARK_STRIP: u32 = 44;
/// Event labels go on up to this many levels above the plot before one is left out.
const MARK_LEVELS: i32 = 3;
/// The one font family: generic, so no font file is needed to write or to view.
const FONT: &str = "sans-serif";
/// Font sizes as plotters takes them (the SVG gets size / 1.24).
const TITLE_SIZE: f64 = 19.0;
const LABEL_SIZE: f64 = 15.0;
const SMALL_SIZE: f64 = 13.0;

/// Series colours (the category-10 palette).
const COLORS: [RGBColor; 8] = [
    RGBColor(0x1f, 0x77, 0xb4),
    RGBColor(0xd6, 0x27, 0x28),
    RGBColor(0x2c, 0xa0, 0x2c),
    RGBColor(0x94, 0x67, 0xbd),
    RGBColor(0xff, 0x7f, 0x0e),
    RGBColor(0x17, 0xbe, 0xcf),
    RGBColor(0x8c, 0x56, 0x4b),
    RGBColor(0xe3, 0x77, 0xc2),
];

/// A chart could not be drawn (writing SVG into a string does not fail, so this would be a
/// layout that does not fit).
#[derive(Debug, thiserror::Error)]
#[error("drawing the {chart} chart: {message}")]
pub struct PlotError {
    chart: &'static str,
    message: String,
}

impl PlotError {
    fn new(chart: &'static str, error: impl std::fmt::Display) -> PlotError {
        PlotError { chart, message: error.to_string() }
    }
}

/// What plotters returns when drawing into a string.
type DrawResult<T> = Result<T, DrawingAreaErrorKind<std::io::Error>>;

/// The kind of an event mark; each has its colour and legend entry.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum MarkKind {
    /// A partition, one-way partition or isolation began.
    Cut,
    /// Every cut was removed.
    Heal,
    /// Nodes were killed.
    Crash,
    /// Nodes left gracefully.
    Leave,
    /// Stopped nodes started again.
    Restart,
}

impl MarkKind {
    fn color(self) -> RGBColor {
        match self {
            MarkKind::Cut => RGBColor(0xe6, 0x78, 0x00),
            MarkKind::Heal => RGBColor(0x00, 0x96, 0x50),
            MarkKind::Crash => RGBColor(0xc8, 0x00, 0x00),
            MarkKind::Leave => RGBColor(0x80, 0x80, 0x80),
            MarkKind::Restart => RGBColor(0x3c, 0x3c, 0xa0),
        }
    }

    fn legend(self) -> &'static str {
        match self {
            MarkKind::Cut => "partition / isolate",
            MarkKind::Heal => "heal",
            MarkKind::Crash => "crash",
            MarkKind::Leave => "leave",
            MarkKind::Restart => "restart",
        }
    }
}

/// An event marked on the charts: a vertical line at `at` seconds, labelled `label`.
#[derive(Debug, Clone, PartialEq)]
pub struct Mark {
    /// Simulated time, seconds.
    pub at: f64,
    /// What happened.
    pub kind: MarkKind,
    /// The label above the plot (`partition`, `crash east3, west1`).
    pub label: String,
}

/// At most this many node names in one mark's label.
const MARK_NAMES: usize = 3;

/// The marks of a run's changes: first starts (`boot`) are left out; changes of one kind at
/// one instant become one mark naming the nodes (`names` by node index).
pub fn marks(changes: &[Change], names: &[String]) -> Vec<Mark> {
    let mut out: Vec<(Mark, Vec<&str>)> = Vec::new();
    for change in changes {
        let kind = match change.what {
            "partition" | "one-way partition" | "isolate" => MarkKind::Cut,
            "heal" => MarkKind::Heal,
            "crash" => MarkKind::Crash,
            "leave" => MarkKind::Leave,
            "restart" => MarkKind::Restart,
            _ => continue,
        };
        let at = change.at.as_duration().as_secs_f64();
        let name = change.node.map(|i| names.get(i as usize).map_or("?", String::as_str));
        if let Some((last, nodes)) = out.last_mut() {
            if last.at == at && last.kind == kind && name.is_some() {
                nodes.extend(name);
                continue;
            }
        }
        out.push((Mark { at, kind, label: change.what.to_string() }, name.into_iter().collect()));
    }
    out.into_iter()
        .map(|(mut mark, nodes)| {
            if !nodes.is_empty() {
                let shown: Vec<&str> = nodes.iter().take(MARK_NAMES).copied().collect();
                mark.label = format!("{} {}", mark.label, shown.join(", "));
                if nodes.len() > MARK_NAMES {
                    mark.label.push_str(&format!(" +{}", nodes.len() - MARK_NAMES));
                }
            }
            mark
        })
        .collect()
}

/// A round tick step giving about `ticks` ticks over `range`.
fn tick_step(range: f64, ticks: f64) -> f64 {
    if range <= 0.0 || !range.is_finite() {
        return 1.0;
    }
    let raw = range / ticks;
    let mag = 10f64.powf(raw.log10().floor());
    let norm = raw / mag;
    let nice = if norm <= 1.0 {
        1.0
    } else if norm <= 2.0 {
        2.0
    } else if norm <= 5.0 {
        5.0
    } else {
        10.0
    };
    nice * mag
}

/// The largest magnitude an axis reaches; values beyond it are drawn at the edge. (Far below
/// `f64::MAX`, so the span of an axis from `-LIMIT` to `LIMIT` is still finite.)
const LIMIT: f64 = 1e300;

/// The top of an axis holding `max`: the next round number, at least 1, at most [`LIMIT`].
fn axis_top(max: f64) -> f64 {
    if max.is_nan() || max <= 1.0 {
        return 1.0;
    }
    if max >= LIMIT {
        return LIMIT;
    }
    let step = tick_step(max, 6.0);
    let top = (max / step).ceil() * step;
    if top.is_finite() && top >= max {
        top.min(LIMIT)
    } else {
        max
    }
}

/// A tick label: short for big numbers, scientific for enormous ones.
fn fmt_tick(v: f64) -> String {
    let a = v.abs();
    if a >= 1e9 {
        format!("{v:.1e}")
    } else if a >= 1e6 {
        format!("{:.1}M", v / 1e6)
    } else if a >= 1e4 {
        format!("{:.0}k", v / 1e3)
    } else if (v - v.round()).abs() < 1e-9 {
        format!("{:.0}", v.round())
    } else if a >= 1.0 {
        format!("{v:.1}")
    } else {
        let s = format!("{v:.3}");
        s.trim_end_matches('0').to_string()
    }
}

fn font(size: f64) -> TextStyle<'static> {
    (FONT, size).into_text_style(&(W, H))
}

/// Width plotters' layout assumes for `text` (its estimate: 0.7 em per character).
fn text_width(text: &str, size: f64) -> i32 {
    (size / 1.24 / 1.24 * 0.7 * text.chars().count() as f64).round() as i32
}

/// One legend entry.
enum Swatch {
    /// A line sample; dashed or not; with a band behind it or not.
    Line { color: RGBColor, dashed: bool, band: bool },
    /// A filled box.
    Fill(RGBColor),
    /// An event mark.
    Mark(MarkKind),
}

/// Draws the legend at pixel `(x, y)` downwards, one entry every 18 pixels, as many as fit
/// above `bottom`; the last line says how many were left out.
fn draw_legend(root: &DrawingArea<SVGBackend<'_>, Shift>, x: i32, y: i32, bottom: i32, entries: &[(String, Swatch)]) -> DrawResult<()> {
    let step = 18;
    let room = ((bottom - y) / step).max(1) as usize;
    let (shown, left_out) = if entries.len() > room { (room - 1, entries.len() - (room - 1)) } else { (entries.len(), 0) };
    let text = font(LABEL_SIZE).pos(Pos::new(HPos::Left, VPos::Center));
    for (i, (label, swatch)) in entries.iter().take(shown).enumerate() {
        let ly = y + i as i32 * step;
        match swatch {
            Swatch::Line { color, dashed, band } => {
                if *band {
                    root.draw(&Rectangle::new([(x, ly - 6), (x + 24, ly + 6)], color.mix(0.15).filled()))?;
                }
                let style = color.stroke_width(2);
                if *dashed {
                    root.draw(&DashedPathElement::new(vec![(x, ly), (x + 24, ly)], 6, 4, style))?;
                } else {
                    root.draw(&PathElement::new(vec![(x, ly), (x + 24, ly)], style))?;
                }
            }
            Swatch::Fill(color) => root.draw(&Rectangle::new([(x + 4, ly - 6), (x + 20, ly + 6)], color.filled()))?,
            Swatch::Mark(kind) => {
                root.draw(&DashedPathElement::new(vec![(x + 12, ly - 7), (x + 12, ly + 7)], 3, 2, kind.color().stroke_width(2)))?
            }
        }
        root.draw(&Text::new(label.clone(), (x + 30, ly), text.clone()))?;
    }
    if left_out > 0 {
        let ly = y + shown as i32 * step;
        root.draw(&Text::new(format!("… {left_out} more"), (x + 30, ly), text))?;
    }
    Ok(())
}

/// Legend entries for the kinds of `marks`, in kind order, with counts when a kind recurs.
fn mark_legend(marks: &[Mark]) -> Vec<(String, Swatch)> {
    let mut kinds: Vec<(MarkKind, usize)> = Vec::new();
    for m in marks {
        match kinds.iter_mut().find(|(k, _)| *k == m.kind) {
            Some((_, n)) => *n += 1,
            None => kinds.push((m.kind, 1)),
        }
    }
    kinds.sort();
    kinds
        .into_iter()
        .map(|(k, n)| (if n > 1 { format!("{} ({n})", k.legend()) } else { k.legend().to_string() }, Swatch::Mark(k)))
        .collect()
}

/// Draws the marks inside `chart` as dashed vertical lines from `y0` to `y1` and their labels
/// on the root above the plot: each label on the lowest of [`MARK_LEVELS`] levels where it
/// does not run into the previous one; a label with no room is left out (its line stays).
fn draw_marks<Y>(
    root: &DrawingArea<SVGBackend<'_>, Shift>,
    chart: &mut ChartContext<'_, SVGBackend<'_>, Cartesian2d<plotters::coord::types::RangedCoordf64, Y>>,
    marks: &[Mark],
    (y0, y1): (Y::ValueType, Y::ValueType),
) -> DrawResult<()>
where
    Y: Ranged,
    Y::ValueType: Clone + 'static,
{
    let (x_range, y_range) = chart.plotting_area().get_pixel_range();
    let x_lo = chart.x_range().start;
    let x_hi = chart.x_range().end;
    for m in marks.iter().filter(|m| m.at >= x_lo && m.at <= x_hi) {
        chart.draw_series(std::iter::once(DashedPathElement::new(
            vec![(m.at, y0.clone()), (m.at, y1.clone())],
            5,
            3,
            m.kind.color().mix(0.8).stroke_width(1),
        )))?;
    }
    let mut level_end = [i32::MIN; MARK_LEVELS as usize];
    let style = font(SMALL_SIZE).pos(Pos::new(HPos::Left, VPos::Bottom));
    for m in marks.iter().filter(|m| m.at >= x_lo && m.at <= x_hi) {
        let (px, _) = chart.backend_coord(&(m.at, y1.clone()));
        let width = text_width(&m.label, SMALL_SIZE);
        if px + 3 + width > x_range.end + LEGEND_W as i32 - 10 {
            continue;
        }
        let Some(level) = (0..MARK_LEVELS).find(|&l| level_end[l as usize] + 6 < px) else {
            continue;
        };
        level_end[level as usize] = px + 3 + width;
        let y = y_range.start - 4 - level * 13;
        root.draw(&PathElement::new(vec![(px, y_range.start), (px, y)], m.kind.color().mix(0.5).stroke_width(1)))?;
        root.draw(&Text::new(m.label.clone(), (px + 3, y + 1), style.clone().color(&m.kind.color())))?;
    }
    Ok(())
}

/// Writes `members-up.svg` and `traffic.svg` into `dir` (created if missing), marking `marks`;
/// returns the paths written.
pub fn write_plots(dir: &Path, title: &str, series: &Series, marks: &[Mark]) -> std::io::Result<Vec<PathBuf>> {
    std::fs::create_dir_all(dir)?;
    let mut written = Vec::new();
    for (name, svg) in [("members-up.svg", members_up_svg(title, series, marks)), ("traffic.svg", traffic_svg(title, series, marks))] {
        let svg = svg.map_err(std::io::Error::other)?;
        let path = dir.join(name);
        std::fs::write(&path, svg)?;
        written.push(path);
    }
    Ok(written)
}
