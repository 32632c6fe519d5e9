//! The users file of `ecconfigd` (`STATE/users`) and of the console's logins (`Control_Listener
//! AuthLoginParameters`): one `NAME:HASH` line per user, where HASH is
//! an Argon2id hash in PHC string form (`$argon2id$v=19$m=…`). Passwords are never stored;
//! `ecconfigd user add` writes a hash, the server verifies against it. The file is written
//! owner-only through a temporary file and a rename, so it is never half-written.
//!
//! The server re-reads the file when it changes, so adding a user needs no restart.

use std::fs;
use std::io::Write;
use std::os::unix::fs::OpenOptionsExt;
use std::path::Path;

use argon2::password_hash::rand_core::OsRng;
use argon2::password_hash::{PasswordHash, PasswordHasher, PasswordVerifier, SaltString};
use argon2::Argon2;

use super::path::check_user_name;

/// Largest users file read (bytes).
pub const MAX_USERS_FILE_BYTES: u64 = 1 << 20;
/// Longest password accepted (bytes).
pub const MAX_PASSWORD_BYTES: usize = 1024;

/// Why a users file could not be read or written.
#[derive(Debug, thiserror::Error)]
pub enum UsersError {
    /// The file could not be read or written.
    #[error("{path}: {source}")]
    Io {
        /// The file.
        path: String,
        /// The OS error.
        source: std::io::Error,
    },
    /// A line is malformed.
    #[error("{path}:{line}: {message}")]
    Malformed {
        /// The file.
        path: String,
        /// 1-based line.
        line: usize,
        /// What is wrong.
        message: String,
    },
    /// A name or password breaks a rule.
    #[error("{0}")]
    Refused(String),
}

/// The outcome of checking a user's password.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Verdict {
    /// The password matches.
    Accepted,
    /// No such user.
    UnknownUser,
    /// The user exists, the password does not match.
    WrongPassword,
}

/// The users and their password hashes.
#[derive(Debug, Clone, Default)]
pub struct Users {
    entries: Vec<(String, String)>,
}

impl Users {
    /// Reads `path`; a missing file is an empty list.
    pub fn load(path: &Path) -> Result<Users, UsersError> {
        let shown = path.display().to_string();
        let bytes = match crate::config::read_regular_file(path, MAX_USERS_FILE_BYTES) {
            Ok(bytes) => bytes,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(Users::default()),
            Err(source) => return Err(UsersError::Io { path: shown, source }),
        };
        let text = String::from_utf8(bytes)
            .map_err(|_| UsersError::Malformed { path: shown.clone(), line: 1, message: "not utf-8 text".into() })?;
        Users::parse(&text, &shown)
    }

    /// Parses the text of a users file read from `origin` (named in errors).
    pub fn parse(text: &str, origin: &str) -> Result<Users, UsersError> {
        let mut entries = Vec::new();
        for (i, line) in text.lines().enumerate() {
            let line = line.trim();
            if line.is_empty() || line.starts_with('#') {
                continue;
            }
            let malformed = |message: String| UsersError::Malformed { path: origin.to_owned(), line: i + 1, message };
            let (name, hash) = line.split_once(':').ok_or_else(|| malformed("expected NAME:HASH".into()))?;
            check_user_name(name).map_err(|e| malformed(e.to_string()))?;
            PasswordHash::new(hash).map_err(|e| malformed(format!("the hash of '{name}' is not a PHC string: {e}")))?;
            entries.push((name.to_owned(), hash.to_owned()));
        }
        Ok(Users { entries })
    }

    /// The user names, in file order.
    pub fn names(&self) -> impl Iterator<Item = &str> {
        self.entries.iter().map(|(n, _)| n.as_str())
    }

    /// True if `name` is a user.
    pub fn contains(&self, name: &str) -> bool {
        self.entries.iter().any(|(n, _)| n == name)
    }

    /// `name`'s password hash (PHC string), if `name` is a user.
    pub fn hash_of(&self, name: &str) -> Option<&str> {
        self.entries.iter().find(|(n, _)| n == name).map(|(_, hash)| hash.as_str())
    }

    /// Checks `password` for `name` (slow by design: one Argon2id evaluation).
    pub fn verify(&self, name: &str, password: &str) -> Verdict {
        let Some((_, hash)) = self.entries.iter().find(|(n, _)| n == name) else { return Verdict::UnknownUser };
        let Ok(parsed) = PasswordHash::new(hash) else { return Verdict::WrongPassword };
        match Argon2::default().verify_password(password.as_bytes(), &parsed) {
            Ok(()) => Verdict::Accepted,
            Err(_) => Verdict::WrongPassword,
        }
    }

