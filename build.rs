//! Link options of the daemons and tools.
//!
//! Relative relocations are packed (`-z pack-relative-relocs`, DT_RELR): a position-independent
//! executable of this size otherwise carries about 0.9 MB of `.rela.dyn`, which the dynamic
//! loader reads in full at every start, and which then stays resident in every process. Packed,
//! the same relocations take a few kilobytes. glibc applies them from 2.36 on and refuses to
//! start an executable that needs them on an older one (with a message naming the missing
//! `GLIBC_ABI_DT_RELR` version), so this is done only where the linker can produce them and
//! the building system's glibc can run them.

use std::process::Command;

fn main() {
    println!("cargo:rerun-if-changed=build.rs");
    let linux_gnu = std::env::var("CARGO_CFG_TARGET_OS").is_ok_and(|os| os == "linux")
        && std::env::var("CARGO_CFG_TARGET_ENV").is_ok_and(|env| env == "gnu");
    if linux_gnu && glibc_runs_relr() {
        println!("cargo:rustc-link-arg-bins=-Wl,-z,pack-relative-relocs");
    }
}

/// Whether the building system's glibc is 2.36 or newer (`ldd --version`'s first line ends
/// in the version).
fn glibc_runs_relr() -> bool {
    let Ok(out) = Command::new("ldd").arg("--version").output() else { return false };
    let text = String::from_utf8_lossy(&out.stdout);
    let Some(version) = text.lines().next().and_then(|l| l.split_whitespace().last()) else { return false };
    let mut parts = version.split('.').map(|p| p.parse::<u32>().ok());
    matches!((parts.next(), parts.next()), (Some(Some(major)), Some(Some(minor))) if (major, minor) >= (2, 36))
}
