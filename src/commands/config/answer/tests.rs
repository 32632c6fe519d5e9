use super::*;
use crate::config::edit::Step;
use crate::config::Span;
use std::path::PathBuf;
use std::sync::Arc;

fn found(name: &str, value: Value) -> Found {
    Found { name: name.into(), value, source: Source::Set { path: vec![], span: Span::new(Arc::new(PathBuf::from("n.conf")), 3, 5) } }
}

fn domain() -> ScopePath {
    vec![Step { kind: "Domain".into(), name: Some("earthlink.net".into()) }]
}

#[test]
fn text_follows_momentums_samples() {
    let get = Answer::Value { path: domain(), found: found("Message_Expiration", Value::Scalar("900".into())) };
    assert_eq!(render_answer(&get, &[], Format::Text), "        Message_Expiration = 900\n");
    let unset = Answer::Unset {
        name: "Message_Expiration".into(),
        path: domain(),
        effective: Some(found("Message_Expiration", Value::Scalar("86400".into()))),
    };
    assert_eq!(
        render_answer(&unset, &[], Format::Text),
        "\"Message_Expiration\" has been unset. Effective value is now:\n        Message_Expiration = 86400\n"
    );
    let not_set = Answer::NotSet { name: "Blackhole".into(), path: vec![] };
    assert_eq!(render_answer(&not_set, &[], Format::Text), "Option 'Blackhole' is not set in scope ''.\n");
    let located = Answer::Located(vec![Located { heading: "Listen \":25\"".into(), path: "ESMTP_Listener::Listen:\\:25:".into() }]);
    assert_eq!(render_answer(&located, &["x".into()], Format::Text), "Listen \":25\"\n  is at ESMTP_Listener::Listen:\\:25:\nNote: x\n");
}

#[test]
fn xml_and_json_carry_the_value_its_scope_and_source() {
    let get = Answer::Value { path: domain(), found: found("Relay_Hosts", Value::List(vec!["a".into(), "b<".into()])) };
    let xml = render_answer(&get, &["restart".into()], Format::Xml);
    assert_eq!(
        xml,
        "<ConfigGet scope=\"Domain earthlink.net\">\n  <Option name=\"Relay_Hosts\" source=\"n.conf:3:5\">\n    <Value>\n      \
         <Item>a</Item>\n      <Item>b&lt;</Item>\n    </Value>\n  </Option>\n  <Note>restart</Note>\n</ConfigGet>\n"
    );
    let json: serde_json::Value = serde_json::from_str(&render_answer(&get, &["restart".into()], Format::Json)).expect("json");
    assert_eq!(json["option"], "Relay_Hosts");
    assert_eq!(json["scope"], "Domain earthlink.net");
    assert_eq!(json["value"][1], "b<");
    assert_eq!(json["source"], "n.conf:3:5");
    assert_eq!(json["notes"][0], "restart");
    let message: serde_json::Value = serde_json::from_str(&render_answer(&Answer::Message("OK".into()), &[], Format::Json)).expect("json");
    assert_eq!(message["result"], "OK");
}
