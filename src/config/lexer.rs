//! Tokenizer for the Momentum configuration syntax: skips whitespace, `#` and `/* */` comments,
//! and yields bare words, quoted strings and the punctuation `= { } [ ] ( )`, each with its
//! line and column.
//!
//! Owns character-level rules only (what a bare word is, quoting and escapes); no grammar and no
//! I/O here. Never panics: every malformed input becomes a [`ConfigError`].

use std::path::PathBuf;
use std::sync::Arc;

use super::error::ConfigError;
use super::tree::Span;

/// Characters that end a bare word besides whitespace and control characters.
const SPECIAL: &[char] = &['#', '"', '\'', '=', '{', '}', '[', ']', '(', ')'];

/// Longest word or string shown verbatim in a message before it is shortened with `...`.
const SHOWN_CHARS: usize = 40;

/// True when `ch` may appear in an unquoted word (a `/` only counts when not followed by `*`).
pub(crate) fn is_bare_char(ch: char) -> bool {
    !ch.is_whitespace() && !ch.is_control() && !SPECIAL.contains(&ch)
}

/// `text`, cut to [`SHOWN_CHARS`] characters with `...` appended when longer (for messages).
pub(crate) fn shorten(text: &str) -> String {
    let mut chars = text.chars();
    let shown: String = chars.by_ref().take(SHOWN_CHARS).collect();
    if chars.next().is_some() {
        format!("{shown}...")
    } else {
        shown
    }
}

/// What a token is.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum TokenKind {
    /// An unquoted word such as `ESMTP_Listener`, `10.1.1.0/24` or `/tmp/2025`.
    Word(String),
    /// A `"..."` or `'...'` string, quotes removed and escapes resolved.
    Quoted(String),
    /// `=`
    Equals,
    /// `{`
    OpenBrace,
    /// `}`
    CloseBrace,
    /// `[`
    OpenBracket,
    /// `]`
    CloseBracket,
    /// `(`
    OpenParen,
    /// `)`
    CloseParen,
    /// The end of the text.
    End,
}

impl TokenKind {
    /// How the token is named after "but found" in messages.
    pub(crate) fn describe(&self) -> String {
        match self {
            TokenKind::Word(word) => format!("'{}'", shorten(word)),
            TokenKind::Quoted(text) if text.is_empty() => "an empty string".to_owned(),
            TokenKind::Quoted(text) => format!("string \"{}\"", shorten(text)),
            TokenKind::Equals => "'='".to_owned(),
            TokenKind::OpenBrace => "'{'".to_owned(),
            TokenKind::CloseBrace => "'}'".to_owned(),
            TokenKind::OpenBracket => "'['".to_owned(),
            TokenKind::CloseBracket => "']'".to_owned(),
            TokenKind::OpenParen => "'('".to_owned(),
            TokenKind::CloseParen => "')'".to_owned(),
            TokenKind::End => "end of file".to_owned(),
        }
    }
}

/// A 1-based line and column in the text being read.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Pos {
    pub(crate) line: u32,
    pub(crate) column: u32,
}

/// A token and where it starts.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Token {
    pub(crate) kind: TokenKind,
    pub(crate) at: Pos,
}

/// Splits one file's text into tokens, with one token of lookahead.
pub(crate) struct Lexer<'a> {
    text: &'a str,
    offset: usize,
    line: u32,
    column: u32,
    file: Arc<PathBuf>,
    peeked: Option<Token>,
}

impl<'a> Lexer<'a> {
    /// A lexer at line 1, column 1 of `text`, which was read from `file`.
    pub(crate) fn new(text: &'a str, file: Arc<PathBuf>) -> Self {
        Lexer {
            text,
            offset: 0,
            line: 1,
            column: 1,
            file,
            peeked: None,
        }
    }

    /// A lexer over `text` starting at byte `offset`, which is at `line`:`column` (for
    /// finding where an item that starts there ends).
    pub(crate) fn starting_at(text: &'a str, file: Arc<PathBuf>, offset: usize, line: u32, column: u32) -> Self {
        Lexer { text, offset, line, column, file, peeked: None }
    }

    /// The byte offset just past the last token taken with [`Lexer::next_token`] (a peeked
    /// token counts as taken).
    pub(crate) fn offset(&self) -> usize {
        self.offset
    }

    /// A span in this lexer's file.
    pub(crate) fn span(&self, at: Pos) -> Span {
        Span::new(Arc::clone(&self.file), at.line, at.column)
    }

