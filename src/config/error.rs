//! [`ConfigError`]: every way reading or interpreting a Momentum-style configuration can fail,
//! and the exact text each failure prints.
//!
//! Owns only the error type and its messages; no parsing and no I/O here. Every message starts
//! with `FILE:LINE:COLUMN: ` (or `FILE: ` for a file that could not be read at all), is lowercase,
//! has no trailing period and says what was expected.

use std::io;
use std::path::PathBuf;

use super::tree::Span;

/// Why a configuration could not be loaded or an option could not be interpreted.
///
/// Loading never changes state: when `parse_str`/`load` return an error, no part of the
/// configuration is returned, so the caller keeps whatever configuration it was running with.
#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    /// The text breaks the grammar at `span`, for example a missing value, an unclosed or stray
    /// brace, or `=` in the wrong place; `message` says what was expected and what was found.
    /// Parsing stops at the first such error and nothing is returned. Expected for hand-edited
    /// files; a tree printed by `render` never produces it.
    #[error("{span}: {message}")]
    Syntax {
        /// Where the offending token (or end of file) is.
        span: Span,
        /// What was expected and what was found instead.
        message: String,
    },

    /// A quoted string opened at `span` is not closed before the end of its line or of the file.
    /// Parsing stops; nothing is returned. Expected for hand-edited files.
    #[error("{span}: unterminated string (started here)")]
    UnterminatedString {
        /// Where the opening quote is.
        span: Span,
    },

    /// A `/* ... */` comment opened at `span` has no closing `*/`. Parsing stops; nothing is
    /// returned. Expected for hand-edited files.
    #[error("{span}: unterminated comment (started here)")]
    UnterminatedComment {
        /// Where the opening `/*` is.
        span: Span,
    },

    /// The file is not valid UTF-8 at `span`. Parsing stops before any of the file is read;
    /// nothing is returned. Not expected in normal operation (a binary or wrongly encoded file).
    #[error("{span}: expected utf-8 text but found an invalid byte sequence")]
    InvalidUtf8 {
        /// The position of the first invalid byte.
        span: Span,
    },

    /// The `include` at `span` would read a file that is already being read; `chain` lists the
    /// files from the first one of the cycle to the repeated one, joined by ` -> `. Parsing
    /// stops; nothing is returned. Expected only after an editing mistake.
    #[error("{span}: include cycle: {chain}")]
    IncludeCycle {
        /// Where the `include` that closes the cycle is.
        span: Span,
        /// The files of the cycle, joined by ` -> `.
        chain: String,
    },

    /// The `include` at `span` names `path`, which could not be read (missing, unreadable, or a
    /// directory that could not be listed); the OS error is printed after the path. Parsing
    /// stops; nothing is returned. Expected when a deployment is incomplete.
    #[error("{span}: cannot include '{}': {error}", path.display())]
    Include {
        /// Where the `include` keyword is.
        span: Span,
        /// The resolved path that failed.
        path: PathBuf,
        /// What the operating system reported.
        error: io::Error,
    },

    /// The `include` at `span` was refused before or while reading `path` because it would
    /// pass a limit that keeps a start-up bounded: too many nested includes, too many files or
    /// bytes read in all (an include fan-out), or a single file too large; `chain` lists the
    /// files being read, outermost first, joined by ` -> `. Parsing stops; nothing is returned.
    /// Not expected in normal operation (a runaway include tree).
    #[error("{span}: cannot include '{}': {reason} (include chain: {chain})", path.display())]
    IncludeLimit {
        /// Where the `include` keyword is.
        span: Span,
        /// The resolved path that was refused.
        path: PathBuf,
        /// Which limit, and its value.
        reason: String,
        /// The files being read when the limit was reached, joined by ` -> `.
        chain: String,
    },

    /// The top-level file `path` given to `load` could not be read; the OS error is printed after
    /// the path. Nothing is returned. Expected when the path is wrong or permissions are missing.
    #[error("{}: {error}", path.display())]
    Io {
        /// The file that could not be read.
        path: PathBuf,
        /// What the operating system reported.
        error: io::Error,
    },

    /// The option at `span` is well-formed but its value is not of the kind asked for (for
    /// example `as_bool` on `maybe`, or `as_str` on a list). The tree is unchanged. Expected when
    /// an operator mistypes a value; the validator turns it into a rejected configuration.
    #[error("{span}: expected {expected} for option '{option}' but found {found}")]
    WrongType {
        /// Where the option name is.
        span: Span,
        /// The option name as written.
        option: String,
        /// What the caller asked for, e.g. `a whole number`.
        expected: &'static str,
        /// What the value was, e.g. `'maybe'` or `a list`.
        found: String,
    },

    /// The configuration is well-formed but breaks a rule of the setting it configures (an
    /// unknown option in a scope eccluster owns, a value out of range, two declarations that
    /// conflict); `message` says what is wrong and how to fix it. Nothing was applied: the
    /// reader returns no settings, so the caller keeps what it was running with. Expected from
    /// hand-edited files.
    #[error("{span}: {message}")]
    Invalid {
        /// Where the offending option or scope is.
        span: Span,
        /// What is wrong and what to do about it.
        message: String,
    },
}

