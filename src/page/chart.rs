//! The cluster page's charts, drawn on the server as SVG with `plotters`: members up per
//! subcluster and operations sequenced per second, over the last [`WINDOW`]. [`History`]
//! samples the snapshots once a second and keeps a bounded window; nothing here does I/O.

use std::collections::{BTreeMap, VecDeque};
use std::time::{Duration, Instant};

use plotters::prelude::*;

use super::snapshot::Snapshot;

/// How far back the charts go.
pub const WINDOW: Duration = Duration::from_secs(600);
/// Most samples kept (one a second over the window).
const MAX_SAMPLES: usize = 601;
/// Chart size in pixels.
const SIZE: (u32, u32) = (560, 240);

struct Sample {
    at: Instant,
    /// Members up per subcluster.
    up: BTreeMap<String, u32>,
    /// Operations sequenced so far.
    sequenced: u64,
}

/// The samples of the last [`WINDOW`].
#[derive(Default)]
pub struct History {
    samples: VecDeque<Sample>,
}

impl History {
    /// Records `snapshot` as of `now`.
    pub fn sample(&mut self, snapshot: &Snapshot, now: Instant) {
        let mut up = BTreeMap::new();
        for m in &snapshot.members {
            let count = up.entry(m.subcluster.clone()).or_insert(0);
            if m.state == "up" {
                *count += 1;
            }
        }
        self.samples.push_back(Sample { at: now, up, sequenced: snapshot.sequenced });
        while self.samples.len() > MAX_SAMPLES
            || self.samples.front().is_some_and(|s| now.saturating_duration_since(s.at) > WINDOW)
        {
            self.samples.pop_front();
        }
    }

    /// Seconds before `now` of a sample (negative: the x axis runs up to 0 = now).
    fn x(now: Instant, at: Instant) -> f64 {
        -(now.saturating_duration_since(at).as_secs_f64())
    }

    /// Members up per subcluster, one line each.
    pub fn members_svg(&self, now: Instant) -> String {
        let subclusters: Vec<&String> = {
            let mut names: Vec<&String> = self.samples.iter().flat_map(|s| s.up.keys()).collect();
            names.sort();
            names.dedup();
            names
        };
        let top = self.samples.iter().flat_map(|s| s.up.values()).copied().max().unwrap_or(1).max(1);
        let lines = subclusters
            .iter()
            .map(|sc| {
                let points = self
                    .samples
                    .iter()
                    .map(|s| (Self::x(now, s.at), f64::from(s.up.get(*sc).copied().unwrap_or(0))))
                    .collect();
                ((*sc).clone(), points)
            })
            .collect();
        draw("members up per subcluster", f64::from(top) + 1.0, 0, lines)
    }

    /// Operations sequenced per second.
    pub fn operations_svg(&self, now: Instant) -> String {
        let mut points = Vec::new();
        for (a, b) in self.samples.iter().zip(self.samples.iter().skip(1)) {
            let secs = b.at.saturating_duration_since(a.at).as_secs_f64();
            if secs > 0.0 {
                // A new epoch (manager restart) starts the count again: no negative rate.
                let rate = b.sequenced.saturating_sub(a.sequenced) as f64 / secs;
                points.push((Self::x(now, b.at), rate));
            }
        }
        let top = points.iter().map(|(_, y)| *y).fold(1.0_f64, f64::max);
        draw("operations per second", top * 1.2, 1, vec![("operations".to_owned(), points)])
    }
}

/// One chart: `lines` of (label, points) over x in [-WINDOW, 0], y in [0, top], y labels with
/// `decimals` decimals (0: whole numbers only, one label per unit up to ten).
fn draw(title: &str, top: f64, decimals: usize, lines: Vec<(String, Vec<(f64, f64)>)>) -> String {
    let mut svg = String::new();
    if let Err(error) = draw_into(&mut svg, title, (top, decimals), lines) {
        tracing::warn!(%error, chart = title, "drawing a chart");
        return String::new();
    }
    svg
}

fn draw_into<'a>(
    svg: &'a mut String,
    title: &str,
    (top, decimals): (f64, usize),
    lines: Vec<(String, Vec<(f64, f64)>)>,
) -> Result<(), Box<dyn std::error::Error + 'a>> {
    let y_labels = if decimals == 0 { (top as usize).clamp(1, 10) + 1 } else { 6 };
    let root = SVGBackend::with_string(svg, SIZE).into_drawing_area();
    root.fill(&WHITE)?;
    let mut chart = ChartBuilder::on(&root)
        .caption(title, ("sans-serif", 16))
        .margin(10)
        .x_label_area_size(28)
        .y_label_area_size(40)
        .build_cartesian_2d(-(WINDOW.as_secs_f64())..0.0, 0.0..top)?;
    chart
        .configure_mesh()
        .x_desc("seconds ago")
        .x_label_formatter(&|x| format!("{:.0}", x.abs()))
        .y_labels(y_labels)
        .y_label_formatter(&|y| format!("{y:.decimals$}"))
        .light_line_style(WHITE.mix(0.0))
        .draw()?;
    for (i, (label, points)) in lines.into_iter().enumerate() {
        let colour = Palette99::pick(i).to_rgba();
        chart
            .draw_series(LineSeries::new(points, colour.stroke_width(2)))?
            .label(label)
            .legend(move |(x, y)| PathElement::new(vec![(x, y), (x + 16, y)], colour.stroke_width(2)));
    }
    chart.configure_series_labels().background_style(WHITE.mix(0.8)).border_style(BLACK).draw()?;
    root.present()?;
    Ok(())
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::super::snapshot::MemberRow;
    use super::*;

    fn member(name: &str, subcluster: &str, state: &str) -> MemberRow {
        MemberRow {
            name: name.into(),
            subcluster: subcluster.into(),
            role: "node".into(),
            address: "127.48.0.1:4803".into(),
            state: state.into(),
            since: None,
            incarnation: 1,
        }
    }

    #[test]
    fn charts_are_svg_with_a_line_per_subcluster_and_the_window_is_bounded() {
        let mut history = History::default();
        let t0 = Instant::now();
        let mut snapshot = Snapshot {
            members: vec![member("a", "east", "up"), member("b", "west", "up")],
            ..Snapshot::default()
        };
        for i in 0..700u64 {
            snapshot.sequenced = i * 2;
            if i == 650 {
                snapshot.members[1].state = "down".into();
            }
            history.sample(&snapshot, t0 + Duration::from_secs(i));
        }
        assert!(history.samples.len() <= MAX_SAMPLES);
        let now = t0 + Duration::from_secs(699);
        let members = history.members_svg(now);
        assert!(members.starts_with("<svg"), "{members}");
        assert!(members.contains("east") && members.contains("west"), "a legend entry per subcluster");
        let ops = history.operations_svg(now);
        assert!(ops.contains("operations per second"), "{ops}");
        assert!(ops.contains("<polyline"), "{ops}");
    }
}
