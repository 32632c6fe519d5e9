//! Prints a [`Scope`] tree back in configuration syntax (for `config showrecurse` and for
//! writing configuration files), such that parsing the output gives the same tree.
//!
//! Owns only formatting and quoting; no I/O here. Includes are not reconstructed: included
//! items are printed inline where they were spliced.

use super::lexer::is_bare_char;
use super::tree::{Scope, Value};

/// Indentation per nesting level.
const INDENT: &str = "  ";

/// The configuration text of `scope`: its options, then its child scopes, two spaces per level.
///
/// For the whole file (kind `""`) only the contents are printed; for any other scope the
/// `Kind "name" { ... }` block itself is printed. Instance names are always quoted; values are
/// quoted only when they could not be read back unquoted.
pub fn render(scope: &Scope) -> String {
    let mut out = String::new();
    if scope.kind.is_empty() {
        write_body(&mut out, scope, 0);
    } else {
        write_scope(&mut out, scope, 0);
    }
    out
}

fn write_indent(out: &mut String, level: usize) {
    for _ in 0..level {
        out.push_str(INDENT);
    }
}

fn write_body(out: &mut String, scope: &Scope, level: usize) {
    for option in &scope.options {
        write_indent(out, level);
        out.push_str(&option.name);
        out.push_str(" = ");
        write_value(out, &option.value, level);
        out.push('\n');
    }
    for child in &scope.scopes {
        write_scope(out, child, level);
    }
}

fn write_scope(out: &mut String, scope: &Scope, level: usize) {
    write_indent(out, level);
    out.push_str(&scope.kind);
    if let Some(name) = &scope.name {
        out.push(' ');
        write_quoted(out, name);
    }
    out.push_str(" {\n");
    write_body(out, scope, level + 1);
    write_indent(out, level);
    out.push_str("}\n");
}

/// Appends `value` as written after `Name = `; lists and dictionaries put one item per line,
/// indented one level deeper than `level`, with the closing bracket at `level`.
pub(crate) fn write_value(out: &mut String, value: &Value, level: usize) {
    match value {
        Value::Scalar(text) => write_word(out, text),
        Value::List(items) if items.is_empty() => out.push_str("( )"),
        Value::List(items) => {
            out.push_str("(\n");
            for item in items {
                write_indent(out, level + 1);
                write_word(out, item);
                out.push('\n');
            }
            write_indent(out, level);
            out.push(')');
        }
        Value::Dict(entries) if entries.is_empty() => out.push_str("[ ]"),
        Value::Dict(entries) => {
            out.push_str("[\n");
            for (key, item) in entries {
                write_indent(out, level + 1);
                write_word(out, key);
                out.push_str(" = ");
                write_word(out, item);
                out.push('\n');
            }
            write_indent(out, level);
            out.push(']');
        }
    }
}

/// True when `text` reads back as the same single bare word.
fn is_bare_word(text: &str) -> bool {
    !text.is_empty() && text.chars().all(is_bare_char) && !text.contains("/*")
}

/// Appends `text` unquoted when that reads back the same, quoted otherwise.
pub(crate) fn write_word(out: &mut String, text: &str) {
    if is_bare_word(text) {
        out.push_str(text);
    } else {
        write_quoted(out, text);
    }
}

/// Appends `text` in double quotes, escaping `"` and `\`.
fn write_quoted(out: &mut String, text: &str) {
    out.push('"');
    for ch in text.chars() {
        if ch == '"' || ch == '\\' {
            out.push('\\');
        }
        out.push(ch);
    }
    out.push('"');
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;
    use crate::config::parse_str;
    use std::path::Path;

    fn parse(text: &str) -> Scope {
        parse_str(text, Path::new("test.conf")).unwrap()
    }

    const VARIED: &str = r##"
# a comment
Suspend_Delivery enabled
Path = "C:\dir\file"
Quote = "say \"hi\" \\ bye"
Empty = ""
Odd = "a/*b"
Hash = "#1"
Relay_Hosts ( 10.0.0.1 "10.0.0.2 x" )
None = ()
logs = [ rejectlog = "/var/log/ecelerity/rejectlog" "key with space" = v ]
NoDict = []
ESMTP_Listener {
  Listen ":25" { Enable_Duravip = true }
  Listen /tmp/2025 { }
  Port = 25
  Deep { Deeper "x\"y" { v = 1 } }
}
Domain yahoo.com { Max_Outbound_Connections = 4 }
"##;

    #[test]
    fn render_then_parse_gives_the_same_tree() {
        let first = parse(VARIED);
        let text = render(&first);
        let second = parse(&text);
        assert!(first.same_content(&second), "rendered:\n{text}");
        assert_eq!(render(&second), text);
    }

    #[test]
    fn render_uses_config_file_layout() {
        let root = parse("b = \"x y\"\nL ( 1 2 )\nS \"n\" { a = 1 T { } }\nD [ k = v ]\n");
        assert_eq!(
            render(&root),
            "b = \"x y\"\nL = (\n  1\n  2\n)\nD = [\n  k = v\n]\nS \"n\" {\n  a = 1\n  T {\n  }\n}\n"
        );
    }

    #[test]
    fn render_of_a_child_scope_prints_its_block() {
        let root = parse("Control_Listener { Listen \"/tmp/2025\" { File_Mode = 0666 } }");
        let listener = root.scope("control_listener", None).unwrap();
        assert_eq!(
            render(listener),
            "Control_Listener {\n  Listen \"/tmp/2025\" {\n    File_Mode = 0666\n  }\n}\n"
        );
        let reparsed = parse(&render(listener));
        assert!(reparsed.scopes[0].same_content(listener));
    }

    #[test]
    fn values_are_quoted_only_when_needed() {
        let mut out = String::new();
        for text in [
            "plain",
            "/tmp/2025",
            "10.1.1.0/24",
            "a b",
            "",
            "x=y",
            "a/*",
            "it's",
            "back\\slash",
        ] {
            write_word(&mut out, text);
            out.push('|');
        }
        assert_eq!(
            out,
            "plain|/tmp/2025|10.1.1.0/24|\"a b\"|\"\"|\"x=y\"|\"a/*\"|\"it's\"|back\\slash|"
        );
    }

    #[test]
    fn value_display_uses_config_syntax() {
        assert_eq!(Value::Scalar("a b".into()).to_string(), "\"a b\"");
        assert_eq!(Value::List(vec!["x".into()]).to_string(), "(\n  x\n)");
    }
}
