//! The charts read back as XML: each series, legend entry, owner and event is there, and odd
//! data (nothing, one point, zeros, NaN, huge values) still draws.

use std::collections::BTreeMap;
use std::net::IpAddr;
use std::time::Duration;

use super::*;
use crate::time::SimTime;
use crate::vips::Segment;

/// The parsed chart's elements named `tag`.
fn elements<'a>(doc: &'a roxmltree::Document<'a>, tag: &str) -> Vec<roxmltree::Node<'a, 'a>> {
    doc.descendants().filter(|n| n.has_tag_name(tag)).collect()
}

/// Every text of the chart, trimmed.
fn texts(svg: &str) -> Vec<String> {
    let doc = parse(svg);
    elements(&doc, "text").iter().map(|t| t.text().unwrap_or("").trim().to_string()).collect()
}

fn parse(svg: &str) -> roxmltree::Document<'_> {
    let doc = roxmltree::Document::parse(svg).unwrap_or_else(|e| panic!("not XML: {e}\n{svg}"));
    assert!(doc.root_element().has_tag_name("svg"), "the root is <svg>");
    doc
}

/// How many `tag` elements have attribute `attr` = `value`.
fn count(svg: &str, tag: &str, attr: &str, value: &str) -> usize {
    let doc = parse(svg);
    elements(&doc, tag).iter().filter(|n| n.attribute(attr) == Some(value)).count()
}

fn hex(c: RGBColor) -> String {
    format!("#{:02X}{:02X}{:02X}", c.0, c.1, c.2)
}

fn series() -> Series {
    Series {
        groups: vec!["east".into(), "west".into()],
        times: vec![0.0, 1.0, 2.0, 3.0, 4.0],
        mean: vec![vec![1.0, 5.0, 9.0, 9.0, 9.0], vec![1.0, 3.0, f64::NAN, 9.0, 9.0]],
        min: vec![vec![1.0, 4.0, 9.0, 9.0, 9.0], vec![1.0, 2.0, f64::NAN, 8.0, 9.0]],
        max: vec![vec![1.0, 6.0, 9.0, 9.0, 9.0], vec![1.0, 4.0, f64::NAN, 9.0, 9.0]],
        running: vec![9.0; 5],
        messages_per_sec: vec![0.0, 100.0, 120.0, 110.0, 100.0],
    }
}

fn at(s: f64) -> SimTime {
    SimTime::from_duration(Duration::from_secs_f64(s))
}

fn sample_marks() -> Vec<Mark> {
    vec![
        Mark { at: 0.5, kind: MarkKind::Cut, label: "partition".into() },
        Mark { at: 1.5, kind: MarkKind::Heal, label: "heal".into() },
    ]
}

#[test]
fn ticks_are_round_numbers() {
    assert_eq!(tick_step(100.0, 10.0), 10.0);
    assert_eq!(tick_step(17.0, 6.0), 5.0);
    assert_eq!(tick_step(0.0, 6.0), 1.0);
    assert_eq!(axis_top(17.0), 20.0);
    assert_eq!(axis_top(0.0), 1.0);
    assert_eq!(axis_top(f64::MAX), LIMIT);
    assert_eq!(axis_top(f64::INFINITY), LIMIT);
    assert_eq!(fmt_tick(20000.0), "20k");
    assert_eq!(fmt_tick(0.25), "0.25");
    assert_eq!(fmt_tick(3.0), "3");
    assert_eq!(fmt_tick(1e300), "1.0e300");
}

#[test]
fn members_up_has_a_line_and_band_per_subcluster_the_running_count_and_a_legend() {
    let svg = members_up_svg("t<1>", &series(), &[]).expect("draws");
    let all = texts(&svg);
    assert!(all.iter().any(|t| t.starts_with("t<1>: members seen up") && t.contains("band: fewest–most")), "{all:?}");
    for label in ["east", "west", "running nodes", "simulated time (s)", "members seen up"] {
        assert!(all.iter().any(|t| t == label), "{label} missing from {all:?}");
    }
    let (east, west, running) = (hex(COLORS[0]), hex(COLORS[1]), "#555555");
    // A line per finite run plus the legend sample: west is split in two by its NaN.
    assert_eq!(count(&svg, "polyline", "stroke", &east), 2, "east line + legend");
    assert_eq!(count(&svg, "polyline", "stroke", &west), 3, "west runs + legend");
    // The band: a polygon per finite run, translucent.
    assert_eq!(count(&svg, "polygon", "fill", &east), 1);
    assert_eq!(count(&svg, "polygon", "fill", &west), 2);
    let doc = parse(&svg);
    assert!(elements(&doc, "polygon").iter().all(|p| p.attribute("opacity") == Some("0.15")));
    // Dashed: plotters draws each dash as its own polyline, so there are many.
    assert!(count(&svg, "polyline", "stroke", running) > 10, "running count dashed");
    assert!(elements(&doc, "text").iter().all(|t| t.attribute("font-family") == Some("sans-serif")), "one generic font");
}

