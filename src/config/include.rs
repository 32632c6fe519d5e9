//! All file I/O of the configuration parser: reading the top-level file, resolving `include` /
//! `readonly_include` paths, listing directory includes, detecting include cycles and deciding
//! which items are read-only.
//!
//! Owns the include rules: relative paths resolve against the directory of the including file;
//! a directory include reads each regular file in lexical order of file name, skipping names
//! that start with `.`, without recursing; `file://` paths are accepted, other URI schemes are
//! refused; items read via `readonly_include` (or nested inside one), or from a file included
//! more than once, are read-only. No grammar here (that is `parser.rs`).

use std::collections::{HashMap, HashSet};
use std::fs;
use std::io;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use super::error::ConfigError;
use super::parser::{self, IncludeDirective, IncludeHandler, Source};
use super::tree::{Scope, Span};

/// Deepest chain of files including each other that is accepted.
pub(crate) const MAX_INCLUDE_DEPTH: usize = 64;

/// Parses `text` as if read from `origin`; includes resolve against `origin`'s directory.
pub(crate) fn parse_root(text: &str, origin: &Path) -> Result<Scope, ConfigError> {
    let identity = identity_of(origin);
    let mut loader = Loader {
        chain: vec![ChainEntry {
            identity: identity.clone(),
            shown: origin.to_path_buf(),
        }],
        identities: HashMap::from([(origin.to_path_buf(), identity.clone())]),
        seen: HashSet::from([identity]),
        repeated: HashSet::new(),
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
    let bytes = fs::read(path).map_err(|error| ConfigError::Io {
        path: path.to_path_buf(),
        error,
    })?;
    let text = decode(&bytes, &Arc::new(path.to_path_buf()))?;
    parse_root(text, path)
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
struct Loader {
    /// The files currently open, outermost first.
    chain: Vec<ChainEntry>,
    /// Identity of every file read so far, keyed by the path shown in spans.
    identities: HashMap<PathBuf, PathBuf>,
    /// Identities of every file read so far.
    seen: HashSet<PathBuf>,
    /// Identities of files read more than once.
    repeated: HashSet<PathBuf>,
}

impl Loader {
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
    fn list_directory(dir: &Path, span: &Span) -> Result<Vec<PathBuf>, ConfigError> {
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
                Ok(_) => {}
                Err(error) if error.kind() == io::ErrorKind::NotFound => {}
                Err(error) => return Err(failed(&path, error)),
            }
        }
        files.sort();
        Ok(files.into_iter().map(|(_, path)| path).collect())
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
            return Err(ConfigError::unexpected(
                directive.span.clone(),
                format!("at most {MAX_INCLUDE_DEPTH} nested includes"),
                "more",
            ));
        }
        let bytes = fs::read(path).map_err(failed)?;
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

impl IncludeHandler for Loader {
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
            for file in Self::list_directory(&target, &directive.span)? {
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
mod tests {
    use crate::config::{load, parse_str, Scope, Value};
    use std::fs;
    use std::path::{Path, PathBuf};

    fn write(dir: &Path, name: &str, text: &str) -> PathBuf {
        let path = dir.join(name);
        if let Some(parent) = path.parent() {
            fs::create_dir_all(parent).unwrap();
        }
        fs::write(&path, text).unwrap();
        path
    }

    fn names(scope: &Scope) -> Vec<&str> {
        scope
            .options
            .iter()
            .map(|option| option.name.as_str())
            .collect()
    }

    #[test]
    fn include_of_a_file_is_spliced_in_place() {
        let dir = tempfile::tempdir().unwrap();
        write(dir.path(), "other.conf", "b = 2\nInner { c = 3 }\n");
        let main = write(
            dir.path(),
            "main.conf",
            "a = 1\ninclude \"other.conf\"\nd = 4\n",
        );
        let root = load(&main).unwrap();
        assert_eq!(names(&root), ["a", "b", "d"]);
        let b = root.option("b").unwrap();
        assert_eq!(*b.span.file, dir.path().join("other.conf"));
        assert_eq!((b.span.line, b.span.column), (1, 1));
        assert!(!b.readonly);
        assert_eq!(*root.option("a").unwrap().span.file, main);
        assert_eq!(
            root.scope("inner", None)
                .unwrap()
                .option("c")
                .unwrap()
                .value,
            Value::Scalar("3".into())
        );
    }

    #[test]
    fn include_inside_a_scope_splices_into_that_scope() {
        let dir = tempfile::tempdir().unwrap();
        write(dir.path(), "listen.conf", "Listen \":25\" { }\nPort = 25\n");
        let main = write(
            dir.path(),
            "main.conf",
            "ESMTP_Listener {\n  INCLUDE listen.conf\n}\n",
        );
        let root = load(&main).unwrap();
        let listener = root.scope("esmtp_listener", None).unwrap();
        assert!(listener.scope("listen", Some(":25")).is_some());
        assert!(listener.option("port").is_some());
        assert!(root.options.is_empty());
    }

    #[test]
    fn include_of_a_directory_reads_files_in_lexical_order_skipping_dot_files() {
        let dir = tempfile::tempdir().unwrap();
        write(dir.path(), "conf.d/20-b.conf", "b = 1\n");
        write(dir.path(), "conf.d/10-a.conf", "a = 1\n");
        write(dir.path(), "conf.d/Z.conf", "z = 1\n");
        write(dir.path(), "conf.d/.hidden.conf", "hidden = 1\n");
        write(dir.path(), "conf.d/sub/30-c.conf", "c = 1\n");
        let main = write(
            dir.path(),
            "main.conf",
            "first = 1\ninclude conf.d\nlast = 1\n",
        );
        let root = load(&main).unwrap();
        assert_eq!(names(&root), ["first", "a", "b", "z", "last"]);
    }

    #[test]
    fn readonly_include_marks_items_readonly_including_nested_includes() {
        let dir = tempfile::tempdir().unwrap();
        write(dir.path(), "nested.conf", "n = 1\n");
        write(dir.path(), "ro.conf", "r = 1\nS { include nested.conf }\n");
        let main = write(
            dir.path(),
            "main.conf",
            "a = 1\nReadOnly_Include \"ro.conf\"\n",
        );
        let root = load(&main).unwrap();
        assert!(!root.option("a").unwrap().readonly);
        assert!(root.option("r").unwrap().readonly);
        assert!(root.scope("s", None).unwrap().option("n").unwrap().readonly);
    }

    #[test]
    fn a_file_included_twice_is_readonly_everywhere() {
        let dir = tempfile::tempdir().unwrap();
        write(dir.path(), "common.conf", "c = 1\n");
        let main = write(
            dir.path(),
            "main.conf",
            "A { include common.conf }\nB { include ./common.conf }\nm = 1\n",
        );
        let root = load(&main).unwrap();
        assert!(root.scope("a", None).unwrap().option("c").unwrap().readonly);
        assert!(root.scope("b", None).unwrap().option("c").unwrap().readonly);
        assert!(!root.option("m").unwrap().readonly);
    }

    #[test]
    fn relative_include_resolves_against_the_including_files_directory() {
        let dir = tempfile::tempdir().unwrap();
        write(dir.path(), "a/b/leaf.conf", "leaf = 1\n");
        write(dir.path(), "a/mid.conf", "mid = 1\ninclude b/leaf.conf\n");
        write(dir.path(), "a/b/decoy.conf", "decoy = 1\n");
        let main = write(dir.path(), "main.conf", "include a/mid.conf\n");
        let root = load(&main).unwrap();
        assert_eq!(names(&root), ["mid", "leaf"]);
        assert_eq!(
            *root.option("leaf").unwrap().span.file,
            dir.path().join("a/b/leaf.conf")
        );
    }

    #[test]
    fn parse_str_resolves_includes_against_the_origin_directory() {
        let dir = tempfile::tempdir().unwrap();
        write(dir.path(), "other.conf", "o = 1\n");
        let root = parse_str("include other.conf\n", &dir.path().join("not-on-disk.conf")).unwrap();
        assert_eq!(names(&root), ["o"]);
    }

    #[test]
    fn absolute_and_file_uri_includes() {
        let dir = tempfile::tempdir().unwrap();
        let other = write(dir.path(), "other.conf", "o = 1\n");
        let text = format!(
            "include \"{}\"\ninclude \"file://{}\"\n",
            other.display(),
            other.display()
        );
        let root = parse_str(&text, Path::new("elsewhere/x.conf")).unwrap();
        assert_eq!(names(&root), ["o", "o"]);
    }

    #[test]
    fn other_uri_schemes_are_refused() {
        let error = parse_str(
            "x {\n  include \"eccmgr://global/a.conf\"\n}",
            Path::new("m.conf"),
        )
        .unwrap_err();
        assert_eq!(
            error.to_string(),
            "m.conf:2:3: expected a file path or file:// uri to include but found 'eccmgr://' \
             (only local files can be included)"
        );
    }

    #[test]
    fn missing_include_names_the_including_position_and_the_missing_path() {
        let dir = tempfile::tempdir().unwrap();
        let main = write(
            dir.path(),
            "main.conf",
            "a = 1\n  include \"missing.conf\"\n",
        );
        let error = load(&main).unwrap_err();
        assert_eq!(
            error.to_string(),
            format!(
                "{}:2:3: cannot include '{}': No such file or directory (os error 2)",
                main.display(),
                dir.path().join("missing.conf").display()
            )
        );
    }

    #[test]
    fn include_cycle_names_the_chain() {
        let dir = tempfile::tempdir().unwrap();
        let a = write(dir.path(), "a.conf", "include b.conf\n");
        let b = write(dir.path(), "b.conf", "x = 1\ninclude a.conf\n");
        let error = load(&a).unwrap_err();
        assert_eq!(
            error.to_string(),
            format!(
                "{}:2:1: include cycle: {} -> {} -> {}",
                b.display(),
                a.display(),
                b.display(),
                dir.path().join("a.conf").display()
            )
        );
    }

    #[test]
    fn a_file_including_itself_is_a_cycle() {
        let dir = tempfile::tempdir().unwrap();
        let a = write(dir.path(), "a.conf", "include .\n");
        let error = load(&a).unwrap_err().to_string();
        assert!(
            error.starts_with(&format!(
                "{}:1:1: include cycle: {} -> ",
                a.display(),
                a.display()
            )),
            "{error}"
        );
    }

    #[test]
    fn syntax_errors_in_included_files_name_the_included_file() {
        let dir = tempfile::tempdir().unwrap();
        let bad = write(dir.path(), "bad.conf", "ok = 1\nbroken =\n");
        let main = write(dir.path(), "main.conf", "S {\n  include bad.conf\n}\n");
        let error = load(&main).unwrap_err();
        assert_eq!(
            error.to_string(),
            format!(
                "{}:3:1: expected a value after '=' but found end of file",
                bad.display()
            )
        );
    }

    #[test]
    fn included_files_must_balance_their_own_braces() {
        let dir = tempfile::tempdir().unwrap();
        let open = write(dir.path(), "open.conf", "S {\n");
        let main = write(dir.path(), "main.conf", "include open.conf\n}\n");
        let error = load(&main).unwrap_err();
        assert_eq!(
            error.to_string(),
            format!("{}:2:1: expected '}}' to close scope 'S' opened at line 1, column 3 but found end of file", open.display())
        );
    }

    #[test]
    fn leading_byte_order_mark_is_ignored() {
        let dir = tempfile::tempdir().unwrap();
        let main = write(dir.path(), "main.conf", "\u{feff}a = 1\n");
        let option = load(&main).unwrap().options.pop().unwrap();
        assert_eq!((option.name.as_str(), option.span.column), ("a", 1));
    }

    #[test]
    fn overly_deep_include_chains_are_refused() {
        let dir = tempfile::tempdir().unwrap();
        for index in 0..80 {
            write(
                dir.path(),
                &format!("f{index}.conf"),
                &format!("include f{}.conf\n", index + 1),
            );
        }
        write(dir.path(), "f80.conf", "end = 1\n");
        let error = load(&dir.path().join("f0.conf")).unwrap_err().to_string();
        assert!(
            error.ends_with("expected at most 64 nested includes but found more"),
            "{error}"
        );
    }
}
