//! The syntax tree of a Momentum-style configuration file: [`Span`], [`Value`], [`ConfigOption`]
//! and [`Scope`], with case-insensitive lookup and the typed accessors (`as_bool`, `as_u64`, ...).
//!
//! Owns only data and lookups; no parsing and no I/O here. Validation into typed `NodeConfig`
//! values happens elsewhere and uses the accessors below so every error names file, line and column.

use std::fmt;
use std::ops::RangeInclusive;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use super::error::ConfigError;

/// Where an item was written: file, 1-based line and 1-based column (counted in characters).
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct Span {
    /// The file the item was read from (the `origin` given to `parse_str` for in-memory text).
    pub file: Arc<PathBuf>,
    /// 1-based line number.
    pub line: u32,
    /// 1-based column number, in characters.
    pub column: u32,
}

impl Span {
    /// A span at `line`:`column` of `file`.
    pub fn new(file: Arc<PathBuf>, line: u32, column: u32) -> Self {
        Span { file, line, column }
    }
}

impl fmt::Display for Span {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}:{}:{}", self.file.display(), self.line, self.column)
    }
}

/// The value of an option: a single word or string, a `( ... )` list or a `[ k = v ... ]` dictionary.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Value {
    /// `Name = value` or `Name = "quoted value"`.
    Scalar(String),
    /// `Name = ( a "b c" d )`.
    List(Vec<String>),
    /// `Name = [ k1 = v1 k2 = "v 2" ]`, in the order written (duplicate keys are kept).
    Dict(Vec<(String, String)>),
}

impl fmt::Display for Value {
    /// Prints the value in configuration syntax, quoting where needed (lists and dictionaries span lines).
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mut out = String::new();
        super::render::write_value(&mut out, self, 0);
        f.write_str(&out)
    }
}

/// One `Name = value` item.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ConfigOption {
    /// The option name as written (lookups ignore ASCII case).
    pub name: String,
    /// The value as written, with quotes and escapes removed.
    pub value: Value,
    /// Where the option name was written.
    pub span: Span,
    /// True when the option came from a `readonly_include`, from a file included by one, or
    /// from a file that was included more than once.
    pub readonly: bool,
}

/// A `Kind { ... }` or `Kind "name" { ... }` block; the whole file is a scope with kind `""` and no name.
///
/// Options and child scopes are kept in two lists, each in file order; the interleaving of
/// options with scopes is not kept.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Scope {
    /// The scope kind as written (`ESMTP_Listener`, `Binding`); empty for the whole file.
    pub kind: String,
    /// The instance name (`"duravip-1"` in `Binding "duravip-1" { }`), `None` for anonymous scopes.
    pub name: Option<String>,
    /// Where the scope kind was written (line 1, column 1 of the file for the whole file).
    pub span: Span,
    /// Options directly inside this scope, in file order (includes spliced in place).
    pub options: Vec<ConfigOption>,
    /// Child scopes, in file order.
    pub scopes: Vec<Scope>,
}

impl Scope {
    /// An empty scope.
    pub fn new(kind: impl Into<String>, name: Option<String>, span: Span) -> Self {
        Scope {
            kind: kind.into(),
            name,
            span,
            options: Vec::new(),
            scopes: Vec::new(),
        }
    }

    /// The option called `name` (ASCII case-insensitive); when it is set more than once the last one wins.
    pub fn option(&self, name: &str) -> Option<&ConfigOption> {
        self.options
            .iter()
            .rev()
            .find(|option| option.name.eq_ignore_ascii_case(name))
    }

    /// Child scopes of kind `kind` (ASCII case-insensitive), in file order.
    pub fn scopes<'a>(&'a self, kind: &'a str) -> impl Iterator<Item = &'a Scope> + 'a {
        self.scopes
            .iter()
            .filter(move |scope| scope.kind.eq_ignore_ascii_case(kind))
    }

    /// The child scope of kind `kind` (ASCII case-insensitive) whose instance name is exactly `name`
    /// (`None` selects the anonymous one). Instance names are compared case-sensitively because
    /// they are often paths. When several match, the last one wins, like options.
    pub fn scope(&self, kind: &str, name: Option<&str>) -> Option<&Scope> {
        self.scopes
            .iter()
            .rfind(|scope| scope.kind.eq_ignore_ascii_case(kind) && scope.name.as_deref() == name)
    }

    /// How the scope is named in messages: `Binding "b1"`, `cluster`, or `top level` for the file.
    pub fn describe(&self) -> String {
        match (&self.name, self.kind.is_empty()) {
            (_, true) => "top level".to_owned(),
            (Some(name), false) => format!("{} \"{}\"", self.kind, name),
            (None, false) => self.kind.clone(),
        }
    }

    /// True when both trees have the same kinds, names, options and values in the same order,
    /// ignoring spans and read-only marks (for comparing a reload with the running tree).
    pub fn same_content(&self, other: &Scope) -> bool {
        self.kind == other.kind
            && self.name == other.name
            && self.options.len() == other.options.len()
            && self.scopes.len() == other.scopes.len()
            && self
                .options
                .iter()
                .zip(&other.options)
                .all(|(a, b)| a.name == b.name && a.value == b.value)
            && self
                .scopes
                .iter()
                .zip(&other.scopes)
                .all(|(a, b)| a.same_content(b))
    }
}

