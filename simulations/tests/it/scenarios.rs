//! Every shipped scenario runs and passes for several seeds. Large ones run scaled down
//! through the `nodes` override; their full size is a benchmark (see `bench.rs`).

use std::time::Duration;

use eccluster_simulations::sim::{SimOptions, Simulation};
use eccluster_simulations::Scenario;

use crate::support::{expect_pass, run_quiet, scenario, scratch};

const SEEDS: [u64; 40] = [
    1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15, 16, 17, 18, 19, 20, 21, 22, 23, 24, 25, 26, 27, 28, 29, 30, 31, 32, 33, 34,
    35, 36, 37, 38, 39, 0xC0FFEE,
];

#[test]
fn partition_east_west_splits_and_heals() {
    for seed in SEEDS {
        let o = expect_pass("partition-east-west", seed, None);
        let heals = o.report.convergence_after("heal");
        assert_eq!(heals.len(), 1);
        let took = heals[0].1.expect("converged after the heal");
        assert!(took <= Duration::from_secs(30), "seed {seed}: {took:?}");
        assert_eq!(o.report.false_downs, 0);
        assert!(o.report.traffic.dropped_partition > 0, "the cut dropped traffic");
    }
}

#[test]
fn one_way_partition_is_seen_from_both_sides_and_repaired() {
    for seed in SEEDS {
        let o = expect_pass("one-way-partition", seed, None);
        assert!(o.report.traffic.dropped_partition > 0);
        // A member declared down by the far side renews and tells every live member at once,
        // so its own side hardly ever takes the old identity's declaration for it.
        assert!(o.report.false_downs <= 2, "seed {seed}: {} false downs", o.report.false_downs);
        assert!(o.report.convergence_after("heal")[0].1.is_some(), "seed {seed}");
    }
}

#[test]
fn rolling_restart_sees_every_leave_and_return() {
    for seed in SEEDS {
        let o = expect_pass("rolling-restart", seed, None);
        assert_eq!(o.report.leaves, 17, "every member restarted once");
        let seen = o.report.leave_seen.expect("leaves were seen");
        // Each leave is gossiped a bounded number of times, so now and then one member has
        // not heard of it before the node is back (its renewal then updates that view).
        assert!(seen.count >= 17 * 16 * 95 / 100, "seed {seed}: leaves seen {} times", seen.count);
        assert!(seen.max < Duration::from_secs(5), "seed {seed}: {seen:?}");
        let (submitted, _, _) = o.report.ops_submitted;
        assert!(submitted >= 150, "seed {seed}: {submitted} operations sequenced through the restarts");
        assert!(o.report.ops_applied.expect("ops core") >= submitted * 10, "seed {seed}: most nodes applied most operations");
    }
}

#[test]
fn churn_is_detected_and_the_cluster_converges_after() {
    for seed in [1, 2, 3] {
        let o = expect_pass("churn", seed, None);
        assert!(o.report.crashes >= 10, "seed {seed}: only {} crashes", o.report.crashes);
        let d = o.report.detection.expect("crashes detected");
        assert!(d.p50 < Duration::from_secs(6), "seed {seed}: {d:?}");
        assert!(d.max < Duration::from_secs(40), "seed {seed}: {d:?}");
        assert!(o.report.ops_applied.expect("ops core") > 1000, "seed {seed}: operations flowed through the churn");
    }
}

#[test]
fn crash_and_restart_detection_is_bounded() {
    for seed in SEEDS {
        let o = expect_pass("crash-and-restart", seed, None);
        let d = o.report.detection.expect("crashes detected");
        assert_eq!(d.count, 3 * 45, "3 crashes, each seen by the 45 survivors");
        assert!(d.p50 < Duration::from_secs(6), "seed {seed}: {d:?}");
        assert!(d.max < Duration::from_secs(30), "seed {seed}: {d:?}");
        assert_eq!(o.report.missed_detections, 0);
    }
}

#[test]
fn loss_5pct_scaled_down_keeps_views_right() {
    for seed in [1, 2, 3] {
        let o = expect_pass("loss-5pct-1000", seed, Some(48));
        assert!(o.report.traffic.dropped_loss > 0);
        let lost = o.report.traffic.dropped_loss as f64 / o.report.traffic.sent as f64;
        assert!((0.03..0.07).contains(&lost), "seed {seed}: {lost}");
    }
}

