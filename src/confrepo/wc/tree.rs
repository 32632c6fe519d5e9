//! Replacing a working copy whole: a new tree (files and `.eccfg/` metadata) is written and
//! fsynced in a temporary directory beside the working copy, `.NAME.eccfg-tmp-…`, then
//! exchanged with it in one step by `renameat2(RENAME_EXCHANGE)` (Linux 3.15+, on the
//! filesystems that support it: ext4, xfs, btrfs, tmpfs, …), and the old tree, now under the
//! temporary name, is removed. The working copy path is a real directory at every instant and
//! holds either the old revision or the new one, whole, with the metadata that matches it; a
//! process killed at any point leaves at most a temporary directory, which the next pull
//! removes. The swap was chosen over a symlink flip so that the working copy stays a plain
//! directory (tools that do not follow symlinks, and `ls`, see what they expect).
//!
//! Also: the lock beside the working copy (`.NAME.eccfg-lock`, flock) that keeps two eccfg
//! (an operator's and the node's) from working on it at once, and in-place metadata updates.

use std::fs::{self, File};
use std::io::Write;
use std::path::{Path, PathBuf};

use nix::fcntl::{renameat2, Flock, FlockArg, RenameFlags, AT_FDCWD};

use super::{io_err, Files, Meta, WcError, META_DIR};
use crate::confrepo::stop_point::stop_point;

/// The parent directory and file name of a working copy. A working copy reached through a
/// symlink is swapped where it really is, so the symlink keeps pointing at it.
fn split(root: &Path) -> Result<(PathBuf, String), WcError> {
    let absolute = fs::canonicalize(root)
        .or_else(|_| std::path::absolute(root))
        .map_err(io_err(format!("resolving {}", root.display())))?;
    let name = absolute
        .file_name()
        .and_then(|n| n.to_str())
        .ok_or_else(|| WcError::Refused(format!("{} cannot be a working copy (no usable name)", root.display())))?
        .to_owned();
    let parent = absolute.parent().map(Path::to_path_buf).unwrap_or_else(|| PathBuf::from("/"));
    Ok((parent, name))
}

/// The held lock of a working copy.
pub(crate) struct Lock {
    _held: Flock<File>,
}

/// Takes the lock beside `root`, or says who holds it.
pub(crate) fn lock(root: &Path) -> Result<Lock, WcError> {
    let (parent, name) = split(root)?;
    let path = parent.join(format!(".{name}.eccfg-lock"));
    let file = fs::OpenOptions::new()
        .create(true)
        .truncate(false)
        .write(true)
        .open(&path)
        .map_err(io_err(format!("opening {}", path.display())))?;
    Flock::lock(file, FlockArg::LockExclusiveNonblock).map(|held| Lock { _held: held }).map_err(|(_, errno)| match errno {
        nix::errno::Errno::EWOULDBLOCK => WcError::Busy(root.to_path_buf()),
        other => WcError::Refused(format!("locking {}: {other}", path.display())),
    })
}

fn temp_prefix(name: &str) -> String {
    format!(".{name}.eccfg-tmp-")
}

/// Removes temporary directories left by pulls that were killed; returns how many.
pub(crate) fn clean_stray(root: &Path) -> Result<usize, WcError> {
    let (parent, name) = split(root)?;
    let prefix = temp_prefix(&name);
    let mut removed = 0;
    let entries = match fs::read_dir(&parent) {
        Ok(e) => e,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(0),
        Err(e) => return Err(io_err(format!("listing {}", parent.display()))(e)),
    };
    for entry in entries {
        let entry = entry.map_err(io_err(format!("listing {}", parent.display())))?;
        if entry.file_name().to_str().is_some_and(|n| n.starts_with(&prefix)) {
            let path = entry.path();
            fs::remove_dir_all(&path).map_err(io_err(format!("removing the stray {}", path.display())))?;
            tracing::info!(path = %path.display(), "removed a temporary directory left by an interrupted pull");
            removed += 1;
        }
    }
    Ok(removed)
}

fn write_synced(path: &Path, bytes: &[u8]) -> Result<(), WcError> {
    if let Some(dir) = path.parent() {
        fs::create_dir_all(dir).map_err(io_err(format!("creating {}", dir.display())))?;
    }
    let mut file = File::create(path).map_err(io_err(format!("writing {}", path.display())))?;
    file.write_all(bytes).map_err(io_err(format!("writing {}", path.display())))?;
    file.sync_all().map_err(io_err(format!("syncing {}", path.display())))
}

fn sync_dir(path: &Path) -> Result<(), WcError> {
    File::open(path).and_then(|d| d.sync_all()).map_err(io_err(format!("syncing {}", path.display())))
}

/// fsyncs every directory under `dir` (after their entries were written), deepest first.
fn sync_dirs(dir: &Path) -> Result<(), WcError> {
    for entry in fs::read_dir(dir).map_err(io_err(format!("listing {}", dir.display())))? {
        let entry = entry.map_err(io_err(format!("listing {}", dir.display())))?;
        if entry.file_type().map_err(io_err(format!("reading {}", entry.path().display())))?.is_dir() {
            sync_dirs(&entry.path())?;
        }
    }
    sync_dir(dir)
}

/// Serialises metadata.
fn meta_bytes(meta: &Meta) -> Result<Vec<u8>, WcError> {
    let mut bytes = serde_json::to_vec_pretty(meta).map_err(|e| WcError::Refused(format!("encoding metadata: {e}")))?;
    bytes.push(b'\n');
    Ok(bytes)
}

