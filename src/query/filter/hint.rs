//! Error-message helpers of the query language: "did you mean" suggestions and cut snippets
//! of the offending text.

use super::like::fold_case;

/// Longest word, in characters, for which an error looks for a "did you mean" suggestion;
/// longer words are not typos of short names, and this bounds the edit-distance work.
const SUGGESTION_WORD_CHARS_MAX: usize = 64;

/// Longest token text, in characters, quoted in an error message before it is cut with `…`.
const ERROR_SNIPPET_CHARS_MAX: usize = 40;

/// Cuts `text` for an error message.
pub(super) fn snippet(text: &str) -> String {
    if text.chars().count() > ERROR_SNIPPET_CHARS_MAX {
        let mut cut: String = text.chars().take(ERROR_SNIPPET_CHARS_MAX).collect();
        cut.push('…');
        cut
    } else {
        text.to_owned()
    }
}

/// Case-insensitive optimal string alignment distance (edits, with transpositions as one).
fn edit_distance(a: &str, b: &str) -> usize {
    let a: Vec<char> = a.chars().map(fold_case).collect();
    let b: Vec<char> = b.chars().map(fold_case).collect();
    // Three rows of the dynamic-programming table: two back, one back, current.
    let mut before: Vec<usize> = vec![0; b.len() + 1];
    let mut previous: Vec<usize> = (0..=b.len()).collect();
    let mut current: Vec<usize> = vec![0; b.len() + 1];
    for i in 1..=a.len() {
        current[0] = i;
        for j in 1..=b.len() {
            let cost = usize::from(a[i - 1] != b[j - 1]);
            let mut best = (previous[j] + 1)
                .min(current[j - 1] + 1)
                .min(previous[j - 1] + cost);
            if i > 1 && j > 1 && a[i - 1] == b[j - 2] && a[i - 2] == b[j - 1] {
                best = best.min(before[j - 2] + 1);
            }
            current[j] = best;
        }
        std::mem::swap(&mut before, &mut previous);
        std::mem::swap(&mut previous, &mut current);
    }
    previous[b.len()]
}

/// The candidate closest to `word`, if close enough to be a likely typo.
pub(crate) fn suggest<'c>(
    word: &str,
    candidates: impl IntoIterator<Item = &'c str>,
) -> Option<&'c str> {
    let length = word.chars().count();
    if length > SUGGESTION_WORD_CHARS_MAX {
        return None;
    }
    // One edit in a two-letter word makes almost any other short word (`lr` is one from
    // `url`), so short words get no suggestion and mid-length ones a single edit.
    let allowed = match length {
        0..=2 => return None,
        3..=4 => 1,
        _ => 2,
    };
    candidates
        .into_iter()
        .map(|candidate| (edit_distance(word, candidate), candidate))
        .filter(|&(distance, _)| distance <= allowed)
        .min_by_key(|&(distance, _)| distance)
        .map(|(_, candidate)| candidate)
}

/// The key (a parameter or output path, a project or run name) closest to `word`, if it looks
/// like a slip for it: the same letters in another case first (`LR` for `lr`: keys are
/// case-sensitive, so this is the commonest slip and short words get it too), then a
/// [`suggest`] match, then the shortest key that `word` begins (`val_acc` for
/// `val_accuracy`: a name typed short).
pub(crate) fn suggest_key<'c>(
    word: &str,
    candidates: impl IntoIterator<Item = &'c str> + Clone,
) -> Option<&'c str> {
    let folded: String = word.chars().map(fold_case).collect();
    let fold = |text: &str| text.chars().map(fold_case).collect::<String>();
    if let Some(same) = candidates
        .clone()
        .into_iter()
        .find(|candidate| fold(candidate) == folded)
    {
        return Some(same);
    }
    if let Some(close) = suggest(word, candidates.clone()) {
        return Some(close);
    }
    // A prefix of three characters or more: fewer begins too many keys to mean one.
    if word.chars().count() < 3 || word.chars().count() > SUGGESTION_WORD_CHARS_MAX {
        return None;
    }
    candidates
        .into_iter()
        .filter(|candidate| fold(candidate).starts_with(&folded))
        .min_by_key(|candidate| (candidate.chars().count(), *candidate))
}

pub(super) fn did_you_mean(suggestion: Option<&str>) -> String {
    suggestion.map_or_else(String::new, |s| format!(" (did you mean '{s}'?)"))
}

#[cfg(test)]
mod key_tests {
    use super::suggest_key;

    fn check(word: &str, keys: &[&str], expected: Option<&str>) {
        assert_eq!(suggest_key(word, keys.iter().copied()), expected, "{word}");
    }

    #[test]
    fn suggest_key_prefers_case_then_edits_then_prefixes() {
        check("LR", &["lr", "url"], Some("lr"));
        check(
            "val_acc",
            &["val_accuracy", "val_loss"],
            Some("val_accuracy"),
        );
        check("los", &["loss", "lossy_thing"], Some("loss"));
        check("accuracy", &["acc", "loss"], None);
        check("zz", &["zzz"], None);
        check("epochs", &["epoch", "epochs_total"], Some("epoch"));
    }
}
