//! Lexer and parser for segment files: text in, [`Segments`] or the first [`SegmentError`] in
//! file order out. No I/O here; the caller reads the file.
//!
//! The lexer turns each line into tokens (words, `{`, `}`, `=`, end of line) and each whole-line
//! `# Subcluster:` comment into one directive token; other comments vanish. A lexical mistake
//! becomes a `Bad` token, raised when the parser reaches it, so errors come out in file order.

use std::collections::BTreeMap;
use std::net::Ipv4Addr;

use ipnet::Ipv4Net;

use super::{Location, Segment, SegmentError, SegmentHost, Segments, Subcluster};

/// The segment keyword, matched case-insensitively.
const KEYWORD: &str = "Spread_Segment";

/// Parses a whole file; see [`Segments::parse`].
pub(super) fn parse(origin: &str, text: &str) -> Result<Segments, SegmentError> {
    let mut parser = Parser {
        origin,
        toks: lex(origin, text),
        pos: 0,
        out: Segments {
            globals: Vec::new(),
            subclusters: Vec::new(),
            hosts: Vec::new(),
        },
        current: None,
        subcluster_lines: BTreeMap::new(),
        managers: Vec::new(),
        names: BTreeMap::new(),
        addrs: BTreeMap::new(),
    };
    parser.file()?;
    parser.finish()
}

/// True if `name` is a DNS label: 1..=63 ASCII letters, digits and `-`, no `-` at either end.
fn is_dns_label(name: &str) -> bool {
    (1..=63).contains(&name.len())
        && name.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-')
        && !name.starts_with('-')
        && !name.ends_with('-')
}

/// True if `name` can name a subcluster: 1..=63 ASCII letters, digits, `-` and `_`.
fn is_subcluster_name(name: &str) -> bool {
    (1..=63).contains(&name.len())
        && name
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
}

/// The network a broadcast address stands for, or `None` if it ends in fewer than two 1-bits.
///
/// The host part is the trailing 1-bits, rounded down to whole octets once there are 8 or more:
/// a broadcast address alone cannot tell `127.0.1.255` as a /24 from a /23, and segment files
/// (Momentum's `10.79.24.255`, our `127.0.1.255`, `127.0.3.255`...) mean the /24. So
/// `10.0.0.127` → `10.0.0.0/25`, `127.0.1.255` → `127.0.1.0/24`, `10.1.255.255` → `10.1.0.0/16`.
pub(super) fn broadcast_network(broadcast: Ipv4Addr) -> Option<Ipv4Net> {
    let ones = u32::from(broadcast).trailing_ones();
    let host_bits = if ones >= 8 { ones - ones % 8 } else { ones };
    if host_bits < 2 {
        return None;
    }
    let prefix = u8::try_from(32 - host_bits).ok()?;
    Ipv4Net::new(broadcast, prefix).ok().map(|net| net.trunc())
}

/// A `# Subcluster: NAME => MANAGER` line, already checked for shape.
#[derive(Debug, Clone)]
struct Directive {
    name: String,
    name_col: u32,
    manager: String,
    manager_col: u32,
}

#[derive(Debug, Clone)]
enum Tok {
    Word(String),
    Open,
    Close,
    Equals,
    Newline,
    Eof,
    Subcluster(Directive),
    Bad(Box<SegmentError>),
}

#[derive(Debug, Clone)]
struct Token {
    tok: Tok,
    line: u32,
    col: u32,
}

impl Token {
    /// How the token reads in an error message.
    fn describe(&self) -> String {
        match &self.tok {
            Tok::Word(w) => format!("`{w}`"),
            Tok::Open => "`{`".into(),
            Tok::Close => "`}`".into(),
            Tok::Equals => "`=`".into(),
            Tok::Newline => "end of line".into(),
            Tok::Eof => "end of file".into(),
            Tok::Subcluster(_) => "`# Subcluster:` line".into(),
            Tok::Bad(_) => "bad text".into(),
        }
    }
}

fn to_u32(n: usize) -> u32 {
    u32::try_from(n).unwrap_or(u32::MAX)
}

