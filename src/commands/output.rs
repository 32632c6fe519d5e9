//! Output formats of console replies: text as Momentum prints it, XML, and JSON. Only
//! formatting here; the data comes from the caller.

use std::fmt::Write;
use std::time::Instant;

use eccluster_proto::membership::MemberView;
use eccluster_proto::Role;
use serde_json::{json, Value};

/// Escapes text for XML element content and attribute values.
pub fn xml_escape(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&apos;"),
            c => out.push(c),
        }
    }
    out
}

/// `text` on one line: every control character, line breaks and tabs included, written as
/// `\xNN` (C1 controls as `\u{NN}`), the notation the console client uses for what it prints.
pub fn single_line(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        match c {
            c if c.is_control() && (c as u32) < 0x80 => {
                let _ = write!(out, "\\x{:02x}", c as u32);
            }
            c if c.is_control() => {
                let _ = write!(out, "\\u{{{:x}}}", c as u32);
            }
            c => out.push(c),
        }
    }
    out
}

/// The Spread-style private name Momentum prints for a member: `#ec0-<incarnation>#<name>`.
pub fn private_name(m: &MemberView) -> String {
    format!("#ec0-{}#{}", m.id.incarnation, m.id.name)
}

/// The groups a member belongs to, as Momentum lists them.
pub fn groups(m: &MemberView) -> Vec<String> {
    match m.id.role {
        Role::Node => vec![
            "ec_console".to_owned(),
            format!("ec_sc_{}", m.id.subcluster),
            "ec_cluster".to_owned(),
        ],
        Role::Manager => vec!["ec_cluster".to_owned()],
    }
}

fn node_type(role: Role) -> &'static str {
    match role {
        Role::Node => "Momentum",
        Role::Manager => "Manager",
    }
}

fn since_secs(m: &MemberView, now: Instant) -> Option<u64> {
    m.since.map(|s| now.saturating_duration_since(s).as_secs())
}

/// `cluster membership` / `show cluster membership` as text: one record per member,
/// separated by a blank line.
pub fn membership_text(members: &[MemberView], now: Instant) -> String {
    let mut out = String::new();
    for (i, m) in members.iter().enumerate() {
        if i > 0 {
            out.push('\n');
        }
        let _ = writeln!(out, "Private Name: {}", private_name(m));
        let _ = writeln!(out, "Node Name: {}", m.id.name);
        let _ = writeln!(out, "Subcluster: {}", m.id.subcluster);
        let _ = writeln!(out, "Node Type: {}", node_type(m.id.role));
        let _ = writeln!(out, "Address: {}", m.id.addr);
        let state = match since_secs(m, now) {
            Some(s) => format!("{} for {s} seconds", m.state.as_str()),
            None => m.state.as_str().to_owned(),
        };
        let _ = writeln!(out, "State: {state}");
        let _ = writeln!(out, "Groups: {}", groups(m).join(", "));
    }
    out
}

/// Membership as XML: `<ClusterMembership>` with one `<Member>` per member.
pub fn membership_xml(members: &[MemberView], now: Instant) -> String {
    let mut out = String::from("<ClusterMembership>\n");
    for m in members {
        out.push_str("  <Member>\n");
        let mut field = |tag: &str, v: &str| {
            let _ = writeln!(out, "    <{tag}>{}</{tag}>", xml_escape(v));
        };
        field("PrivateName", &private_name(m));
        field("NodeName", &m.id.name);
        field("Subcluster", &m.id.subcluster);
        field("NodeType", node_type(m.id.role));
        field("Role", m.id.role.as_str());
        field("Address", &m.id.addr.to_string());
        field("State", m.state.as_str());
        field("Incarnation", &m.id.incarnation.to_string());
        if let Some(s) = since_secs(m, now) {
            field("StateSeconds", &s.to_string());
        }
        out.push_str("    <Groups>\n");
        for g in groups(m) {
            let _ = writeln!(out, "      <Group>{}</Group>", xml_escape(&g));
        }
        out.push_str("    </Groups>\n  </Member>\n");
    }
    out.push_str("</ClusterMembership>\n");
    out
}

