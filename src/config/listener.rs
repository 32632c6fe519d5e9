//! `ECCluster_Listener { }`: the limits of a member's QUIC endpoint on incoming connections,
//! read into [`Limits`]. In Momentum this scope configures the port nodes and the manager talk
//! to each other on; eccluster takes that address from the segment file and reads here how
//! much an incoming connection attempt may cost.
//!
//! ```text
//! ECCluster_Listener {
//!   Concurrency = 64             # handshakes in progress at once
//!   Handshake_Timeout = 10       # seconds for a handshake to finish
//!   Initial_Rate = 20            # connection attempts per second from one IP address ...
//!   Initial_Burst = 100          # ... and at once
//!   Source_Table_Size = 4096     # source addresses tracked for rates and the log
//!   Retry_Token_Lifetime = 15    # seconds a QUIC Retry token is good for
//!   Accept_Queue_Backlog = 1024  # attempts waiting for a decision
//!   Log_Interval = 10            # seconds between summaries of refused attempts
//! }
//! ```
//!
//! eccluster owns this scope: an unknown option is an error. Reads the syntax tree only.

use std::time::Duration;

use super::duravip::ConfigWarning;
use super::{ConfigError, ConfigOption, Scope};
use crate::transport::Limits;

/// The scope's name.
const SCOPE: &str = "ECCluster_Listener";

/// Options of `ECCluster_Listener { }`, with their ranges (inclusive).
const OPTIONS: &[(&str, u64, u64)] = &[
    ("Concurrency", 1, 65_536),
    ("Handshake_Timeout", 1, 120),
    ("Initial_Rate", 1, 100_000),
    ("Initial_Burst", 1, 1_000_000),
    ("Source_Table_Size", 16, 1 << 20),
    ("Retry_Token_Lifetime", 1, 600),
    ("Accept_Queue_Backlog", 16, 65_536),
    ("Log_Interval", 1, 3_600),
];

fn invalid(option: &ConfigOption, message: String) -> ConfigError {
    ConfigError::Invalid { span: option.span.clone(), message }
}

/// A whole number within the option's range.
fn number(option: &ConfigOption, min: u64, max: u64) -> Result<u64, ConfigError> {
    let value = option.as_u64()?;
    if !(min..=max).contains(&value) {
        return Err(invalid(option, format!("{} = {value} is out of range; use {min} to {max}", option.name)));
    }
    Ok(value)
}

/// Reads `ECCluster_Listener { }` from a member's configuration (defaults where absent).
pub fn read(root: &Scope) -> Result<(Limits, Vec<ConfigWarning>), ConfigError> {
    let mut limits = Limits::default();
    let mut warnings = Vec::new();
    let mut scopes = root.scopes(SCOPE);
    let Some(scope) = scopes.next() else {
        return Ok((limits, warnings));
    };
    if let Some(second) = scopes.next() {
        return Err(ConfigError::Invalid {
            span: second.span.clone(),
            message: format!("{SCOPE} is already declared at {}; merge the two", scope.span),
        });
    }
    for inner in &scope.scopes {
        if inner.kind.eq_ignore_ascii_case("Listen") {
            warnings.push(ConfigWarning {
                span: inner.span.clone(),
                message: format!(
                    "Listen in {SCOPE} has no effect: a member's QUIC address is its address in the segment file"
                ),
            });
        } else {
            return Err(ConfigError::Invalid {
                span: inner.span.clone(),
                message: format!("unknown scope '{}' in {SCOPE} {{ }}", inner.kind),
            });
        }
    }
    for option in &scope.options {
        let Some(&(name, min, max)) = OPTIONS.iter().find(|(known, ..)| known.eq_ignore_ascii_case(&option.name)) else {
            let known: Vec<&str> = OPTIONS.iter().map(|(n, ..)| *n).collect();
            let hint = strsim_closest(&option.name, &known)
                .map_or_else(|| format!("known options: {}", known.join(", ")), |meant| format!("did you mean '{meant}'?"));
            return Err(invalid(option, format!("unknown option '{}' in {SCOPE} {{ }}; {hint}", option.name)));
        };
        let value = number(option, min, max)?;
        let secs = Duration::from_secs(value);
        // Every range above fits a usize and a u32 where one is needed.
        let count = usize::try_from(value).unwrap_or(usize::MAX);
        let small = u32::try_from(value).unwrap_or(u32::MAX);
        match name {
            "Concurrency" => limits.max_handshakes = count,
            "Handshake_Timeout" => limits.handshake_timeout = secs,
            "Initial_Rate" => limits.initial_rate = small,
            "Initial_Burst" => limits.initial_burst = small,
            "Source_Table_Size" => limits.sources = count,
            "Retry_Token_Lifetime" => limits.retry_token_lifetime = secs,
            "Accept_Queue_Backlog" => limits.backlog = count,
            _ => limits.log_interval = secs,
        }
    }
    Ok((limits, warnings))
}

