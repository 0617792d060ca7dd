//! The conversion machinery from `k8s-pb` (prost) messages to `k8s-openapi` values: the [`Conv`]
//! trait, its impls for scalars, collections and the special apimachinery types (Time, Quantity,
//! IntOrString, FieldsV1, bytes), and the `convert!` macro that derives a field-by-field impl
//! for every message/struct pair listed in the sibling table modules.
//!
//! Presence rules, chosen so the result serializes like the Go object would:
//! - an absent message field becomes `None`; a present one (even empty) becomes `Some`, because
//!   Go writes non-pointer struct fields always and Go's JSON prints them (as `{}` when empty);
//! - empty repeated and map fields become `None` (Go's `omitempty`);
//! - scalars of Go *pointer* fields keep their value, zero included (`replicas: 0` is real);
//! - scalars of Go *non-pointer* `omitempty` fields are listed after `omit` in the tables: Go's
//!   protobuf encoder always writes them, so a zero value means "unset" and is dropped;
//! - a zero `Time` or `MicroTime` (the empty message Go writes for an unset timestamp) becomes
//!   `None`.

use std::collections::BTreeMap;

use k8s_openapi::ByteString;
use k8s_openapi::apimachinery::pkg::api::resource::Quantity;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::{FieldsV1, MicroTime, Time};
use k8s_openapi::apimachinery::pkg::util::intstr::IntOrString;
use k8s_openapi::jiff::Timestamp;
use k8s_pb::apimachinery::pkg::api::resource as pb_resource;
use k8s_pb::apimachinery::pkg::apis::meta::v1 as pb_meta;
use k8s_pb::apimachinery::pkg::util::intstr as pb_intstr;

/// Conversion of one decoded protobuf value into its `k8s-openapi` counterpart. The error is a
/// one-line reason; the caller adds the kind.
pub(super) trait Conv<T> {
    fn conv(self) -> Result<T, String>;
}

/// Drops the zero value of a Go non-pointer `omitempty` scalar.
pub(super) fn omit_zero<T: Default + PartialEq>(value: Option<T>) -> Option<T> {
    value.filter(|v| *v != T::default())
}

macro_rules! scalar {
    ($($t:ty),*) => {$(
        impl Conv<$t> for $t {
            fn conv(self) -> Result<$t, String> {
                Ok(self)
            }
        }
        impl Conv<$t> for Option<$t> {
            fn conv(self) -> Result<$t, String> {
                Ok(self.unwrap_or_default())
            }
        }
        impl Conv<Option<$t>> for Option<$t> {
            fn conv(self) -> Result<Option<$t>, String> {
                Ok(self)
            }
        }
    )*};
}
scalar!(String, i32, i64, bool);

/// The two `Option` impls every message type gets: a required target field takes the default
/// of an absent message, an optional one stays `None`.
macro_rules! option_impls {
    ($s:path => $d:path) => {
        impl Conv<$d> for Option<$s> {
            fn conv(self) -> Result<$d, String> {
                self.unwrap_or_default().conv()
            }
        }
        impl Conv<Option<$d>> for Option<$s> {
            fn conv(self) -> Result<Option<$d>, String> {
                self.map(Conv::conv).transpose()
            }
        }
    };
}
pub(super) use option_impls;

impl<T: Conv<U>, U> Conv<Vec<U>> for Vec<T> {
    fn conv(self) -> Result<Vec<U>, String> {
        self.into_iter().map(Conv::conv).collect()
    }
}

impl<T: Conv<U>, U> Conv<Option<Vec<U>>> for Vec<T> {
    fn conv(self) -> Result<Option<Vec<U>>, String> {
        if self.is_empty() { Ok(None) } else { self.conv().map(Some) }
    }
}

impl<T: Conv<U>, U> Conv<BTreeMap<String, U>> for BTreeMap<String, T> {
    fn conv(self) -> Result<BTreeMap<String, U>, String> {
        self.into_iter().map(|(k, v)| Ok((k, v.conv()?))).collect()
    }
}

impl<T: Conv<U>, U> Conv<Option<BTreeMap<String, U>>> for BTreeMap<String, T> {
    fn conv(self) -> Result<Option<BTreeMap<String, U>>, String> {
        if self.is_empty() { Ok(None) } else { self.conv().map(Some) }
    }
}

impl Conv<ByteString> for Vec<u8> {
    fn conv(self) -> Result<ByteString, String> {
        Ok(ByteString(self))
    }
}

impl Conv<Quantity> for pb_resource::Quantity {
    fn conv(self) -> Result<Quantity, String> {
        Ok(Quantity(self.string.unwrap_or_default()))
    }
}
option_impls!(pb_resource::Quantity => Quantity);

impl Conv<IntOrString> for pb_intstr::IntOrString {
    fn conv(self) -> Result<IntOrString, String> {
        match self.r#type.unwrap_or(0) {
            0 => Ok(IntOrString::Int(self.int_val.unwrap_or_default())),
            1 => Ok(IntOrString::String(self.str_val.unwrap_or_default())),
            other => Err(format!("IntOrString has unknown type {other}")),
        }
    }
}
option_impls!(pb_intstr::IntOrString => IntOrString);

