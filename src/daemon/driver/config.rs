//! The `config` command and configuration reloads on the daemon loop: runs what the
//! [`ConfigStore`] plans, applies a new running configuration exactly as a SIGHUP reload does
//! ([`Daemon::apply_tree`], the one path for both), and does the file work (reading for
//! `reload` and SIGHUP, writing for `writeback`) on blocking threads that report back through
//! the loop's `Done` channel, so that no turn of the loop waits for a disk.
//!
//! Only what the configuration says that can change while running is applied: DuraVIP
//! bindings, timings and plumbing (through the actuator and the node core) and a node's
//! declared commands. The rest (listeners, `Broadcast_Timeout`, the control cache, the kind
//! of actuator, the address lifetime and the DuraVIP policy) becomes part of the running
//! configuration at once, for `get`, `eval` and `writeback`, and takes effect at the next
//! restart; the answer says so (a SIGHUP logs it).

use std::path::PathBuf;

use eccluster_proto::node::{DuravipSetup, Format, Input};
use eccluster_proto::ops::{AnswerStatus, OpId};
use eccluster_proto::Role;
use tokio::sync::oneshot;
use tracing::{debug, error, info, warn};

use super::{now, Daemon, Done};
use crate::commands::config::answer::render_answer;
use crate::commands::config::{self as store, name_console, Answer, Plan, WritebackJob};
use crate::config::duravip::DuravipSettings;
use crate::config::writeback::{self, Written};
use crate::config::Scope;
use crate::console::frame::Reply;
use crate::console::listener::Session;
use crate::console::request::Request;

/// Where the answer to a `config` command (or a reload) goes.
pub(super) enum Respond {
    /// A console request.
    Console {
        /// Its reply.
        reply: oneshot::Sender<Reply>,
        /// The format asked for.
        format: Format,
    },
    /// An operation being applied (`broadcast config ...`).
    Operation {
        /// The operation.
        id: OpId,
        /// The format asked for.
        format: Format,
    },
    /// SIGHUP: the log.
    Signal,
    /// A fetch from the configuration repository changed the working copy at these revisions.
    Pulled {
        /// The working copy's revisions.
        revisions: eccluster_proto::revisions::Revisions,
    },
}

/// File work of the `config` command, finished on a blocking thread.
pub(super) enum ConfigDone {
    /// A configuration was read for `config reload` or SIGHUP.
    Read {
        path: PathBuf,
        read: Result<Scope, String>,
        respond: Respond,
    },
    /// A writeback finished.
    Written {
        /// The generation of the running configuration written.
        generation: u64,
        /// Written to another file than the configuration's own.
        alternate: bool,
        written: Result<Written, String>,
        respond: Respond,
    },
}

impl Daemon {
    /// Answers a `config` command typed on `session` (`None`: applied as an operation).
    pub(super) fn config_command(&mut self, request: &Request, session: Option<&Session>, respond: Respond) {
        let command = match store::parse(&request.words) {
            Ok(command) => command,
            Err(usage) => return self.respond(respond, Err(usage)),
        };
        let format = respond.format();
        let plan = self.config.plan(command, session.map(|s| s.id), &request.line);
        if let Some(session) = session {
            if self.config.in_transaction(session.id) && self.watched.insert(session.id) {
                self.watch_session(session);
            }
        }
        match plan {
            Plan::Answer(answer) => self.respond(respond, answer.map(|a| render_answer(&a, &[], format))),
            Plan::Stage(stage) => match self.check_tree(&stage.tree) {
                Ok(notes) => {
                    let body = render_answer(&stage.answer, &notes, format);
                    self.config.staged(stage);
                    self.respond(respond, Ok(body));
                }
                Err(e) => self.respond(respond, Err(refused(&e))),
            },
            Plan::Apply(apply) => match self.apply_tree(&apply.tree, false) {
                Ok(notes) => {
                    info!(command = %request.line, "running configuration changed");
                    let body = render_answer(&apply.answer, &notes, format);
                    self.config.installed(apply);
                    self.respond(respond, Ok(body));
                }
                Err(e) => self.respond(respond, Err(refused(&e))),
            },
            Plan::Reload { path } => self.spawn_read(path, respond),
            Plan::Writeback(job) => self.spawn_writeback(job, respond),
        }
    }

