//! Nodes following the configuration repository, end to end: a real ecconfigd over HTTPS on
//! loopback with the certificate it generates, a real eccmgr and real ecnode processes started
//! with `--cluster-boot`, and an operator's working copy committing through the same library
//! functions as `eccfg`. Addresses on 127.43.0.0/16 (one port and server address per test).
//!
//! Processes are killed at exact moments through stop points (`ECCFG_STOP_AT`; see
//! `eccluster::confrepo::stop_point`): the process stops itself with SIGSTOP there, the test
//! sees the stop (`waitpid` with `WUNTRACED`) and kills it.

use std::fs;
use std::time::Duration;

use eccluster::confrepo::wc::WorkingCopy;

use crate::repo_support::{kill_when_stopped, Site};
use crate::support::{converged, eventually};

const LIMIT: Duration = Duration::from_secs(30);

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn three_nodes_take_each_commit_and_keep_the_last_good_one_when_a_revision_does_not_load() {
    let mut site = Site::new(1, 3, "Broadcast_Timeout = 20\n").await;
    site.cluster.start_all();
    converged(&site.cluster, 4, LIMIT).await;
    // At start each node makes its working copy and runs it.
    site.all_on(1, 20, LIMIT).await;

    // A commit reaches every node through the manager's announcement (their poll interval is
    // an hour): `config get` shows the new value.
    assert_eq!(site.commit("Broadcast_Timeout = 25\n").await, 2);
    site.all_on(2, 25, LIMIT).await;
    for node in site.nodes.clone() {
        assert_eq!(site.wc_whole(&node), 2);
        assert_eq!(fs::read_to_string(site.wc(&node).join("default/ecelerity.conf")).expect("file"), "Broadcast_Timeout = 25\n");
    }

    // A revision that parses (ecconfigd accepts it) but does not load on the nodes: they keep
    // the last good one, in their working copy too, and say why.
    assert_eq!(site.commit("Broadcast_Timeout = 0\n").await, 3);
    for node in site.nodes.clone() {
        let error = site.error_of(&node, "", LIMIT).await;
        assert!(error.contains("Broadcast_Timeout") && error.contains("default/ecelerity.conf:1:"), "{node}: {error}");
        assert!(error.contains(&site.wc(&node).display().to_string()), "the error names the working copy's file: {error}");
        assert_eq!(site.timeout_on(&node).await.as_deref(), Some("Broadcast_Timeout = 25"));
        assert_eq!(site.wc_whole(&node), 2);
        assert!(site.cluster.log_text(&node).contains("configuration not updated; the running configuration stays"));
    }
    // The manager's view: every node behind on east 3, with its reason.
    let view: serde_json::Value = eventually("the manager to list every node's refusal", LIMIT, || async {
        let reply = site.cluster.ask("mgr", "json show cluster config").await.ok()?;
        let view: serde_json::Value = serde_json::from_str(&reply.body).ok()?;
        let nodes = view["nodes"].as_array()?;
        (nodes.len() == 3 && nodes.iter().all(|n| n["state"] == "behind" && n["error"].is_string())).then_some(view)
    })
    .await;
    assert_eq!(view["newest"]["east"], 3, "{view}");
    // A node restarted now runs the last good revision.
    site.cluster.kill9("east1");
    site.cluster.start("east1");
    site.all_on(2, 25, LIMIT).await;

    // The fix reaches everyone and clears the error.
    assert_eq!(site.commit("Broadcast_Timeout = 30\n").await, 4);
    site.all_on(4, 30, LIMIT).await;
    for node in site.nodes.clone() {
        let info = site.info(&node).await.expect("cluster info");
        assert_eq!(info["config_error"], "none", "{node}");
    }
    eventually("the manager to list every node current", LIMIT, || async {
        let reply = site.cluster.ask("mgr", "json show cluster config").await.ok()?;
        let view: serde_json::Value = serde_json::from_str(&reply.body).ok()?;
        let nodes = view["nodes"].as_array()?;
        (nodes.len() == 3 && nodes.iter().all(|n| n["state"] == "current" && n["error"].is_null())).then_some(())
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn nodes_keep_their_last_complete_revision_when_ecconfigd_dies_mid_pull_and_converge_after_its_restart() {
    let mut site = Site::new(2, 2, "Broadcast_Timeout = 20\n").await;
    site.cluster.start_all();
    converged(&site.cluster, 3, LIMIT).await;
    site.all_on(1, 20, LIMIT).await;

    // ecconfigd restarted so that it freezes when it serves the first snapshot; the commit
    // (no snapshot) lands, the first node to pull freezes it, and it is killed there.
    let mut server = site.server.take().expect("running");
    server.kill().expect("kill");
    server.wait().expect("reap");
    site.start_server(&[("ECCFG_STOP_AT", "ecconfigd-before-snapshot")]);
    assert_eq!(site.commit("Broadcast_Timeout = 25\n").await, 2);
    tokio::task::block_in_place(|| site.kill_server_when_stopped());

    for node in site.nodes.clone() {
        let error = site.error_of(&node, "", LIMIT).await;
        assert!(error.contains("pull from") && error.contains("failed"), "{node}: {error}");
        assert_eq!(site.wc_whole(&node), 1, "{node} keeps revision 1 whole");
        assert_eq!(site.timeout_on(&node).await.as_deref(), Some("Broadcast_Timeout = 20"));
    }

    // Back up: the nodes converge on revision 2 without anyone touching them.
    site.start_server(&[]);
    site.all_on(2, 25, LIMIT).await;
    for node in site.nodes.clone() {
        assert_eq!(site.wc_whole(&node), 2);
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_node_killed_during_its_swap_restarts_on_a_complete_revision() {
    let mut site = Site::new(3, 1, "Broadcast_Timeout = 20\n").await;
    site.cluster.start_all();
    converged(&site.cluster, 2, LIMIT).await;
    site.all_on(1, 20, LIMIT).await;
    let mut rev = 1;
    for (point, expect_after_kill) in [("eccfg-before-swap", false), ("eccfg-after-swap", true)] {
        // The node is stopped, a revision committed, and the node started again with the
        // stop point: its pull at start freezes at the swap and it is killed there.
        site.cluster.terminate("east1");
        rev += 1;
        let timeout = 20 + rev;
        assert_eq!(site.commit(&format!("Broadcast_Timeout = {timeout}\n")).await, rev);
        site.cluster.member_env.insert("east1".into(), vec![("ECCFG_STOP_AT".into(), point.into())]);
        site.cluster.start("east1");
        let mut proc = site.cluster.procs.remove("east1").expect("started");
        tokio::task::block_in_place(|| kill_when_stopped(&mut proc.child));
        let at = site.wc_whole("east1");
        assert_eq!(at, if expect_after_kill { rev } else { rev - 1 }, "killed at {point}");
        // Started again (without the stop point): it runs a complete revision, cleans up and
        // reaches the newest.
        site.cluster.start("east1");
        site.all_on(rev, timeout, LIMIT).await;
        assert_eq!(site.wc_whole("east1"), rev);
        let left: Vec<String> = fs::read_dir(site.dir().join("wc"))
            .expect("list")
            .filter_map(|e| e.ok()?.file_name().into_string().ok())
            .filter(|n| n.contains("eccfg-tmp"))
            .collect();
        assert!(left.is_empty(), "temporary trees left after a restart from {point}: {left:?}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn reload_config_on_update_false_waits_for_config_reload_and_ifunchanged_keeps_local_changes() {
    let mut site = Site::new(4, 2, "Broadcast_Timeout = 20\n").await;
    site.boot_line("east1", "reload_config_on_update=false");
    site.boot_line("east2", "autoupdate=ifunchanged");
    site.cluster.start_all();
    converged(&site.cluster, 3, LIMIT).await;
    // The working copy made at start is loaded either way.
    site.all_on(1, 20, LIMIT).await;
    // east2's operator changes a file of its working copy by hand.
    fs::write(site.wc("east2").join("default/local.conf"), "# a local change\n").expect("local change");

    assert_eq!(site.commit("Broadcast_Timeout = 25\n").await, 2);
    // east1 pulled revision 2 but runs revision 1 until told to load it.
    site.error_of("east1", "not loaded: reload_config_on_update = false", LIMIT).await;
    assert_eq!(site.wc_whole("east1"), 2);
    assert_eq!(site.timeout_on("east1").await.as_deref(), Some("Broadcast_Timeout = 20"));
    let reply = site.cluster.ask("east1", "config reload").await.expect("config reload");
    assert!(reply.is_ok(), "{}", reply.body);
    site.node_on("east1", 2, 25, LIMIT).await;
    let info = site.info("east1").await.expect("cluster info");
    assert_eq!(info["config_error"], "none");
    // east2 did not pull: its working copy has a local change.
    let why = site.error_of("east2", "autoupdate = ifunchanged", LIMIT).await;
    assert!(why.contains("default/local.conf"), "{why}");
    assert_eq!(WorkingCopy::open(&site.wc("east2")).expect("wc").meta().bases["east"], 1);
    assert_eq!(site.timeout_on("east2").await.as_deref(), Some("Broadcast_Timeout = 20"));
}