fn location(origin: &str, line: u32, column: u32) -> Location {
    Location {
        origin: origin.to_string(),
        line,
        column,
    }
}

fn skip_ws(chars: &[char], mut i: usize, end: usize) -> usize {
    while i < end && chars.get(i).is_some_and(|c| c.is_whitespace()) {
        i += 1;
    }
    i
}

/// Splits the text into tokens; never fails (mistakes become `Tok::Bad`), always ends in `Eof`.
fn lex(origin: &str, text: &str) -> Vec<Token> {
    let mut toks = Vec::new();
    let mut last = (1, 1);
    for (index, raw) in text.split('\n').enumerate() {
        let line = to_u32(index.saturating_add(1));
        let chars: Vec<char> = raw.strip_suffix('\r').unwrap_or(raw).chars().collect();
        lex_line(origin, line, &chars, &mut toks);
        toks.push(Token {
            tok: Tok::Newline,
            line,
            col: to_u32(chars.len().saturating_add(1)),
        });
        last = (line, to_u32(chars.len().saturating_add(1)));
    }
    toks.push(Token {
        tok: Tok::Eof,
        line: last.0,
        col: last.1,
    });
    toks
}

fn lex_line(origin: &str, line: u32, chars: &[char], toks: &mut Vec<Token>) {
    let n = chars.len();
    let col = |i: usize| to_u32(i.saturating_add(1));
    let first = skip_ws(chars, 0, n);
    if chars.get(first) == Some(&'#') {
        let word = skip_ws(chars, first + 1, n);
        let tag: String = chars.iter().skip(word).take(10).collect();
        if tag.eq_ignore_ascii_case("subcluster") {
            let colon = skip_ws(chars, word + 10, n);
            if chars.get(colon) == Some(&':') {
                let tok = match lex_directive(origin, line, chars, colon + 1) {
                    Ok(d) => Tok::Subcluster(d),
                    Err(e) => Tok::Bad(Box::new(e)),
                };
                toks.push(Token {
                    tok,
                    line,
                    col: col(first),
                });
            }
        }
        return;
    }
    let mut i = first;
    while i < n {
        let c = chars.get(i).copied().unwrap_or(' ');
        let start = i;
        i += 1;
        let tok = match c {
            c if c.is_whitespace() => continue,
            '#' => return,
            '{' => Tok::Open,
            '}' => Tok::Close,
            '=' => Tok::Equals,
            '"' => match chars.iter().skip(i).position(|&c| c == '"') {
                Some(len) => {
                    i += len + 1;
                    Tok::Word(chars.iter().skip(start).take(i - start).collect())
                }
                None => {
                    let message = "unterminated string (add the closing `\"`)".to_string();
                    let e = SegmentError::Syntax {
                        at: location(origin, line, col(start)),
                        message,
                    };
                    toks.push(Token {
                        tok: Tok::Bad(Box::new(e)),
                        line,
                        col: col(start),
                    });
                    return;
                }
            },
            _ => {
                while chars.get(i).is_some_and(|c| {
                    !c.is_whitespace() && !matches!(c, '{' | '}' | '=' | '#' | '"')
                }) {
                    i += 1;
                }
                Tok::Word(chars.iter().skip(start).take(i - start).collect())
            }
        };
        toks.push(Token {
            tok,
            line,
            col: col(start),
        });
    }
}

