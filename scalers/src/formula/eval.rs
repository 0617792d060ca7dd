//! Evaluation of a parsed formula over trigger values (pure, no panics: every failing
//! operation is an error naming the operator or function).

use std::collections::BTreeMap;

use super::FormulaError;
use super::parse::{Func, Node};

/// A formula value: a number, a boolean or nil (a trigger without a value).
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Value {
    Num(f64),
    Bool(bool),
    Nil,
}

impl Value {
    fn kind(self) -> &'static str {
        match self {
            Self::Num(_) => "a number",
            Self::Bool(_) => "a boolean",
            Self::Nil => "nil",
        }
    }
}

fn num(v: Value, what: &str) -> Result<f64, FormulaError> {
    match v {
        Value::Num(n) => Ok(n),
        other => Err(FormulaError::eval(format!("{what} needs a number, found {}", other.kind()))),
    }
}

fn boolean(v: Value, what: &str) -> Result<bool, FormulaError> {
    match v {
        Value::Bool(b) => Ok(b),
        other => Err(FormulaError::eval(format!("{what} needs a boolean, found {}", other.kind()))),
    }
}

pub(super) fn eval(node: &Node, vars: &BTreeMap<String, Option<f64>>) -> Result<Value, FormulaError> {
    Ok(match node {
        Node::Num(n) => Value::Num(*n),
        Node::Bool(b) => Value::Bool(*b),
        Node::Nil => Value::Nil,
        Node::Var(name, _) => vars.get(name).copied().flatten().map_or(Value::Nil, Value::Num),
        Node::Unary(op, a) => {
            let v = eval(a, vars)?;
            match *op {
                "!" => Value::Bool(!boolean(v, "`!`")?),
                "-" => Value::Num(-num(v, "unary `-`")?),
                _ => Value::Num(num(v, "unary `+`")?),
            }
        }
        Node::Ternary(c, yes, no) => {
            if boolean(eval(c, vars)?, "the condition of `?:`")? {
                eval(yes, vars)?
            } else {
                eval(no, vars)?
            }
        }
        Node::Call(func, args, _) => call(*func, args, vars)?,
        Node::Binary(op, a, b) => binary(op, a, b, vars)?,
    })
}

fn binary(op: &str, a: &Node, b: &Node, vars: &BTreeMap<String, Option<f64>>) -> Result<Value, FormulaError> {
    let l = eval(a, vars)?;
    // Short-circuiting operators evaluate the right side only when needed.
    match op {
        "??" => return if l == Value::Nil { eval(b, vars) } else { Ok(l) },
        "&&" => return Ok(Value::Bool(boolean(l, "`&&`")? && boolean(eval(b, vars)?, "`&&`")?)),
        "||" => return Ok(Value::Bool(boolean(l, "`||`")? || boolean(eval(b, vars)?, "`||`")?)),
        _ => {}
    }
    let r = eval(b, vars)?;
    match op {
        "==" => return Ok(Value::Bool(l == r)),
        "!=" => return Ok(Value::Bool(l != r)),
        _ => {}
    }
    let what = format!("`{op}`");
    let (x, y) = (num(l, &what)?, num(r, &what)?);
    Ok(match op {
        "<" => Value::Bool(x < y),
        "<=" => Value::Bool(x <= y),
        ">" => Value::Bool(x > y),
        ">=" => Value::Bool(x >= y),
        "+" => Value::Num(x + y),
        "-" => Value::Num(x - y),
        "*" => Value::Num(x * y),
        "/" => {
            if y == 0.0 {
                return Err(FormulaError::eval(format!("division by zero ({x} / 0)")));
            }
            Value::Num(x / y)
        }
        "%" => {
            if x.fract() != 0.0 || y.fract() != 0.0 || !x.is_finite() || !y.is_finite() {
                return Err(FormulaError::eval(format!("`%` needs whole numbers, found {x} % {y}")));
            }
            if y == 0.0 {
                return Err(FormulaError::eval(format!("modulo by zero ({x} % 0)")));
            }
            Value::Num(x % y)
        }
        _ => Value::Num(x.powf(y)),
    })
}

fn call(func: Func, args: &[Node], vars: &BTreeMap<String, Option<f64>>) -> Result<Value, FormulaError> {
    let what = format!("{}()", func.name());
    let mut xs = Vec::with_capacity(args.len());
    for a in args {
        xs.push(num(eval(a, vars)?, &what)?);
    }
    let first = xs.first().copied().ok_or_else(|| FormulaError::eval(format!("{what} needs an argument")))?;
    Ok(Value::Num(match func {
        Func::Min => xs.iter().copied().fold(first, f64::min),
        Func::Max => xs.iter().copied().fold(first, f64::max),
        Func::Abs => first.abs(),
        Func::Round => first.round(),
        Func::Floor => first.floor(),
        Func::Ceil => first.ceil(),
    }))
}