const BOOL_EXPECTED: &str = "a boolean (on/off, true/false, yes/no, enabled/disabled, 1/0)";
const BOOL_TRUE: [&str; 5] = ["on", "true", "yes", "enabled", "1"];
const BOOL_FALSE: [&str; 5] = ["off", "false", "no", "disabled", "0"];

impl ConfigOption {
    fn wrong_type(&self, expected: &'static str) -> ConfigError {
        let found = match &self.value {
            Value::Scalar(text) => format!("'{text}'"),
            Value::List(_) => "a list".to_owned(),
            Value::Dict(_) => "a dictionary".to_owned(),
        };
        ConfigError::WrongType {
            span: self.span.clone(),
            option: self.name.clone(),
            expected,
            found,
        }
    }

    /// The value as one string; an error if it is a list or dictionary.
    pub fn as_str(&self) -> Result<&str, ConfigError> {
        match &self.value {
            Value::Scalar(text) => Ok(text),
            Value::List(_) | Value::Dict(_) => Err(self.wrong_type("a single value")),
        }
    }

    /// The value as a boolean: `on/off`, `true/false`, `yes/no`, `enabled/disabled`, `1/0`, any case.
    pub fn as_bool(&self) -> Result<bool, ConfigError> {
        let text = self.as_str().map_err(|_| self.wrong_type(BOOL_EXPECTED))?;
        if BOOL_TRUE.iter().any(|word| word.eq_ignore_ascii_case(text)) {
            Ok(true)
        } else if BOOL_FALSE
            .iter()
            .any(|word| word.eq_ignore_ascii_case(text))
        {
            Ok(false)
        } else {
            Err(self.wrong_type(BOOL_EXPECTED))
        }
    }

    /// The value as a decimal whole number (`0666` reads as 666; see [`ConfigOption::as_octal`]).
    pub fn as_u64(&self) -> Result<u64, ConfigError> {
        const EXPECTED: &str = "a whole number";
        let text = self.as_str().map_err(|_| self.wrong_type(EXPECTED))?;
        parse_digits(text, 10).ok_or_else(|| self.wrong_type(EXPECTED))
    }

    /// The value as an octal number, as used by `File_Mode = 0666`.
    pub fn as_octal(&self) -> Result<u32, ConfigError> {
        const EXPECTED: &str = "an octal number such as 0644";
        let text = self.as_str().map_err(|_| self.wrong_type(EXPECTED))?;
        parse_digits(text, 8)
            .and_then(|mode| u32::try_from(mode).ok())
            .ok_or_else(|| self.wrong_type(EXPECTED))
    }

    /// The value as a number of seconds; fractions are allowed (`0.5`, `30`, `.25`), nanosecond
    /// precision, extra digits are truncated.
    pub fn as_duration_secs(&self) -> Result<Duration, ConfigError> {
        const EXPECTED: &str = "a number of seconds such as 30 or 0.5";
        let text = self.as_str().map_err(|_| self.wrong_type(EXPECTED))?;
        parse_seconds(text).ok_or_else(|| self.wrong_type(EXPECTED))
    }

    /// The value as a number of seconds within `min..=max`; outside it an
    /// [`ConfigError::Invalid`] naming the option, the value and the range
    /// (`Broadcast_Timeout = 0 is out of range; use 1 to 86400 seconds`).
    pub fn as_secs_in(&self, min: Duration, max: Duration) -> Result<Duration, ConfigError> {
        let secs = self.as_duration_secs()?;
        if secs < min || secs > max {
            return Err(self.out_of_range(&show_secs(min), &show_secs(max), " seconds"));
        }
        Ok(secs)
    }

