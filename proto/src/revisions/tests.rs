use super::*;

fn revs(pairs: &[(&str, u64)]) -> Revisions {
    pairs.iter().map(|(r, n)| ((*r).to_owned(), *n)).collect()
}

fn drain_publisher(p: &mut Publisher) -> Vec<PublisherOutput> {
    std::iter::from_fn(|| p.poll_output()).collect()
}

fn drain_follower(f: &mut Follower) -> Vec<FollowerOutput> {
    std::iter::from_fn(|| f.poll_output()).collect()
}

fn told(outputs: &[PublisherOutput]) -> Vec<(String, RevisionMessage)> {
    outputs
        .iter()
        .filter_map(|o| match o {
            PublisherOutput::Send { to, payload } => Some((to.clone(), RevisionMessage::decode(payload).expect("decodes"))),
            PublisherOutput::SetTimer(_) => None,
        })
        .collect()
}

#[test]
fn a_publisher_tells_lagging_nodes_until_they_run_the_newest() {
    // A test's only clock reading: the core is handed it, never reads one.
    #[allow(clippy::disallowed_methods)]
    let now = Instant::now();
    let mut p = Publisher::new(Duration::from_secs(1));
    p.handle_node_up("east1", "default");
    p.handle_node_up("east2", "default");
    // A node of another subcluster does not follow default's repository: never told of it.
    p.handle_node_up("west1", "west");
    assert!(drain_publisher(&mut p).is_empty(), "nothing to tell before a revision is known");
    assert!(p.publish("default", 3));
    let out = drain_publisher(&mut p);
    let newest = RevisionMessage::Newest(revs(&[("default", 3)]));
    assert_eq!(told(&out), [("east1".to_owned(), newest.clone()), ("east2".to_owned(), newest.clone())]);
    assert_eq!(out.iter().filter(|o| matches!(o, PublisherOutput::SetTimer(_))).count(), 1);
    // Older or equal revisions change nothing.
    assert!(!p.publish("default", 3));
    assert!(!p.publish("default", 2));
    assert!(drain_publisher(&mut p).is_empty());
    // east1 runs it; east2's report is lost: only east2 is told again.
    p.handle_running(now, "east1", revs(&[("default", 3), ("global", 1)]), None, revs(&[("default", 3)]));
    p.handle_timer();
    let out = drain_publisher(&mut p);
    assert_eq!(told(&out), [("east2".to_owned(), newest.clone())]);
    // east2 knows it but cannot run it: it says why, and is not told again.
    p.handle_running(now, "east2", revs(&[("default", 2)]), Some("does not load".into()), revs(&[("default", 3)]));
    p.handle_timer();
    assert!(drain_publisher(&mut p).is_empty(), "everyone knows the newest: no more resends, no timer");
    assert!(!covers(&p.nodes()["east2"].running, &p.newest_for(&p.nodes()["east2"])), "east2 is behind");
    // A node that comes up (again) is told at once, whatever it ran before.
    p.handle_node_down("east2");
    assert!(!p.nodes().contains_key("east2"));
    p.handle_node_up("east2", "default");
    assert_eq!(told(&drain_publisher(&mut p)), [("east2".to_owned(), newest)]);
    assert!(!p.publish("", 9) && !p.publish(&"x".repeat(MAX_NAME + 1), 9));
}

#[test]
fn a_follower_fetches_once_per_newer_revision_and_reports_to_every_manager() {
    let mut f = Follower::new();
    f.set_running(revs(&[("default", 2), ("global", 1)]), None);
    assert!(drain_follower(&mut f).is_empty(), "no manager known yet");
    f.handle_manager_up("mgr");
    let running = RevisionMessage::Running { revisions: revs(&[("default", 2), ("global", 1)]), error: None, knows: Revisions::new() };
    let report = |out: &[FollowerOutput]| -> Vec<(String, RevisionMessage)> {
        out.iter()
            .filter_map(|o| match o {
                FollowerOutput::Send { to, payload } => Some((to.clone(), RevisionMessage::decode(payload).expect("decodes"))),
                FollowerOutput::Fetch(_) | FollowerOutput::SetTimer(_) => None,
            })
            .collect()
    };
    assert_eq!(report(&drain_follower(&mut f)), [("mgr".to_owned(), running.clone())]);
    // Nothing newer: no fetch, a report.
    f.handle_newest("mgr", &revs(&[("default", 2)]));
    let out = drain_follower(&mut f);
    assert!(!out.iter().any(|o| matches!(o, FollowerOutput::Fetch(_))));
    // Newer: one fetch of everything newest; the same news again fetches nothing more.
    f.handle_newest("mgr", &revs(&[("default", 4)]));
    let out = drain_follower(&mut f);
    assert_eq!(out.first(), Some(&FollowerOutput::Fetch(revs(&[("default", 4)]))));
    f.handle_newest("mgr", &revs(&[("default", 4)]));
    assert!(!drain_follower(&mut f).iter().any(|o| matches!(o, FollowerOutput::Fetch(_))));
    // The pull failed: the manager hears why, bounded.
    f.set_running(revs(&[("default", 2), ("global", 1)]), Some("é".repeat(MAX_ERROR)));
    let out = drain_follower(&mut f);
    let Some((_, RevisionMessage::Running { error: Some(e), .. })) = report(&out).into_iter().next() else { panic!("{out:?}") };
    assert!(e.len() <= MAX_ERROR && e.starts_with('é'));
    f.handle_manager_down("mgr");
    f.set_running(revs(&[("default", 4)]), None);
    assert!(drain_follower(&mut f).is_empty());
    assert_eq!(f.running(), &revs(&[("default", 4)]));
    assert_eq!(f.newest(), &revs(&[("default", 4)]));
}

