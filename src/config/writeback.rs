//! `config writeback`: writes the options changed at the console back into the files that
//! define them, keeping everything else of those files (comments, layout, includes) as it is.
//!
//! The rule is Momentum's: a value replaced at the console is written where it is set, when
//! that file is writable; a new value goes into the first writable file that defines its
//! scope instance (a missing scope is created in the first writable file that defines its
//! nearest existing enclosing scope; the top level is the main file); an unset value or
//! scope is removed from every file that sets it. A file read through `readonly_include` (or
//! included twice), or one the daemon may not write, is not writable; a change that can only
//! be written there is refused, naming the option and the file, and nothing is written.
//!
//! The files are read afresh (edits made by hand since the last reload stay), the edits are
//! made in memory, the result is parsed again with the new texts standing in for the files,
//! and only when every changed option reads back as it runs is any file written: each to a
//! temporary file in its directory, fsynced, renamed over the old one, and the directory
//! fsynced. So a file is never half written. This module does blocking file I/O: callers on
//! the daemon loop run it on a blocking thread.

use std::collections::{BTreeMap, BTreeSet, HashSet};
use std::fs::{self, File, OpenOptions};
use std::io::{self, Write as _};
use std::ops::Range;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use super::edit::{resolve, Step};
use super::include::{load_root_with, Overlay};
use super::lexer::{Lexer, TokenKind};
use super::render::{render, write_word};
use super::tree::{ConfigOption, Scope, Value};
use super::{read_regular_file, MAX_FILE_BYTES};

/// Something changed at the console since the files were last read or written.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
pub enum Changed {
    /// Option `name` of the scope at `path` was set or unset.
    Option {
        /// The scope (kinds lower-cased).
        path: Vec<Step>,
        /// The option (lower-cased).
        name: String,
    },
    /// The scope at `path` was unset.
    Scope {
        /// The scope (kinds lower-cased).
        path: Vec<Step>,
    },
}

fn normal(path: &[Step]) -> Vec<Step> {
    path.iter().map(|s| Step { kind: s.kind.to_ascii_lowercase(), name: s.name.clone() }).collect()
}

impl Changed {
    /// Option `name` of the scope at `path`.
    pub fn option(path: &[Step], name: &str) -> Changed {
        Changed::Option { path: normal(path), name: name.to_ascii_lowercase() }
    }

    /// The scope at `path`.
    pub fn scope(path: &[Step]) -> Changed {
        Changed::Scope { path: normal(path) }
    }

    fn path(&self) -> &[Step] {
        match self {
            Changed::Option { path, .. } | Changed::Scope { path } => path,
        }
    }
}

/// What a writeback wrote.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Written {
    /// The files replaced, in the order written (none when the files already held every value).
    pub files: Vec<PathBuf>,
}

/// Writes every change in `changed` of the running tree `running` into the files of the
/// configuration whose main file is `main`; see the module documentation. The error says
/// which option could not be written and why; nothing is written then.
pub fn write_back(main: &Path, running: &Scope, changed: &BTreeSet<Changed>) -> Result<Written, String> {
    let disk = super::load(main).map_err(|e| format!("reading the configuration again: {e}"))?;
    let mut plan = Plan { main, disk: &disk, running, texts: BTreeMap::new(), edits: BTreeMap::new(), readonly: HashSet::new(), created: BTreeSet::new() };
    plan.readonly = readonly_files(&disk);
    for change in changed.iter().filter(|c| matches!(c, Changed::Scope { .. })) {
        plan.scope_change(change.path())?;
    }
    for change in changed {
        if let Changed::Option { path, name } = change {
            plan.option_change(path, name)?;
        }
    }
    let Plan { texts, edits, .. } = plan;
    let mut overlay = Overlay::new();
    for (file, mut edits) in edits {
        let Some(text) = texts.get(&file) else { continue };
        overlay.insert(file, apply(text, &mut edits)?);
    }
    if overlay.is_empty() {
        return Ok(Written { files: Vec::new() });
    }
    let check = load_root_with(main, &overlay).map_err(|e| format!("the edited files would not read back ({e}); nothing written"))?;
    for change in changed {
        verify(&check, running, change)?;
    }
    let mut files = Vec::new();
    let mut order: Vec<(&PathBuf, &String)> = overlay.iter().collect();
    order.sort();
    for (file, text) in order {
        write_atomically(file, text).map_err(|e| {
            let done = if files.is_empty() { String::new() } else { format!(" (already written: {})", show_files(&files)) };
            format!("writing {}: {e}{done}", file.display())
        })?;
        files.push(file.clone());
    }
    Ok(Written { files })
}

