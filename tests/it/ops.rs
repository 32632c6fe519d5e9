//! Ordered operations across real processes: broadcast, subcluster broadcast, retrieve,
//! ordering under concurrent consoles, crashes, manager restarts and dropped connections.

use std::collections::BTreeSet;
use std::time::Duration;

use serde_json::Value;

use crate::support::{converged, eventually, topology, Cluster};

const NODE_CONFIG: &str = r#"
Control_Command "hello" {
  Program = "/bin/sh"
  Args = ( "-c" "echo hello from $EC_NODE_NAME in $EC_SUB_CLUSTER: $*" "hello" )
}
Control_Command "slow hello" {
  Program = "/bin/sh"
  Args = ( "-c" "sleep 3; echo slow hello from $EC_NODE_NAME" )
}
"#;

async fn retrieve_json(c: &Cluster, line: &str) -> Vec<Value> {
    let reply = c.ask("mgr", &format!("json {line}")).await.expect("retrieve");
    serde_json::from_str::<Value>(&reply.body).expect("json").as_array().cloned().unwrap_or_default()
}

fn statuses(rows: &[Value]) -> Vec<(String, String)> {
    rows.iter().map(|r| (r["node"].as_str().unwrap_or("").to_owned(), r["status"].as_str().unwrap_or("").to_owned())).collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn broadcast_and_subcluster_broadcast_reach_exactly_their_targets() {
    let mut c = Cluster::new(&topology(31, 4803, &[("east", 3), ("west", 2)]));
    c.set_node_config(NODE_CONFIG);
    c.start_all();
    converged(&c, 6, Duration::from_secs(30)).await;

    let sent = c.ask("mgr", "json broadcast hello world").await.expect("broadcast");
    let v: Value = serde_json::from_str(&sent.body).expect("json");
    assert_eq!(v["count"], 5, "{v}");
    let rows = eventually("5 answers to hello", Duration::from_secs(10), || async {
        let rows = retrieve_json(&c, "retrieve hello world").await;
        rows.iter().all(|r| r["status"] == "ok").then_some(rows)
    })
    .await;
    assert_eq!(rows.len(), 5);
    for r in &rows {
        let node = r["node"].as_str().expect("node");
        let sc = if node.starts_with("east") { "east" } else { "west" };
        assert_eq!(r["answer"], format!("hello from {node} in {sc}: world\n"), "{r}");
    }

    c.ask("mgr", "subcluster broadcast west cluster nodename").await.expect("subcluster broadcast");
    let rows = eventually("west answers", Duration::from_secs(10), || async {
        let rows = retrieve_json(&c, "subcluster retrieve west cluster nodename").await;
        (rows.len() == 2 && rows.iter().all(|r| r["status"] == "ok")).then_some(rows)
    })
    .await;
    assert_eq!(statuses(&rows), vec![("west1".into(), "ok".into()), ("west2".into(), "ok".into())]);
    // Exactly the west nodes applied it: east nodes applied only the first broadcast.
    for n in ["east1", "east2", "east3"] {
        assert_eq!(c.oplog(n).await.len(), 1, "{n}");
    }
    for n in ["west1", "west2"] {
        assert_eq!(c.oplog(n).await.len(), 2, "{n}");
    }
    let text = c.ask("mgr", "retrieve_node west2 cluster nodename").await.expect("retrieve_node");
    assert!(text.body.starts_with("--- west2 (ok, ") && text.body.ends_with("---\nwest2\n"), "{}", text.body);
    let east = c.ask("mgr", "subcluster retrieve east cluster nodename").await.expect("reply");
    assert!(!east.is_ok(), "no broadcast reached east: {}", east.body);

    // Unknown names and commands: clear errors, and an unknown command's answer is retrieved.
    let r = c.ask("mgr", "unicast nosuchnode version").await.expect("reply");
    assert_eq!(r.body, "unicast: nosuchnode is not a member of the cluster\n");
    let r = c.ask("mgr", "subcluster broadcast north version").await.expect("reply");
    assert_eq!(r.body, "subcluster broadcast: no subcluster named north\n");
    c.ask("mgr", "unicast east2 frobnicate").await.expect("unicast");
    let rows = eventually("east2's answer", Duration::from_secs(10), || async {
        let rows = retrieve_json(&c, "retrieve_node east2 frobnicate").await;
        (rows.first()?["status"] == "error").then_some(rows)
    })
    .await;
    assert!(rows[0]["answer"].as_str().expect("answer").contains("unknown command 'frobnicate'"));

    assert!(c.ask("mgr", "flush control cache").await.expect("flush").body.starts_with("Control cache flushed"));
    assert!(!c.ask("mgr", "retrieve hello world").await.expect("reply").is_ok());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn thousand_broadcasts_from_three_consoles_apply_in_one_order_everywhere() {
    let mut c = Cluster::new(&topology(32, 4803, &[("east", 2), ("west", 2)]));
    c.start_all();
    converged(&c, 5, Duration::from_secs(30)).await;

    let mut consoles = Vec::new();
    for k in 0..3 {
        let path = c.console("mgr");
        consoles.push(tokio::spawn(async move {
            let mut ids = Vec::new();
            let mut stream = tokio::net::UnixStream::connect(&path).await.expect("connect");
            let n = if k == 0 { 334 } else { 333 };
            for i in 0..n {
                let line = format!("json broadcast cluster nodename {k}-{i}");
                eccluster::console::frame::write_request(&mut stream, &line).await.expect("write");
                let reply = eccluster::console::frame::read_reply(&mut stream).await.expect("read").expect("reply");
                let v: Value = serde_json::from_str(&reply.body).expect("json");
                ids.push(v["id"].as_str().expect("id").to_owned());
            }
            ids
        }));
    }
    let mut all = BTreeSet::new();
    for h in consoles {
        for id in h.await.expect("console task") {
            assert!(all.insert(id.clone()), "id {id} given twice");
        }
    }
    assert_eq!(all.len(), 1000);
    // The sequence numbers are 1..=1000 of one epoch.
    let seqs: BTreeSet<u64> = all.iter().map(|i| i.split('.').nth(1).expect("seq").parse().expect("n")).collect();
    assert_eq!(seqs, (1..=1000).collect());

    let nodes = ["east1", "east2", "west1", "west2"];
    let logs = eventually("every node to apply 1000 operations", Duration::from_secs(60), || async {
        let mut logs = Vec::new();
        for n in nodes {
            let l = c.oplog(n).await;
            if l.len() < 1000 {
                return None;
            }
            logs.push(l);
        }
        Some(logs)
    })
    .await;
    for (n, l) in nodes.iter().zip(&logs) {
        assert_eq!(l, &logs[0], "{n} applied a different sequence");
        let s: Vec<u64> = l.iter().map(|i| i.split('.').nth(1).expect("seq").parse().expect("n")).collect();
        assert_eq!(s, (1..=1000).collect::<Vec<_>>(), "{n}: gaps or disorder");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn node_killed_during_a_broadcast_is_reported_by_name() {
    let mut c = Cluster::new(&topology(33, 4803, &[("east", 2), ("west", 2)]));
    c.set_node_config(NODE_CONFIG);
    c.start_all();
    converged(&c, 5, Duration::from_secs(30)).await;
    c.ask("mgr", "broadcast slow hello").await.expect("broadcast");
    // west2 has received the operation (it is running its 3 s command) when it dies.
    eventually("west2 to start the slow command", Duration::from_secs(10), || async {
        let r = c.ask("west2", "json cluster info").await.ok()?;
        let v: Value = serde_json::from_str(&r.body).ok()?;
        v["operation_running"].as_str()?.contains("slow hello").then_some(())
    })
    .await;
    c.kill9("west2");
    let rows = eventually("answers and west2 marked node left", Duration::from_secs(20), || async {
        let rows = retrieve_json(&c, "retrieve slow hello").await;
        let done = rows.len() == 4 && rows.iter().all(|r| r["status"] != "pending");
        done.then_some(rows)
    })
    .await;
    for r in &rows {
        let node = r["node"].as_str().expect("node");
        if node == "west2" {
            assert_eq!(r["status"], "node left", "{r}");
        } else {
            assert_eq!(r["status"], "ok", "{r}");
            assert_eq!(r["answer"], format!("slow hello from {node}\n"));
        }
    }
    let text = c.ask("mgr", "retrieve slow hello").await.expect("retrieve");
    assert!(text.body.contains("--- west2 (node left, "), "{}", text.body);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn restarted_manager_uses_larger_ids_and_nothing_is_reapplied() {
    let mut c = Cluster::new(&topology(34, 4803, &[("east", 2), ("west", 1)]));
    c.start_all();
    converged(&c, 4, Duration::from_secs(30)).await;
    let mut first = Vec::new();
    for i in 0..5 {
        let r = c.ask("mgr", &format!("json broadcast cluster nodename {i}")).await.expect("broadcast");
        let v: Value = serde_json::from_str(&r.body).expect("json");
        first.push(v["id"].as_str().expect("id").to_owned());
    }
    eventually("first batch applied", Duration::from_secs(10), || async {
        for n in ["east1", "east2", "west1"] {
            if c.oplog(n).await.len() < 5 {
                return None;
            }
        }
        Some(())
    })
    .await;
    assert!(c.terminate("mgr").success());
    c.start("mgr");
    converged(&c, 4, Duration::from_secs(30)).await;
    let r = c.ask("mgr", "json broadcast cluster nodename again").await.expect("broadcast");
    let v: Value = serde_json::from_str(&r.body).expect("json");
    let second = v["id"].as_str().expect("id").to_owned();
    let epoch = |id: &str| id.split('.').next().expect("epoch").parse::<u64>().expect("n");
    assert!(epoch(&second) > epoch(&first[4]), "{second} not after {}", first[4]);
    let mut expected = first.clone();
    expected.push(second);
    for n in ["east1", "east2", "west1"] {
        let log = eventually("second epoch applied", Duration::from_secs(10), || async {
            let l = c.oplog(n).await;
            (l.len() >= 6).then_some(l)
        })
        .await;
        assert_eq!(log, expected, "{n}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn dropped_connections_lose_and_duplicate_nothing() {
    let mut c = Cluster::new(&topology(35, 4803, &[("east", 2), ("west", 1)]));
    c.start_all();
    converged(&c, 4, Duration::from_secs(30)).await;
    let mut ids = Vec::new();
    for i in 0..200 {
        if i % 25 == 10 {
            // Kill the QUIC connections, not the processes: alternately from both sides.
            let who = if i % 50 == 10 { "mgr" } else { "east1" };
            let r = c.ask(who, "debug drop connections").await.expect("drop");
            assert!(r.body.starts_with("dropped "), "{}", r.body);
        }
        let r = c.ask("mgr", &format!("json broadcast cluster nodename {i}")).await.expect("broadcast");
        let v: Value = serde_json::from_str(&r.body).expect("json");
        ids.push(v["id"].as_str().expect("id").to_owned());
    }
    for n in ["east1", "east2", "west1"] {
        let log = eventually(&format!("{n} to apply all 200"), Duration::from_secs(30), || async {
            let l = c.oplog(n).await;
            (l.len() >= 200).then_some(l)
        })
        .await;
        assert_eq!(log, ids, "{n}: each operation exactly once, in order");
    }
}
