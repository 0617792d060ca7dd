//! Tests of the shard elections' plan (fair share, hand-over, expiry, stale membership Leases), the
//! watch filter and the sharding flags.

use std::collections::BTreeSet;
use std::time::Duration;

use k8s_openapi::api::coordination::v1::{Lease, LeaseSpec};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::{MicroTime, ObjectMeta};
use k8s_openapi::jiff::{SignedDuration, Timestamp};

use super::ShardFilter;
use super::manager::{ShardConfig, plan};
use crate::leader::LeaderConfig;

fn cfg(shards: u32) -> ShardConfig {
    ShardConfig {
        leader: LeaderConfig {
            lease_duration: Duration::from_secs(3),
            renew_deadline: Duration::from_secs(2),
            retry_period: Duration::from_millis(500),
            ..LeaderConfig::new("ns", "ebb", "me")
        },
        shards,
        internal_address: "10.0.0.1:9666".into(),
    }
}

/// A Lease named `name` held by `holder`, renewed `age_ms` before `now`, for 3 s.
fn lease(name: &str, holder: &str, now: Timestamp, age_ms: i64) -> Lease {
    let renewed = now.checked_sub(SignedDuration::from_millis(age_ms)).unwrap();
    Lease {
        metadata: ObjectMeta { name: Some(name.into()), ..Default::default() },
        spec: Some(LeaseSpec {
            holder_identity: Some(holder.into()),
            renew_time: Some(MicroTime(renewed)),
            lease_duration_seconds: Some(3),
            ..Default::default()
        }),
    }
}

#[test]
fn alone_a_replica_takes_every_shard() {
    let now = Timestamp::now();
    let p = plan(&cfg(4), "me", &BTreeSet::new(), &[], now);
    assert_eq!((p.live, p.fair, p.release.len()), (1, 4, 0));
    assert_eq!(p.acquire.iter().copied().collect::<BTreeSet<_>>(), BTreeSet::from([0, 1, 2, 3]));
    assert_eq!(p.room, 4);
}

#[test]
fn a_newcomer_makes_holders_give_up_their_extra_shards() {
    let now = Timestamp::now();
    // "me" holds all 12; "b" has just joined (membership only).
    let held: BTreeSet<u32> = (0..12).collect();
    let mut leases: Vec<Lease> = (0..12).map(|k| lease(&format!("ebb-shard-{k}"), "me", now, 100)).collect();
    leases.push(lease("ebb-member-b", "b", now, 100));
    let p = plan(&cfg(12), "me", &held, &leases, now);
    assert_eq!((p.live, p.fair), (2, 6));
    assert_eq!(p.release, vec![6, 7, 8, 9, 10, 11], "the highest-numbered extra shards");
    assert!(p.acquire.is_empty() && p.room == 0);
    // "b", seeing them free (released), takes up to its share.
    let mut after = leases.clone();
    for (k, l) in after.iter_mut().enumerate().take(12).skip(6) {
        *l = lease(&format!("ebb-shard-{k}"), "", now, 0);
    }
    let pb = plan(&cfg(12), "b", &BTreeSet::new(), &after, now);
    assert_eq!(pb.fair, 6);
    assert_eq!(pb.acquire.iter().copied().collect::<BTreeSet<_>>(), (6..12).collect());
}

#[test]
fn expired_leases_of_a_dead_replica_are_free_and_it_no_longer_counts() {
    let now = Timestamp::now();
    let mut leases = vec![
        lease("ebb-member-me", "me", now, 100),
        lease("ebb-member-dead", "dead", now, 3_600),
        lease("ebb-shard-0", "me", now, 100),
        lease("ebb-shard-1", "dead", now, 3_600),
        lease("ebb-shard-2", "dead", now, 3_600),
        lease("ebb-shard-3", "me", now, 100),
    ];
    let p = plan(&cfg(4), "me", &BTreeSet::from([0, 3]), &leases, now);
    assert_eq!((p.live, p.fair), (1, 4));
    assert_eq!(p.acquire.iter().copied().collect::<BTreeSet<_>>(), BTreeSet::from([1, 2]));
    // While "dead"'s Leases are still valid, its shards are not free.
    leases[1] = lease("ebb-member-dead", "dead", now, 1_000);
    leases[3] = lease("ebb-shard-1", "dead", now, 1_000);
    leases[4] = lease("ebb-shard-2", "dead", now, 1_000);
    let p = plan(&cfg(4), "me", &BTreeSet::from([0, 3]), &leases, now);
    assert_eq!((p.live, p.fair), (2, 2));
    assert!(p.acquire.is_empty() && p.release.is_empty(), "{p:?}");
}

