//! Parsing one console command line into words and an output format.
//!
//! The grammar is the one operators type at the Momentum console: words separated by
//! whitespace, double quotes group a word that contains spaces (`config set Foo "a b"`), and a
//! leading `xml` or `json` asks for structured output. Inside quotes `\"` is a quote and `\\`
//! a backslash; every other character, backslashes included, stands for itself, so regular
//! expressions survive unharmed.
//!
//! No I/O and no knowledge of which commands exist: the node core and the daemons dispatch on
//! the words, with [`matches`] for Momentum's prefix dispatch.

/// The output format a command asked for.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub enum Format {
    /// Plain text, as Momentum prints it.
    #[default]
    Text,
    /// XML (the `xml` prefix).
    Xml,
    /// JSON (the `json` prefix).
    Json,
}

/// A parsed console command line.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Request {
    /// The output format asked for by a leading `xml` / `json`.
    pub format: Format,
    /// The command's words, quotes removed, format prefix removed; never empty.
    pub words: Vec<String>,
    /// The command text without the format prefix, whitespace-normalised: the words joined by
    /// single spaces, each quoted again where needed, so `parse_line(&req.line)` gives the same
    /// words. This is the text to forward to nodes and to key results by.
    pub line: String,
}

/// Why a console line could not be parsed. Nothing ran; the connection stays usable.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum RequestError {
    /// The line is empty or only whitespace.
    #[error("empty command line")]
    Empty,
    /// The line is only a format prefix.
    #[error("{prefix}: a command must follow, e.g. '{prefix} show cluster membership'")]
    MissingCommand {
        /// The prefix that was given, lower-cased (`xml` or `json`).
        prefix: &'static str,
    },
    /// A double quote is never closed.
    #[error("unterminated quote: the '\"' at column {column} is never closed")]
    UnterminatedQuote {
        /// 1-based column (in characters) of the opening quote.
        column: usize,
    },
}

/// Parses a console line.
pub fn parse_line(line: &str) -> Result<Request, RequestError> {
    let mut words = split_words(line)?;
    if words.is_empty() {
        return Err(RequestError::Empty);
    }
    let prefix = match words[0].to_ascii_lowercase().as_str() {
        "xml" => Some((Format::Xml, "xml")),
        "json" => Some((Format::Json, "json")),
        _ => None,
    };
    let format = match prefix {
        Some((format, name)) => {
            if words.len() == 1 {
                return Err(RequestError::MissingCommand { prefix: name });
            }
            words.remove(0);
            format
        }
        None => Format::Text,
    };
    let line = join_words(&words);
    Ok(Request { format, words, line })
}

impl Request {
    /// Whether the command starts with `pattern` (case-insensitive); see [`matches`].
    pub fn matches(&self, pattern: &[&str]) -> bool {
        matches(&self.words, pattern)
    }

    /// The words after the first `n`, e.g. the arguments once a command of `n` words matched.
    pub fn args(&self, n: usize) -> &[String] {
        self.words.get(n..).unwrap_or(&[])
    }
}

/// Case-insensitive prefix dispatch: whether `words` starts with every word of `pattern`.
///
/// `matches(&["Show", "cluster", "membership"], &["show", "cluster"])` is true; an empty
/// pattern matches everything.
pub fn matches(words: &[String], pattern: &[&str]) -> bool {
    words.len() >= pattern.len() && words.iter().zip(pattern).all(|(word, want)| word.eq_ignore_ascii_case(want))
}

/// Joins words into a command line that [`parse_line`] splits back into the same words.
///
/// Used for the normalised [`Request::line`] and by the client to rebuild a command given as
/// separate shell arguments (`ec_console /tmp/2025 config set Foo "a b"`).
pub fn join_words<S: AsRef<str>>(words: &[S]) -> String {
    let mut out = String::new();
    for (i, word) in words.iter().enumerate() {
        if i > 0 {
            out.push(' ');
        }
        push_quoted(&mut out, word.as_ref());
    }
    out
}

/// Appends `word`, quoted and escaped when it would not survive splitting as it is.
fn push_quoted(out: &mut String, word: &str) {
    let needs_quotes = word.is_empty() || word.chars().any(|c| c.is_whitespace() || c == '"');
    if !needs_quotes {
        out.push_str(word);
        return;
    }
    out.push('"');
    let mut chars = word.chars().peekable();
    while let Some(c) = chars.next() {
        match c {
            '"' => out.push_str("\\\""),
            // A backslash needs doubling only where it would otherwise escape what follows.
            '\\' if matches!(chars.peek(), None | Some('"') | Some('\\')) => out.push_str("\\\\"),
            c => out.push(c),
        }
    }
    out.push('"');
}

