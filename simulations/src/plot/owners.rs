//! The DuraVIP owner timeline: one row per address, a span per holder interval coloured by
//! holder and labelled with its name where it fits, red where two or more nodes held the
//! address at once, nothing where nobody did; the run's events as vertical lines.

use std::collections::BTreeMap;
use std::net::IpAddr;

use plotters::prelude::*;
use plotters::style::text_anchor::{HPos, Pos, VPos};

use super::{
    draw_legend, draw_marks, fmt_tick, font, mark_legend, text_width, DrawResult, Mark, PlotError, Swatch, LABEL_SIZE,
    LEGEND_W, MARK_STRIP, SMALL_SIZE, TITLE_SIZE, W,
};
use crate::vips::Segment;

/// Holder colours: no reds, which mark conflicts.
const HOLDER_COLORS: [RGBColor; 12] = [
    RGBColor(0x1f, 0x77, 0xb4),
    RGBColor(0x2c, 0xa0, 0x2c),
    RGBColor(0x94, 0x67, 0xbd),
    RGBColor(0xff, 0x7f, 0x0e),
    RGBColor(0x17, 0xbe, 0xcf),
    RGBColor(0x8c, 0x56, 0x4b),
    RGBColor(0xe3, 0x77, 0xc2),
    RGBColor(0xbc, 0xbd, 0x22),
    RGBColor(0x7f, 0x7f, 0x7f),
    RGBColor(0xae, 0xc7, 0xe8),
    RGBColor(0x98, 0xdf, 0x8a),
    RGBColor(0xc5, 0xb0, 0xd5),
];

/// Two or more holders at once.
const CONFLICT: RGBColor = RGBColor(0xe0, 0x00, 0x00);
/// The background of a row (nobody holds the address).
const EMPTY_ROW: RGBColor = RGBColor(0xf3, 0xf3, 0xf3);

/// At most this many addresses get a row.
const MAX_VIP_ROWS: usize = 48;
/// Height of a row, pixels.
const ROW_H: u32 = 22;
/// Above the plot: the title; below it: the time axis.
const TITLE_H: u32 = 36;
const AXIS_H: u32 = 55;

/// Black or white, whichever reads better on `c`.
fn text_on(c: RGBColor) -> RGBColor {
    let luma = 0.299 * f64::from(c.0) + 0.587 * f64::from(c.1) + 0.114 * f64::from(c.2);
    if luma > 150.0 {
        BLACK
    } else {
        WHITE
    }
}

struct Timeline<'a> {
    heading: String,
    names: &'a [String],
    shown: Vec<(&'a IpAddr, &'a Vec<Segment>)>,
    end: f64,
    marks: &'a [Mark],
    height: u32,
}

impl Timeline<'_> {
    fn name(&self, node: u32) -> &str {
        self.names.get(node as usize).map_or("?", String::as_str)
    }
}

/// The colour of the `i`-th holder: the palette, then hues spread by the golden ratio (away
/// from red) in darker and lighter shades than the palette's, so no two holders share one.
pub(super) fn holder_color(i: usize) -> RGBColor {
    if let Some(c) = HOLDER_COLORS.get(i) {
        return *c;
    }
    let k = i - HOLDER_COLORS.len();
    let hue = 0.06 + 0.88 * ((k as f64 * 0.618_033_988_75) % 1.0);
    let light = if k % 2 == 1 { 0.78 } else { 0.30 };
    let (r, g, b) = HSLColor(hue, 0.6, light).rgb();
    RGBColor(r, g, b)
}

/// Holder colours by first appearance (rows in address order, each in time order).
fn holder_colors(shown: &[(&IpAddr, &Vec<Segment>)]) -> BTreeMap<u32, RGBColor> {
    let mut colour_of = BTreeMap::new();
    for seg in shown.iter().flat_map(|(_, segs)| segs.iter()) {
        if let [only] = seg.holders.as_slice() {
            let next = colour_of.len();
            colour_of.entry(*only).or_insert_with(|| holder_color(next));
        }
    }
    colour_of
}

