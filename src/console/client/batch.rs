//! `ec_console`'s batch mode: the command given on the command line, or the commands read
//! from standard input when it is not a terminal, run without banner or prompt; each reply
//! is printed in order (ok to stdout, failures to stderr).
//!
//! Commands from standard input travel many to a request: the lines already read when one
//! is needed (up to [`BATCH_COMMANDS`] of them, and a request of at most [`MAX_REQUEST`]
//! bytes) go as one batch request, so a pipe of thousands of commands costs tens of round
//! trips, not thousands, and the daemon takes each batch in one turn. Input that arrives
//! slowly is sent as it comes: the client never waits for more lines before sending those it
//! has. A console that refuses a batch as a bad request (it has smaller bounds, or predates
//! batches) ran none of it: the client halves its batches and sends the same commands again,
//! down to one command per request, the way it spoke before batches.

use std::io;
use std::process::ExitCode;

use anyhow::Context as _;
use tokio::io::{AsyncBufReadExt as _, BufReader};

use super::{is_quit, show, Batched, Session, SessionError, EXIT_FAILED};
use crate::console::frame::{Status, MAX_REQUEST};

/// Most commands in one batch request: the console's default `Max_Batch_Commands`.
pub const BATCH_COMMANDS: usize = 512;

/// Room of the batch request's tag (`NUL batch NUL`).
const TAG: usize = 7;

/// Where batch commands come from.
pub(super) enum Source {
    /// The command from the command line, taken once.
    One(Option<String>),
    /// Standard input, one command per line.
    Stdin { reader: BufReader<tokio::io::Stdin>, line_no: u64 },
}

/// What one line of input is.
enum Line {
    /// A command to send.
    Command(String),
    /// A line that cannot be used; the problem, to report in its place.
    Problem(String),
    /// Blank, or a comment.
    Nothing,
}

/// What was read for one round of requests.
#[derive(Default)]
struct Chunk {
    /// Commands and problems, in input order.
    items: Vec<Result<String, String>>,
    /// The input ended, or asked to quit, after these.
    last: bool,
}

impl Source {
    /// Standard input, read through a buffer that holds a whole batch request.
    pub(super) fn stdin() -> Source {
        Source::Stdin { reader: BufReader::with_capacity(MAX_REQUEST, tokio::io::stdin()), line_no: 0 }
    }

    /// The next line; `Ok(None)` at the end of the input.
    async fn line(reader: &mut BufReader<tokio::io::Stdin>, line_no: &mut u64) -> io::Result<Option<Line>> {
        let mut bytes = Vec::new();
        if reader.read_until(b'\n', &mut bytes).await? == 0 {
            return Ok(None);
        }
        *line_no += 1;
        let Ok(line) = String::from_utf8(bytes) else {
            return Ok(Some(Line::Problem(format!("line {line_no} of standard input is not valid UTF-8; skipped"))));
        };
        let line = line.trim();
        if line.is_empty() || line.starts_with('#') {
            return Ok(Some(Line::Nothing));
        }
        Ok(Some(Line::Command(line.to_string())))
    }

    /// What to send next: waits for one command (or problem), then takes every further line
    /// already read, up to `max` items; stops after `quit` / `exit` and at the end.
    async fn next_chunk(&mut self, max: usize) -> io::Result<Chunk> {
        let mut chunk = Chunk::default();
        match self {
            Source::One(line) => {
                chunk.items.extend(line.take().map(Ok));
                chunk.last = true;
            }
            Source::Stdin { reader, line_no } => loop {
                // After the first item, only lines whose end is already in the buffer: never
                // wait for input while commands are ready to go.
                if !chunk.items.is_empty() && (chunk.items.len() >= max || !reader.buffer().contains(&b'\n')) {
                    break;
                }
                match Source::line(reader, line_no).await? {
                    None => {
                        chunk.last = true;
                        break;
                    }
                    Some(Line::Nothing) => {}
                    Some(Line::Problem(problem)) => chunk.items.push(Err(problem)),
                    Some(Line::Command(command)) if is_quit(&command) => {
                        chunk.last = true;
                        break;
                    }
                    Some(Line::Command(command)) => chunk.items.push(Ok(command)),
                }
            },
        }
        Ok(chunk)
    }
}