    /// The value as a whole number within `range`; outside it an [`ConfigError::Invalid`] naming
    /// the option, the value and the range, with `unit` after the range (`" bytes"`, or `""`).
    pub fn as_u64_in(&self, range: RangeInclusive<u64>, unit: &str) -> Result<u64, ConfigError> {
        let number = self.as_u64()?;
        if !range.contains(&number) {
            return Err(self.out_of_range(&range.start().to_string(), &range.end().to_string(), unit));
        }
        Ok(number)
    }

    fn out_of_range(&self, min: &str, max: &str, unit: &str) -> ConfigError {
        ConfigError::Invalid {
            span: self.span.clone(),
            message: format!("{} = {} is out of range; use {min} to {max}{unit}", self.name, self.value),
        }
    }

    /// The value as a list; a single value counts as a one-item list. An error for a dictionary.
    pub fn as_list(&self) -> Result<&[String], ConfigError> {
        match &self.value {
            Value::Scalar(text) => Ok(std::slice::from_ref(text)),
            Value::List(items) => Ok(items),
            Value::Dict(_) => Err(self.wrong_type("a list")),
        }
    }

    /// The value as dictionary entries in file order; an error for a single value or list.
    pub fn as_dict(&self) -> Result<&[(String, String)], ConfigError> {
        match &self.value {
            Value::Dict(entries) => Ok(entries),
            Value::Scalar(_) | Value::List(_) => Err(self.wrong_type("a dictionary")),
        }
    }
}

/// Seconds as an operator writes them: `86400`, `0.1`, `2.5`.
fn show_secs(duration: Duration) -> String {
    let whole = duration.as_secs();
    let nanos = duration.subsec_nanos();
    if nanos == 0 {
        return whole.to_string();
    }
    let fraction = format!("{nanos:09}");
    format!("{whole}.{}", fraction.trim_end_matches('0'))
}

/// Parses a non-empty run of ASCII digits in `radix`; `None` on anything else or overflow.
fn parse_digits(text: &str, radix: u32) -> Option<u64> {
    if text.is_empty() {
        return None;
    }
    text.chars().try_fold(0u64, |acc, ch| {
        let digit = ch.to_digit(radix)?;
        acc.checked_mul(u64::from(radix))?
            .checked_add(u64::from(digit))
    })
}