    fn here(&self) -> Pos {
        Pos {
            line: self.line,
            column: self.column,
        }
    }

    /// The next token, consuming it.
    pub(crate) fn next_token(&mut self) -> Result<Token, ConfigError> {
        match self.peeked.take() {
            Some(token) => Ok(token),
            None => self.lex(),
        }
    }

    /// The next token, without consuming it.
    pub(crate) fn peek_token(&mut self) -> Result<&Token, ConfigError> {
        let token = match self.peeked.take() {
            Some(token) => token,
            None => self.lex()?,
        };
        Ok(self.peeked.insert(token))
    }

    fn peek_char(&self) -> Option<char> {
        self.text.get(self.offset..)?.chars().next()
    }

    fn peek_second_char(&self) -> Option<char> {
        let mut chars = self.text.get(self.offset..)?.chars();
        chars.next();
        chars.next()
    }

    fn bump(&mut self) -> Option<char> {
        let ch = self.peek_char()?;
        self.offset += ch.len_utf8();
        if ch == '\n' {
            self.line = self.line.saturating_add(1);
            self.column = 1;
        } else {
            self.column = self.column.saturating_add(1);
        }
        Some(ch)
    }

    /// Skips whitespace and both comment styles.
    fn skip_trivia(&mut self) -> Result<(), ConfigError> {
        loop {
            match self.peek_char() {
                Some(ch) if ch.is_whitespace() => {
                    self.bump();
                }
                Some('#') => {
                    while self.peek_char().is_some_and(|ch| ch != '\n') {
                        self.bump();
                    }
                }
                Some('/') if self.peek_second_char() == Some('*') => self.skip_block_comment()?,
                _ => return Ok(()),
            }
        }
    }

    fn skip_block_comment(&mut self) -> Result<(), ConfigError> {
        let at = self.here();
        self.bump();
        self.bump();
        loop {
            match self.bump() {
                None => {
                    return Err(ConfigError::UnterminatedComment {
                        span: self.span(at),
                    })
                }
                Some('*') if self.peek_char() == Some('/') => {
                    self.bump();
                    return Ok(());
                }
                Some(_) => {}
            }
        }
    }

    fn lex(&mut self) -> Result<Token, ConfigError> {
        self.skip_trivia()?;
        let at = self.here();
        let Some(ch) = self.peek_char() else {
            return Ok(Token {
                kind: TokenKind::End,
                at,
            });
        };
        let punctuation = match ch {
            '=' => Some(TokenKind::Equals),
            '{' => Some(TokenKind::OpenBrace),
            '}' => Some(TokenKind::CloseBrace),
            '[' => Some(TokenKind::OpenBracket),
            ']' => Some(TokenKind::CloseBracket),
            '(' => Some(TokenKind::OpenParen),
            ')' => Some(TokenKind::CloseParen),
            _ => None,
        };
        let kind = if let Some(kind) = punctuation {
            self.bump();
            kind
        } else if ch == '"' || ch == '\'' {
            TokenKind::Quoted(self.lex_quoted(ch)?)
        } else if is_bare_char(ch) {
            TokenKind::Word(self.lex_word())
        } else {
            return Err(ConfigError::unexpected(
                self.span(at),
                "a word, string or punctuation",
                format!("control character U+{:04X}", u32::from(ch)),
            ));
        };
        Ok(Token { kind, at })
    }

    /// Reads a string opened by `quote`; `\quote` and `\\` are escapes, any other backslash is kept.
    fn lex_quoted(&mut self, quote: char) -> Result<String, ConfigError> {
        let at = self.here();
        self.bump();
        let mut text = String::new();
        loop {
            match self.bump() {
                None | Some('\n') => {
                    return Err(ConfigError::UnterminatedString {
                        span: self.span(at),
                    })
                }
                Some('\\') => match self.peek_char() {
                    Some(next) if next == quote || next == '\\' => {
                        self.bump();
                        text.push(next);
                    }
                    _ => text.push('\\'),
                },
                Some(ch) if ch == quote => return Ok(text),
                Some(ch) => text.push(ch),
            }
        }
    }

