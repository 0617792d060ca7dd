//! The `advanced.scalingModifiers.formula` language: compiled once at apply time (webhook,
//! operator, CLI share [`Formula::compile`]) and evaluated over the named triggers' values.
//!
//! KEDA evaluates formulas with the Go expr-lang library; ebb uses the `expr-lang` crate (lib
//! `expr`), which implements expr's syntax and built-ins with Go-compatible runtime semantics:
//! `count([a, b], {# > 1})`, `a ?? b`, `min`/`max`/`abs`/`round`/`floor`/`ceil`, `1 / 0` is
//! +Inf, `%` needs integers (trigger values are floats, so `%` on a trigger fails, as in Go).
//! Built without default features: no regex (`matches`), dates, JSON or base64 built-ins.
//!
//! Before the crate sees the text, a lexical pass (`scan`) applies what the crate does not:
//! - Bounds: at most [`MAX_FORMULA_LEN`] bytes, [`MAX_DEPTH`] nested `(`/`[`/`{` (outside
//!   string literals), [`MAX_INDEX_DEPTH`] nested `[` and [`MAX_OPERATORS`] operators. The
//!   crate's parser and evaluator recurse once per operator: on a 2 MiB stack (a tokio worker's)
//!   a debug build overflows near 110 chained binary operators, and 64 operators inside 64
//!   brackets evaluate; its grammar re-parses the inside of a postfix `[` once per alternative,
//!   so parse time doubles with every nested `a[b[…]]` (20 levels take 20 s).
//! - Refusals where the crate departs from expr-lang or panics: map literals (`{a: {b: 1}}` and
//!   `{a: x}` panic in the crate, `{a: 1 + 1}` is `{a: 1}`), and a `??` whose right side holds
//!   another binary operator (expr-lang's `??` binds tightest, `a ?? 1 + 2` is `(a ?? 1) + 2`;
//!   the crate reads `a ?? (1 + 2)`): parenthesize.
//! - Variables: KEDA compiles with the trigger names as the environment, so every name the
//!   formula reads is listed ([`Formula::variables`]) and the caller refuses an unknown one.
//!   Names after `.`/`?.`, before `(`, `#…` closure names, keywords and `let` bindings are not
//!   variables.
//! - A formula whose top-level operator is a comparison or logical operator yields a boolean
//!   and is refused; one whose type depends on a ternary, a pipe or a binding is checked when
//!   evaluated (a non-number result is an evaluation error).
//!
//! Both the crate's compile and run are also called under `catch_unwind`: a panic left in the
//! crate becomes an error, never a crashed operator or webhook.
//!
//! Evaluation binds every trigger value as a float and a failed trigger (under
//! `fallback.behavior: scalingModifiers`) as `nil`. The result is a number (integer or float,
//! as f64) or `nil` (then the fallback replicas apply); ±Inf and NaN are errors, since a metric
//! value must be finite.

mod scan;

use std::collections::BTreeMap;
use std::panic::{AssertUnwindSafe, catch_unwind};

/// Longest formula accepted, in bytes.
pub const MAX_FORMULA_LEN: usize = 1024;
/// Deepest nesting of `(`, `[` and `{` accepted.
pub const MAX_DEPTH: usize = 64;
/// Deepest nesting of `[` accepted (parse time doubles with each level, see the module doc).
pub const MAX_INDEX_DEPTH: usize = 4;
/// Most operators accepted (the crate recurses once per operator, see the module doc).
pub const MAX_OPERATORS: usize = 64;

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
#[derive(Debug, Clone)]
pub struct Formula {
    src: String,
    program: expr::Program,
    variables: Vec<(String, usize)>,
}

impl PartialEq for Formula {
    fn eq(&self, other: &Self) -> bool {
        self.src == other.src
    }
}

impl Formula {
    /// Parses `src`; an error names the problem and, when it has one, its character offset.
    pub fn compile(src: &str) -> Result<Self, FormulaError> {
        if src.len() > MAX_FORMULA_LEN {
            return Err(FormulaError::eval(format!(
                "formula is {} bytes long; at most {MAX_FORMULA_LEN} are accepted",
                src.len()
            )));
        }
        if src.trim().is_empty() {
            return Err(FormulaError::at(0, "formula is empty"));
        }
        let scanned = scan::scan(src)?;
        let program = match catch_unwind(|| expr::compile(src)) {
            Ok(Ok(p)) => p,
            Ok(Err(e)) => return Err(compile_error(src, &e)),
            Err(_) => return Err(FormulaError::eval("formula could not be compiled")),
        };
        Ok(Self { src: src.to_owned(), program, variables: scanned.variables })
    }

    /// Every variable the formula reads, with the offset of its first use, in order of use.
    pub fn variables(&self) -> &[(String, usize)] {
        &self.variables
    }

    /// Evaluates over `vars` (a missing variable is nil). `Ok(None)` when the formula yields nil.
    pub fn eval(&self, vars: &BTreeMap<String, Option<f64>>) -> Result<Option<f64>, FormulaError> {
        let mut ctx = expr::Context::default();
        for (name, _) in &self.variables {
            let value = vars.get(name).copied().flatten().map_or(expr::Value::Nil, expr::Value::Float);
            ctx.insert(name.clone(), value);
        }
        let got = catch_unwind(AssertUnwindSafe(|| expr::run(&self.program, &ctx)))
            .map_err(|_| FormulaError::eval("formula could not be evaluated"))?
            .map_err(|e| FormulaError::eval(e.to_string()))?;
        let n = match got {
            expr::Value::Nil => return Ok(None),
            expr::Value::Float(f) => f,
            expr::Value::Integer(i) => i as f64,
            expr::Value::Bool(_) => {
                return Err(FormulaError::eval("formula yields a boolean; it must yield a number"));
            }
            expr::Value::String(_) => {
                return Err(FormulaError::eval("formula yields a string; it must yield a number"));
            }
            expr::Value::Array(_) => {
                return Err(FormulaError::eval("formula yields an array; it must yield a number"));
            }
            _ => return Err(FormulaError::eval("formula yields a value that is not a number")),
        };
        if n.is_finite() {
            Ok(Some(n))
        } else {
            Err(FormulaError::eval(format!("formula yields {n}, not a finite number")))
        }
    }
}

/// The crate's error in ebb's shape: a syntax error becomes "syntax error: …" at the character
/// offset of pest's `line:col` (the crate's multi-line report is not repeated).
fn compile_error(src: &str, e: &expr::Error) -> FormulaError {
    let expr::Error::PestError(_) = e else { return FormulaError::eval(e.to_string()) };
    let text = e.to_string();
    let pos = text.split("--> ").nth(1).and_then(|rest| {
        let lc = rest.split_whitespace().next()?;
        let (l, c) = lc.split_once(':')?;
        Some((l.parse::<usize>().ok()?, c.parse::<usize>().ok()?))
    });
    let Some((line, col)) = pos else { return FormulaError::eval("syntax error") };
    let offset =
        src.split_inclusive('\n').take(line.saturating_sub(1)).map(|l| l.chars().count()).sum::<usize>()
            + col.saturating_sub(1);
    let message = match src.chars().nth(offset) {
        Some(ch) => format!("syntax error: unexpected {ch:?}"),
        None => "syntax error: the formula ends too early".to_owned(),
    };
    FormulaError::at(offset, message)
}

#[cfg(test)]
mod tests;
