//! The DuraVIP actuator on a real machine: the netlink actuator inside a network namespace
//! joined to a peer namespace by a veth pair (addresses, lifetimes and their renewal, clean
//! slate, gratuitous ARP and neighbour advertisements seen by the peer), the script actuator
//! with real programs, and the handle's queue. Run as root with iproute2.

mod netns;

use std::collections::BTreeMap;
use std::net::IpAddr;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use eccluster::actuator::{Action, Actuator, ActuatorReport, RequestError};
use eccluster::config::duravip::{ActuatorKind, Announce, DuravipSettings, Follower, Plumbing};
use tokio::sync::mpsc::Receiver;
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;

use netns::{addr_info, ip, ip_async, neighbour, wait_for, Pair, A_IF, B_IF};

const VIP: &str = "10.77.0.100";
const FOLLOWER: &str = "10.77.0.101";
const VIP2: &str = "10.77.0.110";

fn addr(text: &str) -> IpAddr {
    text.parse().expect("test address")
}

/// Plumbing on `interface` with followers `(addr, prefix, own interface)`.
fn plumbing(interface: Option<&str>, prefix_len: u8, followers: &[(&str, u8, Option<&str>)]) -> Plumbing {
    Plumbing {
        names: vec!["test".to_owned()],
        interface: interface.map(str::to_owned),
        prefix_len,
        followers: followers
            .iter()
            .map(|(a, prefix_len, interface)| Follower {
                addr: addr(a),
                interface: interface.map(str::to_owned),
                prefix_len: *prefix_len,
                name: format!("ESMTP_Listener \"{a}:25\""),
            })
            .collect(),
    }
}

fn settings(
    actuator: ActuatorKind,
    lifetime: Duration,
    announce: Announce,
    entries: Vec<(&str, Plumbing)>,
) -> DuravipSettings {
    DuravipSettings {
        actuator,
        plumbing: entries.into_iter().map(|(a, p)| (addr(a), p)).collect::<BTreeMap<_, _>>(),
        lifetime,
        announce,
        ..DuravipSettings::default()
    }
}

/// The usual netlink settings: [`VIP`] /32 on the veth with [`FOLLOWER`], and [`VIP2`].
fn netlink_settings(lifetime: Duration, announce: Announce) -> DuravipSettings {
    settings(
        ActuatorKind::Netlink,
        lifetime,
        announce,
        vec![(VIP, plumbing(Some(A_IF), 32, &[(FOLLOWER, 32, None)])), (VIP2, plumbing(Some(A_IF), 32, &[]))],
    )
}

const ONE_ROUND: Announce = Announce { repeat: 1, delay: Duration::ZERO };

/// A started actuator with what stops it.
struct Running {
    actuator: Actuator,
    reports: Receiver<ActuatorReport>,
    tracker: TaskTracker,
    shutdown: CancellationToken,
}

impl Running {
    fn start(settings: &DuravipSettings) -> Running {
        let tracker = TaskTracker::new();
        let shutdown = CancellationToken::new();
        let (actuator, reports) =
            Actuator::start(settings, &tracker, shutdown.clone()).expect("actuator starts");
        Running { actuator, reports, tracker, shutdown }
    }

    async fn report(&mut self) -> ActuatorReport {
        tokio::time::timeout(Duration::from_secs(20), self.reports.recv())
            .await
            .expect("a report within 20 s")
            .expect("the reports channel is open")
    }

    /// Requests `action` on `addr` and returns its report, checking it is about them.
    async fn perform(&mut self, action: Action, addr: IpAddr) -> ActuatorReport {
        match action {
            Action::Acquire => self.actuator.acquire(addr).expect("queued"),
            Action::Release => self.actuator.release(addr).expect("queued"),
            other => panic!("{other} is not a request"),
        }
        let report = self.report().await;
        assert_eq!((report.addr, report.action), (addr, action), "{report:?}");
        report
    }

    /// Stops the worker and checks no failure was left unread (a lost announcement, say).
    async fn stop(&mut self) {
        self.shutdown.cancel();
        self.tracker.close();
        self.tracker.wait().await;
        while let Ok(report) = self.reports.try_recv() {
            assert_eq!(report.outcome, Ok(()), "unexpected report {report:?}");
        }
    }
}

fn lifetime_of(info: &serde_json::Value) -> u64 {
    info["valid_life_time"].as_u64().expect("valid_life_time")
}