    fn lex_word(&mut self) -> String {
        let mut word = String::new();
        while let Some(ch) = self.peek_char() {
            if !is_bare_char(ch) || (ch == '/' && self.peek_second_char() == Some('*')) {
                break;
            }
            self.bump();
            word.push(ch);
        }
        word
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    fn tokens(text: &str) -> Vec<(TokenKind, u32, u32)> {
        let mut lexer = Lexer::new(text, Arc::new(PathBuf::from("t.conf")));
        let mut out = Vec::new();
        loop {
            let token = lexer.next_token().unwrap();
            if token.kind == TokenKind::End {
                return out;
            }
            out.push((token.kind, token.at.line, token.at.column));
        }
    }

    fn word(text: &str) -> TokenKind {
        TokenKind::Word(text.to_owned())
    }

    fn quoted(text: &str) -> TokenKind {
        TokenKind::Quoted(text.to_owned())
    }

    #[test]
    fn bare_words_keep_slashes_dots_and_colons() {
        let found: Vec<TokenKind> =
            tokens("/tmp/2025 10.1.1.0/24 :25 a_b-c*d@e+f!g$h%i~j,k;l \\x é")
                .into_iter()
                .map(|t| t.0)
                .collect();
        assert_eq!(
            found,
            vec![
                word("/tmp/2025"),
                word("10.1.1.0/24"),
                word(":25"),
                word("a_b-c*d@e+f!g$h%i~j,k;l"),
                word("\\x"),
                word("é"),
            ]
        );
    }

    #[test]
    fn special_characters_end_a_word() {
        let found: Vec<TokenKind> = tokens("a=b{c}d[e]f(g)h").into_iter().map(|t| t.0).collect();
        assert_eq!(
            found,
            vec![
                word("a"),
                TokenKind::Equals,
                word("b"),
                TokenKind::OpenBrace,
                word("c"),
                TokenKind::CloseBrace,
                word("d"),
                TokenKind::OpenBracket,
                word("e"),
                TokenKind::CloseBracket,
                word("f"),
                TokenKind::OpenParen,
                word("g"),
                TokenKind::CloseParen,
                word("h"),
            ]
        );
    }

    #[test]
    fn hash_comments_run_to_end_of_line() {
        assert_eq!(
            tokens("a # b = c\n  d#e\n"),
            vec![(word("a"), 1, 1), (word("d"), 2, 3)]
        );
    }

    #[test]
    fn block_comments_span_lines_and_do_not_nest() {
        assert_eq!(
            tokens("a /* x\n /* y */ b */ c/*z*/d"),
            vec![
                (word("a"), 1, 1),
                (word("b"), 2, 10),
                (word("*/"), 2, 12),
                (word("c"), 2, 15),
                (word("d"), 2, 21)
            ]
        );
    }

    #[test]
    fn quoted_strings_resolve_escapes() {
        assert_eq!(
            tokens(r#""a \"b\" \\ c" 'it\'s' "\d\n" "x'y" 'x"y' """#)
                .into_iter()
                .map(|t| t.0)
                .collect::<Vec<_>>(),
            vec![
                quoted("a \"b\" \\ c"),
                quoted("it's"),
                quoted("\\d\\n"),
                quoted("x'y"),
                quoted("x\"y"),
                quoted(""),
            ]
        );
    }

    #[test]
    fn columns_count_characters_not_bytes() {
        assert_eq!(
            tokens("é = ü\n\tx"),
            vec![
                (word("é"), 1, 1),
                (TokenKind::Equals, 1, 3),
                (word("ü"), 1, 5),
                (word("x"), 2, 2)
            ]
        );
    }

    #[test]
    fn peek_does_not_consume() {
        let mut lexer = Lexer::new("a b", Arc::new(PathBuf::from("t.conf")));
        assert_eq!(lexer.peek_token().unwrap().kind, word("a"));
        assert_eq!(lexer.peek_token().unwrap().kind, word("a"));
        assert_eq!(lexer.next_token().unwrap().kind, word("a"));
        assert_eq!(lexer.next_token().unwrap().kind, word("b"));
        assert_eq!(lexer.next_token().unwrap().kind, TokenKind::End);
        assert_eq!(lexer.next_token().unwrap().kind, TokenKind::End);
    }

    #[test]
    fn describe_shortens_long_text() {
        assert_eq!(
            TokenKind::Word("x".repeat(41)).describe(),
            format!("'{}...'", "x".repeat(40))
        );
        assert_eq!(TokenKind::Quoted("abc".into()).describe(), "string \"abc\"");
        assert_eq!(TokenKind::End.describe(), "end of file");
    }
}
