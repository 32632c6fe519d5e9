//! Standard output for the command-line tools and the daemons' few operator lines.
//!
//! `println!` panics when its reader has gone away (`eccfg log | head`, a closed terminal, a
//! supervisor's pipe that was shut). Here a closed reader is not an error: the line is dropped
//! and the command carries on (what it did, it did; there is no one left to tell). Any other
//! failure to write (a full disk behind a redirection) is an error that names standard output.

use std::fmt;
use std::io::{self, Write};

/// Standard output could not be written for a reason other than its reader going away.
#[derive(Debug, thiserror::Error)]
#[error("writing to standard output: {0}")]
pub struct StdoutError(#[source] pub io::Error);

/// Writes `args` to standard output and flushes it; a closed reader (`BrokenPipe`) is `Ok`.
pub fn write(args: fmt::Arguments<'_>) -> Result<(), StdoutError> {
    write_to(&mut io::stdout().lock(), args)
}

/// [`write`] to any writer (the tests use a pipe whose reader is closed).
pub fn write_to(out: &mut impl Write, args: fmt::Arguments<'_>) -> Result<(), StdoutError> {
    match out.write_fmt(args).and_then(|()| out.flush()) {
        Err(error) if error.kind() != io::ErrorKind::BrokenPipe => Err(StdoutError(error)),
        _ => Ok(()),
    }
}

/// `println!` that returns a [`StdoutError`] instead of panicking, and drops the line when
/// standard output's reader has gone away.
#[macro_export]
macro_rules! say {
    () => {
        $crate::stdout::write(format_args!("\n"))
    };
    ($($arg:tt)*) => {
        $crate::stdout::write(format_args!("{}\n", format_args!($($arg)*)))
    };
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A writer that fails every write with `kind`.
    struct Failing(io::ErrorKind);

    impl Write for Failing {
        fn write(&mut self, _: &[u8]) -> io::Result<usize> {
            Err(io::Error::from(self.0))
        }
        fn flush(&mut self) -> io::Result<()> {
            Ok(())
        }
    }

    #[test]
    fn a_closed_reader_drops_the_line() {
        assert!(write_to(&mut Failing(io::ErrorKind::BrokenPipe), format_args!("gone\n")).is_ok());
    }

    #[test]
    fn any_other_failure_is_an_error_naming_standard_output() {
        let error = write_to(&mut Failing(io::ErrorKind::StorageFull), format_args!("full\n")).expect_err("a full disk is an error");
        assert_eq!(error.0.kind(), io::ErrorKind::StorageFull);
        assert!(error.to_string().starts_with("writing to standard output: "), "{error}");
    }

    #[test]
    fn the_text_is_written_whole() {
        let mut out = Vec::new();
        write_to(&mut out, format_args!("{} {}\n", "r47", "ok")).expect("a Vec takes every byte");
        assert_eq!(out, b"r47 ok\n");
    }
}
