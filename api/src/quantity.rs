//! Kubernetes quantities as ebb uses them: metric values and targets are held as `f64` and
//! written with milli precision (`1500m`, `2`, `12k`), the way the HPA expects them. Values that
//! are not finite or are negative become 0 (a source can never push a target below zero).

use thiserror::Error;

#[derive(Debug, Error, PartialEq, Eq)]
#[error(
    "invalid quantity {0:?}: expected a number with an optional suffix (m, k, M, G, T, P, E, Ki, Mi, Gi, Ti, Pi, Ei)"
)]
pub struct QuantityError(pub String);

/// Clamps what a scaler measured to a value the HPA can use: NaN, ±Inf and negatives become 0.
pub fn sanitize(v: f64) -> f64 {
    if v.is_finite() && v > 0.0 { v } else { 0.0 }
}

/// Milli-units of a sanitized value, rounded up as the HPA rounds quantities.
pub fn to_milli(v: f64) -> i64 {
    let x = sanitize(v) * 1000.0;
    // A product that lands a hair above a whole milli (2.007 × 1000 = 2007.0000000000002) is
    // that milli, not the next one.
    let r = x.round();
    let m = if (x - r).abs() <= 1e-9 * r.abs().max(1.0) { r } else { x.ceil() };
    if m >= i64::MAX as f64 { i64::MAX } else { m as i64 }
}

/// Canonical decimal quantity string with milli precision.
pub fn format(v: f64) -> String {
    format_milli(to_milli(v))
}

/// Canonical decimal quantity string for a milli-unit count.
pub fn format_milli(milli: i64) -> String {
    if milli % 1000 != 0 {
        return format!("{milli}m");
    }
    let mut units = milli / 1000;
    if units == 0 {
        return "0".into();
    }
    let mut suffix = "";
    for s in ["k", "M", "G", "T", "P", "E"] {
        if units % 1000 == 0 {
            units /= 1000;
            suffix = s;
        } else {
            break;
        }
    }
    format!("{units}{suffix}")
}

/// Parses a Kubernetes quantity (`500m`, `2`, `1.5`, `3k`, `1Gi`, `1e3`) into a number.
pub fn parse(s: &str) -> Result<f64, QuantityError> {
    let t = s.trim();
    let err = || QuantityError(s.to_owned());
    let split = t.find(|c: char| c.is_ascii_alphabetic() && c != 'e' && c != 'E').unwrap_or(t.len());
    let (num, suffix) = t.split_at(split);
    // `1E` is an exa suffix, not an exponent without digits.
    let (num, suffix) = match num.strip_suffix(['e', 'E']) {
        Some(n) if suffix.is_empty() => (n, &t[n.len()..]),
        _ => (num, suffix),
    };
    let mult = match suffix {
        "" => 1.0,
        "m" => 1e-3,
        "k" => 1e3,
        "M" => 1e6,
        "G" => 1e9,
        "T" => 1e12,
        "P" => 1e15,
        "E" => 1e18,
        "Ki" => 1024.0,
        "Mi" => 1024f64.powi(2),
        "Gi" => 1024f64.powi(3),
        "Ti" => 1024f64.powi(4),
        "Pi" => 1024f64.powi(5),
        "Ei" => 1024f64.powi(6),
        _ => return Err(err()),
    };
    let n: f64 = num.parse().map_err(|_| err())?;
    if !n.is_finite() {
        return Err(err());
    }
    Ok(n * mult)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn formats_with_milli_precision() {
        let cases = [
            (0.0, "0"),
            (1.0, "1"),
            (1.5, "1500m"),
            (0.0004, "1m"),
            (2.007, "2007m"),
            (0.001 * 9.0, "9m"),
            (1.0001, "1001m"),
            (2000.0, "2k"),
            (2500.0, "2500"),
            (3_000_000.0, "3M"),
            (f64::NAN, "0"),
            (f64::INFINITY, "0"),
            (-4.0, "0"),
        ];
        for (v, want) in cases {
            assert_eq!(format(v), want, "value {v}");
        }
    }

    #[test]
    fn parses_suffixes() {
        let cases = [
            ("500m", 0.5),
            ("2", 2.0),
            ("1.5", 1.5),
            ("3k", 3000.0),
            ("1Ki", 1024.0),
            ("1e3", 1000.0),
            ("2E", 2e18),
        ];
        for (s, want) in cases {
            assert!((parse(s).unwrap() - want).abs() < 1e-9, "{s}");
        }
        assert!(parse("five").is_err());
        assert!(parse("5x").is_err());
        assert!(parse("").is_err());
    }
}