impl ConfigError {
    /// A [`ConfigError::Syntax`] with the message `expected {expected} but found {found}`.
    pub(crate) fn unexpected(
        span: Span,
        expected: impl AsRef<str>,
        found: impl AsRef<str>,
    ) -> Self {
        ConfigError::Syntax {
            span,
            message: format!(
                "expected {} but found {}",
                expected.as_ref(),
                found.as_ref()
            ),
        }
    }

    /// Where the error is, when it has a line and column (every variant except [`ConfigError::Io`]).
    pub fn span(&self) -> Option<&Span> {
        match self {
            ConfigError::Syntax { span, .. }
            | ConfigError::UnterminatedString { span }
            | ConfigError::UnterminatedComment { span }
            | ConfigError::InvalidUtf8 { span }
            | ConfigError::IncludeCycle { span, .. }
            | ConfigError::Include { span, .. }
            | ConfigError::IncludeLimit { span, .. }
            | ConfigError::WrongType { span, .. }
            | ConfigError::Invalid { span, .. } => Some(span),
            ConfigError::Io { .. } => None,
        }
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use crate::config::{load, parse_str, ConfigError};
    use std::path::Path;

    fn error(text: &str) -> String {
        parse_str(text, Path::new("test.conf"))
            .unwrap_err()
            .to_string()
    }

    #[test]
    fn unterminated_string_points_at_its_opening_quote() {
        assert_eq!(
            error("a = 1\nb = \"abc\nc = 2\n"),
            "test.conf:2:5: unterminated string (started here)"
        );
        assert_eq!(
            error("x {\n  y = 'abc"),
            "test.conf:2:7: unterminated string (started here)"
        );
        assert_eq!(
            error("b = \"ends with escape\\\""),
            "test.conf:1:5: unterminated string (started here)"
        );
    }

    #[test]
    fn unterminated_comment_points_at_its_opening() {
        assert_eq!(
            error("a = 1\n  /* never\n closed\n"),
            "test.conf:2:3: unterminated comment (started here)"
        );
    }

    #[test]
    fn missing_value_before_closing_brace() {
        assert_eq!(
            error("s {\n  Name =\n}\n"),
            "test.conf:3:1: expected a value after '=' but found '}'"
        );
    }

    #[test]
    fn missing_value_at_end_of_file() {
        assert_eq!(
            error("Name ="),
            "test.conf:1:7: expected a value after '=' but found end of file"
        );
        assert_eq!(
            error("Name\n"),
            "test.conf:2:1: expected '=', a value, '(', '[' or '{' after 'Name' but found end of file"
        );
    }

    #[test]
    fn unbalanced_open_brace_names_the_unclosed_scope() {
        assert_eq!(
            error("a {\n  Binding \"b1\" {\n  x = 1\n}\n"),
            "test.conf:5:1: expected '}' to close scope 'a' opened at line 1, column 3 but found end of file"
        );
    }

    #[test]
    fn stray_closing_brace_at_top_level() {
        assert_eq!(
            error("a = 1\n}\n"),
            "test.conf:2:1: expected an option or scope name but found '}' (no scope is open)"
        );
    }

    #[test]
    fn equals_in_the_wrong_place() {
        assert_eq!(
            error("= 1"),
            "test.conf:1:1: expected an option or scope name but found '='"
        );
        assert_eq!(
            error("a = = 1"),
            "test.conf:1:5: expected a value after '=' but found '='"
        );
        assert_eq!(
            error("Binding = \"b1\" { }"),
            "test.conf:1:16: expected an option or scope name but found '{' \
             (a scope is written 'Binding \"b1\" {' without '=')"
        );
        assert_eq!(
            error("cluster = {\n}"),
            "test.conf:1:11: expected a value after '=' but found '{' (a scope is written 'cluster {' without '=')"
        );
        assert_eq!(
            error("a = ( x = y )"),
            "test.conf:1:9: expected a list item or ')' for the list of 'a' opened at line 1, column 5 but found '='"
        );
    }

    #[test]
    fn unbalanced_lists_and_dictionaries() {
        assert_eq!(
            error("s {\n  Relay_Hosts ( 10.0.0.1\n}\n"),
            "test.conf:3:1: expected a list item or ')' for the list of 'Relay_Hosts' opened at line 2, \
             column 15 but found '}'"
        );
        assert_eq!(
            error("logs = [ a = b\n"),
            "test.conf:2:1: expected a key or ']' for the dictionary of 'logs' opened at line 1, column 8 \
             but found end of file"
        );
        assert_eq!(
            error("logs = [ a = ]"),
            "test.conf:1:14: expected a value for key 'a' in the dictionary of 'logs' but found ']'"
        );
        assert_eq!(
            error("a = )"),
            "test.conf:1:5: expected a value after '=' but found ')'"
        );
        assert_eq!(
            error("a ( ( b ) )"),
            "test.conf:1:5: expected a list item or ')' for the list of 'a' opened at line 1, column 3 but found '('"
        );
    }

    #[test]
    fn quoted_text_cannot_be_a_name() {
        assert_eq!(
            error("\"Name\" = 1"),
            "test.conf:1:1: expected an option or scope name but found string \"Name\""
        );
    }

    #[test]
    fn include_needs_a_path() {
        assert_eq!(
            error("include }"),
            "test.conf:1:9: expected a path after 'include' but found '}'"
        );
        assert_eq!(
            error("s { READONLY_INCLUDE = x }"),
            "test.conf:1:22: expected a path after 'READONLY_INCLUDE' but found '='"
        );
        assert_eq!(
            error("include \"\""),
            "test.conf:1:9: expected a path after 'include' but found an empty string"
        );
    }

    #[test]
    fn control_characters_are_rejected() {
        assert_eq!(error("a = b\u{1}c"), "test.conf:1:6: expected a word, string or punctuation but found control character U+0001");
    }

    #[test]
    fn deep_nesting_is_refused_not_overflowed() {
        let text = "a {".repeat(100_000);
        assert_eq!(
            error(&text),
            "test.conf:1:303: expected at most 100 nested scopes but found more"
        );
    }

    #[test]
    fn long_words_are_shortened_in_messages() {
        let word = "w".repeat(100);
        let message = error(&format!("a = = {word}"));
        assert_eq!(
            message,
            "test.conf:1:5: expected a value after '=' but found '='"
        );
        let message = error(&format!("a ( ) {word}"));
        assert_eq!(
            message,
            format!("test.conf:1:107: expected '=', a value, '(', '[' or '{{' after '{}...' but found end of file", "w".repeat(40))
        );
    }

    #[test]
    fn load_of_a_missing_file_names_it() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("nope.conf");
        let error = load(&path).unwrap_err();
        assert!(matches!(error, ConfigError::Io { .. }));
        assert!(error.span().is_none());
        assert_eq!(
            error.to_string(),
            format!("{}: No such file or directory (os error 2)", path.display())
        );
    }

    #[test]
    fn load_of_invalid_utf8_names_the_position() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("bad.conf");
        std::fs::write(&path, b"a = 1\nb = \"h\xc3\xa9\xff\"\n").unwrap();
        let error = load(&path).unwrap_err();
        assert_eq!(
            error.to_string(),
            format!(
                "{}:2:8: expected utf-8 text but found an invalid byte sequence",
                path.display()
            )
        );
        assert_eq!(error.span().map(|span| span.line), Some(2));
    }
}
