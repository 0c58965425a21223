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

pub(super) fn did_you_mean(suggestion: Option<&str>) -> String {
    suggestion.map_or_else(String::new, |s| format!(" (did you mean '{s}'?)"))
}