#[test]
fn slow_lossy_wan_causes_no_false_downs() {
    for seed in SEEDS {
        let o = expect_pass("slow-wan", seed, None);
        assert_eq!(o.report.false_downs, 0);
        assert!(o.report.traffic.duplicated > 0 && o.report.traffic.dropped_loss > 0);
    }
}

#[test]
fn isolated_manager_is_declared_down_and_comes_back() {
    for seed in SEEDS {
        let o = expect_pass("isolate-manager", seed, None);
        let heal = o.report.convergence_after("heal")[0].1.expect("converged after the heal");
        assert!(heal < Duration::from_secs(30), "seed {seed}: {heal:?}");
        // The manager starts afresh when it finds itself alone, so its view from the
        // isolation is not gossiped after the heal and nobody else has to renew.
        assert_eq!(o.report.false_downs, 0, "seed {seed}");
    }
}

#[test]
fn kill_one_of_eight_is_seen_by_all_seven_survivors() {
    for seed in SEEDS {
        let o = expect_pass("kill-one-of-8", seed, None);
        let d = o.report.detection.expect("the crash was detected");
        assert_eq!(d.count, 7, "seed {seed}");
        // The node cores' own counters, as the daemons export them: the crashed member was
        // suspected before it was declared down, by every survivor's view at the end.
        let m = &o.report.core_counters.membership;
        assert!(m.suspicions_raised >= 1, "seed {seed}: {m:?}");
        assert!(m.downs >= 7, "seed {seed}: {m:?}");
        assert!(m.probe_rtt.count > 100, "seed {seed}: probes timed: {m:?}");
        assert_eq!(m.false_downs_refuted, 0, "seed {seed}: nobody was declared down while alive");
        assert_eq!(o.report.core_counters, expect_pass("kill-one-of-8", seed, None).report.core_counters, "seed {seed}: same run");
    }
}

#[test]
fn a_seeded_start_is_a_formed_cluster_at_once_and_detects_crashes() {
    for seed in [1, 2, 3] {
        // Scaled down: the full 2,000 runs in the ignored test below.
        let o = expect_pass("seeded-2000", seed, Some(300));
        assert_eq!(o.report.false_downs, 0, "seed {seed}");
        let d = o.report.detection.expect("the crashes were detected");
        assert_eq!(d.count, 2 * 298, "seed {seed}: every survivor saw both crashes");
        let m = &o.report.core_counters.membership;
        assert_eq!(m.false_downs_refuted, 0, "seed {seed}: {m:?}");
    }
}

#[test]
#[ignore = "2,000 nodes: about a minute in release"]
fn seeded_start_at_2000_nodes() {
    let o = expect_pass("seeded-2000", 1, None);
    assert_eq!(o.report.false_downs, 0);
    assert_eq!(o.report.detection.expect("detected").count, 2 * 1998);
}

#[test]
fn duravip_owner_loss_in_a_partition_available_policy() {
    for seed in SEEDS {
        let o = expect_pass("duravip-partition", seed, None);
        let v = o.report.vips.as_ref().expect("DuraVIP ran");
        assert_eq!(v.addresses, 8);
        assert_eq!(v.single_owner_at_end, 8, "seed {seed}");
        // Split brain is the available policy's nature: each side held every address, and
        // the heal ended the duplicates.
        assert!(!v.conflicts.is_empty(), "seed {seed}: both sides held addresses during the cut");
        assert!(v.conflicts.iter().all(|w| w.from.as_duration() >= Duration::from_secs(30)), "seed {seed}: {:?}", v.conflicts);
        let gap = v.unowned.iter().map(|w| w.len()).max().unwrap_or_default();
        assert!(gap < Duration::from_secs(15), "seed {seed}: longest failover gap {gap:?}");
        assert!(o.report.ops_applied.expect("ops core") >= 2 * 16, "seed {seed}: move and announce reached all 16 nodes");
    }
}

#[test]
fn duravip_majority_never_holds_an_address_on_both_sides() {
    for seed in SEEDS {
        let o = expect_pass("duravip-majority", seed, None);
        let v = o.report.vips.as_ref().expect("DuraVIP ran");
        assert_eq!(v.single_owner_at_end, 12, "seed {seed}");
        assert!(o.report.violations.is_empty(), "seed {seed}");
        assert!(v.owner_changes > 0, "seed {seed}: west's addresses moved across");
    }
}

