//! Civil-date arithmetic for the log's date/hourmin/time_ms columns, which KuaiRand gives in
//! Beijing time; no date crate is a dependency of seesaw-data, and these are a few lines.

/// KuaiRand's dates are local to UTC+8.
pub const UTC_OFFSET_MS: i64 = 8 * 3_600_000;
pub const DAY_MS: i64 = 86_400_000;

/// Relative traffic per local hour, taken from the shape of the real KuaiRand slice: quiet
/// nights, a rise through the morning, a plateau in the afternoon and a peak in the evening.
pub const HOURLY_TRAFFIC: [f64; 24] = [
    6896.0, 4163.0, 2759.0, 1683.0, 1372.0, 1502.0, 2762.0, 4316.0, 5559.0, 6707.0, 7600.0, 8776.0,
    9719.0, 9669.0, 8823.0, 8780.0, 9391.0, 10122.0, 9860.0, 9390.0, 9794.0, 10278.0, 11136.0,
    10614.0,
];

/// Days since 1970-01-01 of a proleptic Gregorian date (Howard Hinnant's algorithm).
pub fn days_from_civil(y: i64, m: u32, d: u32) -> i64 {
    let y = if m <= 2 { y - 1 } else { y };
    let era = y.div_euclid(400);
    let yoe = y - era * 400;
    let mp = (m as i64 + 9) % 12;
    let doy = (153 * mp + 2) / 5 + d as i64 - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    era * 146_097 + doe - 719_468
}

pub fn civil_from_days(z: i64) -> (i64, u32, u32) {
    let z = z + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = (doy - (153 * mp + 2) / 5 + 1) as u32;
    let m = if mp < 10 { mp + 3 } else { mp - 9 } as u32;
    (if m <= 2 { yoe + era * 400 + 1 } else { yoe + era * 400 }, m, d)
}

/// Days since the epoch of a yyyymmdd date, or None when it is not a real date.
pub fn parse_yyyymmdd(v: u32) -> Option<i64> {
    let (y, m, d) = ((v / 10_000) as i64, (v / 100) % 100, v % 100);
    if !(1971..=9999).contains(&y) || !(1..=12).contains(&m) || d == 0 {
        return None;
    }
    let days = days_from_civil(y, m, d);
    (civil_from_days(days) == (y, m, d)).then_some(days)
}

pub fn yyyymmdd(days: i64) -> u32 {
    let (y, m, d) = civil_from_days(days);
    y as u32 * 10_000 + m * 100 + d
}

pub fn iso_date(days: i64) -> String {
    let (y, m, d) = civil_from_days(days);
    format!("{y:04}-{m:02}-{d:02}")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn kuairand_epoch() {
        let d = parse_yyyymmdd(20220425).unwrap();
        // 2022-04-25 00:00 in Beijing.
        assert_eq!(d * DAY_MS - UTC_OFFSET_MS, 1_650_816_000_000);
        assert_eq!(yyyymmdd(d + 7), 20220502);
        assert_eq!(iso_date(d - 15), "2022-04-10");
        assert_eq!(parse_yyyymmdd(20220229), None);
        assert_eq!(parse_yyyymmdd(20240229).map(yyyymmdd), Some(20240229));
    }
}