/// `config writeback PATH`: the whole running configuration, in configuration syntax, to
/// `path` (written atomically).
pub fn write_whole(path: &Path, running: &Scope) -> Result<Written, String> {
    write_atomically(path, &render(running)).map_err(|e| format!("writing {}: {e}", path.display()))?;
    Ok(Written { files: vec![path.to_path_buf()] })
}

fn show_files(files: &[PathBuf]) -> String {
    files.iter().map(|f| f.display().to_string()).collect::<Vec<_>>().join(", ")
}

/// Files whose items are read-only: read through `readonly_include`, or included twice.
fn readonly_files(scope: &Scope) -> HashSet<PathBuf> {
    let mut files = HashSet::new();
    fn walk(scope: &Scope, files: &mut HashSet<PathBuf>) {
        for option in scope.options.iter().filter(|o| o.readonly) {
            files.insert(option.span.file.as_ref().clone());
        }
        for child in &scope.scopes {
            walk(child, files);
        }
    }
    walk(scope, &mut files);
    files
}

struct Edit {
    at: Range<usize>,
    text: String,
}

struct Plan<'a> {
    main: &'a Path,
    disk: &'a Scope,
    running: &'a Scope,
    texts: BTreeMap<PathBuf, String>,
    edits: BTreeMap<PathBuf, Vec<Edit>>,
    readonly: HashSet<PathBuf>,
    /// Scopes created whole from the running tree (their options need nothing more).
    created: BTreeSet<Vec<Step>>,
}

/// Every scope at `path`, each step matching every instance, in file order.
fn instances<'s>(root: &'s Scope, path: &[Step]) -> Vec<&'s Scope> {
    let mut level = vec![root];
    for step in path {
        level = level
            .into_iter()
            .flat_map(|s| s.scopes.iter())
            .filter(|s| s.kind.eq_ignore_ascii_case(&step.kind) && s.name.as_deref() == step.name.as_deref())
            .collect();
    }
    level
}