#[test]
fn unicast_and_subcluster_broadcasts_reach_exactly_their_targets() {
    let text = r#"
duration = "20s"
[topology]
nodes = 9
subclusters = ["east", "west"]
[[timeline]]
at = "5s"
action = "broadcast"
command = "cluster info"
node = "west2"
[[timeline]]
at = "6s"
action = "broadcast"
command = "cluster info"
subcluster = "east"
[[timeline]]
at = "7s"
action = "broadcast"
command = "cluster duravip show"
"#;
    let path = crate::support::write_scenario("targets", text);
    let o = crate::support::run_quiet(path, 5, None, None).expect("runs");
    assert!(o.passed, "{}", o.report);
    // mgr + east1..east4 and west1..west4: one node, then the 4 east nodes (the manager
    // applies nothing), then all 8 nodes.
    assert_eq!(o.report.ops_submitted, (3, 0, 0));
    assert_eq!(o.report.ops_applied, Some(1 + 4 + 8));
    assert_eq!(o.report.ops_completion.as_ref().map(|d| d.count), Some(3));
}

#[test]
fn operations_for_nodes_a_cut_off_manager_declared_down_survive_its_kill() {
    for &seed in &SEEDS[..4] {
        let o = expect_pass("manager-cut-off-then-killed", seed, None);
        let (submitted, _, _) = o.report.ops_submitted;
        assert!(submitted > 300, "seed {seed}: only {submitted} operations acknowledged");
        assert!(o.report.violations.is_empty(), "seed {seed}: {:?}", o.report.violations);
    }
}

#[test]
fn a_manager_killed_during_broadcasts_loses_and_repeats_no_acknowledged_operation() {
    for &seed in &SEEDS[..8] {
        let o = expect_pass("manager-crash-during-broadcasts", seed, None);
        let (submitted, refused, _) = o.report.ops_submitted;
        assert!(submitted > 800, "seed {seed}: only {submitted} operations acknowledged");
        assert!(refused > 0, "seed {seed}: the restarted manager took operations before recovering");
        assert!(o.report.violations.is_empty(), "seed {seed}: {:?}", o.report.violations);
    }
}

/// What the manager's crashes lost, from a text trace: (journal writes not on disk, outputs
/// held for them) per crash.
fn losses(trace: &str) -> Vec<(usize, usize)> {
    trace
        .lines()
        .filter_map(|l| {
            let words: Vec<&str> = l.split(' ').collect();
            let at = words.iter().position(|w| *w == "loses")?;
            let lost = words.get(at + 1)?.parse().ok()?;
            let held = words.iter().position(|w| *w == "held").and_then(|h| words.get(h - 1)?.parse().ok())?;
            Some((lost, held))
        })
        .collect()
}

#[test]
fn a_manager_killed_while_its_journal_is_being_synced_loses_no_acknowledged_operation() {
    for &seed in &SEEDS[..6] {
        let trace = scratch(&format!("unsynced-{seed}")).join("trace.txt");
        let o = run_quiet(scenario("manager-crash-unsynced-journal"), seed, None, Some(trace.clone())).expect("runs");
        assert!(o.passed, "seed {seed}:\n{}", o.report);
        let (submitted, refused, _) = o.report.ops_submitted;
        assert!(submitted > 3000, "seed {seed}: only {submitted} operations acknowledged");
        assert!(refused > 0, "seed {seed}: the restarted manager took operations before recovering");
        // The crashes did strike while writes were on their way and outputs waited for them.
        let losses = losses(&std::fs::read_to_string(&trace).expect("trace"));
        assert_eq!(losses.len(), 3, "seed {seed}: {losses:?}");
        assert!(losses.iter().any(|&(_, held)| held > 0), "seed {seed}: {losses:?}");
        assert!(losses.iter().any(|&(lost, _)| lost > 0), "seed {seed}: {losses:?}");
    }
}

