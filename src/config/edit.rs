//! Lookups and edits of a configuration tree for the `config` console command: scope paths
//! typed at the console (`ESMTP_Listener Listen ":25"`), `get`, `eval` with its fallback to
//! more generic scopes and to the default, `set` (creating scopes as needed), `unset` of an
//! option or of a whole scope, `show`, `locate` paths, and the Momentum layout of a value
//! echoed at the console.
//!
//! Pure functions on [`Scope`] trees; no I/O here (writing back to files is `writeback.rs`).
//!
//! # Scope paths
//! A path is a sequence of anonymous scope kinds and `Kind instance` pairs. Which words are
//! instance names is decided, step by step, by the tree first (a child `Kind "word"` that
//! exists, else an anonymous `Kind` that exists), then by what eccluster knows of the kind
//! ([`known::scope_shape`]); a kind nobody knows takes the next word as its instance when
//! there is one (`smtp_cbv foo`), as Momentum's module instances do.

use std::fmt::Write as _;

use super::known::{self, ScopeShape};
use super::render::{write_value, write_word};
use super::tree::{ConfigOption, Scope, Span, Value};

/// One step of a scope path: a kind and, for named scopes, the instance name.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
pub struct Step {
    /// The scope kind (compared ignoring ASCII case).
    pub kind: String,
    /// The instance name (compared exactly), `None` for an anonymous scope.
    pub name: Option<String>,
}

/// A path from the top level to a scope; empty for the top level itself.
pub type ScopePath = Vec<Step>;

/// Where a value `eval` found came from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Source {
    /// Set in the scope `path` (a prefix of the path asked about) at `span`.
    Set {
        /// The scope that sets it.
        path: ScopePath,
        /// Where it was written (a file, or the console).
        span: Span,
    },
    /// No scope sets it: eccluster's default.
    Default,
}

/// An option's value as the console shows it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Found {
    /// The option name in canonical spelling.
    pub name: String,
    /// Its value.
    pub value: Value,
    /// Where it came from.
    pub source: Source,
}

/// Splits scope-path words into a path, using `root` and the known scope shapes (see the
/// module documentation).
pub fn split_path(root: &Scope, words: &[String]) -> ScopePath {
    let mut path = Vec::new();
    let mut current = Some(root);
    let mut i = 0;
    while let Some(kind) = words.get(i) {
        let next = words.get(i + 1);
        let named = current.and_then(|s| next.and_then(|n| s.scope(kind, Some(n))));
        let anonymous = current.and_then(|s| s.scope(kind, None));
        let take_name = if named.is_some() {
            true
        } else if anonymous.is_some() {
            false
        } else {
            match known::scope_shape(kind) {
                ScopeShape::Anonymous => false,
                ScopeShape::Named | ScopeShape::Unknown => next.is_some(),
            }
        };
        let name = if take_name { next.cloned() } else { None };
        current = if take_name { named } else { anonymous };
        path.push(Step { kind: kind.clone(), name });
        i += if take_name { 2 } else { 1 };
    }
    path
}

/// The scope at `path` (when a step matches several scopes, the last one, like lookups).
pub fn resolve<'a>(root: &'a Scope, path: &[Step]) -> Option<&'a Scope> {
    path.iter().try_fold(root, |scope, step| scope.scope(&step.kind, step.name.as_deref()))
}

/// The scope at `path`, mutable.
fn resolve_mut<'a>(root: &'a mut Scope, path: &[Step]) -> Option<&'a mut Scope> {
    let mut scope = root;
    for step in path {
        scope = scope
            .scopes
            .iter_mut()
            .rev()
            .find(|s| s.kind.eq_ignore_ascii_case(&step.kind) && s.name.as_deref() == step.name.as_deref())?;
    }
    Some(scope)
}

/// The scope at `path`, created (with the kinds' canonical spelling and `span`) where missing.
fn ensure_mut<'a>(root: &'a mut Scope, path: &[Step], span: &Span) -> &'a mut Scope {
    let mut scope = root;
    for step in path {
        let found = scope
            .scopes
            .iter()
            .rposition(|s| s.kind.eq_ignore_ascii_case(&step.kind) && s.name.as_deref() == step.name.as_deref());
        let index = match found {
            Some(index) => index,
            None => {
                let kind = known::canonical_scope(&step.kind).unwrap_or(&step.kind);
                scope.scopes.push(Scope::new(kind, step.name.clone(), span.clone()));
                scope.scopes.len() - 1
            }
        };
        scope = &mut scope.scopes[index];
    }
    scope
}