/// Splits a line into words, honouring double quotes.
fn split_words(line: &str) -> Result<Vec<String>, RequestError> {
    let mut words = Vec::new();
    let mut chars = line.chars().enumerate().peekable();
    loop {
        while chars.next_if(|(_, c)| c.is_whitespace()).is_some() {}
        if chars.peek().is_none() {
            return Ok(words);
        }
        let mut word = String::new();
        while let Some((index, c)) = chars.next_if(|(_, c)| !c.is_whitespace()) {
            if c != '"' {
                word.push(c);
                continue;
            }
            // A quoted section, glued to whatever touches it (`a"b c"d` is one word).
            loop {
                match chars.next() {
                    None => return Err(RequestError::UnterminatedQuote { column: index + 1 }),
                    Some((_, '"')) => break,
                    Some((_, '\\')) => match chars.next_if(|(_, c)| *c == '"' || *c == '\\') {
                        Some((_, escaped)) => word.push(escaped),
                        None => word.push('\\'),
                    },
                    Some((_, c)) => word.push(c),
                }
            }
        }
        words.push(word);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn words(line: &str) -> Vec<String> {
        parse_line(line).expect("parses").words
    }

    #[test]
    fn plain_words_split_on_any_whitespace() {
        let req = parse_line("  show\tcluster   membership \n").expect("parses");
        assert_eq!(req.format, Format::Text);
        assert_eq!(req.words, ["show", "cluster", "membership"]);
        assert_eq!(req.line, "show cluster membership");
    }

    #[test]
    fn xml_and_json_prefixes_set_the_format_case_insensitively() {
        let req = parse_line("xml show cluster membership").expect("parses");
        assert_eq!(req.format, Format::Xml);
        assert_eq!(req.words, ["show", "cluster", "membership"]);
        assert_eq!(req.line, "show cluster membership");
        let req = parse_line("JSON  show cluster membership").expect("parses");
        assert_eq!(req.format, Format::Json);
        assert_eq!(req.line, "show cluster membership");
        // Only the first word is a prefix.
        let req = parse_line("echo xml").expect("parses");
        assert_eq!((req.format, req.words), (Format::Text, vec!["echo".to_string(), "xml".to_string()]));
    }

    #[test]
    fn bare_prefix_is_an_error_with_an_example() {
        let error = parse_line("xml").expect_err("bare xml");
        assert_eq!(error.to_string(), "xml: a command must follow, e.g. 'xml show cluster membership'");
        let error = parse_line("  Json  ").expect_err("bare json");
        assert_eq!(error.to_string(), "json: a command must follow, e.g. 'json show cluster membership'");
    }

    #[test]
    fn empty_lines_are_errors() {
        assert_eq!(parse_line(""), Err(RequestError::Empty));
        assert_eq!(parse_line(" \t \r\n"), Err(RequestError::Empty));
        assert_eq!(RequestError::Empty.to_string(), "empty command line");
    }

    #[test]
    fn double_quotes_group_words() {
        assert_eq!(words(r#"config set Foo "a b""#), ["config", "set", "Foo", "a b"]);
        assert_eq!(words(r#"echo "" x"#), ["echo", "", "x"]);
        assert_eq!(words(r#"echo a"b c"d"#), ["echo", "ab cd"]);
        assert_eq!(words(r#"echo "say \"hi\"" "c:\\dir" "a\d""#), ["echo", "say \"hi\"", "c:\\dir", "a\\d"]);
        assert_eq!(words(r#"echo don\t"#), ["echo", "don\\t"]);
    }

    #[test]
    fn unterminated_quote_names_the_column() {
        let error = parse_line(r#"config set Foo "a b"#).expect_err("unterminated");
        assert_eq!(error, RequestError::UnterminatedQuote { column: 16 });
        assert_eq!(error.to_string(), "unterminated quote: the '\"' at column 16 is never closed");
        // Columns count characters, not bytes.
        assert_eq!(parse_line("é \"x"), Err(RequestError::UnterminatedQuote { column: 3 }));
        assert_eq!(parse_line(r#"echo "ends in escape\""#), Err(RequestError::UnterminatedQuote { column: 6 }));
    }

    #[test]
    fn normalised_line_parses_back_to_the_same_words() {
        for line in [
            r#"config set Foo "a b""#,
            r#"echo "" "x\"y" "back\\" plain\ "tab	in""#,
            r#"json  config  set Foo "a\\"b"#,
            "broadcast sieve:sieve1 flush cache",
        ] {
            let req = parse_line(line).expect("parses");
            let again = parse_line(&req.line).expect("line parses again");
            assert_eq!(again.words, req.words, "{line}");
            assert_eq!(again.line, req.line, "{line}");
        }
        assert_eq!(parse_line(r#"config set Foo "a b""#).expect("parses").line, r#"config set Foo "a b""#);
    }

    #[test]
    fn join_words_quotes_only_where_needed() {
        assert_eq!(join_words(&["config", "set", "Foo", "a b"]), r#"config set Foo "a b""#);
        assert_eq!(join_words(&["a\\b", "", "q\"", "end\\"]), r#"a\b "" "q\"" end\"#);
        assert_eq!(join_words::<&str>(&[]), "");
    }

    #[test]
    fn matches_is_a_case_insensitive_prefix() {
        let req = parse_line("Show CLUSTER membership").expect("parses");
        assert!(req.matches(&["show", "cluster"]));
        assert!(req.matches(&["show", "cluster", "membership"]));
        assert!(!req.matches(&["show", "cluster", "membership", "extra"]));
        assert!(!req.matches(&["show", "clusters"]));
        assert!(req.matches(&[]));
        assert_eq!(req.args(2), ["membership"]);
        assert!(req.args(9).is_empty());
    }
}
