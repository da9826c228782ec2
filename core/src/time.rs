//! UTC instants at millisecond precision, written as `YYYY-MM-DDTHH:MM:SS.sssZ` on the wire.

use std::fmt;

const MS_PER_DAY: i64 = 86_400_000;

/// Milliseconds since the Unix epoch, UTC.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Default)]
pub struct Timestamp(pub i64);

impl Timestamp {
    /// The first instant the wire form can hold: `0001-01-01T00:00:00.000Z`.
    pub const MIN: Timestamp = Timestamp(-62_135_596_800_000);
    /// The last instant the wire form can hold: `9999-12-31T23:59:59.999Z`.
    pub const MAX: Timestamp = Timestamp(253_402_300_799_999);

    pub fn now() -> Timestamp {
        let since_epoch = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| d.as_millis() as i64)
            .unwrap_or(0);
        Timestamp(since_epoch)
    }

    pub fn from_millis(ms: i64) -> Timestamp {
        Timestamp(ms)
    }

    pub fn millis(self) -> i64 {
        self.0
    }

    pub fn plus_millis(self, ms: i64) -> Timestamp {
        Timestamp(self.0.saturating_add(ms))
    }

    pub fn plus_seconds(self, seconds: i64) -> Timestamp {
        self.plus_millis(seconds.saturating_mul(1000))
    }

    pub fn plus_days(self, days: i64) -> Timestamp {
        self.plus_millis(days.saturating_mul(MS_PER_DAY))
    }

    /// Midnight UTC of the day containing this instant.
    pub fn start_of_day(self) -> Timestamp {
        Timestamp(self.0.div_euclid(MS_PER_DAY) * MS_PER_DAY)
    }

    /// Days since the epoch (the UTC calendar day, used as a counter key).
    pub fn day_number(self) -> i64 {
        self.0.div_euclid(MS_PER_DAY)
    }

    /// Parses the exact wire profile `YYYY-MM-DDTHH:MM:SS.sssZ` (a real calendar instant, year ≥ 1).
    pub fn parse(text: &str) -> Option<Timestamp> {
        let b = text.as_bytes();
        if b.len() != 24 {
            return None;
        }
        let digits = |range: std::ops::Range<usize>| -> Option<i64> {
            let mut value = 0i64;
            for &c in &b[range] {
                if !c.is_ascii_digit() {
                    return None;
                }
                value = value * 10 + i64::from(c - b'0');
            }
            Some(value)
        };
        let separators = [(4, b'-'), (7, b'-'), (10, b'T'), (13, b':'), (16, b':'), (19, b'.'), (23, b'Z')];
        if separators.iter().any(|&(i, c)| b[i] != c) {
            return None;
        }
        let (year, month, day) = (digits(0..4)?, digits(5..7)?, digits(8..10)?);
        let (hour, minute, second, milli) = (digits(11..13)?, digits(14..16)?, digits(17..19)?, digits(20..23)?);
        if year == 0 || !(1..=12).contains(&month) || day < 1 || day > days_in_month(year, month) {
            return None;
        }
        if hour > 23 || minute > 59 || second > 59 {
            return None;
        }
        let days = days_from_civil(year, month, day);
        Some(Timestamp(days * MS_PER_DAY + ((hour * 60 + minute) * 60 + second) * 1000 + milli))
    }

    /// Parses a looser RFC 3339 form for user input: `Z` or `±HH:MM`, optional fraction, or a bare date.
    pub fn parse_rfc3339(text: &str) -> Option<Timestamp> {
        Timestamp::parse_input(text).ok()
    }

    /// [`Timestamp::parse_rfc3339`], saying why a text is refused. Accepted: the wire form, a bare
    /// date (`YYYY-MM-DD`, midnight UTC), or `YYYY-MM-DDTHH:MM:SS` with an optional fraction of 1 to
    /// 9 digits (cut to milliseconds) and `Z` or `±HH:MM`. The instant in UTC must lie within
    /// [`Timestamp::MIN`]..=[`Timestamp::MAX`], so that whatever is accepted is written back in
    /// the wire form and parses again to the same instant (`9999-12-31T23:59:59-00:01` is in year
    /// 10000 in UTC: it is refused, not stored as a timestamp nobody can read).
    pub fn parse_input(text: &str) -> Result<Timestamp, &'static str> {
        const FORM: &str = "must be an RFC 3339 timestamp with a timezone (`2026-01-31T09:30:00Z`, \
                            `2026-01-31T10:30:00.250+01:00`) or a date (`2026-01-31`)";
        if text.starts_with("0000-") {
            return Err(RANGE_MESSAGE);
        }
        let parsed = if let Some(exact) = Timestamp::parse(text) {
            exact
        } else if text.len() == 10 {
            Timestamp::parse(&format!("{text}T00:00:00.000Z")).ok_or(FORM)?
        } else {
            let (main, offset_ms) = split_offset(text).ok_or(FORM)?;
            let (seconds_part, fraction) = match main.split_once('.') {
                Some((s, f)) if !f.is_empty() && f.len() <= 9 && f.bytes().all(|c| c.is_ascii_digit()) => (s, f),
                Some(_) => return Err(FORM),
                None => (main, ""),
            };
            // `fraction` is ASCII digits only, so slicing it by bytes is safe.
            let millis = format!("{:0<3}", &fraction[..fraction.len().min(3)]);
            let base = Timestamp::parse(&format!("{seconds_part}.{millis}Z")).ok_or(FORM)?;
            base.plus_millis(-offset_ms)
        };
        if !parsed.is_representable() {
            return Err(RANGE_MESSAGE);
        }
        Ok(parsed)
    }

    /// Whether the wire form can hold this instant (a four-digit year from 0001 to 9999), so that
    /// it formats to text that [`Timestamp::parse`] reads back as the same instant.
    pub fn is_representable(self) -> bool {
        (Timestamp::MIN..=Timestamp::MAX).contains(&self)
    }
}