#[test]
fn traffic_has_its_line_axis_units_and_legend() {
    let svg = traffic_svg("t", &series(), &[]).expect("draws");
    let all = texts(&svg);
    for label in ["messages / s", "messages sent / s", "simulated time (s)", "t: messages sent per second (whole cluster)"] {
        assert!(all.iter().any(|t| t == label), "{label} missing from {all:?}");
    }
    assert_eq!(count(&svg, "polyline", "stroke", &hex(COLORS[0])), 2, "the line and its legend sample");
}

#[test]
fn events_are_marked_labelled_and_in_the_legend() {
    let svg = members_up_svg("t", &series(), &sample_marks()).expect("draws");
    let all = texts(&svg);
    for label in ["partition", "heal", "partition / isolate"] {
        assert!(all.iter().any(|t| t == label), "{label} missing from {all:?}");
    }
    assert!(count(&svg, "polyline", "stroke", &hex(MarkKind::Cut.color())) > 3, "a dashed line at the partition");
    assert!(count(&svg, "polyline", "stroke", &hex(MarkKind::Heal.color())) > 3, "a dashed line at the heal");
}

#[test]
fn marks_merge_nodes_of_one_instant_and_leave_out_boots() {
    use crate::stats::Change;
    let names: Vec<String> = ["mgr", "east1", "east2", "west1", "west2", "west3"].iter().map(|s| s.to_string()).collect();
    let change = |s: f64, what: &'static str, node: Option<u32>| Change { at: at(s), what, node };
    let changes = vec![
        change(0.0, "boot", Some(0)),
        change(0.0, "boot", Some(1)),
        change(10.0, "partition", None),
        change(12.0, "crash", Some(1)),
        change(12.0, "crash", Some(2)),
        change(20.0, "crash", Some(1)),
        change(20.0, "crash", Some(2)),
        change(20.0, "crash", Some(3)),
        change(20.0, "crash", Some(4)),
        change(30.0, "heal", None),
        change(31.0, "restart", Some(9)),
    ];
    let labels: Vec<(f64, MarkKind, String)> = marks(&changes, &names).into_iter().map(|m| (m.at, m.kind, m.label)).collect();
    assert_eq!(
        labels,
        vec![
            (10.0, MarkKind::Cut, "partition".to_string()),
            (12.0, MarkKind::Crash, "crash east1, east2".to_string()),
            (20.0, MarkKind::Crash, "crash east1, east2, west1 +1".to_string()),
            (30.0, MarkKind::Heal, "heal".to_string()),
            (31.0, MarkKind::Restart, "restart ?".to_string()),
        ]
    );
}

#[test]
fn odd_series_draw_without_panicking() {
    let one = Series {
        groups: vec!["east".into()],
        times: vec![3.0],
        mean: vec![vec![4.0]],
        min: vec![vec![4.0]],
        max: vec![vec![4.0]],
        running: vec![4.0],
        messages_per_sec: vec![7.0],
    };
    let zeros = Series {
        groups: vec!["east".into()],
        times: vec![0.0, 0.0, 0.0],
        mean: vec![vec![0.0; 3]],
        min: vec![vec![0.0; 3]],
        max: vec![vec![0.0; 3]],
        running: vec![0.0; 3],
        messages_per_sec: vec![0.0; 3],
    };
    let huge = Series {
        groups: vec!["east".into()],
        times: vec![0.0, 1e12, 2e12],
        mean: vec![vec![1e300, f64::MAX, 1e15]],
        min: vec![vec![-1e300, 0.0, f64::INFINITY]],
        max: vec![vec![f64::MAX, f64::MAX, f64::MAX]],
        running: vec![f64::MAX; 3],
        messages_per_sec: vec![f64::MAX, 1e300, f64::NEG_INFINITY],
    };
    let nan = Series {
        groups: vec!["east".into(), "west".into()],
        times: vec![0.0, f64::NAN, 2.0],
        mean: vec![vec![f64::NAN; 3]],
        min: vec![],
        max: vec![vec![1.0]],
        running: vec![f64::NAN; 3],
        messages_per_sec: vec![],
    };
    let empty = Series::default();
    for (name, s) in [("one", &one), ("zeros", &zeros), ("huge", &huge), ("nan", &nan), ("empty", &empty)] {
        for marks in [&[][..], &sample_marks()[..]] {
            for svg in [members_up_svg(name, s, marks), traffic_svg(name, s, marks)] {
                let svg = svg.unwrap_or_else(|e| panic!("{name}: {e}"));
                let all = texts(&svg);
                assert!(all.iter().any(|t| t.starts_with(name)), "{name}: title in {all:?}");
            }
        }
    }
    let svg = members_up_svg("one", &one, &[]).expect("draws");
    assert_eq!(count(&svg, "circle", "fill", &hex(COLORS[0])), 1, "a single sample is a dot");
    assert!(texts(&members_up_svg("empty", &empty, &[]).expect("draws")).iter().any(|t| t == "no samples"));
}

