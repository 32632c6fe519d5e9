//! Momentum configuration syntax (`ecelerity.conf`, `eccluster.conf`): parses text into a
//! [`Scope`] tree that remembers file, line and column of every item, resolves `include` /
//! `readonly_include`, and prints trees back with [`render`].
//!
//! This module only builds the syntax tree; turning it into typed configuration (and checking
//! which options exist) is the validator's job, which reads values through the accessors on
//! [`ConfigOption`] so that every error names `FILE:LINE:COLUMN`.
//!
//! # Layout
//!
//! - `error.rs` — [`ConfigError`] and the text of every message.
//! - `tree.rs` — [`Span`], [`Value`], [`ConfigOption`], [`Scope`]: lookups and typed accessors.
//! - `lexer.rs` — characters to tokens: comments, bare words, quoted strings (no I/O).
//! - `parser.rs` — tokens to options and scopes (no I/O; includes are delegated).
//! - `include.rs` — the only file I/O: reading files, resolving includes, cycles, read-only marks.
//! - `render.rs` — a tree back to configuration text.
//! - `edit.rs` — scope paths, lookups (`get`, `eval` with fallback and defaults) and edits
//!   (`set`, `unset`) of a tree, as the `config` console command makes them (no I/O).
//! - `known.rs` — canonical spelling, scope shapes and defaults of the options eccluster reads.
//! - `writeback.rs` — console changes written back into the files that define them.
//! - `duravip/`, `listener.rs` — typed readers of the scopes eccluster owns.
//!
//! # Syntax
//!
//! ```text
//! # comment            /* block comment, not nested */
//! Name = value         Name value           Name = "quoted \"value\""
//! Name = ( a "b c" )   Name ( a b )         Name = [ k1 = v1 k2 "v 2" ]
//! Kind { ... }         Kind "instance" { ... }   Kind instance
//!                                           { ... }
//! include "path"       readonly_include dir/    # relative to the including file
//! ```
//!
//! Option and scope names are compared ignoring ASCII case and keep their spelling for display.

pub mod duravip;
pub mod edit;
mod error;
pub mod listener;
pub mod metrics;
mod include;
pub mod known;
mod lexer;
mod parser;
mod render;
mod tree;
pub mod writeback;

use std::path::Path;

pub use error::ConfigError;
pub use include::{read_regular_file, MAX_FILE_BYTES};
pub use render::render;
pub use tree::{ConfigOption, Scope, Span, Value};

/// Parses `text` as if it had been read from `origin`: spans name `origin`, and relative
/// `include` paths resolve against `origin`'s directory. `origin` need not exist.
pub fn parse_str(text: &str, origin: &Path) -> Result<Scope, ConfigError> {
    include::parse_root(text, origin)
}

/// Parses `bytes` as the text of a file at `origin` without following `include` /
/// `readonly_include` (their syntax is checked, their targets are not read): the check for text
/// that belongs to another machine, such as a file committed to the configuration repository.
/// Invalid UTF-8 is a [`ConfigError::InvalidUtf8`] naming its line and column.
pub fn parse_detached(bytes: &[u8], origin: &Path) -> Result<Scope, ConfigError> {
    include::parse_detached(bytes, origin)
}

