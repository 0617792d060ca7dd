//! Sharding of ScaledObjects across operator replicas: which shard an object belongs to, and the
//! names and annotation of the shard Leases. The operator (which runs the loops of the shards it
//! holds) and the metrics API server (which routes a value query to the holder of the object's
//! shard) must agree on both, so the one definition lives here.
//!
//! The shard of `namespace/name` is the 64-bit FNV-1a hash of the UTF-8 bytes of
//! `"<namespace>/<name>"`, modulo the number of shards. FNV-1a is fixed by its specification
//! (offset basis `0xcbf29ce484222325`, prime `0x100000001b3`), not seeded per process like the
//! standard library's hasher, so every replica and every version computes the same shard; the
//! tests pin known values.

/// Annotation on a shard Lease naming the holder's internal endpoint (`HOST:PORT`).
pub const INTERNAL_ADDRESS_ANNOTATION: &str = "ebb.keda.sh/internal-address";

const FNV_OFFSET: u64 = 0xcbf2_9ce4_8422_2325;
const FNV_PRIME: u64 = 0x0000_0100_0000_01b3;

/// 64-bit FNV-1a of `bytes`.
pub fn fnv1a64(bytes: &[u8]) -> u64 {
    bytes.iter().fold(FNV_OFFSET, |h, b| (h ^ u64::from(*b)).wrapping_mul(FNV_PRIME))
}

/// The shard (`0..shards`) of the ScaledObject `namespace/name`; 0 when `shards` is 0 or 1.
pub fn shard_of(namespace: &str, name: &str, shards: u32) -> u32 {
    if shards <= 1 {
        return 0;
    }
    let mut key = Vec::with_capacity(namespace.len() + 1 + name.len());
    key.extend_from_slice(namespace.as_bytes());
    key.push(b'/');
    key.extend_from_slice(name.as_bytes());
    // The remainder is below `shards`, a u32.
    u32::try_from(fnv1a64(&key) % u64::from(shards)).unwrap_or(0)
}

/// Name of the Lease of shard `k` for the election Lease `lease_name`.
pub fn shard_lease_name(lease_name: &str, k: u32) -> String {
    format!("{lease_name}-shard-{k}")
}

/// Prefix of the membership Leases of the replicas electing on `lease_name`.
pub fn member_lease_prefix(lease_name: &str) -> String {
    format!("{lease_name}-member-")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fnv1a64_matches_the_published_test_vectors() {
        // From the FNV reference test suite (Fowler/Noll/Vo, "FNV-1a 64-bit").
        assert_eq!(fnv1a64(b""), 0xcbf2_9ce4_8422_2325);
        assert_eq!(fnv1a64(b"a"), 0xaf63_dc4c_8601_ec8c);
        assert_eq!(fnv1a64(b"foobar"), 0x8594_4171_f739_67e8);
    }

    #[test]
    fn shards_are_stable_and_in_range() {
        assert_eq!(shard_of("default", "web", 1), 0);
        assert_eq!(shard_of("default", "web", 0), 0);
        for s in [2, 3, 12, 1000] {
            for i in 0..200 {
                let name = format!("so-{i}");
                let k = shard_of("ns", &name, s);
                assert!(k < s);
                assert_eq!(k, shard_of("ns", &name, s));
            }
        }
        // The separator keeps "a/bc" and "ab/c" apart.
        assert_ne!(fnv1a64(b"a/bc"), fnv1a64(b"ab/c"));
        // Pinned: a change of the function would move every object to another shard.
        assert_eq!(shard_of("ns", "so-0", 12), 8);
    }

    #[test]
    fn lease_names() {
        assert_eq!(shard_lease_name("ebb-operator", 3), "ebb-operator-shard-3");
        assert_eq!(member_lease_prefix("ebb-operator"), "ebb-operator-member-");
    }
}
