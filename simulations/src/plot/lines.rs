//! The line charts over simulated time: members seen up per subcluster (mean line, fewest–most
//! band, running count dashed) and messages sent per second. A NaN sample (a group with no
//! running node) breaks a line; a run of one finite sample is drawn as a dot.

use plotters::prelude::*;
use plotters::style::text_anchor::{HPos, Pos, VPos};

use super::{
    axis_top, draw_legend, draw_marks, fmt_tick, font, mark_legend, DrawResult, Mark, PlotError, Swatch, COLORS, FONT,
    H, LABEL_SIZE, LEGEND_W, MARK_STRIP, TITLE_SIZE, W,
};
use crate::stats::Series;

/// Colour of the running-nodes line.
const RUNNING: RGBColor = RGBColor(0x55, 0x55, 0x55);

/// One line of a chart.
struct Line<'a> {
    label: String,
    ys: &'a [f64],
    band: Option<(&'a [f64], &'a [f64])>,
    color: RGBColor,
    dashed: bool,
}

/// What a line chart shows.
struct LineChart<'a> {
    title: String,
    x_label: &'a str,
    y_label: &'a str,
    xs: &'a [f64],
    lines: Vec<Line<'a>>,
    marks: &'a [Mark],
}

/// Runs of points where `x` and every one of `ys` is finite; each point is `(x, [y...])`, `y`
/// clamped into `bounds` (the axis).
fn runs<const N: usize>(xs: &[f64], ys: [&[f64]; N], bounds: (f64, f64)) -> Vec<Vec<(f64, [f64; N])>> {
    let mut out: Vec<Vec<(f64, [f64; N])>> = vec![Vec::new()];
    for (i, x) in xs.iter().enumerate() {
        let mut point = [0.0; N];
        let mut finite = x.is_finite();
        for (k, y) in ys.iter().enumerate() {
            match y.get(i) {
                Some(v) if v.is_finite() => point[k] = v.clamp(bounds.0, bounds.1),
                _ => finite = false,
            }
        }
        if finite {
            if let Some(last) = out.last_mut() {
                last.push((*x, point));
            }
        } else if out.last().is_some_and(|l| !l.is_empty()) {
            out.push(Vec::new());
        }
    }
    out.retain(|l| !l.is_empty());
    out
}

fn finite_max<'a>(values: impl Iterator<Item = &'a f64>) -> Option<f64> {
    values.copied().filter(|v| v.is_finite()).reduce(f64::max)
}

fn finite_min<'a>(values: impl Iterator<Item = &'a f64>) -> Option<f64> {
    values.copied().filter(|v| v.is_finite()).reduce(f64::min)
}