impl Conv<FieldsV1> for pb_meta::FieldsV1 {
    fn conv(self) -> Result<FieldsV1, String> {
        let raw = self.raw.unwrap_or_default();
        if raw.is_empty() {
            return Ok(FieldsV1(serde_json::Value::Object(Default::default())));
        }
        serde_json::from_slice(&raw).map(FieldsV1).map_err(|e| format!("fieldsV1 is not JSON: {e}"))
    }
}
option_impls!(pb_meta::FieldsV1 => FieldsV1);

/// Seconds of Go's zero `time.Time` (0001-01-01T00:00:00Z), in case an encoder writes it.
const GO_ZERO_TIME_SECONDS: i64 = -62_135_596_800;

fn timestamp(t: pb_meta::Time) -> Result<Option<Timestamp>, String> {
    seconds_nanos(t.seconds, t.nanos)
}

fn seconds_nanos(seconds: Option<i64>, nanos: Option<i32>) -> Result<Option<Timestamp>, String> {
    let seconds = seconds.unwrap_or_default();
    let nanos = nanos.unwrap_or_default();
    if nanos == 0 && (seconds == 0 || seconds == GO_ZERO_TIME_SECONDS) {
        return Ok(None);
    }
    Timestamp::new(seconds, nanos).map(Some).map_err(|e| format!("timestamp out of range: {e}"))
}

impl Conv<Option<Time>> for Option<pb_meta::Time> {
    fn conv(self) -> Result<Option<Time>, String> {
        Ok(match self {
            Some(t) => timestamp(t)?.map(Time),
            None => None,
        })
    }
}

impl Conv<Time> for Option<pb_meta::Time> {
    fn conv(self) -> Result<Time, String> {
        Ok(Time(self.map(timestamp).transpose()?.flatten().unwrap_or(Timestamp::UNIX_EPOCH)))
    }
}

impl Conv<Option<MicroTime>> for Option<pb_meta::MicroTime> {
    fn conv(self) -> Result<Option<MicroTime>, String> {
        Ok(match self {
            Some(t) => seconds_nanos(t.seconds, t.nanos)?.map(MicroTime),
            None => None,
        })
    }
}

impl Conv<MicroTime> for Option<pb_meta::MicroTime> {
    fn conv(self) -> Result<MicroTime, String> {
        let t = match self {
            Some(t) => seconds_nanos(t.seconds, t.nanos)?,
            None => None,
        };
        Ok(MicroTime(t.unwrap_or(Timestamp::UNIX_EPOCH)))
    }
}

/// Derives [`Conv`] impls from a table of message/struct pairs.
///
/// `convert! { pb => oa; Name { a, b = pb_b; omit c; from sub { d; omit e } } ... }` converts
/// `pb::Name` into `oa::Name` (`PbName as OaName` when the spellings differ): `a` from `a`, `b`
/// from `pb_b`, `c` with its zero dropped (see [`omit_zero`]), and `d`, `e` from the embedded
/// message `sub` (Go's inlined structs: `VolumeSource`, `ProbeHandler`, ...). No struct update
/// syntax: the compiler checks that every field of the target is listed.
macro_rules! convert {
    ($p:ident => $o:ident; $($src:ident $(as $dst:ident)? { $($body:tt)* })*) => {
        $( convert!(@pair $p $o $src [$($dst)?] { $($body)* }); )*
    };
    (@pair $p:ident $o:ident $src:ident [] $body:tt) => {
        convert!(@impl $p::$src => $o::$src $body);
    };
    (@pair $p:ident $o:ident $src:ident [$dst:ident] $body:tt) => {
        convert!(@impl $p::$src => $o::$dst $body);
    };
    (@impl $p:ident::$s:ident => $o:ident::$d:ident {
        $($f:ident $(= $pf:ident)?),* $(,)?
        $(; omit $($of:ident $(= $opf:ident)?),+ $(,)?)?
        $(; from $sub:ident { $($sf:ident),* $(,)? $(; omit $($sof:ident),+ $(,)?)? })?
    }) => {
        impl Conv<$o::$d> for $p::$s {
            #[allow(unused_variables)]
            fn conv(self) -> Result<$o::$d, String> {
                let src = self;
                $(let $sub = src.$sub.unwrap_or_default();)?
                Ok($o::$d {
                    $($f: Conv::conv(convert!(@field src $f $($pf)?))?,)*
                    $($($of: omit_zero(convert!(@field src $of $($opf)?)),)+)?
                    $(
                        $($sf: Conv::conv($sub.$sf)?,)*
                        $($($sof: omit_zero($sub.$sof),)+)?
                    )?
                })
            }
        }
        option_impls!($p::$s => $o::$d);
    };
    (@field $v:ident $f:ident) => {
        $v.$f
    };
    (@field $v:ident $f:ident $pf:ident) => {
        $v.$pf
    };
}
pub(super) use convert;
