//! The daemon loop's side of following the configuration repository (see
//! [`crate::daemon::follow`]). The node core decides when to fetch (at start, when a newer
//! revision is announced, every `poll_interval`, and backing off after a failing server; one
//! fetch at a time: `eccluster_proto::revisions::Follower`); here each fetch it asks for runs
//! in a task, what it changed is loaded through the one reload path ([`Daemon::apply_tree`],
//! as SIGHUP and `config reload` do), and the core is told how the fetch went and what runs,
//! which it reports to the manager.

use std::path::Path;
use std::sync::Arc;
use std::time::Instant;

use eccluster_proto::revisions::{FetchOutcome, FollowTiming, Revisions};
use tracing::{debug, info, warn};

use super::config::Respond;
use super::{now, Daemon, Done};
use crate::confrepo::wc::Check;
use crate::daemon::follow::{self, show, FetchError, Fetched, FollowSettings};
use crate::daemon::SettingsReader;

/// What a node that follows no repository reports as the reason it runs none of the newest
/// revisions announced (the manager stops telling it, and `show cluster config` says why).
pub(super) const NOT_FOLLOWING: &str = "follows no configuration repository (started without --cluster-boot)";

/// What the loop knows of the working copy and the configuration it runs.
pub(super) struct Following {
    settings: Arc<FollowSettings>,
    check: Check,
    /// The revisions of the working copy.
    wc: Revisions,
    /// The revisions the running configuration was loaded from.
    running: Revisions,
    /// The running configuration is the working copy's files as they are.
    loaded: bool,
    /// Why the newest revisions do not run, while that stands.
    error: Option<String>,
    /// The server, once known.
    server: Option<String>,
    /// When the last fetch ended, and what it did.
    last: Option<(Instant, String)>,
    /// A fetch is running.
    fetching: bool,
}

impl Following {
    /// Following `settings`; `loaded` says whether the configuration the daemon started with
    /// is the working copy's.
    pub(super) fn new(settings: FollowSettings, reader: SettingsReader, loaded: bool) -> Following {
        let settings = Arc::new(settings);
        let wc = follow::wc_revisions(settings.wc()).unwrap_or_default();
        let running = if loaded { wc.clone() } else { Revisions::new() };
        let server = crate::confrepo::wc::WorkingCopy::open(settings.wc()).ok().map(|w| w.meta().server.clone());
        let for_check = settings.clone();
        let check: Check = Arc::new(move |tree: &Path| match for_check.config_file(tree) {
            None => Ok(()),
            Some(path) => {
                let scope = crate::config::load(&path).map_err(|e| e.to_string())?;
                reader.read(Some(&scope), &path).map(|_| ()).map_err(|e| format!("{e:#}"))
            }
        });
        Following { settings, check, wc, running, loaded, error: None, server, last: None, fetching: false }
    }

    /// When the node core has the shell look for new revisions.
    pub(super) fn timing(&self) -> FollowTiming {
        FollowTiming::polling(self.settings.boot.poll_interval)
    }

    /// Lines for `cluster info`.
    pub(super) fn info(&self, newest: Option<&Revisions>) -> Vec<(&'static str, String)> {
        let boot = &self.settings.boot;
        let mut items = vec![
            (
                "Config Repository",
                format!(
                    "{} (subcluster {}, node {}, user {})",
                    self.server.as_deref().map_or_else(|| "not reached yet".to_owned(), |s| format!("https://{s}")),
                    boot.cluster_name,
                    self.settings.node,
                    boot.username
                ),
            ),
            ("Config Working Copy", format!("{} at {}", self.settings.wc().display(), show(&self.wc))),
            ("Config Running", show(&self.running)),
        ];
        if let Some(newest) = newest {
            items.push(("Config Newest Announced", show(newest)));
        }
        let last = match &self.last {
            Some((at, what)) => format!("{}s ago: {what}", at.elapsed().as_secs()),
            None if self.fetching => "running".to_owned(),
            None => "none yet".to_owned(),
        };
        items.push(("Config Last Pull", last));
        items.push(("Config Error", self.error.clone().unwrap_or_else(|| "none".to_owned())));
        items
    }
}

