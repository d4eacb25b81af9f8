//! Timestamps of audit records: RFC 3339 in UTC with milliseconds
//! (`2026-12-04T19:50:14.123Z`), from Envoy's clock in milliseconds since the
//! epoch. The text is the one `humantime::format_rfc3339_millis` gives for the
//! same instant (the tests compare them); this is the few lines the filter needs
//! of it, without its `Duration`/`SystemTime` formatting machinery.

/// The RFC 3339 text of `millis` milliseconds after the Unix epoch, with
/// millisecond precision. Years past 9999 (beyond Envoy's 64-bit nanosecond
/// clock, which ends in 2554) would not fit the format.
pub fn rfc3339_millis(millis: u64) -> String {
    let secs = millis / 1000;
    let (year, month, day) = civil_from_days(secs / 86_400);
    let secs_of_day = secs % 86_400;
    let fields = [
        (year, 4),
        (month, 2),
        (day, 2),
        (secs_of_day / 3600, 2),
        (secs_of_day / 60 % 60, 2),
        (secs_of_day % 60, 2),
        (millis % 1000, 3),
    ];
    let mut text = String::with_capacity(24);
    for ((value, width), separator) in fields.into_iter().zip(["-", "-", "T", ":", ":", ".", "Z"]) {
        let mut divisor = 10u64.pow(width - 1);
        while divisor > 0 {
            text.push(char::from(b'0' + (value / divisor % 10) as u8));
            divisor /= 10;
        }
        text.push_str(separator);
    }
    text
}

/// The proleptic Gregorian date of `days` days after 1970-01-01 (Howard
/// Hinnant's `civil_from_days`, for days on or after the epoch).
fn civil_from_days(days: u64) -> (u64, u64, u64) {
    // Shifted to 0000-03-01, so that leap days end each 400-year era.
    let z = days + 719_468;
    let era = z / 146_097;
    let day_of_era = z % 146_097;
    let year_of_era =
        (day_of_era - day_of_era / 1460 + day_of_era / 36_524 - day_of_era / 146_096) / 365;
    let day_of_year = day_of_era - (365 * year_of_era + year_of_era / 4 - year_of_era / 100);
    let shifted_month = (5 * day_of_year + 2) / 153;
    let day = day_of_year - (153 * shifted_month + 2) / 5 + 1;
    let month = if shifted_month < 10 {
        shifted_month + 3
    } else {
        shifted_month - 9
    };
    let year = year_of_era + era * 400 + u64::from(month <= 2);
    (year, month, day)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::{Duration, UNIX_EPOCH};

    fn humantime(millis: u64) -> String {
        humantime::format_rfc3339_millis(UNIX_EPOCH + Duration::from_millis(millis)).to_string()
    }

    #[test]
    fn same_text_as_humantime() {
        const DAY: u64 = 86_400_000;
        let mut instants = vec![0, 999, 1000, DAY - 1, DAY, 1_796_413_814_123];
        // Around the leap days and century years of 1970..2554.
        for year_start_day in [
            10_957u64, 11_016, 11_017, 11_322, 47_541, 47_540, 47_481, 47_482, 84_006, 84_065,
            211_481,
        ] {
            for delta in 0..3 {
                let day = year_start_day + delta;
                instants.extend([day * DAY - 1, day * DAY, day * DAY + 43_200_789]);
            }
        }
        // Every day of 1999..2002 and a spread up to the end of Envoy's clock.
        instants.extend((10_592..11_688).map(|day| day * DAY + day % 1000));
        let mut x: u64 = 0x9e37_79b9_7f4a_7c15;
        for _ in 0..20_000 {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            instants.push(x % (u64::MAX / 1_000_000));
        }
        for millis in instants {
            assert_eq!(rfc3339_millis(millis), humantime(millis), "{millis} ms");
        }
    }
}
