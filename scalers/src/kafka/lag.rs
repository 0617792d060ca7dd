//! The kafka trigger's arithmetic, pure: per-partition lag from the offsets read in one poll
//! (with the rules for partitions whose group has no committed offset and for lag that does not
//! move between polls), the total, and the cap that keeps replicas at or below the partition
//! count (rounded to a factor of it with ensureEvenDistributionOfPartitions).

use std::collections::BTreeMap;

/// Where a consumer without a committed offset starts (`offsetResetPolicy`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum OffsetResetPolicy {
    Latest,
    Earliest,
}

/// The options that change the arithmetic.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct LagOptions {
    pub lag_threshold: i64,
    pub offset_reset: OffsetResetPolicy,
    pub scale_to_zero_on_invalid_offset: bool,
    pub allow_idle_consumers: bool,
    pub limit_to_partitions_with_lag: bool,
    pub exclude_persistent_lag: bool,
    /// `ensureEvenDistributionOfPartitions`: the value is raised to the next factor of the
    /// partition count × lag_threshold, so the HPA lands on a replica count that divides the
    /// partitions evenly.
    pub even_distribution: bool,
}

/// Offsets of one partition read in one poll.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PartitionOffsets {
    pub topic: String,
    pub partition: i32,
    /// The partition's latest offset (high watermark).
    pub latest: i64,
    /// The group's committed offset; `None` when the group has none for this partition.
    pub committed: Option<i64>,
    /// The partition's log start offset (earliest retained record); read only for partitions
    /// without a committed offset under `offsetResetPolicy: earliest`, `None` otherwise.
    pub log_start: Option<i64>,
}

/// Committed offsets seen at the previous poll, per (topic, partition): the state
/// `excludePersistentLag` needs, kept per trigger of one ScaledObject.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct PreviousOffsets(BTreeMap<(String, i32), i64>);

impl PreviousOffsets {
    pub fn get(&self, topic: &str, partition: i32) -> Option<i64> {
        self.0.get(&(topic.to_owned(), partition)).copied()
    }
    pub fn len(&self) -> usize {
        self.0.len()
    }
    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }
}

/// One partition's contribution.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct PartitionLag {
    /// Counted in the metric value.
    pub lag: i64,
    /// Counted for activation (includes lag excluded as persistent).
    pub lag_with_persistent: i64,
}

/// The result of one poll.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct TotalLag {
    /// The metric value (after the cap).
    pub value: i64,
    /// Compared with `activationLagThreshold`.
    pub activation_lag: i64,
    pub partitions: usize,
    pub partitions_with_lag: usize,
    /// Whether the cap lowered the value.
    pub capped: bool,
}

/// Lag of one partition. Without a committed offset: `latest` policy → 1 (0 with
/// scaleToZeroOnInvalidOffset), `earliest` → the retained records, log end − log start (the log
/// end when the log start was not read; 0 with scaleToZeroOnInvalidOffset). With `exclude_persistent_lag`, a committed offset equal to the
/// previous poll's counts 0 in the value but fully for activation. A committed offset beyond the
/// latest offset (a truncated or recreated topic) counts 0.
pub fn partition_lag(p: &PartitionOffsets, opts: &LagOptions, previous: &PreviousOffsets) -> PartitionLag {
    let Some(committed) = p.committed else {
        let lag = match (opts.offset_reset, opts.scale_to_zero_on_invalid_offset) {
            (_, true) => 0,
            (OffsetResetPolicy::Latest, false) => 1,
            (OffsetResetPolicy::Earliest, false) => {
                p.latest.saturating_sub(p.log_start.unwrap_or(0).max(0)).max(0)
            }
        };
        return PartitionLag { lag, lag_with_persistent: lag };
    };
    let lag = p.latest.saturating_sub(committed).max(0);
    if opts.exclude_persistent_lag && previous.get(&p.topic, p.partition) == Some(committed) {
        return PartitionLag { lag: 0, lag_with_persistent: lag };
    }
    PartitionLag { lag, lag_with_persistent: lag }
}

/// Total lag over the partitions of one poll, and the committed offsets to remember for the next
/// poll (only with `exclude_persistent_lag`; partitions no longer read are forgotten).
pub fn total_lag(
    parts: &[PartitionOffsets],
    opts: &LagOptions,
    previous: &PreviousOffsets,
) -> (TotalLag, PreviousOffsets) {
    let mut value: i64 = 0;
    let mut activation_lag: i64 = 0;
    let mut with_lag = 0usize;
    let mut next = PreviousOffsets::default();
    for p in parts {
        let l = partition_lag(p, opts, previous);
        value = value.saturating_add(l.lag);
        activation_lag = activation_lag.saturating_add(l.lag_with_persistent);
        if l.lag > 0 {
            with_lag += 1;
        }
        if opts.exclude_persistent_lag
            && let Some(c) = p.committed
        {
            next.0.insert((p.topic.clone(), p.partition), c);
        }
    }
    let mut capped = false;
    if !opts.allow_idle_consumers || opts.limit_to_partitions_with_lag {
        let bound = if opts.limit_to_partitions_with_lag { with_lag } else { parts.len() };
        let cap = i64::try_from(bound).unwrap_or(i64::MAX).saturating_mul(opts.lag_threshold);
        if value > cap {
            value = cap;
            capped = true;
        }
    }
    if opts.even_distribution && value > 0 {
        value = even_distribution_value(value, parts.len(), opts.lag_threshold);
    }
    let total =
        TotalLag { value, activation_lag, partitions: parts.len(), partitions_with_lag: with_lag, capped };
    (total, next)
}

/// `ensureEvenDistributionOfPartitions` (KEDA): the smallest factor f of the partition count
/// with f × threshold ≥ value (the partition count when none is), served as f × threshold.
fn even_distribution_value(value: i64, partitions: usize, threshold: i64) -> i64 {
    let n = i64::try_from(partitions).unwrap_or(i64::MAX);
    let factor = (1..=n).find(|f| n % f == 0 && f.saturating_mul(threshold) >= value).unwrap_or(n);
    factor.saturating_mul(threshold)
}

#[cfg(test)]
mod tests;
