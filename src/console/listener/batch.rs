//! Batch requests on the listener's side: many command lines in one request frame
//! (`frame.rs`), answered by one reply frame holding each command's reply in order.
//!
//! Each line is parsed, authorized and recorded in the audit log on its own, exactly as if it
//! had come alone: a line that does not parse, or that the session's user may not run, is
//! answered here with its own error and the others go on. The commands that may run travel to
//! the daemon as one [`Job`] (the first, carrying the rest in [`Job::then`]), so that it takes
//! them together, in order, in one turn of its loop where it can.
//!
//! # Bounds
//! A batch is one request: its frame is bounded by `max_request` like any other, and it holds
//! at most `max_batch` lines (a larger one is refused whole, as a bad request, before anything
//! runs; the client can split it and send it again). Its replies together stay within
//! `max_reply`: each is bounded as a reply of its own, and one that would take the room the
//! replies after it need is replaced by [`OVER_BATCH`] (its command ran). Every command keeps
//! room for that short error: [`ENTRY_RESERVE`] bytes times [`super::MAX_BATCH`] commands fit in
//! the smallest `Max_Reply_Size`.

use std::time::Instant;

use tokio::sync::{mpsc, oneshot};
use tokio_util::sync::CancellationToken;
use tracing::debug;

use super::super::access::{Gate, Peer};
use super::super::audit::Outcome;
use super::super::frame::{batch_entry_overhead, batch_reply, Reply, Status};
use super::super::request::parse_line;
use super::{within, ConnectionLimits, Job, Session, DROPPED, SHUTTING_DOWN};

/// What replaces the reply of a batch's command that does not fit in what is left of
/// `max_reply`. Short, so that the room kept for it is small.
pub const OVER_BATCH: &str = "reply over the batch's Max_Reply_Size";

/// The room kept in a batch reply for every command: enough for [`OVER_BATCH`] and its header.
const ENTRY_RESERVE: usize = 64;

const _: () = assert!(OVER_BATCH.len() + 3 + 2 <= ENTRY_RESERVE);
const _: () = assert!(ENTRY_RESERVE * super::MAX_BATCH <= 64 * 1024);

/// A command of a batch: answered here, or sent to the daemon and awaited.
enum Slot {
    Answered(Reply),
    Waiting(oneshot::Receiver<Reply>),
}

/// Answers a batch request of `lines` for `peer`: parses, authorizes and audits each line,
/// has the daemon run those that may run, and returns the batch reply (or the refusal of the
/// whole batch).
pub(super) async fn answer(
    lines: &[&str],
    jobs: &mpsc::Sender<Job>,
    session: &Session,
    shutdown: &CancellationToken,
    limits: &ConnectionLimits,
    gate: &Gate,
    peer: &Peer,
) -> Reply {
    if lines.is_empty() {
        return Reply::bad_request("empty batch: a batch request carries one command per line");
    }
    if lines.len() > limits.max_batch {
        return Reply::bad_request(format!(
            "batch of {} commands exceeds the limit of {} commands (Control_Listener Max_Batch_Commands); nothing ran",
            lines.len(),
            limits.max_batch
        ));
    }
    let started = Instant::now();
    let mut slots = Vec::with_capacity(lines.len());
    let mut runs = Vec::new();
    for line in lines {
        let request = match parse_line(line) {
            Ok(request) => request,
            Err(error) => {
                debug!(%error, "unparsable console line in a batch");
                gate.audit.record(peer.user.as_deref(), &peer.from, line, Outcome::Error, started.elapsed());
                slots.push(Slot::Answered(Reply::bad_request(error.to_string())));
                continue;
            }
        };
        if let Err(refusal) = gate.authorize(peer, &request.line, &request.words) {
            slots.push(Slot::Answered(refusal));
            continue;
        }
        let (reply, answer) = oneshot::channel();
        runs.push(Job { request, reply, session: session.clone(), then: Vec::new() });
        slots.push(Slot::Waiting(answer));
    }
    debug!(commands = lines.len(), to_run = runs.len(), "console batch");
    let mut runs = runs.into_iter();
    if let Some(mut first) = runs.next() {
        first.then = runs.collect();
        // If the daemon is gone the jobs are dropped with it: each is answered as abandoned.
        if jobs.send(first).await.is_err() {
            debug!("daemon gone; batch dropped");
        }
    }
    let abandoned = || Reply::failed(if shutdown.is_cancelled() { SHUTTING_DOWN } else { DROPPED });
    let mut replies = Vec::with_capacity(slots.len());
    let mut used = 0;
    let count = slots.len();
    for (i, (slot, line)) in slots.into_iter().zip(lines).enumerate() {
        let reply = match slot {
            Slot::Answered(reply) => reply,
            Slot::Waiting(answer) => {
                let reply = within(answer.await.unwrap_or_else(|_| abandoned()), limits.max_reply);
                let outcome = if reply.status == Status::Ok { Outcome::Ok } else { Outcome::Error };
                gate.audit.record(peer.user.as_deref(), &peer.from, line, outcome, started.elapsed());
                reply
            }
        };
        let entry = batch_entry_overhead(reply.body.len()) + reply.body.len();
        let kept_after = (count - i - 1) * ENTRY_RESERVE;
        let reply = if used + entry + kept_after > limits.max_reply {
            debug!(len = reply.body.len(), "batch reply over the limit");
            Reply::failed(OVER_BATCH)
        } else {
            reply
        };
        used += batch_entry_overhead(reply.body.len()) + reply.body.len();
        replies.push(reply);
    }
    batch_reply(&replies)
}
