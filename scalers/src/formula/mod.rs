//! The `advanced.scalingModifiers.formula` language: compiled once at apply time (webhook,
//! operator, CLI share [`Formula::compile`]) and evaluated over the named triggers' values.
//!
//! KEDA evaluates formulas with the Go expr-lang library. ebb supports the subset KEDA documents
//! for formulas: numbers, trigger names as variables, `nil`, `true`/`false`, arithmetic
//! `+ - * / %` and `**`/`^`, comparison `== != < <= > >=`, logic `&& || !` (and `and`, `or`,
//! `not`), the ternary `c ? a : b`, nil-coalescing `a ?? b`, parentheses and the functions
//! `min`, `max` (one or more arguments), `abs`, `round`, `floor`, `ceil`. Precedence and
//! associativity follow expr-lang: `??` binds tightest, then `**`/`^` (right-associative), unary
//! `-`/`+`, `* / %`, `!`/`not`, `+ -`, comparisons, `&&`/`and`, `||`/`or`, and the ternary last.
//! Anything else (strings, arrays, closures such as `count([...], {# > 1})`, member access,
//! `in`, `matches`, other built-ins) is refused at compile time with the character offset of
//! the first unsupported token.
//!
//! Why hand-written: the crates evaluated do not cover the subset. `evalexpr` has neither `?:`
//! nor `??` and types integers and floats apart (`1 / 2` is 0); `fasteval` has no ternary, no
//! `??` and no booleans; `cel-interpreter` has the ternary but not `??`, and CEL refuses mixed
//! int/double arithmetic (`1 + 2.0`) that expr accepts. A Pratt parser of this size is shorter
//! than the adapters those would need.
//!
//! Evaluation semantics (documented differences from expr-lang in README.md): every number is an
//! f64 (trigger values are floats in KEDA too); `/` is float division, and a division or `%` by
//! zero is an error rather than ±Inf; `%` needs whole-number operands (expr refuses `%` on
//! floats); arithmetic or comparison on `nil` (a failing trigger under
//! `fallback.behavior: scalingModifiers`) is an error; `a ?? b` is `b` when `a` is nil; `round`
//! rounds half away from zero. A formula must yield a number, or `nil` (then the fallback
//! replicas apply). Bounds: at most [`MAX_FORMULA_LEN`] characters and [`MAX_DEPTH`] nesting
//! levels of parentheses, calls, unary operators and ternaries, and a tree at most
//! [`MAX_TREE_DEPTH`] deep (measured without recursion, so evaluation recursion stays shallow);
//! hostile input yields an error, never a panic.

mod eval;
mod parse;

use std::collections::BTreeMap;

pub use eval::Value;

/// Longest formula accepted, in bytes.
pub const MAX_FORMULA_LEN: usize = 1024;
/// Deepest nesting of sub-expressions accepted while parsing.
pub const MAX_DEPTH: usize = 64;
/// Deepest expression tree accepted (bounds evaluation recursion; a chain `a+b+…` is one level
/// per operator).
pub const MAX_TREE_DEPTH: usize = 128;

/// Why a formula does not compile or evaluate; `offset` is the 0-based character offset into
/// the formula when the problem has one.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{}", match .offset { Some(o) => format!("{message} (at character {o})"), None => message.clone() })]
pub struct FormulaError {
    pub message: String,
    pub offset: Option<usize>,
}

impl FormulaError {
    pub(crate) fn at(offset: usize, message: impl Into<String>) -> Self {
        Self { message: message.into(), offset: Some(offset) }
    }
    pub(crate) fn eval(message: impl Into<String>) -> Self {
        Self { message: message.into(), offset: None }
    }
}

/// A compiled formula.
#[derive(Debug, Clone, PartialEq)]
pub struct Formula {
    root: parse::Node,
    variables: Vec<(String, usize)>,
}

impl Formula {
    /// Parses `src`; an error names the first unsupported or malformed token and its offset.
    pub fn compile(src: &str) -> Result<Self, FormulaError> {
        if src.len() > MAX_FORMULA_LEN {
            return Err(FormulaError::eval(format!(
                "formula is {} bytes long; at most {MAX_FORMULA_LEN} are accepted",
                src.len()
            )));
        }
        let root = parse::parse(src)?;
        if root.is_boolean() {
            return Err(FormulaError::at(0, "formula yields a boolean; it must yield a number"));
        }
        if root.depth_exceeds(MAX_TREE_DEPTH) {
            return Err(FormulaError::eval(format!(
                "formula has more than {MAX_TREE_DEPTH} nested operations; split or simplify it"
            )));
        }
        let mut variables = Vec::new();
        root.variables(&mut variables);
        Ok(Self { root, variables })
    }

    /// Every variable the formula reads, with the offset of its first use, in order of use.
    pub fn variables(&self) -> &[(String, usize)] {
        &self.variables
    }

    /// Evaluates over `vars` (a missing variable is nil). `Ok(None)` when the formula yields nil.
    pub fn eval(&self, vars: &BTreeMap<String, Option<f64>>) -> Result<Option<f64>, FormulaError> {
        match eval::eval(&self.root, vars)? {
            Value::Num(n) if n.is_finite() => Ok(Some(n)),
            Value::Num(n) => Err(FormulaError::eval(format!("formula yields {n}, not a finite number"))),
            Value::Nil => Ok(None),
            Value::Bool(_) => Err(FormulaError::eval("formula yields a boolean; it must yield a number")),
        }
    }
}

#[cfg(test)]
mod tests;