fn draw(root: &DrawingArea<SVGBackend<'_>, plotters::coord::Shift>, c: &LineChart<'_>) -> DrawResult<()> {
    root.fill(&WHITE)?;
    let body = root.titled(&c.title, font(TITLE_SIZE))?;
    let x_end = finite_max(c.xs.iter()).filter(|x| *x > 0.0).map_or(1.0, |x| x.min(super::LIMIT));
    let all = || c.lines.iter().flat_map(|l| l.ys.iter().chain(l.band.into_iter().flat_map(|(lo, hi)| lo.iter().chain(hi.iter()))));
    let y_top = axis_top(finite_max(all()).unwrap_or(0.0));
    let y_bottom = finite_min(all()).filter(|v| *v < 0.0).map_or(0.0, |v| -axis_top(-v));
    let mut chart = ChartBuilder::on(&body)
        .margin_left(10)
        .margin_top(if c.marks.is_empty() { 10 } else { MARK_STRIP })
        .margin_right(LEGEND_W)
        .margin_bottom(10)
        .x_label_area_size(45)
        .y_label_area_size(65)
        .build_cartesian_2d(0f64..x_end, y_bottom..y_top)?;
    let tick = |v: &f64| fmt_tick(*v);
    chart
        .configure_mesh()
        .x_desc(c.x_label)
        .y_desc(c.y_label)
        .x_labels(12)
        .y_labels(8)
        .x_label_formatter(&tick)
        .y_label_formatter(&tick)
        .label_style(font(LABEL_SIZE))
        .axis_desc_style(font(LABEL_SIZE))
        .light_line_style(WHITE.mix(0.0))
        .bold_line_style(RGBColor(0xe5, 0xe5, 0xe5))
        .axis_style(RGBColor(0x33, 0x33, 0x33))
        .draw()?;
    draw_marks(root, &mut chart, c.marks, (y_bottom, y_top))?;
    for line in &c.lines {
        if let Some((lo, hi)) = line.band {
            for run in runs(c.xs, [lo, hi], (y_bottom, y_top)) {
                let upper = run.iter().map(|(x, [_, hi])| (*x, *hi));
                let lower = run.iter().rev().map(|(x, [lo, _])| (*x, *lo));
                chart.draw_series(std::iter::once(Polygon::new(upper.chain(lower).collect::<Vec<_>>(), line.color.mix(0.15).filled())))?;
            }
        }
        let style = line.color.stroke_width(2);
        for run in runs(c.xs, [line.ys], (y_bottom, y_top)) {
            let points: Vec<(f64, f64)> = run.iter().map(|(x, [y])| (*x, *y)).collect();
            if let [only] = points.as_slice() {
                chart.draw_series(std::iter::once(Circle::new(*only, 3, line.color.filled())))?;
            } else if line.dashed {
                chart.draw_series(DashedLineSeries::new(points, 6, 4, style))?;
            } else {
                chart.draw_series(LineSeries::new(points, style))?;
            }
        }
    }
    let (x_range, y_range) = chart.plotting_area().get_pixel_range();
    let mut legend: Vec<(String, Swatch)> = c
        .lines
        .iter()
        .map(|l| (l.label.clone(), Swatch::Line { color: l.color, dashed: l.dashed, band: l.band.is_some() }))
        .collect();
    legend.extend(mark_legend(c.marks));
    draw_legend(root, x_range.end + 15, y_range.start + 8, H as i32 - 10, &legend)?;
    if c.xs.is_empty() {
        let centre = ((x_range.start + x_range.end) / 2, (y_range.start + y_range.end) / 2);
        root.draw(&Text::new("no samples", centre, (FONT, LABEL_SIZE).into_font().color(&RUNNING).pos(Pos::new(HPos::Center, VPos::Center))))?;
    }
    root.present()
}

fn render(chart: &'static str, c: &LineChart<'_>) -> Result<String, PlotError> {
    let mut svg = String::new();
    {
        let root = SVGBackend::with_string(&mut svg, (W, H)).into_drawing_area();
        draw(&root, c).map_err(|e| PlotError::new(chart, e))?;
    }
    Ok(svg)
}

/// The members-up chart: per subcluster, the mean members seen up by its running nodes (line)
/// and the fewest–most (band); the running count dashed; `marks` as vertical lines.
pub fn members_up_svg(title: &str, series: &Series, marks: &[Mark]) -> Result<String, PlotError> {
    let mut lines: Vec<Line<'_>> = series
        .groups
        .iter()
        .enumerate()
        .map(|(g, name)| Line {
            label: name.clone(),
            ys: series.mean.get(g).map_or(&[][..], Vec::as_slice),
            band: Some((series.min.get(g).map_or(&[][..], Vec::as_slice), series.max.get(g).map_or(&[][..], Vec::as_slice))),
            color: COLORS[g % COLORS.len()],
            dashed: false,
        })
        .collect();
    lines.push(Line { label: "running nodes".into(), ys: &series.running, band: None, color: RUNNING, dashed: true });
    render(
        "members-up",
        &LineChart {
            title: format!("{title}: members seen up by each subcluster's nodes (line: mean, band: fewest–most)"),
            x_label: "simulated time (s)",
            y_label: "members seen up",
            xs: &series.times,
            lines,
            marks,
        },
    )
}

/// The traffic chart: messages sent per second by the whole cluster; `marks` as vertical lines.
pub fn traffic_svg(title: &str, series: &Series, marks: &[Mark]) -> Result<String, PlotError> {
    let lines = vec![Line {
        label: "messages sent / s".into(),
        ys: &series.messages_per_sec,
        band: None,
        color: COLORS[0],
        dashed: false,
    }];
    render(
        "traffic",
        &LineChart {
            title: format!("{title}: messages sent per second (whole cluster)"),
            x_label: "simulated time (s)",
            y_label: "messages / s",
            xs: &series.times,
            lines,
            marks,
        },
    )
}