    /// Runs the `config` commands of operations that [`Daemon::execute`] set aside, each after
    /// the drain that found it (see `Daemon::deferred`), draining after each.
    pub(super) fn run_deferred(&mut self) {
        while let Some((request, id)) = self.deferred.pop_front() {
            let respond = Respond::Operation { id, format: request.format };
            self.config_command(&request, None, respond);
            self.drain();
        }
    }

    /// SIGHUP: re-reads the configuration file and applies it, as `config reload` does.
    pub(super) fn sighup(&mut self) {
        match self.config.source().cloned() {
            Some(path) => self.spawn_read(path, Respond::Signal),
            None => warn!("SIGHUP: no configuration file (-c) to reload"),
        }
    }

    /// The origin used in messages about the running configuration.
    fn origin(&self) -> PathBuf {
        self.config.source().cloned().unwrap_or_else(|| PathBuf::from("-"))
    }

    /// Checks that `tree` would be accepted as the running configuration; the warnings it
    /// deserves, or the error naming the option and where it was set.
    fn check_tree(&self, tree: &Scope) -> Result<Vec<String>, String> {
        let (_, warnings) = self.cfg.reader.read(Some(tree), &self.origin()).map_err(|e| name_console(&format!("{e:#}")))?;
        Ok(warnings.iter().map(|w| format!("warning: {w}")).collect())
    }

    /// Makes `tree` the configuration the daemon runs with, as every reload does (SIGHUP,
    /// `config reload`, `config set` / `unset` / `commit`): it is read and checked as at start,
    /// then what can change while running is applied; see the module documentation. With
    /// `restate`, DuraVIP is reconfigured (and the node restates its state to its peers) even
    /// when its settings did not change. Returns notes for the operator (warnings, settings
    /// that wait for a restart); on an error nothing changed.
    pub(super) fn apply_tree(&mut self, tree: &Scope, restate: bool) -> Result<Vec<String>, String> {
        let (settings, warnings) = self.cfg.reader.read(Some(tree), &self.origin()).map_err(|e| name_console(&format!("{e:#}")))?;
        let mut notes: Vec<String> = warnings.iter().map(|w| format!("warning: {w}")).collect();
        let program = crate::commands::program(self.cfg.role);
        let old = &self.cfg.settings;
        let mut restart = Vec::new();
        if settings.console != old.console || settings.access != old.access {
            restart.push("Control_Listener");
        }
        if settings.listener != old.listener {
            restart.push("ECCluster_Listener");
        }
        if settings.metrics.as_ref().map(|m| m.addr) != old.metrics.as_ref().map(|m| m.addr) {
            restart.push("Metrics_Listener");
        }
        if settings.answer_timeout != old.answer_timeout {
            restart.push("Broadcast_Timeout");
        }
        if settings.cache != old.cache {
            restart.push("Logs (Control_Cache)");
        }
        if settings.duravip.actuator != old.duravip.actuator || settings.duravip.lifetime != old.duravip.lifetime {
            restart.push("duravip_actuator, duravip_script and duravip_address_lifetime");
        }
        if settings.duravip.core.policy != old.duravip.core.policy {
            restart.push("duravip_policy");
        }
        for what in restart {
            notes.push(format!("{what}: the change takes effect at the next restart of {program}"));
        }
        // The kind of actuator, the address lifetime and the policy stay as the daemon started.
        let mut duravip = settings.duravip.clone();
        duravip.actuator = self.cfg.duravip.actuator.clone();
        duravip.lifetime = self.cfg.duravip.lifetime;
        duravip.core.policy = self.cfg.duravip.core.policy;
        if restate || duravip != self.cfg.duravip {
            self.apply_duravip(duravip)?;
        }
        if self.cfg.role == Role::Node {
            self.cfg.registry = settings.registry.clone();
        }
        self.cfg.settings = settings;
        Ok(notes)
    }