#[test]
fn write_plots_writes_both_charts() {
    let dir = tempfile::tempdir().expect("temp dir");
    let written = write_plots(dir.path(), "t", &series(), &sample_marks()).expect("write plots");
    let names: Vec<String> = written.iter().filter_map(|p| p.file_name()).map(|n| n.to_string_lossy().into_owned()).collect();
    assert_eq!(names, ["members-up.svg", "traffic.svg"]);
    for path in &written {
        let text = std::fs::read_to_string(path).expect("read chart");
        parse(&text);
    }
}

fn vip_rows() -> (Vec<String>, BTreeMap<IpAddr, Vec<Segment>>) {
    let a: IpAddr = "10.200.0.1".parse().expect("ip");
    let b: IpAddr = "10.200.0.2".parse().expect("ip");
    let mut rows = BTreeMap::new();
    rows.insert(
        a,
        vec![
            Segment { from: at(0.0), to: at(2.0), holders: vec![] },
            Segment { from: at(2.0), to: at(5.0), holders: vec![1] },
            Segment { from: at(5.0), to: at(6.0), holders: vec![1, 2] },
            Segment { from: at(6.0), to: at(10.0), holders: vec![2] },
        ],
    );
    rows.insert(b, vec![Segment { from: at(1.0), to: at(10.0), holders: vec![2] }, Segment { from: at(10.0), to: at(10.0), holders: vec![] }]);
    let names = vec!["mgr".to_string(), "east1".to_string(), "west1".to_string()];
    (names, rows)
}

#[test]
fn vip_timeline_has_a_row_per_address_owner_spans_labels_and_conflicts() {
    let (names, rows) = vip_rows();
    let svg = vip_owners_svg("t", &names, &rows, 10.0, &sample_marks()).expect("draws");
    let all = texts(&svg);
    for label in ["10.200.0.1", "10.200.0.2", "simulated time (s)", "two or more", "partition / isolate", "heal"] {
        assert!(all.iter().any(|t| t == label), "{label} missing from {all:?}");
    }
    // Owner names: in the legend, and on the spans wide enough to hold them.
    assert_eq!(all.iter().filter(|t| *t == "east1").count(), 2, "east1: legend and its span ({all:?})");
    assert_eq!(all.iter().filter(|t| *t == "west1").count(), 3, "west1: legend and its two spans ({all:?})");
    let (east1, west1) = (hex(HOLDER_COLORS_FIRST[0]), hex(HOLDER_COLORS_FIRST[1]));
    assert_eq!(count(&svg, "rect", "fill", &east1), 2, "one east1 span + legend");
    assert_eq!(count(&svg, "rect", "fill", &west1), 3, "two west1 spans + legend");
    assert_eq!(count(&svg, "rect", "fill", "#E00000"), 2, "the conflict span + legend");
    assert_eq!(count(&svg, "rect", "fill", "#F3F3F3"), 2, "a row background per address");
}

#[test]
fn every_holder_gets_its_own_colour() {
    let colours: std::collections::BTreeSet<(u8, u8, u8)> = (0..64).map(owners::holder_color).map(|c| (c.0, c.1, c.2)).collect();
    assert_eq!(colours.len(), 64);
    assert!(!colours.contains(&(0xe0, 0, 0)), "red is for conflicts");
}

/// The first two holder colours, in order of first appearance.
const HOLDER_COLORS_FIRST: [RGBColor; 2] = [RGBColor(0x1f, 0x77, 0xb4), RGBColor(0x2c, 0xa0, 0x2c)];

#[test]
fn vip_timeline_draws_nothing_zero_time_and_many_addresses() {
    let (names, rows) = vip_rows();
    let empty = vip_owners_svg("t", &names, &BTreeMap::new(), 0.0, &[]).expect("draws");
    assert!(texts(&empty).iter().any(|t| t == "no DuraVIP addresses"));
    for end in [0.0, f64::NAN, f64::INFINITY, 1e300] {
        let svg = vip_owners_svg("t", &names, &rows, end, &sample_marks()).expect("draws");
        parse(&svg);
    }
    let unknown = vec![Segment { from: at(0.0), to: at(5.0), holders: vec![42] }];
    let many: BTreeMap<IpAddr, Vec<Segment>> =
        (0..60u8).map(|i| (IpAddr::from([10, 0, 0, i]), if i == 0 { unknown.clone() } else { Vec::new() })).collect();
    let svg = vip_owners_svg("t", &[], &many, 10.0, &[]).expect("draws");
    let all = texts(&svg);
    assert!(all.iter().any(|t| t.ends_with("first 48 of 60 addresses")), "{all:?}");
    assert_eq!(count(&svg, "rect", "fill", "#F3F3F3"), 48);
    assert!(all.iter().any(|t| t == "?"), "an unknown holder is named ?");
}

#[test]
fn the_same_input_draws_the_same_bytes() {
    let (names, rows) = vip_rows();
    assert_eq!(members_up_svg("t", &series(), &sample_marks()).ok(), members_up_svg("t", &series(), &sample_marks()).ok());
    assert_eq!(
        vip_owners_svg("t", &names, &rows, 10.0, &sample_marks()).ok(),
        vip_owners_svg("t", &names, &rows, 10.0, &sample_marks()).ok()
    );
}
