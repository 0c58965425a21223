//! `LIKE` and `ILIKE` patterns: compiled once, matched in linear time, and rewritten for
//! Arrow's `like` kernels so that a column scan matches exactly what a run filter does.

/// One element of a compiled `LIKE` pattern.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Piece {
    /// A literal character (already case-folded for `ILIKE`).
    Char(char),
    /// `_`: any one character.
    One,
    /// `%`: any run of characters.
    Many,
}

/// A compiled `LIKE` / `ILIKE` pattern.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LikePattern {
    pub(super) source: String,
    pieces: Vec<Piece>,
    pub(super) case_insensitive: bool,
}

impl LikePattern {
    /// Compiles `pattern`: `%` matches any run of characters, `_` any one character, and `\`
    /// makes the next character literal (a trailing lone `\` is a literal backslash).
    /// `case_insensitive` makes it an `ILIKE` pattern.
    pub fn new(pattern: &str, case_insensitive: bool) -> LikePattern {
        let mut pieces = Vec::new();
        let mut chars = pattern.chars();
        while let Some(c) = chars.next() {
            let piece = match c {
                '%' => Piece::Many,
                '_' => Piece::One,
                '\\' => Piece::Char(chars.next().unwrap_or('\\')),
                c => Piece::Char(c),
            };
            pieces.push(match piece {
                Piece::Char(c) if case_insensitive => Piece::Char(fold_case(c)),
                piece => piece,
            });
        }
        LikePattern {
            source: pattern.to_owned(),
            pieces,
            case_insensitive,
        }
    }

    /// The pattern as written.
    pub fn source(&self) -> &str {
        &self.source
    }

    /// Whether this is an `ILIKE` pattern.
    pub fn is_case_insensitive(&self) -> bool {
        self.case_insensitive
    }

    /// The pattern rewritten with every literal `%`, `_` and `\` escaped by a backslash and no
    /// other escapes, so that an engine whose escape rules differ in corner cases (Arrow's
    /// `like` kernels) matches exactly what [`LikePattern::matches`] does. Literals of an
    /// `ILIKE` pattern are case-folded.
    pub fn escaped(&self) -> String {
        let mut text = String::with_capacity(self.source.len());
        for piece in &self.pieces {
            match piece {
                Piece::Many => text.push('%'),
                Piece::One => text.push('_'),
                Piece::Char(c) => {
                    if matches!(c, '%' | '_' | '\\') {
                        text.push('\\');
                    }
                    text.push(*c);
                }
            }
        }
        text
    }

    /// Whether `text` matches the whole pattern.
    ///
    /// Linear backtracking over the last `%` only, so it takes at most pattern length times
    /// text length steps, never exponential time.
    pub fn matches(&self, text: &str) -> bool {
        let pieces = &self.pieces;
        // Positions: `p` indexes pieces, `t` is a byte offset into `text`, always on a char
        // boundary because it only ever advances by whole characters.
        let (mut p, mut t) = (0usize, 0usize);
        // After a `%`: the piece after it and the text offset it has swallowed up to.
        let mut backtrack: Option<(usize, usize)> = None;
        loop {
            let next_char = text.get(t..).and_then(|rest| rest.chars().next());
            match (pieces.get(p), next_char) {
                (Some(Piece::Many), _) => {
                    backtrack = Some((p + 1, t));
                    p += 1;
                    continue;
                }
                (Some(Piece::One), Some(c)) => {
                    p += 1;
                    t += c.len_utf8();
                    continue;
                }
                (Some(Piece::Char(wanted)), Some(c)) if self.char_matches(*wanted, c) => {
                    p += 1;
                    t += c.len_utf8();
                    continue;
                }
                (None, None) => return true,
                _ => {}
            }
            // Mismatch: let the last `%` swallow one more character, or fail.
            let Some((after_many, swallowed)) = backtrack else {
                return false;
            };
            let Some(c) = text.get(swallowed..).and_then(|rest| rest.chars().next()) else {
                return false;
            };
            let swallowed = swallowed + c.len_utf8();
            backtrack = Some((after_many, swallowed));
            p = after_many;
            t = swallowed;
        }
    }

    fn char_matches(&self, wanted: char, c: char) -> bool {
        if self.case_insensitive {
            wanted == fold_case(c)
        } else {
            wanted == c
        }
    }
}

/// Simple case folding: the lowercase of `c` when that is one character, else `c`.
pub(super) fn fold_case(c: char) -> char {
    let mut lower = c.to_lowercase();
    match (lower.next(), lower.next()) {
        (Some(folded), None) => folded,
        _ => c,
    }
}
