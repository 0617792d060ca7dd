//! The scaling annotations of a ScaledObject, read one way for every component (operator
//! reconcile, HPA builder and scale loop, webhook, `ebb check`/`simulate`), with KEDA's meaning:
//!
//! - `autoscaling.keda.sh/paused`, `…/paused-scale-in`, `…/paused-scale-out`: absent means false;
//!   a value is read as Go's `strconv.ParseBool` reads it (`1 t T TRUE true True` are true,
//!   `0 f F FALSE false False` are false, nothing else — no trimming, no `yes`); any other value
//!   counts as **true**, as KEDA assumes a user who wrote the annotation wants the pause.
//! - `autoscaling.keda.sh/paused-replicas`: its presence pauses the object whatever `paused`
//!   says; its value is a base-10 32-bit integer as Go's `strconv.ParseInt(v, 10, 32)` reads it
//!   (optional sign, no spaces). KEDA fails the reconcile on a value that is not one; ebb does the
//!   same with a message naming the annotation, and also refuses a negative count (a replica count
//!   cannot be negative, and `/scale` would refuse it on every retry).

use std::collections::BTreeMap;

use k8s_openapi::api::autoscaling::v2::{HPAScalingRules, HorizontalPodAutoscalerBehavior};

use crate::constants::{
    ANNOTATION_PAUSED, ANNOTATION_PAUSED_REPLICAS, ANNOTATION_PAUSED_SCALE_IN, ANNOTATION_PAUSED_SCALE_OUT,
};

/// Go's `strconv.ParseBool`: `Some` for the twelve accepted spellings, `None` otherwise.
pub fn parse_go_bool(v: &str) -> Option<bool> {
    match v {
        "1" | "t" | "T" | "TRUE" | "true" | "True" => Some(true),
        "0" | "f" | "F" | "FALSE" | "false" | "False" => Some(false),
        _ => None,
    }
}

/// The flags read as booleans, for messages.
pub const GO_BOOLEANS: &str = "1, t, T, TRUE, true, True, 0, f, F, FALSE, false, False";

/// A pause flag's value: absent → false; a Go boolean → itself; anything else → true.
pub fn flag(value: Option<&str>) -> bool {
    value.is_some_and(|v| parse_go_bool(v).unwrap_or(true))
}

/// Why `autoscaling.keda.sh/paused-replicas` cannot be used.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[error("annotation {ANNOTATION_PAUSED_REPLICAS}: {}", self.detail())]
pub enum PausedReplicasError {
    NotANumber { value: String },
    Negative { value: i32 },
}

impl PausedReplicasError {
    /// What is wrong with the value, without the annotation's name.
    pub fn detail(&self) -> String {
        match self {
            Self::NotANumber { value } => {
                format!("{value:?} is not a replica count (expected a whole number from 0 to 2147483647)")
            }
            Self::Negative { value } => format!("{value} is negative; a replica count is 0 or more"),
        }
    }
}

/// `autoscaling.keda.sh/paused-replicas`'s value as a count.
pub fn parse_paused_replicas(v: &str) -> Result<i32, PausedReplicasError> {
    let shown: String = v.chars().take(40).collect();
    let n = v.parse::<i32>().map_err(|_| PausedReplicasError::NotANumber { value: shown })?;
    if n < 0 {
        return Err(PausedReplicasError::Negative { value: n });
    }
    Ok(n)
}

/// What the scaling annotations of one ScaledObject say.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ScalingAnnotations {
    /// The object is paused: `paused` is true, or `paused-replicas` is present (even invalid).
    pub paused: bool,
    /// The pinned count: `None` when the annotation is absent, `Some(Err)` when it is invalid.
    pub paused_replicas: Option<Result<i32, PausedReplicasError>>,
    /// `paused-scale-in`: never scale down (HPA scale-down disabled, no 1→0 in the loop).
    pub scale_in_paused: bool,
    /// `paused-scale-out`: never scale up (HPA scale-up disabled, no 0→1 in the loop).
    pub scale_out_paused: bool,
}

impl ScalingAnnotations {
    /// Reads the annotations of an object (`metadata.annotations`).
    pub fn read(annotations: Option<&BTreeMap<String, String>>) -> Self {
        let get = |k: &str| annotations.and_then(|a| a.get(k)).map(String::as_str);
        let paused_replicas = get(ANNOTATION_PAUSED_REPLICAS).map(parse_paused_replicas);
        Self {
            paused: paused_replicas.is_some() || flag(get(ANNOTATION_PAUSED)),
            paused_replicas,
            scale_in_paused: flag(get(ANNOTATION_PAUSED_SCALE_IN)),
            scale_out_paused: flag(get(ANNOTATION_PAUSED_SCALE_OUT)),
        }
    }

    /// The pinned count when the annotation is present and valid.
    pub fn pinned_replicas(&self) -> Option<i32> {
        self.paused_replicas.as_ref().and_then(|r| r.as_ref().ok().copied())
    }

    /// The problem with the annotations, if any (only `paused-replicas` can be invalid).
    pub fn error(&self) -> Option<&PausedReplicasError> {
        self.paused_replicas.as_ref().and_then(|r| r.as_ref().err())
    }

