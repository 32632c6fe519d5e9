//! Includes: what is read, in which order, and every limit that refuses one.

use crate::config::{load, parse_str, Scope, Value};
use std::fs;
use std::path::{Path, PathBuf};

fn write(dir: &Path, name: &str, text: &str) -> PathBuf {
    let path = dir.join(name);
    if let Some(parent) = path.parent() {
        fs::create_dir_all(parent).unwrap();
    }
    fs::write(&path, text).unwrap();
    path
}

fn names(scope: &Scope) -> Vec<&str> {
    scope
        .options
        .iter()
        .map(|option| option.name.as_str())
        .collect()
}

#[test]
fn include_of_a_file_is_spliced_in_place() {
    let dir = tempfile::tempdir().unwrap();
    write(dir.path(), "other.conf", "b = 2\nInner { c = 3 }\n");
    let main = write(
        dir.path(),
        "main.conf",
        "a = 1\ninclude \"other.conf\"\nd = 4\n",
    );
    let root = load(&main).unwrap();
    assert_eq!(names(&root), ["a", "b", "d"]);
    let b = root.option("b").unwrap();
    assert_eq!(*b.span.file, dir.path().join("other.conf"));
    assert_eq!((b.span.line, b.span.column), (1, 1));
    assert!(!b.readonly);
    assert_eq!(*root.option("a").unwrap().span.file, main);
    assert_eq!(
        root.scope("inner", None)
            .unwrap()
            .option("c")
            .unwrap()
            .value,
        Value::Scalar("3".into())
    );
}

#[test]
fn include_inside_a_scope_splices_into_that_scope() {
    let dir = tempfile::tempdir().unwrap();
    write(dir.path(), "listen.conf", "Listen \":25\" { }\nPort = 25\n");
    let main = write(
        dir.path(),
        "main.conf",
        "ESMTP_Listener {\n  INCLUDE listen.conf\n}\n",
    );
    let root = load(&main).unwrap();
    let listener = root.scope("esmtp_listener", None).unwrap();
    assert!(listener.scope("listen", Some(":25")).is_some());
    assert!(listener.option("port").is_some());
    assert!(root.options.is_empty());
}

#[test]
fn include_of_a_directory_reads_files_in_lexical_order_skipping_dot_files() {
    let dir = tempfile::tempdir().unwrap();
    write(dir.path(), "conf.d/20-b.conf", "b = 1\n");
    write(dir.path(), "conf.d/10-a.conf", "a = 1\n");
    write(dir.path(), "conf.d/Z.conf", "z = 1\n");
    write(dir.path(), "conf.d/.hidden.conf", "hidden = 1\n");
    write(dir.path(), "conf.d/sub/30-c.conf", "c = 1\n");
    let main = write(
        dir.path(),
        "main.conf",
        "first = 1\ninclude conf.d\nlast = 1\n",
    );
    let root = load(&main).unwrap();
    assert_eq!(names(&root), ["first", "a", "b", "z", "last"]);
}

#[test]
fn readonly_include_marks_items_readonly_including_nested_includes() {
    let dir = tempfile::tempdir().unwrap();
    write(dir.path(), "nested.conf", "n = 1\n");
    write(dir.path(), "ro.conf", "r = 1\nS { include nested.conf }\n");
    let main = write(
        dir.path(),
        "main.conf",
        "a = 1\nReadOnly_Include \"ro.conf\"\n",
    );
    let root = load(&main).unwrap();
    assert!(!root.option("a").unwrap().readonly);
    assert!(root.option("r").unwrap().readonly);
    assert!(root.scope("s", None).unwrap().option("n").unwrap().readonly);
}

#[test]
fn a_file_included_twice_is_readonly_everywhere() {
    let dir = tempfile::tempdir().unwrap();
    write(dir.path(), "common.conf", "c = 1\n");
    let main = write(
        dir.path(),
        "main.conf",
        "A { include common.conf }\nB { include ./common.conf }\nm = 1\n",
    );
    let root = load(&main).unwrap();
    assert!(root.scope("a", None).unwrap().option("c").unwrap().readonly);
    assert!(root.scope("b", None).unwrap().option("c").unwrap().readonly);
    assert!(!root.option("m").unwrap().readonly);
}

