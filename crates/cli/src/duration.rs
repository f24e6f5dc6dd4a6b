//! Durations as Vault's CLI reads and prints them.
//!
//! Flags such as `-ttl` accept Go duration syntax (`30s`, `1h30m`, `1.5h`,
//! `500ms`), Vault's `d` for days, and plain integers, which mean seconds.
//! Requests carry durations in Go's canonical form (`1h30m0s`), which every
//! Vault-compatible server parses; responses carry seconds, printed the way
//! `vault read` prints TTLs (`768h`, `1h30m`, `0s`).

use std::fmt;

const NANOS_PER_MICRO: i64 = 1_000;
const NANOS_PER_MILLI: i64 = 1_000_000;
const NANOS_PER_SEC: i64 = 1_000_000_000;
const NANOS_PER_MIN: i64 = 60 * NANOS_PER_SEC;
const NANOS_PER_HOUR: i64 = 60 * NANOS_PER_MIN;
const NANOS_PER_DAY: i64 = 24 * NANOS_PER_HOUR;

/// A signed duration with nanosecond precision, like Go's `time.Duration`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Default)]
pub struct GoDuration {
    nanos: i64,
}

impl GoDuration {
    /// The zero duration.
    pub const ZERO: GoDuration = GoDuration { nanos: 0 };

    /// A duration of `secs` seconds (saturating).
    pub fn from_secs(secs: i64) -> GoDuration {
        GoDuration {
            nanos: secs.saturating_mul(NANOS_PER_SEC),
        }
    }

    /// Whole seconds, truncated toward zero.
    pub fn whole_secs(self) -> i64 {
        self.nanos / NANOS_PER_SEC
    }

    /// True for the zero duration.
    pub fn is_zero(self) -> bool {
        self.nanos == 0
    }

    /// True for durations below zero.
    pub fn is_negative(self) -> bool {
        self.nanos < 0
    }

    /// Parses the flag syntax described in the module docs. An empty string
    /// is zero.
    pub fn parse(input: &str) -> Result<GoDuration, String> {
        let s = input.trim();
        if s.is_empty() {
            return Ok(GoDuration::ZERO);
        }
        // Plain integers are seconds.
        if let Ok(secs) = s.parse::<i64>() {
            return secs
                .checked_mul(NANOS_PER_SEC)
                .map(|nanos| GoDuration { nanos })
                .ok_or_else(|| format!("invalid duration {input:?}: out of range"));
        }
        parse_go(s).ok_or_else(|| {
            format!("invalid duration {input:?} (expected e.g. 30s, 5m, 1h30m, 7d, or seconds)")
        })
    }
}

impl fmt::Display for GoDuration {
    /// Go's `time.Duration.String()`: `0s`, `1.5s`, `1h0m0s`, `500ms`.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&go_string(self.nanos))
    }
}

/// clap value parser for duration flags.
pub fn parse_duration_arg(s: &str) -> Result<GoDuration, String> {
    GoDuration::parse(s)
}

/// Parses Go's `time.ParseDuration` syntax plus `d` (days).
fn parse_go(s: &str) -> Option<GoDuration> {
    let (negative, mut rest) = match s.as_bytes().first() {
        Some(b'-') => (true, &s[1..]),
        Some(b'+') => (false, &s[1..]),
        _ => (false, s),
    };
    if rest == "0" {
        return Some(GoDuration::ZERO);
    }
    if rest.is_empty() {
        return None;
    }
    let mut total: i128 = 0;
    while !rest.is_empty() {
        // Number: digits, optionally a fraction.
        let num_len = rest
            .find(|c: char| !(c.is_ascii_digit() || c == '.'))
            .unwrap_or(rest.len());
        let number = &rest[..num_len];
        if number.is_empty() || number == "." || number.matches('.').count() > 1 {
            return None;
        }
        rest = &rest[num_len..];
        // Unit: everything up to the next digit or dot.
        let unit_len = rest
            .find(|c: char| c.is_ascii_digit() || c == '.')
            .unwrap_or(rest.len());
        let unit = &rest[..unit_len];
        rest = &rest[unit_len..];
        let scale: i128 = match unit {
            "ns" => 1,
            "us" | "µs" | "μs" => NANOS_PER_MICRO.into(),
            "ms" => NANOS_PER_MILLI.into(),
            "s" => NANOS_PER_SEC.into(),
            "m" => NANOS_PER_MIN.into(),
            "h" => NANOS_PER_HOUR.into(),
            "d" => NANOS_PER_DAY.into(),
            _ => return None,
        };
        let (whole, frac) = number.split_once('.').unwrap_or((number, ""));
        let whole: i128 = if whole.is_empty() {
            0
        } else {
            whole.parse().ok()?
        };
        let mut value = whole.checked_mul(scale)?;
        if !frac.is_empty() {
            let digits = frac.len().min(18);
            let frac_num: i128 = frac[..digits].parse().ok()?;
            let denom = 10i128.pow(u32::try_from(digits).ok()?);
            value = value.checked_add(frac_num.checked_mul(scale)? / denom)?;
        }
        total = total.checked_add(value)?;
    }
    if negative {
        total = -total;
    }
    i64::try_from(total).ok().map(|nanos| GoDuration { nanos })
}

