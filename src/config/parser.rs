//! The grammar of the Momentum configuration syntax: turns one file's tokens into options
//! (`Name = value`, lists, dictionaries) and nested scopes, appended to a [`Scope`].
//!
//! No I/O here: `include` / `readonly_include` directives are handed to an [`IncludeHandler`]
//! (implemented in `include.rs`), which splices the included text into the current scope.
//! Nesting is bounded by [`MAX_SCOPE_DEPTH`] so no input can overflow the stack.

use std::path::PathBuf;
use std::sync::Arc;

use super::error::ConfigError;
use super::lexer::{shorten, Lexer, Pos, TokenKind};
use super::tree::{ConfigOption, Scope, Span, Value};

/// Deepest scope nesting accepted, counted from the top level of the outermost file.
pub(crate) const MAX_SCOPE_DEPTH: usize = 100;

/// One `include "path"` or `readonly_include "path"` directive as written.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct IncludeDirective {
    /// The path exactly as written (quotes removed).
    pub(crate) path: String,
    /// True for `readonly_include`, or for any include inside read-only text.
    pub(crate) readonly: bool,
    /// Where the keyword is; `span.file` is the including file.
    pub(crate) span: Span,
}

/// Reads what an include directive names and splices it into `into` (by calling [`parse_into`]).
pub(crate) trait IncludeHandler {
    /// Handles `directive`, found inside `into`, which is nested `depth` scopes deep.
    fn include(
        &mut self,
        directive: &IncludeDirective,
        into: &mut Scope,
        depth: usize,
    ) -> Result<(), ConfigError>;
}

/// Where the file's text came from and how its items are marked.
pub(crate) struct Source<'a> {
    /// The whole text of one file.
    pub(crate) text: &'a str,
    /// The file name used in spans and for resolving relative includes.
    pub(crate) file: Arc<PathBuf>,
    /// Whether every item read from this text is read-only.
    pub(crate) readonly: bool,
}

/// Parses `source` and appends its options and scopes to `into`, which is nested `depth` scopes deep.
/// The text must be balanced on its own: a scope cannot open in one file and close in another.
pub(crate) fn parse_into(
    source: Source<'_>,
    into: &mut Scope,
    depth: usize,
    includes: &mut dyn IncludeHandler,
) -> Result<(), ConfigError> {
    let mut parser = Parser {
        lexer: Lexer::new(source.text, source.file),
        readonly: source.readonly,
        includes,
    };
    parser.parse_body(into, depth, None)
}

/// The opening of a block that must be closed, for "opened at" messages.
struct Opening {
    what: String,
    at: Pos,
}

/// `opened at line L, column C`, naming where a block that is still open began.
fn opened_at(at: Pos) -> String {
    format!("opened at line {}, column {}", at.line, at.column)
}

struct Parser<'a, 'h> {
    lexer: Lexer<'a>,
    readonly: bool,
    includes: &'h mut dyn IncludeHandler,
}

/// `Some(readonly)` when `name` is an include keyword.
fn include_keyword(name: &str) -> Option<bool> {
    if name.eq_ignore_ascii_case("include") {
        Some(false)
    } else if name.eq_ignore_ascii_case("readonly_include") {
        Some(true)
    } else {
        None
    }
}

impl Parser<'_, '_> {
    fn span_at(&self, at: Pos) -> Span {
        self.lexer.span(at)
    }

    /// Reads items until the `}` closing `opening`, or until end of file at the top level.
    fn parse_body(
        &mut self,
        scope: &mut Scope,
        depth: usize,
        opening: Option<&Opening>,
    ) -> Result<(), ConfigError> {
        loop {
            let token = self.lexer.next_token()?;
            match token.kind {
                TokenKind::Word(name) => {
                    let span = self.span_at(token.at);
                    self.parse_item(name, span, scope, depth)?;
                }
                TokenKind::End => {
                    return match opening {
                        None => Ok(()),
                        Some(opening) => Err(ConfigError::unexpected(
                            self.span_at(token.at),
                            format!("'}}' to close {} {}", opening.what, opened_at(opening.at)),
                            token.kind.describe(),
                        )),
                    };
                }
                TokenKind::CloseBrace if opening.is_some() => return Ok(()),
                TokenKind::CloseBrace => {
                    return Err(ConfigError::unexpected(
                        self.span_at(token.at),
                        "an option or scope name",
                        "'}' (no scope is open)",
                    ))
                }
                other => {
                    return Err(ConfigError::unexpected(
                        self.span_at(token.at),
                        "an option or scope name",
                        other.describe(),
                    ))
                }
            }
        }
    }

