//! The words of a `config` command line into a [`ConfigCommand`]; wrong words give the
//! subcommand's usage. No I/O and no configuration here: which words of a path are scope
//! kinds and which are instance names is decided later, against the tree.

use std::path::PathBuf;

use crate::config::edit::{parse_value, ValueError};
use crate::config::Value;

/// The synopsis, as Momentum documents it.
pub const SYNOPSIS: &str = "\
config begin
config begin from scratch
config commit
config locate { scope_name } [ regex ]
config reload [ /alternate/path ]
config { get | eval | unset } [ scope_name ...] { optname }
config replay
config rollback
config set [ scope_name ...] { optname } [=] { value }
config show [ scope_name ...] [ option_name ]
config showrecurse [ scope_name ...]
config writeback [ /alternate/path ]
";

/// One `config` command.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ConfigCommand {
    /// `config get [SCOPE...] OPTION`.
    Get {
        /// The scope path words.
        scope: Vec<String>,
        /// The option.
        option: String,
    },
    /// `config eval [SCOPE...] OPTION`.
    Eval {
        /// The scope path words.
        scope: Vec<String>,
        /// The option.
        option: String,
    },
    /// `config set [SCOPE...] OPTION [=] VALUE`.
    Set {
        /// The scope path words.
        scope: Vec<String>,
        /// The option.
        option: String,
        /// The value.
        value: Value,
    },
    /// `config unset [SCOPE...] [OPTION]`: an option, or a whole scope.
    Unset {
        /// Every word after `unset`.
        words: Vec<String>,
    },
    /// `config show [SCOPE...] [OPTION]`.
    Show {
        /// Every word after `show`.
        words: Vec<String>,
    },
    /// `config showrecurse [SCOPE...]`.
    ShowRecurse {
        /// The scope path words.
        scope: Vec<String>,
    },
    /// `config locate KIND [REGEX]`.
    Locate {
        /// The scope kind.
        kind: String,
        /// Matched against instance names.
        filter: Option<String>,
    },
    /// `config reload [PATH]`.
    Reload {
        /// Another file than the configuration's own.
        path: Option<PathBuf>,
    },
    /// `config writeback [PATH]`.
    Writeback {
        /// Another file than the configuration's own.
        path: Option<PathBuf>,
    },
    /// `config begin [from scratch]`.
    Begin {
        /// Start from an empty configuration.
        scratch: bool,
    },
    /// `config commit`.
    Commit,
    /// `config rollback`.
    Rollback,
    /// `config replay`.
    Replay,
}

fn usage(form: &str) -> String {
    format!("usage: {form}")
}

fn lower(word: Option<&String>) -> String {
    word.map(|w| w.to_ascii_lowercase()).unwrap_or_default()
}

/// Whether `words` (format prefix removed) are a `config` command.
pub fn is_config(words: &[String]) -> bool {
    words.first().is_some_and(|w| w.eq_ignore_ascii_case("config"))
}

/// Parses a `config` command (the words start with `config`).
pub fn parse(words: &[String]) -> Result<ConfigCommand, String> {
    let sub = lower(words.get(1));
    let args = words.get(2..).unwrap_or_default();
    let path = |form: &str| -> Result<Option<PathBuf>, String> {
        match args {
            [] => Ok(None),
            [one] => Ok(Some(PathBuf::from(one))),
            _ => Err(usage(form)),
        }
    };
    match sub.as_str() {
        "get" | "eval" => {
            let Some((option, scope)) = args.split_last() else {
                return Err(usage(&format!("config {sub} [ scope_name ...] {{ optname }}")));
            };
            let (scope, option) = (scope.to_vec(), option.clone());
            Ok(if sub == "get" { ConfigCommand::Get { scope, option } } else { ConfigCommand::Eval { scope, option } })
        }
        "set" => parse_set(args),
        "unset" => Ok(ConfigCommand::Unset { words: args.to_vec() }),
        "show" => Ok(ConfigCommand::Show { words: args.to_vec() }),
        "showrecurse" => Ok(ConfigCommand::ShowRecurse { scope: args.to_vec() }),
        "locate" => match args {
            [] => Err(usage("config locate { scope_name } [ regex ]")),
            [kind, rest @ ..] => {
                Ok(ConfigCommand::Locate { kind: kind.clone(), filter: (!rest.is_empty()).then(|| rest.join(" ")) })
            }
        },
        "reload" => Ok(ConfigCommand::Reload { path: path("config reload [ /alternate/path ]")? }),
        "writeback" => Ok(ConfigCommand::Writeback { path: path("config writeback [ /alternate/path ]")? }),
        "begin" => match args {
            [] => Ok(ConfigCommand::Begin { scratch: false }),
            [from, scratch] if from.eq_ignore_ascii_case("from") && scratch.eq_ignore_ascii_case("scratch") => {
                Ok(ConfigCommand::Begin { scratch: true })
            }
            _ => Err(usage("config begin [ from scratch ]")),
        },
        "commit" | "rollback" | "replay" if !args.is_empty() => Err(usage(&format!("config {sub}"))),
        "commit" => Ok(ConfigCommand::Commit),
        "rollback" => Ok(ConfigCommand::Rollback),
        "replay" => Ok(ConfigCommand::Replay),
        "" => Err(format!("config: a subcommand must follow\n{SYNOPSIS}")),
        _ => Err(format!("config: unknown subcommand '{}'\n{SYNOPSIS}", words.get(1).map_or("", String::as_str))),
    }
}

