//! The `config` console command of a member daemon, on the manager (its `-c` file) and on
//! nodes (theirs): `get`, `eval`, `set`, `unset`, `show`, `showrecurse`, `locate`, `reload`,
//! `writeback`, and the transactions `begin` / `begin from scratch` / `commit` / `rollback`
//! / `replay` of one console session.
//!
//! [`ConfigStore`] holds the running configuration (a tree, with a generation that grows on
//! every change) and the open transactions, and turns each command into a [`Plan`]. It does
//! no I/O and applies nothing: a change comes back to the daemon as [`Plan::Apply`] (make
//! this tree the running configuration if it validates, exactly as a SIGHUP reload does) or
//! [`Plan::Stage`] (check it, then keep it in the session's transaction), and file work as
//! [`Plan::Reload`] / [`Plan::Writeback`]; the daemon reports the outcome back with
//! [`ConfigStore::installed`], [`ConfigStore::staged`], [`ConfigStore::reloaded`],
//! [`ConfigStore::written`].
//!
//! # Transactions
//! A transaction belongs to one console session and starts from a copy of the running
//! configuration (or an empty one, `from scratch`); its changes are checked as they are made
//! but seen only by that session until `commit`. `commit` applies the transaction's tree only
//! if the running configuration is still the one it began from: of concurrent transactions
//! the first to commit wins, and a later one fails and changes nothing (it stays open, for
//! `replay` and `rollback`). `reload` is refused inside a transaction; a session that closes
//! rolls its transaction back. Operations (`broadcast`, `unicast`) have no session: they run
//! outside any transaction, and `config begin` is refused there.

pub mod answer;
mod parse;

use std::collections::{BTreeMap, BTreeSet};
use std::path::PathBuf;
use std::sync::Arc;

use crate::config::edit::{self, ScopePath, Source};
use crate::config::writeback::Changed;
use crate::config::{Scope, Span};

pub use self::answer::Answer;
pub use self::parse::{is_config, parse, ConfigCommand, SYNOPSIS};

/// The file name of the span of values set at the console.
pub const CONSOLE_ORIGIN: &str = "<console>";

/// Where a value set at the console is said to come from.
pub fn console_span() -> Span {
    Span::new(Arc::new(PathBuf::from(CONSOLE_ORIGIN)), 1, 1)
}

/// An error message about the configuration, with the place of values set at the console
/// named as such rather than as a file position.
pub fn name_console(message: &str) -> String {
    message.replace(&format!("{CONSOLE_ORIGIN}:1:1: "), "set from the console: ")
}

/// The `config` state of one daemon: the running configuration and the open transactions.
#[derive(Debug)]
pub struct ConfigStore {
    /// The file `reload` and `writeback` use (the `-c` file, or the last `reload PATH`).
    source: Option<PathBuf>,
    running: Scope,
    generation: u64,
    /// What changed at the console since the files were last read or written, with the
    /// generation of its latest change.
    changed: BTreeMap<Changed, u64>,
    transactions: BTreeMap<u64, Transaction>,
    /// `eccmgr` or `ecnode`, for messages.
    program: &'static str,
}

#[derive(Debug)]
struct Transaction {
    /// The generation of the running configuration it began from.
    base: u64,
    tree: Scope,
    /// The `set` / `unset` commands, for `replay`.
    log: Vec<String>,
    changed: BTreeSet<Changed>,
    scratch: bool,
}

/// What the daemon does for a command.
#[derive(Debug)]
pub enum Plan {
    /// Answer at once (an `Err` is a failed reply).
    Answer(Result<Answer, String>),
    /// Make `tree` the running configuration if it validates, then answer.
    Apply(Apply),
    /// Check that `tree` validates, then keep it in the session's transaction and answer.
    Stage(Stage),
    /// Read the configuration at `path` and make it the running one if it validates.
    Reload {
        /// The file.
        path: PathBuf,
    },
    /// Write the running configuration back to its files.
    Writeback(WritebackJob),
}

/// A change of the running configuration.
#[derive(Debug)]
pub struct Apply {
    /// The new running configuration.
    pub tree: Scope,
    /// What it changes, for `writeback`.
    pub changed: Vec<Changed>,
    /// The answer once applied.
    pub answer: Answer,
    /// The session whose transaction this commits.
    pub commit: Option<u64>,
}