/// Go's `time.Duration.String()`.
fn go_string(nanos: i64) -> String {
    if nanos == 0 {
        return "0s".to_string();
    }
    let neg = nanos < 0;
    let u = nanos.unsigned_abs();
    let mut out = String::new();
    if u < NANOS_PER_SEC as u64 {
        let (unit, scale) = if u < NANOS_PER_MICRO as u64 {
            ("ns", 1u64)
        } else if u < NANOS_PER_MILLI as u64 {
            ("µs", NANOS_PER_MICRO as u64)
        } else {
            ("ms", NANOS_PER_MILLI as u64)
        };
        out.push_str(&with_fraction(u / scale, u % scale, scale));
        out.push_str(unit);
    } else {
        let secs_nanos = u % NANOS_PER_MIN as u64;
        let total_mins = u / NANOS_PER_MIN as u64;
        let hours = total_mins / 60;
        let mins = total_mins % 60;
        if hours > 0 {
            out.push_str(&format!("{hours}h"));
        }
        if hours > 0 || mins > 0 {
            out.push_str(&format!("{mins}m"));
        }
        let sec_scale = NANOS_PER_SEC as u64;
        out.push_str(&with_fraction(
            secs_nanos / sec_scale,
            secs_nanos % sec_scale,
            sec_scale,
        ));
        out.push('s');
    }
    if neg { format!("-{out}") } else { out }
}

/// `whole.frac` with trailing zeros of the fraction removed.
fn with_fraction(whole: u64, frac: u64, scale: u64) -> String {
    if frac == 0 {
        return whole.to_string();
    }
    let width = scale.to_string().len() - 1;
    let digits = format!("{frac:0width$}");
    format!("{whole}.{}", digits.trim_end_matches('0'))
}

/// Prints a number of seconds the way Vault prints TTL fields: Go's format
/// without the trailing zero units (`2764800` → `768h`, `5400` → `1h30m`,
/// `0` → `0s`).
pub fn human_duration_secs(secs: i64) -> String {
    let s = go_string(secs.saturating_mul(NANOS_PER_SEC));
    let mut s = if let Some(stripped) = s.strip_suffix("m0s") {
        format!("{stripped}m")
    } else {
        s
    };
    if let Some(idx) = s.find("h0m")
        && idx > 0
    {
        s = format!("{}{}", &s[..idx + 1], &s[idx + 3..]);
    }
    s
}

#[cfg(test)]
mod tests {
    use super::*;

    fn secs(s: &str) -> i64 {
        GoDuration::parse(s).unwrap().whole_secs()
    }

    #[test]
    fn parses_flag_syntax() {
        assert_eq!(secs(""), 0);
        assert_eq!(secs("0"), 0);
        assert_eq!(secs("30"), 30);
        assert_eq!(secs("30s"), 30);
        assert_eq!(secs("5m"), 300);
        assert_eq!(secs("1h30m"), 5400);
        assert_eq!(secs("1.5h"), 5400);
        assert_eq!(secs("7d"), 7 * 86400);
        assert_eq!(secs("768h"), 2_764_800);
        assert_eq!(secs("-1"), -1);
        assert_eq!(secs("-1s"), -1);
        assert_eq!(GoDuration::parse("500ms").unwrap().to_string(), "500ms");
        assert_eq!(GoDuration::parse("1µs").unwrap().to_string(), "1µs");
        for bad in [
            "abc",
            "1x",
            "h",
            "1..5s",
            "--1s",
            "1h-1m",
            "99999999999999999999s",
        ] {
            assert!(GoDuration::parse(bad).is_err(), "{bad} should not parse");
        }
    }

    #[test]
    fn prints_like_go() {
        assert_eq!(GoDuration::ZERO.to_string(), "0s");
        assert_eq!(GoDuration::from_secs(30).to_string(), "30s");
        assert_eq!(GoDuration::from_secs(90).to_string(), "1m30s");
        assert_eq!(GoDuration::from_secs(3600).to_string(), "1h0m0s");
        assert_eq!(GoDuration::from_secs(-3600).to_string(), "-1h0m0s");
        assert_eq!(GoDuration::parse("1.5s").unwrap().to_string(), "1.5s");
        assert_eq!(
            GoDuration::parse("2h3m4.05s").unwrap().to_string(),
            "2h3m4.05s"
        );
        assert_eq!(GoDuration::parse("1500us").unwrap().to_string(), "1.5ms");
    }

    #[test]
    fn human_ttls_like_vault() {
        assert_eq!(human_duration_secs(0), "0s");
        assert_eq!(human_duration_secs(45), "45s");
        assert_eq!(human_duration_secs(60), "1m");
        assert_eq!(human_duration_secs(90), "1m30s");
        assert_eq!(human_duration_secs(3600), "1h");
        assert_eq!(human_duration_secs(3601), "1h1s");
        assert_eq!(human_duration_secs(5400), "1h30m");
        assert_eq!(human_duration_secs(2_764_800), "768h");
    }
}
