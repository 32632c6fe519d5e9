//! DuraVIP on real interfaces: `ecnode` processes, each in its own network namespace on a
//! bridge, holding service addresses through the netlink actuator, and a client namespace
//! that connects over TCP to each address and reads which node answered (every node runs a
//! tiny service that answers its name). Failover after kill -9, a planned move through the
//! manager, expiry of a killed holder's addresses, both partition policies, preference.

use std::collections::BTreeMap;
use std::net::{IpAddr, SocketAddr};
use std::time::{Duration, Instant};

use serde_json::Value;

use crate::netns::{who_answers, Lab, Service};
use crate::support::{converged, eventually, Cluster};

const PORT: u16 = 2525;
const NODES: [&str; 3] = ["n1", "n2", "n3"];
/// The netlink actuator's address lifetime in these tests (seconds).
const LIFETIME: u64 = 4;

struct Rig {
    lab: Lab,
    c: Cluster,
    _services: Vec<Service>,
}

fn segments(lab: &Lab) -> String {
    let mut s = format!("# Subcluster: dc = mgr\nSpread_Segment {}:4803 {{\n", lab.addr("mgr").to_string().replace(".0.10", ".0.255"));
    for h in ["mgr", "n1", "n2", "n3"] {
        s.push_str(&format!("    {h} {}\n", lab.addr(h)));
    }
    s.push_str("}\n");
    s
}

fn config(lab: &Lab, policy: &str, preference: Option<&str>) -> String {
    let net = lab.addr("mgr").to_string().replace(".0.10", ".0.0");
    let mut s = format!(
        "cluster {{\n  duravip_policy = \"{policy}\"\n  duravip_actuator = \"netlink\"\n  duravip_address_lifetime = {LIFETIME}\n  \
         duravip_announce_repeat = 2\n  duravip_announce_delay = 1\n  Topology \"{net}/24\" {{ interface = \"eth0\"  cidrmask = \"32\" }}\n}}\n"
    );
    for i in 1..=4u8 {
        s.push_str(&format!("Binding \"vip-{i}\" {{\n  Enable_Duravip = true\n  Bind_Address = \"{}\"\n", lab.service_addr(i)));
        if let (1, Some(p)) = (i, preference) {
            s.push_str(&format!("  Duravip_Preference = \"{p}\"\n"));
        }
        s.push_str("}\n");
    }
    s
}

impl Rig {
    async fn new(tag: &str, net: u8, policy: &str, preference: Option<&str>) -> Rig {
        let lab = Lab::new(tag, net, &["mgr", "n1", "n2", "n3", "client"]);
        let mut c = Cluster::new(&segments(&lab));
        for h in ["mgr", "n1", "n2", "n3"] {
            c.netns.insert(h.to_owned(), lab.ns(h));
        }
        c.set_node_config(&config(&lab, policy, preference));
        c.start_all();
        converged(&c, 4, Duration::from_secs(30)).await;
        let services = NODES.iter().map(|n| lab.name_service(n, PORT)).collect();
        let rig = Rig { lab, c, _services: services };
        rig.settled(&NODES).await;
        rig
    }

    fn vips(&self) -> Vec<IpAddr> {
        (1..=4).map(|i| IpAddr::V4(self.lab.service_addr(i))).collect()
    }

    /// Which of `among` have `addr` on their interface, as the kernel says.
    fn kernel_holders(&self, addr: IpAddr, among: &[&str]) -> Vec<String> {
        among.iter().filter(|n| self.lab.addresses(n).contains(&addr)).map(|n| n.to_string()).collect()
    }

    /// Who answers a TCP connection to `addr` from the client namespace.
    fn answers(&self, addr: IpAddr) -> Option<String> {
        self.lab.run_in("client", move || who_answers(SocketAddr::new(addr, PORT), Duration::from_millis(300)))
    }

    /// Owners each of `nodes` reports with `json cluster duravip show`.
    async fn reported(&self, node: &str) -> Option<BTreeMap<IpAddr, Option<String>>> {
        let reply = self.c.ask(node, "json cluster duravip show").await.ok()?;
        let v: Value = serde_json::from_str(&reply.body).ok()?;
        v["vips"]
            .as_array()?
            .iter()
            .map(|row| Some((row["addr"].as_str()?.parse().ok()?, row["owner"].as_str().map(str::to_owned))))
            .collect()
    }

