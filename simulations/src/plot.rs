//! SVG charts of a run, written by hand: polylines on axes with ticks, labels and a legend.
//! `members-up.svg` shows, per subcluster, how many members its nodes see up over time (the
//! mean as a line, the fewest–most as a band, the running count dashed); `traffic.svg` shows
//! messages sent per second; `vip-owners.svg` shows who held each DuraVIP address when. Text
//! in, text out: the caller writes the files.

use std::fmt::Arguments;
use std::path::{Path, PathBuf};

use std::collections::BTreeMap;
use std::net::IpAddr;

use crate::stats::Series;
use crate::vips::Segment;

const W: f64 = 960.0;
const H: f64 = 420.0;
const LEFT: f64 = 70.0;
const RIGHT: f64 = 180.0;
const TOP: f64 = 40.0;
const BOTTOM: f64 = 55.0;
const COLORS: [&str; 8] = ["#1f77b4", "#d62728", "#2ca02c", "#9467bd", "#ff7f0e", "#17becf", "#8c564b", "#e377c2"];

/// One line of a chart.
struct Line<'a> {
    label: String,
    ys: &'a [f64],
    band: Option<(&'a [f64], &'a [f64])>,
    color: &'a str,
    dashed: bool,
}

/// Appends formatted text (writing to a `String` cannot fail).
fn w(out: &mut String, args: Arguments<'_>) {
    out.push_str(&std::fmt::format(args));
}

/// Appends formatted text and a newline.
fn wl(out: &mut String, args: Arguments<'_>) {
    w(out, args);
    out.push('\n');
}

