//! `MetadataValue`: one value of a trigger's `metadata` map. KEDA's schema allows only strings;
//! ebb also accepts YAML booleans and numbers (`allowIdleConsumers: false`) and reads them as their
//! string form, so manifests written for KEDA's documentation examples apply unchanged.

use std::fmt;

use schemars::JsonSchema;
use serde::de::{self, Deserializer, Visitor};
use serde::{Deserialize, Serialize, Serializer};

/// A trigger metadata value, always held as a string.
#[derive(Clone, Debug, Default, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct MetadataValue(pub String);

impl MetadataValue {
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl From<&str> for MetadataValue {
    fn from(s: &str) -> Self {
        Self(s.to_owned())
    }
}

impl From<String> for MetadataValue {
    fn from(s: String) -> Self {
        Self(s)
    }
}

impl fmt::Display for MetadataValue {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl Serialize for MetadataValue {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&self.0)
    }
}

struct MetadataVisitor;

impl Visitor<'_> for MetadataVisitor {
    type Value = MetadataValue;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("a string, number or boolean")
    }
    fn visit_str<E: de::Error>(self, v: &str) -> Result<MetadataValue, E> {
        Ok(MetadataValue(v.to_owned()))
    }
    fn visit_string<E: de::Error>(self, v: String) -> Result<MetadataValue, E> {
        Ok(MetadataValue(v))
    }
    fn visit_bool<E: de::Error>(self, v: bool) -> Result<MetadataValue, E> {
        Ok(MetadataValue(v.to_string()))
    }
    fn visit_i64<E: de::Error>(self, v: i64) -> Result<MetadataValue, E> {
        Ok(MetadataValue(v.to_string()))
    }
    fn visit_u64<E: de::Error>(self, v: u64) -> Result<MetadataValue, E> {
        Ok(MetadataValue(v.to_string()))
    }
    fn visit_f64<E: de::Error>(self, v: f64) -> Result<MetadataValue, E> {
        Ok(MetadataValue(v.to_string()))
    }
    fn visit_unit<E: de::Error>(self) -> Result<MetadataValue, E> {
        Ok(MetadataValue(String::new()))
    }
    fn visit_none<E: de::Error>(self) -> Result<MetadataValue, E> {
        Ok(MetadataValue(String::new()))
    }
}

impl<'de> Deserialize<'de> for MetadataValue {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        d.deserialize_any(MetadataVisitor)
    }
}

impl JsonSchema for MetadataValue {
    fn schema_name() -> std::borrow::Cow<'static, str> {
        "MetadataValue".into()
    }

    fn inline_schema() -> bool {
        true
    }

    /// Structural schemas need a type on every node unless unknown fields are preserved there;
    /// preserving them is what lets booleans and numbers through. Objects and lists are rejected
    /// by the trigger parser (and so by the admission webhook) with a message naming the key.
    fn json_schema(_: &mut schemars::SchemaGenerator) -> schemars::Schema {
        schemars::json_schema!({
            "description": "A string; YAML booleans and numbers are accepted and read as strings.",
            "x-kubernetes-preserve-unknown-fields": true
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::BTreeMap;

    #[test]
    fn reads_scalars_as_strings() {
        let m: BTreeMap<String, MetadataValue> =
            serde_yaml::from_str("a: false\nb: 5\nc: '5'\nd: 0.5\ne: text\nf:\n").unwrap();
        let got: Vec<&str> = m.values().map(MetadataValue::as_str).collect();
        assert_eq!(got, ["false", "5", "5", "0.5", "text", ""]);
    }

    #[test]
    fn rejects_nested_values() {
        let r: Result<BTreeMap<String, MetadataValue>, _> = serde_yaml::from_str("a: [1, 2]\n");
        let err = r.unwrap_err().to_string();
        assert!(err.contains("a string, number or boolean"), "{err}");
    }

    #[test]
    fn serializes_as_string() {
        let v = MetadataValue("true".into());
        assert_eq!(serde_json::to_string(&v).unwrap(), "\"true\"");
    }
}