/// Why [`Timestamp::parse_input`] refuses an instant outside the wire range.
pub const RANGE_MESSAGE: &str = "must be between 0001-01-01T00:00:00.000Z and 9999-12-31T23:59:59.999Z in UTC";

fn split_offset(text: &str) -> Option<(&str, i64)> {
    if let Some(main) = text.strip_suffix('Z').or_else(|| text.strip_suffix('z')) {
        return Some((main, 0));
    }
    // By bytes: a multi-byte character before the offset must not make the split panic.
    let split = text.len().checked_sub(6)?;
    let (main, offset) = (text.get(..split)?, text.get(split..)?);
    let ob = offset.as_bytes();
    let sign = match ob[0] {
        b'+' => 1,
        b'-' => -1,
        _ => return None,
    };
    if ob[3] != b':' || !ob[1..3].iter().chain(&ob[4..6]).all(u8::is_ascii_digit) {
        return None;
    }
    let hours = i64::from(ob[1] - b'0') * 10 + i64::from(ob[2] - b'0');
    let minutes = i64::from(ob[4] - b'0') * 10 + i64::from(ob[5] - b'0');
    if hours > 23 || minutes > 59 {
        return None;
    }
    Some((main, sign * (hours * 60 + minutes) * 60_000))
}

impl fmt::Display for Timestamp {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let days = self.0.div_euclid(MS_PER_DAY);
        let in_day = self.0.rem_euclid(MS_PER_DAY);
        let (year, month, day) = civil_from_days(days);
        let (hour, rest) = (in_day / 3_600_000, in_day % 3_600_000);
        let (minute, rest) = (rest / 60_000, rest % 60_000);
        let (second, milli) = (rest / 1000, rest % 1000);
        write!(f, "{year:04}-{month:02}-{day:02}T{hour:02}:{minute:02}:{second:02}.{milli:03}Z")
    }
}

fn is_leap(year: i64) -> bool {
    (year % 4 == 0 && year % 100 != 0) || year % 400 == 0
}