fn escape(s: &str) -> String {
    s.replace('&', "&amp;").replace('<', "&lt;").replace('>', "&gt;")
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

fn fmt_tick(v: f64) -> String {
    if v.abs() >= 1e6 {
        format!("{:.1}M", v / 1e6)
    } else if v.abs() >= 1e4 {
        format!("{:.0}k", v / 1e3)
    } else if v.fract() == 0.0 {
        format!("{v:.0}")
    } else {
        format!("{v:.1}")
    }
}

fn chart(title: &str, x_label: &str, y_label: &str, xs: &[f64], lines: &[Line<'_>]) -> String {
    let x_max = xs.iter().copied().fold(0.0, f64::max).max(1e-9);
    let mut y_max: f64 = 0.0;
    for l in lines {
        for v in l.ys.iter().chain(l.band.iter().flat_map(|(_, hi)| hi.iter())) {
            if v.is_finite() {
                y_max = y_max.max(*v);
            }
        }
    }
    let y_step = tick_step(y_max.max(1.0), 6.0);
    let y_top = ((y_max / y_step).ceil() * y_step).max(y_step);
    let x_step = tick_step(x_max, 10.0);
    let pw = W - LEFT - RIGHT;
    let ph = H - TOP - BOTTOM;
    let px = |x: f64| LEFT + x / x_max * pw;
    let py = |y: f64| TOP + ph - y / y_top * ph;

    let mut s = String::new();
    wl(&mut s, format_args!(r#"<svg xmlns="http://www.w3.org/2000/svg" width="{W}" height="{H}" viewBox="0 0 {W} {H}" font-family="sans-serif" font-size="12">"#));
    wl(&mut s, format_args!(r#"<rect width="{W}" height="{H}" fill="white"/>"#));
    wl(&mut s, format_args!(r#"<text x="{}" y="22" font-size="14" text-anchor="middle">{}</text>"#, W / 2.0, escape(title)));
    let mut y = 0.0;
    while y <= y_top + y_step / 2.0 {
        let yy = py(y);
        wl(&mut s, format_args!(r##"<line x1="{LEFT}" y1="{yy:.1}" x2="{:.1}" y2="{yy:.1}" stroke="#e5e5e5"/>"##, LEFT + pw));
        wl(&mut s, format_args!(r#"<text x="{:.1}" y="{:.1}" text-anchor="end">{}</text>"#, LEFT - 6.0, yy + 4.0, fmt_tick(y)));
        y += y_step;
    }
    let mut x = 0.0;
    while x <= x_max + x_step / 2.0 {
        let xx = px(x.min(x_max));
        if x <= x_max {
            wl(&mut s, format_args!(r##"<line x1="{xx:.1}" y1="{:.1}" x2="{xx:.1}" y2="{:.1}" stroke="#333"/>"##, TOP + ph, TOP + ph + 5.0));
            wl(&mut s, format_args!(r#"<text x="{xx:.1}" y="{:.1}" text-anchor="middle">{}</text>"#, TOP + ph + 18.0, fmt_tick(x)));
        }
        x += x_step;
    }
    wl(&mut s, format_args!(r##"<path d="M{LEFT},{TOP} V{:.1} H{:.1}" fill="none" stroke="#333"/>"##, TOP + ph, LEFT + pw));
    wl(&mut s, format_args!(r#"<text x="{:.1}" y="{:.1}" text-anchor="middle">{}</text>"#, LEFT + pw / 2.0, H - 12.0, escape(x_label)));
    wl(&mut s, format_args!(r#"<text transform="translate(18,{:.1}) rotate(-90)" text-anchor="middle">{}</text>"#, TOP + ph / 2.0, escape(y_label)));

    for l in lines {
        if let Some((lo, hi)) = l.band {
            for segment in segments(xs, lo).into_iter().zip(segments(xs, hi)) {
                let (lo_pts, hi_pts) = segment;
                let mut d = String::new();
                for (i, (x, y)) in hi_pts.iter().enumerate() {
                    w(&mut d, format_args!("{}{:.1},{:.1} ", if i == 0 { "M" } else { "L" }, px(*x), py(*y)));
                }
                for (x, y) in lo_pts.iter().rev() {
                    w(&mut d, format_args!("L{:.1},{:.1} ", px(*x), py(*y)));
                }
                wl(&mut s, format_args!(r#"<path d="{}Z" fill="{}" fill-opacity="0.15" stroke="none"/>"#, d, l.color));
            }
        }
        for pts in segments(xs, l.ys) {
            let mut p = String::new();
            for (x, y) in &pts {
                w(&mut p, format_args!("{:.1},{:.1} ", px(*x), py(*y)));
            }
            let dash = if l.dashed { r#" stroke-dasharray="6 4""# } else { "" };
            wl(&mut s, format_args!(r#"<polyline points="{}" fill="none" stroke="{}" stroke-width="1.8"{dash}/>"#, p.trim_end(), l.color));
        }
    }
    for (i, l) in lines.iter().enumerate() {
        let ly = TOP + 10.0 + i as f64 * 20.0;
        let lx = LEFT + pw + 15.0;
        let dash = if l.dashed { r#" stroke-dasharray="6 4""# } else { "" };
        wl(&mut s, format_args!(r#"<line x1="{lx}" y1="{ly}" x2="{}" y2="{ly}" stroke="{}" stroke-width="2"{dash}/>"#, lx + 22.0, l.color));
        wl(&mut s, format_args!(r#"<text x="{}" y="{}">{}</text>"#, lx + 28.0, ly + 4.0, escape(&l.label)));
    }
    s.push_str("</svg>\n");
    s
}

/// Runs of finite points (a NaN, e.g. a group with no running node, breaks the line).
fn segments(xs: &[f64], ys: &[f64]) -> Vec<Vec<(f64, f64)>> {
    let mut out = vec![Vec::new()];
    for (x, y) in xs.iter().zip(ys) {
        if y.is_finite() {
            if let Some(last) = out.last_mut() {
                last.push((*x, *y));
            }
        } else if out.last().is_some_and(|l| !l.is_empty()) {
            out.push(Vec::new());
        }
    }
    out.retain(|l| !l.is_empty());
    out
}

/// The members-up chart.
pub fn members_up_svg(title: &str, series: &Series) -> String {
    let mut lines: Vec<Line<'_>> = series
        .groups
        .iter()
        .enumerate()
        .map(|(g, name)| Line {
            label: name.clone(),
            ys: &series.mean[g],
            band: Some((&series.min[g], &series.max[g])),
            color: COLORS[g % COLORS.len()],
            dashed: false,
        })
        .collect();
    lines.push(Line { label: "running nodes".into(), ys: &series.running, band: None, color: "#555", dashed: true });
    chart(
        &format!("{title}: members seen up by each subcluster's nodes (line: mean, band: fewest-most)"),
        "simulated time (s)",
        "members seen up",
        &series.times,
        &lines,
    )
}

/// The traffic chart.
pub fn traffic_svg(title: &str, series: &Series) -> String {
    let lines = [Line {
        label: "messages sent / s".into(),
        ys: &series.messages_per_sec,
        band: None,
        color: COLORS[0],
        dashed: false,
    }];
    chart(&format!("{title}: messages sent per second (whole cluster)"), "simulated time (s)", "messages / s", &series.times, &lines)
}

/// Holder colours of the owner timeline: no reds, which mark conflicts.
const HOLDER_COLORS: [&str; 12] = [
    "#1f77b4", "#2ca02c", "#9467bd", "#ff7f0e", "#17becf", "#8c564b", "#e377c2", "#bcbd22", "#7f7f7f", "#aec7e8",
    "#98df8a", "#c5b0d5",
];

/// At most this many addresses get a row in the owner timeline.
const MAX_VIP_ROWS: usize = 48;

/// The VIP owner timeline: a row per address, a bar per holder interval coloured by holder,
/// red where two or more nodes held it at once, empty where nobody did.
pub fn vip_owners_svg(title: &str, names: &[String], rows: &BTreeMap<IpAddr, Vec<Segment>>, end: f64) -> String {
    let shown: Vec<(&IpAddr, &Vec<Segment>)> = rows.iter().take(MAX_VIP_ROWS).collect();
    let row_h = 18.0;
    let (left, right, top, bottom) = (120.0, 170.0, 40.0, 55.0);
    let ph = row_h * shown.len().max(1) as f64;
    let height = top + ph + bottom;
    let pw = W - left - right;
    let end = end.max(1e-9);
    let px = |x: f64| left + x / end * pw;
    let mut colour_of: BTreeMap<u32, &str> = BTreeMap::new();
    let mut s = String::new();
    wl(&mut s, format_args!(r#"<svg xmlns="http://www.w3.org/2000/svg" width="{W}" height="{height}" viewBox="0 0 {W} {height}" font-family="sans-serif" font-size="12">"#));
    wl(&mut s, format_args!(r#"<rect width="{W}" height="{height}" fill="white"/>"#));
    let mut heading = format!("{title}: DuraVIP owner per address over time (red: more than one holder)");
    if rows.len() > shown.len() {
        heading.push_str(&format!(", first {} of {} addresses", shown.len(), rows.len()));
    }
    wl(&mut s, format_args!(r#"<text x="{}" y="22" font-size="14" text-anchor="middle">{}</text>"#, W / 2.0, escape(&heading)));
    for (r, (addr, segs)) in shown.iter().enumerate() {
        let y = top + r as f64 * row_h;
        wl(&mut s, format_args!(r##"<rect x="{left}" y="{y:.1}" width="{pw:.1}" height="{:.1}" fill="#f3f3f3"/>"##, row_h - 3.0));
        wl(&mut s, format_args!(r#"<text x="{:.1}" y="{:.1}" text-anchor="end">{}</text>"#, left - 6.0, y + row_h - 6.0, addr));
        for seg in segs.iter().filter(|g| !g.holders.is_empty()) {
            let (x0, x1) = (px(seg.from.as_duration().as_secs_f64()), px(seg.to.as_duration().as_secs_f64()));
            let fill = match seg.holders.as_slice() {
                [only] => {
                    let next = colour_of.len();
                    *colour_of.entry(*only).or_insert(HOLDER_COLORS[next % HOLDER_COLORS.len()])
                }
                _ => "#e00000",
            };
            let who: Vec<&str> = seg.holders.iter().map(|&h| names.get(h as usize).map_or("?", String::as_str)).collect();
            wl(&mut s, format_args!(
                r#"<rect x="{x0:.1}" y="{y:.1}" width="{:.1}" height="{:.1}" fill="{fill}"><title>{} {}</title></rect>"#,
                (x1 - x0).max(0.5),
                row_h - 3.0,
                addr,
                escape(&who.join(", "))
            ));
        }
    }
    let x_step = tick_step(end, 10.0);
    let axis_y = top + ph;
    let mut x = 0.0;
    while x <= end + x_step / 2.0 {
        if x <= end {
            let xx = px(x);
            wl(&mut s, format_args!(r##"<line x1="{xx:.1}" y1="{axis_y:.1}" x2="{xx:.1}" y2="{:.1}" stroke="#333"/>"##, axis_y + 5.0));
            wl(&mut s, format_args!(r#"<text x="{xx:.1}" y="{:.1}" text-anchor="middle">{}</text>"#, axis_y + 18.0, fmt_tick(x)));
        }
        x += x_step;
    }
    wl(&mut s, format_args!(r##"<path d="M{left},{axis_y:.1} H{:.1}" fill="none" stroke="#333"/>"##, left + pw));
    wl(&mut s, format_args!(r#"<text x="{:.1}" y="{:.1}" text-anchor="middle">simulated time (s)</text>"#, left + pw / 2.0, height - 12.0));
    let mut legend: Vec<(String, &str)> = colour_of
        .iter()
        .map(|(h, c)| (names.get(*h as usize).cloned().unwrap_or_default(), *c))
        .collect();
    legend.sort();
    legend.push(("two or more".into(), "#e00000"));
    for (i, (name, colour)) in legend.iter().enumerate().take(((ph + bottom - 10.0) / 16.0).max(1.0) as usize) {
        let ly = top + i as f64 * 16.0;
        let lx = left + pw + 15.0;
        wl(&mut s, format_args!(r#"<rect x="{lx}" y="{ly:.1}" width="14" height="10" fill="{colour}"/>"#));
        wl(&mut s, format_args!(r#"<text x="{}" y="{:.1}">{}</text>"#, lx + 20.0, ly + 9.0, escape(name)));
    }
    s.push_str("</svg>\n");
    s
}

/// Writes both charts into `dir` (created if missing); returns the paths written.
pub fn write_plots(dir: &Path, title: &str, series: &Series) -> std::io::Result<Vec<PathBuf>> {
    std::fs::create_dir_all(dir)?;
    let mut written = Vec::new();
    for (name, svg) in [("members-up.svg", members_up_svg(title, series)), ("traffic.svg", traffic_svg(title, series))] {
        let path = dir.join(name);
        std::fs::write(&path, svg)?;
        written.push(path);
    }
    Ok(written)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ticks_are_round_numbers() {
        assert_eq!(tick_step(100.0, 10.0), 10.0);
        assert_eq!(tick_step(17.0, 6.0), 5.0);
        assert_eq!(tick_step(0.0, 6.0), 1.0);
        assert_eq!(fmt_tick(20000.0), "20k");
    }

    #[test]
    fn charts_are_svg_with_a_line_per_group_and_gaps_for_nan() {
        let series = Series {
            groups: vec!["east".into(), "west".into()],
            times: vec![0.0, 1.0, 2.0],
            mean: vec![vec![1.0, 5.0, 9.0], vec![1.0, f64::NAN, 9.0]],
            min: vec![vec![1.0, 4.0, 9.0], vec![1.0, f64::NAN, 9.0]],
            max: vec![vec![1.0, 6.0, 9.0], vec![1.0, f64::NAN, 9.0]],
            running: vec![9.0, 9.0, 9.0],
            messages_per_sec: vec![0.0, 100.0, 120.0],
        };
        let svg = members_up_svg("t<1>", &series);
        assert!(svg.starts_with("<svg") && svg.trim_end().ends_with("</svg>"));
        assert!(svg.contains("t&lt;1&gt;"));
        assert!(svg.contains(">east<") && svg.contains(">west<") && svg.contains("band: fewest-most"));
        assert_eq!(svg.matches("<polyline").count(), 4, "east, west split by NaN into two, running");
        assert!(traffic_svg("t", &series).contains("messages / s"));
        let dir = std::env::temp_dir().join(format!("eccluster-sim-plot-{}", std::process::id()));
        let written = write_plots(&dir, "t", &series).expect("write plots");
        assert_eq!(written.len(), 2);
        assert!(written.iter().all(|p| p.is_file()));
        std::fs::remove_dir_all(&dir).expect("clean up");
    }

    #[test]
    fn vip_timeline_colours_holders_and_marks_conflicts() {
        let a: IpAddr = "10.200.0.1".parse().expect("ip");
        let t = |s: u64| crate::time::SimTime::from_duration(std::time::Duration::from_secs(s));
        let mut rows = BTreeMap::new();
        rows.insert(a, vec![
            Segment { from: t(0), to: t(2), holders: vec![] },
            Segment { from: t(2), to: t(5), holders: vec![1] },
            Segment { from: t(5), to: t(6), holders: vec![1, 2] },
            Segment { from: t(6), to: t(10), holders: vec![2] },
        ]);
        let names = vec!["mgr".to_string(), "east1".to_string(), "west1".to_string()];
        let svg = vip_owners_svg("t", &names, &rows, 10.0);
        assert!(svg.starts_with("<svg") && svg.trim_end().ends_with("</svg>"));
        assert_eq!(svg.matches("<title>").count(), 3, "three held segments");
        assert!(svg.contains("<title>10.200.0.1 east1, west1</title>"));
        assert!(svg.contains(r##"fill="#e00000"><title>"##), "the conflict is red");
        assert!(svg.contains(">east1<") && svg.contains(">west1<"), "legend names holders");
    }
}