/// The known name most like `word`, if it is close.
fn strsim_closest<'k>(word: &str, known: &[&'k str]) -> Option<&'k str> {
    let word = word.to_ascii_lowercase();
    known
        .iter()
        .map(|k| (*k, strsim::normalized_damerau_levenshtein(&word, &k.to_ascii_lowercase())))
        .filter(|(_, score)| *score >= 0.7)
        .max_by(|a, b| a.1.total_cmp(&b.1))
        .map(|(k, _)| k)
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;
    use std::path::Path;

    fn read_text(text: &str) -> Result<(Limits, Vec<ConfigWarning>), ConfigError> {
        read(&crate::config::parse_str(text, Path::new("ecelerity.conf")).unwrap())
    }

    #[test]
    fn options_are_read_and_the_rest_keep_their_defaults() {
        let (limits, warnings) = read_text(
            "ecCluster_listener {\n  concurrency = 8\n  Handshake_Timeout = 3\n  Initial_Rate = 5\n  Listen \"*:4802\" { }\n}\n",
        )
        .unwrap();
        assert_eq!(limits.max_handshakes, 8);
        assert_eq!(limits.handshake_timeout, Duration::from_secs(3));
        assert_eq!(limits.initial_rate, 5);
        assert_eq!(limits.initial_burst, Limits::default().initial_burst);
        assert_eq!(warnings.len(), 1);
        assert!(warnings[0].to_string().starts_with("ecelerity.conf:5:3: warning: Listen in ECCluster_Listener"));
        assert_eq!(read_text("").unwrap().0, Limits::default());
    }

    #[test]
    fn out_of_range_unknown_and_malformed_options_name_the_place() {
        let err = read_text("ECCluster_Listener {\n  Concurrency = 0\n}\n").unwrap_err();
        assert_eq!(err.to_string(), "ecelerity.conf:2:3: Concurrency = 0 is out of range; use 1 to 65536");
        let err = read_text("ECCluster_Listener {\n  Handshake_Timeout = 121\n}\n").unwrap_err();
        assert_eq!(err.to_string(), "ecelerity.conf:2:3: Handshake_Timeout = 121 is out of range; use 1 to 120");
        let err = read_text("ECCluster_Listener {\n  Concurency = 8\n}\n").unwrap_err();
        assert_eq!(
            err.to_string(),
            "ecelerity.conf:2:3: unknown option 'Concurency' in ECCluster_Listener { }; did you mean 'Concurrency'?"
        );
        let err = read_text("ECCluster_Listener {\n  Initial_Rate = lots\n}\n").unwrap_err();
        assert!(err.to_string().starts_with("ecelerity.conf:2:3:"), "{err}");
        let err = read_text("ECCluster_Listener { }\nECCluster_Listener { }\n").unwrap_err();
        assert!(err.to_string().starts_with("ecelerity.conf:2:1: ECCluster_Listener is already declared at ecelerity.conf:1:1"), "{err}");
    }
}