    /// Reads what follows the name `name` (an option value, a scope body or an include path).
    fn parse_item(
        &mut self,
        name: String,
        span: Span,
        scope: &mut Scope,
        depth: usize,
    ) -> Result<(), ConfigError> {
        if let Some(readonly) = include_keyword(&name) {
            return self.parse_include(&name, span, readonly, scope, depth);
        }
        let token = self.lexer.next_token()?;
        let value = match token.kind {
            TokenKind::Equals => {
                let value_token = self.lexer.next_token()?;
                match value_token.kind {
                    TokenKind::Word(text) | TokenKind::Quoted(text) => {
                        let next = self.lexer.peek_token()?;
                        if next.kind == TokenKind::OpenBrace {
                            let brace_at = next.at;
                            let message = format!(
                                "expected an option or scope name but found '{{' \
                                 (a scope is written '{} \"{}\" {{' without '=')",
                                shorten(&name),
                                shorten(&text)
                            );
                            return Err(ConfigError::Syntax {
                                span: self.span_at(brace_at),
                                message,
                            });
                        }
                        Value::Scalar(text)
                    }
                    TokenKind::OpenParen => Value::List(self.parse_list(&name, value_token.at)?),
                    TokenKind::OpenBracket => Value::Dict(self.parse_dict(&name, value_token.at)?),
                    TokenKind::OpenBrace => {
                        let message = format!(
                            "expected a value after '=' but found '{{' (a scope is written '{} {{' without '=')",
                            shorten(&name)
                        );
                        return Err(ConfigError::Syntax {
                            span: self.span_at(value_token.at),
                            message,
                        });
                    }
                    other => {
                        return Err(ConfigError::unexpected(
                            self.span_at(value_token.at),
                            "a value after '='",
                            other.describe(),
                        ))
                    }
                }
            }
            TokenKind::Word(text) | TokenKind::Quoted(text) => {
                if self.lexer.peek_token()?.kind == TokenKind::OpenBrace {
                    let brace = self.lexer.next_token()?;
                    return self.parse_scope(name, Some(text), span, brace.at, scope, depth);
                }
                Value::Scalar(text)
            }
            TokenKind::OpenBrace => {
                return self.parse_scope(name, None, span, token.at, scope, depth)
            }
            TokenKind::OpenParen => Value::List(self.parse_list(&name, token.at)?),
            TokenKind::OpenBracket => Value::Dict(self.parse_dict(&name, token.at)?),
            other => {
                return Err(ConfigError::unexpected(
                    self.span_at(token.at),
                    format!("'=', a value, '(', '[' or '{{' after '{}'", shorten(&name)),
                    other.describe(),
                ))
            }
        };
        scope.options.push(ConfigOption {
            name,
            value,
            span,
            readonly: self.readonly,
        });
        Ok(())
    }

    fn parse_scope(
        &mut self,
        kind: String,
        name: Option<String>,
        span: Span,
        brace: Pos,
        parent: &mut Scope,
        depth: usize,
    ) -> Result<(), ConfigError> {
        if depth >= MAX_SCOPE_DEPTH {
            return Err(ConfigError::unexpected(
                self.span_at(brace),
                format!("at most {MAX_SCOPE_DEPTH} nested scopes"),
                "more",
            ));
        }
        let mut child = Scope::new(kind, name, span);
        let opening = Opening {
            what: format!("scope '{}'", shorten(&child.describe())),
            at: brace,
        };
        self.parse_body(&mut child, depth + 1, Some(&opening))?;
        parent.scopes.push(child);
        Ok(())
    }

    /// Reads list items after `open` (the `(`) up to the matching `)`.
    fn parse_list(&mut self, name: &str, open: Pos) -> Result<Vec<String>, ConfigError> {
        let mut items = Vec::new();
        loop {
            let token = self.lexer.next_token()?;
            match token.kind {
                TokenKind::Word(item) | TokenKind::Quoted(item) => items.push(item),
                TokenKind::CloseParen => return Ok(items),
                other => {
                    return Err(ConfigError::unexpected(
                        self.span_at(token.at),
                        format!(
                            "a list item or ')' for the list of '{}' {}",
                            shorten(name),
                            opened_at(open)
                        ),
                        other.describe(),
                    ));
                }
            }
        }
    }