fn days_in_month(year: i64, month: i64) -> i64 {
    match month {
        2 if is_leap(year) => 29,
        2 => 28,
        4 | 6 | 9 | 11 => 30,
        _ => 31,
    }
}

// Howard Hinnant's civil-calendar algorithms (proleptic Gregorian).
fn days_from_civil(year: i64, month: i64, day: i64) -> i64 {
    let y = if month <= 2 { year - 1 } else { year };
    let era = y.div_euclid(400);
    let yoe = y - era * 400;
    let mp = (month + 9) % 12;
    let doy = (153 * mp + 2) / 5 + day - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    era * 146_097 + doe - 719_468
}

fn civil_from_days(days: i64) -> (i64, i64, i64) {
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = doy - (153 * mp + 2) / 5 + 1;
    let month = if mp < 10 { mp + 3 } else { mp - 9 };
    let year = yoe + era * 400 + i64::from(month <= 2);
    (year, month, day)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trips_the_wire_profile() {
        for text in [
            "2026-04-21T14:32:17.482Z",
            "2024-02-29T23:59:59.999Z",
            "0001-01-01T00:00:00.000Z",
            "1970-01-01T00:00:00.000Z",
        ] {
            let parsed = Timestamp::parse(text);
            assert_eq!(parsed.map(|t| t.to_string()).as_deref(), Some(text));
        }
        assert_eq!(Timestamp::parse("1970-01-02T00:00:00.000Z"), Some(Timestamp(86_400_000)));
    }

    #[test]
    fn rejects_impossible_or_loose_forms() {
        for text in [
            "2026-02-30T00:00:00.000Z",
            "2026-01-01T24:00:00.000Z",
            "0000-01-01T00:00:00.000Z",
            "2026-01-01T00:00:00Z",
            "2026-01-01T00:00:00.000+00:00",
            "2025-02-29T00:00:00.000Z",
        ] {
            assert_eq!(Timestamp::parse(text), None, "{text}");
        }
    }

    #[test]
    fn parses_user_rfc3339_with_offsets() {
        assert_eq!(
            Timestamp::parse_rfc3339("2026-01-01T02:00:00+02:00").map(|t| t.to_string()).as_deref(),
            Some("2026-01-01T00:00:00.000Z")
        );
        assert_eq!(
            Timestamp::parse_rfc3339("2026-01-01").map(|t| t.to_string()).as_deref(),
            Some("2026-01-01T00:00:00.000Z")
        );
        assert_eq!(Timestamp::parse_rfc3339("2026-01-01T00:00:00.5Z").map(|t| t.millis() % 1000), Some(500));
    }

    #[test]
    fn the_bounds_are_the_first_and_last_wire_instants() {
        assert_eq!(Timestamp::parse("0001-01-01T00:00:00.000Z"), Some(Timestamp::MIN));
        assert_eq!(Timestamp::parse("9999-12-31T23:59:59.999Z"), Some(Timestamp::MAX));
        assert_eq!(Timestamp::MIN.to_string(), "0001-01-01T00:00:00.000Z");
        assert_eq!(Timestamp::MAX.to_string(), "9999-12-31T23:59:59.999Z");
        assert!(!Timestamp::MAX.plus_millis(1).is_representable());
        assert!(!Timestamp::MIN.plus_millis(-1).is_representable());
    }

    /// Offsets that carry an instant past either end of the wire range (the year-10000
    /// `expires_at`), year 0000 and forms RFC 3339 allows that the wire cannot hold are refused;
    /// the last instants inside the range are accepted.
    #[test]
    fn user_input_outside_the_wire_range_is_refused() {
        let out_of_range = [
            "9999-12-31T23:59:59.999-00:01",
            "9999-12-31T23:30:00-00:30",
            "9999-12-31T00:01:00-23:59",
            "9999-12-31T23:59:59.9995-00:01",
            "0001-01-01T00:00:00+00:01",
            "0001-01-01T00:59:59.999+01:00",
            "0001-01-01T00:00:00.000+23:59",
            "0000-01-01T00:00:00Z",
            "0000-12-31T23:30:00-01:00",
            "0000-06-01",
        ];
        for text in out_of_range {
            assert_eq!(Timestamp::parse_input(text), Err(RANGE_MESSAGE), "{text}");
        }
        let malformed = [
            "10000-01-01T00:00:00Z",
            "+10000-01-01T00:00:00Z",
            "-0001-01-01T00:00:00Z",
            "2026-01-01T24:00:00Z",
            "2026-12-31T23:59:60Z",
            "2026-01-01T00:00:00.1234567890Z",
            "2026-01-01T00:00:00.Z",
            "2026-01-01T00:00:00+24:00",
            "2026-01-01T00:00:00+01:60",
            "2026-01-01T00:00:00+1:00",
            "2026-01-01T00:00:00+01:0x",
            "2026-01-01 00:00:00Z",
            "2026-01-01t00:00:00Z",
            "2026-01-01T00:00:00",
            "2026-02-30",
            "",
            "Z",
            "\u{e9}abcde",
            "2026-01-01T00:00:00\u{e9}:00:0",
            "2026-01-01T00:00:0\u{1F600}",
            "\u{1F600}\u{1F600}",
        ];
        for text in malformed {
            assert!(Timestamp::parse_input(text).is_err(), "{text:?}");
        }
        for (text, wire) in [
            ("9999-12-31T23:59:59.999Z", "9999-12-31T23:59:59.999Z"),
            ("9999-12-31T23:59:59.9999999Z", "9999-12-31T23:59:59.999Z"),
            ("9999-12-31T23:59:59.999+00:01", "9999-12-31T23:58:59.999Z"),
            ("0001-01-01T00:00:00-00:01", "0001-01-01T00:01:00.000Z"),
            ("0001-01-01", "0001-01-01T00:00:00.000Z"),
            ("9999-12-31", "9999-12-31T00:00:00.000Z"),
            ("2024-02-29T23:59:59.5z", "2024-02-29T23:59:59.500Z"),
            ("2026-01-01T00:00:00-00:00", "2026-01-01T00:00:00.000Z"),
        ] {
            assert_eq!(Timestamp::parse_input(text).map(|t| t.to_string()).as_deref(), Ok(wire), "{text}");
        }
    }

    /// Whatever user input parses formats to the wire form and parses back to the same instant:
    /// random dates near both ends of the range and anywhere, with every kind of offset and fraction.
    #[test]
    fn accepted_input_round_trips_through_the_wire_form() {
        let mut seed = 0x9e37_79b9_7f4a_7c15_u64;
        let mut next = |below: u64| {
            seed ^= seed << 13;
            seed ^= seed >> 7;
            seed ^= seed << 17;
            seed % below
        };
        let mut accepted = 0;
        for _ in 0..20_000 {
            let year = match next(3) {
                0 => 1 + next(2),
                1 => 9998 + next(2),
                _ => 1 + next(9999),
            };
            let (month, day) = (1 + next(12), 1 + next(31));
            let (hour, minute, second) = (next(24), next(60), next(60));
            let fraction = match next(4) {
                0 => String::new(),
                n => format!(".{:0width$}", next(10u64.pow(3 * n as u32)), width = 3 * n as usize),
            };
            let zone = match next(3) {
                0 => "Z".to_string(),
                _ => format!("{}{:02}:{:02}", if next(2) == 0 { '+' } else { '-' }, next(24), next(60)),
            };
            let text = format!("{year:04}-{month:02}-{day:02}T{hour:02}:{minute:02}:{second:02}{fraction}{zone}");
            if let Ok(at) = Timestamp::parse_input(&text) {
                accepted += 1;
                assert!(at.is_representable(), "{text}");
                assert_eq!(Timestamp::parse(&at.to_string()), Some(at), "{text} -> {at}");
            }
        }
        assert!(accepted > 15_000, "only {accepted} accepted");
    }
}
