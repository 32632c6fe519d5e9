//! The answers of the `config` command as text (Momentum's layout), XML and JSON. Only
//! formatting here.
//!
//! Text follows Momentum's samples: `Name = value` with the option in canonical case,
//! values of a scope indented by eight spaces, lists one item a line:
//!
//! ```text
//! Message_Expiration = 86400
//!         Message_Expiration = 900
//! "Message_Expiration" has been unset. Effective value is now:
//!         Message_Expiration = 86400
//! Option 'Blackhole' is not set in scope ''.
//! Listen ":25"
//!   is at ESMTP_Listener::Listen:\:25:
//! ```
//!
//! XML and JSON carry the same facts, plus where each value came from (`file:line:column`,
//! `console` or `default`). Notes (settings that wait for a restart, warnings) follow the
//! answer: one `Note:` line each in text, `<Note>` elements in XML, a `notes` array in JSON.

use std::fmt::Write as _;

use serde_json::{json, Map, Value as Json};

use super::CONSOLE_ORIGIN;
use crate::commands::output::{pretty, xml_escape};
use crate::config::edit::{self, Found, Located, Removed, ScopePath, Source};
use crate::config::{render, Scope, Value};
use crate::console::request::Format;

/// The answer to a `config` command, as data.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Answer {
    /// `get`, `eval`, `set`, `show OPTION`: a value.
    Value {
        /// The scope asked about.
        path: ScopePath,
        /// The value and where it came from.
        found: Found,
    },
    /// `get` of an option the scope does not set.
    NotSet {
        /// The option, canonical spelling.
        name: String,
        /// The scope.
        path: ScopePath,
    },
    /// `unset` of an option, and what is in effect now.
    Unset {
        /// The option, canonical spelling.
        name: String,
        /// The scope.
        path: ScopePath,
        /// What `eval` gives now.
        effective: Option<Found>,
    },
    /// `unset` of a scope.
    ScopeUnset {
        /// The scope.
        path: ScopePath,
        /// What went with it.
        removed: Removed,
    },
    /// `show` of a scope: child scopes collapsed, then options.
    Show {
        /// The scope.
        path: ScopePath,
        /// Its contents.
        scope: Scope,
    },
    /// `showrecurse`: the whole scope.
    Tree {
        /// The scope.
        path: ScopePath,
        /// Its contents.
        scope: Scope,
    },
    /// `locate`.
    Located(Vec<Located>),
    /// `replay`: the commands of the open transaction.
    Replay(Vec<String>),
    /// `begin`, `commit`, `rollback`, `reload`, `writeback`.
    Message(String),
}

/// Where a value came from, for XML and JSON.
fn source_text(source: &Source) -> String {
    match source {
        Source::Set { span, .. } if span.file.as_os_str() == CONSOLE_ORIGIN => "console".to_owned(),
        Source::Set { span, .. } => span.to_string(),
        Source::Default => "default".to_owned(),
    }
}

/// The answer in `format`, with `notes` after it.
pub fn render_answer(answer: &Answer, notes: &[String], format: Format) -> String {
    match format {
        Format::Text => {
            let mut out = text(answer);
            for note in notes {
                let _ = writeln!(out, "Note: {note}");
            }
            out
        }
        Format::Xml => xml(answer, notes),
        Format::Json => {
            let mut value = json_of(answer);
            if !notes.is_empty() {
                if let Json::Object(map) = &mut value {
                    map.insert("notes".to_owned(), json!(notes));
                } else {
                    value = json!({ "result": value, "notes": notes });
                }
            }
            pretty(&value)
        }
    }
}

fn text(answer: &Answer) -> String {
    match answer {
        Answer::Value { path, found } => edit::assignment(&found.name, &found.value, edit::indent_for(path)),
        Answer::NotSet { name, path } => format!("Option '{name}' is not set in scope '{}'.\n", edit::describe(path)),
        Answer::Unset { name, path, effective } => match effective {
            Some(found) => format!(
                "\"{name}\" has been unset. Effective value is now:\n{}",
                edit::assignment(&found.name, &found.value, edit::indent_for(path))
            ),
            None => format!("\"{name}\" has been unset. It has no effective value now (no enclosing scope sets it, no default).\n"),
        },
        Answer::ScopeUnset { path, removed } => format!(
            "Scope '{}' has been unset ({} option(s), {} scope(s) removed).\n",
            edit::describe(path),
            removed.options,
            removed.scopes
        ),
        Answer::Show { scope, .. } => edit::show(scope),
        Answer::Tree { scope, .. } => render(scope),
        Answer::Located(found) => {
            let mut out = String::new();
            for l in found {
                let _ = writeln!(out, "{}\n  is at {}", l.heading, l.path);
            }
            out
        }
        Answer::Replay(lines) => lines.iter().map(|l| format!("{l}\n")).collect(),
        Answer::Message(message) => format!("{message}\n"),
    }
}

