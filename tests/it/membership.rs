//! Membership across real processes: convergence, crash detection, restart, foreign CA.

use std::time::{Duration, Instant};

use crate::support::{converged, eventually, topology, Cluster};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn six_member_cluster_converges_with_roles_and_subclusters() {
    let mut c = Cluster::new(&topology(21, 4803, &[("east", 3), ("west", 2)]));
    c.start_all();
    converged(&c, 6, Duration::from_secs(30)).await;

    let rows = c.membership("mgr").await.expect("manager answers");
    assert_eq!(rows.len(), 6);
    for r in &rows {
        let name = r["name"].as_str().expect("name");
        let (sc, role) = match name {
            "mgr" => ("east", "manager"),
            n if n.starts_with("east") => ("east", "node"),
            _ => ("west", "node"),
        };
        assert_eq!(r["subcluster"], sc, "{r}");
        assert_eq!(r["role"], role, "{r}");
        assert_eq!(r["state"], "up", "{r}");
        assert!(r["address"].as_str().expect("address").starts_with("127.21."), "{r}");
    }
    let text = c.ask("west2", "cluster membership").await.expect("node answers");
    for name in ["mgr", "east1", "east2", "east3", "west1", "west2"] {
        assert!(text.body.contains(&format!("Node Name: {name}\n")), "{}", text.body);
    }
    assert!(text.body.contains("Node Type: Manager"), "{}", text.body);
    assert!(text.body.contains("Groups: ec_console, ec_sc_west, ec_cluster"), "{}", text.body);

    // A graceful stop is a clean exit and the others see the member go.
    let status = c.terminate("east3");
    assert!(status.success(), "ecnode exit status {status}");
    for observer in c.running() {
        eventually("east3 seen down after SIGTERM", Duration::from_secs(10), || async {
            (c.state_of(&observer, "east3").await?.0 == "down").then_some(())
        })
        .await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn killed_node_is_reported_down_and_rejoins_with_higher_incarnation() {
    let mut c = Cluster::new(&topology(22, 4803, &[("east", 2), ("west", 2)]));
    c.start_all();
    converged(&c, 5, Duration::from_secs(30)).await;
    let (_, old_incarnation) = c.state_of("mgr", "west1").await.expect("west1 known");

    let killed_at = Instant::now();
    c.kill9("west1");
    for observer in c.running() {
        eventually(&format!("{observer} to report west1 down"), Duration::from_secs(15), || async {
            (c.state_of(&observer, "west1").await?.0 == "down").then_some(())
        })
        .await;
    }
    let detection = killed_at.elapsed();
    assert!(detection < Duration::from_secs(15), "detection took {detection:?}");

    c.start("west1");
    converged(&c, 5, Duration::from_secs(30)).await;
    for observer in c.running() {
        let (state, incarnation) = c.state_of(&observer, "west1").await.expect("west1 known");
        assert_eq!(state, "up", "west1 in view of {observer}");
        assert!(incarnation > old_incarnation, "{observer}: incarnation {incarnation} <= {old_incarnation}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn member_with_certificate_from_another_ca_is_refused_and_logged() {
    let mut c = Cluster::new(&topology(23, 4803, &[("east", 2), ("west", 1)]));
    // Everyone but east2 starts with the cluster's certificates.
    for name in ["mgr", "east1", "west1"] {
        c.start(name);
    }
    converged(&c, 3, Duration::from_secs(30)).await;

    // east2 is a host of the segment file but its certificate comes from a rogue CA.
    let rogue = c.dir.path().join("rogue-tls");
    eccluster::tls::ca_init(&rogue, "rogue").expect("rogue ca");
    eccluster::tls::ca_issue(&rogue, &["east2".to_owned()]).expect("rogue cert");
    c.start_with_tls("east2", &rogue);

    // Each side logs the refusal: the members refuse the rogue's certificate, the rogue
    // refuses theirs.
    eventually("the manager to log the refused rogue", Duration::from_secs(20), || async {
        let log = c.log_text("mgr");
        log.lines()
            .any(|l| l.contains("refused connection") || (l.contains("east2") && l.contains("dial failed")))
            .then_some(())
    })
    .await;
    eventually("the rogue to log refused peers", Duration::from_secs(20), || async {
        c.log_text("east2").contains("invalid peer certificate").then_some(())
    })
    .await;
    // And it never appears in anyone's membership.
    for observer in ["mgr", "east1", "west1"] {
        let rows = c.membership(observer).await.expect("answers");
        assert!(
            rows.iter().all(|r| r["name"] != "east2"),
            "{observer} lists the rogue: {rows:?}"
        );
    }
    let rogue_view = c.membership("east2").await.expect("rogue console answers");
    assert_eq!(rogue_view.len(), 1, "the rogue sees only itself: {rogue_view:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn in_a_two_member_cluster_the_node_lists_the_manager_down_after_its_graceful_shutdown() {
    let mut c = Cluster::new(&topology(47, 4803, &[("east", 1)]));
    c.start_all();
    converged(&c, 2, Duration::from_secs(30)).await;
    let (_, first_run) = c.state_of("east1", "mgr").await.expect("mgr known");

    let status = c.terminate("mgr");
    assert!(status.success(), "eccmgr exit status {status}");
    // Its only peer gone, east1 is alone and starts its SWIM state afresh; that used to make
    // it forget the manager altogether.
    eventually("east1 to find itself alone", Duration::from_secs(15), || async {
        c.log_text("east1").contains("no live peers: isolated").then_some(())
    })
    .await;
    let (state, incarnation) = c.state_of("east1", "mgr").await.expect("east1 still lists mgr");
    assert_eq!((state.as_str(), incarnation), ("down", first_run));
    let text = c.ask("east1", "cluster membership").await.expect("east1 answers");
    assert!(text.body.contains("Node Name: mgr\n"), "{}", text.body);

    // The manager's next run is up again in east1's view.
    c.start("mgr");
    eventually("east1 to see the manager back", Duration::from_secs(30), || async {
        let (state, incarnation) = c.state_of("east1", "mgr").await?;
        (state == "up" && incarnation > first_run).then_some(())
    })
    .await;
}
