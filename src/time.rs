//! Timestamps: `i64` microseconds since the Unix epoch, UTC.
//!
//! This module owns the conversion between those integers and RFC 3339 text,
//! and reads the other instants a command line accepts ([`parse_instant_us`]:
//! epoch seconds, `24h` ago).
//! The invariant it keeps: [`format_us`] is total (every `i64` formats,
//! negative values included) and [`parse_rfc3339_us`] inverts it exactly, so
//! a timestamp shown to a person can be typed back in. Calendar arithmetic is
//! Howard Hinnant's proleptic Gregorian `days_from_civil` /
//! `civil_from_days`, done in `i64` with Euclidean division so that dates
//! before 1970 are as exact as later ones.

use std::time::{SystemTime, UNIX_EPOCH};

const MICROS_PER_SECOND: i64 = 1_000_000;
const SECONDS_PER_DAY: i64 = 86_400;
const MICROS_PER_DAY: i64 = MICROS_PER_SECOND * SECONDS_PER_DAY;

/// Most digits an expanded (signed) year may have; six covers the whole
/// `i64` microsecond range (about years -290308 to 294247).
const YEAR_DIGITS_MAX: usize = 6;

/// The current time in microseconds since the Unix epoch.
///
/// A clock set before 1970 gives 0; one beyond the year 294247 gives
/// `i64::MAX`.
pub fn now_us() -> i64 {
    match SystemTime::now().duration_since(UNIX_EPOCH) {
        Ok(since) => i64::try_from(since.as_micros()).unwrap_or(i64::MAX),
        Err(_) => 0,
    }
}

/// Formats a timestamp as RFC 3339 in UTC with microseconds, e.g.
/// `2026-11-22T07:07:53.123456Z`.
///
/// Years outside 0000–9999, which RFC 3339 cannot show, are written in the
/// ISO 8601 expanded form with a sign (`-0001-…`, `+10000-…`), which
/// [`parse_rfc3339_us`] also reads.
pub fn format_us(us: i64) -> String {
    let days = us.div_euclid(MICROS_PER_DAY);
    let micros_of_day = us.rem_euclid(MICROS_PER_DAY);
    let (year, month, day) = civil_from_days(days);
    let seconds_of_day = micros_of_day / MICROS_PER_SECOND;
    let micros = micros_of_day % MICROS_PER_SECOND;
    let (hour, minute, second) = (
        seconds_of_day / 3600,
        seconds_of_day / 60 % 60,
        seconds_of_day % 60,
    );
    let year = if (0..=9999).contains(&year) {
        format!("{year:04}")
    } else if year < 0 {
        format!("-{:04}", year.unsigned_abs())
    } else {
        format!("+{year:04}")
    };
    format!("{year}-{month:02}-{day:02}T{hour:02}:{minute:02}:{second:02}.{micros:06}Z")
}

/// Parses an RFC 3339 timestamp into microseconds since the Unix epoch.
///
/// Accepts `YYYY-MM-DD` (midnight UTC) and `YYYY-MM-DDTHH:MM:SS`, the `T`
/// also written `t` or as a space, followed by an optional fraction of 1 to
/// 9 digits (truncated to microseconds) and an optional offset: `Z`, `z`,
/// `+HH:MM` or `-HH:MM`; without one the time is taken as UTC. The year may
/// also be in the expanded form [`format_us`] writes for years outside
/// 0000–9999. Leap seconds (`:60`) are rejected.
///
/// Returns `None` for anything else, including impossible dates such as
/// `2001-02-29` and instants outside the `i64` range.
pub fn parse_rfc3339_us(s: &str) -> Option<i64> {
    let mut cursor = Cursor {
        bytes: s.as_bytes(),
        pos: 0,
    };
    let year = cursor.year()?;
    cursor.expect(b'-')?;
    let month = cursor.number(2)?;
    cursor.expect(b'-')?;
    let day = cursor.number(2)?;
    if !(1..=12).contains(&month) || !(1..=days_in_month(year, month)).contains(&day) {
        return None;
    }
    let days = days_from_civil(year, month, day);
    let mut micros_of_day = 0;
    let mut offset_seconds = 0;
    if !cursor.at_end() {
        if !matches!(cursor.next()?, b'T' | b't' | b' ') {
            return None;
        }
        let hour = cursor.number(2)?;
        cursor.expect(b':')?;
        let minute = cursor.number(2)?;
        cursor.expect(b':')?;
        let second = cursor.number(2)?;
        if hour > 23 || minute > 59 || second > 59 {
            return None;
        }
        micros_of_day = (hour * 3600 + minute * 60 + second) * MICROS_PER_SECOND;
        if cursor.peek() == Some(b'.') {
            cursor.pos += 1;
            micros_of_day += cursor.fraction_micros()?;
        }
        match cursor.peek() {
            None => {}
            Some(b'Z' | b'z') => cursor.pos += 1,
            Some(sign @ (b'+' | b'-')) => {
                cursor.pos += 1;
                let offset_hours = cursor.number(2)?;
                cursor.expect(b':')?;
                let offset_minutes = cursor.number(2)?;
                if offset_hours > 23 || offset_minutes > 59 {
                    return None;
                }
                offset_seconds = offset_hours * 3600 + offset_minutes * 60;
                if sign == b'-' {
                    offset_seconds = -offset_seconds;
                }
            }
            Some(_) => return None,
        }
        if !cursor.at_end() {
            return None;
        }
    }
    // In i128, because the start of the earliest representable day is
    // itself below `i64::MIN`.
    let us = i128::from(days) * i128::from(MICROS_PER_DAY) + i128::from(micros_of_day)
        - i128::from(offset_seconds * MICROS_PER_SECOND);
    i64::try_from(us).ok()
}

