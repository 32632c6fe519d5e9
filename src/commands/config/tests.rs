use super::*;
use crate::config::{parse_str, Value};
use std::path::Path;

fn store() -> ConfigStore {
    let tree = parse_str("Broadcast_Timeout = 30\ncluster { duravip_policy = available }\n", Path::new("node.conf")).expect("valid");
    ConfigStore::new(Some(PathBuf::from("node.conf")), tree, "ecnode")
}

fn command(line: &str) -> ConfigCommand {
    parse(&eccluster_proto::node::line::parse_line(line).expect("line").words).expect("a config command")
}

fn run(store: &mut ConfigStore, session: Option<u64>, line: &str) -> Result<Answer, String> {
    match store.plan(command(line), session, line) {
        Plan::Answer(answer) => answer,
        Plan::Apply(apply) => {
            let answer = apply.answer.clone();
            store.installed(apply);
            Ok(answer)
        }
        Plan::Stage(stage) => {
            let answer = stage.answer.clone();
            store.staged(stage);
            Ok(answer)
        }
        other => panic!("{line}: unexpected plan {other:?}"),
    }
}

fn value(store: &mut ConfigStore, session: Option<u64>, line: &str) -> Option<Value> {
    match run(store, session, line) {
        Ok(Answer::Value { found, .. }) => Some(found.value),
        _ => None,
    }
}

#[test]
fn a_transaction_is_seen_only_by_its_session_until_commit() {
    let mut s = store();
    run(&mut s, Some(1), "config begin").expect("begin");
    run(&mut s, Some(1), "config set cluster duravip_policy majority").expect("staged");
    assert_eq!(value(&mut s, Some(1), "config get cluster duravip_policy"), Some(Value::Scalar("majority".into())));
    assert_eq!(value(&mut s, Some(2), "config get cluster duravip_policy"), Some(Value::Scalar("available".into())));
    assert_eq!(value(&mut s, None, "config get cluster duravip_policy"), Some(Value::Scalar("available".into())));
    assert_eq!(
        run(&mut s, Some(1), "config replay"),
        Ok(Answer::Replay(vec!["config set cluster duravip_policy majority".into()]))
    );
    run(&mut s, Some(1), "config commit").expect("commit");
    assert_eq!(value(&mut s, Some(2), "config get cluster duravip_policy"), Some(Value::Scalar("majority".into())));
    assert!(run(&mut s, Some(1), "config commit").expect_err("closed").contains("no transaction is open"));
}

#[test]
fn of_two_transactions_the_first_commit_wins_and_the_second_changes_nothing() {
    let mut s = store();
    run(&mut s, Some(1), "config begin").expect("begin");
    run(&mut s, Some(2), "config begin").expect("begin");
    run(&mut s, Some(1), "config set Broadcast_Timeout 40").expect("staged");
    run(&mut s, Some(2), "config set Broadcast_Timeout 50").expect("staged");
    run(&mut s, Some(1), "config commit").expect("first wins");
    let error = run(&mut s, Some(2), "config commit").expect_err("second loses");
    assert!(error.starts_with("config commit failed: the running configuration changed"), "{error}");
    assert_eq!(value(&mut s, None, "config get broadcast_timeout"), Some(Value::Scalar("40".into())));
    // Still open for replay and rollback.
    assert!(matches!(run(&mut s, Some(2), "config replay"), Ok(Answer::Replay(lines)) if lines.len() == 1));
    run(&mut s, Some(2), "config rollback").expect("rollback");
}

#[test]
fn a_change_outside_a_transaction_makes_open_transactions_stale() {
    let mut s = store();
    run(&mut s, Some(1), "config begin").expect("begin");
    run(&mut s, None, "config set cluster view_mature_time 3").expect("applied");
    assert!(run(&mut s, Some(1), "config commit").is_err());
}

