use super::*;
use crate::config::parse_str;
use std::path::Path;

fn parse(text: &str) -> Scope {
    parse_str(text, Path::new("test.conf")).expect("valid")
}

fn words(text: &str) -> Vec<String> {
    text.split_whitespace().map(str::to_owned).collect()
}

const SAMPLE: &str = r#"
Message_Expiration = 86400
Domain earthlink.net { Message_Expiration = 900 }
ESMTP_Listener {
  Listen ":25" { Enable_Duravip = true }
  Peer "127.0.0.1" { Pathway = foo }
}
Control_Listener { Listen "127.0.0.1:2025" { } Listen "/tmp/2025" { } }
auth_ds { Scheme ecauth { QueryGroups { } } }
cluster { duravip_policy = majority }
"#;

#[test]
fn paths_take_instance_names_from_the_tree_then_from_known_shapes() {
    let root = parse(SAMPLE);
    let path = split_path(&root, &words("ESMTP_Listener Peer 127.0.0.1"));
    assert_eq!(describe(&path), "ESMTP_Listener Peer 127.0.0.1");
    assert_eq!(path.len(), 2);
    assert_eq!(path[1].name.as_deref(), Some("127.0.0.1"));
    // Known anonymous kind, absent from the tree: no instance.
    let path = split_path(&root, &words("Logs Control_Cache"));
    assert_eq!(path.len(), 2);
    assert_eq!(path[0].name, None);
    // Unknown kind absent from the tree takes the next word, as module instances do.
    let path = split_path(&root, &words("smtp_cbv foo"));
    assert_eq!(path, vec![Step { kind: "smtp_cbv".into(), name: Some("foo".into()) }]);
    assert!(resolve(&root, &split_path(&root, &words("auth_ds Scheme ecauth QueryGroups"))).is_some());
}

#[test]
fn get_reads_only_the_scope_and_eval_falls_back_then_defaults() {
    let root = parse(SAMPLE);
    let domain = split_path(&root, &words("domain earthlink.net"));
    let found = get(&root, &domain, "message_expiration").expect("set in the domain");
    assert_eq!(found.value, Value::Scalar("900".into()));
    assert_eq!(found.name, "Message_Expiration");
    let other = split_path(&root, &words("domain aol.com"));
    assert!(get(&root, &other, "message_expiration").is_none());
    let found = eval(&root, &other, "message_expiration").expect("from the top level");
    assert_eq!(found.value, Value::Scalar("86400".into()));
    assert!(matches!(found.source, Source::Set { ref path, .. } if path.is_empty()));
    // Not set anywhere: the default of the innermost kind that knows it.
    let listen = split_path(&root, &words("Control_Listener Listen /tmp/2025"));
    let found = eval(&root, &listen, "concurrency").expect("a default");
    assert_eq!((found.name.as_str(), found.value.clone(), found.source), ("Concurrency", Value::Scalar("64".into()), Source::Default));
    let cluster = split_path(&root, &words("cluster"));
    assert_eq!(eval(&root, &cluster, "DURAVIP_ACTUATOR").expect("default").value, Value::Scalar("none".into()));
    assert_eq!(eval(&root, &cluster, "duravip_policy").expect("set").value, Value::Scalar("majority".into()));
    assert!(eval(&root, &cluster, "no_such_option").is_none());
}

#[test]
fn set_creates_scopes_replaces_the_winning_value_and_echoes_canonical_case() {
    let mut root = parse("broadcast_timeout = 10\nbroadcast_timeout = 20\n");
    let span = Span::new(std::sync::Arc::new("<console>".into()), 1, 1);
    assert_eq!(set(&mut root, &[], "BROADCAST_TIMEOUT", Value::Scalar("40".into()), &span), "Broadcast_Timeout");
    assert_eq!(root.options.len(), 2);
    assert_eq!(root.option("broadcast_timeout").expect("set").value, Value::Scalar("40".into()));
    let path = split_path(&root, &words("esmtp_listener Peer 127.0.0.1"));
    assert_eq!(set(&mut root, &path, "Pathway", Value::Scalar("foo".into()), &span), "Pathway");
    let peer = resolve(&root, &path).expect("created");
    assert_eq!(peer.describe(), "Peer \"127.0.0.1\"");
    assert_eq!(root.scopes[0].kind, "ESMTP_Listener");
}