/// Longest relative time [`parse_instant_us`] reads, in digits: nine digits of weeks is
/// about 19 million years, past which the instant would leave the `i64` range anyway.
const RELATIVE_DIGITS_MAX: usize = 9;

/// Parses an instant a person types on a command line (`export --since`) into
/// microseconds since the Unix epoch: an RFC 3339 timestamp or a date
/// ([`parse_rfc3339_us`]: `2026-12-01T00:00:00Z`, `2026-12-01`); a Unix epoch
/// in whole seconds (`1796083200`); or a time before `now_us`, a whole number
/// and one unit: `s`, `m` (minutes), `h`, `d` or `w` (`90m`, `24h`, `7d`).
///
/// Returns `None` for anything else, including a negative or fractional
/// count and an instant outside the `i64` range.
pub fn parse_instant_us(text: &str, now_us: i64) -> Option<i64> {
    if let Some(us) = parse_rfc3339_us(text) {
        return Some(us);
    }
    let digits = text.bytes().take_while(u8::is_ascii_digit).count();
    if digits == 0 {
        return None;
    }
    let (number, unit) = text.split_at(digits);
    if unit.is_empty() {
        let seconds: i64 = number.parse().ok()?;
        return seconds.checked_mul(MICROS_PER_SECOND);
    }
    if digits > RELATIVE_DIGITS_MAX {
        return None;
    }
    let count: i64 = number.parse().ok()?;
    let unit_seconds = match unit {
        "s" => 1,
        "m" => 60,
        "h" => 3600,
        "d" => SECONDS_PER_DAY,
        "w" => 7 * SECONDS_PER_DAY,
        _ => return None,
    };
    let ago_us = count
        .checked_mul(unit_seconds)?
        .checked_mul(MICROS_PER_SECOND)?;
    now_us.checked_sub(ago_us)
}

/// A position in ASCII timestamp text.
struct Cursor<'a> {
    bytes: &'a [u8],
    pos: usize,
}

impl Cursor<'_> {
    fn at_end(&self) -> bool {
        self.pos == self.bytes.len()
    }

    fn peek(&self) -> Option<u8> {
        self.bytes.get(self.pos).copied()
    }

    fn next(&mut self) -> Option<u8> {
        let byte = self.peek()?;
        self.pos += 1;
        Some(byte)
    }

    fn expect(&mut self, wanted: u8) -> Option<()> {
        (self.next()? == wanted).then_some(())
    }

    /// Counts the ASCII digits starting here, without consuming them.
    fn digit_run(&self) -> usize {
        self.bytes[self.pos..]
            .iter()
            .take_while(|byte| byte.is_ascii_digit())
            .count()
    }

    /// Reads exactly `width` ASCII digits as a number; fails if fewer are
    /// there.
    fn number(&mut self, width: usize) -> Option<i64> {
        let digits = self.bytes.get(self.pos..self.pos + width)?;
        let mut value = 0i64;
        for &byte in digits {
            if !byte.is_ascii_digit() {
                return None;
            }
            value = value * 10 + i64::from(byte - b'0');
        }
        self.pos += width;
        Some(value)
    }

    /// Reads a year: exactly four digits, or a sign and four to
    /// [`YEAR_DIGITS_MAX`] digits.
    fn year(&mut self) -> Option<i64> {
        match self.peek()? {
            sign @ (b'+' | b'-') => {
                self.pos += 1;
                let width = self.digit_run();
                if !(4..=YEAR_DIGITS_MAX).contains(&width) {
                    return None;
                }
                let year = self.number(width)?;
                Some(if sign == b'-' { -year } else { year })
            }
            _ => self.number(4),
        }
    }

    /// Reads 1 to 9 fraction digits as microseconds, truncating digits past
    /// the sixth.
    fn fraction_micros(&mut self) -> Option<i64> {
        let width = self.digit_run();
        if !(1..=9).contains(&width) {
            return None;
        }
        let kept = width.min(6);
        let mut micros = self.number(kept)?;
        self.pos += width - kept;
        for _ in kept..6 {
            micros *= 10;
        }
        Some(micros)
    }
}

