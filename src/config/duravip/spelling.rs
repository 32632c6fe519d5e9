//! Near misses: which known option or scope name a misspelt one was probably meant to be, for
//! the "did you mean" part of DuraVIP errors and warnings.
//!
//! Pure string comparison; no configuration knowledge and no I/O here.

/// How close a name must be to be suggested in an error (the name is refused anyway, so a
/// loose suggestion costs little).
pub(super) const FOR_ERRORS: f64 = 0.75;

/// How close a name must be to draw a warning in a scope the MTA owns, where most names are
/// options eccluster does not know and must not complain about.
pub(super) const FOR_WARNINGS: f64 = 0.8;

/// The known name closest to `word` (ignoring ASCII case), if its similarity is at least
/// `min`; on a tie the one listed first. An exact match (ignoring case) is not a near miss and
/// yields `None`.
pub(super) fn closest<'k>(word: &str, known: &[&'k str], min: f64) -> Option<&'k str> {
    let word = word.to_ascii_lowercase();
    let mut best: Option<(&'k str, f64)> = None;
    for &candidate in known {
        let lower = candidate.to_ascii_lowercase();
        if lower == word {
            return None;
        }
        let score = similarity(&word, &lower);
        let better = match best {
            Some((_, top)) => score > top,
            None => true,
        };
        if score >= min && better {
            best = Some((candidate, score));
        }
    }
    best.map(|(name, _)| name)
}

/// Similarity of two lowercase names in `0.0..=1.0`: the normalised Damerau-Levenshtein
/// similarity, raised to 1 when the names differ only in separators or in the order of their
/// `_`-separated words (`EnableDuravip`, `Duravip_Enable`), and to 0.8 when one is a
/// truncation of the other that keeps most of it (`view_mature` for `view_mature_time`).
fn similarity(a: &str, b: &str) -> f64 {
    if squashed(a) == squashed(b) || words(a) == words(b) {
        return 1.0;
    }
    let edits = strsim::normalized_damerau_levenshtein(a, b);
    let (short, long) = if a.len() <= b.len() { (a, b) } else { (b, a) };
    let truncated = long.starts_with(short) && short.len() >= 6 && short.len() * 10 >= long.len() * 6;
    if truncated {
        edits.max(0.8)
    } else {
        edits
    }
}

fn squashed(name: &str) -> String {
    name.chars().filter(|c| *c != '_' && *c != '-').collect()
}

fn words(name: &str) -> Vec<&str> {
    let mut words: Vec<&str> = name.split(['_', '-']).filter(|w| !w.is_empty()).collect();
    words.sort_unstable();
    words
}

#[cfg(test)]
mod tests {
    use super::*;

    const KNOWN: &[&str] = &["Enable_Duravip", "Bind_Address", "Duravip_Preference", "Duravip_Follow"];

    #[test]
    fn typos_find_the_option_meant() {
        for (typo, meant) in [
            ("Enable_Duravp", "Enable_Duravip"),
            ("enable_duravip_", "Enable_Duravip"),
            ("EnableDuravip", "Enable_Duravip"),
            ("Duravip_Enable", "Enable_Duravip"),
            ("Bind_Adress", "Bind_Address"),
            ("DURAVIP_PREFERNCE", "Duravip_Preference"),
            ("duravip_follows", "Duravip_Follow"),
        ] {
            assert_eq!(closest(typo, KNOWN, FOR_WARNINGS), Some(meant), "{typo}");
        }
    }

    #[test]
    fn exact_names_and_unrelated_names_are_not_near_misses() {
        assert_eq!(closest("enable_duravip", KNOWN, FOR_WARNINGS), None);
        for other in ["Outbound_Throttle_Messages", "Enable_DKIM", "Bind", "Duravip", "Enable", "Binding_Group"] {
            assert_eq!(closest(other, KNOWN, FOR_WARNINGS), None, "{other}");
        }
    }

    #[test]
    fn truncations_are_suggested_when_most_of_the_name_is_there() {
        assert_eq!(closest("view_mature", &["view_mature_time"], FOR_ERRORS), Some("view_mature_time"));
        assert_eq!(closest("view", &["view_mature_time"], FOR_ERRORS), None);
    }
}