fn draw(root: &DrawingArea<SVGBackend<'_>, plotters::coord::Shift>, t: &Timeline<'_>) -> DrawResult<()> {
    root.fill(&WHITE)?;
    let body = root.titled(&t.heading, font(TITLE_SIZE))?;
    let n = t.shown.len().max(1);
    let mut chart = ChartBuilder::on(&body)
        .margin_left(10)
        .margin_top(if t.marks.is_empty() { 10 } else { MARK_STRIP })
        .margin_right(LEGEND_W)
        .margin_bottom(10)
        .x_label_area_size(45)
        .y_label_area_size(110)
        .build_cartesian_2d(0f64..t.end, 0f64..n as f64)?;
    let tick = |v: &f64| fmt_tick(*v);
    chart
        .configure_mesh()
        .disable_y_mesh()
        .y_labels(0)
        .x_labels(12)
        .x_label_formatter(&tick)
        .x_desc("simulated time (s)")
        .label_style(font(LABEL_SIZE))
        .axis_desc_style(font(LABEL_SIZE))
        .light_line_style(WHITE.mix(0.0))
        .bold_line_style(RGBColor(0xdd, 0xdd, 0xdd))
        .axis_style(RGBColor(0x33, 0x33, 0x33))
        .draw()?;
    let colour_of = holder_colors(&t.shown);
    let address_style = font(LABEL_SIZE).pos(Pos::new(HPos::Right, VPos::Center));
    let holder_style = font(SMALL_SIZE).pos(Pos::new(HPos::Center, VPos::Center));
    let (x_range, y_range) = chart.plotting_area().get_pixel_range();
    for (r, (addr, segs)) in t.shown.iter().enumerate() {
        let row_top = (n - r) as f64;
        let (_, top) = chart.backend_coord(&(0.0, row_top));
        let (_, bottom) = chart.backend_coord(&(0.0, row_top - 1.0));
        let (top, bottom) = (top + 2, bottom - 2);
        root.draw(&Rectangle::new([(x_range.start, top), (x_range.end, bottom)], EMPTY_ROW.filled()))?;
        root.draw(&Text::new(addr.to_string(), (x_range.start - 8, (top + bottom) / 2), address_style.clone()))?;
        for seg in segs.iter().filter(|g| !g.holders.is_empty()) {
            let from = seg.from.as_duration().as_secs_f64().clamp(0.0, t.end);
            let to = seg.to.as_duration().as_secs_f64().clamp(from, t.end);
            let (x0, _) = chart.backend_coord(&(from, row_top));
            let (x1, _) = chart.backend_coord(&(to, row_top));
            let x1 = x1.max(x0 + 1);
            let fill = match seg.holders.as_slice() {
                [only] => colour_of.get(only).copied().unwrap_or(HOLDER_COLORS[0]),
                _ => CONFLICT,
            };
            root.draw(&Rectangle::new([(x0, top), (x1, bottom)], fill.filled()))?;
            let who: Vec<&str> = seg.holders.iter().map(|&h| t.name(h)).collect();
            let label = who.join("+");
            if x1 - x0 >= text_width(&label, SMALL_SIZE) + 6 {
                let centre = ((x0 + x1) / 2, (top + bottom) / 2);
                root.draw(&Text::new(label, centre, holder_style.clone().color(&text_on(fill))))?;
            }
        }
    }
    if t.shown.is_empty() {
        let centre = ((x_range.start + x_range.end) / 2, (y_range.start + y_range.end) / 2);
        root.draw(&Text::new("no DuraVIP addresses", centre, font(LABEL_SIZE).pos(Pos::new(HPos::Center, VPos::Center))))?;
    }
    draw_marks(root, &mut chart, t.marks, (0.0, n as f64))?;
    let mut legend: Vec<(String, Swatch)> = colour_of.iter().map(|(h, c)| (t.name(*h).to_string(), Swatch::Fill(*c))).collect();
    legend.sort_by(|a, b| a.0.cmp(&b.0));
    legend.push(("two or more".into(), Swatch::Fill(CONFLICT)));
    legend.extend(mark_legend(t.marks));
    draw_legend(root, x_range.end + 15, y_range.start + 8, t.height as i32 - 10, &legend)?;
    root.present()
}

/// The owner timeline of `rows` (per address, its holder segments) over `end` seconds, holders
/// named by `names` (node index order), `marks` as vertical lines. The first 48 addresses get
/// a row; the title says when more were left out.
pub fn vip_owners_svg(
    title: &str,
    names: &[String],
    rows: &BTreeMap<IpAddr, Vec<Segment>>,
    end: f64,
    marks: &[Mark],
) -> Result<String, PlotError> {
    let shown: Vec<(&IpAddr, &Vec<Segment>)> = rows.iter().take(MAX_VIP_ROWS).collect();
    let mut heading = format!("{title}: DuraVIP owner per address over time (red: more than one holder)");
    if rows.len() > shown.len() {
        heading.push_str(&format!(", first {} of {} addresses", shown.len(), rows.len()));
    }
    let strip = if marks.is_empty() { 10 } else { MARK_STRIP };
    let plot = ROW_H * shown.len().max(1) as u32;
    let holders = holder_colors(&shown).len() as u32;
    let legend = 18 * (holders + 1 + 5) + 20;
    let height = (TITLE_H + strip + plot + AXIS_H).max(TITLE_H + strip + legend);
    let timeline = Timeline {
        heading,
        names,
        shown,
        end: if end.is_finite() && end > 0.0 { end.min(super::LIMIT) } else { 1.0 },
        marks,
        height,
    };
    let mut svg = String::new();
    {
        let root = SVGBackend::with_string(&mut svg, (W, height)).into_drawing_area();
        draw(&root, &timeline).map_err(|e| PlotError::new("vip-owners", e))?;
    }
    Ok(svg)
}