/// The canonical spelling of option `name`: eccluster's, else as `scope` writes it, else as typed.
pub fn canonical_name(scope: Option<&Scope>, name: &str) -> String {
    known::canonical_option(name)
        .map(str::to_owned)
        .or_else(|| scope.and_then(|s| s.option(name)).map(|o| o.name.clone()))
        .unwrap_or_else(|| name.to_owned())
}

/// The kind in canonical spelling when eccluster knows it.
fn canonical_kind(kind: &str) -> &str {
    known::canonical_scope(kind).unwrap_or(kind)
}

/// How a path is named in messages: `Domain earthlink.net`, `` for the top level.
pub fn describe(path: &[Step]) -> String {
    let mut out = String::new();
    for step in path {
        if !out.is_empty() {
            out.push(' ');
        }
        out.push_str(canonical_kind(&step.kind));
        if let Some(name) = &step.name {
            out.push(' ');
            out.push_str(name);
        }
    }
    out
}

/// `config get`: the option as set in the scope at `path` itself (no fallback).
pub fn get(root: &Scope, path: &[Step], name: &str) -> Option<Found> {
    let scope = resolve(root, path)?;
    let option = scope.option(name)?;
    Some(Found {
        name: canonical_name(Some(scope), name),
        value: option.value.clone(),
        source: Source::Set { path: path.to_vec(), span: option.span.clone() },
    })
}

/// `config eval`: the option as set in the scope at `path`, else in the nearest enclosing
/// scope that sets it, else eccluster's default for it (looked up from the innermost scope
/// kind outwards); `None` when nothing sets it and eccluster has no default.
pub fn eval(root: &Scope, path: &[Step], name: &str) -> Option<Found> {
    for depth in (0..=path.len()).rev() {
        let prefix = &path[..depth];
        if let Some(found) = get(root, prefix, name) {
            return Some(found);
        }
    }
    let kinds = path.iter().rev().map(|s| s.kind.as_str()).chain(std::iter::once(""));
    for kind in kinds {
        if let Some(option) = known::option_in(kind, name) {
            let value = option.default?;
            return Some(Found { name: option.name.to_owned(), value: Value::Scalar(value.to_owned()), source: Source::Default });
        }
    }
    None
}

/// `config set`: sets option `name` of the scope at `path` (created where missing) to
/// `value`, replacing the value that wins today (earlier, shadowed settings stay). Returns the
/// name in canonical spelling.
pub fn set(root: &mut Scope, path: &[Step], name: &str, value: Value, span: &Span) -> String {
    let scope = ensure_mut(root, path, span);
    let canonical = canonical_name(Some(scope), name);
    match scope.options.iter_mut().rev().find(|o| o.name.eq_ignore_ascii_case(name)) {
        Some(option) => {
            option.name = canonical.clone();
            option.value = value;
            option.span = span.clone();
            option.readonly = false;
        }
        None => scope.options.push(ConfigOption { name: canonical.clone(), value, span: span.clone(), readonly: false }),
    }
    canonical
}

/// `config unset` of an option: removes every setting of `name` in the scope at `path`.
/// Returns how many there were (0: it was not set there).
pub fn unset_option(root: &mut Scope, path: &[Step], name: &str) -> usize {
    let Some(scope) = resolve_mut(root, path) else { return 0 };
    let before = scope.options.len();
    scope.options.retain(|o| !o.name.eq_ignore_ascii_case(name));
    before - scope.options.len()
}

/// What `config unset` of a scope removed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Removed {
    /// Options, subscopes' included.
    pub options: usize,
    /// Scopes, the unset ones and their subscopes.
    pub scopes: usize,
}

/// `config unset` of a scope: removes every scope matching the last step of `path` in its
/// parent, with their options and subscopes. `None` for the top level or a scope that does
/// not exist.
pub fn unset_scope(root: &mut Scope, path: &[Step]) -> Option<Removed> {
    let (last, parent_path) = path.split_last()?;
    let parent = resolve_mut(root, parent_path)?;
    let (gone, kept): (Vec<Scope>, Vec<Scope>) = std::mem::take(&mut parent.scopes)
        .into_iter()
        .partition(|s| s.kind.eq_ignore_ascii_case(&last.kind) && s.name.as_deref() == last.name.as_deref());
    parent.scopes = kept;
    if gone.is_empty() {
        return None;
    }
    let mut removed = Removed { options: 0, scopes: 0 };
    for scope in &gone {
        count(scope, &mut removed);
    }
    Some(removed)
}