fn json_value(value: &Value) -> Json {
    match value {
        Value::Scalar(text) => json!(text),
        Value::List(items) => json!(items),
        Value::Dict(entries) => Json::Array(entries.iter().map(|(k, v)| json!({ "key": k, "value": v })).collect()),
    }
}

fn json_found(found: &Found) -> Json {
    json!({ "option": found.name, "value": json_value(&found.value), "source": source_text(&found.source) })
}

fn json_scope(scope: &Scope, deep: bool) -> Json {
    let options: Vec<Json> = scope
        .options
        .iter()
        .map(|o| {
            json!({ "name": o.name, "value": json_value(&o.value), "source": option_source(&o.span) })
        })
        .collect();
    let scopes: Vec<Json> = scope
        .scopes
        .iter()
        .map(|s| if deep { json_scope(s, true) } else { json!({ "kind": s.kind, "name": s.name }) })
        .collect();
    let mut map = Map::new();
    if !scope.kind.is_empty() {
        map.insert("kind".to_owned(), json!(scope.kind));
        map.insert("name".to_owned(), json!(scope.name));
    }
    map.insert("options".to_owned(), Json::Array(options));
    map.insert("scopes".to_owned(), Json::Array(scopes));
    Json::Object(map)
}

fn json_of(answer: &Answer) -> Json {
    match answer {
        Answer::Value { path, found } => {
            let mut value = json_found(found);
            value["scope"] = json!(edit::describe(path));
            value
        }
        Answer::NotSet { name, path } => json!({ "option": name, "scope": edit::describe(path), "set": false }),
        Answer::Unset { name, path, effective } => json!({
            "unset": name,
            "scope": edit::describe(path),
            "effective": effective.as_ref().map(json_found),
        }),
        Answer::ScopeUnset { path, removed } => {
            json!({ "unset_scope": edit::describe(path), "options": removed.options, "scopes": removed.scopes })
        }
        Answer::Show { path, scope } => {
            let mut value = json_scope(scope, false);
            value["scope"] = json!(edit::describe(path));
            value
        }
        Answer::Tree { path, scope } => {
            let mut value = json_scope(scope, true);
            value["scope"] = json!(edit::describe(path));
            value
        }
        Answer::Located(found) => Json::Array(found.iter().map(|l| json!({ "scope": l.heading, "path": l.path })).collect()),
        Answer::Replay(lines) => json!({ "commands": lines }),
        Answer::Message(message) => json!({ "result": message }),
    }
}

/// Appends an XML element for a value: `<Value>x</Value>`, `<Value><Item>a</Item>...</Value>`,
/// `<Value><Entry key="k">v</Entry>...</Value>`.
fn xml_value(out: &mut String, value: &Value, indent: &str) {
    match value {
        Value::Scalar(text) => {
            let _ = writeln!(out, "{indent}<Value>{}</Value>", xml_escape(text));
        }
        Value::List(items) => {
            let _ = writeln!(out, "{indent}<Value>");
            for item in items {
                let _ = writeln!(out, "{indent}  <Item>{}</Item>", xml_escape(item));
            }
            let _ = writeln!(out, "{indent}</Value>");
        }
        Value::Dict(entries) => {
            let _ = writeln!(out, "{indent}<Value>");
            for (key, item) in entries {
                let _ = writeln!(out, "{indent}  <Entry key=\"{}\">{}</Entry>", xml_escape(key), xml_escape(item));
            }
            let _ = writeln!(out, "{indent}</Value>");
        }
    }
}

