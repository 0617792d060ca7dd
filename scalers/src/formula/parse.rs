//! Tokenizer and Pratt parser of the formula subset; refuses unsupported syntax with the
//! character offset of the offending token.

use super::{FormulaError, MAX_DEPTH};

/// Built-in functions of the subset.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Func {
    Min,
    Max,
    Abs,
    Round,
    Floor,
    Ceil,
}

impl Func {
    fn from_name(s: &str) -> Option<Self> {
        Some(match s {
            "min" => Self::Min,
            "max" => Self::Max,
            "abs" => Self::Abs,
            "round" => Self::Round,
            "floor" => Self::Floor,
            "ceil" => Self::Ceil,
            _ => return None,
        })
    }
    pub fn name(self) -> &'static str {
        match self {
            Self::Min => "min",
            Self::Max => "max",
            Self::Abs => "abs",
            Self::Round => "round",
            Self::Floor => "floor",
            Self::Ceil => "ceil",
        }
    }
}

/// A parsed expression; offsets are character offsets into the formula.
#[derive(Debug, Clone, PartialEq)]
pub enum Node {
    Num(f64),
    Bool(bool),
    Nil,
    Var(String, usize),
    /// `!`/`not` or `-`/`+` (normalised to "!", "-", "+").
    Unary(&'static str, Box<Node>),
    Binary(&'static str, Box<Node>, Box<Node>),
    Ternary(Box<Node>, Box<Node>, Box<Node>),
    Call(Func, Vec<Node>, usize),
}

impl Node {
    /// Whether the node always yields a boolean (comparisons, logic, `!`, boolean literals).
    pub(super) fn is_boolean(&self) -> bool {
        match self {
            Self::Bool(_) | Self::Unary("!", _) => true,
            Self::Binary(op, ..) => matches!(*op, "==" | "!=" | "<" | "<=" | ">" | ">=" | "&&" | "||"),
            Self::Ternary(_, a, b) => a.is_boolean() && b.is_boolean(),
            _ => false,
        }
    }

    /// Whether the tree is deeper than `limit` (walked with an explicit stack).
    pub(super) fn depth_exceeds(&self, limit: usize) -> bool {
        let mut stack = vec![(self, 1usize)];
        while let Some((n, d)) = stack.pop() {
            if d > limit {
                return true;
            }
            match n {
                Self::Unary(_, a) => stack.push((a, d + 1)),
                Self::Binary(_, a, b) => stack.extend([(&**a, d + 1), (&**b, d + 1)]),
                Self::Ternary(a, b, c) => stack.extend([(&**a, d + 1), (&**b, d + 1), (&**c, d + 1)]),
                Self::Call(_, args, _) => stack.extend(args.iter().map(|a| (a, d + 1))),
                Self::Num(_) | Self::Bool(_) | Self::Nil | Self::Var(..) => {}
            }
        }
        false
    }

    pub(super) fn variables(&self, out: &mut Vec<(String, usize)>) {
        match self {
            Self::Var(n, at) => {
                if !out.iter().any(|(m, _)| m == n) {
                    out.push((n.clone(), *at));
                }
            }
            Self::Unary(_, a) => a.variables(out),
            Self::Binary(_, a, b) => {
                a.variables(out);
                b.variables(out);
            }
            Self::Ternary(a, b, c) => {
                a.variables(out);
                b.variables(out);
                c.variables(out);
            }
            Self::Call(_, args, _) => args.iter().for_each(|a| a.variables(out)),
            Self::Num(_) | Self::Bool(_) | Self::Nil => {}
        }
    }
}

#[derive(Debug, Clone, PartialEq)]
enum Tok {
    Num(f64),
    Ident(String),
    Op(&'static str),
    End,
    /// Not tokenizable; reported when the parser reaches it, so earlier errors come first.
    Bad(FormulaError),
}

/// expr-lang words the subset does not support.
const UNSUPPORTED_WORDS: &[&str] =
    &["in", "matches", "contains", "startsWith", "endsWith", "let", "if", "else", "predicate"];

const OPS: &[&str] = &[
    "**", "??", "&&", "||", "==", "!=", "<=", ">=", "<", ">", "+", "-", "*", "/", "%", "^", "!", "?", ":",
    "(", ")", ",",
];

fn tokenize(src: &str) -> Vec<(Tok, usize)> {
    let mut out = Vec::new();
    let end = src.chars().count();
    match tokenize_until_bad(src, &mut out) {
        Ok(()) => out.push((Tok::End, end)),
        Err(e) => {
            let at = e.offset.unwrap_or(end);
            out.push((Tok::Bad(e), at));
        }
    }
    out
}

fn tokenize_until_bad(src: &str, out: &mut Vec<(Tok, usize)>) -> Result<(), FormulaError> {
    let chars: Vec<char> = src.chars().collect();
    let mut i = 0;
    while i < chars.len() {
        let c = chars[i];
        if c.is_whitespace() {
            i += 1;
            continue;
        }
        let start = i;
        if c.is_ascii_digit() {
            let mut text = String::new();
            let digits = |i: &mut usize, text: &mut String| {
                while *i < chars.len() && (chars[*i].is_ascii_digit() || chars[*i] == '_') {
                    if chars[*i] != '_' {
                        text.push(chars[*i]);
                    }
                    *i += 1;
                }
            };
            digits(&mut i, &mut text);
            if i + 1 < chars.len() && chars[i] == '.' && chars[i + 1].is_ascii_digit() {
                text.push('.');
                i += 1;
                digits(&mut i, &mut text);
            }
            if i < chars.len() && (chars[i] == 'e' || chars[i] == 'E') {
                let mut j = i + 1;
                let mut exp = String::from("e");
                if j < chars.len() && (chars[j] == '+' || chars[j] == '-') {
                    exp.push(chars[j]);
                    j += 1;
                }
                if j < chars.len() && chars[j].is_ascii_digit() {
                    i = j;
                    digits(&mut i, &mut exp);
                    text.push_str(&exp);
                }
            }
            if i < chars.len() && (chars[i].is_alphanumeric() || chars[i] == '.') {
                return Err(FormulaError::at(i, format!("malformed number: unexpected {:?}", chars[i])));
            }
            let n: f64 =
                text.parse().map_err(|_| FormulaError::at(start, format!("malformed number {text:?}")))?;
            out.push((Tok::Num(n), start));
            continue;
        }
        if c.is_alphabetic() || c == '_' || c == '$' {
            while i < chars.len() && (chars[i].is_alphanumeric() || chars[i] == '_' || chars[i] == '$') {
                i += 1;
            }
            let word: String = chars[start..i].iter().collect();
            if UNSUPPORTED_WORDS.contains(&word.as_str()) {
                return Err(FormulaError::at(start, format!("unsupported operator or keyword {word:?}")));
            }
            let tok = match word.as_str() {
                "and" => Tok::Op("&&"),
                "or" => Tok::Op("||"),
                "not" => Tok::Op("!"),
                _ => Tok::Ident(word),
            };
            out.push((tok, start));
            continue;
        }
        let rest: String = chars[i..chars.len().min(i + 2)].iter().collect();
        let Some(op) = OPS.iter().find(|op| rest.starts_with(**op)) else {
            let what = match c {
                '"' | '\'' | '`' => "string literals are not supported".to_owned(),
                '[' | ']' => "arrays are not supported".to_owned(),
                '{' | '}' | '#' => "closures are not supported".to_owned(),
                '.' => "member access and ranges are not supported".to_owned(),
                '|' => "pipes are not supported".to_owned(),
                _ => format!("unsupported character {c:?}"),
            };
            return Err(FormulaError::at(start, what));
        };
        // `?.` (optional chaining) and `..` are not in the subset.
        if *op == "?" && chars.get(i + 1) == Some(&'.') {
            return Err(FormulaError::at(start, "optional chaining `?.` is not supported"));
        }
        i += op.chars().count();
        out.push((Tok::Op(op), start));
    }
    Ok(())
}

/// Binary operators: precedence and right-associativity, as expr-lang has them.
fn binary(op: &str) -> Option<(u16, bool)> {
    Some(match op {
        "||" => (10, false),
        "&&" => (15, false),
        "==" | "!=" | "<" | ">" | "<=" | ">=" => (20, false),
        "+" | "-" => (30, false),
        "*" | "/" | "%" => (60, false),
        "**" | "^" => (100, true),
        "??" => (500, false),
        _ => return None,
    })
}

struct Parser {
    toks: Vec<(Tok, usize)>,
    pos: usize,
    depth: usize,
}

/// Parses a whole formula.
pub fn parse(src: &str) -> Result<Node, FormulaError> {
    if src.trim().is_empty() {
        return Err(FormulaError::at(0, "formula is empty"));
    }
    let mut p = Parser { toks: tokenize(src), pos: 0, depth: 0 };
    let node = p.expr(0)?;
    match p.peek() {
        (Tok::End, _) => Ok(node),
        (t, at) => {
            Err(FormulaError::at(at, format!("unexpected {} after the end of the expression", show(&t))))
        }
    }
}

fn show(t: &Tok) -> String {
    match t {
        Tok::Num(n) => format!("number {n}"),
        Tok::Ident(s) => format!("name {s:?}"),
        Tok::Op(o) => format!("{o:?}"),
        Tok::End => "end of formula".into(),
        Tok::Bad(e) => e.message.clone(),
    }
}

/// The error for meeting `t` where it does not fit: the tokenizer's own error when `t` could
/// not be tokenized, else `template` with `{}` replaced by what `t` is.
fn fail(t: Tok, at: usize, template: &str) -> FormulaError {
    match t {
        Tok::Bad(e) => e,
        t => FormulaError::at(at, template.replace("{}", &show(&t))),
    }
}

impl Parser {
    fn peek(&self) -> (Tok, usize) {
        self.toks.get(self.pos).cloned().unwrap_or((Tok::End, 0))
    }
    fn next(&mut self) -> (Tok, usize) {
        let t = self.peek();
        self.pos += 1;
        t
    }
    fn expect(&mut self, op: &str) -> Result<(), FormulaError> {
        match self.next() {
            (Tok::Op(o), _) if o == op => Ok(()),
            (t, at) => Err(fail(t, at, &format!("expected {op:?}, found {{}}"))),
        }
    }
    fn enter(&mut self, at: usize) -> Result<(), FormulaError> {
        self.depth += 1;
        if self.depth > MAX_DEPTH {
            return Err(FormulaError::at(at, format!("formula nests deeper than {MAX_DEPTH} levels")));
        }
        Ok(())
    }

    fn expr(&mut self, min_prec: u16) -> Result<Node, FormulaError> {
        let at = self.peek().1;
        self.enter(at)?;
        let mut left = self.unary()?;
        loop {
            let (tok, _) = self.peek();
            let Tok::Op(op) = tok else { break };
            let Some((prec, right_assoc)) = binary(op) else { break };
            if prec < min_prec {
                break;
            }
            self.pos += 1;
            let right = self.expr(if right_assoc { prec } else { prec + 1 })?;
            left = Node::Binary(op, Box::new(left), Box::new(right));
        }
        if min_prec == 0 && matches!(self.peek().0, Tok::Op("?")) {
            self.pos += 1;
            let yes = self.expr(0)?;
            self.expect(":")?;
            let no = self.expr(0)?;
            left = Node::Ternary(Box::new(left), Box::new(yes), Box::new(no));
        }
        self.depth -= 1;
        Ok(left)
    }

    fn unary(&mut self) -> Result<Node, FormulaError> {
        match self.peek() {
            (Tok::Op(op @ ("!" | "-" | "+")), _) => {
                self.pos += 1;
                let prec = if op == "!" { 50 } else { 90 };
                let operand = self.expr(prec)?;
                Ok(Node::Unary(op, Box::new(operand)))
            }
            _ => self.primary(),
        }
    }

    fn primary(&mut self) -> Result<Node, FormulaError> {
        match self.next() {
            (Tok::Num(n), _) => Ok(Node::Num(n)),
            (Tok::Op("("), _) => {
                let inner = self.expr(0)?;
                self.expect(")")?;
                Ok(inner)
            }
            (Tok::Ident(name), at) => {
                if matches!(self.peek().0, Tok::Op("(")) {
                    let Some(func) = Func::from_name(&name) else {
                        return Err(FormulaError::at(
                            at,
                            format!(
                                "unsupported function {name:?}; supported: min, max, abs, round, floor, ceil"
                            ),
                        ));
                    };
                    self.pos += 1;
                    let mut args = Vec::new();
                    if !matches!(self.peek().0, Tok::Op(")")) {
                        loop {
                            args.push(self.expr(0)?);
                            if matches!(self.peek().0, Tok::Op(",")) {
                                self.pos += 1;
                                continue;
                            }
                            break;
                        }
                    }
                    self.expect(")")?;
                    let ok = match func {
                        Func::Min | Func::Max => !args.is_empty(),
                        _ => args.len() == 1,
                    };
                    if !ok {
                        let want =
                            if matches!(func, Func::Min | Func::Max) { "at least 1" } else { "exactly 1" };
                        return Err(FormulaError::at(
                            at,
                            format!("{}() takes {want} argument, found {}", func.name(), args.len()),
                        ));
                    }
                    return Ok(Node::Call(func, args, at));
                }
                Ok(match name.as_str() {
                    "true" => Node::Bool(true),
                    "false" => Node::Bool(false),
                    "nil" => Node::Nil,
                    _ => Node::Var(name, at),
                })
            }
            (t, at) => Err(fail(t, at, "expected a value, found {}")),
        }
    }
}
