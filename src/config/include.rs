//! All file I/O of the configuration parser: reading the top-level file, resolving `include` /
//! `readonly_include` paths, listing directory includes, detecting include cycles and deciding
//! which items are read-only.
//!
//! Owns the include rules: relative paths resolve against the directory of the including file;
//! a directory include reads each regular file in lexical order of file name, skipping names
//! that start with `.`, without recursing; `file://` paths are accepted, other URI schemes are
//! refused; items read via `readonly_include` (or nested inside one), or from a file included
//! more than once, are read-only. No grammar here (that is `parser.rs`).
//!
//! Owns the limits that keep reading a configuration bounded, whatever the files say: only
//! regular files are read (a FIFO, a device or a socket is refused from its metadata, and
//! files are opened non-blocking, so nothing can stall start-up), each file is read up to
//! [`MAX_FILE_BYTES`], all files together up to [`MAX_TOTAL_BYTES`] and [`MAX_FILES_READ`]
//! reads (a file included ten times from ten files included ten times is a fan-out, not a
//! configuration), and includes nest at most [`MAX_INCLUDE_DEPTH`] deep.

use std::collections::{HashMap, HashSet};
use std::fs::{self, File, OpenOptions};
use std::io::{self, Read};
use std::os::unix::fs::{FileTypeExt, OpenOptionsExt};
use std::path::{Path, PathBuf};
use std::sync::Arc;

use super::error::ConfigError;
use super::parser::{self, IncludeDirective, IncludeHandler, Source};
use super::tree::{Scope, Span};

/// Deepest chain of files including each other that is accepted (the top-level file is not
/// counted). Real trees are two or three deep (`ecelerity.conf` → `conf.d/` → a snippet).
pub(crate) const MAX_INCLUDE_DEPTH: usize = 16;

/// Largest single file read, top-level or included. A large `ecelerity.conf` with every
/// listener and binding spelled out is well under 1 MiB.
pub const MAX_FILE_BYTES: u64 = 4 << 20;

/// Most bytes read for one configuration, every file and every repeated include counted.
pub(crate) const MAX_TOTAL_BYTES: u64 = 16 << 20;

/// Most file reads for one configuration, the top-level file and every repeated include
/// counted: room for a `conf.d/` of hundreds of snippets, while a fan-out of includes stops
/// after a few milliseconds.
pub(crate) const MAX_FILES_READ: usize = 1024;

/// What a path is when it is not a regular file, for error messages.
fn kind_of(file_type: fs::FileType) -> Option<&'static str> {
    if file_type.is_file() {
        None
    } else if file_type.is_dir() {
        Some("a directory")
    } else if file_type.is_fifo() {
        Some("a FIFO")
    } else if file_type.is_char_device() {
        Some("a character device")
    } else if file_type.is_block_device() {
        Some("a block device")
    } else if file_type.is_socket() {
        Some("a socket")
    } else {
        Some("not a regular file")
    }
}

fn not_regular(what: &str) -> io::Error {
    io::Error::new(io::ErrorKind::InvalidInput, format!("{what}, not a regular file"))
}

fn too_big(limit: u64) -> io::Error {
    io::Error::new(
        io::ErrorKind::InvalidInput,
        format!("larger than {} (the most one configuration file may hold)", show_bytes(limit)),
    )
}

/// `4 MiB`, `512 KiB` or `100 bytes`.
fn show_bytes(bytes: u64) -> String {
    if bytes >= 1 << 20 && bytes.is_multiple_of(1 << 20) {
        format!("{} MiB", bytes >> 20)
    } else if bytes >= 1 << 10 && bytes.is_multiple_of(1 << 10) {
        format!("{} KiB", bytes >> 10)
    } else {
        format!("{bytes} bytes")
    }
}

/// Reads the regular file at `path`, at most `limit` bytes, without ever blocking on what the
/// path turns out to be: its metadata is checked first (a FIFO, a device, a socket or a
/// directory is refused unopened), it is opened with `O_NONBLOCK` (so a FIFO swapped in after
/// the check opens at once) and checked again through the open handle. The error says which
/// rule was broken (`a FIFO, not a regular file`, `larger than 4 MiB ...`).
pub fn read_regular_file(path: &Path, limit: u64) -> io::Result<Vec<u8>> {
    let metadata = fs::metadata(path)?;
    if let Some(what) = kind_of(metadata.file_type()) {
        return Err(not_regular(what));
    }
    if metadata.len() > limit {
        return Err(too_big(limit));
    }
    let file: File = OpenOptions::new()
        .read(true)
        .custom_flags(nix::libc::O_NONBLOCK | nix::libc::O_NOCTTY)
        .open(path)?;
    if let Some(what) = kind_of(file.metadata()?.file_type()) {
        return Err(not_regular(what));
    }
    let mut bytes = Vec::new();
    file.take(limit.saturating_add(1)).read_to_end(&mut bytes)?;
    if bytes.len() as u64 > limit {
        return Err(too_big(limit));
    }
    Ok(bytes)
}