#[test]
fn unset_removes_options_or_whole_scopes_but_never_the_top_level() {
    let mut root = parse(SAMPLE);
    let domain = split_path(&root, &words("domain earthlink.net"));
    assert_eq!(unset_option(&mut root, &domain, "MESSAGE_EXPIRATION"), 1);
    assert_eq!(unset_option(&mut root, &domain, "message_expiration"), 0);
    let esmtp = split_path(&root, &words("ESMTP_Listener"));
    assert_eq!(unset_scope(&mut root, &esmtp), Some(Removed { options: 2, scopes: 3 }));
    assert!(resolve(&root, &esmtp).is_none());
    assert_eq!(unset_scope(&mut root, &esmtp), None);
    assert_eq!(unset_scope(&mut root, &[]), None);
}

#[test]
fn locate_prints_scope_paths_with_colons_escaped() {
    let root = parse(SAMPLE);
    let found = locate(&root, "listen", None);
    let shown: Vec<String> = found.iter().map(|l| format!("{} @ {}", l.heading, l.path)).collect();
    assert_eq!(
        shown,
        [
            "Listen \":25\" @ ESMTP_Listener::Listen:\\:25:",
            "Listen \"127.0.0.1:2025\" @ Control_Listener::Listen:127.0.0.1\\:2025:",
            "Listen \"/tmp/2025\" @ Control_Listener::Listen:/tmp/2025:",
        ]
    );
    let re = regex::Regex::new("2025$").expect("regex");
    assert_eq!(locate(&root, "Listen", Some(&re)).len(), 2);
    assert_eq!(locate(&root, "QueryGroups", None)[0].path, "auth_ds::Scheme:ecauth:QueryGroups::");
}

#[test]
fn assignments_use_momentums_layout() {
    assert_eq!(assignment("Message_Expiration", &Value::Scalar("900".into()), "        "), "        Message_Expiration = 900\n");
    assert_eq!(
        assignment("Relay_Hosts", &Value::List(vec!["10.0.0.1".into(), "10.0.0.2".into()]), ""),
        "Relay_Hosts = (\n  10.0.0.1\n  10.0.0.2\n  )\n"
    );
    assert_eq!(assignment("x", &Value::Scalar("a b".into()), ""), "x = \"a b\"\n");
    assert_eq!(inline_value(&Value::List(vec!["a".into(), "b c".into()])), "( a \"b c\" )");
    let root = parse(SAMPLE);
    let esmtp = resolve(&root, &split_path(&root, &words("ESMTP_Listener"))).expect("scope");
    assert_eq!(show(esmtp), "Listen \":25\" { ... }\nPeer \"127.0.0.1\" { ... }\n");
}

#[test]
fn values_parse_from_console_words() {
    let v = |text: &str| parse_value(&words(text));
    assert_eq!(v("foo"), Ok(Value::Scalar("foo".into())));
    assert_eq!(v("( a b )"), Ok(Value::List(vec!["a".into(), "b".into()])));
    assert_eq!(v("(a b)"), Ok(Value::List(vec!["a".into(), "b".into()])));
    assert_eq!(v("()"), Ok(Value::List(vec![])));
    assert_eq!(v("[ k = v x y ]"), Ok(Value::Dict(vec![("k".into(), "v".into()), ("x".into(), "y".into())])));
    assert_eq!(v(""), Err(ValueError::Missing));
    assert!(matches!(v("a b"), Err(ValueError::Unquoted(_))));
    assert!(matches!(v("( a ( b ) )"), Err(ValueError::Brackets(_))));
    assert!(matches!(v("[ k ]"), Err(ValueError::Entry(_))));
    // A quoted word with spaces is one value.
    assert_eq!(parse_value(&["a b".to_owned()]), Ok(Value::Scalar("a b".into())));
}
