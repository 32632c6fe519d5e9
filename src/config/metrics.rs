//! `Metrics_Listener { }`: where a member daemon serves its Prometheus metrics, read into
//! [`MetricsListener`]. Absent, the daemon serves none (the default).
//!
//! ```text
//! Metrics_Listener {
//!   Listen = "127.0.0.1:9464"    # HTTP, GET /metrics (an IP address and a port)
//! }
//! ```
//!
//! eccluster owns this scope: an unknown option or scope is an error. Reads the syntax tree
//! only; the daemon binds the address at start (a port in use stops the start, naming this
//! place).

use std::net::SocketAddr;

use super::{ConfigError, Scope};

/// The scope's name.
const SCOPE: &str = "Metrics_Listener";

/// Where to serve metrics, and who said so.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MetricsListener {
    /// The address to listen on.
    pub addr: SocketAddr,
    /// Where it was set, for errors: the `Listen` option's `FILE:LINE:COLUMN`, or `--metrics`.
    pub origin: String,
}

impl MetricsListener {
    /// The address given on the command line (`--metrics`).
    pub fn from_command_line(addr: SocketAddr) -> MetricsListener {
        MetricsListener { addr, origin: "--metrics".to_owned() }
    }
}

/// Reads `Metrics_Listener { Listen = "ADDR:PORT" }` (`None` when the scope is absent).
pub fn read(root: &Scope) -> Result<Option<MetricsListener>, ConfigError> {
    let mut scopes = root.scopes(SCOPE);
    let Some(scope) = scopes.next() else {
        return Ok(None);
    };
    if let Some(second) = scopes.next() {
        return Err(ConfigError::Invalid {
            span: second.span.clone(),
            message: format!("{SCOPE} is already declared at {}; merge the two", scope.span),
        });
    }
    if let Some(inner) = scope.scopes.first() {
        return Err(ConfigError::Invalid {
            span: inner.span.clone(),
            message: format!("unknown scope '{}' in {SCOPE} {{ }}; write Listen = \"ADDRESS:PORT\"", inner.kind),
        });
    }
    if let Some(other) = scope.options.iter().find(|o| !o.name.eq_ignore_ascii_case("Listen")) {
        return Err(ConfigError::Invalid {
            span: other.span.clone(),
            message: format!("unknown option '{}' in {SCOPE} {{ }}; known options: Listen", other.name),
        });
    }
    let Some(listen) = scope.option("Listen") else {
        return Err(ConfigError::Invalid {
            span: scope.span.clone(),
            message: format!("{SCOPE} {{ }} needs Listen = \"ADDRESS:PORT\" (remove the scope to serve no metrics)"),
        });
    };
    let text = listen.as_str()?;
    let addr = text.parse::<SocketAddr>().map_err(|_| ConfigError::Invalid {
        span: listen.span.clone(),
        message: format!("Listen = {text:?} is not an address and port such as \"127.0.0.1:9464\" or \"[::1]:9464\""),
    })?;
    Ok(Some(MetricsListener { addr, origin: listen.span.to_string() }))
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;
    use std::path::Path;

    fn read_text(text: &str) -> Result<Option<MetricsListener>, ConfigError> {
        read(&crate::config::parse_str(text, Path::new("ecelerity.conf")).unwrap())
    }

    #[test]
    fn the_address_is_read_and_absence_means_off() {
        assert_eq!(read_text("").unwrap(), None);
        let listener = read_text("metrics_listener {\n  listen = \"127.46.0.1:9464\"\n}\n").unwrap().unwrap();
        assert_eq!(listener.addr, "127.46.0.1:9464".parse().unwrap());
        assert_eq!(listener.origin, "ecelerity.conf:2:3");
    }

    #[test]
    fn bad_addresses_and_unknown_options_name_the_place() {
        let err = read_text("Metrics_Listener {\n  Listen = \"127.46.0.1\"\n}\n").unwrap_err();
        assert_eq!(
            err.to_string(),
            "ecelerity.conf:2:3: Listen = \"127.46.0.1\" is not an address and port such as \"127.0.0.1:9464\" or \"[::1]:9464\""
        );
        let err = read_text("Metrics_Listener {\n  Port = 9464\n}\n").unwrap_err();
        assert!(err.to_string().starts_with("ecelerity.conf:2:3: unknown option 'Port'"), "{err}");
        let err = read_text("Metrics_Listener { }\n").unwrap_err();
        assert!(err.to_string().starts_with("ecelerity.conf:1:1: Metrics_Listener { } needs Listen"), "{err}");
        let err = read_text("Metrics_Listener { Listen = \"127.46.0.1:1\" }\nMetrics_Listener { Listen = \"127.46.0.1:2\" }\n").unwrap_err();
        assert!(err.to_string().starts_with("ecelerity.conf:2:1: Metrics_Listener is already declared"), "{err}");
    }
}