/// A change inside a transaction.
#[derive(Debug)]
pub struct Stage {
    /// The session.
    pub session: u64,
    /// The transaction's new tree.
    pub tree: Scope,
    /// What it changes.
    pub changed: Vec<Changed>,
    /// The command, for `replay`.
    pub line: String,
    /// The answer once checked.
    pub answer: Answer,
}

/// The work of a `config writeback`.
#[derive(Debug)]
pub struct WritebackJob {
    /// The configuration's main file (in-place edits).
    pub main: Option<PathBuf>,
    /// `config writeback PATH`: the whole configuration to this file instead.
    pub alternate: Option<PathBuf>,
    /// The running configuration.
    pub running: Scope,
    /// What changed.
    pub changed: BTreeSet<Changed>,
    /// The generation written.
    pub generation: u64,
}

fn no_transaction() -> String {
    "no transaction is open on this console; 'config begin' starts one".to_owned()
}

impl ConfigStore {
    /// The store of a daemon whose running configuration `running` was read from `source`.
    pub fn new(source: Option<PathBuf>, running: Scope, program: &'static str) -> ConfigStore {
        ConfigStore { source, running, generation: 1, changed: BTreeMap::new(), transactions: BTreeMap::new(), program }
    }

    /// The running configuration.
    pub fn running(&self) -> &Scope {
        &self.running
    }

    /// The file `reload` reads (the `-c` file, or the last `config reload PATH`).
    pub fn source(&self) -> Option<&PathBuf> {
        self.source.as_ref()
    }

    /// What `session` sees: its transaction's tree, or the running configuration.
    fn view(&self, session: Option<u64>) -> &Scope {
        session.and_then(|s| self.transactions.get(&s)).map_or(&self.running, |t| &t.tree)
    }

    /// Turns `command`, typed on `session` (`None`: run as an operation) as `line`, into
    /// what the daemon does.
    pub fn plan(&mut self, command: ConfigCommand, session: Option<u64>, line: &str) -> Plan {
        let in_transaction = session.is_some_and(|s| self.transactions.contains_key(&s));
        match command {
            ConfigCommand::Get { scope, option } => {
                let tree = self.view(session);
                let path = edit::split_path(tree, &scope);
                Plan::Answer(Ok(match edit::get(tree, &path, &option) {
                    Some(found) => Answer::Value { path, found },
                    None => {
                        let name = edit::canonical_name(edit::resolve(tree, &path), &option);
                        Answer::NotSet { name, path }
                    }
                }))
            }
            ConfigCommand::Eval { scope, option } => {
                let tree = self.view(session);
                let path = edit::split_path(tree, &scope);
                Plan::Answer(match edit::eval(tree, &path, &option) {
                    Some(found) => Ok(Answer::Value { path, found }),
                    None => Err(format!(
                        "Option '{}' has no value: it is not set in scope '{}' nor in any scope enclosing it, \
                         and {} has no default for it",
                        edit::canonical_name(None, &option),
                        edit::describe(&path),
                        self.program
                    )),
                })
            }
            ConfigCommand::Set { scope, option, value } => {
                let mut tree = self.view(session).clone();
                let path = edit::split_path(&tree, &scope);
                let name = edit::set(&mut tree, &path, &option, value.clone(), &console_span());
                let found = edit::Found { name, value, source: Source::Set { path: path.clone(), span: console_span() } };
                self.change(session, tree, vec![Changed::option(&path, &option)], line, Answer::Value { path, found })
            }
            ConfigCommand::Unset { words } => self.unset(session, &words, line),
            ConfigCommand::Show { words } => Plan::Answer(self.show(session, &words)),
            ConfigCommand::ShowRecurse { scope } => {
                let tree = self.view(session);
                let path = edit::split_path(tree, &scope);
                Plan::Answer(match edit::resolve(tree, &path) {
                    Some(found) => Ok(Answer::Tree { path, scope: found.clone() }),
                    None => Err(format!("no scope '{}' in the configuration", edit::describe(&path))),
                })
            }
            ConfigCommand::Locate { kind, filter } => {
                let tree = self.view(session);
                let regex = match filter.as_deref().map(regex::Regex::new).transpose() {
                    Ok(regex) => regex,
                    Err(e) => return Plan::Answer(Err(format!("config locate: bad regular expression: {e}"))),
                };
                let found = edit::locate(tree, &kind, regex.as_ref());
                Plan::Answer(if found.is_empty() {
                    Err(match filter {
                        Some(f) => format!("no '{kind}' scope whose name matches '{f}' in the configuration"),
                        None => format!("no '{kind}' scope in the configuration"),
                    })
                } else {
                    Ok(Answer::Located(found))
                })
            }
            ConfigCommand::Begin { scratch } => Plan::Answer(self.begin(session, scratch)),
            ConfigCommand::Commit => self.commit(session),
            ConfigCommand::Rollback => Plan::Answer(match session.and_then(|s| self.transactions.remove(&s)) {
                Some(t) => Ok(Answer::Message(format!("Transaction rolled back; {} change(s) discarded.", t.log.len()))),
                None => Err(no_transaction()),
            }),
            ConfigCommand::Replay => Plan::Answer(match session.and_then(|s| self.transactions.get(&s)) {
                Some(t) => Ok(Answer::Replay(t.log.clone())),
                None => Err(no_transaction()),
            }),
            ConfigCommand::Reload { path } => {
                if in_transaction {
                    return Plan::Answer(Err(
                        "config reload must run outside a transaction; 'config commit' or 'config rollback' first".to_owned(),
                    ));
                }
                match path.or_else(|| self.source.clone()) {
                    Some(path) => Plan::Reload { path },
                    None => Plan::Answer(Err(format!(
                        "no configuration file to reload: {} was started without -c; name one: config reload /path/to/file",
                        self.program
                    ))),
                }
            }
            ConfigCommand::Writeback { path } => {
                if path.is_none() && self.source.is_none() {
                    return Plan::Answer(Err(format!(
                        "no configuration file to write back to: {} was started without -c; name one: config writeback /path/to/file",
                        self.program
                    )));
                }
                Plan::Writeback(WritebackJob {
                    main: self.source.clone(),
                    alternate: path,
                    running: self.running.clone(),
                    changed: self.changed.keys().cloned().collect(),
                    generation: self.generation,
                })
            }
        }
    }