#[test]
fn a_manager_whose_disk_is_full_refuses_new_operations_and_loses_no_acknowledged_one() {
    for &seed in &SEEDS[..4] {
        let trace = scratch(&format!("disk-full-{seed}")).join("trace.txt");
        let o = run_quiet(scenario("manager-disk-full"), seed, None, Some(trace.clone())).expect("runs");
        assert!(o.passed, "seed {seed}:\n{}", o.report);
        let (submitted, _, _) = o.report.ops_submitted;
        assert!(submitted > 1500, "seed {seed}: only {submitted} operations acknowledged");
        // Refused while the disk was full, saying why, and only then (the report keeps the
        // first 100 refusals, the trace every one).
        let full: Vec<_> = o.report.refusals.iter().filter(|r| r.why.contains("control cache cannot be written")).collect();
        assert!(!full.is_empty(), "seed {seed}: no refusal for the full disk");
        for r in &full {
            let at = r.at.as_duration();
            assert!(at >= Duration::from_secs(10) && at <= Duration::from_millis(16_300), "seed {seed}: refused at {at:?}");
        }
        let trace = std::fs::read_to_string(&trace).expect("trace");
        let refused = trace.lines().filter(|l| l.contains(" refused ") && l.contains("control cache cannot be written")).count();
        assert!(refused > 1000, "seed {seed}: {refused} refusals for the full disk");
        // Both runs of the manager found their journal failing (before and after the kill),
        // and the kill on the full disk lost what was held.
        assert_eq!(trace.matches("mgr journal write failed").count(), 2, "seed {seed}");
        assert_eq!(trace.matches("mgr journal written again").count(), 1, "seed {seed}");
        assert!(losses(&trace).iter().any(|&(_, held)| held > 0), "seed {seed}: {:?}", losses(&trace));
    }
}

#[test]
fn configuration_commits_reach_every_node_through_crashes_a_partition_and_a_manager_restart() {
    for &seed in &SEEDS[..4] {
        let trace = scratch(&format!("config-revisions-{seed}")).join("trace.txt");
        let o = run_quiet(scenario("config-revisions"), seed, None, Some(trace.clone())).expect("runs");
        assert!(o.passed, "seed {seed}:\n{}", o.report);
        let trace = std::fs::read_to_string(&trace).expect("trace");
        // The node that was down, the one cut off, and every node after the manager's
        // restart ran the revisions committed meanwhile.
        for line in ["west2 runs configuration {\"global\": 1, \"west\": 1}", "east1 runs configuration {\"east\": 3, \"global\": 1}", "east8 runs configuration {\"east\": 3, \"global\": 2}"] {
            assert!(trace.contains(line), "seed {seed}: no {line:?}");
        }
        // With the server down every node's pull failed and was retried, backing off, until
        // the server was back: then each took the commit (assert_config passed).
        let failed = trace.matches("cannot pull: the configuration server is down").count();
        assert!(failed >= 16 * 2, "seed {seed}: {failed} failed pulls (each of the 16 nodes should retry at least twice in 4 s)");
        let after = &trace[trace.find("configuration server up").expect("server up in the trace")..];
        assert!(after.contains("\"global\": 3}"), "seed {seed}: nobody took global 3 after the server came back");
    }
}

#[test]
fn acknowledging_before_the_fsync_is_caught_as_lost_acknowledged_operations() {
    // The same run with a shell that sends console replies without waiting for the fsync: a
    // crash then loses operations that were acknowledged, and the invariants say so.
    let mut broken = Scenario::load(&scenario("manager-crash-unsynced-journal")).expect("scenario");
    broken.disk.replies_before_sync = true;
    // A crash keeps a random prefix of the unsynced writes, which may be all of them: a seed
    // whose three crashes each kept everything (about one in eight) loses nothing, so most
    // seeds, not every one, must show the loss.
    let mut losing = Vec::new();
    for &seed in &SEEDS[..6] {
        let options = SimOptions { scenario: broken.clone(), seed, nodes: None, trace_text: None, progress: false, seed_threads: None };
        let finished = Simulation::new(options).expect("valid scenario").run();
        let lost = finished.violations.iter().filter(|v| v.invariant == "ops-delivery").count();
        if lost > 0 {
            losing.push(seed);
        }
    }
    assert!(losing.len() >= 4, "acknowledged operations lost only with seeds {losing:?} of {:?}", &SEEDS[..6]);
}