/// Parses `DIGITS[.DIGITS]` or `.DIGITS` as seconds.
fn parse_seconds(text: &str) -> Option<Duration> {
    let (whole, fraction) = match text.split_once('.') {
        Some((whole, fraction)) => (whole, fraction),
        None => (text, ""),
    };
    if whole.is_empty() && fraction.is_empty() {
        return None;
    }
    let secs = if whole.is_empty() {
        0
    } else {
        parse_digits(whole, 10)?
    };
    if !fraction.chars().all(|ch| ch.is_ascii_digit()) {
        return None;
    }
    let mut nanos = 0u32;
    for position in 0..9 {
        let digit = fraction
            .chars()
            .nth(position)
            .and_then(|ch| ch.to_digit(10))
            .unwrap_or(0);
        nanos = nanos * 10 + digit;
    }
    Some(Duration::new(secs, nanos))
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

    fn option(text: &str) -> ConfigOption {
        parse(text).options.pop().unwrap()
    }

    #[test]
    fn option_lookup_ignores_case_and_last_one_wins() {
        let root = parse("Suspend_Delivery = on\nsuspend_delivery = off\nOther = 1\n");
        let found = root.option("SUSPEND_DELIVERY").unwrap();
        assert_eq!(found.value, Value::Scalar("off".into()));
        assert_eq!(found.name, "suspend_delivery");
        assert_eq!(found.span.line, 2);
        assert!(root.option("missing").is_none());
    }

    #[test]
    fn scope_lookup_ignores_kind_case_and_matches_names_exactly() {
        let root = parse(
            "esmtp_listener { a = 1 }\nESMTP_Listener { a = 2 }\nBinding \"b1\" { x = 1 }\nbinding b2 { x = 2 }\n",
        );
        assert_eq!(root.scopes("Esmtp_Listener").count(), 2);
        assert_eq!(root.scopes("BINDING").count(), 2);
        let last = root.scope("ESMTP_LISTENER", None).unwrap();
        assert_eq!(last.option("a").unwrap().as_str().unwrap(), "2");
        assert_eq!(root.scope("binding", Some("b2")).unwrap().kind, "binding");
        assert!(root.scope("binding", Some("B2")).is_none());
        assert!(root.scope("binding", None).is_none());
        assert!(root.scope("nothing", None).is_none());
    }

    #[test]
    fn as_bool_accepts_every_documented_spelling() {
        for (text, expected) in [
            ("on", true),
            ("OFF", false),
            ("True", true),
            ("false", false),
            ("yes", true),
            ("No", false),
            ("enabled", true),
            ("Disabled", false),
            ("1", true),
            ("0", false),
        ] {
            assert_eq!(
                option(&format!("x = {text}")).as_bool().unwrap(),
                expected,
                "{text}"
            );
        }
    }

    #[test]
    fn as_bool_on_a_list_names_the_option() {
        let error = option("Enable = ( on )").as_bool().unwrap_err();
        assert_eq!(
            error.to_string(),
            "test.conf:1:1: expected a boolean (on/off, true/false, yes/no, enabled/disabled, 1/0) \
             for option 'Enable' but found a list"
        );
    }

    #[test]
    fn as_str_rejects_lists_and_dictionaries() {
        assert_eq!(option("a = \"x y\"").as_str().unwrap(), "x y");
        assert_eq!(
            option("  Hosts ( a b )").as_str().unwrap_err().to_string(),
            "test.conf:1:3: expected a single value for option 'Hosts' but found a list"
        );
        assert_eq!(
            option("logs [ a = b ]").as_str().unwrap_err().to_string(),
            "test.conf:1:1: expected a single value for option 'logs' but found a dictionary"
        );
    }

    #[test]
    fn as_u64_reads_decimal_and_rejects_garbage() {
        assert_eq!(option("n = 86400").as_u64().unwrap(), 86400);
        assert_eq!(option("n = 0666").as_u64().unwrap(), 666);
        assert_eq!(
            option("n = 18446744073709551615").as_u64().unwrap(),
            u64::MAX
        );
        for bad in ["-1", "1.5", "\"\"", "18446744073709551616", "12a", "+3"] {
            let error = option(&format!("n = {bad}")).as_u64().unwrap_err();
            assert!(error
                .to_string()
                .starts_with("test.conf:1:1: expected a whole number for option 'n'"));
        }
    }

    #[test]
    fn as_octal_reads_file_modes() {
        assert_eq!(option("File_Mode = 0666").as_octal().unwrap(), 0o666);
        assert_eq!(
            option("File_Mode = 0698").as_octal().unwrap_err().to_string(),
            "test.conf:1:1: expected an octal number such as 0644 for option 'File_Mode' but found '0698'"
        );
    }

    #[test]
    fn as_duration_secs_accepts_fractions() {
        assert_eq!(
            option("t = 30").as_duration_secs().unwrap(),
            Duration::from_secs(30)
        );
        assert_eq!(
            option("t = 0.5").as_duration_secs().unwrap(),
            Duration::from_millis(500)
        );
        assert_eq!(
            option("t = .25").as_duration_secs().unwrap(),
            Duration::from_millis(250)
        );
        assert_eq!(
            option("t = 2.").as_duration_secs().unwrap(),
            Duration::from_secs(2)
        );
        assert_eq!(
            option("t = 1.0000000019").as_duration_secs().unwrap(),
            Duration::new(1, 1)
        );
        for bad in ["-1", ".", "1.2.3", "1s", "\"\"", "abc"] {
            let error = option(&format!("t = {bad}"))
                .as_duration_secs()
                .unwrap_err();
            assert!(
                error.to_string().contains("expected a number of seconds"),
                "{bad}: {error}"
            );
        }
    }

    #[test]
    fn as_list_and_as_dict() {
        assert_eq!(option("a = x").as_list().unwrap(), ["x".to_owned()]);
        assert_eq!(option("a = ( x y )").as_list().unwrap().len(), 2);
        assert!(option("a = [ k v ]").as_list().is_err());
        assert_eq!(
            option("a = [ k v ]").as_dict().unwrap(),
            [("k".to_owned(), "v".to_owned())]
        );
        assert!(option("a = k").as_dict().is_err());
    }

    #[test]
    fn span_displays_as_file_line_column() {
        let span = Span::new(Arc::new(PathBuf::from("/etc/eccluster.conf")), 7, 14);
        assert_eq!(span.to_string(), "/etc/eccluster.conf:7:14");
    }

    #[test]
    fn describe_names_scopes_for_messages() {
        let root = parse("Binding \"b1\" { }\ncluster { }\n");
        assert_eq!(root.describe(), "top level");
        assert_eq!(root.scopes[0].describe(), "Binding \"b1\"");
        assert_eq!(root.scopes[1].describe(), "cluster");
    }
}