fn count(scope: &Scope, removed: &mut Removed) {
    removed.scopes += 1;
    removed.options += scope.options.len();
    for child in &scope.scopes {
        count(child, removed);
    }
}

/// `Kind "name"` (or `Kind`) as `config show` and `config locate` head a scope.
pub fn scope_heading(kind: &str, name: Option<&str>) -> String {
    let mut out = canonical_kind(kind).to_owned();
    if let Some(name) = name {
        out.push(' ');
        out.push('"');
        out.push_str(&name.replace('\\', "\\\\").replace('"', "\\\""));
        out.push('"');
    }
    out
}

/// `config show` of a scope: its child scopes collapsed (`Listen ":25" { ... }`), then its
/// options, in configuration syntax.
pub fn show(scope: &Scope) -> String {
    let mut out = String::new();
    for child in &scope.scopes {
        let _ = writeln!(out, "{} {{ ... }}", scope_heading(&child.kind, child.name.as_deref()));
    }
    for option in &scope.options {
        out.push_str(&assignment(&option.name, &option.value, ""));
    }
    out
}

/// One `config locate` result: the scope as written, and its path.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Located {
    /// `Listen ":25"`.
    pub heading: String,
    /// `ESMTP_Listener::Listen:\:25:`.
    pub path: String,
}

/// `config locate KIND [REGEX]`: every scope of kind `kind`, anywhere in the tree, whose
/// instance name matches `filter` (anonymous scopes match as the empty name), in file order.
pub fn locate(root: &Scope, kind: &str, filter: Option<&regex::Regex>) -> Vec<Located> {
    let mut found = Vec::new();
    locate_in(root, kind, filter, &mut String::new(), &mut found);
    found
}

fn locate_in(scope: &Scope, kind: &str, filter: Option<&regex::Regex>, prefix: &mut String, found: &mut Vec<Located>) {
    for child in &scope.scopes {
        let before = prefix.len();
        prefix.push_str(canonical_kind(&child.kind));
        prefix.push(':');
        if let Some(name) = &child.name {
            prefix.push_str(&escape_locate(name));
        }
        prefix.push(':');
        let name = child.name.as_deref().unwrap_or("");
        if child.kind.eq_ignore_ascii_case(kind) && filter.is_none_or(|re| re.is_match(name)) {
            found.push(Located { heading: scope_heading(&child.kind, child.name.as_deref()), path: prefix.clone() });
        }
        locate_in(child, kind, filter, prefix, found);
        prefix.truncate(before);
    }
}

/// An instance name inside a locate path: `\` and `:` escaped with `\`.
fn escape_locate(name: &str) -> String {
    name.replace('\\', "\\\\").replace(':', "\\:")
}

/// The Momentum echo of an assignment: `Name = value`, each line after `indent`; lists and
/// dictionaries one item a line, two spaces deeper, the closing bracket there too:
///
/// ```text
/// Relay_Hosts = (
///   10.0.0.1
///   10.0.0.2
///   )
/// ```
pub fn assignment(name: &str, value: &Value, indent: &str) -> String {
    let mut out = format!("{indent}{name} = ");
    match value {
        Value::Scalar(text) => write_word(&mut out, text),
        Value::List(items) => {
            out.push_str("(\n");
            for item in items {
                out.push_str(indent);
                out.push_str("  ");
                write_word(&mut out, item);
                out.push('\n');
            }
            out.push_str(indent);
            out.push_str("  )");
        }
        Value::Dict(entries) => {
            out.push_str("[\n");
            for (key, item) in entries {
                out.push_str(indent);
                out.push_str("  ");
                write_word(&mut out, key);
                out.push_str(" = ");
                write_word(&mut out, item);
                out.push('\n');
            }
            out.push_str(indent);
            out.push_str("  ]");
        }
    }
    out.push('\n');
    out
}

/// The indentation of a value echoed for a scope: none at the top level, eight spaces in any
/// scope (Momentum's samples show one level; deeper scopes are not indented further, so the
/// column says "scoped", not how deep).
pub fn indent_for(path: &[Step]) -> &'static str {
    if path.is_empty() {
        ""
    } else {
        "        "
    }
}