/// Membership as a JSON array of objects.
pub fn membership_json(members: &[MemberView], now: Instant) -> String {
    let rows: Vec<Value> = members
        .iter()
        .map(|m| {
            json!({
                "name": m.id.name,
                "subcluster": m.id.subcluster,
                "role": m.id.role.as_str(),
                "address": m.id.addr.to_string(),
                "state": m.state.as_str(),
                "incarnation": m.id.incarnation,
                "private_name": private_name(m),
                "groups": groups(m),
                "local": m.local,
                "state_seconds": since_secs(m, now),
            })
        })
        .collect();
    pretty(&Value::Array(rows))
}

/// A list of `Key: value` lines in the three formats. XML tags drop the spaces of the key;
/// JSON keys are lowercase with underscores.
pub fn fields(root: &str, items: &[(&str, String)], format: crate::console::request::Format) -> String {
    use crate::console::request::Format;
    match format {
        Format::Text => items.iter().map(|(k, v)| format!("{k}: {v}\n")).collect(),
        Format::Xml => {
            let mut out = format!("<{root}>\n");
            for (k, v) in items {
                let tag: String = k.chars().filter(|c| c.is_ascii_alphanumeric()).collect();
                let _ = writeln!(out, "  <{tag}>{}</{tag}>", xml_escape(v));
            }
            let _ = writeln!(out, "</{root}>");
            out
        }
        Format::Json => {
            let mut obj = serde_json::Map::new();
            for (k, v) in items {
                obj.insert(k.to_ascii_lowercase().replace(' ', "_"), Value::String(v.clone()));
            }
            pretty(&Value::Object(obj))
        }
    }
}

/// Pretty JSON with a trailing newline.
pub fn pretty(v: &Value) -> String {
    let mut s = serde_json::to_string_pretty(v).unwrap_or_else(|e| format!("\"json error: {e}\""));
    s.push('\n');
    s
}

#[cfg(test)]
mod tests {
    use super::*;
    use eccluster_proto::membership::MemberState;
    use eccluster_proto::MemberId;

    fn row(name: &str, role: Role) -> MemberView {
        MemberView {
            id: MemberId {
                name: name.into(),
                addr: "127.0.1.11:4803".parse().expect("addr"),
                role,
                subcluster: "east".into(),
                incarnation: 7,
            },
            state: MemberState::Up,
            since: None,
            local: false,
        }
    }

    #[test]
    fn text_matches_the_momentum_layout() {
        let now = Instant::now();
        let text = membership_text(&[row("east1", Role::Node), row("mgr", Role::Manager)], now);
        assert_eq!(
            text,
            "Private Name: #ec0-7#east1\nNode Name: east1\nSubcluster: east\nNode Type: Momentum\n\
             Address: 127.0.1.11:4803\nState: up\nGroups: ec_console, ec_sc_east, ec_cluster\n\n\
             Private Name: #ec0-7#mgr\nNode Name: mgr\nSubcluster: east\nNode Type: Manager\n\
             Address: 127.0.1.11:4803\nState: up\nGroups: ec_cluster\n"
        );
    }

    #[test]
    fn single_line_escapes_every_control_character() {
        assert_eq!(single_line("a\nb\tc\r\x1b[0m\u{85}é"), "a\\x0ab\\x09c\\x0d\\x1b[0m\\u{85}é");
        assert_eq!(single_line("plain text"), "plain text");
    }

    #[test]
    fn json_and_xml_carry_the_contract_fields() {
        let now = Instant::now();
        let v: Value = serde_json::from_str(&membership_json(&[row("east1", Role::Node)], now)).expect("json");
        assert_eq!(v[0]["name"], "east1");
        assert_eq!(v[0]["role"], "node");
        assert_eq!(v[0]["state"], "up");
        assert_eq!(v[0]["subcluster"], "east");
        assert_eq!(v[0]["address"], "127.0.1.11:4803");
        let x = membership_xml(&[row("a<b", Role::Node)], now);
        assert!(x.contains("<NodeName>a&lt;b</NodeName>"), "{x}");
    }
}