    /// A change: staged in the session's transaction, or applied.
    fn change(&self, session: Option<u64>, tree: Scope, changed: Vec<Changed>, line: &str, answer: Answer) -> Plan {
        match session.filter(|s| self.transactions.contains_key(s)) {
            Some(session) => Plan::Stage(Stage { session, tree, changed, line: line.to_owned(), answer }),
            None => Plan::Apply(Apply { tree, changed, answer, commit: None }),
        }
    }

    fn unset(&self, session: Option<u64>, words: &[String], line: &str) -> Plan {
        let Some((last, scope_words)) = words.split_last() else {
            return Plan::Answer(Err("the global scope cannot be unset; name a scope or an option".to_owned()));
        };
        let mut tree = self.view(session).clone();
        let path = edit::split_path(&tree, scope_words);
        if edit::resolve(&tree, &path).and_then(|s| s.option(last)).is_some() {
            let name = edit::canonical_name(edit::resolve(&tree, &path), last);
            edit::unset_option(&mut tree, &path, last);
            let effective = edit::eval(&tree, &path, last);
            let changed = vec![Changed::option(&path, last)];
            return self.change(session, tree, changed, line, Answer::Unset { name, path, effective });
        }
        let whole = edit::split_path(&tree, words);
        match edit::unset_scope(&mut tree, &whole) {
            Some(removed) => {
                let changed = vec![Changed::scope(&whole)];
                self.change(session, tree, changed, line, Answer::ScopeUnset { path: whole, removed })
            }
            None => Plan::Answer(Err(format!(
                "Option '{}' is not set in scope '{}', and there is no scope '{}'",
                edit::canonical_name(edit::resolve(&tree, &path), last),
                edit::describe(&path),
                edit::describe(&whole)
            ))),
        }
    }

