//! The store on its own: numbering, conflicts, validation, rollback, restart.

use super::*;
use crate::confrepo::wire::{Bytes64, Change, CommitRequest, RepoChanges, RollbackRequest};

fn put(path: &str, text: &str) -> Change {
    Change { path: path.into(), content: Some(Bytes64(text.as_bytes().to_vec())) }
}

fn request(repo: &str, base: u64, changes: Vec<Change>) -> CommitRequest {
    CommitRequest { message: "test".into(), repos: vec![RepoChanges { repo: repo.into(), base, changes }] }
}

#[test]
fn commits_are_numbered_and_a_stale_base_is_a_conflict_even_after_reopening() {
    let dir = tempfile::tempdir().unwrap();
    let store = Store::open(dir.path(), &["east".into()]).unwrap();
    let names: Vec<String> = store.heads().unwrap().into_iter().map(|h| h.repo).collect();
    assert_eq!(names, ["default", "east", "global"]);
    let done = store.commit("admin", &request("east", 0, vec![put("default/ecelerity.conf", "a = 1\n")])).unwrap();
    assert_eq!(done.committed[0].revision, 1);
    let done = store.commit("admin", &request("east", 1, vec![put("east1/ecelerity.conf", "b = 2\n")])).unwrap();
    assert_eq!(done.committed[0].revision, 2);
    match store.commit("bob", &request("east", 1, vec![put("default/ecelerity.conf", "a = 3\n")])) {
        Err(StoreError::Conflict(c)) => assert_eq!((c.base, c.head), (1, 2)),
        other => panic!("expected a conflict, got {other:?}"),
    }
    drop(store);
    let store = Store::open(dir.path(), &[]).unwrap();
    assert!(matches!(
        store.commit("bob", &request("east", 1, vec![put("default/ecelerity.conf", "a = 3\n")])),
        Err(StoreError::Conflict(_))
    ));
    let snap = store.snapshot("east", None, None).unwrap();
    assert_eq!(snap.revision, 2);
    let paths: Vec<&str> = snap.files.iter().map(|f| f.path.as_str()).collect();
    assert_eq!(paths, ["default/ecelerity.conf", "east1/ecelerity.conf"]);
    let only = store.snapshot("east", Some(2), Some(&["east1".to_owned()])).unwrap();
    assert_eq!(only.files.len(), 1);
    let log = store.log("east", 10).unwrap();
    assert_eq!(log[0].revision, 2);
    assert_eq!(log[0].author, "admin");
    assert_eq!(log[0].message, "test");
    assert_eq!(log[0].changed, ["east1/ecelerity.conf"]);
}

#[test]
fn a_conf_file_that_does_not_parse_refuses_the_whole_commit() {
    let dir = tempfile::tempdir().unwrap();
    let store = Store::open(dir.path(), &[]).unwrap();
    let bad = request("default", 0, vec![put("default/ok.txt", "x"), put("default/ecelerity.conf", "a = 1\nScope {\n")]);
    match store.commit("admin", &bad) {
        Err(StoreError::Invalid(detail)) => {
            assert_eq!(detail.path, "default/ecelerity.conf");
            assert!(detail.message.starts_with("default/ecelerity.conf:"), "{}", detail.message);
            assert!(detail.line.is_some() && detail.column.is_some());
        }
        other => panic!("expected invalid, got {other:?}"),
    }
    assert_eq!(store.snapshot("default", None, None).unwrap().revision, 0);
    let global = request("global", 0, vec![put("msgc.conf", "= x\n")]);
    match store.commit("admin", &global) {
        Err(StoreError::Invalid(detail)) => assert_eq!(detail.path, "global/msgc.conf"),
        other => panic!("expected invalid, got {other:?}"),
    }
}

#[test]
fn names_outside_the_rules_are_refused() {
    let dir = tempfile::tempdir().unwrap();
    let store = Store::open(dir.path(), &[]).unwrap();
    for path in ["../x", "/etc/passwd", "default/.eccfg/wc.json", "top.conf", "global/x"] {
        assert!(matches!(
            store.commit("admin", &request("default", 0, vec![put(path, "x")])),
            Err(StoreError::BadRequest(_))
        ), "{path}");
    }
    assert!(matches!(store.snapshot("nope", None, None), Err(StoreError::NoSuchRepo(..))));
}

#[test]
fn rollback_restores_an_old_revision_as_a_new_one_and_deletions_stay_deleted() {
    let dir = tempfile::tempdir().unwrap();
    let store = Store::open(dir.path(), &[]).unwrap();
    store.commit("admin", &request("default", 0, vec![put("default/a.conf", "a = 1\n")])).unwrap();
    let delete = Change { path: "default/a.conf".into(), content: None };
    store.commit("admin", &request("default", 1, vec![delete, put("default/b.conf", "b = 1\n")])).unwrap();
    let unchanged = store.commit("admin", &request("default", 2, vec![put("default/b.conf", "b = 1\n")])).unwrap();
    assert!(unchanged.committed.is_empty());
    let stale = RollbackRequest { base: 1, to: 1, message: None };
    assert!(matches!(store.rollback("admin", "default", &stale), Err(StoreError::Conflict(_))));
    let done = store.rollback("admin", "default", &RollbackRequest { base: 2, to: 1, message: None }).unwrap();
    assert_eq!(done.committed[0].revision, 3);
    let files: Vec<String> = store.snapshot("default", None, None).unwrap().files.into_iter().map(|f| f.path).collect();
    assert_eq!(files, ["default/a.conf"]);
    assert_eq!(store.log("default", 1).unwrap()[0].message, "Rollback to revision 1");
}
