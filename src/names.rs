//! Run names and name validation.
//!
//! This module owns the generated `adjective-noun` run names (like 3LC's
//! `randomname.get_name()`, e.g. `sleepy-onion`), the rule that makes a taken
//! name free again (`x` → `x_0000`), and the check every user-given name must
//! pass. The invariant it keeps: every name [`generate_run_name`] returns,
//! and every [`rename_candidate`] of a valid base at most
//! [`NAME_BYTES_MAX`]` - 5` bytes long, passes [`validate_name`], and a
//! generated name depends only on its seed.

/// Blob names of stored reducers start with this: reserved, a user's blob name may not
/// (`Run::put_bulk`), and listings keep the two apart (re-exported as
/// `reduce::REDUCER_BLOB_PREFIX`).
pub const REDUCER_BLOB_PREFIX: &str = "reducer-";

use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{SystemTime, UNIX_EPOCH};

/// Longest name, in UTF-8 bytes, that [`validate_name`] accepts.
///
/// 256 is 3LC's limit for names, and it keeps the store's keys small.
pub const NAME_BYTES_MAX: usize = 256;

/// First halves of generated names: plain, inoffensive, lowercase ASCII.
const ADJECTIVES: [&str; 64] = [
    "amber", "brave", "bright", "breezy", "calm", "cheerful", "clever", "cosmic", "crisp",
    "curious", "dapper", "daring", "eager", "early", "fancy", "fluffy", "frosty", "gentle",
    "giddy", "glad", "golden", "happy", "humble", "jolly", "keen", "kind", "lively", "lucky",
    "mellow", "merry", "mighty", "misty", "modest", "nimble", "noble", "plucky", "polite", "proud",
    "quick", "quiet", "rapid", "rosy", "rustic", "shiny", "silent", "silver", "sleepy", "smooth",
    "snowy", "snug", "solar", "spry", "steady", "sunny", "swift", "tender", "tidy", "tiny",
    "upbeat", "vivid", "warm", "wise", "witty", "zesty",
];

/// Second halves of generated names: plain, inoffensive, lowercase ASCII.
const NOUNS: [&str; 64] = [
    "acorn", "almond", "apple", "badger", "bagel", "banjo", "beacon", "bison", "breeze", "button",
    "cactus", "canoe", "cedar", "cherry", "clover", "comet", "cookie", "cricket", "daisy",
    "dolphin", "falcon", "fern", "firefly", "garden", "gecko", "harbor", "hazel", "heron",
    "island", "kettle", "lantern", "lemon", "maple", "meadow", "mango", "marble", "meteor",
    "mitten", "muffin", "nebula", "nutmeg", "olive", "onion", "orchid", "otter", "panda", "pebble",
    "pepper", "pickle", "planet", "plum", "puffin", "quartz", "radish", "river", "robin", "rocket",
    "sparrow", "teapot", "tulip", "turnip", "walnut", "willow", "zebra",
];

/// The golden-ratio increment of splitmix64.
const SPLITMIX_GAMMA: u64 = 0x9E37_79B9_7F4A_7C15;

/// Calls of [`random_seed`] so far in this process, so that two calls in the
/// same clock tick still differ.
static SEED_CALLS: AtomicU64 = AtomicU64::new(0);

/// Returns the `adjective-noun` run name for `seed`, e.g. `sleepy-onion`.
///
/// The same seed always gives the same name. There are only 4,096 names, so
/// callers resolve collisions with [`rename_candidate`].
pub fn generate_run_name(seed: u64) -> String {
    let mixed = splitmix64(seed);
    // The two halves come from independent bits of the mixed seed.
    let adjective = ADJECTIVES[index(mixed, ADJECTIVES.len())];
    let noun = NOUNS[index(mixed >> 32, NOUNS.len())];
    format!("{adjective}-{noun}")
}

/// Returns a seed for [`generate_run_name`] that differs between calls.
///
/// Mixes the current time in nanoseconds, the process id and a
/// process-global call counter through a splitmix64 step. It is not
/// cryptographic; within one process two calls never give the same seed
/// while the clock stands still.
pub fn random_seed() -> u64 {
    let nanos = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        // Keeping the low 64 bits is fine: they are the ones that change.
        .map_or(0, |since| since.as_nanos() as u64);
    let pid = u64::from(std::process::id());
    let call = SEED_CALLS.fetch_add(1, Ordering::Relaxed);
    splitmix64(nanos ^ pid.rotate_left(32) ^ call.wrapping_mul(SPLITMIX_GAMMA))
}