#[test]
fn relative_include_resolves_against_the_including_files_directory() {
    let dir = tempfile::tempdir().unwrap();
    write(dir.path(), "a/b/leaf.conf", "leaf = 1\n");
    write(dir.path(), "a/mid.conf", "mid = 1\ninclude b/leaf.conf\n");
    write(dir.path(), "a/b/decoy.conf", "decoy = 1\n");
    let main = write(dir.path(), "main.conf", "include a/mid.conf\n");
    let root = load(&main).unwrap();
    assert_eq!(names(&root), ["mid", "leaf"]);
    assert_eq!(
        *root.option("leaf").unwrap().span.file,
        dir.path().join("a/b/leaf.conf")
    );
}

#[test]
fn parse_str_resolves_includes_against_the_origin_directory() {
    let dir = tempfile::tempdir().unwrap();
    write(dir.path(), "other.conf", "o = 1\n");
    let root = parse_str("include other.conf\n", &dir.path().join("not-on-disk.conf")).unwrap();
    assert_eq!(names(&root), ["o"]);
}

#[test]
fn absolute_and_file_uri_includes() {
    let dir = tempfile::tempdir().unwrap();
    let other = write(dir.path(), "other.conf", "o = 1\n");
    let text = format!(
        "include \"{}\"\ninclude \"file://{}\"\n",
        other.display(),
        other.display()
    );
    let root = parse_str(&text, Path::new("elsewhere/x.conf")).unwrap();
    assert_eq!(names(&root), ["o", "o"]);
}

#[test]
fn other_uri_schemes_are_refused() {
    let error = parse_str(
        "x {\n  include \"eccmgr://global/a.conf\"\n}",
        Path::new("m.conf"),
    )
    .unwrap_err();
    assert_eq!(
        error.to_string(),
        "m.conf:2:3: expected a file path or file:// uri to include but found 'eccmgr://' \
         (only local files can be included)"
    );
}

#[test]
fn missing_include_names_the_including_position_and_the_missing_path() {
    let dir = tempfile::tempdir().unwrap();
    let main = write(
        dir.path(),
        "main.conf",
        "a = 1\n  include \"missing.conf\"\n",
    );
    let error = load(&main).unwrap_err();
    assert_eq!(
        error.to_string(),
        format!(
            "{}:2:3: cannot include '{}': No such file or directory (os error 2)",
            main.display(),
            dir.path().join("missing.conf").display()
        )
    );
}

#[test]
fn include_cycle_names_the_chain() {
    let dir = tempfile::tempdir().unwrap();
    let a = write(dir.path(), "a.conf", "include b.conf\n");
    let b = write(dir.path(), "b.conf", "x = 1\ninclude a.conf\n");
    let error = load(&a).unwrap_err();
    assert_eq!(
        error.to_string(),
        format!(
            "{}:2:1: include cycle: {} -> {} -> {}",
            b.display(),
            a.display(),
            b.display(),
            dir.path().join("a.conf").display()
        )
    );
}

#[test]
fn a_file_including_itself_is_a_cycle() {
    let dir = tempfile::tempdir().unwrap();
    let a = write(dir.path(), "a.conf", "include .\n");
    let error = load(&a).unwrap_err().to_string();
    assert!(
        error.starts_with(&format!(
            "{}:1:1: include cycle: {} -> ",
            a.display(),
            a.display()
        )),
        "{error}"
    );
}

#[test]
fn syntax_errors_in_included_files_name_the_included_file() {
    let dir = tempfile::tempdir().unwrap();
    let bad = write(dir.path(), "bad.conf", "ok = 1\nbroken =\n");
    let main = write(dir.path(), "main.conf", "S {\n  include bad.conf\n}\n");
    let error = load(&main).unwrap_err();
    assert_eq!(
        error.to_string(),
        format!(
            "{}:3:1: expected a value after '=' but found end of file",
            bad.display()
        )
    );
}

