//! Figures from samples: the median of runs, percentiles of latency samples (nearest rank), and
//! quantiles of a Prometheus histogram's cumulative buckets (linear inside a bucket, as
//! `histogram_quantile` does).

/// Median of `v` (the upper middle for an even count); NaN when empty.
pub fn median(v: &[f64]) -> f64 {
    let mut v: Vec<f64> = v.iter().copied().filter(|x| !x.is_nan()).collect();
    v.sort_by(f64::total_cmp);
    if v.is_empty() { f64::NAN } else { v[v.len() / 2] }
}

/// Nearest-rank percentile `q` (0..=1) of `v`; NaN when empty.
pub fn percentile(v: &[f64], q: f64) -> f64 {
    let mut v: Vec<f64> = v.to_vec();
    v.sort_by(f64::total_cmp);
    if v.is_empty() {
        return f64::NAN;
    }
    let rank = (q * v.len() as f64).ceil() as usize;
    v[rank.clamp(1, v.len()) - 1]
}

/// Largest value; NaN when empty.
pub fn max(v: &[f64]) -> f64 {
    v.iter().copied().fold(f64::NAN, f64::max)
}

/// Cumulative `(upper bound, count)` buckets of histogram `name` in a text exposition, summed
/// over label sets, sorted by bound.
pub fn buckets(text: &str, name: &str) -> Vec<(f64, f64)> {
    let prefix = format!("{name}_bucket{{");
    let mut out: Vec<(f64, f64)> = Vec::new();
    for line in text.lines().filter(|l| l.starts_with(&prefix)) {
        let Some(le) = line.split("le=\"").nth(1).and_then(|r| r.split('"').next()) else { continue };
        let le = if le == "+Inf" {
            f64::INFINITY
        } else if let Ok(v) = le.parse() {
            v
        } else {
            continue;
        };
        let Some(count) = line.rsplit(' ').next().and_then(|c| c.parse::<f64>().ok()) else { continue };
        match out.iter_mut().find(|(b, _)| *b == le) {
            Some(slot) => slot.1 += count,
            None => out.push((le, count)),
        }
    }
    out.sort_by(|a, b| a.0.total_cmp(&b.0));
    out
}

/// `after - before`, bucket by bucket (the observations made in between).
pub fn bucket_diff(before: &[(f64, f64)], after: &[(f64, f64)]) -> Vec<(f64, f64)> {
    after
        .iter()
        .map(|&(le, count)| {
            let old = before.iter().find(|(b, _)| *b == le).map_or(0.0, |x| x.1);
            (le, count - old)
        })
        .collect()
}

/// Quantile `q` from cumulative buckets, interpolating linearly inside a bucket.
pub fn bucket_quantile(b: &[(f64, f64)], q: f64) -> f64 {
    let total = b.last().map_or(0.0, |x| x.1);
    if total <= 0.0 {
        return f64::NAN;
    }
    let rank = q * total;
    let mut prev = (0.0, 0.0);
    for &(le, count) in b {
        if count >= rank && count > prev.1 {
            let upper = if le.is_finite() { le } else { prev.0 };
            return prev.0 + (upper - prev.0) * (rank - prev.1) / (count - prev.1);
        }
        prev = (le, count);
    }
    prev.0
}

/// Upper bound of the highest non-empty bucket (the histogram's bound on its maximum).
pub fn bucket_max(b: &[(f64, f64)]) -> f64 {
    let total = b.last().map_or(0.0, |x| x.1);
    b.iter().find(|(_, c)| *c >= total && total > 0.0).map_or(f64::NAN, |x| x.0)
}

/// Values of every sample of gauge `name` (any labels) in a text exposition.
pub fn gauge_values(text: &str, name: &str) -> Vec<f64> {
    let labelled = format!("{name}{{");
    let bare = format!("{name} ");
    text.lines()
        .filter(|l| l.starts_with(&labelled) || l.starts_with(&bare))
        .filter_map(|l| l.rsplit(' ').next()?.parse().ok())
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn median_and_percentiles() {
        assert_eq!(median(&[3.0, 1.0, 2.0]), 2.0);
        assert!(median(&[]).is_nan());
        let v: Vec<f64> = (1..=100).map(f64::from).collect();
        assert_eq!(percentile(&v, 0.5), 50.0);
        assert_eq!(percentile(&v, 0.99), 99.0);
        assert_eq!(percentile(&v, 1.0), 100.0);
        assert_eq!(max(&v), 100.0);
    }

    #[test]
    fn histogram_quantiles_interpolate_inside_a_bucket() {
        let text = "x_bucket{le=\"0.001\"} 0\nx_bucket{le=\"0.002\"} 50\nx_bucket{le=\"0.004\"} 100\nx_bucket{le=\"+Inf\"} 100\nx_sum 1\n";
        let b = buckets(text, "x");
        assert_eq!(b.len(), 4);
        assert!((bucket_quantile(&b, 0.5) - 0.002).abs() < 1e-12);
        assert!((bucket_quantile(&b, 0.75) - 0.003).abs() < 1e-12);
        assert_eq!(bucket_max(&b), 0.004);
        let d = bucket_diff(&b, &b);
        assert!(bucket_quantile(&d, 0.5).is_nan());
    }

    #[test]
    fn gauge_samples_of_every_label_set() {
        let text = "# HELP g x\ng{namespace=\"a\",scaledObject=\"b\"} 0.25\ng{namespace=\"a\",scaledObject=\"c\"} 1e-3\ngx 9\n";
        assert_eq!(gauge_values(text, "g"), vec![0.25, 0.001]);
    }
}
