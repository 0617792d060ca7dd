//! External metric names: `s<triggerIndex>-<scaler part>` with `/ . : % ( )` replaced by `-`,
//! exactly as KEDA names them, so HPAs, dashboards and alerts written for KEDA keep matching.

/// Characters KEDA replaces with `-` in metric names.
const REPLACED: [char; 6] = ['/', '.', ':', '%', '(', ')'];

/// Replaces the characters a metric name may not carry with `-`.
pub fn normalize(s: &str) -> String {
    s.chars().map(|c| if REPLACED.contains(&c) { '-' } else { c }).collect()
}

/// `s<index>-<normalized scaler part>`.
pub fn with_index(trigger_index: usize, scaler_part: &str) -> String {
    format!("s{trigger_index}-{}", normalize(scaler_part))
}

/// The cron scaler's part: `cron-<timezone>-<start>-<end>` with spaces removed and `*` → `x`.
pub fn cron_part(timezone: &str, start: &str, end: &str) -> String {
    let squash = |e: &str| {
        e.chars().filter(|c| !c.is_whitespace()).map(|c| if c == '*' { 'x' } else { c }).collect::<String>()
    };
    format!("cron-{timezone}-{}-{}", squash(start), squash(end))
}

/// Splits `s<index>-rest` into the trigger index, if the name has that shape.
pub fn trigger_index(metric_name: &str) -> Option<usize> {
    let rest = metric_name.strip_prefix('s')?;
    let (idx, _) = rest.split_once('-')?;
    idx.parse().ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn seed_cron_name_matches_exactly() {
        let part = cron_part("Asia/Seoul", "00,15,30,45 * * * *", "05,20,35,50 * * * *");
        assert_eq!(with_index(0, &part), "s0-cron-Asia-Seoul-00,15,30,45xxxx-05,20,35,50xxxx");
    }

    #[test]
    fn replaces_every_forbidden_character() {
        assert_eq!(normalize("a/b.c:d%e(f)g"), "a-b-c-d-e-f-g");
        assert_eq!(with_index(3, "aws-sqs-orders.fifo"), "s3-aws-sqs-orders-fifo");
    }

    #[test]
    fn index_round_trips() {
        assert_eq!(trigger_index("s12-prometheus"), Some(12));
        assert_eq!(trigger_index("prometheus"), None);
    }
}