/// Reads the file at `path` (UTF-8, an initial byte-order mark is ignored) and parses it with
/// its includes.
pub fn load(path: &Path) -> Result<Scope, ConfigError> {
    include::load_root(path)
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;
    use std::time::Duration;

    const SAMPLE: &str = r#"Control_Listener {
  Listen "/tmp/2025" {
    File_Mode = 0666
  }
}
cluster {
  duravip_actuator = "none"
  Topology "10.1.1.0/24" { cidrmask = "32" interface = "eth1" }
}
Binding "duravip-1" { Enable_Duravip = true Bind_Address = 10.1.1.1 }
ESMTP_Listener { Listen ":25" { Enable_Duravip = true } }
logs = [ rejectlog = "/var/log/ecelerity/rejectlog" paniclog = "/var/log/ecelerity/paniclog" ]
Relay_Hosts ( 10.0.0.1 10.0.0.2 )
"#;

    #[test]
    fn sample_configuration_reads_back_specific_values() {
        let root = parse_str(SAMPLE, Path::new("ecelerity.conf")).unwrap();
        assert_eq!(root.scopes.len(), 4);
        assert_eq!(root.options.len(), 2);

        let listen = root
            .scope("control_listener", None)
            .unwrap()
            .scope("LISTEN", Some("/tmp/2025"))
            .unwrap();
        let mode = listen.option("file_mode").unwrap();
        assert_eq!(mode.as_str().unwrap(), "0666");
        assert_eq!(mode.as_octal().unwrap(), 0o666);
        assert_eq!(mode.span.to_string(), "ecelerity.conf:3:5");

        let cluster = root.scope("Cluster", None).unwrap();
        assert_eq!(
            cluster
                .option("DuraVIP_Actuator")
                .unwrap()
                .as_str()
                .unwrap(),
            "none"
        );
        let topology = cluster.scope("topology", Some("10.1.1.0/24")).unwrap();
        assert_eq!(topology.option("cidrmask").unwrap().as_u64().unwrap(), 32);
        assert_eq!(
            topology.option("interface").unwrap().as_str().unwrap(),
            "eth1"
        );
        assert_eq!(topology.span.to_string(), "ecelerity.conf:8:3");

        let binding = root.scope("binding", Some("duravip-1")).unwrap();
        assert!(binding.option("enable_duravip").unwrap().as_bool().unwrap());
        assert_eq!(
            binding.option("bind_address").unwrap().as_str().unwrap(),
            "10.1.1.1"
        );

        let esmtp_listen = root
            .scope("esmtp_listener", None)
            .unwrap()
            .scope("listen", Some(":25"))
            .unwrap();
        assert!(esmtp_listen
            .option("Enable_Duravip")
            .unwrap()
            .as_bool()
            .unwrap());

        let logs = root.option("LOGS").unwrap().as_dict().unwrap();
        assert_eq!(
            logs,
            [
                (
                    "rejectlog".to_owned(),
                    "/var/log/ecelerity/rejectlog".to_owned()
                ),
                (
                    "paniclog".to_owned(),
                    "/var/log/ecelerity/paniclog".to_owned()
                ),
            ]
        );
        assert_eq!(
            root.option("relay_hosts").unwrap().as_list().unwrap(),
            ["10.0.0.1", "10.0.0.2"]
        );
        assert_eq!(
            root.option("relay_hosts").unwrap().span.to_string(),
            "ecelerity.conf:13:1"
        );

        let reparsed = parse_str(&render(&root), Path::new("rendered.conf")).unwrap();
        assert!(root.same_content(&reparsed));
    }

    #[test]
    fn as_bool_on_maybe_names_option_place_and_choices() {
        let root = parse_str(
            "cluster {\n  Enable_Duravip = maybe\n}\n",
            Path::new("cluster.conf"),
        )
        .unwrap();
        let option = root
            .scope("cluster", None)
            .unwrap()
            .option("enable_duravip")
            .unwrap();
        assert_eq!(
            option.as_bool().unwrap_err().to_string(),
            "cluster.conf:2:3: expected a boolean (on/off, true/false, yes/no, enabled/disabled, 1/0) \
             for option 'Enable_Duravip' but found 'maybe'"
        );
        assert!(option.as_duration_secs().is_err());
        let seconds = parse_str("t = 0.5", Path::new("x"))
            .unwrap()
            .options
            .pop()
            .unwrap();
        assert_eq!(
            seconds.as_duration_secs().unwrap(),
            Duration::from_millis(500)
        );
    }

    /// A fixed-seed xorshift64 generator, so failures reproduce.
    struct XorShift(u64);

    impl XorShift {
        fn next(&mut self) -> u64 {
            self.0 ^= self.0 << 13;
            self.0 ^= self.0 >> 7;
            self.0 ^= self.0 << 17;
            self.0
        }

        fn below(&mut self, bound: usize) -> usize {
            (self.next() % bound as u64) as usize
        }
    }

    #[test]
    fn no_input_makes_the_parser_panic() {
        let dir = tempfile::tempdir().unwrap();
        let origin = dir.path().join("fuzz.conf");
        let parse = |text: &str| {
            if let Ok(root) = parse_str(text, &origin) {
                let again = parse_str(&render(&root), &origin).unwrap();
                assert!(root.same_content(&again), "round trip of {text:?}");
            }
        };

        for (end, _) in SAMPLE.char_indices() {
            parse(&SAMPLE[..end]);
        }
        parse(SAMPLE);

        let mut rng = XorShift(0xC0FFEE);
        for _ in 0..3000 {
            let len = rng.below(200);
            let bytes: Vec<u8> = (0..len).map(|_| rng.next() as u8).collect();
            parse(&String::from_utf8_lossy(&bytes));
        }

        const PIECES: &[&str] = &[
            "a",
            "Name",
            "include",
            "readonly_include",
            "=",
            "{",
            "}",
            "(",
            ")",
            "[",
            "]",
            "\"",
            "'",
            "\\",
            "#",
            "/*",
            "*/",
            "*",
            " ",
            "\n",
            "\"q s\"",
            "10.0.0.1/24",
            ":25",
            "\u{1}",
            "é",
            "\r\n",
        ];
        for _ in 0..3000 {
            let count = rng.below(40);
            let text: String = (0..count)
                .map(|_| PIECES[rng.below(PIECES.len())])
                .collect();
            parse(&text);
        }
    }
}