    /// Reads `key [=] value` pairs after `open` (the `[`) up to the matching `]`.
    fn parse_dict(&mut self, name: &str, open: Pos) -> Result<Vec<(String, String)>, ConfigError> {
        let mut entries = Vec::new();
        loop {
            let token = self.lexer.next_token()?;
            let key = match token.kind {
                TokenKind::Word(key) | TokenKind::Quoted(key) => key,
                TokenKind::CloseBracket => return Ok(entries),
                other => {
                    return Err(ConfigError::unexpected(
                        self.span_at(token.at),
                        format!(
                            "a key or ']' for the dictionary of '{}' {}",
                            shorten(name),
                            opened_at(open)
                        ),
                        other.describe(),
                    ));
                }
            };
            let mut value_token = self.lexer.next_token()?;
            if value_token.kind == TokenKind::Equals {
                value_token = self.lexer.next_token()?;
            }
            match value_token.kind {
                TokenKind::Word(value) | TokenKind::Quoted(value) => entries.push((key, value)),
                other => {
                    return Err(ConfigError::unexpected(
                        self.span_at(value_token.at),
                        format!(
                            "a value for key '{}' in the dictionary of '{}'",
                            shorten(&key),
                            shorten(name)
                        ),
                        other.describe(),
                    ))
                }
            }
        }
    }