#[test]
fn netlink_acquire_adds_address_and_followers_with_lifetime() {
    let pair = Pair::new();
    let a = pair.a.name.clone();
    pair.in_a(move || async move {
        let mut run = Running::start(&netlink_settings(Duration::from_secs(30), ONE_ROUND));
        let report = run.perform(Action::Acquire, addr(VIP)).await;
        assert_eq!(report.outcome, Ok(()));
        for address in [VIP, FOLLOWER] {
            let info = addr_info(&a, address).await.unwrap_or_else(|| panic!("{address} configured in A"));
            assert_eq!(info["prefixlen"], 32, "{info}");
            assert_eq!(info["label"], A_IF, "{info}");
            let valid = lifetime_of(&info);
            assert!(valid > 0 && valid <= 30, "valid lifetime {valid} within the configured 30 s: {info}");
            assert!(info["preferred_life_time"].as_u64().is_some_and(|p| p <= 30), "{info}");
        }
        assert!(addr_info(&a, VIP2).await.is_none(), "only the requested address is acquired");
        // Acquiring again (replace) succeeds.
        assert_eq!(run.perform(Action::Acquire, addr(VIP)).await.outcome, Ok(()));
        run.stop().await;
    });
}

#[test]
fn netlink_release_removes_address_and_followers() {
    let pair = Pair::new();
    let a = pair.a.name.clone();
    pair.in_a(move || async move {
        let mut run = Running::start(&netlink_settings(Duration::from_secs(30), ONE_ROUND));
        assert_eq!(run.perform(Action::Acquire, addr(VIP)).await.outcome, Ok(()));
        assert_eq!(run.perform(Action::Acquire, addr(VIP2)).await.outcome, Ok(()));
        assert_eq!(run.perform(Action::Release, addr(VIP)).await.outcome, Ok(()));
        assert!(addr_info(&a, VIP).await.is_none(), "released address gone");
        assert!(addr_info(&a, FOLLOWER).await.is_none(), "its follower gone");
        assert!(addr_info(&a, VIP2).await.is_some(), "the other address stays");
        assert!(addr_info(&a, "10.77.0.1").await.is_some(), "the interface's own address stays");
        // Releasing what is not there is not an error.
        assert_eq!(run.perform(Action::Release, addr(VIP)).await.outcome, Ok(()));
        run.stop().await;
    });
}

#[test]
fn netlink_renewal_keeps_address_and_it_expires_after_the_holder_dies() {
    let pair = Pair::new();
    let a = pair.a.name.clone();
    let lifetime = Duration::from_secs(3);
    pair.in_a(move || async move {
        let mut run = Running::start(&netlink_settings(lifetime, ONE_ROUND));
        assert_eq!(run.perform(Action::Acquire, addr(VIP)).await.outcome, Ok(()));
        let info = addr_info(&a, VIP).await.expect("acquired");
        assert!(lifetime_of(&info) <= 3, "{info}");

        // Held for more than twice the lifetime: renewal keeps it there all along.
        let held_since = Instant::now();
        while held_since.elapsed() < lifetime * 2 + Duration::from_secs(1) {
            let info = addr_info(&a, VIP)
                .await
                .unwrap_or_else(|| panic!("{VIP} vanished after {:?} while held", held_since.elapsed()));
            assert!(lifetime_of(&info) <= 3, "{info}");
            assert!(addr_info(&a, FOLLOWER).await.is_some(), "follower renewed too");
            tokio::time::sleep(Duration::from_millis(200)).await;
        }

        // The holder stops without releasing (as after kill -9): the address stays for now
        // and expires on its own.
        run.stop().await;
        assert!(addr_info(&a, VIP).await.is_some(), "stopping does not release");
        wait_for("the address and its follower expire", lifetime + Duration::from_secs(5), || {
            let a = a.clone();
            async move { addr_info(&a, VIP).await.is_none() && addr_info(&a, FOLLOWER).await.is_none() }
        })
        .await;
    });
}

