//! Time formats on the wire: ISO-8601 `…Z` strings for `created_at`/`updated_at`, Unix
//! seconds for `date_sent`, and the `CB-Token-ExpirationDate` header form.
//!
//! The platform keeps `created_at`/`updated_at` with millisecond precision (a database with
//! millisecond timestamps) and compares filter values (`updated_at[gt]=…`, Unix seconds with
//! an optional fraction, or ISO-8601 with optional milliseconds) against that precision,
//! while it renders them in whole seconds (`2018-12-05T11:51:22Z`). [`iso8601_of_millis`],
//! [`parse_iso8601_millis`] and [`unix_seconds_to_millis`] are those rules.

/// Formats Unix seconds as `YYYY-MM-DDTHH:MM:SSZ`.
pub fn iso8601(unix_secs: i64) -> String {
    let (y, mo, d, h, mi, s) = civil(unix_secs);
    format!("{y:04}-{mo:02}-{d:02}T{h:02}:{mi:02}:{s:02}Z")
}

/// Renders Unix milliseconds the way the platform renders a stored time: whole seconds,
/// `YYYY-MM-DDTHH:MM:SSZ` (the fraction is dropped, never rounded up).
pub fn iso8601_of_millis(unix_millis: i64) -> String {
    iso8601(unix_millis.div_euclid(1000))
}

/// Parses `YYYY-MM-DDTHH:MM:SS[.f…]Z` into Unix milliseconds, keeping up to three fraction
/// digits (further digits are truncated); `None` for anything else.
pub fn parse_iso8601_millis(text: &str) -> Option<i64> {
    let secs = parse_iso8601(text)?;
    let frac = text.get(19..text.len() - 1)?;
    let millis = match frac.strip_prefix('.') {
        None if frac.is_empty() => 0,
        None => return None,
        Some(digits) => {
            if digits.is_empty() || !digits.bytes().all(|b| b.is_ascii_digit()) {
                return None;
            }
            let three: String = digits.chars().chain("00".chars()).take(3).collect();
            three.parse::<i64>().ok()?
        }
    };
    Some(secs * 1000 + millis)
}

/// Parses a Unix time in seconds, integer (`1700000000`) or decimal (`1700000000.25`), into
/// Unix milliseconds (a finer fraction is truncated toward the past); `None` for anything
/// else.
pub fn unix_seconds_to_millis(text: &str) -> Option<i64> {
    let t = text.trim();
    if let Ok(secs) = t.parse::<i64>() {
        return secs.checked_mul(1000);
    }
    let f = t.parse::<f64>().ok().filter(|f| f.is_finite())?;
    let millis = (f * 1000.0).floor();
    // An f64 holds integers exactly up to 2^53; beyond that the value is not a time.
    (millis.abs() < 9.0e15).then_some(millis as i64)
}

/// Formats Unix seconds as `yyyy-MM-dd HH:mm:ss UTC` (the `CB-Token-ExpirationDate` form).
pub fn expiration_header(unix_secs: i64) -> String {
    let (y, mo, d, h, mi, s) = civil(unix_secs);
    format!("{y:04}-{mo:02}-{d:02} {h:02}:{mi:02}:{s:02} UTC")
}

/// Parses `YYYY-MM-DDTHH:MM:SS[.fff]Z` into Unix seconds; `None` for anything else.
pub fn parse_iso8601(text: &str) -> Option<i64> {
    let b = text.as_bytes();
    if b.len() < 20 || b[4] != b'-' || b[7] != b'-' || b[10] != b'T' || !text.ends_with('Z') {
        return None;
    }
    let num = |r: std::ops::Range<usize>| text.get(r)?.parse::<i64>().ok();
    let (y, mo, d) = (num(0..4)?, num(5..7)?, num(8..10)?);
    let (h, mi, s) = (num(11..13)?, num(14..16)?, num(17..19)?);
    if !(1..=12).contains(&mo) || !(1..=31).contains(&d) || h > 23 || mi > 59 || s > 60 {
        return None;
    }
    Some(days_from_civil(y, mo, d) * 86_400 + h * 3600 + mi * 60 + s)
}

fn civil(unix_secs: i64) -> (i64, i64, i64, i64, i64, i64) {
    let days = unix_secs.div_euclid(86_400);
    let rem = unix_secs.rem_euclid(86_400);
    // Howard Hinnant's civil_from_days.
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = doy - (153 * mp + 2) / 5 + 1;
    let m = if mp < 10 { mp + 3 } else { mp - 9 };
    let y = yoe + era * 400 + i64::from(m <= 2);
    (y, m, d, rem / 3600, rem % 3600 / 60, rem % 60)
}

fn days_from_civil(y: i64, m: i64, d: i64) -> i64 {
    let y = if m <= 2 { y - 1 } else { y };
    let era = y.div_euclid(400);
    let yoe = y - era * 400;
    let mp = if m > 2 { m - 3 } else { m + 9 };
    let doy = (153 * mp + 2) / 5 + d - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    era * 146_097 + doe - 719_468
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn formats_and_parses() {
        assert_eq!(iso8601(0), "1970-01-01T00:00:00Z");
        assert_eq!(iso8601(1_544_010_682), "2018-12-05T11:51:22Z");
        assert_eq!(parse_iso8601("2018-12-05T11:51:22Z"), Some(1_544_010_682));
        assert_eq!(
            parse_iso8601("2018-12-05T11:51:22.123Z"),
            Some(1_544_010_682)
        );
        assert_eq!(parse_iso8601("2018-13-05T11:51:22Z"), None);
        assert_eq!(expiration_header(0), "1970-01-01 00:00:00 UTC");
        assert_eq!(
            parse_iso8601_millis("2018-12-05T11:51:22.123Z"),
            Some(1_544_010_682_123)
        );
        assert_eq!(
            parse_iso8601_millis("2018-12-05T11:51:22.5Z"),
            Some(1_544_010_682_500)
        );
        assert_eq!(
            parse_iso8601_millis("2018-12-05T11:51:22.123999Z"),
            Some(1_544_010_682_123)
        );
        assert_eq!(
            parse_iso8601_millis("2018-12-05T11:51:22Z"),
            Some(1_544_010_682_000)
        );
        for bad in [
            "2018-12-05T11:51:22.Z",
            "2018-12-05T11:51:22.1aZ",
            "2018-12-05T11:51:22+1Z",
        ] {
            assert_eq!(parse_iso8601_millis(bad), None, "{bad}");
        }
        assert_eq!(iso8601_of_millis(1_544_010_682_999), "2018-12-05T11:51:22Z");
        assert_eq!(iso8601_of_millis(-1), "1969-12-31T23:59:59Z");
        assert_eq!(
            unix_seconds_to_millis("1700000000"),
            Some(1_700_000_000_000)
        );
        assert_eq!(
            unix_seconds_to_millis(" 1700000000.25 "),
            Some(1_700_000_000_250)
        );
        assert_eq!(unix_seconds_to_millis("1e3"), Some(1_000_000));
        for bad in ["", "x", "NaN", "inf", "1e300"] {
            assert_eq!(unix_seconds_to_millis(bad), None, "{bad}");
        }
        for t in [-86_401_i64, 951_782_400, 4_102_444_799] {
            assert_eq!(parse_iso8601(&iso8601(t)), Some(t));
        }
    }
}
