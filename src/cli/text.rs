//! Text for people: control characters escaped, user input quoted and cut, sizes in binary
//! units, and an error's cause chain as `main` prints it.

/// `1536` -> `1.5 KiB`.
pub fn human_bytes(bytes: u64) -> String {
    const UNITS: [&str; 5] = ["B", "KiB", "MiB", "GiB", "TiB"];
    let mut value = bytes as f64;
    let mut unit = 0;
    while value >= 1024.0 && unit + 1 < UNITS.len() {
        value /= 1024.0;
        unit += 1;
    }
    if unit == 0 {
        format!("{bytes} B")
    } else {
        format!("{value:.1} {}", UNITS[unit])
    }
}

/// Characters of user input an error message quotes before cutting it ([`echo`]).
const ECHO_CHARS_MAX: usize = 200;
/// Characters of one cause of an error printed before cutting it ([`error_text`]): a
/// message that quotes a 160 KB input is useless in full, and no message of the library
/// without quoted input comes near this length.
const CAUSE_CHARS_MAX: usize = 1000;

/// `text` with every control character (C0, DEL, C1, such as ESC, which a terminal takes as
/// the start of a command) and bidirectional-override mark escaped (`\n`, `\t`, `\r`,
/// `\u{1b}`), for text from a store or the command line printed for people. JSON and CSV
/// outputs are escaped by their own formats and do not go through this.
pub fn printable(text: &str) -> std::borrow::Cow<'_, str> {
    fn unsafe_char(c: char) -> bool {
        c.is_control()
            || matches!(c, '\u{200e}' | '\u{200f}' | '\u{202a}'..='\u{202e}' | '\u{2066}'..='\u{2069}')
    }
    if !text.chars().any(unsafe_char) {
        return std::borrow::Cow::Borrowed(text);
    }
    let mut out = String::with_capacity(text.len() + 16);
    for c in text.chars() {
        match c {
            '\n' => out.push_str("\\n"),
            '\r' => out.push_str("\\r"),
            '\t' => out.push_str("\\t"),
            c if unsafe_char(c) => out.push_str(&format!("\\u{{{:x}}}", u32::from(c))),
            c => out.push(c),
        }
    }
    std::borrow::Cow::Owned(out)
}

/// `text` cut to `chars_max` characters followed by `... (N bytes)` when longer.
fn cut(text: &str, chars_max: usize) -> std::borrow::Cow<'_, str> {
    match text.char_indices().nth(chars_max) {
        None => std::borrow::Cow::Borrowed(text),
        Some((end, _)) => {
            std::borrow::Cow::Owned(format!("{}... ({} bytes)", &text[..end], text.len()))
        }
    }
}

/// User input quoted in an error message: in double quotes with control characters escaped,
/// and cut to its first [`ECHO_CHARS_MAX`] characters plus its length when longer.
pub fn echo(text: &str) -> String {
    match text.char_indices().nth(ECHO_CHARS_MAX) {
        None => format!("{text:?}"),
        Some((end, _)) => format!("{:?}... ({} bytes)", &text[..end], text.len()),
    }
}

/// An error as `main` prints it: its causes joined by `: `, each with control characters
/// escaped and cut to [`CAUSE_CHARS_MAX`] characters (an error of the library may quote a
/// name or url from the command line whole).
pub fn error_text(error: &anyhow::Error) -> String {
    let mut text = error
        .chain()
        .map(|cause| {
            let text = cause.to_string();
            cut(&printable(&text), CAUSE_CHARS_MAX).into_owned()
        })
        .collect::<Vec<_>>()
        .join(": ");
    let busy = error.chain().any(|cause| {
        matches!(
            cause.downcast_ref::<runstore::Error>(),
            Some(runstore::Error::AlreadyOpen { .. })
        )
    });
    if busy {
        text.push_str(ALREADY_OPEN_HINT);
    }
    text
}

/// What to do about `AlreadyOpen`, appended to its message.
const ALREADY_OPEN_HINT: &str = "; commands that only read (show, runs, scan, export, tables, \
    info, ui, backup) work beside a writer; --wait SECONDS waits for it to close; init, log, \
    append and set-status with --shared write beside other shared writers";
