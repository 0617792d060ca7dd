//! `partitionLimitation`: the partition ids a kafka trigger is scoped to, written as a
//! comma-separated list of ids and inclusive ranges (`1,2,10-20,31`). Kept as ranges, so a wide
//! range costs nothing.

use std::fmt;

/// A set of partition ids.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PartitionSet {
    /// Inclusive ranges, in the order written.
    ranges: Vec<(i32, i32)>,
}

impl PartitionSet {
    /// Parses `1,2,10-20,31`. Every term must be a non-negative id or an ascending range.
    pub fn parse(s: &str) -> Result<Self, String> {
        let mut ranges = Vec::new();
        for term in s.split(',') {
            let term = term.trim();
            if term.is_empty() {
                return Err(format!("empty entry in {s:?}; expected ids and ranges such as \"1,2,10-20\""));
            }
            let id = |t: &str| -> Result<i32, String> {
                t.trim().parse::<i32>().ok().filter(|n| *n >= 0).ok_or_else(|| {
                    format!("{t:?} in {s:?} is not a partition id (a non-negative integer) or a range like \"10-20\"")
                })
            };
            match term.split_once('-') {
                None => {
                    let n = id(term)?;
                    ranges.push((n, n));
                }
                Some((a, b)) => {
                    let (lo, hi) = (id(a)?, id(b)?);
                    if lo > hi {
                        return Err(format!(
                            "range {term:?} in {s:?} is reversed; write it as \"{hi}-{lo}\""
                        ));
                    }
                    ranges.push((lo, hi));
                }
            }
        }
        Ok(Self { ranges })
    }

    pub fn contains(&self, partition: i32) -> bool {
        self.ranges.iter().any(|(lo, hi)| (*lo..=*hi).contains(&partition))
    }
}

impl fmt::Display for PartitionSet {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for (i, (lo, hi)) in self.ranges.iter().enumerate() {
            if i > 0 {
                f.write_str(",")?;
            }
            if lo == hi { write!(f, "{lo}")? } else { write!(f, "{lo}-{hi}")? }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_ids_and_ranges() {
        let s = PartitionSet::parse("1,2,10-20,31").unwrap();
        let members: Vec<i32> = (0..40).filter(|p| s.contains(*p)).collect();
        let mut want = vec![1, 2];
        want.extend(10..=20);
        want.push(31);
        assert_eq!(members, want);
        assert_eq!(s.to_string(), "1,2,10-20,31");
        let spaced = PartitionSet::parse(" 0 , 3 - 4 ").unwrap();
        assert_eq!((0..6).filter(|p| spaced.contains(*p)).collect::<Vec<_>>(), vec![0, 3, 4]);
        let wide = PartitionSet::parse("0-2147483647").unwrap();
        assert!(wide.contains(i32::MAX) && !wide.contains(-1));
    }

    #[test]
    fn rejects_bad_terms_naming_them() {
        let cases: &[(&str, &str)] = &[
            ("1,,2", "empty entry in \"1,,2\""),
            ("1,x", "\"x\" in \"1,x\" is not a partition id"),
            ("5-3", "range \"5-3\" in \"5-3\" is reversed; write it as \"3-5\""),
            ("1-2-3", "\"2-3\" in \"1-2-3\" is not a partition id"),
            ("-1", "\"\" in \"-1\" is not a partition id"),
            ("99999999999", "\"99999999999\" in \"99999999999\" is not a partition id"),
        ];
        for (input, want) in cases {
            let e = PartitionSet::parse(input).unwrap_err();
            assert!(e.starts_with(want), "{input}: {e}");
        }
    }
}