fn fetches(out: &[FollowerOutput]) -> Vec<Revisions> {
    out.iter().filter_map(|o| if let FollowerOutput::Fetch(r) = o { Some(r.clone()) } else { None }).collect()
}

fn timers(out: &[FollowerOutput]) -> Vec<Duration> {
    out.iter().filter_map(|o| if let FollowerOutput::SetTimer(d) = o { Some(*d) } else { None }).collect()
}

#[test]
fn a_following_node_fetches_one_at_a_time_polls_and_backs_off_while_the_server_fails() {
    // A test's only clock reading: the core is handed it, never reads one.
    #[allow(clippy::disallowed_methods)]
    let t0 = Instant::now();
    let s = Duration::from_secs;
    let mut f = Follower::new();
    f.follow(FollowTiming::polling(s(60)));
    // The pull at start.
    assert_eq!(fetches(&drain_follower(&mut f)), [Revisions::new()]);
    assert!(f.fetching());
    // Two newer revisions announced during it: one more fetch, after it, of the newest.
    f.handle_newest("mgr", &revs(&[("default", 3)]));
    f.handle_newest("mgr", &revs(&[("default", 4)]));
    assert!(fetches(&drain_follower(&mut f)).is_empty(), "one fetch at a time");
    f.fetch_done(t0, FetchOutcome::Done);
    assert_eq!(fetches(&drain_follower(&mut f)), [revs(&[("default", 4)])]);
    // The server fails: retries after 1, 2, 4, 8, 10, 10 s.
    let mut at = t0;
    let mut waits = Vec::new();
    for _ in 0..6 {
        f.fetch_done(at, FetchOutcome::Unreachable);
        let wait = timers(&drain_follower(&mut f));
        assert_eq!(wait.len(), 1);
        waits.push(wait[0]);
        // A stale timer (earlier than due) fetches nothing; the due one does.
        f.handle_timer(at);
        assert!(fetches(&drain_follower(&mut f)).is_empty(), "a stale timer fetched");
        at += wait[0];
        f.handle_timer(at);
        assert_eq!(fetches(&drain_follower(&mut f)).len(), 1);
    }
    assert_eq!(waits, [s(1), s(2), s(4), s(8), s(10), s(10)]);
    // It answers again: back to the poll interval, and the backoff starts over.
    f.fetch_done(at, FetchOutcome::Done);
    assert_eq!(timers(&drain_follower(&mut f)), [s(60)]);
    // An announcement before the poll is due fetches at once; the poll timer armed before is
    // stale when it fires.
    f.handle_newest("mgr", &revs(&[("default", 5)]));
    assert_eq!(fetches(&drain_follower(&mut f)), [revs(&[("default", 5)])]);
    f.handle_timer(at + s(60));
    assert!(fetches(&drain_follower(&mut f)).is_empty(), "the poll armed before the fetch is stale");
    f.fetch_done(at + s(1), FetchOutcome::Unreachable);
    assert_eq!(timers(&drain_follower(&mut f)), [s(1)], "the backoff started over");
    // A node that follows nothing is asked once per newer revision and never polled.
    let mut g = Follower::new();
    g.handle_newest("mgr", &revs(&[("default", 1)]));
    let out = drain_follower(&mut g);
    assert_eq!(fetches(&out), [revs(&[("default", 1)])]);
    g.fetch_done(t0, FetchOutcome::Done);
    assert!(timers(&drain_follower(&mut g)).is_empty());
}

#[test]
fn messages_out_of_bounds_are_refused() {
    let many: Revisions = (0..=MAX_REPOS).map(|i| (format!("r{i}"), 1)).collect();
    let encoded = crate::wire::encode(Kind::Config, &postcard::to_allocvec(&RevisionMessage::Newest(many)).expect("encodes"));
    assert!(RevisionMessage::decode(&encoded).is_err());
    let long = RevisionMessage::Newest(revs(&[(&"n".repeat(MAX_NAME + 1), 1)]));
    let encoded = crate::wire::encode(Kind::Config, &postcard::to_allocvec(&long).expect("encodes"));
    assert!(RevisionMessage::decode(&encoded).expect_err("long name").to_string().contains("repository name"));
    let big = vec![0u8; MAX_BYTES + 1];
    assert!(matches!(RevisionMessage::decode(&big), Err(DecodeError::Oversize { .. })));
    let ok = RevisionMessage::Running { revisions: revs(&[("global", 7)]), error: Some("no".into()), knows: revs(&[("global", 8)]) };
    assert_eq!(RevisionMessage::decode(&ok.encode().expect("encodes")).expect("decodes"), ok);
    assert!(RevisionMessage::decode(&crate::wire::encode(Kind::Ops, &[0])).is_err());
}