    /// New DuraVIP settings through the actuator and the node core; on an error nothing changed.
    fn apply_duravip(&mut self, settings: DuravipSettings) -> Result<(), String> {
        let old = self.cfg.duravip.clone();
        // While the core releases what is gone and may take what is new, the actuator knows both.
        let mut both = settings.clone();
        for (addr, p) in &old.plumbing {
            both.plumbing.entry(*addr).or_insert_with(|| p.clone());
        }
        if let Some(a) = &self.actuator {
            a.reconfigure(&old, &both).map_err(|e| format!("{e:#}"))?;
        }
        let setup = DuravipSetup { bindings: settings.bindings.clone(), config: settings.core.clone() };
        if let Err(e) = self.node.reconfigure_duravip(now(), setup) {
            if let Some(Err(back)) = self.actuator.as_ref().map(|a| a.reconfigure(&both, &old)) {
                error!(error = %format!("{back:#}"), "duravip actuator did not take the old plumbing back");
            }
            return Err(e.to_string());
        }
        self.drain();
        if let Some(a) = &self.actuator {
            if let Err(e) = a.reconfigure(&both, &settings) {
                error!(error = %format!("{e:#}"), "duravip actuator did not take the new plumbing");
            }
        }
        info!(addresses = settings.bindings.len(), "DuraVIP configuration applied");
        self.cfg.duravip = settings;
        Ok(())
    }

    /// Reads the configuration at `path` on a blocking thread; [`Daemon::config_done`] goes on.
    pub(super) fn spawn_read(&self, path: PathBuf, respond: Respond) {
        let done = self.done.clone();
        self.tracker.spawn(async move {
            let reading = path.clone();
            let read = tokio::task::spawn_blocking(move || crate::config::load(&reading).map_err(|e| e.to_string()))
                .await
                .unwrap_or_else(|e| Err(format!("reading {}: {e}", path.display())));
            if done.send(Done::Config(ConfigDone::Read { path, read, respond })).await.is_err() {
                debug!("daemon loop gone; dropping a configuration read");
            }
        });
    }

    /// Writes the running configuration back on a blocking thread.
    fn spawn_writeback(&self, job: WritebackJob, respond: Respond) {
        let done = self.done.clone();
        let WritebackJob { main, alternate, running, changed, generation } = job;
        let is_alternate = alternate.is_some();
        self.tracker.spawn(async move {
            let written = tokio::task::spawn_blocking(move || match (alternate, main) {
                (Some(path), _) => writeback::write_whole(&path, &running),
                (None, Some(main)) => writeback::write_back(&main, &running, &changed),
                (None, None) => Err("no configuration file to write back to".to_owned()),
            })
            .await
            .unwrap_or_else(|e| Err(format!("the writeback stopped: {e}")));
            let done_msg = ConfigDone::Written { generation, alternate: is_alternate, written, respond };
            if done.send(Done::Config(done_msg)).await.is_err() {
                debug!("daemon loop gone; dropping a writeback result");
            }
        });
    }

