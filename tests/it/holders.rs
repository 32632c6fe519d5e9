//! The manager's view of who holds each DuraVIP address, with real processes on loopback
//! (127.49.x.x, record-only actuator): `json show cluster duravip` at the manager names the
//! node that holds each address, as the nodes themselves say (`json cluster duravip show`),
//! after the election, after `broadcast cluster duravip move` and after the holder is killed.

use std::collections::BTreeMap;
use std::net::IpAddr;
use std::time::Duration;

use serde_json::Value;

use crate::support::{converged, eventually, topology, Cluster};

const NODES: [&str; 3] = ["dc1", "dc2", "dc3"];

fn vips() -> Vec<IpAddr> {
    (1..=4u8).map(|i| IpAddr::from([127, 49, 200, i])).collect()
}

fn config() -> String {
    let mut s = String::from("cluster {\n  duravip_actuator = \"none\"\n}\n");
    for (i, addr) in vips().iter().enumerate() {
        s.push_str(&format!("Binding \"vip-{}\" {{\n  Enable_Duravip = true\n  Bind_Address = \"{addr}\"\n}}\n", i + 1));
    }
    s
}

/// The addresses each of `nodes` says it holds (`json cluster duravip show`): address → holders.
async fn truth(c: &Cluster, nodes: &[&str]) -> Option<BTreeMap<IpAddr, Vec<String>>> {
    let mut held: BTreeMap<IpAddr, Vec<String>> = BTreeMap::new();
    for node in nodes {
        let reply = c.ask(node, "json cluster duravip show").await.ok()?;
        let v: Value = serde_json::from_str(&reply.body).ok()?;
        for row in v["vips"].as_array()? {
            if row["holding"] == "held" {
                held.entry(row["addr"].as_str()?.parse().ok()?).or_default().push((*node).to_owned());
            }
        }
    }
    Some(held)
}

/// The manager's `json show cluster duravip`: address → its one holder (`None` when none or
/// a conflict).
async fn managers_view(c: &Cluster) -> Option<BTreeMap<IpAddr, Option<String>>> {
    let reply = c.ask("mgr", "json show cluster duravip").await.ok()?;
    assert!(reply.is_ok(), "{}", reply.body);
    let v: Value = serde_json::from_str(&reply.body).ok()?;
    v.as_array()?
        .iter()
        .map(|row| Some((row["address"].as_str()?.parse().ok()?, row["holder"].as_str().map(str::to_owned))))
        .collect()
}

/// Waits until every address has one holder among `nodes`, by their own word, and the
/// manager names that holder; returns the holders.
async fn agreed(c: &Cluster, nodes: &[&str], what: &str) -> BTreeMap<IpAddr, String> {
    eventually(what, Duration::from_secs(30), || async {
        let truth = truth(c, nodes).await?;
        let mut owners = BTreeMap::new();
        for addr in vips() {
            let [only] = truth.get(&addr)?.as_slice() else { return None };
            owners.insert(addr, only.clone());
        }
        let view = managers_view(c).await?;
        owners.iter().all(|(addr, owner)| view.get(addr) == Some(&Some(owner.clone()))).then_some(owners)
    })
    .await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_manager_names_each_addresss_holder_through_a_move_and_a_kill() {
    let mut c = Cluster::new(&topology(49, 4803, &[("dc", 3)]));
    c.set_node_config(&config());
    c.start_all();
    converged(&c, 4, Duration::from_secs(30)).await;
    let owners = agreed(&c, &NODES, "the manager to name every holder after the election").await;

    // A move: the manager names the new holder, under the move's term.
    let vip2 = vips()[1];
    let to = NODES.iter().find(|n| **n != owners[&vip2]).expect("another node").to_string();
    let r = c.ask("mgr", &format!("broadcast cluster duravip move {vip2} to {to}")).await.expect("move");
    assert!(r.is_ok(), "{}", r.body);
    let owners = agreed(&c, &NODES, "the manager to name the moved address's new holder").await;
    assert_eq!(owners[&vip2], to);
    let reply = c.ask("mgr", "json show cluster duravip").await.expect("show");
    let rows: Value = serde_json::from_str(&reply.body).expect("json");
    let row = rows.as_array().expect("rows").iter().find(|r| r["address"] == vip2.to_string()).expect("the moved row");
    assert_ne!(row["holders"][0]["term"], "0.0", "the move's term: {row}");
    let text = c.ask("mgr", "show cluster duravip").await.expect("text");
    assert!(text.body.starts_with("Address") && text.body.contains(&format!("{vip2}")), "{}", text.body);

    // kill -9 of a holder: its addresses go to survivors and the manager forgets it.
    let victim = owners[&vips()[0]].clone();
    c.kill9(&victim);
    let survivors: Vec<&str> = NODES.iter().copied().filter(|n| *n != victim).collect();
    let owners = agreed(&c, &survivors, "the manager to name the survivors after the kill").await;
    assert!(owners.values().all(|o| *o != victim), "{owners:?}");

    // On a node, the command says where it belongs.
    let r = c.ask(survivors[0], "show cluster duravip").await.expect("reply");
    assert!(!r.is_ok() && r.body.contains("cluster duravip show"), "{}", r.body);
}