    /// The HPA behavior with the paused directions switched off (`selectPolicy: Disabled` on
    /// scale-down under `paused-scale-in`, on scale-up under `paused-scale-out`), as KEDA writes
    /// it; `None` stays `None` when no direction is paused.
    pub fn hpa_behavior(
        &self,
        behavior: Option<&HorizontalPodAutoscalerBehavior>,
    ) -> Option<HorizontalPodAutoscalerBehavior> {
        let mut b = behavior.cloned();
        let disable = |rules: &mut Option<HPAScalingRules>| {
            rules.get_or_insert_with(HPAScalingRules::default).select_policy = Some("Disabled".into());
        };
        if self.scale_in_paused {
            disable(&mut b.get_or_insert_with(HorizontalPodAutoscalerBehavior::default).scale_down);
        }
        if self.scale_out_paused {
            disable(&mut b.get_or_insert_with(HorizontalPodAutoscalerBehavior::default).scale_up);
        }
        b
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn read(pairs: &[(&str, &str)]) -> ScalingAnnotations {
        let map: BTreeMap<String, String> = pairs.iter().map(|(k, v)| ((*k).into(), (*v).into())).collect();
        ScalingAnnotations::read(Some(&map))
    }

    /// Go's `strconv.ParseBool` accepts exactly these spellings (its documentation lists
    /// "1, t, T, TRUE, true, True, 0, f, F, FALSE, false, False"; any other value is an error).
    #[test]
    fn go_parse_bool_table() {
        let table: &[(&str, Option<bool>)] = &[
            ("1", Some(true)),
            ("t", Some(true)),
            ("T", Some(true)),
            ("TRUE", Some(true)),
            ("true", Some(true)),
            ("True", Some(true)),
            ("0", Some(false)),
            ("f", Some(false)),
            ("F", Some(false)),
            ("FALSE", Some(false)),
            ("false", Some(false)),
            ("False", Some(false)),
            ("tRUE", None),
            ("yes", None),
            ("no", None),
            ("on", None),
            (" true", None),
            ("true ", None),
            ("", None),
            ("2", None),
        ];
        for (v, want) in table {
            assert_eq!(parse_go_bool(v), *want, "{v:?}");
        }
    }

    /// KEDA: a `paused` value that is not a boolean means the user wants the pause.
    #[test]
    fn pause_flags_table() {
        let table: &[(Option<&str>, bool)] = &[
            (None, false),
            (Some("true"), true),
            (Some("1"), true),
            (Some("T"), true),
            (Some("false"), false),
            (Some("0"), false),
            (Some("False"), false),
            (Some("yes"), true),
            (Some(""), true),
            (Some("no"), true),
            (Some("fALSE"), true),
        ];
        for (v, want) in table {
            assert_eq!(flag(*v), *want, "{v:?}");
            let key_table = [ANNOTATION_PAUSED, ANNOTATION_PAUSED_SCALE_IN, ANNOTATION_PAUSED_SCALE_OUT];
            for key in key_table {
                let a = match v {
                    Some(v) => read(&[(key, v)]),
                    None => read(&[]),
                };
                let got = match key {
                    ANNOTATION_PAUSED => a.paused,
                    ANNOTATION_PAUSED_SCALE_IN => a.scale_in_paused,
                    _ => a.scale_out_paused,
                };
                assert_eq!(got, *want, "{key}: {v:?}");
            }
        }
    }

    /// `strconv.ParseInt(v, 10, 32)`: optional sign, decimal digits, 32-bit range; ebb also
    /// refuses negatives.
    #[test]
    fn paused_replicas_table() {
        let ok: &[(&str, i32)] = &[("0", 0), ("4", 4), ("+3", 3), ("007", 7), ("2147483647", i32::MAX)];
        for (v, want) in ok {
            assert_eq!(parse_paused_replicas(v), Ok(*want), "{v:?}");
        }
        for v in ["", " 4", "4 ", "four", "1.5", "0x10", "2147483648", "1e3"] {
            assert!(matches!(parse_paused_replicas(v), Err(PausedReplicasError::NotANumber { .. })), "{v:?}");
        }
        assert_eq!(parse_paused_replicas("-1"), Err(PausedReplicasError::Negative { value: -1 }));
        let e = parse_paused_replicas("-1").unwrap_err().to_string();
        assert_eq!(
            e,
            "annotation autoscaling.keda.sh/paused-replicas: -1 is negative; a replica count is 0 or more"
        );
        let e = parse_paused_replicas("lots").unwrap_err().to_string();
        assert!(e.contains("autoscaling.keda.sh/paused-replicas") && e.contains("\"lots\""), "{e}");
    }

    #[test]
    fn paused_directions_disable_the_hpa_policies() {
        let a = read(&[(ANNOTATION_PAUSED_SCALE_IN, "1")]);
        let b = a.hpa_behavior(None).unwrap();
        assert_eq!(b.scale_down.unwrap().select_policy.as_deref(), Some("Disabled"));
        assert!(b.scale_up.is_none());
        assert_eq!(read(&[(ANNOTATION_PAUSED_SCALE_OUT, "false")]).hpa_behavior(None), None);
    }

    #[test]
    fn paused_replicas_pauses_whatever_paused_says() {
        let a = read(&[(ANNOTATION_PAUSED_REPLICAS, "2"), (ANNOTATION_PAUSED, "false")]);
        assert!(a.paused);
        assert_eq!(a.pinned_replicas(), Some(2));
        assert_eq!(a.error(), None);
        let a = read(&[(ANNOTATION_PAUSED_REPLICAS, "-1")]);
        assert!(a.paused);
        assert_eq!(a.pinned_replicas(), None);
        assert!(a.error().is_some());
        let a = ScalingAnnotations::read(None);
        assert_eq!(
            a,
            ScalingAnnotations {
                paused: false,
                paused_replicas: None,
                scale_in_paused: false,
                scale_out_paused: false
            }
        );
    }
}