#[test]
fn netlink_clean_slate_removes_duravip_addresses_left_behind() {
    let pair = Pair::new();
    let a = pair.a.name.clone();
    // Left behind by an earlier run, with another prefix; and an unrelated address.
    ip(&["-n", &a, "addr", "add", &format!("{VIP}/32"), "dev", A_IF]);
    ip(&["-n", &a, "addr", "add", &format!("{FOLLOWER}/24"), "dev", A_IF]);
    ip(&["-n", &a, "addr", "add", "10.77.0.50/32", "dev", A_IF]);
    pair.in_a(move || async move {
        let mut run = Running::start(&netlink_settings(Duration::from_secs(30), ONE_ROUND));
        let mut removed = Vec::new();
        for _ in 0..2 {
            let report = run.report().await;
            assert_eq!((report.action, &report.outcome), (Action::CleanSlate, &Ok(())), "{report:?}");
            removed.push(report.addr);
        }
        removed.sort();
        assert_eq!(removed, vec![addr(VIP), addr(FOLLOWER)]);
        assert!(addr_info(&a, VIP).await.is_none());
        assert!(addr_info(&a, FOLLOWER).await.is_none());
        assert!(addr_info(&a, "10.77.0.50").await.is_some(), "unrelated address kept");
        assert!(addr_info(&a, "10.77.0.1").await.is_some(), "interface address kept");
        // Requests come after the clean slate: nothing else was reported before this one.
        assert_eq!(run.perform(Action::Acquire, addr(VIP2)).await.outcome, Ok(()));
        run.stop().await;
    });
}

#[test]
fn gratuitous_arp_teaches_the_peer_and_the_second_round_does_not_hold_up_requests() {
    let pair = Pair::new();
    let (a, b, a_mac) = (pair.a.name.clone(), pair.b.name.clone(), pair.a_mac.clone());
    ip(&["netns", "exec", &b, "sysctl", "-q", "-w", "net.ipv4.conf.all.arp_accept=1"]);
    assert!(
        !ip(&["-n", &b, "neigh", "show", VIP, "dev", B_IF]).contains("lladdr"),
        "the peer does not know the address yet"
    );
    let delay = Duration::from_secs(2);
    pair.in_a(move || async move {
        let mut run =
            Running::start(&netlink_settings(Duration::from_secs(30), Announce { repeat: 1, delay }));
        let acquired = Instant::now();
        assert_eq!(run.perform(Action::Acquire, addr(VIP)).await.outcome, Ok(()));
        let learned = || {
            let (b, a_mac) = (b.clone(), a_mac.clone());
            async move { neighbour(&b, B_IF, VIP).await.as_deref() == Some(a_mac.as_str()) }
        };
        wait_for("the peer learns the address from the first round", Duration::from_secs(5), learned).await;

        // While the second round is pending, another request is served at once.
        let asked = Instant::now();
        assert_eq!(run.perform(Action::Acquire, addr(VIP2)).await.outcome, Ok(()));
        assert!(
            asked.elapsed() < delay / 2,
            "a request waited {:?} behind the second round",
            asked.elapsed()
        );
        assert!(addr_info(&a, VIP2).await.is_some());

        // The peer forgets; the second round, `delay` after the acquisition, teaches it again.
        ip_async(&["-n", &b, "neigh", "del", VIP, "dev", B_IF]).await;
        assert_eq!(neighbour(&b, B_IF, VIP).await, None, "the peer forgot");
        let relearned =
            wait_for("the second round reaches the peer", delay + Duration::from_secs(5), learned).await;
        assert!(
            relearned - acquired >= delay - Duration::from_millis(300),
            "relearned {:?} after acquiring: before the second round was due",
            relearned - acquired
        );
        run.stop().await;
    });
}

#[test]
fn ipv6_address_is_usable_at_once_and_its_advertisement_overrides_the_peer() {
    let pair = Pair::new();
    let (a, b, a_mac) = (pair.a.name.clone(), pair.b.name.clone(), pair.a_mac.clone());
    let vip6 = "fd77::100";
    // The peer has a stale entry pointing elsewhere; only an advertisement with the
    // override flag replaces its link-layer address.
    ip(&["-n", &b, "neigh", "replace", vip6, "lladdr", "02:00:00:00:00:99", "dev", B_IF, "nud", "stale"]);
    pair.in_a(move || async move {
        let settings = settings(
            ActuatorKind::Netlink,
            Duration::from_secs(30),
            ONE_ROUND,
            vec![(vip6, plumbing(Some(A_IF), 128, &[]))],
        );
        let mut run = Running::start(&settings);
        assert_eq!(run.perform(Action::Acquire, addr(vip6)).await.outcome, Ok(()));
        let info = addr_info(&a, vip6).await.expect("acquired");
        assert_eq!(info["prefixlen"], 128, "{info}");
        assert_eq!(info["nodad"], true, "no duplicate address detection: {info}");
        assert!(info.get("tentative").is_none(), "usable at once: {info}");
        assert!(lifetime_of(&info) <= 30, "{info}");
        wait_for("the peer takes our link-layer address", Duration::from_secs(5), || {
            let (b, a_mac) = (b.clone(), a_mac.clone());
            async move { neighbour(&b, B_IF, vip6).await.as_deref() == Some(a_mac.as_str()) }
        })
        .await;
        assert_eq!(run.perform(Action::Release, addr(vip6)).await.outcome, Ok(()));
        assert!(addr_info(&a, vip6).await.is_none());
        run.stop().await;
    });
}

