//! UTC instants at millisecond precision, written as `YYYY-MM-DDTHH:MM:SS.sssZ` on the wire.

use std::fmt;

const MS_PER_DAY: i64 = 86_400_000;

/// Milliseconds since the Unix epoch, UTC.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Default)]
pub struct Timestamp(pub i64);

impl Timestamp {
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
        if let Some(exact) = Timestamp::parse(text) {
            return Some(exact);
        }
        if text.len() == 10 {
            return Timestamp::parse(&format!("{text}T00:00:00.000Z"));
        }
        let (main, offset_ms) = split_offset(text)?;
        let (seconds_part, fraction) = match main.split_once('.') {
            Some((s, f)) if !f.is_empty() && f.len() <= 9 && f.bytes().all(|c| c.is_ascii_digit()) => (s, f),
            Some(_) => return None,
            None => (main, ""),
        };
        let millis = format!("{:0<3}", &fraction[..fraction.len().min(3)]);
        let base = Timestamp::parse(&format!("{seconds_part}.{millis}Z"))?;
        Some(base.plus_millis(-offset_ms))
    }
}

fn split_offset(text: &str) -> Option<(&str, i64)> {
    if let Some(main) = text.strip_suffix('Z').or_else(|| text.strip_suffix('z')) {
        return Some((main, 0));
    }
    if text.len() < 6 {
        return None;
    }
    let (main, offset) = text.split_at(text.len() - 6);
    let ob = offset.as_bytes();
    let sign = match ob[0] {
        b'+' => 1,
        b'-' => -1,
        _ => return None,
    };
    if ob[3] != b':' {
        return None;
    }
    let hours: i64 = offset.get(1..3)?.parse().ok()?;
    let minutes: i64 = offset.get(4..6)?.parse().ok()?;
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
}