    /// Sets `name`'s password (adding the user if new).
    pub fn set(&mut self, name: &str, password: &str) -> Result<(), UsersError> {
        check_user_name(name).map_err(|e| UsersError::Refused(e.to_string()))?;
        check_password(password)?;
        let salt = SaltString::generate(&mut OsRng);
        let hash = Argon2::default()
            .hash_password(password.as_bytes(), &salt)
            .map_err(|e| UsersError::Refused(format!("hashing the password: {e}")))?
            .to_string();
        match self.entries.iter_mut().find(|(n, _)| n == name) {
            Some(entry) => entry.1 = hash,
            None => self.entries.push((name.to_owned(), hash)),
        }
        Ok(())
    }

    /// Removes `name`; false if it was not there.
    pub fn remove(&mut self, name: &str) -> bool {
        let before = self.entries.len();
        self.entries.retain(|(n, _)| n != name);
        before != self.entries.len()
    }

    /// Writes the file owner-only, atomically (temporary file, fsync, rename).
    pub fn save(&self, path: &Path) -> Result<(), UsersError> {
        let io = |source| UsersError::Io { path: path.display().to_string(), source };
        let mut text = String::from("# users: NAME:ARGON2ID-HASH (ecconfigd user add NAME, or eccluster console-user add)\n");
        for (name, hash) in &self.entries {
            text.push_str(&format!("{name}:{hash}\n"));
        }
        let tmp = path.with_extension("tmp");
        let mut file = fs::OpenOptions::new().write(true).create(true).truncate(true).mode(0o600).open(&tmp).map_err(io)?;
        file.write_all(text.as_bytes()).map_err(io)?;
        file.sync_all().map_err(io)?;
        fs::rename(&tmp, path).map_err(io)?;
        if let Some(dir) = path.parent() {
            fs::File::open(dir).and_then(|d| d.sync_all()).map_err(io)?;
        }
        Ok(())
    }
}

/// Checks a new password: not empty, at most [`MAX_PASSWORD_BYTES`], no line break.
pub fn check_password(password: &str) -> Result<(), UsersError> {
    if password.is_empty() {
        return Err(UsersError::Refused("the password is empty".into()));
    }
    if password.len() > MAX_PASSWORD_BYTES {
        return Err(UsersError::Refused(format!("the password is longer than {MAX_PASSWORD_BYTES} bytes")));
    }
    if password.contains(['\n', '\r']) {
        return Err(UsersError::Refused("the password holds a line break".into()));
    }
    Ok(())
}

/// A new password for `name`: the first line of `password_file`, or typed twice on the
/// terminal (never taken from the command line).
pub fn new_password(name: &str, password_file: Option<&Path>) -> anyhow::Result<String> {
    use anyhow::Context as _;
    if let Some(file) = password_file {
        return Ok(read_password_file(file)?);
    }
    if !std::io::IsTerminal::is_terminal(&std::io::stdin()) {
        anyhow::bail!("no terminal to prompt for the password: give --password-file FILE");
    }
    let first = rpassword::prompt_password(format!("New password for {name}: ")).context("reading the password")?;
    let again = rpassword::prompt_password("Again: ").context("reading the password")?;
    if first != again {
        anyhow::bail!("the two passwords differ; nothing changed");
    }
    check_password(&first)?;
    Ok(first)
}

/// A password read from a file: its first line, without the line break.
pub fn read_password_file(path: &Path) -> Result<String, UsersError> {
    let io = |source| UsersError::Io { path: path.display().to_string(), source };
    let bytes = crate::config::read_regular_file(path, MAX_PASSWORD_BYTES as u64 + 2).map_err(io)?;
    let text = String::from_utf8(bytes)
        .map_err(|_| UsersError::Refused(format!("{}: the password file is not utf-8 text", path.display())))?;
    let password = text.lines().next().unwrap_or_default().to_owned();
    check_password(&password).map_err(|e| UsersError::Refused(format!("{}: {e}", path.display())))?;
    Ok(password)
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn hashes_are_stored_never_passwords_and_verify_tells_unknown_from_wrong() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("users");
        let mut users = Users::load(&path).unwrap();
        users.set("admin", "s3cret").unwrap();
        users.save(&path).unwrap();
        let text = fs::read_to_string(&path).unwrap();
        assert!(text.contains("admin:$argon2id$"), "{text}");
        assert!(!text.contains("s3cret"));
        let users = Users::load(&path).unwrap();
        assert_eq!(users.verify("admin", "s3cret"), Verdict::Accepted);
        assert_eq!(users.verify("admin", "wrong"), Verdict::WrongPassword);
        assert_eq!(users.verify("bob", "s3cret"), Verdict::UnknownUser);
    }

    #[test]
    fn a_malformed_line_is_named() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("users");
        fs::write(&path, "# c\nadmin:plaintext\n").unwrap();
        let error = Users::load(&path).unwrap_err().to_string();
        assert!(error.contains("users:2:"), "{error}");
    }
}