impl Plan<'_> {
    fn text(&mut self, file: &Path) -> Result<&str, String> {
        if !self.texts.contains_key(file) {
            let bytes = read_regular_file(file, MAX_FILE_BYTES).map_err(|e| format!("reading {}: {e}", file.display()))?;
            let text = String::from_utf8(bytes).map_err(|_| format!("{}: not UTF-8 text", file.display()))?;
            self.texts.insert(file.to_path_buf(), text);
        }
        Ok(self.texts.get(file).map(String::as_str).unwrap_or_default())
    }

    /// Why `file` cannot be written, if it cannot.
    fn not_writable(&self, file: &Path) -> Option<String> {
        if self.readonly.contains(file) {
            return Some(format!("{} is read-only (readonly_include, or included more than once)", file.display()));
        }
        match OpenOptions::new().append(true).open(file) {
            Ok(_) => None,
            Err(e) => Some(format!("{} cannot be written: {e}", file.display())),
        }
    }

    fn edit(&mut self, file: &Path, at: Range<usize>, text: String) {
        self.edits.entry(file.to_path_buf()).or_default().push(Edit { at, text });
    }

    fn scope_change(&mut self, path: &[Step]) -> Result<(), String> {
        if resolve(self.running, path).is_some() {
            return Ok(());
        }
        for scope in instances(self.disk, path) {
            let file = scope.span.file.as_ref().clone();
            if let Some(why) = self.not_writable(&file) {
                return Err(format!("cannot remove scope {} at {}: {why}; nothing written", scope.describe(), scope.span));
            }
            let text = self.text(&file)?;
            let at = extent(text, &file, scope.span.line, scope.span.column)?;
            let at = whole_lines(text, at);
            self.edit(&file, at, String::new());
        }
        Ok(())
    }

    fn option_change(&mut self, path: &[Step], name: &str) -> Result<(), String> {
        if self.created.iter().any(|c| path.starts_with(c)) {
            return Ok(());
        }
        let desired = resolve(self.running, path).and_then(|s| s.option(name)).cloned();
        let disk_scope = resolve(self.disk, path);
        let current = disk_scope.and_then(|s| s.option(name));
        if desired.as_ref().map(|o| &o.value) == current.map(|o| &o.value) {
            return Ok(());
        }
        let Some(desired) = desired else {
            let settings: Vec<ConfigOption> =
                disk_scope.map(|s| s.options.iter().filter(|o| o.name.eq_ignore_ascii_case(name)).cloned().collect()).unwrap_or_default();
            for option in settings {
                let file = option.span.file.as_ref().clone();
                if let Some(why) = self.not_writable(&file) {
                    return Err(format!("cannot unset {} (set at {}): {why}; nothing written", option.name, option.span));
                }
                let text = self.text(&file)?;
                let at = extent(text, &file, option.span.line, option.span.column)?;
                let at = whole_lines(text, at);
                self.edit(&file, at, String::new());
            }
            return Ok(());
        };
        if let Some(current) = current.cloned() {
            let file = current.span.file.as_ref().clone();
            if self.not_writable(&file).is_none() {
                let text = self.text(&file)?;
                let at = extent(text, &file, current.span.line, current.span.column)?;
                let indent = line_indent(text, at.start).to_owned();
                self.edit(&file, at, assignment(&desired.name, &desired.value, &indent));
                return Ok(());
            }
        }
        self.insert(path, &desired)
    }

    /// Writes `option` into the first writable instance of the scope at `path`, creating the
    /// missing part of the path from the running tree.
    fn insert(&mut self, path: &[Step], option: &ConfigOption) -> Result<(), String> {
        let existing = (0..=path.len()).rev().find(|&depth| !instances(self.disk, &path[..depth]).is_empty()).unwrap_or(0);
        let (item, created) = if existing == path.len() {
            (None, None)
        } else {
            let new_path = &path[..=existing];
            let scope = resolve(self.running, new_path).ok_or_else(|| format!("{} is not in the running configuration", option.name))?;
            (Some(render(scope)), Some(new_path.to_vec()))
        };
        let parent = &path[..existing];
        let mut refusals = Vec::new();
        for scope in instances(self.disk, parent) {
            let file = if parent.is_empty() { self.main.to_path_buf() } else { scope.span.file.as_ref().clone() };
            if let Some(why) = self.not_writable(&file) {
                refusals.push(why);
                continue;
            }
            let text = self.text(&file)?;
            let (at, indent) = if parent.is_empty() {
                (text.len()..text.len(), String::new())
            } else {
                let close = closing_brace(text, &file, scope.span.line, scope.span.column)?;
                let start = text[..close].rfind('\n').map_or(0, |i| i + 1);
                if text[start..close].trim().is_empty() {
                    (start..start, format!("{}  ", &text[start..close]))
                } else {
                    (close..close, String::from(" "))
                }
            };
            let lead = if at.start == text.len() && !text.is_empty() && !text.ends_with('\n') { "\n" } else { "" };
            let body = match &item {
                Some(block) => block.lines().map(|l| format!("{indent}{l}\n")).collect::<String>(),
                None => format!("{indent}{}\n", assignment(&option.name, &option.value, &indent)),
            };
            let body = if indent == " " { format!("{} ", body.trim()) } else { body };
            self.edit(&file, at, format!("{lead}{body}"));
            if let Some(created) = created {
                self.created.insert(created);
            }
            return Ok(());
        }
        Err(format!(
            "cannot write {} back: {}; nothing written",
            option.name,
            if refusals.is_empty() { "no file defines its scope".to_owned() } else { refusals.join("; ") }
        ))
    }
}

/// `Name = value` as it goes into a file at `indent` (lists one item a line, two deeper).
fn assignment(name: &str, value: &Value, indent: &str) -> String {
    let mut out = format!("{name} = ");
    match value {
        Value::Scalar(text) => write_word(&mut out, text),
        Value::List(items) if items.is_empty() => out.push_str("( )"),
        Value::List(items) => {
            out.push_str("(\n");
            for item in items {
                out.push_str(indent);
                out.push_str("  ");
                write_word(&mut out, item);
                out.push('\n');
            }
            out.push_str(indent);
            out.push(')');
        }
        Value::Dict(entries) if entries.is_empty() => out.push_str("[ ]"),
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
            out.push(']');
        }
    }
    out
}

/// The whitespace before the item starting at byte `at` on its line.
fn line_indent(text: &str, at: usize) -> &str {
    let start = text[..at].rfind('\n').map_or(0, |i| i + 1);
    let lead = &text[start..at];
    if lead.trim().is_empty() {
        lead
    } else {
        ""
    }
}