#[test]
fn included_files_must_balance_their_own_braces() {
    let dir = tempfile::tempdir().unwrap();
    let open = write(dir.path(), "open.conf", "S {\n");
    let main = write(dir.path(), "main.conf", "include open.conf\n}\n");
    let error = load(&main).unwrap_err();
    assert_eq!(
        error.to_string(),
        format!("{}:2:1: expected '}}' to close scope 'S' opened at line 1, column 3 but found end of file", open.display())
    );
}

#[test]
fn leading_byte_order_mark_is_ignored() {
    let dir = tempfile::tempdir().unwrap();
    let main = write(dir.path(), "main.conf", "\u{feff}a = 1\n");
    let option = load(&main).unwrap().options.pop().unwrap();
    assert_eq!((option.name.as_str(), option.span.column), ("a", 1));
}

/// Runs `load` on another thread and fails the test, instead of hanging it, if the load
/// does not return within a generous bound (a FIFO used to block the open forever).
fn load_or_hang(path: &Path) -> Result<Scope, crate::config::ConfigError> {
    let (tx, rx) = std::sync::mpsc::channel();
    let path = path.to_path_buf();
    std::thread::spawn(move || {
        let _ = tx.send(load(&path));
    });
    rx.recv_timeout(std::time::Duration::from_secs(30))
        .expect("loading the configuration hung")
}

fn mkfifo(path: &Path) {
    let status = std::process::Command::new("mkfifo").arg(path).status().unwrap();
    assert!(status.success(), "mkfifo {}", path.display());
}

#[test]
fn overly_deep_include_chains_are_refused_with_the_chain() {
    let dir = tempfile::tempdir().unwrap();
    for index in 0..80 {
        write(
            dir.path(),
            &format!("f{index}.conf"),
            &format!("include f{}.conf\n", index + 1),
        );
    }
    write(dir.path(), "f80.conf", "end = 1\n");
    let error = load(&dir.path().join("f0.conf")).unwrap_err().to_string();
    let shown = |index: usize| dir.path().join(format!("f{index}.conf")).display().to_string();
    assert!(
        error.starts_with(&format!(
            "{}:1:1: cannot include '{}': includes nest more than 16 deep (include chain: {} -> {} -> ",
            shown(16),
            shown(17),
            shown(0),
            shown(1)
        )),
        "{error}"
    );
    assert!(error.ends_with(&format!("{} -> {})", shown(16), shown(17))), "{error}");
    // Sixteen levels are fine.
    write(dir.path(), "f16.conf", "end = 1\n");
    assert_eq!(names(&load(&dir.path().join("f0.conf")).unwrap()), ["end"]);
}

#[test]
fn include_of_a_fifo_is_refused_without_blocking() {
    let dir = tempfile::tempdir().unwrap();
    mkfifo(&dir.path().join("pipe.conf"));
    let main = write(dir.path(), "main.conf", "a = 1\ninclude pipe.conf\n");
    let error = load_or_hang(&main).unwrap_err().to_string();
    assert_eq!(
        error,
        format!(
            "{}:2:1: cannot include '{}': a FIFO, not a regular file",
            main.display(),
            dir.path().join("pipe.conf").display()
        )
    );
    // A FIFO given as the configuration itself is refused the same way.
    let error = load_or_hang(&dir.path().join("pipe.conf")).unwrap_err().to_string();
    assert_eq!(
        error,
        format!("{}: a FIFO, not a regular file", dir.path().join("pipe.conf").display())
    );
}

#[test]
fn include_of_a_device_is_refused_unread() {
    let dir = tempfile::tempdir().unwrap();
    let main = write(dir.path(), "main.conf", "include /dev/zero\n");
    let error = load_or_hang(&main).unwrap_err().to_string();
    assert_eq!(
        error,
        format!(
            "{}:1:1: cannot include '/dev/zero': a character device, not a regular file",
            main.display()
        )
    );
    let error = load_or_hang(Path::new("/dev/zero")).unwrap_err().to_string();
    assert_eq!(error, "/dev/zero: a character device, not a regular file");
}