/// Checks that `name` may name a run or project.
///
/// # Errors
///
/// The reason, as a lowercase phrase, when the name is empty, longer than
/// [`NAME_BYTES_MAX`] bytes, contains `/` or `\`, contains a control character,
/// is `.` or `..` (a name is a path component of its url, and of the folder `export`
/// writes it to), or is only whitespace.
pub fn validate_name(name: &str) -> Result<(), &'static str> {
    if name.is_empty() {
        Err("name is empty")
    } else if name.len() > NAME_BYTES_MAX {
        Err("name is longer than 256 bytes")
    } else if name.contains('/') {
        Err("name contains '/'")
    } else if name.contains('\\') {
        Err("name contains '\\'")
    } else if name == "." || name == ".." {
        Err("name is '.' or '..'")
    } else if name.chars().any(char::is_control) {
        Err("name contains a control character")
    } else if name.chars().all(char::is_whitespace) {
        Err("name is only whitespace")
    } else {
        Ok(())
    }
}

/// Longest blob name, in UTF-8 bytes, that [`validate_blob_name`] accepts: a checkpoint
/// folder's path of a few segments (`ckpt/epoch-3/model.pt`), each at most
/// [`NAME_BYTES_MAX`]. A blob name is a catalog key, so it stays far below a page.
pub const BLOB_NAME_BYTES_MAX: usize = 1024;

const _: () = assert!(BLOB_NAME_BYTES_MAX >= NAME_BYTES_MAX);

/// Checks that `name` may name a blob of a run: segments joined by `/` (a checkpoint folder,
/// `ckpt/epoch-3/model.pt`), each a name [`validate_name`] accepts, at most
/// [`BLOB_NAME_BYTES_MAX`] bytes in all. So no segment is empty, `.` or `..`, and the name
/// neither starts nor ends with `/`: written out as a path under the run's folder, a blob name
/// never leaves it.
///
/// # Errors
///
/// The reason, as a lowercase phrase.
pub fn validate_blob_name(name: &str) -> Result<(), &'static str> {
    if name.is_empty() {
        return Err("name is empty");
    }
    if name.len() > BLOB_NAME_BYTES_MAX {
        return Err("name is longer than 1024 bytes");
    }
    if name.starts_with('/') {
        return Err("name starts with '/'");
    }
    if name.ends_with('/') {
        return Err("name ends with '/'");
    }
    for segment in name.split('/') {
        if segment.is_empty() {
            return Err("name has an empty segment ('//')");
        }
        if segment == "." || segment == ".." {
            return Err("name has a '.' or '..' segment");
        }
        if segment.len() > NAME_BYTES_MAX {
            return Err("name has a segment longer than 256 bytes");
        }
        if segment.chars().all(char::is_whitespace) {
            return Err("name has a segment of only whitespace");
        }
    }
    if name.contains('\\') {
        return Err("name contains '\\'");
    }
    if name.chars().any(char::is_control) {
        return Err("name contains a control character");
    }
    Ok(())
}

/// Checks that `name` may name a table column (or a field of a struct column).
///
/// Column names are not parts of a url or a path, so `/`, `\`, `.` and `..` are allowed
/// (`train/loss` is a common metric name); the other rules of [`validate_name`] hold: not
/// empty, at most [`NAME_BYTES_MAX`] bytes, no control character (a NUL, a newline or an
/// escape would corrupt every listing that prints it), not only whitespace.
///
/// # Errors
///
/// The reason, as a lowercase phrase.
pub fn validate_column_name(name: &str) -> Result<(), &'static str> {
    if name.is_empty() {
        Err("name is empty")
    } else if name.len() > NAME_BYTES_MAX {
        Err("name is longer than 256 bytes")
    } else if name.chars().any(char::is_control) {
        Err("name contains a control character")
    } else if name.chars().all(char::is_whitespace) {
        Err("name is only whitespace")
    } else {
        Ok(())
    }
}