/// The byte offset of 1-based `line`:`column` (columns in characters).
fn offset_of(text: &str, line: u32, column: u32) -> Option<usize> {
    let mut offset = 0;
    for _ in 1..line {
        offset += text[offset..].find('\n')? + 1;
    }
    let rest = &text[offset..];
    let skip = usize::try_from(column.saturating_sub(1)).ok()?;
    let within = rest.char_indices().nth(skip).map(|(i, _)| i).or_else(|| (rest.chars().count() == skip).then_some(rest.len()))?;
    Some(offset + within)
}

fn lexer_at<'t>(text: &'t str, file: &Path, line: u32, column: u32) -> Result<(Lexer<'t>, usize), String> {
    let start = offset_of(text, line, column).ok_or_else(|| format!("{}:{line}:{column}: not in the file any more", file.display()))?;
    Ok((Lexer::starting_at(text, Arc::new(file.to_path_buf()), start, line, column), start))
}

/// The bytes of the item (option or scope block) whose name starts at `line`:`column`.
fn extent(text: &str, file: &Path, line: u32, column: u32) -> Result<Range<usize>, String> {
    let (mut lexer, start) = lexer_at(text, file, line, column)?;
    let error = |e: super::ConfigError| e.to_string();
    let moved = || format!("{}:{line}:{column}: the file changed under the edit", file.display());
    if !matches!(lexer.next_token().map_err(error)?.kind, TokenKind::Word(_)) {
        return Err(moved());
    }
    let end = match lexer.next_token().map_err(error)?.kind {
        TokenKind::Equals => match lexer.next_token().map_err(error)?.kind {
            TokenKind::Word(_) | TokenKind::Quoted(_) => lexer.offset(),
            TokenKind::OpenParen => skip_to(&mut lexer, &TokenKind::CloseParen).map_err(error)?,
            TokenKind::OpenBracket => skip_to(&mut lexer, &TokenKind::CloseBracket).map_err(error)?,
            _ => return Err(moved()),
        },
        TokenKind::Word(_) | TokenKind::Quoted(_) => {
            let end = lexer.offset();
            if lexer.peek_token().map_err(error)?.kind == TokenKind::OpenBrace {
                lexer.next_token().map_err(error)?;
                close_of(&mut lexer).map_err(error)?.1
            } else {
                end
            }
        }
        TokenKind::OpenBrace => close_of(&mut lexer).map_err(error)?.1,
        TokenKind::OpenParen => skip_to(&mut lexer, &TokenKind::CloseParen).map_err(error)?,
        TokenKind::OpenBracket => skip_to(&mut lexer, &TokenKind::CloseBracket).map_err(error)?,
        _ => return Err(moved()),
    };
    Ok(start..end)
}

/// The byte offset of the `}` closing the scope whose kind starts at `line`:`column`.
fn closing_brace(text: &str, file: &Path, line: u32, column: u32) -> Result<usize, String> {
    let (mut lexer, _) = lexer_at(text, file, line, column)?;
    let error = |e: super::ConfigError| e.to_string();
    loop {
        let token = lexer.next_token().map_err(error)?;
        match token.kind {
            TokenKind::OpenBrace => return Ok(close_of(&mut lexer).map_err(error)?.0),
            TokenKind::End => return Err(format!("{}:{line}:{column}: the scope has no '{{'", file.display())),
            _ => {}
        }
    }
}

/// After a `{`: the offsets of its `}` and just past it.
fn close_of(lexer: &mut Lexer<'_>) -> Result<(usize, usize), super::ConfigError> {
    let mut depth = 1usize;
    loop {
        match lexer.next_token()?.kind {
            TokenKind::OpenBrace => depth += 1,
            TokenKind::CloseBrace => {
                depth -= 1;
                if depth == 0 {
                    let end = lexer.offset();
                    return Ok((end - 1, end));
                }
            }
            TokenKind::End => return Ok((lexer.offset(), lexer.offset())),
            _ => {}
        }
    }
}

fn skip_to(lexer: &mut Lexer<'_>, close: &TokenKind) -> Result<usize, super::ConfigError> {
    loop {
        let token = lexer.next_token()?;
        if token.kind == *close || token.kind == TokenKind::End {
            return Ok(lexer.offset());
        }
    }
}