#[test]
fn netlink_missing_interface_is_reported_by_name() {
    let pair = Pair::new();
    pair.in_a(move || async move {
        let settings = settings(
            ActuatorKind::Netlink,
            Duration::from_secs(30),
            ONE_ROUND,
            vec![(VIP, plumbing(Some("nosuch0"), 32, &[]))],
        );
        let mut run = Running::start(&settings);
        let report = run.perform(Action::Acquire, addr(VIP)).await;
        let error = report.outcome.expect_err("no such interface");
        assert!(error.contains("interface nosuch0 not found"), "{error}");
        run.stop().await;
    });
}

#[test]
fn netlink_keeps_trying_an_address_whose_interface_appears_later() {
    let pair = Pair::new();
    let a = pair.a.name.clone();
    pair.in_a(move || async move {
        let settings = settings(
            ActuatorKind::Netlink,
            Duration::from_secs(30),
            ONE_ROUND,
            vec![(VIP, plumbing(Some("late0"), 32, &[]))],
        );
        let mut run = Running::start(&settings);
        let report = run.perform(Action::Acquire, addr(VIP)).await;
        assert!(report.outcome.expect_err("no interface yet").contains("interface late0 not found"));
        ip_async(&["-n", &a, "link", "add", "late0", "type", "veth", "peer", "name", "late0p"]).await;
        ip_async(&["-n", &a, "link", "set", "late0p", "up"]).await;
        ip_async(&["-n", &a, "link", "set", "late0", "up"]).await;
        // The retry reports the recovery. (Its announcement may find the new link without
        // carrier for a moment and say so: that is reported, not a failure of the retry.)
        let recovered = loop {
            let r = run.report().await;
            if r.action != Action::Announce {
                break r;
            }
        };
        assert_eq!((recovered.action, recovered.outcome), (Action::Renew, Ok(())), "the retry reports the recovery");
        assert!(addr_info(&a, VIP).await.is_some(), "the address went on once the interface existed");
        while let Ok(r) = run.reports.try_recv() {
            assert_eq!(r.action, Action::Announce, "{r:?}");
        }
        run.stop().await;
    });
}

#[test]
fn netlink_announcing_on_a_link_that_is_not_running_is_reported() {
    let pair = Pair::new();
    ip(&["-n", &pair.a.name, "link", "set", A_IF, "down"]);
    let a = pair.a.name.clone();
    pair.in_a(move || async move {
        let mut run = Running::start(&netlink_settings(Duration::from_secs(30), ONE_ROUND));
        assert_eq!(
            run.perform(Action::Acquire, addr(VIP2)).await.outcome,
            Ok(()),
            "the address goes on anyway"
        );
        assert!(addr_info(&a, VIP2).await.is_some());
        let report = run.report().await;
        assert_eq!((report.addr, report.action), (addr(VIP2), Action::Announce), "{report:?}");
        let error = report.outcome.expect_err("link down");
        assert!(
            error.contains(&format!("not announcing {VIP2}: interface {A_IF} is not running")),
            "{error}"
        );
        run.stop().await;
    });
}

/// Writes an executable `/bin/sh` script.
fn script(dir: &Path, name: &str, body: &str) -> PathBuf {
    let path = dir.join(name);
    std::fs::write(&path, format!("#!/bin/sh\n{body}\n")).expect("write script");
    std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o755)).expect("chmod script");
    path
}

fn script_settings(program: PathBuf, timeout: Duration, entries: Vec<(&str, Plumbing)>) -> DuravipSettings {
    settings(ActuatorKind::Script { program, timeout }, Duration::ZERO, Announce::default(), entries)
}