/// Reads `NAME (=|=>) MANAGER [# comment]` starting after the colon.
fn lex_directive(
    origin: &str,
    line: u32,
    chars: &[char],
    from: usize,
) -> Result<Directive, SegmentError> {
    let at = |i: usize| location(origin, line, to_u32(i.saturating_add(1)));
    let end = chars
        .iter()
        .skip(from)
        .position(|&c| c == '#')
        .map_or(chars.len(), |p| from + p);
    let take = |from: usize, stop: &dyn Fn(char) -> bool| {
        let len = chars
            .iter()
            .skip(from)
            .take(end.saturating_sub(from))
            .take_while(|&&c| !stop(c))
            .count();
        (
            chars.iter().skip(from).take(len).collect::<String>(),
            from + len,
        )
    };
    let name_at = skip_ws(chars, from, end);
    let (name, i) = take(name_at, &|c| c.is_whitespace() || c == '=');
    if name.is_empty() {
        return Err(SegmentError::SubclusterWithoutName { at: at(name_at) });
    }
    if !is_subcluster_name(&name) {
        return Err(SegmentError::BadSubclusterName {
            at: at(name_at),
            name,
        });
    }
    let name = name.to_ascii_lowercase();
    let mut i = skip_ws(chars, i, end);
    match chars.get(i) {
        _ if i >= end => return Err(SegmentError::SubclusterWithoutManager { at: at(i), name }),
        Some('=') => i += if chars.get(i + 1) == Some(&'>') { 2 } else { 1 },
        _ => {
            let (found, _) = take(i, &|c| c.is_whitespace());
            let message =
                format!("expected `=>` or `=` after subcluster name {name}, found `{found}`");
            return Err(SegmentError::Syntax { at: at(i), message });
        }
    }
    let manager_at = skip_ws(chars, i, end);
    let (manager, i) = take(manager_at, &|c| c.is_whitespace());
    if manager.is_empty() {
        return Err(SegmentError::SubclusterWithoutManager {
            at: at(manager_at),
            name,
        });
    }
    let rest = skip_ws(chars, i, end);
    if rest < end {
        let (found, _) = take(rest, &|c| c.is_whitespace());
        let message =
            format!("unexpected `{found}` after manager host {manager} of subcluster {name}");
        return Err(SegmentError::Syntax {
            at: at(rest),
            message,
        });
    }
    let name_col = to_u32(name_at.saturating_add(1));
    let manager_col = to_u32(manager_at.saturating_add(1));
    Ok(Directive {
        name,
        name_col,
        manager: manager.to_ascii_lowercase(),
        manager_col,
    })
}

struct Parser<'a> {
    origin: &'a str,
    toks: Vec<Token>,
    pos: usize,
    out: Segments,
    /// Index in `out.subclusters` that new segments join.
    current: Option<usize>,
    /// Subcluster name -> line it was declared (or first used, for `default`).
    subcluster_lines: BTreeMap<String, u32>,
    /// Managers to check once every host is known: (subcluster index, where named).
    managers: Vec<(usize, Location)>,
    /// Host name -> line.
    names: BTreeMap<String, u32>,
    /// Host address -> (name, line).
    addrs: BTreeMap<Ipv4Addr, (String, u32)>,
}

