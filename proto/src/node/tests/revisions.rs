//! Configuration revisions through node cores: the manager tells every node the newest
//! revision, each node fetches it once and reports it, lost messages are made up for, and a
//! node that was down hears of it when it is back.

use super::harness::*;
use crate::revisions::Revisions;

const FOUR: &[&str] = &["east1", "east2", "west1", "west2"];

fn revs(pairs: &[(&str, u64)]) -> Revisions {
    pairs.iter().map(|(r, n)| ((*r).to_owned(), *n)).collect()
}

fn publish(c: &mut Cluster, repo: &str, rev: u64) -> bool {
    let at = c.at();
    let newer = c.members.get_mut("mgr").and_then(|m| m.core.as_mut()).expect("manager running").config_published(at, repo, rev);
    c.drain("mgr");
    newer
}

/// The nodes the manager sees running at least what they follow of `newest`.
fn caught_up(c: &Cluster, newest: &Revisions) -> Vec<String> {
    let p = c.core("mgr").config_publisher().expect("a manager");
    p.nodes()
        .iter()
        .filter(|(_, n)| crate::revisions::covers(&n.running, &crate::revisions::followed_by(newest, &n.subcluster)))
        .map(|(name, _)| name.clone())
        .collect()
}

#[test]
fn every_node_fetches_a_published_revision_once_and_the_manager_sees_it_run() {
    for seed in 0..6 {
        let mut c = Setup::new(FOUR, seed).subcluster("east", &["east1", "east2"]).subcluster("west", &["west1", "west2"]).start();
        c.run_for(secs(3));
        assert!(publish(&mut c, "east", 1));
        assert!(!publish(&mut c, "east", 1), "the same revision is not news");
        c.run_for(ms(300));
        let newest = revs(&[("east", 1)]);
        assert_eq!(caught_up(&c, &newest), FOUR, "seed {seed}");
        // Only the nodes of east follow east's repository: only they are told and fetch.
        for n in FOUR {
            let theirs: &[Revisions] = if n.starts_with("east") { std::slice::from_ref(&newest) } else { &[] };
            assert_eq!(c.members[*n].fetches, theirs, "seed {seed}: {n}");
        }
        assert_eq!(c.core("east1").config_follower().expect("a node").running(), &newest);
        // global, followed by every node, and west's.
        assert!(publish(&mut c, "global", 5));
        assert!(publish(&mut c, "west", 2));
        c.run_for(ms(300));
        let newest = revs(&[("east", 1), ("global", 5), ("west", 2)]);
        assert_eq!(caught_up(&c, &newest), FOUR, "seed {seed}");
        assert_eq!(c.core("west1").config_follower().expect("a node").running(), &revs(&[("global", 5), ("west", 2)]));
    }
}

#[test]
fn lost_messages_are_made_up_for_and_a_node_that_was_down_hears_when_it_is_back() {
    for seed in 0..6 {
        let mut c = Setup::new(FOUR, seed).subcluster("east", &["east1", "east2"]).subcluster("west", &["west1", "west2"]).start();
        c.run_for(secs(3));
        c.crash("west2");
        c.run_for(secs(6));
        assert!(!c.core("mgr").config_publisher().expect("a manager").nodes().contains_key("west2"), "seed {seed}");
        // A third of the stream messages are lost meanwhile (on a connection that breaks
        // and is made again): the manager tells a lagging node again every second.
        c.net.stream_loss = 0.3;
        assert!(publish(&mut c, "global", 7));
        c.run_for(secs(12));
        let newest = revs(&[("global", 7)]);
        assert_eq!(caught_up(&c, &newest), ["east1", "east2", "west1"], "seed {seed}");
        c.net.stream_loss = 0.0;
        c.start("west2");
        c.run_for(secs(3));
        assert_eq!(caught_up(&c, &newest), FOUR, "seed {seed}");
        assert_eq!(c.members["west2"].fetches, std::slice::from_ref(&newest), "seed {seed}: west2 fetched once in its new run");
    }
}