impl Daemon {
    /// The node core asks for a fetch (it asks for one at a time).
    pub(super) fn start_fetch(&mut self) {
        let Some(f) = self.following.as_mut() else { return };
        if !f.settings.pulls() {
            debug!("autoupdate = false: not pulling");
            self.node.config_fetch_done(now(), FetchOutcome::Done);
            return;
        }
        f.fetching = true;
        let (settings, check, done) = (f.settings.clone(), f.check.clone(), self.done.clone());
        let shutdown = self.shutdown.clone();
        self.tracker.spawn(async move {
            let result = tokio::select! {
                _ = shutdown.cancelled() => return,
                result = follow::fetch(settings, check) => result,
            };
            if done.send(Done::Fetched(result)).await.is_err() {
                debug!("daemon loop gone; dropping a configuration fetch");
            }
        });
    }

    /// A fetch ended: load what changed, or record why the newest revisions do not run.
    pub(super) fn fetched(&mut self, result: Result<Fetched, FetchError>) {
        let Some(f) = self.following.as_mut() else { return };
        f.fetching = false;
        let mut load = None;
        let result_kind = result.as_ref().err().map(|e| e.transient);
        match result {
            Ok(fetched) => {
                f.wc = fetched.revisions.clone();
                f.server = Some(fetched.server);
                if fetched.changed {
                    info!(pulled = %fetched.summary, "configuration working copy updated");
                    f.loaded = false;
                    if f.settings.boot.reload_on_update || fetched.made {
                        load = f.settings.config_file(f.settings.wc()).map(|path| (path, fetched.revisions.clone()));
                        if load.is_none() {
                            // No configuration file in the working copy: the node runs none.
                            f.running = fetched.revisions;
                            f.error = Some(format!(
                                "the working copy has no {node}/{file} or default/{file}; running without a configuration file",
                                node = f.settings.node,
                                file = follow::CONFIG_FILE
                            ));
                        }
                    } else {
                        f.error = Some(format!(
                            "pulled {}, not loaded: reload_config_on_update = false (load it with `config reload`)",
                            show(&fetched.revisions)
                        ));
                    }
                } else {
                    debug!(pulled = %fetched.summary, "configuration checked");
                    if f.loaded {
                        f.running = fetched.revisions;
                        f.error = None;
                    }
                }
                f.last = Some((Instant::now(), fetched.summary));
            }
            Err(e) => {
                if f.error.as_deref() != Some(e.error.as_str()) {
                    warn!(error = %e.error, running = %show(&f.running), "configuration not updated; the running configuration stays");
                }
                if let Some(revisions) = e.revisions {
                    f.wc = revisions;
                }
                f.last = Some((Instant::now(), format!("failed: {}", e.error)));
                f.error = Some(e.error);
            }
        }
        match load {
            // The fetch ends when what it brought is loaded (so that loads never overlap).
            Some((path, revisions)) => self.spawn_read(path, Respond::Pulled { revisions }),
            None => {
                let outcome = if result_kind == Some(true) { FetchOutcome::Unreachable } else { FetchOutcome::Done };
                self.node.config_fetch_done(now(), outcome);
                self.report_running();
            }
        }
    }

    /// A configuration loaded from the working copy after a fetch runs now, or was refused.
    pub(super) fn pulled_loaded(&mut self, revisions: Revisions, result: Result<(), String>) {
        let Some(f) = self.following.as_mut() else { return };
        match result {
            Ok(()) => {
                info!(revisions = %show(&revisions), "configuration from the repository loaded");
                f.running = revisions;
                f.loaded = true;
                f.error = None;
            }
            Err(e) => {
                let e = format!("{} pulled but not loaded: {}", show(&revisions), e.trim_end());
                warn!(error = %e, "the running configuration stays");
                f.error = Some(e);
            }
        }
        self.node.config_fetch_done(now(), FetchOutcome::Done);
        self.report_running();
    }

    /// The operator reloaded the working copy's file: it runs.
    pub(super) fn reloaded_from(&mut self, path: &Path) {
        let Some(f) = self.following.as_mut() else { return };
        if f.settings.config_file(f.settings.wc()).as_deref() == Some(path) && !f.loaded {
            f.running = f.wc.clone();
            f.loaded = true;
            f.error = None;
            self.report_running();
        }
    }

    /// Tells the node core what runs (it reports to the managers; the loop drains).
    pub(super) fn report_running(&mut self) {
        let Some(f) = self.following.as_ref() else { return };
        let (running, error) = (f.running.clone(), f.error.clone());
        self.node.config_running(now(), running, error);
    }
}
