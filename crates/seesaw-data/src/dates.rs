//! Calendar days as yyyymmdd integers: how KuaiRand writes them, and easy to compare and print.

/// Parses `20220425`, `2022-04-25` or `2022/04/25` (a time after the date is ignored).
pub fn parse_day(text: &str) -> Option<u32> {
    let text = text.trim();
    let date = text.split([' ', 'T']).next()?;
    let digits: String = date.chars().filter(|c| c.is_ascii_digit()).collect();
    let separated = date.contains(['-', '/']);
    let (y, m, d) = if separated {
        let mut parts = date.split(['-', '/']);
        (parts.next()?.parse().ok()?, parts.next()?.parse().ok()?, parts.next()?.parse().ok()?)
    } else if digits.len() == 8 && digits.len() == date.len() {
        (digits[..4].parse().ok()?, digits[4..6].parse().ok()?, digits[6..].parse().ok()?)
    } else {
        return None;
    };
    valid(y, m, d).then_some(y * 10_000 + m * 100 + d)
}

/// A numeric cell holding yyyymmdd.
pub fn day_from_number(value: f64) -> Option<u32> {
    if value.fract() != 0.0 || !(10_000_101.0..=99_991_231.0).contains(&value) {
        return None;
    }
    let v = value as u32;
    valid(v / 10_000, v / 100 % 100, v % 100).then_some(v)
}

/// The UTC calendar day of a Unix time in milliseconds.
pub fn day_from_unix_millis(millis: i64) -> u32 {
    let days = millis.div_euclid(86_400_000);
    let (y, m, d) = civil_from_days(days);
    (y as u32) * 10_000 + m * 100 + d
}

fn valid(y: u32, m: u32, d: u32) -> bool {
    (1000..=9999).contains(&y) && (1..=12).contains(&m) && (1..=31).contains(&d)
}

/// Howard Hinnant's days-to-civil algorithm (proleptic Gregorian calendar).
fn civil_from_days(days: i64) -> (i64, u32, u32) {
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = (doy - (153 * mp + 2) / 5 + 1) as u32;
    let m = if mp < 10 { mp + 3 } else { mp - 9 } as u32;
    let y = yoe + era * 400 + i64::from(m <= 2);
    (y, m, d)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn days_parse_in_every_spelling() {
        assert_eq!(parse_day("20220425"), Some(20220425));
        assert_eq!(parse_day("2022-04-25"), Some(20220425));
        assert_eq!(parse_day("2022/4/5 10:00"), Some(20220405));
        assert_eq!(parse_day("2022-13-01"), None);
        assert_eq!(parse_day("abc"), None);
        assert_eq!(day_from_number(20220504.0), Some(20220504));
        assert_eq!(day_from_number(2022.5), None);
    }

    #[test]
    fn unix_millis_map_to_utc_days() {
        // 1650812741436 ms = 2022-04-24T15:05:41Z (KuaiRand's first row, logged in UTC+8).
        assert_eq!(day_from_unix_millis(1_650_812_741_436), 20220424);
        assert_eq!(day_from_unix_millis(0), 19700101);
        assert_eq!(day_from_unix_millis(-1), 19691231);
    }
}