/// Parses `text` as if read from `origin`; includes resolve against `origin`'s directory.
pub(crate) fn parse_root(text: &str, origin: &Path) -> Result<Scope, ConfigError> {
    parse_root_with(text, origin, &Overlay::new())
}

/// Texts that stand in for files of the same path (as spans show it) when includes are read:
/// how a writeback checks the files it is about to write before any is written.
pub(crate) type Overlay = HashMap<PathBuf, String>;

/// Reads and parses the file at `path`, taking the text of every file in `overlay` from there.
pub(crate) fn load_root_with(path: &Path, overlay: &Overlay) -> Result<Scope, ConfigError> {
    match overlay.get(path) {
        Some(text) => parse_root_with(text, path, overlay),
        None => {
            let bytes = read_regular_file(path, MAX_FILE_BYTES).map_err(|error| ConfigError::Io {
                path: path.to_path_buf(),
                error,
            })?;
            let text = decode(&bytes, &Arc::new(path.to_path_buf()))?;
            parse_root_with(text, path, overlay)
        }
    }
}

fn parse_root_with(text: &str, origin: &Path, overlay: &Overlay) -> Result<Scope, ConfigError> {
    let identity = identity_of(origin);
    let mut loader = Loader {
        chain: vec![ChainEntry {
            identity: identity.clone(),
            shown: origin.to_path_buf(),
        }],
        identities: HashMap::from([(origin.to_path_buf(), identity.clone())]),
        seen: HashSet::from([identity]),
        repeated: HashSet::new(),
        files_read: 1,
        bytes_read: text.len() as u64,
        overlay,
    };
    let file = Arc::new(origin.to_path_buf());
    let mut root = Scope::new("", None, Span::new(Arc::clone(&file), 1, 1));
    parser::parse_into(
        Source {
            text,
            file,
            readonly: false,
        },
        &mut root,
        0,
        &mut loader,
    )?;
    if !loader.repeated.is_empty() {
        loader.mark_repeated_readonly(&mut root);
    }
    Ok(root)
}

/// Reads and parses the file at `path`.
pub(crate) fn load_root(path: &Path) -> Result<Scope, ConfigError> {
    load_root_with(path, &Overlay::new())
}

/// Parses `bytes` (UTF-8, an initial byte-order mark is ignored) as if read from `origin`,
/// without following includes: each `include` / `readonly_include` is checked as syntax and
/// left out of the tree. Reads no file, so it is safe on text whose includes name another
/// machine's files (ecconfigd checks committed files this way).
pub(crate) fn parse_detached(bytes: &[u8], origin: &Path) -> Result<Scope, ConfigError> {
    /// Accepts every include directive and reads nothing.
    struct Detached;
    impl IncludeHandler for Detached {
        fn include(&mut self, _: &IncludeDirective, _: &mut Scope, _: usize) -> Result<(), ConfigError> {
            Ok(())
        }
    }
    let file = Arc::new(origin.to_path_buf());
    let text = decode(bytes, &file)?;
    let mut root = Scope::new("", None, Span::new(Arc::clone(&file), 1, 1));
    parser::parse_into(Source { text, file, readonly: false }, &mut root, 0, &mut Detached)?;
    Ok(root)
}

/// The bytes as UTF-8 text without a leading byte-order mark, or the position of the first bad byte.
fn decode<'b>(bytes: &'b [u8], file: &Arc<PathBuf>) -> Result<&'b str, ConfigError> {
    match std::str::from_utf8(bytes) {
        Ok(text) => Ok(text.strip_prefix('\u{feff}').unwrap_or(text)),
        Err(error) => {
            let valid =
                String::from_utf8_lossy(bytes.get(..error.valid_up_to()).unwrap_or_default());
            let valid = valid.strip_prefix('\u{feff}').unwrap_or(&valid);
            let line = valid.matches('\n').count().saturating_add(1);
            let last_line = valid.rsplit('\n').next().unwrap_or_default();
            let column = last_line.chars().count().saturating_add(1);
            let span = Span::new(
                Arc::clone(file),
                u32::try_from(line).unwrap_or(u32::MAX),
                u32::try_from(column).unwrap_or(u32::MAX),
            );
            Err(ConfigError::InvalidUtf8 { span })
        }
    }
}