impl Parser<'_> {
    fn at(&self, tok: &Token) -> Location {
        location(self.origin, tok.line, tok.col)
    }

    fn syntax(&self, tok: &Token, message: String) -> SegmentError {
        SegmentError::Syntax {
            at: self.at(tok),
            message,
        }
    }

    /// The next token without consuming it; a lexical error is raised here.
    fn peek(&self) -> Result<Token, SegmentError> {
        let tok = self.toks.get(self.pos).cloned().unwrap_or(Token {
            tok: Tok::Eof,
            line: 1,
            col: 1,
        });
        match tok.tok {
            Tok::Bad(e) => Err(*e),
            _ => Ok(tok),
        }
    }

    fn bump(&mut self) -> Result<Token, SegmentError> {
        let tok = self.peek()?;
        if self.pos < self.toks.len() {
            self.pos += 1;
        }
        Ok(tok)
    }

    fn file(&mut self) -> Result<(), SegmentError> {
        loop {
            let tok = self.bump()?;
            match &tok.tok {
                Tok::Eof => return Ok(()),
                Tok::Newline => {}
                Tok::Subcluster(d) => self.subcluster(d, &tok)?,
                Tok::Word(w) if w.eq_ignore_ascii_case(KEYWORD) => self.segment(&tok)?,
                Tok::Word(key) => self.global(key)?,
                Tok::Close => {
                    return Err(self.syntax(&tok, "unexpected `}` with no open `{`".into()))
                }
                Tok::Open | Tok::Equals | Tok::Bad(_) => {
                    let message = format!(
                        "unexpected {} (expected a setting or Spread_Segment)",
                        tok.describe()
                    );
                    return Err(self.syntax(&tok, message));
                }
            }
        }
    }

    /// `KEY`, `KEY = VALUE` or `KEY = { ... }` (the braces may span lines).
    fn global(&mut self, key: &str) -> Result<(), SegmentError> {
        let tok = self.peek()?;
        match tok.tok {
            Tok::Newline | Tok::Eof => {
                self.out.globals.push((key.to_string(), String::new()));
                return Ok(());
            }
            Tok::Equals => {}
            _ => {
                let message = format!(
                    "unexpected {} after setting `{key}` (expected `{key} = VALUE` or `{key}` alone)",
                    tok.describe()
                );
                return Err(self.syntax(&tok, message));
            }
        }
        let equals = self.bump()?;
        let mut parts = Vec::new();
        loop {
            let tok = self.peek()?;
            match &tok.tok {
                Tok::Newline | Tok::Eof | Tok::Subcluster(_) | Tok::Bad(_) => break,
                Tok::Word(w) => parts.push(w.clone()),
                Tok::Equals => parts.push("=".into()),
                Tok::Open => {
                    self.bump()?;
                    self.block(&tok, &format!("the value of {key}"), Some(&mut parts))?;
                    continue;
                }
                Tok::Close => {
                    return Err(self.syntax(&tok, format!("unexpected `}}` in the value of {key}")))
                }
            }
            self.bump()?;
        }
        if parts.is_empty() {
            return Err(self.syntax(&equals, format!("setting `{key}` has no value after `=`")));
        }
        self.out.globals.push((key.to_string(), parts.join(" ")));
        Ok(())
    }

    /// Consumes everything up to the `}` matching the already consumed `open`, across lines.
    /// With `words`, the braces and the words inside are collected.
    fn block(
        &mut self,
        open: &Token,
        what: &str,
        mut words: Option<&mut Vec<String>>,
    ) -> Result<(), SegmentError> {
        let mut depth = 1usize;
        let mut push = |w: &str| {
            if let Some(words) = words.as_deref_mut() {
                words.push(w.to_string());
            }
        };
        push("{");
        loop {
            let tok = self.peek()?;
            match &tok.tok {
                Tok::Eof | Tok::Subcluster(_) => return Err(self.unterminated(open, what, &tok)),
                Tok::Word(w) if w.eq_ignore_ascii_case(KEYWORD) => {
                    return Err(self.unterminated(open, what, &tok))
                }
                Tok::Word(w) => push(w),
                Tok::Equals => push("="),
                Tok::Newline | Tok::Bad(_) => {}
                Tok::Open => {
                    depth += 1;
                    push("{");
                }
                Tok::Close => {
                    depth -= 1;
                    push("}");
                    if depth == 0 {
                        self.bump()?;
                        return Ok(());
                    }
                }
            }
            self.bump()?;
        }
    }

    fn unterminated(&self, open: &Token, what: &str, found: &Token) -> SegmentError {
        let until = match found.tok {
            Tok::Eof => "end of file".to_string(),
            _ => format!("line {}", found.line),
        };
        SegmentError::Unterminated {
            at: self.at(open),
            what: what.to_string(),
            until,
        }
    }

    fn subcluster(&mut self, d: &Directive, tok: &Token) -> Result<(), SegmentError> {
        if let Some(&first_line) = self.subcluster_lines.get(&d.name) {
            let at = location(self.origin, tok.line, d.name_col);
            return Err(SegmentError::DuplicateSubcluster {
                at,
                name: d.name.clone(),
                first_line,
            });
        }
        self.subcluster_lines.insert(d.name.clone(), tok.line);
        self.out.subclusters.push(Subcluster {
            name: d.name.clone(),
            manager: Some(d.manager.clone()),
            segments: Vec::new(),
        });
        let index = self.out.subclusters.len() - 1;
        self.managers
            .push((index, location(self.origin, tok.line, d.manager_col)));
        self.current = Some(index);
        Ok(())
    }

    /// `Spread_Segment BCAST:PORT {` (the brace may be on a later line), hosts, `}`.
    fn segment(&mut self, keyword: &Token) -> Result<(), SegmentError> {
        let addr_tok = self.bump()?;
        let Tok::Word(text) = &addr_tok.tok else {
            let message = format!(
                "missing address after Spread_Segment (expected BCAST:PORT), found {}",
                addr_tok.describe()
            );
            return Err(self.syntax(&addr_tok, message));
        };
        let (broadcast, port, network) = self.segment_address(text, &addr_tok)?;
        for other in self.out.subclusters.iter().flat_map(|sc| &sc.segments) {
            if other.network.contains(&network) || network.contains(&other.network) {
                return Err(SegmentError::OverlappingSegment {
                    at: self.at(&addr_tok),
                    network,
                    other: other.network,
                    other_line: other.line,
                });
            }
        }
        let mut open = self.bump()?;
        while matches!(open.tok, Tok::Newline) {
            open = self.bump()?;
        }
        if !matches!(open.tok, Tok::Open) {
            let message = format!(
                "expected `{{` after Spread_Segment {text}, found {}",
                open.describe()
            );
            return Err(self.syntax(&open, message));
        }
        let index = match self.current {
            Some(index) => index,
            None => {
                let name = super::DEFAULT_SUBCLUSTER.to_string();
                self.subcluster_lines.insert(name.clone(), keyword.line);
                self.out.subclusters.push(Subcluster {
                    name,
                    manager: None,
                    segments: Vec::new(),
                });
                let index = self.out.subclusters.len() - 1;
                self.current = Some(index);
                index
            }
        };
        let segment = Segment {
            broadcast,
            port,
            network,
            line: keyword.line,
        };
        let what = format!("Spread_Segment {text}");
        loop {
            let tok = self.bump()?;
            match &tok.tok {
                Tok::Newline => {}
                Tok::Close => break,
                Tok::Eof | Tok::Subcluster(_) => return Err(self.unterminated(&open, &what, &tok)),
                Tok::Word(w) if w.eq_ignore_ascii_case(KEYWORD) => {
                    return Err(self.unterminated(&open, &what, &tok))
                }
                Tok::Word(name) => self.host(name, &tok, &segment, index)?,
                Tok::Open | Tok::Equals | Tok::Bad(_) => {
                    let message = format!(
                        "unexpected {} in Spread_Segment block (expected `NAME ADDRESS`)",
                        tok.describe()
                    );
                    return Err(self.syntax(&tok, message));
                }
            }
        }
        let after = self.peek()?;
        if !matches!(after.tok, Tok::Newline | Tok::Eof) {
            let text = match &after.tok {
                Tok::Word(w) => w.clone(),
                Tok::Open => "{".into(),
                Tok::Close => "}".into(),
                _ => "=".into(),
            };
            return Err(SegmentError::TrailingText {
                at: self.at(&after),
                text,
            });
        }
        if let Some(sc) = self.out.subclusters.get_mut(index) {
            sc.segments.push(segment);
        }
        Ok(())
    }

    /// Splits and checks `BCAST:PORT`, deriving the network from the broadcast address.
    fn segment_address(
        &self,
        text: &str,
        tok: &Token,
    ) -> Result<(Ipv4Addr, u16, Ipv4Net), SegmentError> {
        let at = |offset: usize| {
            location(
                self.origin,
                tok.line,
                tok.col.saturating_add(to_u32(offset)),
            )
        };
        let Some((addr_text, port_text)) = text.rsplit_once(':').filter(|(_, p)| !p.is_empty())
        else {
            let shown = text.strip_suffix(':').unwrap_or(text).to_string();
            return Err(SegmentError::MissingPort {
                at: at(0),
                text: shown,
            });
        };
        let broadcast: Ipv4Addr =
            addr_text
                .parse()
                .map_err(|_| SegmentError::BadSegmentAddress {
                    at: at(0),
                    text: addr_text.to_string(),
                })?;
        let port = port_text
            .parse::<u16>()
            .ok()
            .filter(|&p| p != 0)
            .ok_or_else(|| SegmentError::BadPort {
                at: at(addr_text.chars().count() + 1),
                port: port_text.to_string(),
                text: text.to_string(),
            })?;
        match broadcast_network(broadcast) {
            Some(net) => Ok((broadcast, port, net)),
            None => Err(SegmentError::NotBroadcast {
                at: at(0),
                addr: broadcast,
            }),
        }
    }

    /// `NAME ADDRESS [{ ... }]` inside a segment; leaves the end of line or `}` unconsumed.
    fn host(
        &mut self,
        written: &str,
        name_tok: &Token,
        segment: &Segment,
        index: usize,
    ) -> Result<(), SegmentError> {
        if !is_dns_label(written) {
            return Err(SegmentError::BadHostName {
                at: self.at(name_tok),
                name: written.to_string(),
            });
        }
        let name = written.to_ascii_lowercase();
        if let Some(&first_line) = self.names.get(&name) {
            return Err(SegmentError::DuplicateHost {
                at: self.at(name_tok),
                name,
                first_line,
            });
        }
        let addr_tok = self.peek()?;
        let Tok::Word(text) = &addr_tok.tok else {
            let message = format!("host {name} has no address (expected `{name} ADDRESS`)");
            return Err(self.syntax(&addr_tok, message));
        };
        self.bump()?;
        let at = self.at(&addr_tok);
        let Ok(addr) = text.parse::<Ipv4Addr>() else {
            return Err(SegmentError::BadHostAddress {
                at,
                host: name,
                text: text.clone(),
            });
        };
        let network = segment.network;
        if !network.contains(&addr) {
            return Err(SegmentError::HostOutsideSegment {
                at,
                host: name,
                addr,
                network,
            });
        }
        let reserved = if addr == network.network() {
            Some("network")
        } else if addr == network.broadcast() {
            Some("broadcast")
        } else {
            None
        };
        if let Some(what) = reserved {
            return Err(SegmentError::ReservedAddress {
                at,
                host: name,
                addr,
                what,
                network,
            });
        }
        if let Some((first_name, first_line)) = self.addrs.get(&addr) {
            let (first_name, first_line) = (first_name.clone(), *first_line);
            return Err(SegmentError::DuplicateAddress {
                at,
                addr,
                name,
                first_name,
                first_line,
            });
        }
        let next = self.peek()?;
        if matches!(next.tok, Tok::Open) {
            self.bump()?;
            self.block(&next, &format!("the addresses of host {name}"), None)?;
        }
        let next = self.peek()?;
        if !matches!(next.tok, Tok::Newline | Tok::Close | Tok::Eof) {
            let message = format!(
                "unexpected {} after host {name} (put one host per line)",
                next.describe()
            );
            return Err(self.syntax(&next, message));
        }
        let subcluster = self
            .out
            .subclusters
            .get(index)
            .map(|sc| sc.name.clone())
            .unwrap_or_default();
        self.names.insert(name.clone(), name_tok.line);
        self.addrs.insert(addr, (name.clone(), name_tok.line));
        self.out.hosts.push(SegmentHost {
            name,
            addr,
            port: segment.port,
            subcluster,
            line: name_tok.line,
        });
        Ok(())
    }

    /// Whole-file checks: at least one host, and every manager is a host.
    fn finish(mut self) -> Result<Segments, SegmentError> {
        if self.out.hosts.is_empty() {
            return Err(SegmentError::NoHosts {
                at: location(self.origin, 1, 1),
            });
        }
        for (index, at) in std::mem::take(&mut self.managers) {
            let Some(sc) = self.out.subclusters.get_mut(index) else {
                continue;
            };
            let Some(manager) = sc.manager.take() else {
                continue;
            };
            // Momentum's own example names the manager by its FQDN (`rh52mgr.vmnet24.example.com`)
            // while the segment lists the short name, so fall back to the first label.
            let short = manager.split('.').next().unwrap_or_default();
            let found = [manager.as_str(), short]
                .into_iter()
                .find(|n| self.names.contains_key(*n));
            match found {
                Some(host) => sc.manager = Some(host.to_string()),
                None => {
                    return Err(SegmentError::UnknownManager {
                        at,
                        manager,
                        subcluster: sc.name.clone(),
                    });
                }
            }
        }
        Ok(self.out)
    }
}