/// A value in configuration syntax on one line where it fits (`( a b )`), for command
/// lines such as `config replay` and for messages.
pub fn inline_value(value: &Value) -> String {
    match value {
        Value::Scalar(_) => {
            let mut out = String::new();
            write_value(&mut out, value, 0);
            out
        }
        Value::List(items) => {
            let mut out = String::from("(");
            for item in items {
                out.push(' ');
                write_word(&mut out, item);
            }
            out.push_str(" )");
            out
        }
        Value::Dict(entries) => {
            let mut out = String::from("[");
            for (key, item) in entries {
                out.push(' ');
                write_word(&mut out, key);
                out.push_str(" = ");
                write_word(&mut out, item);
            }
            out.push_str(" ]");
            out
        }
    }
}

/// Why the words after the option name do not make a value.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ValueError {
    /// Nothing follows the option name.
    #[error("a value must follow the option name")]
    Missing,
    /// Several words that are not a list or dictionary.
    #[error("a value with spaces must be quoted (\"{0}\") or written as a list ( a b )")]
    Unquoted(String),
    /// A `(` without `)`, a `[` without `]`, or a bracket inside a list.
    #[error("{0}")]
    Brackets(&'static str),
    /// A dictionary entry without a value.
    #[error("dictionary entry '{0}' has no value: write [ key = value ... ]")]
    Entry(String),
}

/// The value typed after the option name: one word, `( a b )`, or `[ k = v ... ]`
/// (brackets may touch the words: `(a b)`).
pub fn parse_value(words: &[String]) -> Result<Value, ValueError> {
    match words {
        [] => return Err(ValueError::Missing),
        [one] if !one.starts_with('(') && !one.starts_with('[') => return Ok(Value::Scalar(one.clone())),
        _ => {}
    }
    let mut tokens: Vec<&str> = Vec::new();
    for word in words {
        let mut rest = word.as_str();
        while rest.len() > 1 && (rest.starts_with('(') || rest.starts_with('[')) {
            tokens.push(&rest[..1]);
            rest = &rest[1..];
        }
        let mut closing = Vec::new();
        while rest.len() > 1 && (rest.ends_with(')') || rest.ends_with(']')) {
            closing.push(&rest[rest.len() - 1..]);
            rest = &rest[..rest.len() - 1];
        }
        tokens.push(rest);
        tokens.extend(closing.into_iter().rev());
    }
    let is_bracket = |t: &str| matches!(t, "(" | ")" | "[" | "]");
    match (tokens.first().copied(), tokens.last().copied()) {
        (Some("("), Some(")")) if tokens.len() >= 2 => {
            let items = &tokens[1..tokens.len() - 1];
            if items.iter().any(|t| is_bracket(t)) {
                return Err(ValueError::Brackets("a list holds words only: ( a b c )"));
            }
            Ok(Value::List(items.iter().map(|t| (*t).to_owned()).collect()))
        }
        (Some("["), Some("]")) if tokens.len() >= 2 => {
            let mut items = tokens[1..tokens.len() - 1].iter().copied().peekable();
            let mut entries = Vec::new();
            while let Some(key) = items.next() {
                if is_bracket(key) || key == "=" {
                    return Err(ValueError::Brackets("a dictionary holds key = value pairs: [ k1 = v1 k2 = v2 ]"));
                }
                items.next_if_eq(&"=");
                match items.next() {
                    Some(value) if !is_bracket(value) && value != "=" => entries.push((key.to_owned(), value.to_owned())),
                    _ => return Err(ValueError::Entry(key.to_owned())),
                }
            }
            Ok(Value::Dict(entries))
        }
        (Some("("), _) => Err(ValueError::Brackets("the list opened with '(' is not closed with ')'")),
        (Some("["), _) => Err(ValueError::Brackets("the dictionary opened with '[' is not closed with ']'")),
        _ => Err(ValueError::Unquoted(words.join(" "))),
    }
}

/// Every option of `root` with its scope path, depth first, for marking a whole tree as
/// changed (`config begin from scratch`).
pub fn all_options(root: &Scope) -> Vec<(ScopePath, String)> {
    let mut out = Vec::new();
    walk(root, &mut Vec::new(), &mut out);
    out
}

fn walk(scope: &Scope, path: &mut ScopePath, out: &mut Vec<(ScopePath, String)>) {
    for option in &scope.options {
        out.push((path.clone(), option.name.clone()));
    }
    for child in &scope.scopes {
        path.push(Step { kind: child.kind.clone(), name: child.name.clone() });
        walk(child, path, out);
        path.pop();
    }
}

#[cfg(test)]
mod tests;