    /// File work finished: applies a reload, records a writeback, answers.
    pub(super) fn config_done(&mut self, done: ConfigDone) {
        match done {
            ConfigDone::Read { path, read, respond: Respond::Pulled { revisions } } => {
                let applied = read.and_then(|tree| self.apply_tree(&tree, true).map(|notes| (tree, notes)));
                let result = match applied {
                    Ok((tree, notes)) => {
                        for note in &notes {
                            info!("{note}");
                        }
                        self.config.reloaded(tree, path);
                        Ok(())
                    }
                    Err(e) => Err(e),
                };
                self.pulled_loaded(revisions, result);
            }
            ConfigDone::Read { path, read, respond } => {
                let applied = read.and_then(|tree| self.apply_tree(&tree, true).map(|notes| (tree, notes)));
                match applied {
                    Ok((tree, notes)) => {
                        info!(path = %path.display(), addresses = self.cfg.duravip.bindings.len(), "configuration reloaded");
                        for note in &notes {
                            info!("{note}");
                        }
                        let answer = Answer::Message(format!("OK: reloaded {}", path.display()));
                        let body = render_answer(&answer, &notes, respond.format());
                        self.reloaded_from(&path);
                        self.config.reloaded(tree, path);
                        self.respond(respond, Ok(body));
                    }
                    Err(e) => {
                        let message = format!("Reconfigure failed: {e}\nthe running configuration stays\n");
                        self.respond(respond, Err(message));
                    }
                }
            }
            ConfigDone::Written { generation, alternate, written, respond } => match written {
                Ok(written) => {
                    if !alternate {
                        self.config.written(generation);
                    }
                    let message = if written.files.is_empty() {
                        "Nothing to write back: the files already hold the running configuration.".to_owned()
                    } else {
                        let files: Vec<String> = written.files.iter().map(|f| f.display().to_string()).collect();
                        info!(files = %files.join(", "), "configuration written back");
                        format!("Wrote the running configuration back to {}.", files.join(", "))
                    };
                    let body = render_answer(&Answer::Message(message), &[], respond.format());
                    self.respond(respond, Ok(body));
                }
                Err(e) => self.respond(respond, Err(format!("config writeback failed: {e}\n"))),
            },
        }
    }

    /// Rolls back the transaction of a console session that closed.
    pub(super) fn session_closed(&mut self, session: u64) {
        self.watched.remove(&session);
        if let Some(changes) = self.config.session_closed(session) {
            info!(session, changes, "console session closed with a transaction open; rolled back");
        }
    }

    /// Learns when `session` closes (it has a transaction open).
    fn watch_session(&self, session: &Session) {
        let (done, closed, shutdown, id) = (self.done.clone(), session.closed.clone(), self.shutdown.clone(), session.id);
        self.tracker.spawn(async move {
            tokio::select! {
                _ = closed.cancelled() => {
                    if done.send(Done::SessionClosed(id)).await.is_err() {
                        debug!("daemon loop gone; not rolling back a transaction");
                    }
                }
                _ = shutdown.cancelled() => {}
            }
        });
    }

    /// Sends an answer where it goes.
    fn respond(&mut self, respond: Respond, result: Result<String, String>) {
        let with_newline = |text: String| if text.ends_with('\n') || text.is_empty() { text } else { text + "\n" };
        match respond {
            Respond::Console { reply, .. } => {
                let answer = match result {
                    Ok(body) => Reply::ok(body),
                    Err(e) => Reply::failed(with_newline(e)),
                };
                if reply.send(answer).is_err() {
                    debug!("console client went away before its answer");
                }
            }
            Respond::Operation { id, .. } => {
                let (status, body) = match result {
                    Ok(body) => (AnswerStatus::Ok, body),
                    Err(e) => (AnswerStatus::Error, with_newline(e)),
                };
                self.input(Input::Executed { op: id, status, body });
            }
            Respond::Signal => match result {
                Ok(_) => {}
                Err(e) => error!(error = %e.trim_end(), "configuration reload refused; the running configuration stays"),
            },
            Respond::Pulled { .. } => {}
        }
    }
}

impl Respond {
    fn format(&self) -> Format {
        match self {
            Respond::Console { format, .. } | Respond::Operation { format, .. } => *format,
            Respond::Signal | Respond::Pulled { .. } => Format::Text,
        }
    }
}

/// The answer to a change that did not validate.
fn refused(error: &str) -> String {
    format!("refused: {error}\nnothing was changed\n")
}