#[test]
fn never_more_than_the_fair_share_is_taken() {
    let now = Timestamp::now();
    let leases = vec![lease("ebb-member-b", "b", now, 0), lease("ebb-member-c", "c", now, 0)];
    let p = plan(&cfg(12), "me", &BTreeSet::from([0]), &leases, now);
    assert_eq!((p.live, p.fair), (3, 4));
    assert_eq!(p.room, 3, "{p:?}");
    assert_eq!(p.acquire.len(), 11, "every free shard is a candidate, in case others win some: {p:?}");
    assert!(!p.acquire.contains(&0));
}

#[test]
fn the_filter_keeps_one_shard() {
    let f = ShardFilter { shard: 8, shards: 12 };
    // ebb_api::shard pins shard_of("ns", "so-0", 12) == 8.
    assert!(f.owns("ns", "so-0"));
    let owned = (0..120).filter(|i| f.owns("ns", &format!("so-{i}"))).count();
    assert!(owned > 0 && owned < 120);
}

#[test]
fn flags_default_to_one_shard() {
    use clap::Parser;
    let args = crate::Args::try_parse_from(["ebb-operator"]).unwrap();
    assert_eq!(
        (args.sharding.shards, args.sharding.internal_advertise_address, args.sharding.filter),
        (1, None, None)
    );
    let args = crate::Args::try_parse_from([
        "ebb-operator",
        "--shards=12",
        "--internal-addr=0.0.0.0:9666",
        "--internal-advertise-address=10.1.2.3:9666",
    ])
    .unwrap();
    assert_eq!(args.sharding.shards, 12);
    assert_eq!(super::serve::advertise_address(&args).unwrap(), "10.1.2.3:9666");
    // The Pod IP (downward API) with the internal port; IPv6 in brackets.
    for (ip, expected) in [("10.4.0.7", "10.4.0.7:9666"), ("fd00::7", "[fd00::7]:9666")] {
        let args =
            crate::Args::try_parse_from(["ebb-operator", "--shards=3", "--internal-addr=0.0.0.0:9666"])
                .map(|mut a| {
                    a.sharding.pod_ip = ip.parse().ok();
                    a
                })
                .unwrap();
        assert_eq!(super::serve::advertise_address(&args).unwrap(), expected);
    }
    // Neither an address nor a Pod IP, and an unspecified --internal-addr: one clear error.
    let args =
        crate::Args::try_parse_from(["ebb-operator", "--shards=3", "--internal-addr=0.0.0.0:9666"]).unwrap();
    if args.sharding.pod_ip.is_none() {
        let e = super::serve::advertise_address(&args).unwrap_err().to_string();
        assert!(e.contains("--pod-ip (POD_IP)"), "{e}");
    }
    assert!(crate::Args::try_parse_from(["ebb-operator", "--pod-ip=not-an-ip"]).is_err());
    assert!(crate::Args::try_parse_from(["ebb-operator", "--shards=0"]).is_err());
}

#[test]
fn membership_leases_of_long_gone_replicas_are_deleted() {
    let now = Timestamp::now();
    let mut old = lease("ebb-member-old", "old", now, 3_000 * 21);
    old.metadata.resource_version = Some("7".into());
    let mut recent = lease("ebb-member-recent", "recent", now, 3_000 * 5);
    recent.metadata.resource_version = Some("8".into());
    let mut mine = lease("ebb-member-me", "me", now, 3_000 * 30);
    mine.metadata.resource_version = Some("9".into());
    let p = plan(&cfg(4), "me", &BTreeSet::new(), &[old, recent, mine], now);
    assert_eq!(p.stale_members, vec![("ebb-member-old".to_owned(), "7".to_owned())]);
    assert_eq!(p.live, 1, "expired members do not count");
}