/// Turns any text (a log folder's relative path, an experiment's name in another tool) into a
/// name [`validate_name`] accepts, changing as little as it can and keeping different inputs
/// apart: `%`, `/`, `\\` and control characters become `%XX` (their UTF-8 bytes, upper-case
/// hex), so `sweep/lr=0.1` is `sweep%2Flr=0.1` and the escape reads back unambiguously; `.` and
/// `..` become `%2E` and `%2E%2E`; empty text is `%00`; whitespace-only text has each character
/// escaped; text longer than [`NAME_BYTES_MAX`] is cut at a character boundary and ends in `~`
/// and 8 hex digits of the CRC-32 of the whole escaped text.
pub fn escape_name(raw: &str) -> String {
    fn push_escaped(out: &mut String, c: char) {
        let mut buf = [0u8; 4];
        for b in c.encode_utf8(&mut buf).bytes() {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    if raw.is_empty() {
        return "%00".to_string();
    }
    let whitespace_only = raw.chars().all(char::is_whitespace);
    let mut out = String::with_capacity(raw.len());
    for c in raw.chars() {
        if matches!(c, '%' | '/' | '\\') || c.is_control() || whitespace_only {
            push_escaped(&mut out, c);
        } else {
            out.push(c);
        }
    }
    if out == "." || out == ".." {
        out = out.replace('.', "%2E");
    }
    if out.len() > NAME_BYTES_MAX {
        let crc = crc32fast::hash(out.as_bytes());
        let mut cut = NAME_BYTES_MAX - 9;
        while !out.is_char_boundary(cut) {
            cut -= 1;
        }
        out.truncate(cut);
        out.push_str(&format!("~{crc:08x}"));
    }
    out
}

/// Returns the `n`th rename of a taken name `base`: `base_NNNN`, with `n`
/// zero-padded to four digits (`x` → `x_0000`), as 3LC does when it picks
/// the first free `_NNNN` suffix. Beyond 9999 the number simply grows wider.
pub fn rename_candidate(base: &str, n: u32) -> String {
    format!("{base}_{n:04}")
}

/// One splitmix64 step: a bijective, well-mixing map of 64-bit values.
fn splitmix64(state: u64) -> u64 {
    let mut z = state.wrapping_add(SPLITMIX_GAMMA);
    z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
    z ^ (z >> 31)
}

/// Reduces `bits` to an index below `len`, a non-empty word list's length.
fn index(bits: u64, len: usize) -> usize {
    // Both conversions are lossless: `len` is tiny, and the remainder is
    // below `len`.
    (bits % len as u64) as usize
}

/// The url of run `name` in `project`.
pub fn run_url(project: &str, name: &str) -> String {
    format!("{project}/runs/{name}")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn escaped_names_are_valid_and_keep_different_inputs_apart() {
        let cases = [
            ("run", "run"),
            ("sweep/lr=0.1", "sweep%2Flr=0.1"),
            ("a\\b", "a%5Cb"),
            ("50%", "50%25"),
            ("", "%00"),
            (".", "%2E"),
            ("..", "%2E%2E"),
            ("  ", "%20%20"),
            ("tab\there", "tab%09here"),
            ("./x", ".%2Fx"),
        ];
        for (raw, escaped) in cases {
            assert_eq!(escape_name(raw), escaped, "{raw:?}");
            assert_eq!(validate_name(&escape_name(raw)), Ok(()), "{raw:?}");
        }
        let long = "é".repeat(300);
        let escaped = escape_name(&long);
        assert!(escaped.len() <= NAME_BYTES_MAX);
        assert_eq!(validate_name(&escaped), Ok(()));
        assert_ne!(escaped, escape_name(&format!("{long}x")));
    }
    use std::collections::HashSet;

    fn check(name: &str, expected: Result<(), &'static str>) {
        assert_eq!(validate_name(name), expected, "validating {name:?}");
    }

    #[test]
    fn blob_names_are_folders_that_never_climb_out() {
        let check = |name: &str, expected: Result<(), &'static str>| {
            assert_eq!(validate_blob_name(name), expected, "validating {name:?}");
        };
        check("model.pt", Ok(()));
        check("ckpt/epoch-3/model.pt", Ok(()));
        check("a/.hidden/b..c", Ok(()));
        check("", Err("name is empty"));
        check("/abs", Err("name starts with '/'"));
        check("ckpt/", Err("name ends with '/'"));
        check("ckpt//x", Err("name has an empty segment ('//')"));
        check("../x", Err("name has a '.' or '..' segment"));
        check("a/./b", Err("name has a '.' or '..' segment"));
        check("a/ /b", Err("name has a segment of only whitespace"));
        check("a\\b", Err("name contains '\\'"));
        check("a\nb", Err("name contains a control character"));
        check(
            &"x".repeat(257),
            Err("name has a segment longer than 256 bytes"),
        );
        let long = vec!["x".repeat(200); 6].join("/");
        check(&long, Err("name is longer than 1024 bytes"));
    }

    #[test]
    fn word_lists_are_plain_and_distinct() {
        for list in [&ADJECTIVES, &NOUNS] {
            let distinct: HashSet<_> = list.iter().collect();
            assert_eq!(distinct.len(), list.len());
            for word in list {
                assert!(!word.is_empty() && word.bytes().all(|b| b.is_ascii_lowercase()));
            }
        }
    }

    #[test]
    fn generated_names_are_deterministic_and_valid() {
        let mut seen = HashSet::new();
        for seed in 0..20_000u64 {
            let name = generate_run_name(seed);
            assert_eq!(generate_run_name(seed), name);
            check(&name, Ok(()));
            let (adjective, noun) = name.split_once('-').expect("adjective-noun");
            assert!(ADJECTIVES.contains(&adjective), "{name}");
            assert!(NOUNS.contains(&noun), "{name}");
            seen.insert(name);
        }
        // 20,000 seeds should reach nearly all 4,096 names.
        assert!(seen.len() > 4_000, "{} distinct names", seen.len());
        check(&generate_run_name(u64::MAX), Ok(()));
    }

    #[test]
    fn random_seeds_differ() {
        let seeds: HashSet<u64> = (0..10_000).map(|_| random_seed()).collect();
        assert_eq!(seeds.len(), 10_000);
    }

    #[test]
    fn validates_names() {
        check("sleepy-onion", Ok(()));
        check("run 1 (ünïcode ✓)", Ok(()));
        check(" padded ", Ok(()));
        check(&"x".repeat(NAME_BYTES_MAX), Ok(()));
        check("", Err("name is empty"));
        check(
            &"x".repeat(NAME_BYTES_MAX + 1),
            Err("name is longer than 256 bytes"),
        );
        // 128 two-byte characters are 256 bytes; one more is too many.
        check(&"é".repeat(128), Ok(()));
        check(&"é".repeat(129), Err("name is longer than 256 bytes"));
        check("a/b", Err("name contains '/'"));
        check("/", Err("name contains '/'"));
        check("a\nb", Err("name contains a control character"));
        check("a\0", Err("name contains a control character"));
        check("\u{7f}", Err("name contains a control character"));
        check("\u{85}", Err("name contains a control character"));
        check("\t", Err("name contains a control character"));
        check(" ", Err("name is only whitespace"));
        check("\u{3000}\u{2003}", Err("name is only whitespace"));
        let too_long = validate_name(&"x".repeat(NAME_BYTES_MAX + 1)).unwrap_err();
        assert!(too_long.contains(&NAME_BYTES_MAX.to_string()));
    }

    #[test]
    fn validates_column_names() {
        assert_eq!(validate_column_name("train/loss"), Ok(()));
        assert_eq!(validate_column_name(".."), Ok(()));
        assert_eq!(validate_column_name(""), Err("name is empty"));
        assert_eq!(
            validate_column_name("a\0b"),
            Err("name contains a control character")
        );
        assert_eq!(
            validate_column_name("a\nb"),
            Err("name contains a control character")
        );
        assert_eq!(validate_column_name("  "), Err("name is only whitespace"));
    }

    #[test]
    fn rename_candidates() {
        assert_eq!(rename_candidate("x", 0), "x_0000");
        assert_eq!(rename_candidate("sleepy-onion", 42), "sleepy-onion_0042");
        assert_eq!(rename_candidate("x", 9_999), "x_9999");
        assert_eq!(rename_candidate("x", 10_000), "x_10000");
        let base = "b".repeat(NAME_BYTES_MAX - 5);
        check(&rename_candidate(&base, 9_999), Ok(()));
    }
}
