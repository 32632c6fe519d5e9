//! What eccluster knows about the names in a configuration, for the `config` console command:
//! the canonical spelling of options and scope kinds (the console echoes option names in it,
//! as Momentum does), which scope kinds take an instance name (`Binding "b1"`) and which are
//! anonymous (`cluster`), and the default value of every option eccluster reads (what
//! `config eval` falls back to when no scope sets it).
//!
//! Only tables and lookups; no I/O. The readers of each scope (`duravip/`, `listener.rs`,
//! `console/limits.rs`, `registry.rs`, `daemon/control_cache.rs`) own the meaning and the
//! ranges; the defaults here are the values they use when an option is absent, and a test
//! keeps the two in step where the reader exposes them.

/// One option eccluster reads.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct KnownOption {
    /// The kind of the scope the option is read from (`""` for the top level).
    pub scope: &'static str,
    /// The canonical spelling.
    pub name: &'static str,
    /// The value used when no scope sets it (`None`: no default; the option is optional).
    pub default: Option<&'static str>,
}

const fn opt(scope: &'static str, name: &'static str, default: Option<&'static str>) -> KnownOption {
    KnownOption { scope, name, default }
}

/// Every option eccluster reads, with its default.
pub const OPTIONS: &[KnownOption] = &[
    opt("", "Broadcast_Timeout", Some("30")),
    opt("", "Local_Changes_File", None),
    opt("cluster", "duravip_policy", Some("available")),
    opt("cluster", "duravip_actuator", Some("none")),
    opt("cluster", "duravip_script", None),
    opt("cluster", "duravip_script_timeout", Some("10")),
    opt("cluster", "duravip_address_lifetime", Some("6")),
    opt("cluster", "duravip_announce_repeat", Some("5")),
    opt("cluster", "duravip_announce_delay", Some("5")),
    opt("cluster", "view_mature_time", Some("2")),
    opt("Topology", "cidrmask", None),
    opt("Topology", "interface", None),
    opt("Binding", "Enable_Duravip", Some("false")),
    opt("Binding", "Bind_Address", None),
    opt("Binding", "Duravip_Preference", None),
    opt("Listen", "Enable_Duravip", Some("false")),
    opt("Listen", "Duravip_Follow", None),
    opt("Control_Listener", "Concurrency", Some("64")),
    opt("Control_Listener", "Timeout", Some("3600")),
    opt("Control_Listener", "Write_Timeout", Some("30")),
    opt("Control_Listener", "Max_Request_Size", Some("65536")),
    opt("Control_Listener", "Max_Reply_Size", Some("67108864")),
    opt("Control_Listener", "Max_Batch_Commands", Some("512")),
    opt("Control_Listener", "Enable_Authorization", Some("false")),
    opt("Control_Listener", "TLS", Some("true")),
    opt("Control_Listener", "TLS_Certificate", None),
    opt("Control_Listener", "TLS_Key", None),
    opt("Control_Listener", "TLS_Client_CA", None),
    opt("Control_Listener", "Client_Certificates", Some("false")),
    opt("Control_Listener", "AuthLoginParameters", None),
    opt("Control_Listener", "AuthorizationParameters", None),
    opt("Control_Listener", "Audit_Log", None),
    opt("Role", "allow", None),
    opt("ECCluster_Listener", "Concurrency", Some("64")),
    opt("ECCluster_Listener", "Handshake_Timeout", Some("10")),
    opt("ECCluster_Listener", "Initial_Rate", Some("20")),
    opt("ECCluster_Listener", "Initial_Burst", Some("100")),
    opt("ECCluster_Listener", "Source_Table_Size", Some("4096")),
    opt("ECCluster_Listener", "Retry_Token_Lifetime", Some("15")),
    opt("ECCluster_Listener", "Accept_Queue_Backlog", Some("1024")),
    opt("ECCluster_Listener", "Log_Interval", Some("10")),
    opt("Metrics_Listener", "Listen", None),
    opt("Logs", "Control_Cache", None),
    opt("Logs", "Control_Cache_Max_Entries", Some("100000")),
    opt("Logs", "Control_Cache_Max_Size", Some("16777216")),
    opt("Control_Command", "Program", None),
    opt("Control_Command", "Args", None),
    opt("Control_Command", "Timeout", Some("10")),
    opt("Control_Command", "Max_Output", Some("65536")),
    opt("Cluster_Page", "Listen", None),
    opt("Cluster_Page", "TLS_Certificate", None),
    opt("Cluster_Page", "TLS_Key", None),
    opt("Cluster_Page", "AuthLoginParameters", None),
];

