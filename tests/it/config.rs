//! The `config` console command on a real manager and real nodes, each with its own
//! configuration file: every subcommand through the real console, a broadcast `config set`
//! reaching every node, `writeback` changing the file on disk, `reload`, and transactions
//! from two consoles (the first commit wins, the second fails and changes nothing).

use std::fs;
use std::time::Duration;

use eccluster::console::client::{Endpoint, Session};
use eccluster::console::frame::Reply;
use serde_json::Value;

use crate::support::{converged, eventually, topology, Cluster};

const MANAGER_CONF: &str = "# the manager\nBroadcast_Timeout = 20\nLogs {\n  Control_Cache_Max_Entries = 5000\n}\n";

const NODE_CONF: &str = "# a node\ncluster {\n  duravip_policy = available\n}\nBinding \"v1\" {\n  Enable_Duravip = true\n  Bind_Address = 10.41.9.1\n}\n\
ESMTP_Listener {\n  Listen \":25\" {\n  }\n  Listen \"127.0.0.1:2025\" {\n  }\n}\n";

async fn ask(c: &Cluster, member: &str, line: &str) -> Reply {
    c.ask(member, line).await.unwrap_or_else(|e| panic!("{member}: {line}: {e:#}"))
}

/// The answer to `line`, which must succeed.
async fn ok(c: &Cluster, member: &str, line: &str) -> String {
    let reply = ask(c, member, line).await;
    assert!(reply.is_ok(), "{member}: {line}: {}", reply.body);
    reply.body
}

/// The answer to `line`, which must fail.
async fn failed(c: &Cluster, member: &str, line: &str) -> String {
    let reply = ask(c, member, line).await;
    assert!(!reply.is_ok(), "{member}: {line} should fail: {}", reply.body);
    reply.body
}

async fn call(session: &mut Session, line: &str) -> Reply {
    session.call(line).await.unwrap_or_else(|e| panic!("{line}: {e}"))
}