fn xml_option(out: &mut String, tag: &str, name: &str, value: &Value, source: &str, indent: &str) {
    let _ = writeln!(out, "{indent}<{tag} name=\"{}\" source=\"{}\">", xml_escape(name), xml_escape(source));
    xml_value(out, value, &format!("{indent}  "));
    let _ = writeln!(out, "{indent}</{tag}>");
}

fn xml_found(out: &mut String, tag: &str, found: &Found, indent: &str) {
    xml_option(out, tag, &found.name, &found.value, &source_text(&found.source), indent);
}

fn option_source(span: &crate::config::Span) -> String {
    if span.file.as_os_str() == CONSOLE_ORIGIN {
        "console".to_owned()
    } else {
        span.to_string()
    }
}

fn xml_scope(out: &mut String, scope: &Scope, deep: bool, indent: &str) {
    for option in &scope.options {
        xml_option(out, "Option", &option.name, &option.value, &option_source(&option.span), indent);
    }
    for child in &scope.scopes {
        let name = child.name.as_deref().map(|n| format!(" name=\"{}\"", xml_escape(n))).unwrap_or_default();
        if deep && (!child.options.is_empty() || !child.scopes.is_empty()) {
            let _ = writeln!(out, "{indent}<Scope kind=\"{}\"{name}>", xml_escape(&child.kind));
            xml_scope(out, child, true, &format!("{indent}  "));
            let _ = writeln!(out, "{indent}</Scope>");
        } else {
            let _ = writeln!(out, "{indent}<Scope kind=\"{}\"{name}/>", xml_escape(&child.kind));
        }
    }
}

fn xml(answer: &Answer, notes: &[String]) -> String {
    let mut out = String::new();
    let (root, attrs) = match answer {
        Answer::Value { path, .. } | Answer::NotSet { path, .. } => ("ConfigGet", format!(" scope=\"{}\"", xml_escape(&edit::describe(path)))),
        Answer::Unset { name, path, .. } => (
            "ConfigUnset",
            format!(" name=\"{}\" scope=\"{}\"", xml_escape(name), xml_escape(&edit::describe(path))),
        ),
        Answer::ScopeUnset { path, removed } => (
            "ConfigUnset",
            format!(
                " scope=\"{}\" options=\"{}\" scopes=\"{}\"",
                xml_escape(&edit::describe(path)),
                removed.options,
                removed.scopes
            ),
        ),
        Answer::Show { path, .. } => ("ConfigShow", format!(" scope=\"{}\"", xml_escape(&edit::describe(path)))),
        Answer::Tree { path, .. } => ("ConfigShowRecurse", format!(" scope=\"{}\"", xml_escape(&edit::describe(path)))),
        Answer::Located(_) => ("ConfigLocate", String::new()),
        Answer::Replay(_) => ("ConfigReplay", String::new()),
        Answer::Message(_) => ("ConfigResult", String::new()),
    };
    let _ = writeln!(out, "<{root}{attrs}>");
    match answer {
        Answer::Value { found, .. } => xml_found(&mut out, "Option", found, "  "),
        Answer::NotSet { name, .. } => {
            let _ = writeln!(out, "  <Option name=\"{}\" set=\"false\"/>", xml_escape(name));
        }
        Answer::Unset { effective: Some(found), .. } => xml_found(&mut out, "Effective", found, "  "),
        Answer::Unset { effective: None, .. } | Answer::ScopeUnset { .. } => {}
        Answer::Show { scope, .. } => xml_scope(&mut out, scope, false, "  "),
        Answer::Tree { scope, .. } => xml_scope(&mut out, scope, true, "  "),
        Answer::Located(found) => {
            for l in found {
                let _ = writeln!(out, "  <Scope name=\"{}\" path=\"{}\"/>", xml_escape(&l.heading), xml_escape(&l.path));
            }
        }
        Answer::Replay(lines) => {
            for line in lines {
                let _ = writeln!(out, "  <Command>{}</Command>", xml_escape(line));
            }
        }
        Answer::Message(message) => {
            let _ = writeln!(out, "  <Message>{}</Message>", xml_escape(message));
        }
    }
    for note in notes {
        let _ = writeln!(out, "  <Note>{}</Note>", xml_escape(note));
    }
    let _ = writeln!(out, "</{root}>");
    out
}

#[cfg(test)]
mod tests;
