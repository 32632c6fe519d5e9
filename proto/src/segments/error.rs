//! Errors of the segment file parser: [`SegmentError`] and the [`Location`] every error carries.
//!
//! Parsing is a pure function of the text, so no error ever leaves state behind: a failed
//! [`Segments::parse`](super::Segments::parse) returns nothing but the error. All of them are
//! expected in normal operation (an operator mistyped the file) and name the place and the fix.

use std::fmt;
use std::net::Ipv4Addr;

use ipnet::Ipv4Net;

/// Where in a segment file something is: the file's display name, a 1-based line and a 1-based
/// column counted in characters. Displays as `ORIGIN:LINE:COLUMN`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Location {
    /// The display name the caller gave the text (usually its path).
    pub origin: String,
    /// 1-based line number.
    pub line: u32,
    /// 1-based column, counted in characters (a tab counts as one).
    pub column: u32,
}

impl fmt::Display for Location {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}:{}:{}", self.origin, self.line, self.column)
    }
}

/// Why a segment file was rejected. Every variant displays as `ORIGIN:LINE:COLUMN: message`.
///
/// No variant implies changed state (parsing has none); all are expected in normal operation,
/// since they describe mistakes in a hand-edited file.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum SegmentError {
    /// The text does not fit the grammar at all (stray brace, missing `{`, missing value...).
    #[error("{at}: {message}")]
    Syntax {
        /// Where the unexpected text starts.
        at: Location,
        /// What was wrong and what was expected instead.
        message: String,
    },
    /// A `Spread_Segment` address without `:PORT`.
    #[error(
        "{at}: missing port in segment address {text} (expected BCAST:PORT, e.g. {text}:4803)"
    )]
    MissingPort {
        /// Where the address starts.
        at: Location,
        /// The address as written.
        text: String,
    },
    /// A `Spread_Segment` port that is not a number from 1 to 65535.
    #[error("{at}: bad port `{port}` in segment address {text} (expected 1 to 65535)")]
    BadPort {
        /// Where the port starts.
        at: Location,
        /// The port as written.
        port: String,
        /// The whole address as written.
        text: String,
    },
    /// A `Spread_Segment` broadcast address that is not a dotted-quad IPv4 address.
    #[error("{at}: bad broadcast address `{text}` in Spread_Segment (expected an IPv4 address like 10.0.0.255)")]
    BadSegmentAddress {
        /// Where the address starts.
        at: Location,
        /// The address part as written.
        text: String,
    },
    /// A segment address that is not a broadcast address (fewer than two trailing 1-bits).
    #[error("{at}: segment address {addr} is not a broadcast address (it must end in at least two 1-bits, like 10.0.0.255)")]
    NotBroadcast {
        /// Where the address starts.
        at: Location,
        /// The address.
        addr: Ipv4Addr,
    },
    /// Two segments whose networks overlap, so an address could not be placed in one of them.
    #[error("{at}: segment {network} overlaps segment {other} at line {other_line}")]
    OverlappingSegment {
        /// Where the later segment's address starts.
        at: Location,
        /// The later segment's network.
        network: Ipv4Net,
        /// The earlier segment's network.
        other: Ipv4Net,
        /// The line of the earlier `Spread_Segment`.
        other_line: u32,
    },
    /// A host name that is not a DNS label.
    #[error("{at}: host name `{name}` is not a valid DNS label (use 1 to 63 letters, digits and `-`, not starting or ending with `-`)")]
    BadHostName {
        /// Where the name starts.
        at: Location,
        /// The name as written.
        name: String,
    },
    /// A host address that is not a dotted-quad IPv4 address.
    #[error(
        "{at}: bad address `{text}` for host {host} (expected an IPv4 address like 10.0.0.11)"
    )]
    BadHostAddress {
        /// Where the address starts.
        at: Location,
        /// The host (lowercase).
        host: String,
        /// The address as written.
        text: String,
    },
    /// A host whose address is not in the network of the segment it is listed in.
    #[error("{at}: host {host} address {addr} is outside segment {network}")]
    HostOutsideSegment {
        /// Where the address starts.
        at: Location,
        /// The host (lowercase).
        host: String,
        /// Its address.
        addr: Ipv4Addr,
        /// The segment's network.
        network: Ipv4Net,
    },
    /// A host whose address is the network or broadcast address of its segment.
    #[error("{at}: host {host} address {addr} is the {what} address of segment {network}")]
    ReservedAddress {
        /// Where the address starts.
        at: Location,
        /// The host (lowercase).
        host: String,
        /// Its address.
        addr: Ipv4Addr,
        /// `network` or `broadcast`.
        what: &'static str,
        /// The segment's network.
        network: Ipv4Net,
    },
    /// A host name listed twice anywhere in the file (names compare case-insensitively).
    #[error("{at}: duplicate host name {name} (first defined at line {first_line})")]
    DuplicateHost {
        /// Where the second name starts.
        at: Location,
        /// The name (lowercase).
        name: String,
        /// The line of the first definition.
        first_line: u32,
    },
    /// Two hosts with the same address.
    #[error("{at}: duplicate address {addr} for host {name} (already used by {first_name} at line {first_line})")]
    DuplicateAddress {
        /// Where the second address starts.
        at: Location,
        /// The address.
        addr: Ipv4Addr,
        /// The second host (lowercase).
        name: String,
        /// The first host with that address.
        first_name: String,
        /// The line of the first host.
        first_line: u32,
    },
    /// A `# Subcluster:` line for a name already used (segments before any such line make
    /// `default`).
    #[error("{at}: subcluster {name} declared twice (first at line {first_line})")]
    DuplicateSubcluster {
        /// Where the second name starts.
        at: Location,
        /// The name (lowercase).
        name: String,
        /// The line of the first declaration.
        first_line: u32,
    },
    /// A subcluster name that is not a single word of letters, digits, `-` and `_`.
    #[error(
        "{at}: subcluster name `{name}` is not valid (use 1 to 63 letters, digits, `-` and `_`)"
    )]
    BadSubclusterName {
        /// Where the name starts.
        at: Location,
        /// The name as written.
        name: String,
    },
    /// A `# Subcluster:` line with nothing after the colon.
    #[error("{at}: `# Subcluster:` line has no subcluster name (expected `# Subcluster: NAME => MANAGER`)")]
    SubclusterWithoutName {
        /// Where the name should start.
        at: Location,
    },
    /// A `# Subcluster:` line without `=`/`=>` and a manager host.
    #[error("{at}: `# Subcluster:` line for {name} has no manager host (expected `# Subcluster: {name} => MANAGER`)")]
    SubclusterWithoutManager {
        /// Where the manager should start.
        at: Location,
        /// The subcluster (lowercase).
        name: String,
    },
    /// A `# Subcluster:` manager that is not one of the file's hosts (checked after the whole
    /// file).
    #[error("{at}: manager host {manager} of subcluster {subcluster} is not a host in this file")]
    UnknownManager {
        /// Where the manager is named on the `# Subcluster:` line.
        at: Location,
        /// The manager as written (lowercase).
        manager: String,
        /// The subcluster (lowercase).
        subcluster: String,
    },
    /// A `{` without its `}`.
    #[error("{at}: unterminated `{{` of {what} (no `}}` before {until})")]
    Unterminated {
        /// Where the `{` is.
        at: Location,
        /// What the brace opened, e.g. `Spread_Segment 10.0.0.255:4803`.
        what: String,
        /// What came first instead of `}`: `end of file` or `line N`.
        until: String,
    },
    /// Text on the same line after a segment's closing `}`.
    #[error("{at}: unexpected `{text}` after `}}` (put it on its own line)")]
    TrailingText {
        /// Where the text starts.
        at: Location,
        /// The first word of the text.
        text: String,
    },
    /// A file that defines no host at all.
    #[error("{at}: no hosts defined (expected at least one Spread_Segment block with a host)")]
    NoHosts {
        /// Always line 1, column 1.
        at: Location,
    },
}

impl SegmentError {
    /// Where in the file the error is.
    pub fn location(&self) -> &Location {
        match self {
            Self::Syntax { at, .. }
            | Self::MissingPort { at, .. }
            | Self::BadPort { at, .. }
            | Self::BadSegmentAddress { at, .. }
            | Self::NotBroadcast { at, .. }
            | Self::OverlappingSegment { at, .. }
            | Self::BadHostName { at, .. }
            | Self::BadHostAddress { at, .. }
            | Self::HostOutsideSegment { at, .. }
            | Self::ReservedAddress { at, .. }
            | Self::DuplicateHost { at, .. }
            | Self::DuplicateAddress { at, .. }
            | Self::DuplicateSubcluster { at, .. }
            | Self::BadSubclusterName { at, .. }
            | Self::SubclusterWithoutName { at }
            | Self::SubclusterWithoutManager { at, .. }
            | Self::UnknownManager { at, .. }
            | Self::Unterminated { at, .. }
            | Self::TrailingText { at, .. }
            | Self::NoHosts { at } => at,
        }
    }
}