fn lines(path: &Path) -> Vec<String> {
    std::fs::read_to_string(path).unwrap_or_default().lines().map(str::to_owned).collect()
}

#[tokio::test]
async fn script_runs_add_and_del_with_address_and_interface() {
    let dir = tempfile::tempdir().expect("tempdir");
    let log = dir.path().join("calls");
    let program = script(
        dir.path(),
        "vip",
        &format!("printf '%s %s %s [%s]\\n' \"$#\" \"$1\" \"$2\" \"$3\" >> {}", log.display()),
    );
    let mut run = Running::start(&script_settings(
        program,
        Duration::from_secs(10),
        vec![
            ("192.0.2.10", plumbing(Some("eth9"), 32, &[("192.0.2.11", 32, None)])),
            ("192.0.2.20", plumbing(None, 32, &[])),
        ],
    ));
    for vip in ["192.0.2.10", "192.0.2.20"] {
        let report = run.report().await;
        assert_eq!(report, ActuatorReport { addr: addr(vip), action: Action::CleanSlate, outcome: Ok(()) });
    }
    assert_eq!(run.perform(Action::Acquire, addr("192.0.2.10")).await.outcome, Ok(()));
    assert_eq!(run.perform(Action::Acquire, addr("192.0.2.20")).await.outcome, Ok(()));
    assert_eq!(run.perform(Action::Release, addr("192.0.2.10")).await.outcome, Ok(()));
    assert_eq!(
        lines(&log),
        [
            // clean slate: followers first, then the address; no interface is an empty argument
            "3 del 192.0.2.11 [eth9]",
            "3 del 192.0.2.10 [eth9]",
            "3 del 192.0.2.20 []",
            // acquire: the address, then its followers on its interface
            "3 add 192.0.2.10 [eth9]",
            "3 add 192.0.2.11 [eth9]",
            "3 add 192.0.2.20 []",
            // release: the reverse
            "3 del 192.0.2.11 [eth9]",
            "3 del 192.0.2.10 [eth9]",
        ]
    );
    run.stop().await;
}

#[tokio::test]
async fn script_failure_reports_exit_status_and_stderr() {
    let dir = tempfile::tempdir().expect("tempdir");
    let program = script(
        dir.path(),
        "vip",
        "[ \"$1\" = add ] || exit 0\necho \"RTNETLINK answers: No such device\" >&2\nexit 3",
    );
    let mut run = Running::start(&script_settings(
        program,
        Duration::from_secs(10),
        vec![("192.0.2.10", plumbing(Some("eth9"), 32, &[]))],
    ));
    assert_eq!(run.report().await.action, Action::CleanSlate);
    let error = run.perform(Action::Acquire, addr("192.0.2.10")).await.outcome.expect_err("exit 3");
    assert!(error.contains("add 192.0.2.10 failed"), "{error}");
    assert!(error.contains("exit status: 3"), "{error}");
    assert!(error.contains("RTNETLINK answers: No such device"), "{error}");
    run.stop().await;
}

#[tokio::test]
async fn script_past_timeout_is_killed_with_its_children() {
    let dir = tempfile::tempdir().expect("tempdir");
    let pid_file = dir.path().join("child.pid");
    let program = script(
        dir.path(),
        "vip",
        &format!(
            "[ \"$1\" = add ] || exit 0\necho plumbing >&2\nsleep 60 &\necho $! > {}\nwait",
            pid_file.display()
        ),
    );
    let timeout = Duration::from_millis(500);
    let mut run = Running::start(&script_settings(
        program,
        timeout,
        vec![("192.0.2.10", plumbing(Some("eth9"), 32, &[]))],
    ));
    assert_eq!(run.report().await.action, Action::CleanSlate);
    let asked = Instant::now();
    let error = run.perform(Action::Acquire, addr("192.0.2.10")).await.outcome.expect_err("timed out");
    assert!(asked.elapsed() < timeout + Duration::from_secs(5), "killed late: {:?}", asked.elapsed());
    assert!(error.contains("killed after 500ms"), "{error}");
    assert!(error.contains("plumbing"), "stderr kept: {error}");
    let pid = std::fs::read_to_string(&pid_file).expect("the script started its child");
    let stat = format!("/proc/{}/stat", pid.trim());
    // Gone, or a zombie waiting for a reaper: either way no longer running.
    wait_for("the script's child is killed", Duration::from_secs(5), || {
        let stat = stat.clone();
        async move {
            std::fs::read_to_string(&stat)
                .map_or(true, |s| s.split(") ").nth(1).is_some_and(|rest| rest.starts_with('Z')))
        }
    })
    .await;
    run.stop().await;
}