/// The path used to recognise the same file under different spellings.
fn identity_of(path: &Path) -> PathBuf {
    fs::canonicalize(path)
        .or_else(|_| std::path::absolute(path))
        .unwrap_or_else(|_| path.to_path_buf())
}

/// One file currently being read.
struct ChainEntry {
    identity: PathBuf,
    shown: PathBuf,
}

/// Include state for one `parse_str`/`load` call.
struct Loader<'o> {
    /// The files currently open, outermost first.
    chain: Vec<ChainEntry>,
    /// Identity of every file read so far, keyed by the path shown in spans.
    identities: HashMap<PathBuf, PathBuf>,
    /// Identities of every file read so far.
    seen: HashSet<PathBuf>,
    /// Identities of files read more than once.
    repeated: HashSet<PathBuf>,
    /// Files read so far, repeats counted (at most [`MAX_FILES_READ`]).
    files_read: usize,
    /// Bytes read so far, repeats counted (at most [`MAX_TOTAL_BYTES`]).
    bytes_read: u64,
    /// Texts read instead of the files of the same path.
    overlay: &'o Overlay,
}

impl Loader<'_> {
    /// The path `directive` names, made absolute against the including file's directory.
    fn resolve(directive: &IncludeDirective) -> Result<PathBuf, ConfigError> {
        let written = directive.path.as_str();
        let written = match written.split_once("://") {
            Some((scheme, rest)) if is_uri_scheme(scheme) => {
                if !scheme.eq_ignore_ascii_case("file") {
                    return Err(ConfigError::unexpected(
                        directive.span.clone(),
                        "a file path or file:// uri to include",
                        format!("'{scheme}://' (only local files can be included)"),
                    ));
                }
                rest
            }
            _ => written,
        };
        if written.is_empty() {
            return Err(ConfigError::unexpected(
                directive.span.clone(),
                "a path to include",
                "an empty path",
            ));
        }
        let path = Path::new(written);
        if path.is_absolute() {
            return Ok(path.to_path_buf());
        }
        let base = directive
            .span
            .file
            .parent()
            .unwrap_or_else(|| Path::new(""));
        Ok(base.join(path))
    }

    /// Regular files of directory `dir`, not starting with `.`, in lexical order of file name.
    /// Subdirectories are skipped (includes do not recurse); a FIFO, device or socket is
    /// refused, as it would be if included by name; a directory holding more entries than a
    /// whole configuration may read is refused without listing it all.
    fn list_directory(&self, dir: &Path, span: &Span) -> Result<Vec<PathBuf>, ConfigError> {
        let failed = |path: &Path, error: io::Error| ConfigError::Include {
            span: span.clone(),
            path: path.to_path_buf(),
            error,
        };
        let mut files = Vec::new();
        for entry in fs::read_dir(dir).map_err(|error| failed(dir, error))? {
            let entry = entry.map_err(|error| failed(dir, error))?;
            let name = entry.file_name();
            if name.as_encoded_bytes().first() == Some(&b'.') {
                continue;
            }
            let path = entry.path();
            match fs::metadata(&path) {
                Ok(metadata) if metadata.is_file() => files.push((name, path)),
                Ok(metadata) if metadata.is_dir() => {}
                Ok(metadata) => {
                    let what = kind_of(metadata.file_type()).unwrap_or("not a regular file");
                    return Err(failed(&path, not_regular(what)));
                }
                Err(error) if error.kind() == io::ErrorKind::NotFound => {}
                Err(error) => return Err(failed(&path, error)),
            }
            if self.files_read.saturating_add(files.len()) > MAX_FILES_READ {
                return Err(self.limit(
                    span,
                    dir,
                    format!("the directory holds more files than the {MAX_FILES_READ} a whole configuration may read"),
                ));
            }
        }
        files.sort();
        Ok(files.into_iter().map(|(_, path)| path).collect())
    }

    /// The files being read, outermost first, then `next`, joined by ` -> `.
    fn chain_to(&self, next: &Path) -> String {
        self.chain
            .iter()
            .map(|entry| entry.shown.display().to_string())
            .chain(std::iter::once(next.display().to_string()))
            .collect::<Vec<_>>()
            .join(" -> ")
    }

    /// A [`ConfigError::IncludeLimit`] for the include at `span` of `path`.
    fn limit(&self, span: &Span, path: &Path, reason: String) -> ConfigError {
        ConfigError::IncludeLimit {
            span: span.clone(),
            path: path.to_path_buf(),
            reason,
            chain: self.chain_to(path),
        }
    }

    /// Reads the file at `path` and splices it into `into`.
    fn include_file(
        &mut self,
        path: &Path,
        directive: &IncludeDirective,
        into: &mut Scope,
        depth: usize,
    ) -> Result<(), ConfigError> {
        let failed = |error: io::Error| ConfigError::Include {
            span: directive.span.clone(),
            path: path.to_path_buf(),
            error,
        };
        let identity = fs::canonicalize(path).map_err(failed)?;
        if let Some(start) = self
            .chain
            .iter()
            .position(|entry| entry.identity == identity)
        {
            let chain: Vec<String> = self
                .chain
                .iter()
                .skip(start)
                .map(|entry| entry.shown.display().to_string())
                .chain(std::iter::once(path.display().to_string()))
                .collect();
            return Err(ConfigError::IncludeCycle {
                span: directive.span.clone(),
                chain: chain.join(" -> "),
            });
        }
        if self.chain.len() > MAX_INCLUDE_DEPTH {
            return Err(self.limit(
                &directive.span,
                path,
                format!("includes nest more than {MAX_INCLUDE_DEPTH} deep"),
            ));
        }
        if self.files_read >= MAX_FILES_READ {
            return Err(self.limit(
                &directive.span,
                path,
                format!("the configuration would read more than {MAX_FILES_READ} files in all (an include fan-out?)"),
            ));
        }
        let bytes = match self.overlay.get(path) {
            Some(text) => text.clone().into_bytes(),
            None => read_regular_file(path, MAX_FILE_BYTES).map_err(failed)?,
        };
        self.files_read += 1;
        self.bytes_read = self.bytes_read.saturating_add(bytes.len() as u64);
        if self.bytes_read > MAX_TOTAL_BYTES {
            return Err(self.limit(
                &directive.span,
                path,
                format!(
                    "the configuration would read more than {} in all (an include fan-out?)",
                    show_bytes(MAX_TOTAL_BYTES)
                ),
            ));
        }
        let file = Arc::new(path.to_path_buf());
        let text = decode(&bytes, &file)?;
        if !self.seen.insert(identity.clone()) {
            self.repeated.insert(identity.clone());
        }
        self.identities.insert(path.to_path_buf(), identity.clone());
        self.chain.push(ChainEntry {
            identity,
            shown: path.to_path_buf(),
        });
        let result = parser::parse_into(
            Source {
                text,
                file,
                readonly: directive.readonly,
            },
            into,
            depth,
            self,
        );
        self.chain.pop();
        result
    }

    /// Marks read-only every option that came from a file read more than once.
    fn mark_repeated_readonly(&self, scope: &mut Scope) {
        for option in &mut scope.options {
            let repeated = self
                .identities
                .get(option.span.file.as_path())
                .is_some_and(|identity| self.repeated.contains(identity));
            option.readonly |= repeated;
        }
        for child in &mut scope.scopes {
            self.mark_repeated_readonly(child);
        }
    }
}

/// True for an RFC 3986 scheme name (`file`, `eccmgr`, `persist`).
fn is_uri_scheme(text: &str) -> bool {
    let mut chars = text.chars();
    chars
        .next()
        .is_some_and(|first| first.is_ascii_alphabetic())
        && chars.all(|ch| ch.is_ascii_alphanumeric() || matches!(ch, '+' | '-' | '.'))
}

impl IncludeHandler for Loader<'_> {
    fn include(
        &mut self,
        directive: &IncludeDirective,
        into: &mut Scope,
        depth: usize,
    ) -> Result<(), ConfigError> {
        let target = Self::resolve(directive)?;
        let metadata = fs::metadata(&target).map_err(|error| ConfigError::Include {
            span: directive.span.clone(),
            path: target.clone(),
            error,
        })?;
        if metadata.is_dir() {
            for file in self.list_directory(&target, &directive.span)? {
                self.include_file(&file, directive, into, depth)?;
            }
            Ok(())
        } else {
            self.include_file(&target, directive, into, depth)
        }
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests;
