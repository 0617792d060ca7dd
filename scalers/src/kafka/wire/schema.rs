//! A walk over a response frame by its wire schema, run before `kafka-protocol` decodes it.
//! The decoder reserves `Vec::with_capacity(count)` from each array's wire count, so a frame of
//! a few bytes claiming 2³¹ elements makes it ask for gigabytes, and a failed allocation aborts
//! the process. The walk reads the same bytes the decoder will read, in the same order, and
//! refuses the frame when an array claims more elements than the bytes left could hold (each
//! element needs at least its minimum wire size), when a length runs past the end, or when the
//! decoded values would take more than the caller's bound (elements × the size of the Rust value
//! they decode into). What passes the walk decodes into memory proportional to the frame.
//!
//! The tables in `schemas` mirror `kafka-protocol` 0.18's decoders field by field (version
//! ranges, compact encodings from the first flexible version, tagged fields it decodes by tag);
//! the tests check them against the crate's own encoder for every version.

use std::mem::size_of;

/// A field's wire type.
#[derive(Clone, Copy, Debug)]
pub enum Ty {
    Bool,
    I16,
    I32,
    I64,
    Uuid,
    /// A string (classic: i16 length, -1 = null; compact: varint length + 1, 0 = null).
    Str,
    /// Bytes (classic: i32 length; compact: varint length + 1).
    Bytes,
    /// An array (classic: i32 count, -1 = null; compact: varint count + 1, 0 = null).
    Array(Elem),
}

/// An array's element type.
#[derive(Clone, Copy, Debug)]
pub enum Elem {
    I32,
    Str,
    Struct(&'static Schema),
}

/// One field, present in versions `min..=max`.
#[derive(Clone, Copy, Debug)]
pub struct Field {
    pub ty: Ty,
    pub min: i16,
    pub max: i16,
}

/// A field present from version `min` on.
pub const fn since(ty: Ty, min: i16) -> Field {
    Field { ty, min, max: i16::MAX }
}

/// A field present in versions `min..=max`.
pub const fn between(ty: Ty, min: i16, max: i16) -> Field {
    Field { ty, min, max }
}

/// A message or nested struct.
#[derive(Debug)]
pub struct Schema {
    pub name: &'static str,
    /// Size of the Rust value it decodes into (what one array element costs).
    pub size: usize,
    /// First flexible version (compact encodings, tagged fields); `i16::MAX` when none.
    pub flexible: i16,
    pub fields: &'static [Field],
    /// Tagged fields the decoder reads by tag (from the frame itself, not from the tagged
    /// field's declared size); any other tag is kept as raw bytes.
    pub tagged: &'static [(u32, Ty)],
}

/// Memory one unknown tagged field costs once decoded (a `BTreeMap<i32, Bytes>` entry).
const TAGGED_FIELD_COST: usize = 64;

/// Walks `buf` as a `header` at `header_version` followed by `body` at `version`; returns the
/// estimated memory of the decoded values. `decoded_limit` bounds that estimate.
pub fn check(
    buf: &[u8],
    header: (&Schema, i16),
    body: (&Schema, i16),
    decoded_limit: usize,
) -> Result<usize, String> {
    let mut w = Walk { buf, pos: 0, decoded: 0, limit: decoded_limit };
    w.schema(header.0, header.1)?;
    w.schema(body.0, body.1)?;
    Ok(w.decoded)
}

struct Walk<'a> {
    buf: &'a [u8],
    pos: usize,
    decoded: usize,
    limit: usize,
}