/// Every node's row of `json retrieve COMMAND` once all have answered.
async fn answers(c: &Cluster, command: &str, nodes: usize) -> Vec<Value> {
    eventually(&format!("{nodes} answers to '{command}'"), Duration::from_secs(15), || async {
        let reply = c.ask("mgr", &format!("json retrieve {command}")).await.ok()?;
        let rows: Vec<Value> = serde_json::from_str::<Value>(&reply.body).ok()?.as_array()?.clone();
        (rows.len() == nodes && rows.iter().all(|r| r["status"] != "pending")).then_some(rows)
    })
    .await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn config_commands_read_change_write_back_and_reload_the_running_configuration() {
    let mut c = Cluster::new(&topology(41, 4803, &[("east", 2)]));
    let mgr_conf = c.set_member_config("mgr", MANAGER_CONF);
    let east1_conf = c.set_member_config("east1", NODE_CONF);
    let east2_conf = c.set_member_config("east2", NODE_CONF);
    c.start_all();
    converged(&c, 3, Duration::from_secs(30)).await;

    // The manager: its own file.
    assert_eq!(ok(&c, "mgr", "config get broadcast_timeout").await, "Broadcast_Timeout = 20\n");
    assert_eq!(ok(&c, "mgr", "config get Logs control_cache_max_entries").await, "        Control_Cache_Max_Entries = 5000\n");
    assert_eq!(ok(&c, "mgr", "config eval Logs Control_Cache_Max_Size").await, "        Control_Cache_Max_Size = 16777216\n");
    assert_eq!(ok(&c, "mgr", "config get blackhole").await, "Option 'blackhole' is not set in scope ''.\n");
    assert!(failed(&c, "mgr", "config eval blackhole").await.contains("has no default"));
    assert_eq!(
        ok(&c, "mgr", "config set broadcast_timeout = 25").await,
        "Broadcast_Timeout = 25\nNote: Broadcast_Timeout: the change takes effect at the next restart of eccmgr\n"
    );
    assert!(ok(&c, "mgr", "config showrecurse").await.contains("Broadcast_Timeout = 25\n"));
    let refused = failed(&c, "mgr", "config set Broadcast_Timeout 0").await;
    assert!(refused.starts_with("refused: set from the console: Broadcast_Timeout = 0 is out of range"), "{refused}");
    assert_eq!(ok(&c, "mgr", "config get broadcast_timeout").await, "Broadcast_Timeout = 25\n");
    assert!(fs::read_to_string(&mgr_conf).expect("read").contains("Broadcast_Timeout = 20\n"), "nothing written before writeback");
    assert!(ok(&c, "mgr", "config writeback").await.starts_with("Wrote the running configuration back to"));
    assert_eq!(fs::read_to_string(&mgr_conf).expect("read"), MANAGER_CONF.replace("= 20", "= 25"));
    assert!(ok(&c, "mgr", "help").await.contains("config writeback [PATH]"));

    // A node: get, eval, xml and json, a value that does not validate, locate, show.
    assert_eq!(ok(&c, "east1", "config get cluster duravip_policy").await, "        duravip_policy = available\n");
    let refused = failed(&c, "east1", "config set cluster duravip_policy bogus").await;
    assert!(refused.contains("set from the console: duravip_policy = \"bogus\" is not a policy") && refused.contains("nothing was changed"), "{refused}");
    assert_eq!(ok(&c, "east1", "config get cluster duravip_policy").await, "        duravip_policy = available\n");
    let xml = ok(&c, "east1", "xml config get cluster duravip_policy").await;
    assert!(xml.contains(&format!("<Option name=\"duravip_policy\" source=\"{}:3:3\">", east1_conf.display())), "{xml}");
    let json: Value = serde_json::from_str(&ok(&c, "east1", "json config eval cluster view_mature_time").await).expect("json");
    assert_eq!((json["value"].as_str(), json["source"].as_str()), (Some("2"), Some("default")));
    assert_eq!(
        ok(&c, "east1", "config locate Listen").await,
        "Listen \":25\"\n  is at ESMTP_Listener::Listen:\\:25:\nListen \"127.0.0.1:2025\"\n  is at ESMTP_Listener::Listen:127.0.0.1\\:2025:\n"
    );
    assert_eq!(ok(&c, "east1", "config locate Listen 2025$").await.lines().count(), 2);
    assert_eq!(ok(&c, "east1", "config show esmtp_listener").await, "Listen \":25\" { ... }\nListen \"127.0.0.1:2025\" { ... }\n");

    // A broadcast config set reaches every node, as an ordered operation.
    ok(&c, "mgr", "broadcast config set cluster view_mature_time 3").await;
    for row in answers(&c, "config set cluster view_mature_time 3", 2).await {
        assert_eq!((row["status"].as_str(), row["answer"].as_str()), (Some("ok"), Some("        view_mature_time = 3\n")), "{row}");
    }
    for node in ["east1", "east2"] {
        assert_eq!(ok(&c, node, "config get cluster view_mature_time").await, "        view_mature_time = 3\n");
    }
    ok(&c, "mgr", "broadcast config begin").await;
    for row in answers(&c, "config begin", 2).await {
        assert_eq!(row["status"], "error", "{row}");
        assert!(row["answer"].as_str().is_some_and(|a| a.contains("cannot run through broadcast")), "{row}");
    }

    // Unset of an option (its effective value now), of a scope, never of the top level.
    assert_eq!(
        ok(&c, "east1", "config unset cluster view_mature_time").await,
        "\"view_mature_time\" has been unset. Effective value is now:\n        view_mature_time = 2\n"
    );
    assert!(ok(&c, "east1", "config unset ESMTP_Listener").await.starts_with("Scope 'ESMTP_Listener' has been unset"));
    assert!(failed(&c, "east1", "config unset").await.contains("global scope cannot be unset"));

    // A new DuraVIP binding is applied at once, through the node core, and written back.
    ok(&c, "east1", "config set Binding v2 Bind_Address 10.41.9.2").await;
    ok(&c, "east1", "config set Binding v2 Enable_Duravip true").await;
    eventually("east1 manages 10.41.9.2", Duration::from_secs(10), || async {
        let body = c.ask("east1", "json cluster duravip show").await.ok()?.body;
        body.contains("10.41.9.2").then_some(())
    })
    .await;
    ok(&c, "east1", "config writeback").await;
    let written = fs::read_to_string(&east1_conf).expect("read");
    assert!(!written.contains("ESMTP_Listener") && !written.contains("view_mature_time"), "{written}");
    assert!(written.contains("Binding \"v2\" {\n  Bind_Address = 10.41.9.2\n  Enable_Duravip = true\n}\n"), "{written}");
    assert!(written.starts_with("# a node\ncluster {\n  duravip_policy = available\n}\n"), "{written}");
    let alternate = c.dir.path().join("east1-copy.conf");
    ok(&c, "east1", &format!("config writeback {}", alternate.display())).await;
    assert!(fs::read_to_string(&alternate).expect("read").contains("Bind_Address = 10.41.9.2"));

    // Reload reads the file again; a broken file changes nothing.
    fs::write(&east2_conf, NODE_CONF.replace("available", "majority")).expect("write");
    let reloaded = ok(&c, "east2", "config reload").await;
    assert!(reloaded.starts_with("OK: reloaded") && reloaded.contains("Note: duravip_policy: the change takes effect at the next restart of ecnode"), "{reloaded}");
    assert_eq!(ok(&c, "east2", "config get cluster duravip_policy").await, "        duravip_policy = majority\n");
    fs::write(&east2_conf, "cluster {\n  duravip_polcy = x\n}\n").expect("write");
    let refused = failed(&c, "east2", "config reload").await;
    assert!(refused.starts_with("Reconfigure failed: ") && refused.contains("duravip_polcy"), "{refused}");
    assert_eq!(ok(&c, "east2", "config get cluster duravip_policy").await, "        duravip_policy = majority\n");

    // Transactions on two consoles: isolated, the first commit wins.
    let endpoint = Endpoint::parse(&c.console("east2").display().to_string()).expect("endpoint");
    let mut first = Session::connect(&endpoint).await.expect("connect");
    let mut second = Session::connect(&endpoint).await.expect("connect");
    assert!(call(&mut first, "config begin").await.is_ok());
    assert!(call(&mut second, "config begin").await.is_ok());
    assert!(!call(&mut first, "config reload").await.is_ok(), "reload inside a transaction");
    assert!(call(&mut first, "config set cluster view_mature_time 4").await.is_ok());
    assert!(call(&mut second, "config set cluster view_mature_time 5").await.is_ok());
    assert_eq!(call(&mut first, "config get cluster view_mature_time").await.body, "        view_mature_time = 4\n");
    assert_eq!(ok(&c, "east2", "config eval cluster view_mature_time").await, "        view_mature_time = 2\n", "invisible to others");
    assert_eq!(call(&mut first, "config replay").await.body, "config set cluster view_mature_time 4\n");
    let committed = call(&mut first, "config commit").await;
    assert!(committed.is_ok(), "{}", committed.body);
    let lost = call(&mut second, "config commit").await;
    assert!(!lost.is_ok() && lost.body.starts_with("config commit failed: the running configuration changed"), "{}", lost.body);
    assert_eq!(ok(&c, "east2", "config get cluster view_mature_time").await, "        view_mature_time = 4\n");
    assert!(call(&mut second, "config rollback").await.is_ok());
    // A console that closes with a transaction open rolls it back.
    assert!(call(&mut second, "config begin").await.is_ok());
    assert!(call(&mut second, "config set cluster view_mature_time 6").await.is_ok());
    drop(second);
    eventually("the closed console's transaction rolled back", Duration::from_secs(5), || async {
        c.log_text("east2").contains("rolled back").then_some(())
    })
    .await;
    assert!(call(&mut first, "config begin").await.is_ok());
    assert!(call(&mut first, "config commit").await.is_ok(), "nothing committed in between");
    assert_eq!(ok(&c, "east2", "config get cluster view_mature_time").await, "        view_mature_time = 4\n");
}