#[test]
fn a_directory_is_no_configuration_file_and_its_fifos_are_refused() {
    let dir = tempfile::tempdir().unwrap();
    let error = load_or_hang(dir.path()).unwrap_err().to_string();
    assert_eq!(
        error,
        format!("{}: a directory, not a regular file", dir.path().display())
    );
    write(dir.path(), "conf.d/10-a.conf", "a = 1\n");
    mkfifo(&dir.path().join("conf.d/20-pipe.conf"));
    let main = write(dir.path(), "main.conf", "include conf.d\n");
    let error = load_or_hang(&main).unwrap_err().to_string();
    assert_eq!(
        error,
        format!(
            "{}:1:1: cannot include '{}': a FIFO, not a regular file",
            main.display(),
            dir.path().join("conf.d/20-pipe.conf").display()
        )
    );
}

#[test]
fn an_include_fan_out_is_refused_with_the_chain() {
    // Each level includes the next ten times: 10^6 reads if nothing stops it.
    let dir = tempfile::tempdir().unwrap();
    for level in 0..6 {
        write(
            dir.path(),
            &format!("l{level}.conf"),
            &format!("include l{}.conf\n", level + 1).repeat(10),
        );
    }
    write(dir.path(), "l6.conf", "leaf = 1\n");
    let error = load_or_hang(&dir.path().join("l0.conf")).unwrap_err().to_string();
    assert!(
        error.contains(
            "the configuration would read more than 1024 files in all (an include fan-out?) \
             (include chain: "
        ),
        "{error}"
    );
    let chain = error.split("(include chain: ").nth(1).unwrap();
    assert!(
        chain.starts_with(&format!("{} -> {} -> ", dir.path().join("l0.conf").display(), dir.path().join("l1.conf").display())),
        "{error}"
    );
    // The same tree two levels deep (111 reads) is accepted.
    write(dir.path(), "l2.conf", "leaf = 1\n");
    assert_eq!(load(&dir.path().join("l0.conf")).unwrap().options.len(), 100);
}

#[test]
fn oversized_files_and_oversized_totals_are_refused() {
    let dir = tempfile::tempdir().unwrap();
    let line = format!("x = \"{}\"\n", "y".repeat(1000));
    let big = line.repeat(4200);
    write(dir.path(), "big.conf", &big);
    let main = write(dir.path(), "main.conf", "include big.conf\n");
    let error = load(&main).unwrap_err().to_string();
    assert_eq!(
        error,
        format!(
            "{}:1:1: cannot include '{}': larger than 4 MiB (the most one configuration file may hold)",
            main.display(),
            dir.path().join("big.conf").display()
        )
    );
    // Five files of 3.6 MiB each pass one by one but not together.
    write(dir.path(), "big.conf", &line.repeat(3600));
    let main = write(dir.path(), "main.conf", &"include big.conf\n".repeat(5));
    let error = load(&main).unwrap_err().to_string();
    assert!(
        error.starts_with(&format!(
            "{}:5:1: cannot include '{}': the configuration would read more than 16 MiB in all",
            main.display(),
            dir.path().join("big.conf").display()
        )),
        "{error}"
    );
}

#[test]
fn parse_detached_checks_includes_without_reading_them() {
    let tree = crate::config::parse_detached(
        b"include \"/etc/shadow\"\nreadonly_include conf.d/\nLog_Level = 4\n",
        Path::new("default/ecelerity.conf"),
    )
    .unwrap();
    assert_eq!(names(&tree), ["Log_Level"]);
    let error = crate::config::parse_detached(b"Log_Level = 4\ninclude\n", Path::new("default/x.conf"))
        .unwrap_err()
        .to_string();
    assert!(error.starts_with("default/x.conf:3:1: "), "{error}");
    let error = crate::config::parse_detached(b"a = 1\nb = \xff\n", Path::new("global/y.conf"))
        .unwrap_err()
        .to_string();
    assert_eq!(error, "global/y.conf:2:5: expected utf-8 text but found an invalid byte sequence");
}