/// `at` grown to whole lines when nothing else shares them but a trailing `#` comment (so no
/// blank line or orphaned comment is left behind).
fn whole_lines(text: &str, at: Range<usize>) -> Range<usize> {
    let start = text[..at.start].rfind('\n').map_or(0, |i| i + 1);
    let after = &text[at.end..];
    let line_end = after.find('\n').map_or(text.len(), |i| at.end + i + 1);
    let rest = text[at.end..line_end].trim();
    if text[start..at.start].trim().is_empty() && (rest.is_empty() || rest.starts_with('#')) {
        start..line_end
    } else {
        at
    }
}

/// `text` with `edits` made (computed against `text`); overlapping edits are an error, an
/// edit inside a removed range is dropped.
fn apply(text: &str, edits: &mut [Edit]) -> Result<String, String> {
    let removed: Vec<Range<usize>> = edits.iter().filter(|e| e.text.is_empty() && !e.at.is_empty()).map(|e| e.at.clone()).collect();
    let mut order: Vec<usize> = (0..edits.len())
        .filter(|&i| !removed.iter().any(|r| r != &edits[i].at && r.start <= edits[i].at.start && edits[i].at.end <= r.end && !(edits[i].at.is_empty() && (edits[i].at.start == r.start || edits[i].at.start == r.end))))
        .collect();
    order.sort_by(|&a, &b| edits[b].at.start.cmp(&edits[a].at.start).then(b.cmp(&a)));
    let mut out = text.to_owned();
    let mut floor = usize::MAX;
    for i in order {
        let edit = &edits[i];
        if edit.at.end > floor {
            return Err("two changes touch the same text; write them back one at a time".to_owned());
        }
        out.replace_range(edit.at.clone(), &edit.text);
        floor = edit.at.start;
    }
    Ok(out)
}

/// Checks that `change` reads back from `check` as it runs in `running`.
fn verify(check: &Scope, running: &Scope, change: &Changed) -> Result<(), String> {
    match change {
        Changed::Option { path, name } => {
            let want = resolve(running, path).and_then(|s| s.option(name));
            let got = resolve(check, path).and_then(|s| s.option(name));
            if want.map(|o| &o.value) == got.map(|o| &o.value) {
                return Ok(());
            }
            let shown = want.map_or(name.as_str(), |o| o.name.as_str());
            Err(match got {
                Some(o) => format!("cannot write {shown} back: the setting at {} would still win; nothing written", o.span),
                None => format!("cannot write {shown} back: it would not read back; nothing written"),
            })
        }
        Changed::Scope { path } => {
            if resolve(running, path).is_none() {
                if let Some(left) = instances(check, path).first() {
                    return Err(format!("cannot remove scope {} at {}; nothing written", left.describe(), left.span));
                }
            }
            Ok(())
        }
    }
}

/// Replaces the file at `path` (through symbolic links) with `text`: a temporary file in the
/// same directory, written, fsynced and given the old file's permissions, renamed over it,
/// then the directory fsynced.
pub fn write_atomically(path: &Path, text: &str) -> io::Result<()> {
    let target = match fs::canonicalize(path) {
        Ok(target) => target,
        Err(e) if e.kind() == io::ErrorKind::NotFound => path.to_path_buf(),
        Err(e) => return Err(e),
    };
    let dir = match target.parent() {
        Some(dir) if !dir.as_os_str().is_empty() => dir.to_path_buf(),
        _ => PathBuf::from("."),
    };
    let name = target.file_name().map(|n| n.to_string_lossy().into_owned()).unwrap_or_default();
    let temp = dir.join(format!(".{name}.writeback-{}", std::process::id()));
    if let Err(e) = fs::remove_file(&temp) {
        if e.kind() != io::ErrorKind::NotFound {
            return Err(e);
        }
    }
    let permissions = fs::metadata(&target).map(|m| m.permissions()).ok();
    let written = (|| {
        let mut file = OpenOptions::new().write(true).create_new(true).open(&temp)?;
        file.write_all(text.as_bytes())?;
        if let Some(permissions) = permissions {
            file.set_permissions(permissions)?;
        }
        file.sync_all()?;
        fs::rename(&temp, &target)
    })();
    if let Err(e) = written {
        if let Err(removing) = fs::remove_file(&temp) {
            if removing.kind() != io::ErrorKind::NotFound {
                tracing::warn!(path = %temp.display(), error = %removing, "could not remove a temporary file");
            }
        }
        return Err(e);
    }
    File::open(&dir)?.sync_all()
}

#[cfg(test)]
mod tests;