    /// Waits until every address has exactly one holder among `nodes` (by the kernel), every
    /// node reports that owner, and the client reaches it; returns the owners.
    async fn settled(&self, nodes: &[&str]) -> BTreeMap<IpAddr, String> {
        eventually("one agreed owner per address, reachable", Duration::from_secs(45), || async {
            let mut owners = BTreeMap::new();
            for addr in self.vips() {
                let h = self.kernel_holders(addr, &NODES);
                let [only] = h.as_slice() else { return None };
                if !nodes.contains(&only.as_str()) {
                    return None;
                }
                owners.insert(addr, only.clone());
            }
            for n in nodes {
                let seen = self.reported(n).await?;
                if owners.iter().any(|(a, o)| seen.get(a).cloned().flatten().as_ref() != Some(o)) {
                    return None;
                }
            }
            for (addr, owner) in &owners {
                if self.answers(*addr).as_ref() != Some(owner) {
                    return None;
                }
            }
            Some(owners)
        })
        .await
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn addresses_answer_from_their_owner_through_kill_move_and_expiry() {
    let mut rig = Rig::new("k", 61, "available", None).await;
    let owners = rig.settled(&NODES).await;
    let mut counts: BTreeMap<&str, usize> = BTreeMap::new();
    for o in owners.values() {
        *counts.entry(o.as_str()).or_default() += 1;
    }
    assert!(counts.values().all(|&k| (1..=2).contains(&k)), "4 addresses spread over 3 nodes: {counts:?}");

    // kill -9 of an owner: its addresses answer from a survivor.
    let vip1 = rig.vips()[0];
    let victim = owners[&vip1].clone();
    let orphaned: Vec<IpAddr> = owners.iter().filter(|(_, o)| **o == victim).map(|(a, _)| *a).collect();
    let killed = Instant::now();
    rig.c.kill9(&victim);
    let successor = eventually("a survivor answering on the dead owner's address", Duration::from_secs(15), || async {
        rig.answers(vip1).filter(|n| *n != victim)
    })
    .await;
    let failover = killed.elapsed();
    assert!(failover < Duration::from_secs(6), "failover took {failover:?}");
    eprintln!("failover of {vip1} from {victim} to {successor} in {failover:?}");

    // The killed holder's addresses expire on their own.
    eventually("the killed holder's addresses to expire", Duration::from_secs(LIFETIME + 4), || async {
        let left = rig.lab.addresses(&victim);
        orphaned.iter().all(|a| !left.contains(a)).then_some(())
    })
    .await;
    assert!(killed.elapsed() >= Duration::from_secs(LIFETIME - 1), "expired before its lifetime");
    let survivors: Vec<&str> = NODES.iter().copied().filter(|n| *n != victim).collect();
    let owners = rig.settled(&survivors).await;
    let lifetime = rig.lab.valid_lifetime(&owners[&vip1], vip1).expect("configured");
    assert!(lifetime <= LIFETIME, "valid lifetime {lifetime}s, configured {LIFETIME}s");

    // A planned move through the manager: the address answers from the new owner.
    let vip2 = rig.vips()[1];
    let from = owners[&vip2].clone();
    let to = survivors.iter().find(|n| **n != from).expect("another survivor").to_string();
    let moved = Instant::now();
    let r = rig.c.ask("mgr", &format!("broadcast cluster duravip move {vip2} to {to}")).await.expect("move");
    assert!(r.is_ok(), "{}", r.body);
    eventually("the new owner answering", Duration::from_secs(5), || async { (rig.answers(vip2).as_ref() == Some(&to)).then_some(()) }).await;
    eprintln!("planned move of {vip2} from {from} to {to} in {:?}", moved.elapsed());
    assert_eq!(rig.kernel_holders(vip2, &NODES), vec![to.clone()]);

    // Bad moves are refused before sequencing: no node applies anything, nothing moves.
    let applied: Vec<usize> = futures_util::future::join_all(survivors.iter().map(|n| rig.c.oplog(n))).await.iter().map(Vec::len).collect();
    for (line, why) in [
        (format!("broadcast cluster duravip move 10.61.9.9 to {to}"), "10.61.9.9 is not a DuraVIP address of the cluster"),
        (format!("broadcast cluster duravip move {vip2} to {to}.example.com"), "did you mean"),
        (format!("broadcast cluster duravip move {vip2} to {victim}"), "is not a live node of the cluster (it is down)"),
    ] {
        let r = rig.c.ask("mgr", &line).await.expect("reply");
        assert!(!r.is_ok() && r.body.contains(why), "{line}: {}", r.body);
    }
    let after: Vec<usize> = futures_util::future::join_all(survivors.iter().map(|n| rig.c.oplog(n))).await.iter().map(Vec::len).collect();
    assert_eq!(applied, after, "a refused move was sequenced");
    assert_eq!(rig.settled(&survivors).await[&vip2], to);

    // A graceful stop (SIGTERM) releases on the way out: the addresses leave the machine before
    // the process exits, and the last node answers for them at once.
    let stopped = Instant::now();
    let status = rig.c.terminate(&to);
    assert!(status.success(), "{status}");
    let left: Vec<IpAddr> = rig.lab.addresses(&to).into_iter().filter(|a| rig.vips().contains(a)).collect();
    assert!(left.is_empty(), "{to} still has {left:?} after a graceful stop");
    let last = survivors.iter().find(|n| **n != to).expect("the last node").to_string();
    eventually("the last node answering", Duration::from_secs(5), || async { (rig.answers(vip2).as_ref() == Some(&last)).then_some(()) }).await;
    eprintln!("graceful stop of {to}: {vip2} answered by {last} after {:?}", stopped.elapsed());
    assert!(stopped.elapsed() < Duration::from_secs(3), "a graceful stop took {:?}", stopped.elapsed());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn available_partition_keeps_both_sides_serving_then_leaves_one_owner() {
    let rig = Rig::new("a", 62, "available", None).await;
    rig.lab.link("n1", false);
    eventually("both sides to hold every address", Duration::from_secs(20), || async {
        rig.vips().iter().all(|a| {
            let h = rig.kernel_holders(*a, &NODES);
            h.iter().any(|n| n == "n1") && h.iter().any(|n| n != "n1")
        })
        .then_some(())
    })
    .await;
    rig.lab.link("n1", true);
    let healed = Instant::now();
    let owners = rig.settled(&NODES).await;
    assert_eq!(owners.len(), 4);
    eprintln!("one reachable owner per address {:?} after the heal", healed.elapsed());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn majority_partition_minority_releases_and_never_two_holders() {
    let rig = Rig::new("m", 63, "majority", None).await;
    rig.lab.link("n1", false);
    let deadline = Instant::now() + Duration::from_secs(20);
    let mut majority_holds_all = false;
    while Instant::now() < deadline {
        for a in rig.vips() {
            let h = rig.kernel_holders(a, &NODES);
            assert!(h.len() <= 1, "{a} held by {h:?} under the majority policy");
        }
        majority_holds_all = rig.vips().iter().all(|a| {
            let h = rig.kernel_holders(*a, &NODES);
            h.len() == 1 && h[0] != "n1"
        });
        if majority_holds_all && rig.lab.addresses("n1").iter().all(|a| !rig.vips().contains(a)) {
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert!(majority_holds_all, "the majority side took every address");
    rig.lab.link("n1", true);
    rig.settled(&NODES).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_preferred_node_gets_its_address_back_once_after_a_restart() {
    let mut rig = Rig::new("p", 64, "available", Some("n2")).await;
    let vip1 = rig.vips()[0];
    assert_eq!(rig.settled(&NODES).await[&vip1], "n2");
    rig.c.kill9("n2");
    eventually("a survivor to take the preferred address", Duration::from_secs(15), || async {
        rig.answers(vip1).filter(|n| n != "n2")
    })
    .await;
    rig.c.start("n2");
    // Watch the holder for 15 s: it goes back to n2 exactly once and stays.
    let mut history: Vec<Vec<String>> = Vec::new();
    let end = Instant::now() + Duration::from_secs(15);
    while Instant::now() < end {
        let h = rig.kernel_holders(vip1, &NODES);
        if history.last() != Some(&h) {
            history.push(h);
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert_eq!(history.last(), Some(&vec!["n2".to_owned()]), "{history:?}");
    let to_n2 = history.windows(2).filter(|w| w[1] == vec!["n2".to_owned()]).count();
    assert_eq!(to_n2, 1, "back to n2 once, no flapping: {history:?}");
    assert_eq!(rig.answers(vip1).as_deref(), Some("n2"));
}

#[test]
fn a_bad_duravip_configuration_is_refused_at_start_naming_file_line_and_column() {
    let c = Cluster::new(&crate::support::topology(65, 4803, &[("east", 2)]));
    let conf = c.dir.path().join("bad.conf");
    let run = |text: &str, check: bool| {
        std::fs::write(&conf, text).expect("write config");
        let mut cmd = std::process::Command::new(env!("CARGO_BIN_EXE_ecnode"));
        cmd.arg("--name").arg("east1").arg("--segments").arg(&c.segments).arg("--tls-dir").arg(&c.tls).arg("-c").arg(&conf);
        cmd.arg("--console").arg(c.dir.path().join("east1.console"));
        if check {
            cmd.arg("--check-config");
        }
        let out = cmd.output().expect("ecnode runs");
        (out.status.code(), String::from_utf8_lossy(&out.stdout).into_owned(), String::from_utf8_lossy(&out.stderr).into_owned())
    };
    let bad = "Binding \"b1\" {\n  Enable_Duravip = true\n  Bind_Address = \"10.65.9.1\"\n  Duravip_Preference = \"east9\"\n}\n";
    for check in [true, false] {
        let (code, _, err) = run(bad, check);
        assert_eq!(code, Some(2), "{err}");
        assert!(err.contains("bad.conf:4:3: Duravip_Preference = \"east9\" names no node of the segment file"), "{err}");
    }
    let (code, _, err) = run("cluster {\n  duravip_polcy = \"majority\"\n}\n", true);
    assert_eq!(code, Some(2));
    assert!(err.contains("bad.conf:2:3: unknown option 'duravip_polcy' in cluster { }; did you mean 'duravip_policy'?"), "{err}");
    let (code, out, err) = run("Binding \"b1\" {\n  Enable_Duravp = true\n  Bind_Address = \"10.65.9.1\"\n}\n", true);
    assert_eq!(code, Some(0), "{err}");
    assert!(err.contains("bad.conf:2:3: warning: option 'Enable_Duravp' in Binding \"b1\" is not one eccluster reads; did you mean 'Enable_Duravip'?"), "{err}");
    assert!(out.contains("configuration ok"), "{out}");
    let (code, _, err) = run("Broadcast_Timeout = 99999999999\n", true);
    assert_eq!(code, Some(2));
    assert!(err.contains("bad.conf:1:1: Broadcast_Timeout = 99999999999 is out of range; use 1 to 86400 seconds"), "{err}");
    let (code, out, _) = run(&bad.replace("east9", "east2"), true);
    assert_eq!(code, Some(0));
    assert!(out.contains("1 DuraVIP address(es)"), "{out}");
}

/// Owners each node reports, by address, if every node answers.
async fn agreed_owners(c: &Cluster, nodes: &[&str]) -> Option<BTreeMap<String, String>> {
    let mut agreed: Option<BTreeMap<String, String>> = None;
    for n in nodes {
        let reply = c.ask(n, "json cluster duravip show").await.ok()?;
        let v: Value = serde_json::from_str(&reply.body).ok()?;
        let owners: BTreeMap<String, String> = v["vips"]
            .as_array()?
            .iter()
            .map(|row| Some((row["addr"].as_str()?.to_owned(), row["owner"].as_str()?.to_owned())))
            .collect::<Option<_>>()?;
        match &agreed {
            Some(a) if *a != owners => return None,
            _ => agreed = Some(owners),
        }
    }
    agreed
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_configuration_reload_on_sighup_is_applied_and_every_node_agrees_again() {
    let mut c = Cluster::new(&crate::support::topology(66, 4803, &[("east", 3)]));
    let conf = |count: u8| {
        (1..=count).map(|i| format!("Binding \"v{i}\" {{ Enable_Duravip = true  Bind_Address = \"10.66.9.{i}\" }}\n")).collect::<String>()
    };
    c.set_node_config(&conf(2));
    c.start_all();
    converged(&c, 4, Duration::from_secs(30)).await;
    let nodes = ["east1", "east2", "east3"];
    let before = eventually("two agreed owners", Duration::from_secs(20), || async {
        agreed_owners(&c, &nodes).await.filter(|o| o.len() == 2)
    })
    .await;
    assert!(before.contains_key("10.66.9.1"));
    // A broken file is refused and changes nothing.
    std::fs::write(c.node_config.as_ref().expect("config"), "cluster {\n  duravip_polcy = \"x\"\n}\n").expect("write");
    c.signal("east1", nix::sys::signal::Signal::SIGHUP);
    eventually("the refusal logged", Duration::from_secs(5), || async {
        c.log_text("east1").contains("configuration reload refused").then_some(())
    })
    .await;
    std::fs::write(c.node_config.as_ref().expect("config"), conf(3)).expect("write");
    for n in ["mgr", "east1", "east2", "east3"] {
        c.signal(n, nix::sys::signal::Signal::SIGHUP);
    }
    let after = eventually("three agreed owners after the reload", Duration::from_secs(20), || async {
        agreed_owners(&c, &nodes).await.filter(|o| o.len() == 3)
    })
    .await;
    let target = nodes.iter().find(|n| after["10.66.9.3"] != **n).expect("another node");
    let r = c.ask("mgr", &format!("broadcast cluster duravip move 10.66.9.3 to {target}")).await.expect("move");
    assert!(r.is_ok(), "the manager knows the new binding: {}", r.body);
    eventually("the move applied", Duration::from_secs(10), || async {
        agreed_owners(&c, &nodes).await.filter(|o| o["10.66.9.3"] == *target)
    })
    .await;
}