#[test]
fn transactions_refuse_reload_broadcast_begin_and_a_second_begin() {
    let mut s = store();
    assert!(run(&mut s, None, "config begin").expect_err("no session").contains("cannot run through broadcast"));
    run(&mut s, Some(1), "config begin").expect("begin");
    assert!(run(&mut s, Some(1), "config begin").expect_err("twice").contains("already open"));
    assert!(matches!(s.plan(command("config reload"), Some(1), "config reload"), Plan::Answer(Err(e)) if e.contains("outside a transaction")));
    assert!(matches!(s.plan(command("config reload"), Some(2), "config reload"), Plan::Reload { .. }));
    assert_eq!(s.session_closed(1), Some(0));
    assert!(!s.in_transaction(1));
}

#[test]
fn begin_from_scratch_starts_empty_and_unset_of_the_top_level_is_refused() {
    let mut s = store();
    run(&mut s, Some(1), "config begin from scratch").expect("begin");
    assert!(matches!(run(&mut s, Some(1), "config get broadcast_timeout"), Ok(Answer::NotSet { .. })));
    let Plan::Apply(apply) = s.plan(command("config commit"), Some(1), "config commit") else { panic!("commit") };
    assert!(apply.changed.contains(&Changed::option(&[], "broadcast_timeout")));
    assert!(run(&mut s, None, "config unset").expect_err("global").contains("global scope cannot be unset"));
}

#[test]
fn unset_says_what_is_in_effect_now_and_writeback_keeps_later_changes() {
    let mut s = store();
    run(&mut s, None, "config set cluster duravip_policy majority").expect("set");
    let Plan::Writeback(job) = s.plan(command("config writeback"), None, "config writeback") else { panic!("writeback") };
    assert_eq!(job.changed.len(), 1);
    let unset = run(&mut s, None, "config unset cluster duravip_policy").expect("unset");
    let Answer::Unset { effective: Some(found), .. } = unset else { panic!("{unset:?}") };
    assert_eq!((found.value, found.source), (Value::Scalar("available".into()), edit::Source::Default));
    s.written(job.generation);
    let Plan::Writeback(job) = s.plan(command("config writeback"), None, "config writeback") else { panic!("writeback") };
    assert_eq!(job.changed.len(), 1, "the unset after the first writeback is still to write");
    assert!(run(&mut s, None, "config eval cluster nothing_here").expect_err("unknown").contains("has no default"));
}

/// A fixed-seed xorshift64 generator, so failures reproduce.
struct XorShift(u64);

impl XorShift {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0
    }
}

#[test]
fn no_console_line_makes_the_config_command_panic() {
    const PIECES: &[&str] = &[
        "config", "get", "eval", "set", "unset", "show", "showrecurse", "locate", "begin", "from", "scratch", "commit",
        "rollback", "replay", "cluster", "Binding", "b1", "Listen", ":25", "=", "(", ")", "[", "]", "(a", "b)", "[k",
        "v]", "duravip_policy", "x", "", "\\", "[(", "*", "Broadcast_Timeout",
    ];
    let mut rng = XorShift(0xC0FFEE);
    let mut s = store();
    for _ in 0..20_000 {
        let count = 1 + (rng.next() % 8) as usize;
        let mut words = vec!["config".to_owned()];
        words.extend((0..count).map(|_| PIECES[(rng.next() % PIECES.len() as u64) as usize].to_owned()));
        let Ok(command) = parse(&words) else { continue };
        let session = (!rng.next().is_multiple_of(3)).then_some(rng.next() % 3);
        match s.plan(command, session, &words.join(" ")) {
            Plan::Apply(apply) => {
                let _ = answer::render_answer(&apply.answer, &[], crate::console::request::Format::Xml);
                s.installed(apply);
            }
            Plan::Stage(stage) => s.staged(stage),
            Plan::Answer(Ok(answer)) => {
                let _ = answer::render_answer(&answer, &[], crate::console::request::Format::Json);
            }
            Plan::Answer(Err(_)) | Plan::Reload { .. } | Plan::Writeback(_) => {}
        }
    }
}
