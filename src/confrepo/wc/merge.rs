//! The three-way merge of a pull: for every managed path, the base revision's file (the
//! pristine copy), the working copy's (mine) and the new revision's (theirs) give the result.
//! A side that did not change loses to the one that did; when both changed a text file, the
//! changes are merged line by line (diffy); when their lines overlap, or one side deleted what
//! the other changed, or a file is not text, the path conflicts. A conflict is resolved per
//! file by `--mine` (keep the working copy's file) or `--theirs` (take the server's), or the pull
//! is refused and nothing changes.
//!
//! No I/O here.

use std::collections::BTreeSet;

use super::Files;

/// How a pull treats conflicting files.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Resolve {
    /// Refuse the pull; nothing changes.
    #[default]
    Refuse,
    /// Keep the working copy's version of each conflicting file.
    Mine,
    /// Take the server's version of each conflicting file.
    Theirs,
}

/// The result of merging a whole working copy.
#[derive(Debug, Default)]
pub struct Merged {
    /// The resulting files.
    pub files: Files,
    /// Paths where local and server changes were merged line by line.
    pub merged: Vec<String>,
    /// Paths that conflicted (resolved by `--mine`/`--theirs` if the result is used).
    pub conflicts: Vec<String>,
}

enum One {
    Take(Option<Vec<u8>>),
    Conflict,
}

fn merge_one(base: Option<&Vec<u8>>, mine: Option<&Vec<u8>>, theirs: Option<&Vec<u8>>) -> (One, bool) {
    if mine == base || mine == theirs {
        return (One::Take(theirs.cloned()), false);
    }
    if theirs == base {
        return (One::Take(mine.cloned()), false);
    }
    // Both sides changed, differently.
    let (Some(mine), Some(theirs)) = (mine, theirs) else { return (One::Conflict, false) };
    let empty = Vec::new();
    let base = base.unwrap_or(&empty);
    let texts = (std::str::from_utf8(base), std::str::from_utf8(mine), std::str::from_utf8(theirs));
    let (Ok(base), Ok(mine), Ok(theirs)) = texts else { return (One::Conflict, false) };
    match diffy::merge(base, mine, theirs) {
        Ok(text) => (One::Take(Some(text.into_bytes())), true),
        Err(_) => (One::Conflict, false),
    }
}

/// Merges every path of `base`, `mine` and `theirs`.
pub fn merge(base: &Files, mine: &Files, theirs: &Files, resolve: Resolve) -> Merged {
    let paths: BTreeSet<&String> = base.keys().chain(mine.keys()).chain(theirs.keys()).collect();
    let mut out = Merged::default();
    for path in paths {
        let (outcome, merged) = merge_one(base.get(path), mine.get(path), theirs.get(path));
        let result = match outcome {
            One::Take(result) => result,
            One::Conflict => {
                out.conflicts.push(path.clone());
                match resolve {
                    Resolve::Mine | Resolve::Refuse => mine.get(path).cloned(),
                    Resolve::Theirs => theirs.get(path).cloned(),
                }
            }
        };
        if merged {
            out.merged.push(path.clone());
        }
        if let Some(bytes) = result {
            out.files.insert(path.clone(), bytes);
        }
    }
    out
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    fn files(items: &[(&str, &str)]) -> Files {
        items.iter().map(|(p, t)| (p.to_string(), t.as_bytes().to_vec())).collect()
    }

    #[test]
    fn one_sided_changes_win_and_separate_lines_merge() {
        let base = files(&[("a", "1\n2\n3\n4\n5\n"), ("b", "x\n"), ("gone", "g\n")]);
        let mine = files(&[("a", "one\n2\n3\n4\n5\n"), ("b", "x\n"), ("new", "n\n"), ("gone", "g\n")]);
        let theirs = files(&[("a", "1\n2\n3\n4\nfive\n"), ("b", "y\n")]);
        let out = merge(&base, &mine, &theirs, Resolve::Refuse);
        assert!(out.conflicts.is_empty());
        assert_eq!(out.merged, ["a"]);
        assert_eq!(out.files, files(&[("a", "one\n2\n3\n4\nfive\n"), ("b", "y\n"), ("new", "n\n")]));
    }

    #[test]
    fn overlapping_changes_and_delete_versus_edit_conflict() {
        let base = files(&[("a", "1\n"), ("d", "d\n")]);
        let mine = files(&[("a", "mine\n")]);
        let theirs = files(&[("a", "theirs\n"), ("d", "changed\n")]);
        let out = merge(&base, &mine, &theirs, Resolve::Refuse);
        assert_eq!(out.conflicts, ["a", "d"]);
        let out = merge(&base, &mine, &theirs, Resolve::Theirs);
        assert_eq!(out.files, theirs);
        let out = merge(&base, &mine, &theirs, Resolve::Mine);
        assert_eq!(out.files, mine);
    }

    #[test]
    fn the_same_change_on_both_sides_is_no_conflict() {
        let base = files(&[("a", "1\n")]);
        let both = files(&[("a", "2\n"), ("n", "x\n")]);
        let out = merge(&base, &both, &both, Resolve::Refuse);
        assert!(out.conflicts.is_empty());
        assert_eq!(out.files, both);
    }
}