/// What a new tree holds.
pub(crate) struct TreeSpec<'a> {
    /// Managed files, by working-copy path.
    pub files: &'a Files,
    /// Directories created even when empty.
    pub skeleton: &'a [String],
    /// The metadata.
    pub meta: &'a Meta,
    /// The files at the new base revisions.
    pub pristine: &'a Files,
    /// The CA certificates to keep in `.eccfg/ca.pem`.
    pub ca_pem: Option<&'a [u8]>,
    /// Unmanaged entries to carry over from this directory.
    pub carry: Option<(&'a Path, &'a [PathBuf])>,
}

/// Writes `spec` into a new temporary directory beside `root`, fsynced; returns its path.
pub(crate) fn build(root: &Path, spec: &TreeSpec<'_>) -> Result<PathBuf, WcError> {
    let (parent, name) = split(root)?;
    let nanos = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map(|d| d.subsec_nanos()).unwrap_or(0);
    let tmp = parent.join(format!("{}{}-{nanos}", temp_prefix(&name), std::process::id()));
    fs::create_dir(&tmp).map_err(io_err(format!("creating {}", tmp.display())))?;
    if let Ok(meta) = fs::metadata(root) {
        fs::set_permissions(&tmp, meta.permissions()).map_err(io_err(format!("setting the mode of {}", tmp.display())))?;
    }
    for dir in spec.skeleton {
        fs::create_dir_all(tmp.join(dir)).map_err(io_err(format!("creating {}", tmp.join(dir).display())))?;
    }
    for (path, bytes) in spec.files {
        write_synced(&tmp.join(path), bytes)?;
    }
    if let Some((from, entries)) = spec.carry {
        for rel in entries {
            let (src, dst) = (from.join(rel), tmp.join(rel));
            if let Some(dir) = dst.parent() {
                fs::create_dir_all(dir).map_err(io_err(format!("creating {}", dir.display())))?;
            }
            let kind = fs::symlink_metadata(&src).map_err(io_err(format!("reading {}", src.display())))?;
            if kind.file_type().is_symlink() {
                let target = fs::read_link(&src).map_err(io_err(format!("reading {}", src.display())))?;
                std::os::unix::fs::symlink(target, &dst).map_err(io_err(format!("copying {}", src.display())))?;
            } else {
                fs::copy(&src, &dst).map_err(io_err(format!("copying {}", src.display())))?;
                File::open(&dst).and_then(|f| f.sync_all()).map_err(io_err(format!("syncing {}", dst.display())))?;
            }
        }
    }
    let meta_dir = tmp.join(META_DIR);
    for (path, bytes) in spec.pristine {
        write_synced(&meta_dir.join("pristine").join(path), bytes)?;
    }
    if let Some(pem) = spec.ca_pem {
        write_synced(&meta_dir.join("ca.pem"), pem)?;
    }
    write_synced(&meta_dir.join("wc.json"), &meta_bytes(spec.meta)?)?;
    sync_dirs(&tmp)?;
    Ok(tmp)
}

/// Puts the tree at `new` in place of `root` in one step: exchanges them when `root` exists
/// (the old tree is then at `new` and is removed), renames otherwise.
pub(crate) fn install(new: &Path, root: &Path) -> Result<(), WcError> {
    let (parent, name) = split(root)?;
    let target = parent.join(name);
    stop_point("eccfg-before-swap");
    if target.exists() && !is_empty_dir(&target) {
        renameat2(AT_FDCWD, new, AT_FDCWD, &target, RenameFlags::RENAME_EXCHANGE).map_err(|errno| {
            WcError::Refused(format!(
                "cannot swap the new revision into {} ({errno}); renameat2(RENAME_EXCHANGE) needs Linux 3.15+ and a \
                 filesystem that supports it; the working copy is unchanged",
                root.display()
            ))
        })?;
        sync_dir(&parent)?;
        stop_point("eccfg-after-swap");
        fs::remove_dir_all(new).map_err(io_err(format!("removing the old tree {}", new.display())))?;
    } else {
        fs::rename(new, &target).map_err(io_err(format!("moving the new tree to {}", target.display())))?;
        sync_dir(&parent)?;
    }
    Ok(())
}

fn is_empty_dir(path: &Path) -> bool {
    fs::read_dir(path).is_ok_and(|mut entries| entries.next().is_none())
}

/// Rewrites `.eccfg/wc.json` in place (temporary file, fsync, rename).
pub(crate) fn write_meta(root: &Path, meta: &Meta) -> Result<(), WcError> {
    let dir = root.join(META_DIR);
    let tmp = dir.join("wc.json.tmp");
    write_synced(&tmp, &meta_bytes(meta)?)?;
    fs::rename(&tmp, dir.join("wc.json")).map_err(io_err(format!("replacing {}", dir.join("wc.json").display())))?;
    sync_dir(&dir)
}

/// Sets (or deletes, with `None`) the pristine copy of `path`.
pub(crate) fn write_pristine(root: &Path, path: &str, bytes: Option<&[u8]>) -> Result<(), WcError> {
    let full = root.join(META_DIR).join("pristine").join(path);
    match bytes {
        Some(bytes) => {
            let tmp = root.join(META_DIR).join("pristine-write.tmp");
            write_synced(&tmp, bytes)?;
            if let Some(dir) = full.parent() {
                fs::create_dir_all(dir).map_err(io_err(format!("creating {}", dir.display())))?;
            }
            fs::rename(&tmp, &full).map_err(io_err(format!("replacing {}", full.display())))
        }
        None => match fs::remove_file(&full) {
            Err(e) if e.kind() != std::io::ErrorKind::NotFound => Err(io_err(format!("removing {}", full.display()))(e)),
            _ => Ok(()),
        },
    }
}