    fn parse_include(
        &mut self,
        keyword: &str,
        span: Span,
        readonly: bool,
        scope: &mut Scope,
        depth: usize,
    ) -> Result<(), ConfigError> {
        let token = self.lexer.next_token()?;
        let path = match token.kind {
            TokenKind::Word(path) | TokenKind::Quoted(path) if !path.is_empty() => path,
            other => {
                return Err(ConfigError::unexpected(
                    self.span_at(token.at),
                    format!("a path after '{keyword}'"),
                    other.describe(),
                ))
            }
        };
        let directive = IncludeDirective {
            path,
            readonly: self.readonly || readonly,
            span,
        };
        self.includes.include(&directive, scope, depth)
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use crate::config::{parse_str, Scope, Value};
    use std::path::Path;

    fn parse(text: &str) -> Scope {
        parse_str(text, Path::new("test.conf")).unwrap()
    }

    fn scalar(text: &str) -> Value {
        Value::Scalar(text.to_owned())
    }

    fn strings(items: &[&str]) -> Vec<String> {
        items.iter().map(|item| (*item).to_owned()).collect()
    }

    #[test]
    fn option_with_equals() {
        let root = parse("Bind_Address = 192.168.0.51\n");
        let option = root.option("bind_address").unwrap();
        assert_eq!(option.name, "Bind_Address");
        assert_eq!(option.value, scalar("192.168.0.51"));
        assert_eq!((option.span.line, option.span.column), (1, 1));
        assert!(!option.readonly);
    }

    #[test]
    fn option_without_equals() {
        let root = parse("Suspend_Delivery enabled\nMessage_Expiration\n  86400");
        assert_eq!(
            root.option("suspend_delivery").unwrap().value,
            scalar("enabled")
        );
        assert_eq!(
            root.option("Message_Expiration").unwrap().value,
            scalar("86400")
        );
    }

    #[test]
    fn quoted_unquoted_and_escaped_values() {
        let root = parse(
            "a = \"with spaces { } = #\"\nb = unquoted/path:25\nc = \"say \\\"hi\\\" \\\\ there\"\nd = 'single \"q\"'\ne = \"\"\n",
        );
        assert_eq!(
            root.option("a").unwrap().value,
            scalar("with spaces { } = #")
        );
        assert_eq!(root.option("b").unwrap().value, scalar("unquoted/path:25"));
        assert_eq!(
            root.option("c").unwrap().value,
            scalar("say \"hi\" \\ there")
        );
        assert_eq!(root.option("d").unwrap().value, scalar("single \"q\""));
        assert_eq!(root.option("e").unwrap().value, scalar(""));
    }

    #[test]
    fn lists_with_and_without_equals_across_lines() {
        let root = parse(
            "allow = ( \"^config\" \"^summary$\" )\nRelay_Hosts ( 10.0.0.1 10.0.0.2 )\nSMTP_Extensions = (\n  \"A B\"\n  C\n)\nempty = ()\n",
        );
        assert_eq!(
            root.option("allow").unwrap().value,
            Value::List(strings(&["^config", "^summary$"]))
        );
        assert_eq!(
            root.option("relay_hosts").unwrap().value,
            Value::List(strings(&["10.0.0.1", "10.0.0.2"]))
        );
        assert_eq!(
            root.option("smtp_extensions").unwrap().value,
            Value::List(strings(&["A B", "C"]))
        );
        assert_eq!(root.option("empty").unwrap().value, Value::List(Vec::new()));
    }

    #[test]
    fn dictionaries_with_optional_equals_across_lines() {
        let root = parse(
            "logs = [ rejectlog = \"/var/log/r\" paniclog = /var/log/p ]\nAuthDigestMD5Parameters [\n  uri \"x y\"\n  'k 2' = v2\n]\nnone = [ ]\n",
        );
        let pair = |k: &str, v: &str| (k.to_owned(), v.to_owned());
        assert_eq!(
            root.option("LOGS").unwrap().value,
            Value::Dict(vec![
                pair("rejectlog", "/var/log/r"),
                pair("paniclog", "/var/log/p")
            ])
        );
        assert_eq!(
            root.option("authdigestmd5parameters").unwrap().value,
            Value::Dict(vec![pair("uri", "x y"), pair("k 2", "v2")])
        );
        assert_eq!(root.option("none").unwrap().value, Value::Dict(Vec::new()));
    }

    #[test]
    fn anonymous_scope() {
        let root = parse("ESMTP_Listener {\n  Port = 25\n}\n");
        let scope = root.scope("esmtp_listener", None).unwrap();
        assert_eq!(scope.kind, "ESMTP_Listener");
        assert_eq!(scope.name, None);
        assert_eq!((scope.span.line, scope.span.column), (1, 1));
        assert_eq!(scope.option("port").unwrap().value, scalar("25"));
        assert!(root.options.is_empty());
    }

    #[test]
    fn named_scope_with_quoted_name() {
        let root = parse("Binding \"b1\" { }\nListen \"/tmp/2025\" { File_Mode = 0666 }\nTopology \"10.1.1.0/24\" {}");
        assert!(root
            .scope("binding", Some("b1"))
            .unwrap()
            .options
            .is_empty());
        assert_eq!(
            root.scope("listen", Some("/tmp/2025"))
                .unwrap()
                .option("file_mode")
                .unwrap()
                .value,
            scalar("0666")
        );
        assert!(root.scope("topology", Some("10.1.1.0/24")).is_some());
    }

    #[test]
    fn named_scope_with_bare_name() {
        let root = parse(
            "Listen /tmp/2025 {}\nDomain yahoo.com { Max_Outbound_Connections = 4 }\nListen :25{}",
        );
        assert!(root.scope("listen", Some("/tmp/2025")).is_some());
        assert!(root.scope("listen", Some(":25")).is_some());
        let domain = root.scope("domain", Some("yahoo.com")).unwrap();
        assert_eq!(
            domain.option("max_outbound_connections").unwrap().value,
            scalar("4")
        );
    }

    #[test]
    fn brace_on_the_next_line() {
        let root = parse("mail_loop \"mail_loop1\"\n{\n  a = 1\n}\nsecurity\n{\n}\n");
        assert_eq!(
            root.scope("mail_loop", Some("mail_loop1"))
                .unwrap()
                .option("a")
                .unwrap()
                .value,
            scalar("1")
        );
        assert!(root.scope("Security", None).is_some());
    }

    #[test]
    fn scopes_nest_and_mix_with_options_in_any_order() {
        let root = parse(
            "top = 1\nA {\n  x = 1\n  B \"b\" {\n    C {\n      deep = yes\n    }\n  }\n  y = 2\n}\nbottom = 2\n",
        );
        assert_eq!(root.options.len(), 2);
        let a = root.scope("a", None).unwrap();
        assert_eq!(
            a.options
                .iter()
                .map(|o| o.name.as_str())
                .collect::<Vec<_>>(),
            ["x", "y"]
        );
        let c = a.scope("b", Some("b")).unwrap().scope("c", None).unwrap();
        let deep = c.option("deep").unwrap();
        assert_eq!(deep.value, scalar("yes"));
        assert_eq!((deep.span.line, deep.span.column), (6, 7));
    }

    #[test]
    fn hash_comments_are_ignored() {
        let root = parse("# heading\na = 1 # trailing\n  # b = 2\nc = \"# not a comment\"\n");
        assert_eq!(root.options.len(), 2);
        assert_eq!(root.option("c").unwrap().value, scalar("# not a comment"));
    }

    #[test]
    fn block_comments_are_ignored() {
        let root = parse("/* heading\n   b = 2 */ a /* between */ = /* x */ 1\nc = /tmp/x/*y*/\n");
        assert_eq!(root.options.len(), 2);
        assert_eq!(root.option("a").unwrap().value, scalar("1"));
        assert_eq!(root.option("c").unwrap().value, scalar("/tmp/x"));
        assert!(root.option("b").is_none());
    }

    #[test]
    fn empty_and_comment_only_text_is_an_empty_scope() {
        for text in ["", "  \n\t", "# only\n/* comment */"] {
            let root = parse(text);
            assert!(root.options.is_empty() && root.scopes.is_empty());
            assert_eq!(root.kind, "");
            assert_eq!(root.name, None);
        }
    }
}
