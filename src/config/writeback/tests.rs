use super::*;
use crate::config::edit::{self, split_path};
use crate::config::{load, Span};

fn words(text: &str) -> Vec<String> {
    text.split_whitespace().map(str::to_owned).collect()
}

fn console() -> Span {
    Span::new(Arc::new(PathBuf::from("<console>")), 1, 1)
}

/// A configuration in a temporary directory: `main.conf` including `part.conf` and,
/// read-only, `ro.conf`.
fn files() -> (tempfile::TempDir, PathBuf) {
    let dir = tempfile::tempdir().expect("tempdir");
    let main = dir.path().join("main.conf");
    fs::write(
        &main,
        "# the main file\nBroadcast_Timeout = 30   # seconds\ncluster {\n  duravip_policy = available\n}\ninclude \"part.conf\"\nreadonly_include \"ro.conf\"\n",
    )
    .expect("write");
    fs::write(dir.path().join("part.conf"), "Binding \"b1\" {\n  Bind_Address = 10.0.0.1\n  Enable_Duravip = true\n}\n").expect("write");
    fs::write(dir.path().join("ro.conf"), "Logs { Control_Cache = \"cache\" }\n").expect("write");
    (dir, main)
}

fn set(tree: &mut Scope, changed: &mut BTreeSet<Changed>, path: &str, name: &str, value: Value) {
    let path = split_path(tree, &words(path));
    edit::set(tree, &path, name, value, &console());
    changed.insert(Changed::option(&path, name));
}

#[test]
fn values_are_replaced_where_they_are_set_and_the_rest_of_the_file_stays() {
    let (dir, main) = files();
    let mut running = load(&main).expect("load");
    let mut changed = BTreeSet::new();
    set(&mut running, &mut changed, "", "broadcast_timeout", Value::Scalar("45".into()));
    set(&mut running, &mut changed, "Binding b1", "Bind_Address", Value::Scalar("10.0.0.9".into()));
    set(&mut running, &mut changed, "cluster", "view_mature_time", Value::Scalar("3".into()));
    set(&mut running, &mut changed, "Binding b2", "Bind_Address", Value::Scalar("10.0.0.2".into()));
    set(&mut running, &mut changed, "Binding b2", "Enable_Duravip", Value::Scalar("true".into()));
    set(&mut running, &mut changed, "", "Relay_Hosts", Value::List(vec!["a".into(), "b".into()]));
    let written = write_back(&main, &running, &changed).expect("written");
    assert_eq!(written.files, vec![main.clone(), dir.path().join("part.conf")]);
    assert_eq!(
        fs::read_to_string(&main).expect("read"),
        "# the main file\nBroadcast_Timeout = 45   # seconds\ncluster {\n  duravip_policy = available\n  view_mature_time = 3\n}\n\
         include \"part.conf\"\nreadonly_include \"ro.conf\"\nRelay_Hosts = (\n  a\n  b\n)\n\
         Binding \"b2\" {\n  Bind_Address = 10.0.0.2\n  Enable_Duravip = true\n}\n"
    );
    assert_eq!(
        fs::read_to_string(dir.path().join("part.conf")).expect("read"),
        "Binding \"b1\" {\n  Bind_Address = 10.0.0.9\n  Enable_Duravip = true\n}\n"
    );
    assert!(load(&main).expect("reload").same_content(&running));
    // Nothing left to write.
    assert_eq!(write_back(&main, &running, &changed).expect("again").files, Vec::<PathBuf>::new());
    let leftovers: Vec<_> = fs::read_dir(dir.path()).expect("dir").filter_map(|e| e.ok()).filter(|e| e.file_name().to_string_lossy().starts_with('.')).collect();
    assert!(leftovers.is_empty(), "temporary files left: {leftovers:?}");
}

#[test]
fn unset_options_and_scopes_are_removed_from_their_files() {
    let (dir, main) = files();
    let mut running = load(&main).expect("load");
    let mut changed = BTreeSet::new();
    edit::unset_option(&mut running, &[], "broadcast_timeout");
    changed.insert(Changed::option(&[], "broadcast_timeout"));
    let binding = split_path(&running, &words("Binding b1"));
    edit::unset_scope(&mut running, &binding);
    changed.insert(Changed::scope(&binding));
    write_back(&main, &running, &changed).expect("written");
    assert_eq!(
        fs::read_to_string(&main).expect("read"),
        "# the main file\ncluster {\n  duravip_policy = available\n}\ninclude \"part.conf\"\nreadonly_include \"ro.conf\"\n"
    );
    assert_eq!(fs::read_to_string(dir.path().join("part.conf")).expect("read"), "");
    assert!(load(&main).expect("reload").same_content(&running));
}