#[tokio::test]
async fn requests_run_in_order_and_a_full_queue_refuses_without_waiting() {
    let dir = tempfile::tempdir().expect("tempdir");
    let log = dir.path().join("calls");
    let program = script(dir.path(), "vip", &format!("echo \"$1 $2\" >> {}", log.display()));
    let vips = ["192.0.2.1", "192.0.2.2", "192.0.2.3"];
    let mut run = Running::start(&script_settings(
        program,
        Duration::from_secs(10),
        vips.iter().map(|v| (*v, plumbing(None, 32, &[]))).collect(),
    ));
    // On this current-thread runtime the worker cannot run until we await: the queue fills.
    let capacity = run.actuator.capacity();
    let mut expected = Vec::new();
    for k in 0..capacity {
        let vip = addr(vips[k % vips.len()]);
        if k % 2 == 0 {
            run.actuator.acquire(vip).expect("room in the queue");
            expected.push((vip, Action::Acquire));
        } else {
            run.actuator.release(vip).expect("room in the queue");
            expected.push((vip, Action::Release));
        }
    }
    match run.actuator.acquire(addr(vips[0])) {
        Err(RequestError::Full { capacity: c, .. }) => assert_eq!(c, capacity),
        other => panic!("a full queue refuses: {other:?}"),
    }
    for vip in vips {
        assert_eq!(run.report().await.addr, addr(vip), "clean slate first");
    }
    for (vip, action) in &expected {
        let report = run.report().await;
        assert_eq!((report.addr, report.action, report.outcome), (*vip, *action, Ok(())));
    }
    let calls: Vec<String> = lines(&log).into_iter().skip(vips.len()).collect();
    let wanted: Vec<String> = expected
        .iter()
        .map(|(vip, action)| format!("{} {vip}", if *action == Action::Acquire { "add" } else { "del" }))
        .collect();
    assert_eq!(calls, wanted);
    // Dropping the handle lets the worker finish its (empty) queue and stop by itself.
    drop(run.actuator);
    run.tracker.close();
    tokio::time::timeout(Duration::from_secs(10), run.tracker.wait())
        .await
        .expect("the worker stops once the handle is gone");
}

#[tokio::test]
async fn record_only_actuator_reports_success_and_refuses_unknown_addresses() {
    let settings = settings(
        ActuatorKind::None,
        Duration::ZERO,
        Announce::default(),
        vec![("10.0.0.1", plumbing(None, 32, &[]))],
    );
    let mut run = Running::start(&settings);
    assert_eq!(run.perform(Action::Acquire, addr("10.0.0.1")).await.outcome, Ok(()));
    assert_eq!(run.perform(Action::Release, addr("10.0.0.1")).await.outcome, Ok(()));
    let error = run.perform(Action::Acquire, addr("10.9.9.9")).await.outcome.expect_err("unknown");
    assert!(error.contains("10.9.9.9 is not a duravip address"), "{error}");
    run.stop().await;
    assert!(
        matches!(run.actuator.acquire(addr("10.0.0.1")), Err(RequestError::Stopped { .. })),
        "stopped after shutdown"
    );
}

#[tokio::test]
async fn netlink_start_rejects_short_lifetime_and_addresses_without_interface() {
    let tracker = TaskTracker::new();
    let short = netlink_settings(Duration::from_secs(1), ONE_ROUND);
    let error = Actuator::start(&short, &tracker, CancellationToken::new()).expect_err("too short");
    assert!(format!("{error:#}").contains("lifetime"), "{error:#}");
    let nowhere = settings(
        ActuatorKind::Netlink,
        Duration::from_secs(30),
        ONE_ROUND,
        vec![(VIP, plumbing(None, 32, &[]))],
    );
    let error = Actuator::start(&nowhere, &tracker, CancellationToken::new()).expect_err("no interface");
    assert!(format!("{error:#}").contains(&format!("duravip address {VIP} has no interface")), "{error:#}");
    assert!(tracker.is_empty(), "nothing spawned");
}