fn is_leap_year(year: i64) -> bool {
    year % 4 == 0 && (year % 100 != 0 || year % 400 == 0)
}

/// Days in `month` (1–12) of `year`.
fn days_in_month(year: i64, month: i64) -> i64 {
    match month {
        2 if is_leap_year(year) => 29,
        2 => 28,
        4 | 6 | 9 | 11 => 30,
        _ => 31,
    }
}

/// Days since 1970-01-01 of a proleptic Gregorian date (Hinnant's
/// `days_from_civil`); `month` is 1–12 and `day` 1–31.
fn days_from_civil(year: i64, month: i64, day: i64) -> i64 {
    let year = if month <= 2 { year - 1 } else { year };
    let era = year.div_euclid(400);
    let year_of_era = year - era * 400; // [0, 399]
    let month_from_march = if month > 2 { month - 3 } else { month + 9 }; // [0, 11]
    let day_of_year = (153 * month_from_march + 2) / 5 + day - 1; // [0, 365]
    let day_of_era = year_of_era * 365 + year_of_era / 4 - year_of_era / 100 + day_of_year; // [0, 146096]
    era * 146_097 + day_of_era - 719_468
}

/// The proleptic Gregorian `(year, month, day)` of a count of days since
/// 1970-01-01 (Hinnant's `civil_from_days`).
fn civil_from_days(days: i64) -> (i64, i64, i64) {
    let days = days + 719_468; // days since 0000-03-01
    let era = days.div_euclid(146_097);
    let day_of_era = days - era * 146_097; // [0, 146096]
    let year_of_era =
        (day_of_era - day_of_era / 1460 + day_of_era / 36_524 - day_of_era / 146_096) / 365; // [0, 399]
    let day_of_year = day_of_era - (365 * year_of_era + year_of_era / 4 - year_of_era / 100); // [0, 365]
    let month_from_march = (5 * day_of_year + 2) / 153; // [0, 11]
    let day = day_of_year - (153 * month_from_march + 2) / 5 + 1; // [1, 31]
    let month = if month_from_march < 10 {
        month_from_march + 3
    } else {
        month_from_march - 9
    }; // [1, 12]
    let year = year_of_era + era * 400 + i64::from(month <= 2);
    (year, month, day)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Checks that `us` formats as `text` and parses back.
    fn check(us: i64, text: &str) {
        assert_eq!(format_us(us), text, "formatting {us}");
        assert_eq!(parse_rfc3339_us(text), Some(us), "parsing {text}");
    }

    #[test]
    fn known_values() {
        check(0, "1970-01-01T00:00:00.000000Z");
        check(951_782_400_000_000, "2000-02-29T00:00:00.000000Z");
        check(1_000_000_000_123_456, "2001-09-09T01:46:40.123456Z");
        check(1_795_331_273_123_456, "2026-11-22T07:07:53.123456Z");
        check(-1, "1969-12-31T23:59:59.999999Z");
        check(-86_400_000_000, "1969-12-31T00:00:00.000000Z");
        check(-2_208_988_800_000_000, "1900-01-01T00:00:00.000000Z");
        check(-62_135_596_800_000_000, "0001-01-01T00:00:00.000000Z");
        check(-62_167_219_200_000_000, "0000-01-01T00:00:00.000000Z");
        check(-62_198_755_200_000_000, "-0001-01-01T00:00:00.000000Z");
        check(253_402_300_799_999_999, "9999-12-31T23:59:59.999999Z");
        check(253_402_300_800_000_000, "+10000-01-01T00:00:00.000000Z");
        check(i64::MAX, "+294247-01-10T04:00:54.775807Z");
        check(i64::MIN, "-290308-12-21T19:59:05.224192Z");
    }

    #[test]
    fn parses_other_forms() {
        let leap_day = 951_782_400_000_000;
        for (text, us) in [
            ("2000-02-29", leap_day),
            ("2000-02-29T00:00:00", leap_day),
            ("2000-02-29 00:00:00Z", leap_day),
            ("2000-02-29t00:00:00z", leap_day),
            ("2000-02-29T01:30:00+01:30", leap_day),
            ("2000-02-28T23:00:00-01:00", leap_day),
            ("2000-02-29T00:00:00.5Z", leap_day + 500_000),
            ("2000-02-29T00:00:00.000001Z", leap_day + 1),
            ("2000-02-29T00:00:00.123456789Z", leap_day + 123_456),
            ("2000-02-29T00:00:00.999999999+00:00", leap_day + 999_999),
            ("+2000-02-29T00:00:00Z", leap_day),
            ("1600-03-01", -11_670_912_000_000_000),
        ] {
            assert_eq!(parse_rfc3339_us(text), Some(us), "parsing {text}");
        }
    }

    #[test]
    fn rejects_bad_strings() {
        for text in [
            "",
            "2000",
            "2000-02",
            "2000-2-29",
            "200-02-29",
            "20000-02-29",
            "+200-02-29",
            "+1234567-01-01",
            "2001-02-29",
            "1900-02-29",
            "2000-13-01",
            "2000-00-10",
            "2000-01-00",
            "2000-04-31",
            "2000-01-01T",
            "2000-01-01T00:00",
            "2000-01-01T24:00:00Z",
            "2000-01-01T00:60:00Z",
            "2000-01-01T00:00:60Z",
            "2000-01-01T00:00:00.Z",
            "2000-01-01T00:00:00.1234567890Z",
            "2000-01-01T00:00:00,5Z",
            "2000-01-01T00:00:00+0100",
            "2000-01-01T00:00:00+01",
            "2000-01-01T00:00:00+24:00",
            "2000-01-01T00:00:00+01:60",
            "2000-01-01T00:00:00Zx",
            "2000-01-01T00:00:00 ",
            "2000-01-01Z",
            "2000-01-01X00:00:00",
            " 2000-01-01",
            "2000-01-01 ",
            "２000-01-01",
            "2000-01-01T00:00:0é",
            "-1-01-01",
            "+999999-01-01",
            "-999999-01-01",
            "+294247-01-10T04:00:54.775808Z",
        ] {
            assert_eq!(parse_rfc3339_us(text), None, "parsing {text:?}");
        }
    }

    #[test]
    fn parses_instants_typed_on_a_command_line() {
        let now = 1_796_083_200_000_000; // 2026-12-01T00:00:00Z
        let hour = 3_600 * MICROS_PER_SECOND;
        for (text, us) in [
            ("2026-12-01", Some(now)),
            ("2026-12-01T00:00:00Z", Some(now)),
            ("2026-12-01T01:00:00+01:00", Some(now)),
            ("1796083200", Some(now)),
            ("0", Some(0)),
            ("30s", Some(now - 30 * MICROS_PER_SECOND)),
            ("90m", Some(now - 90 * 60 * MICROS_PER_SECOND)),
            ("24h", Some(now - 24 * hour)),
            ("7d", Some(now - 7 * 24 * hour)),
            ("2w", Some(now - 14 * 24 * hour)),
            ("0h", Some(now)),
            ("", None),
            ("h", None),
            ("-5", None),
            ("-1d", None),
            ("1.5h", None),
            ("24 h", None),
            (" 24h", None),
            ("24H", None),
            ("7y", None),
            ("7dd", None),
            ("1234567890w", None),
            ("99999999999999999999", None),
            ("9999999999999", None),
            ("yesterday", None),
            ("2026-13-01", None),
        ] {
            assert_eq!(parse_instant_us(text, now), us, "parsing {text:?}");
        }
        assert_eq!(parse_instant_us("999999999w", i64::MIN + 1), None);
    }

    #[test]
    fn round_trips_many_values() {
        let mut state = 0x9E37_79B9_7F4A_7C15_u64;
        for i in 0..100_000u64 {
            state = state
                .wrapping_mul(6_364_136_223_846_793_005)
                .wrapping_add(1_442_695_040_888_963_407);
            let us = match i % 3 {
                0 => state as i64,
                // Around the present, where real timestamps live.
                1 => (state % 4_000_000_000_000_000) as i64 - 1_000_000_000_000_000,
                _ => (state % 200_000_000) as i64 - 100_000_000,
            };
            let text = format_us(us);
            assert_eq!(parse_rfc3339_us(&text), Some(us), "{us} -> {text}");
        }
    }

    #[test]
    fn calendar_is_consistent_day_by_day() {
        let mut expected = civil_from_days(-800_000);
        for days in -800_000..800_000 {
            let (year, month, day) = civil_from_days(days);
            assert_eq!((year, month, day), expected, "day {days}");
            assert_eq!(days_from_civil(year, month, day), days);
            expected = if day < days_in_month(year, month) {
                (year, month, day + 1)
            } else if month < 12 {
                (year, month + 1, 1)
            } else {
                (year + 1, 1, 1)
            };
        }
    }

    #[test]
    fn now_is_recent() {
        let now = now_us();
        // After 2024-01-01 and before 2200-01-01.
        assert!(now > 1_704_067_200_000_000, "{now}");
        assert!(now < 7_258_118_400_000_000, "{now}");
        assert!(now_us() >= now);
    }
}
