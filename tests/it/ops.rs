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

/// The id of an operation as `cluster oplog` prints it, as (epoch, seq) for ordering.
fn id_key(id: &str) -> (u64, u64) {
    let (e, s) = id.split_once('.').expect("epoch.seq");
    (e.parse().expect("epoch"), s.parse().expect("seq"))
}

/// One console broadcasting `cluster nodename` in a loop until `stop`: every acknowledged id
/// with its targets. Refusals and an absent manager are expected (it is killed meanwhile);
/// an "ok" without targets never is.
async fn broadcast_loop(c: &Cluster, tag: &str, stop: &tokio::sync::watch::Receiver<bool>) -> Vec<(String, Vec<String>)> {
    let mut acked = Vec::new();
    let mut i = 0;
    while !*stop.borrow() {
        i += 1;
        match c.ask("mgr", &format!("json broadcast cluster nodename {tag}-{i}")).await {
            Ok(r) if r.status == eccluster::console::frame::Status::Ok => {
                let v: Value = serde_json::from_str(&r.body).expect("json");
                let targets: Vec<String> =
                    v["targets"].as_array().expect("targets").iter().map(|t| t.as_str().expect("name").to_owned()).collect();
                assert!(!targets.is_empty(), "ok with zero targets: {v}");
                acked.push((v["id"].as_str().expect("id").to_owned(), targets));
            }
            // Refused (recovering, view forming) or no manager listening: try again shortly.
            _ => tokio::time::sleep(Duration::from_millis(5)).await,
        }
    }
    acked
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn consoles_broadcasting_while_the_manager_is_killed_lose_and_repeat_nothing() {
    let mut c = Cluster::new(&topology(36, 4803, &[("east", 2), ("west", 1)]));
    c.start_all();
    converged(&c, 4, Duration::from_secs(30)).await;
    let (stop_tx, stop) = tokio::sync::watch::channel(false);
    let mut all = Vec::new();
    for round in 0..2 {
        let (tag_a, tag_b) = (format!("a{round}"), format!("b{round}"));
        // Counted from where the round starts: a fast manager gets far more than 40 operations
        // acknowledged in a round before the check below sees 40.
        let before = c.oplog("west1").await.len();
        let (a, b, ()) = tokio::join!(broadcast_loop(&c, &tag_a, &stop), broadcast_loop(&c, &tag_b, &stop), async {
            // Let both consoles get operations acknowledged, then kill -9 the manager under them.
            eventually("operations acknowledged", Duration::from_secs(20), || async {
                let l = c.oplog("west1").await;
                (l.len() >= before + 40).then_some(())
            })
            .await;
            stop_tx.send(true).expect("stop");
        });
        stop_tx.send(false).expect("go");
        all.extend(a);
        all.extend(b);
        if round == 0 {
            c.kill9("mgr");
            c.start("mgr");
        }
    }
    let epochs: BTreeSet<u64> = all.iter().map(|(id, _)| id_key(id).0).collect();
    assert_eq!(epochs.len(), 2, "operations were acknowledged before and after the restart: {epochs:?}");
    for n in ["east1", "east2", "west1"] {
        let mut mine: Vec<(u64, u64)> = all.iter().filter(|(_, t)| t.iter().any(|t| t == n)).map(|(id, _)| id_key(id)).collect();
        mine.sort();
        let log = eventually(&format!("{n} to apply every acknowledged operation"), Duration::from_secs(40), || async {
            let log: Vec<(u64, u64)> = c.oplog(n).await.iter().map(|i| id_key(i)).collect();
            let have: BTreeSet<&(u64, u64)> = log.iter().collect();
            mine.iter().all(|id| have.contains(id)).then_some(log)
        })
        .await;
        let mut sorted = log.clone();
        sorted.sort();
        sorted.dedup();
        assert_eq!(log, sorted, "{n}: each operation once, in id order");
    }
    let r = c.ask("mgr", "json retrieve cluster nodename a0-1").await.expect("retrieve");
    assert_eq!(r.status, eccluster::console::frame::Status::Ok, "results from before the kill survive: {}", r.body);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_broadcast_right_after_manager_start_or_with_no_node_up_is_never_ok_without_targets() {
    let mut c = Cluster::new(&topology(37, 4803, &[("east", 2), ("west", 1)]));
    for n in ["east1", "east2", "west1"] {
        c.start(n);
    }
    converged(&c, 3, Duration::from_secs(30)).await;
    c.start("mgr");
    // From the first moment the console answers until the manager takes the broadcast.
    let refused = std::cell::RefCell::new(Vec::new());
    let targets = eventually("an acknowledged broadcast", Duration::from_secs(30), || async {
        match c.ask("mgr", "json broadcast cluster nodename").await {
            Ok(r) if r.status == eccluster::console::frame::Status::Ok => {
                let v: Value = serde_json::from_str(&r.body).expect("json");
                Some(v["count"].as_u64().expect("count"))
            }
            Ok(r) => {
                refused.borrow_mut().push(r.body);
                None
            }
            Err(_) => None,
        }
    })
    .await;
    let refused = refused.into_inner();
    assert_eq!(targets, 3, "refused before: {refused:?}");
    for why in &refused {
        assert!(why.contains("forming its view") || why.contains("no node"), "{why}");
    }
    // Every node gone: a broadcast is an error that says so, not "sent to 0 nodes".
    for n in ["east1", "east2", "west1"] {
        c.kill9(n);
    }
    eventually("the manager to declare every node down", Duration::from_secs(30), || async {
        let rows = c.membership("mgr").await?;
        rows.iter().filter(|r| r["role"] == "node").all(|r| r["state"] == "down").then_some(())
    })
    .await;
    let r = c.ask("mgr", "broadcast cluster nodename").await.expect("an answer");
    assert_eq!(r.status, eccluster::console::frame::Status::Failed, "{}", r.body);
    assert!(r.body.contains("no node of the cluster is live"), "{}", r.body);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_node_stopped_while_running_a_command_has_its_late_answer_recorded() {
    let mut c = Cluster::new(&topology(38, 4803, &[("east", 1), ("west", 1)]));
    c.set_node_config(NODE_CONFIG);
    c.start_all();
    converged(&c, 3, Duration::from_secs(30)).await;
    let r = c.ask("mgr", "json unicast west1 slow hello").await.expect("unicast");
    let v: Value = serde_json::from_str(&r.body).expect("json");
    let id = v["id"].as_str().expect("id").to_owned();
    eventually("west1 to start the slow command", Duration::from_secs(10), || async {
        let r = c.ask("west1", "json cluster info").await.ok()?;
        let v: Value = serde_json::from_str(&r.body).ok()?;
        v["operation_running"].as_str()?.contains("slow hello").then_some(())
    })
    .await;
    // SIGSTOP: the command's own process keeps running; the node is declared down.
    c.signal("west1", nix::sys::signal::Signal::SIGSTOP);
    eventually("west1 recorded as node left", Duration::from_secs(30), || async {
        let rows = retrieve_json(&c, "retrieve_node west1 slow hello").await;
        (rows.first()?["status"] == "node left").then_some(())
    })
    .await;
    c.signal("west1", nix::sys::signal::Signal::SIGCONT);
    let row = eventually("west1's late answer", Duration::from_secs(30), || async {
        let rows = retrieve_json(&c, "retrieve_node west1 slow hello").await;
        let row = rows.first()?.clone();
        (row["status"] == "ok").then_some(row)
    })
    .await;
    assert_eq!(row["answer"], "slow hello from west1\n", "{row}");
    assert!(c.oplog("west1").await.contains(&id), "the node's oplog has it too");
    // The rejoined node runs what comes next.
    converged(&c, 3, Duration::from_secs(30)).await;
    c.ask("mgr", "unicast west1 hello again").await.expect("unicast");
    let rows = eventually("the next answer", Duration::from_secs(10), || async {
        let rows = retrieve_json(&c, "retrieve_node west1 hello again").await;
        (rows.first()?["status"] == "ok").then_some(rows)
    })
    .await;
    assert_eq!(rows[0]["answer"], "hello from west1 in west: again\n");
}

/// A tmpfs of `size` mounted on `dir` (created), unmounted on drop; needs root, as the
/// network-namespace tests do.
struct SmallDisk(std::path::PathBuf);

impl SmallDisk {
    fn mount(dir: &std::path::Path, size: &str) -> SmallDisk {
        std::fs::create_dir_all(dir).expect("mount point");
        let status = std::process::Command::new("mount")
            .args(["-t", "tmpfs", "-o", &format!("size={size}"), "tmpfs"])
            .arg(dir)
            .status()
            .expect("running mount");
        assert!(status.success(), "mounting a tmpfs needs root");
        SmallDisk(dir.to_owned())
    }
}

impl Drop for SmallDisk {
    fn drop(&mut self) {
        let _ = std::process::Command::new("umount").arg("-l").arg(&self.0).status();
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn with_its_disk_full_the_manager_acknowledges_nothing_it_has_not_journaled_and_refuses_new_operations() {
    let mut c = Cluster::new(&topology(39, 4803, &[("east", 2), ("west", 1)]));
    let state = c.dir.path().join("state").join("mgr");
    let disk = SmallDisk::mount(&state, "256k");
    c.start_all();
    converged(&c, 4, Duration::from_secs(30)).await;
    // Fill the manager's disk.
    let filler = state.join("filler");
    let mut f = std::fs::File::create(&filler).expect("filler");
    while std::io::Write::write_all(&mut f, &[0u8; 4096]).is_ok() {}
    drop(f);
    // One console broadcasts until the journal fails under it (the append that needs a new
    // page), and goes on until told to stop; its operation taken then waits for the disk.
    let (stop_tx, stop) = tokio::sync::watch::channel(false);
    let (acked, ()) = tokio::join!(broadcast_loop(&c, "full", &stop), async {
        eventually("the journal to fail", Duration::from_secs(30), || async {
            c.log_text("mgr").contains("control cache write failed").then_some(())
        })
        .await;
        // Another console is refused at once, saying why.
        let r = c.ask("mgr", "broadcast cluster nodename refused").await.expect("an answer");
        assert_eq!(r.status, eccluster::console::frame::Status::Failed, "{}", r.body);
        assert!(
            r.body.contains("control cache cannot be written") && r.body.contains("No space left on device"),
            "{}",
            r.body
        );
        stop_tx.send(true).expect("stop");
        // Room again: what was taken is acknowledged and delivered.
        std::fs::remove_file(&filler).expect("remove filler");
    });
    assert!(!acked.is_empty());
    // The writer tries again within its backoff (at most 2 s) and says so.
    eventually("the journal to be written again", Duration::from_secs(10), || async {
        c.log_text("mgr").contains("control cache written again").then_some(())
    })
    .await;
    for n in ["east1", "east2", "west1"] {
        let log = eventually(&format!("{n} to apply every acknowledged operation"), Duration::from_secs(20), || async {
            let log = c.oplog(n).await;
            acked.iter().all(|(id, _)| log.contains(id)).then_some(log)
        })
        .await;
        assert_eq!(log.len(), acked.len(), "{n}: exactly the acknowledged operations: {log:?}");
    }
    // After a restart every acknowledged operation's result is still there.
    c.kill9("mgr");
    c.start("mgr");
    converged(&c, 4, Duration::from_secs(30)).await;
    let r = c.ask("mgr", "json retrieve cluster nodename full-1").await.expect("retrieve");
    assert_eq!(r.status, eccluster::console::frame::Status::Ok, "{}", r.body);
    let r = c.ask("mgr", "broadcast cluster nodename again").await.expect("an answer");
    assert_eq!(r.status, eccluster::console::frame::Status::Ok, "{}", r.body);
    drop(c);
    drop(disk);
}

/// Runs `ec_console SOCKET` with `input` piped to its standard input: (exit code, stdout, stderr).
async fn piped_console(socket: &std::path::Path, input: &str) -> (Option<i32>, String, String) {
    use tokio::io::AsyncWriteExt as _;
    let mut child = tokio::process::Command::new(env!("CARGO_BIN_EXE_ec_console"))
        .arg(socket)
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .expect("spawn ec_console");
    let mut stdin = child.stdin.take().expect("stdin");
    let data = input.as_bytes().to_vec();
    let writer = tokio::spawn(async move { stdin.write_all(&data).await });
    let out = child.wait_with_output().await.expect("wait for ec_console");
    writer.await.expect("writer").expect("ec_console read its input");
    (out.status.code(), String::from_utf8_lossy(&out.stdout).into_owned(), String::from_utf8_lossy(&out.stderr).into_owned())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_batch_piped_through_ec_console_is_sequenced_in_order_with_every_answer() {
    let mut c = Cluster::new(&topology(92, 4803, &[("east", 2), ("west", 1)]));
    c.start_all();
    converged(&c, 4, Duration::from_secs(30)).await;

    // 600 broadcasts (more than one batch), and among them a line that does not parse and a
    // command the manager refuses: each answered in its place, the others unaffected.
    let mut input = String::new();
    for i in 0..600 {
        input.push_str(&format!("broadcast cluster nodename {i}\n"));
        if i == 300 {
            input.push_str("xml\nunicast nosuchnode version\n");
        }
    }
    let (code, stdout, stderr) = piped_console(&c.console("mgr"), &input).await;
    assert_eq!(
        stderr,
        "xml: a command must follow, e.g. 'xml show cluster membership'\nunicast: nosuchnode is not a member of the cluster\n"
    );
    assert_eq!(code, Some(1), "a command failed");
    let lines: Vec<&str> = stdout.lines().collect();
    assert_eq!(lines.len(), 1200, "two lines per broadcast:\n{stdout}");
    let mut epoch = None;
    for (i, answer) in lines.chunks(2).enumerate() {
        // The answer to the i-th broadcast is operation i + 1, sent to the three nodes.
        let id = answer[0]
            .strip_prefix("Operation ")
            .and_then(|rest| rest.strip_suffix(" sent to 3 nodes (cluster): east1, east2, west1"))
            .unwrap_or_else(|| panic!("answer {i}: {}", answer[0]));
        let (e, seq) = id.split_once('.').expect("EPOCH.SEQ");
        assert_eq!(*epoch.get_or_insert(e.to_owned()), e);
        assert_eq!(seq, (i + 1).to_string(), "answer {i} out of order");
        assert_eq!(answer[1], format!("Use 'retrieve cluster nodename {i}' to read the answers."));
    }

    // Every node applied them once each, in that order.
    let nodes = ["east1", "east2", "west1"];
    let logs = eventually("every node to apply 600 operations", Duration::from_secs(60), || async {
        let mut logs = Vec::new();
        for n in nodes {
            let l = c.oplog(n).await;
            if l.len() < 600 {
                return None;
            }
            logs.push(l);
        }
        Some(logs)
    })
    .await;
    for (n, l) in nodes.iter().zip(&logs) {
        let s: Vec<u64> = l.iter().map(|i| i.split('.').nth(1).expect("seq").parse().expect("n")).collect();
        assert_eq!(s, (1..=600).collect::<Vec<_>>(), "{n}: gaps, repeats or disorder");
    }
}