/// Whether the session can go on after a round of requests.
enum Flow {
    Continue,
    Stop(ExitCode),
}

/// Runs the commands of `source`; the exit code says whether every command succeeded.
pub(super) async fn run(session: &mut Session, mut source: Source) -> anyhow::Result<ExitCode> {
    let mut failed = false;
    let mut limit = BATCH_COMMANDS;
    loop {
        let chunk = source.next_chunk(BATCH_COMMANDS).await.context("reading standard input")?;
        let mut commands = Vec::new();
        for item in chunk.items {
            match item {
                Ok(command) => commands.push(command),
                Err(problem) => {
                    if let Flow::Stop(code) = send(session, &std::mem::take(&mut commands), &mut limit, &mut failed).await? {
                        return Ok(code);
                    }
                    eprintln!("ec_console: {problem}");
                    failed = true;
                }
            }
        }
        if let Flow::Stop(code) = send(session, &commands, &mut limit, &mut failed).await? {
            return Ok(code);
        }
        if chunk.last {
            break;
        }
    }
    Ok(if failed { ExitCode::from(EXIT_FAILED) } else { ExitCode::SUCCESS })
}

/// How many of `commands` (at least one) go in the next request: at most `limit`, and a
/// request of at most [`MAX_REQUEST`] bytes.
fn next_batch(commands: &[String], limit: usize) -> usize {
    let mut bytes = TAG;
    let mut n = 0;
    for command in commands.iter().take(limit.max(1)) {
        bytes += command.len() + 1;
        if n > 0 && bytes > MAX_REQUEST {
            break;
        }
        n += 1;
    }
    n.max(1).min(commands.len())
}

/// Sends `commands` in order, in batches of at most `limit` (halved for the session when the
/// console refuses a batch as a bad request), printing every reply.
async fn send(session: &mut Session, commands: &[String], limit: &mut usize, failed: &mut bool) -> anyhow::Result<Flow> {
    let mut rest = commands;
    while !rest.is_empty() {
        let n = next_batch(rest, *limit);
        let (batch, after) = rest.split_at(n);
        let outcome = if n == 1 {
            session.call(&batch[0]).await.map(|reply| vec![reply])
        } else {
            match session.call_batch(batch).await {
                Ok(Batched::Replies(replies)) => Ok(replies),
                Ok(Batched::Refused(reply)) if reply.status == Status::BadRequest => {
                    // Nothing ran: the same commands again, in smaller batches.
                    *limit = n / 2;
                    continue;
                }
                Ok(Batched::Refused(reply)) => Ok(vec![reply]),
                Err(error) => Err(error),
            }
        };
        match outcome {
            Ok(replies) => {
                for reply in &replies {
                    *failed |= !show(reply)?;
                }
            }
            Err(SessionError::Receive(error)) if error.is_recoverable() => {
                eprintln!("ec_console: {error}");
                *failed = true;
            }
            Err(SessionError::Closed) => {
                eprintln!("connection closed by server");
                return Ok(Flow::Stop(ExitCode::from(EXIT_FAILED)));
            }
            Err(error) => {
                eprintln!("ec_console: {error}");
                return Ok(Flow::Stop(ExitCode::from(EXIT_FAILED)));
            }
        }
        rest = after;
    }
    Ok(Flow::Continue)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn commands(n: usize, len: usize) -> Vec<String> {
        (0..n).map(|_| "x".repeat(len)).collect()
    }

    #[test]
    fn batches_hold_the_limit_and_fit_a_request() {
        assert_eq!(next_batch(&commands(1000, 26), BATCH_COMMANDS), 512);
        assert_eq!(next_batch(&commands(10, 26), BATCH_COMMANDS), 10);
        assert_eq!(next_batch(&commands(10, 26), 4), 4);
        // 999-byte commands: 65 of them, their line breaks and the tag are 65,007 bytes.
        assert_eq!(next_batch(&commands(100, 999), BATCH_COMMANDS), 65);
        // A command larger than a request still goes, alone (the console says it is too long).
        assert_eq!(next_batch(&commands(3, MAX_REQUEST * 2), BATCH_COMMANDS), 1);
        assert_eq!(next_batch(&commands(3, 5), 0), 1);
    }
}