#[test]
fn a_value_that_only_a_read_only_file_could_hold_is_refused_and_nothing_is_written() {
    let (dir, main) = files();
    let before = fs::read_to_string(&main).expect("read");
    let mut running = load(&main).expect("load");
    let mut changed = BTreeSet::new();
    set(&mut running, &mut changed, "", "broadcast_timeout", Value::Scalar("45".into()));
    set(&mut running, &mut changed, "Logs", "Control_Cache", Value::Scalar("other".into()));
    let error = write_back(&main, &running, &changed).expect_err("read-only");
    assert!(error.contains("Control_Cache") && error.contains("ro.conf") && error.contains("read-only"), "{error}");
    assert_eq!(fs::read_to_string(&main).expect("read"), before);
    assert_eq!(fs::read_to_string(dir.path().join("ro.conf")).expect("read"), "Logs { Control_Cache = \"cache\" }\n");
}

#[test]
fn a_one_line_scope_gets_the_new_option_inside_its_braces() {
    let dir = tempfile::tempdir().expect("tempdir");
    let main = dir.path().join("main.conf");
    fs::write(&main, "cluster { duravip_policy = available }").expect("write");
    let mut running = load(&main).expect("load");
    let mut changed = BTreeSet::new();
    set(&mut running, &mut changed, "cluster", "view_mature_time", Value::Scalar("3".into()));
    write_back(&main, &running, &changed).expect("written");
    assert_eq!(fs::read_to_string(&main).expect("read"), "cluster { duravip_policy = available view_mature_time = 3 }");
}

#[test]
fn writing_a_whole_configuration_elsewhere_renders_it() {
    let (dir, main) = files();
    let running = load(&main).expect("load");
    let other = dir.path().join("copy.conf");
    write_whole(&other, &running).expect("written");
    assert!(load(&other).expect("read back").same_content(&running));
}

/// A fixed-seed xorshift64 generator, so failures reproduce.
struct XorShift(u64);

impl XorShift {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0
    }

    fn pick<'a>(&mut self, from: &[&'a str]) -> &'a str {
        from[(self.next() % from.len() as u64) as usize]
    }
}

#[test]
fn random_changes_written_back_read_back_as_they_run() {
    const PATHS: &[&str] = &["", "cluster", "Binding b1", "Binding b3", "ESMTP_Listener Listen :25", "Logs"];
    const NAMES: &[&str] = &["a", "Bind_Address", "view_mature_time", "x_y", "Control_Cache"];
    const VALUES: &[&str] = &["1", "two words", "/tmp/2025", "\"q\"", "#hash", ""];
    let mut rng = XorShift(0xC0FFEE);
    let mut written = 0;
    for round in 0..60 {
        let (_dir, main) = files();
        let mut running = load(&main).expect("load");
        let mut changed = BTreeSet::new();
        for _ in 0..1 + rng.next() % 6 {
            let path = split_path(&running, &words(rng.pick(PATHS)));
            let name = rng.pick(NAMES);
            match rng.next() % 4 {
                0 => {
                    edit::unset_option(&mut running, &path, name);
                    changed.insert(Changed::option(&path, name));
                }
                1 if !path.is_empty() => {
                    edit::unset_scope(&mut running, &path);
                    changed.insert(Changed::scope(&path));
                }
                2 => {
                    let list = Value::List(vec![rng.pick(VALUES).to_owned(), rng.pick(VALUES).to_owned()]);
                    edit::set(&mut running, &path, name, list, &console());
                    changed.insert(Changed::option(&path, name));
                }
                _ => {
                    edit::set(&mut running, &path, name, Value::Scalar(rng.pick(VALUES).to_owned()), &console());
                    changed.insert(Changed::option(&path, name));
                }
            }
        }
        match write_back(&main, &running, &changed) {
            Ok(_) => {
                written += 1;
                let back = load(&main).expect("the written files read back");
                for change in &changed {
                    verify(&back, &running, change).unwrap_or_else(|e| panic!("round {round}: {e}"));
                }
            }
            Err(e) => assert!(e.contains("read-only") || e.contains("would still win"), "round {round}: {e}"),
        }
    }
    assert!(written > 30, "only {written} of 60 rounds were written");
}
