//! The daemon loop's side of the console: one request, a batch of them, and the requests
//! still held at the stop.
//!
//! A batch (see `console/listener/batch.rs`) is taken in one turn of the loop: its commands
//! are handled one after the other, in order, so a batch of broadcasts is sequenced together —
//! one submission of journal writes, one fsync, one message per node — and each command is
//! answered on its own reply channel as it would be alone. Commands whose effect comes later
//! than their handling (a `config` command, whose file work runs on a blocking thread; a
//! declared program; on a node, a `cluster duravip move` the manager orders) would let the
//! next command of the batch run before they took effect, which a command sent alone never
//! does: at such a command the rest of the batch waits until it is answered, then goes on in
//! a later turn ([`Done::Resume`]). A batch that meets a `shutdown` answers what is left of it
//! with [`SHUTTING_DOWN`].

use std::collections::VecDeque;

use eccluster_proto::node::Command;
use eccluster_proto::Role;
use tokio::sync::{mpsc, oneshot};
use tracing::{debug, info};

use super::{command_name, config, now, Daemon, Done, Pending};
use crate::commands::{render, Dispatch};
use crate::console::frame::Reply;
use crate::console::listener::{Job, SHUTTING_DOWN};

impl Daemon {
    /// Takes one job from the console: a single command, or a batch; returns how many
    /// commands it held.
    pub(super) fn take_job(&mut self, job: Job) -> usize {
        if job.then.is_empty() {
            self.handle_job(job);
            return 1;
        }
        let batch: VecDeque<Job> = job.into_batch().into();
        let commands = batch.len();
        self.run_batch(batch);
        commands
    }

    /// Handles the commands of a batch in order, until one whose effect comes later than its
    /// handling: the rest waits for its answer (see the module docs).
    pub(super) fn run_batch(&mut self, mut batch: VecDeque<Job>) {
        while let Some(mut job) = batch.pop_front() {
            if self.shutdown.is_cancelled() {
                for job in std::iter::once(job).chain(batch) {
                    if job.reply.send(Reply::failed(SHUTTING_DOWN)).is_err() {
                        debug!("console client went away before its answer");
                    }
                }
                return;
            }
            if batch.is_empty() || self.settles_at_once(&job.request.words) {
                self.handle_job(job);
                continue;
            }
            let (reply, answered) = oneshot::channel();
            let client = std::mem::replace(&mut job.reply, reply);
            self.handle_job(job);
            let done = self.done.clone();
            self.tracker.spawn(async move {
                // Dropped unanswered (the daemon stops): so is the rest, and the listener says why.
                let Ok(answer) = answered.await else { return };
                if client.send(answer).is_err() {
                    debug!("console client went away before its answer");
                }
                if done.send(Done::Resume(batch)).await.is_err() {
                    debug!("daemon loop gone; dropping the rest of a console batch");
                }
            });
            return;
        }
    }

    /// Whether handling `words` applies the command's effect before the next command is
    /// handled: true for the commands of the cores (sequencing a broadcast, reading results)
    /// and the built-in commands of the shell; false for those answered later (see the module
    /// docs).
    fn settles_at_once(&self, words: &[String]) -> bool {
        let role = self.cfg.role;
        match Command::parse(role, words) {
            Some(Ok(Command::DuravipMove { .. })) => role != Role::Node,
            Some(_) => true,
            None if crate::commands::config::is_config(words) => false,
            None => role != Role::Node || self.cfg.registry.find(words).is_none(),
        }
    }

    /// Answers one console request: a command of the cores goes to the node core (its reply
    /// comes back as an output), anything else is the shell's.
    pub(super) fn handle_job(&mut self, Job { request, reply, session, .. }: Job) {
        match Command::parse(self.cfg.role, &request.words) {
            Some(Ok(command)) => {
                self.next_request += 1;
                let name = command_name(&request.words);
                self.pending.insert(self.next_request, Pending { format: request.format, name, reply });
                self.node.command(now(), self.next_request, command);
            }
            Some(Err(e)) => {
                if reply.send(Reply::failed(render::error(&command_name(&request.words), &e))).is_err() {
                    debug!("console client went away before its answer");
                }
            }
            None if crate::commands::config::is_config(&request.words) => {
                let respond = config::Respond::Console { reply, format: request.format };
                self.config_command(&request, Some(&session), respond);
            }
            None => match self.dispatch(&request) {
                Dispatch::Reply(answer) => {
                    if reply.send(answer).is_err() {
                        debug!("console client went away before its answer");
                    }
                }
                Dispatch::External(cmd, rest) => {
                    self.spawn_external(cmd, rest, &request.line, move |o| Done::Console(reply, o))
                }
            },
        }
    }

    /// At the stop: answers every console request the loop holds or has not taken yet with
    /// `SHUTTING_DOWN`, and takes no more.
    pub(super) fn abandon_console(&mut self, jobs: &mut mpsc::Receiver<Job>) {
        jobs.close();
        let mut replies: Vec<oneshot::Sender<Reply>> = std::mem::take(&mut self.pending).into_values().map(|p| p.reply).collect();
        while let Ok(job) = jobs.try_recv() {
            replies.extend(job.into_batch().into_iter().map(|job| job.reply));
        }
        if !replies.is_empty() {
            info!(requests = replies.len(), "stopping: answering console requests in flight");
        }
        for reply in replies {
            if reply.send(Reply::failed(SHUTTING_DOWN)).is_err() {
                debug!("console client went away before its answer");
            }
        }
    }
}