    fn show(&self, session: Option<u64>, words: &[String]) -> Result<Answer, String> {
        let tree = self.view(session);
        let whole = edit::split_path(tree, words);
        if let Some(scope) = edit::resolve(tree, &whole) {
            return Ok(Answer::Show { path: whole, scope: scope.clone() });
        }
        let Some((last, scope_words)) = words.split_last() else {
            return Ok(Answer::Show { path: Vec::new(), scope: tree.clone() });
        };
        let path: ScopePath = edit::split_path(tree, scope_words);
        match edit::get(tree, &path, last) {
            Some(found) => Ok(Answer::Value { path, found }),
            None => Err(format!(
                "no scope '{}' and no option '{}' set in scope '{}'",
                edit::describe(&whole),
                edit::canonical_name(None, last),
                edit::describe(&path)
            )),
        }
    }

    fn begin(&mut self, session: Option<u64>, scratch: bool) -> Result<Answer, String> {
        let Some(session) = session else {
            return Err("config begin: a transaction belongs to one console session, so it cannot run through \
                        broadcast or unicast; send the config set and config unset commands themselves"
                .to_owned());
        };
        if self.transactions.contains_key(&session) {
            return Err("a transaction is already open on this console; 'config commit' or 'config rollback' first".to_owned());
        }
        let tree = if scratch { Scope::new("", None, self.running.span.clone()) } else { self.running.clone() };
        self.transactions.insert(session, Transaction { base: self.generation, tree, log: Vec::new(), changed: BTreeSet::new(), scratch });
        Ok(Answer::Message(if scratch {
            "Transaction started from scratch (an empty configuration).".to_owned()
        } else {
            "Transaction started.".to_owned()
        }))
    }

    fn commit(&self, session: Option<u64>) -> Plan {
        let Some((session, transaction)) = session.and_then(|s| self.transactions.get(&s).map(|t| (s, t))) else {
            return Plan::Answer(Err(no_transaction()));
        };
        if transaction.base != self.generation {
            return Plan::Answer(Err(
                "config commit failed: the running configuration changed since this transaction began \
                 (another console committed first, or a set, unset or reload ran outside it); nothing was changed. \
                 'config replay' shows this transaction's changes, 'config rollback' ends it"
                    .to_owned(),
            ));
        }
        let mut changed: Vec<Changed> = transaction.changed.iter().cloned().collect();
        if transaction.scratch {
            for (path, name) in edit::all_options(&self.running).into_iter().chain(edit::all_options(&transaction.tree)) {
                changed.push(Changed::option(&path, &name));
            }
            for scope in &self.running.scopes {
                changed.push(Changed::scope(&[edit::Step { kind: scope.kind.clone(), name: scope.name.clone() }]));
            }
        }
        let count = transaction.log.len();
        Plan::Apply(Apply {
            tree: transaction.tree.clone(),
            changed,
            answer: Answer::Message(format!("Transaction committed; {count} change(s) applied.")),
            commit: Some(session),
        })
    }

    /// `apply` validated and now runs.
    pub fn installed(&mut self, apply: Apply) {
        self.running = apply.tree;
        self.generation += 1;
        for change in apply.changed {
            self.changed.insert(change, self.generation);
        }
        if let Some(session) = apply.commit {
            self.transactions.remove(&session);
        }
    }

    /// `stage` validated: it is the session's transaction now (a transaction the session
    /// closed meanwhile is not reopened).
    pub fn staged(&mut self, stage: Stage) {
        if let Some(transaction) = self.transactions.get_mut(&stage.session) {
            transaction.tree = stage.tree;
            transaction.log.push(stage.line);
            transaction.changed.extend(stage.changed);
        }
    }

    /// The configuration read from `path` validated and now runs (a reload or SIGHUP): the
    /// files and the running configuration agree again.
    pub fn reloaded(&mut self, tree: Scope, path: PathBuf) {
        self.running = tree;
        self.source = Some(path);
        self.generation += 1;
        self.changed.clear();
    }

    /// A writeback of generation `generation` to the configuration's own files finished:
    /// what changed up to it is in the files.
    pub fn written(&mut self, generation: u64) {
        self.changed.retain(|_, changed_at| *changed_at > generation);
    }

    /// The session closed: its transaction, if any, is rolled back. Returns the number of
    /// changes discarded, if a transaction was open.
    pub fn session_closed(&mut self, session: u64) -> Option<usize> {
        self.transactions.remove(&session).map(|t| t.log.len())
    }

    /// Whether `session` has a transaction open.
    pub fn in_transaction(&self, session: u64) -> bool {
        self.transactions.contains_key(&session)
    }
}

#[cfg(test)]
mod tests;