/// `config set`: the option is the word before `=` when there is one, else the word before
/// the value (a `( ... )` list or `[ ... ]` dictionary counts as one value).
fn parse_set(args: &[String]) -> Result<ConfigCommand, String> {
    const FORM: &str = "config set [ scope_name ...] { optname } [=] { value }";
    // An `=` inside a dictionary is not the one after the option name.
    let first_open = args.iter().position(|w| w.starts_with('(') || w.starts_with('[')).unwrap_or(args.len());
    let value_start = if let Some(eq) = args[..first_open].iter().position(|w| w == "=") {
        eq + 1
    } else if args.last().is_some_and(|w| w.ends_with(')') || w.ends_with(']')) {
        let open = if args.last().is_some_and(|w| w.ends_with(')')) { '(' } else { '[' };
        match args.iter().rposition(|w| w.starts_with(open)) {
            Some(start) => start,
            None => return Err(format!("config set: {}", ValueError::Brackets("a closing bracket without its opening one"))),
        }
    } else {
        args.len().saturating_sub(1)
    };
    let option_at = if args.get(value_start.wrapping_sub(1)).is_some_and(|w| w == "=") { value_start.wrapping_sub(2) } else { value_start.wrapping_sub(1) };
    let Some(option) = args.get(option_at) else {
        return Err(usage(FORM));
    };
    if option == "=" {
        return Err(usage(FORM));
    }
    let value = parse_value(args.get(value_start..).unwrap_or_default()).map_err(|e| format!("config set {option}: {e}"))?;
    Ok(ConfigCommand::Set { scope: args[..option_at].to_vec(), option: option.clone(), value })
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    fn words(line: &str) -> Vec<String> {
        eccluster_proto::node::line::parse_line(line).expect("a line").words
    }

    #[test]
    fn set_finds_the_option_before_the_value_or_the_equals_sign() {
        let set = |line| parse(&words(line));
        assert_eq!(
            set("config set ESMTP_Listener Peer 127.0.0.1 Pathway foo"),
            Ok(ConfigCommand::Set {
                scope: words("ESMTP_Listener Peer 127.0.0.1"),
                option: "Pathway".into(),
                value: Value::Scalar("foo".into())
            })
        );
        assert_eq!(
            set("config set Relay_Hosts = ( 10.0.0.1 10.0.0.2 )"),
            Ok(ConfigCommand::Set {
                scope: vec![],
                option: "Relay_Hosts".into(),
                value: Value::List(vec!["10.0.0.1".into(), "10.0.0.2".into()])
            })
        );
        assert_eq!(
            set("config set cluster x (a b)"),
            Ok(ConfigCommand::Set { scope: words("cluster"), option: "x".into(), value: Value::List(words("a b")) })
        );
        assert_eq!(
            set("config set logs [ a = 1 b 2 ]"),
            Ok(ConfigCommand::Set {
                scope: vec![],
                option: "logs".into(),
                value: Value::Dict(vec![("a".into(), "1".into()), ("b".into(), "2".into())])
            })
        );
        assert_eq!(
            set("config set Binding b1 Bind_Address = \"10.0.0.1\""),
            Ok(ConfigCommand::Set { scope: words("Binding b1"), option: "Bind_Address".into(), value: Value::Scalar("10.0.0.1".into()) })
        );
        assert!(set("config set").unwrap_err().starts_with("usage: config set"));
        assert!(set("config set x").unwrap_err().starts_with("usage: config set"));
        assert!(set("config set = 1").unwrap_err().starts_with("usage: config set"));
        assert!(set("config set x = ( a").unwrap_err().contains("not closed"), "{:?}", set("config set x = ( a"));
        assert!(set("config set x a )").unwrap_err().contains("closing bracket"));
    }

    #[test]
    fn every_subcommand_parses_and_wrong_words_give_the_usage() {
        assert_eq!(
            parse(&words("config get domain earthlink.net message_expiration")),
            Ok(ConfigCommand::Get { scope: words("domain earthlink.net"), option: "message_expiration".into() })
        );
        assert_eq!(parse(&words("CONFIG EVAL blackhole")), Ok(ConfigCommand::Eval { scope: vec![], option: "blackhole".into() }));
        assert_eq!(parse(&words("config begin from scratch")), Ok(ConfigCommand::Begin { scratch: true }));
        assert_eq!(parse(&words("config reload /tmp/x.conf")), Ok(ConfigCommand::Reload { path: Some("/tmp/x.conf".into()) }));
        assert_eq!(parse(&words("config locate Listen 20.5")), Ok(ConfigCommand::Locate { kind: "Listen".into(), filter: Some("20.5".into()) }));
        assert_eq!(parse(&words("config commit now")), Err("usage: config commit".into()));
        assert!(parse(&words("config get")).unwrap_err().starts_with("usage: config get"));
        assert!(parse(&words("config begin later")).unwrap_err().starts_with("usage: config begin"));
        assert!(parse(&words("config frobnicate")).unwrap_err().starts_with("config: unknown subcommand 'frobnicate'"));
        assert!(parse(&words("config")).unwrap_err().contains("config showrecurse"));
    }
}
