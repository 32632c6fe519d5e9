//! Invariants are checked after every event: a violation is reported with the virtual time,
//! what broke and the event that broke it, and the run fails with its replay command.

use crate::support::{run_quiet, segments, write_scenario};

/// From 20 s on, every link loses 70 % of its datagrams: members that can still reach each
/// other miss enough probes and acknowledgements to declare each other down — real false
/// downs.
fn lossy(tag: &str, invariants: &str) -> std::path::PathBuf {
    let text = format!(
        r#"
duration = "60s"
[topology]
segments = "{}"
[invariants]
{invariants}
[[timeline]]
at = "20s"
action = "set_loss"
loss = 0.7
"#,
        segments("two-dc.conf")
    );
    write_scenario(tag, &text)
}

#[test]
fn a_false_down_beyond_the_limit_fails_naming_time_and_event() {
    let path = lossy("max-false-downs", "max_false_downs = 0");
    let o = run_quiet(path.clone(), 3, None, None).expect("runs");
    assert!(!o.passed);
    assert_eq!(o.exit_code(), 1);
    let v = &o.report.violations[0];
    assert_eq!(v.invariant, "max-false-downs");
    assert!(v.at.as_duration().as_secs_f64() > 20.0, "after the cut: {}", v.at);
    let text = v.to_string();
    assert!(text.starts_with(&format!("at {}: invariant max-false-downs violated: ", v.at)), "{text}");
    assert!(text.contains("down while it was running and reachable (false down #1, limit 0)"), "{text}");
    // The event that broke it: the suspicion timer that turned the suspect down, or the
    // datagram that carried someone else's declaration.
    let event = format!("at {}: ", v.at);
    assert!(text.contains("(event #") && text.contains(&event), "{text}");
    assert!(text.contains("timer ChangeSuspectToDown on ") || text.contains(": datagram "), "{text}");
    let printed = o.report.to_string();
    assert!(printed.contains("FAIL"), "{printed}");
    assert!(printed.contains(&format!("replay: eccluster sim run {} --seed 3", path.display())), "{printed}");
}

#[test]
fn an_impossibly_strict_false_down_bound_is_violated() {
    let o = run_quiet(lossy("bound", "false_down_bound = \"1ms\""), 3, None, None).expect("runs");
    assert!(!o.passed);
    let v = o.report.violations.iter().find(|v| v.invariant == "false-down-bound").expect("bound violated");
    assert!(v.message.contains("has believed") && v.message.contains("the bound is 0.001s"), "{}", v.message);
    assert!(v.event.starts_with("the belief came from event #"), "{}", v.event);
}

#[test]
fn the_same_run_with_a_loose_bound_passes() {
    let o = run_quiet(lossy("loose", "false_down_bound = \"30s\""), 3, None, None).expect("runs");
    assert!(o.passed, "{}", o.report);
    assert!(o.report.false_downs > 0, "false downs are counted even when within the bound");
}

#[test]
fn failed_assertions_fail_the_run() {
    let text = r#"
duration = "20s"
[topology]
nodes = 6
[[timeline]]
at = "10s"
action = "crash"
node = "east2"
[[timeline]]
action = "assert_down"
member = "east2"
within = "100ms"
[[timeline]]
at = "10s"
action = "assert_members"
up = 5
"#;
    let o = run_quiet(write_scenario("assert-fail", text), 1, None, None).expect("runs");
    assert!(!o.passed);
    let failed: Vec<_> = o.report.assertions.iter().filter(|a| !a.passed).collect();
    assert_eq!(failed.len(), 2, "{:?}", o.report.assertions);
    assert!(failed[0].detail.contains("not within 100ms: 5 of 5 still see east2 up"), "{}", failed[0].detail);
    assert!(failed[1].detail.contains("expected 5 up; 5 of 5 wrong: mgr sees 6"), "{}", failed[1].detail);
}