impl Walk<'_> {
    fn remaining(&self) -> usize {
        self.buf.len() - self.pos
    }

    fn skip(&mut self, n: usize, what: &str) -> Result<(), String> {
        if n > self.remaining() {
            return Err(format!(
                "{what} of {n} bytes at offset {} runs past the end of the {}-byte frame",
                self.pos,
                self.buf.len()
            ));
        }
        self.pos += n;
        Ok(())
    }

    fn fixed<const N: usize>(&mut self, what: &str) -> Result<[u8; N], String> {
        let start = self.pos;
        self.skip(N, what)?;
        let mut out = [0u8; N];
        out.copy_from_slice(&self.buf[start..self.pos]);
        Ok(out)
    }

    /// An unsigned varint read exactly as the decoder reads it: at most 5 bytes, high bits of
    /// the fifth dropped.
    fn uvarint(&mut self) -> Result<u32, String> {
        let mut value = 0u32;
        for i in 0..5 {
            let [b] = self.fixed::<1>("varint")?;
            value |= (u32::from(b) & 0x7f) << (i * 7);
            if b < 0x80 {
                break;
            }
        }
        Ok(value)
    }

    fn cost(&mut self, n: usize, each: usize, what: &str) -> Result<(), String> {
        self.decoded = n
            .checked_mul(each)
            .and_then(|c| c.checked_add(self.decoded))
            .filter(|d| *d <= self.limit)
            .ok_or_else(|| format!("{what}: decoding would take more than the {}-byte bound", self.limit))?;
        Ok(())
    }

    /// A length or count: `None` for null.
    fn length(&mut self, flexible: bool, classic_i16: bool, what: &str) -> Result<Option<usize>, String> {
        let n = if flexible {
            i64::from(self.uvarint()?) - 1
        } else if classic_i16 {
            i64::from(i16::from_be_bytes(self.fixed::<2>(what)?))
        } else {
            i64::from(i32::from_be_bytes(self.fixed::<4>(what)?))
        };
        match n {
            -1 => Ok(None),
            n if n < -1 => Err(format!("{what} has negative length {n}")),
            // n ≤ u32::MAX, which fits usize on every target this builds for.
            n => Ok(Some(usize::try_from(n).map_err(|_| format!("{what} length {n} is too large"))?)),
        }
    }

    fn ty(&mut self, ty: Ty, flexible: bool, version: i16, what: &str) -> Result<(), String> {
        match ty {
            Ty::Bool => self.skip(1, what),
            Ty::I16 => self.skip(2, what),
            Ty::I32 => self.skip(4, what),
            Ty::I64 => self.skip(8, what),
            Ty::Uuid => self.skip(16, what),
            Ty::Str => {
                let n = self.length(flexible, true, what)?;
                self.skip(n.unwrap_or(0), what)
            }
            Ty::Bytes => {
                let n = self.length(flexible, false, what)?;
                self.skip(n.unwrap_or(0), what)
            }
            Ty::Array(elem) => {
                let Some(count) = self.length(flexible, false, what)? else { return Ok(()) };
                let least = elem_min_size(elem, flexible, version).max(1);
                if count > self.remaining() / least {
                    return Err(format!(
                        "{what} claims {count} elements but only {} bytes follow (at least {least} each)",
                        self.remaining()
                    ));
                }
                let (each, name) = match elem {
                    Elem::I32 => (size_of::<i32>(), "i32"),
                    Elem::Str => (size_of::<kafka_protocol::protocol::StrBytes>(), "string"),
                    Elem::Struct(s) => (s.size, s.name),
                };
                self.cost(count, each, what)?;
                for _ in 0..count {
                    match elem {
                        Elem::I32 => self.skip(4, name)?,
                        Elem::Str => self.ty(Ty::Str, flexible, version, name)?,
                        Elem::Struct(s) => self.schema(s, version)?,
                    }
                }
                Ok(())
            }
        }
    }

    fn schema(&mut self, s: &Schema, version: i16) -> Result<(), String> {
        let flexible = version >= s.flexible;
        for f in s.fields.iter().filter(|f| (f.min..=f.max).contains(&version)) {
            self.ty(f.ty, flexible, version, s.name)?;
        }
        if !flexible {
            return Ok(());
        }
        let count = self.uvarint()? as usize;
        // Each tagged field takes at least two bytes (tag and size).
        if count > self.remaining() / 2 {
            return Err(format!("{}: {count} tagged fields claimed in {} bytes", s.name, self.remaining()));
        }
        for _ in 0..count {
            let tag = self.uvarint()?;
            let size = self.uvarint()? as usize;
            match s.tagged.iter().find(|(t, _)| *t == tag) {
                Some((_, ty)) => {
                    let start = self.pos;
                    self.ty(*ty, flexible, version, s.name)?;
                    if self.pos - start != size {
                        return Err(format!(
                            "{}: tagged field {tag} declares {size} bytes but holds {}",
                            s.name,
                            self.pos - start
                        ));
                    }
                }
                None => {
                    self.skip(size, "tagged field")?;
                    self.cost(1, TAGGED_FIELD_COST, s.name)?;
                }
            }
        }
        Ok(())
    }
}

/// The fewest bytes one element can take on the wire.
fn elem_min_size(elem: Elem, flexible: bool, version: i16) -> usize {
    match elem {
        Elem::I32 => 4,
        Elem::Str => min_size(Ty::Str, flexible, version),
        Elem::Struct(s) => struct_min_size(s, version),
    }
}

fn struct_min_size(s: &Schema, version: i16) -> usize {
    let flexible = version >= s.flexible;
    let fields: usize = s
        .fields
        .iter()
        .filter(|f| (f.min..=f.max).contains(&version))
        .map(|f| min_size(f.ty, flexible, version))
        .sum();
    fields + usize::from(flexible)
}

fn min_size(ty: Ty, flexible: bool, _version: i16) -> usize {
    match (ty, flexible) {
        (Ty::Bool, _) => 1,
        (Ty::I16, _) => 2,
        (Ty::I32, _) => 4,
        (Ty::I64, _) => 8,
        (Ty::Uuid, _) => 16,
        (Ty::Str | Ty::Bytes | Ty::Array(_), true) => 1,
        (Ty::Str, false) => 2,
        (Ty::Bytes | Ty::Array(_), false) => 4,
    }
}

#[cfg(test)]
#[path = "schema_tests.rs"]
mod tests;