/// Scope kinds written with an instance name: `Binding "b1" { }`.
const NAMED_SCOPES: &[&str] = &[
    "Binding",
    "Listen",
    "Peer",
    "Topology",
    "Control_Command",
    "Domain",
    "Scheme",
    "Role",
    "Replicate",
];

/// Scope kinds written without one: `cluster { }`.
const ANONYMOUS_SCOPES: &[&str] = &[
    "cluster",
    "Control_Listener",
    "ECCluster_Listener",
    "Metrics_Listener",
    "Cluster_Page",
    "ESMTP_Listener",
    "Logs",
    "Authorization",
    "Security",
];

/// Whether a scope kind takes an instance name, as far as eccluster knows.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ScopeShape {
    /// `Kind "name" { }`.
    Named,
    /// `Kind { }`.
    Anonymous,
    /// A kind eccluster does not know.
    Unknown,
}

/// The shape of scope kind `kind` (ASCII case-insensitive).
pub fn scope_shape(kind: &str) -> ScopeShape {
    if NAMED_SCOPES.iter().any(|k| k.eq_ignore_ascii_case(kind)) {
        ScopeShape::Named
    } else if ANONYMOUS_SCOPES.iter().any(|k| k.eq_ignore_ascii_case(kind)) {
        ScopeShape::Anonymous
    } else {
        ScopeShape::Unknown
    }
}

/// The canonical spelling of scope kind `kind`, if eccluster knows it.
pub fn canonical_scope(kind: &str) -> Option<&'static str> {
    NAMED_SCOPES.iter().chain(ANONYMOUS_SCOPES).copied().find(|k| k.eq_ignore_ascii_case(kind))
}

/// The known option `name` read from a scope of kind `scope` (`""`: the top level).
pub fn option_in(scope: &str, name: &str) -> Option<&'static KnownOption> {
    OPTIONS.iter().find(|o| o.scope.eq_ignore_ascii_case(scope) && o.name.eq_ignore_ascii_case(name))
}

/// The canonical spelling of option `name` when eccluster reads an option of that name in
/// any scope.
pub fn canonical_option(name: &str) -> Option<&'static str> {
    OPTIONS.iter().find(|o| o.name.eq_ignore_ascii_case(name)).map(|o| o.name)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lookups_ignore_case_and_give_the_canonical_spelling() {
        assert_eq!(canonical_option("BROADCAST_TIMEOUT"), Some("Broadcast_Timeout"));
        assert_eq!(canonical_option("nothing"), None);
        assert_eq!(canonical_scope("esmtp_listener"), Some("ESMTP_Listener"));
        assert_eq!(scope_shape("binding"), ScopeShape::Named);
        assert_eq!(scope_shape("CLUSTER"), ScopeShape::Anonymous);
        assert_eq!(scope_shape("smtp_cbv"), ScopeShape::Unknown);
        assert_eq!(scope_shape("metrics_listener"), ScopeShape::Anonymous);
        assert_eq!(option_in("Metrics_Listener", "listen").map(|o| o.name), Some("Listen"));
        assert_eq!(option_in("cluster", "DURAVIP_POLICY").and_then(|o| o.default), Some("available"));
        assert!(option_in("", "duravip_policy").is_none());
    }

    #[test]
    fn defaults_match_the_readers() {
        let ops = eccluster_proto::ops::OpsConfig::default();
        let limits = crate::transport::Limits::default();
        let console = crate::console::listener::ListenerConfig::default();
        let results = eccluster_proto::ops::ResultsLimits::default();
        let default = |scope, name| option_in(scope, name).and_then(|o| o.default).expect("a default");
        assert_eq!(default("", "Broadcast_Timeout"), ops.answer_timeout.as_secs().to_string());
        assert_eq!(default("ECCluster_Listener", "Concurrency"), limits.max_handshakes.to_string());
        assert_eq!(default("ECCluster_Listener", "Initial_Rate"), limits.initial_rate.to_string());
        assert_eq!(default("ECCluster_Listener", "Accept_Queue_Backlog"), limits.backlog.to_string());
        assert_eq!(default("Control_Listener", "Concurrency"), console.max_connections.to_string());
        assert_eq!(default("Control_Listener", "Timeout"), console.idle_timeout.as_secs().to_string());
        assert_eq!(default("Control_Listener", "Max_Request_Size"), console.max_request.to_string());
        assert_eq!(default("Control_Listener", "Max_Reply_Size"), console.max_reply.to_string());
        assert_eq!(default("Control_Listener", "Max_Batch_Commands"), console.max_batch.to_string());
        assert_eq!(default("Logs", "Control_Cache_Max_Entries"), results.max_entries.to_string());
        assert_eq!(default("Logs", "Control_Cache_Max_Size"), results.max_bytes.to_string());
    }
}
