//! The JSONPath subset that CRD `additionalPrinterColumns` and kubectl use: `.a.b`, `.a[0]`,
//! `.a[-1]`, `.a[1:3]`, `.a[*].b`, `.*`, `..a` (recursive), `['x.y']` bracket keys, unions
//! `[0,2]` / `['a','b']` and filters `[?(@.type=="Ready")]` (`==`, `!=`, `<`, `<=`, `>`, `>=`,
//! or bare `@.x` for existence). An optional `{…}` wrapper and leading `$` are accepted.
//! Missing keys yield no results rather than errors, as the API server evaluates columns.

use std::cmp::Ordering;

use serde_json::Value;

/// A path that could not be parsed.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("invalid JSONPath {path:?}: {message}")]
pub struct JsonPathError {
    /// The path as given.
    pub path: String,
    /// What is wrong with it.
    pub message: String,
}

/// One step of a parsed path.
#[derive(Debug, Clone, PartialEq)]
enum Step {
    /// `.name` / `['name']`
    Field(String),
    /// `..`: the value and all its descendants (followed by the step after it).
    Descend,
    /// `.*` / `[*]`
    Wildcard,
    /// `[i]`
    Index(i64),
    /// `[start:end:step]`
    Slice(Option<i64>, Option<i64>, Option<i64>),
    /// `[0,1]` or `['a','b']`
    Union(Vec<Key>),
    /// `[?(…)]`
    Filter(Filter),
}

#[derive(Debug, Clone, PartialEq)]
enum Key {
    Index(i64),
    Name(String),
}

#[derive(Debug, Clone, PartialEq)]
struct Filter {
    left: Operand,
    cmp: Option<(Cmp, Operand)>,
}

#[derive(Debug, Clone, PartialEq)]
enum Operand {
    /// `@.a.b` (steps relative to the element)
    Current(Vec<Step>),
    Literal(Value),
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Cmp {
    Eq,
    Ne,
    Lt,
    Le,
    Gt,
    Ge,
}

/// A parsed JSONPath, to evaluate many times.
#[derive(Debug, Clone, PartialEq)]
pub struct JsonPath {
    steps: Vec<Step>,
}

impl JsonPath {
    /// Parses a path such as `.status.conditions[?(@.type=="Ready")].status`.
    pub fn parse(path: &str) -> Result<Self, JsonPathError> {
        let fail = |message: String| JsonPathError { path: path.to_string(), message };
        let mut s = path.trim();
        if let Some(inner) = s.strip_prefix('{') {
            s = inner.strip_suffix('}').ok_or_else(|| fail("unclosed '{'".into()))?.trim();
        }
        let s = s.strip_prefix('$').unwrap_or(s);
        let chars: Vec<char> = s.chars().collect();
        let mut p = PathParser { chars: &chars, pos: 0 };
        let steps = p.steps(false).map_err(fail)?;
        if p.pos != chars.len() {
            return Err(fail(format!("unexpected {:?} at offset {}", chars[p.pos], p.pos)));
        }
        Ok(JsonPath { steps })
    }

    /// All values the path selects in `obj`, in document order.
    pub fn eval(&self, obj: &Value) -> Vec<Value> {
        run(&self.steps, obj).into_iter().cloned().collect()
    }
}

/// Parses `path` and evaluates it against `obj`.
pub fn eval(path: &str, obj: &Value) -> Result<Vec<Value>, JsonPathError> {
    Ok(JsonPath::parse(path)?.eval(obj))
}

/// The text form of one result as printed in a string column: strings as-is, everything else
/// as compact JSON.
pub fn to_text(v: &Value) -> String {
    match v {
        Value::String(s) => s.clone(),
        other => other.to_string(),
    }
}

// ---- evaluation ----

fn run<'a>(steps: &[Step], root: &'a Value) -> Vec<&'a Value> {
    let mut cur = vec![root];
    for step in steps {
        let mut next = Vec::new();
        for v in cur {
            apply(step, v, &mut next);
        }
        cur = next;
    }
    cur
}

fn resolve_index(i: i64, len: usize) -> Option<usize> {
    let len = i64::try_from(len).ok()?;
    let i = if i < 0 { len + i } else { i };
    if (0..len).contains(&i) { usize::try_from(i).ok() } else { None }
}

fn apply<'a>(step: &Step, v: &'a Value, out: &mut Vec<&'a Value>) {
    match step {
        Step::Field(name) => {
            if let Some(x) = v.as_object().and_then(|o| o.get(name)) {
                out.push(x);
            }
        }
        Step::Wildcard => children(v, out),
        Step::Descend => descendants(v, out),
        Step::Index(i) => {
            if let Some(a) = v.as_array()
                && let Some(i) = resolve_index(*i, a.len())
            {
                out.push(&a[i]);
            }
        }
        Step::Slice(start, end, step) => {
            if let Some(a) = v.as_array() {
                slice(a, *start, *end, step.unwrap_or(1), out);
            }
        }
        Step::Union(keys) => {
            for k in keys {
                match (k, v) {
                    (Key::Index(i), Value::Array(a)) => {
                        if let Some(i) = resolve_index(*i, a.len()) {
                            out.push(&a[i]);
                        }
                    }
                    (Key::Name(n), Value::Object(o)) => {
                        if let Some(x) = o.get(n) {
                            out.push(x);
                        }
                    }
                    _ => {}
                }
            }
        }
        Step::Filter(f) => match v {
            Value::Array(a) => out.extend(a.iter().filter(|x| f.holds(x))),
            other => {
                if f.holds(other) {
                    out.push(other);
                }
            }
        },
    }
}

fn children<'a>(v: &'a Value, out: &mut Vec<&'a Value>) {
    match v {
        Value::Array(a) => out.extend(a.iter()),
        Value::Object(o) => out.extend(o.values()),
        _ => {}
    }
}

fn descendants<'a>(v: &'a Value, out: &mut Vec<&'a Value>) {
    out.push(v);
    match v {
        Value::Array(a) => a.iter().for_each(|x| descendants(x, out)),
        Value::Object(o) => o.values().for_each(|x| descendants(x, out)),
        _ => {}
    }
}

fn slice<'a>(a: &'a [Value], start: Option<i64>, end: Option<i64>, step: i64, out: &mut Vec<&'a Value>) {
    let Ok(len) = i64::try_from(a.len()) else { return };
    if step == 0 {
        return;
    }
    let norm = |i: i64| if i < 0 { (len + i).max(0) } else { i.min(len) };
    let mut push = |i: i64| {
        if let Ok(i) = usize::try_from(i)
            && let Some(x) = a.get(i)
        {
            out.push(x);
        }
    };
    if step > 0 {
        let (mut i, e) = (norm(start.unwrap_or(0)), norm(end.unwrap_or(len)));
        while i < e {
            push(i);
            i += step;
        }
    } else {
        let mut i = start.map_or(len - 1, |s| if s < 0 { len + s } else { s.min(len - 1) });
        let e = end.map_or(-1, |e| if e < 0 { (len + e).max(-1) } else { e });
        while i > e {
            push(i);
            i += step;
        }
    }
}

impl Operand {
    fn value<'a>(&'a self, elem: &'a Value) -> Option<&'a Value> {
        match self {
            Operand::Current(steps) => run(steps, elem).into_iter().next(),
            Operand::Literal(v) => Some(v),
        }
    }
}

impl Filter {
    fn holds(&self, elem: &Value) -> bool {
        let Some(left) = self.left.value(elem) else { return false };
        let Some((cmp, right)) = &self.cmp else { return true };
        let Some(right) = right.value(elem) else { return false };
        let ord = compare(left, right);
        match cmp {
            Cmp::Eq => ord == Some(Ordering::Equal),
            Cmp::Ne => ord != Some(Ordering::Equal),
            Cmp::Lt => ord == Some(Ordering::Less),
            Cmp::Le => matches!(ord, Some(Ordering::Less | Ordering::Equal)),
            Cmp::Gt => ord == Some(Ordering::Greater),
            Cmp::Ge => matches!(ord, Some(Ordering::Greater | Ordering::Equal)),
        }
    }
}

fn compare(a: &Value, b: &Value) -> Option<Ordering> {
    match (a, b) {
        (Value::Number(x), Value::Number(y)) => x.as_f64()?.partial_cmp(&y.as_f64()?),
        (Value::String(x), Value::String(y)) => Some(x.cmp(y)),
        (Value::Bool(x), Value::Bool(y)) => Some(x.cmp(y)),
        (Value::Null, Value::Null) => Some(Ordering::Equal),
        (x, y) if x == y => Some(Ordering::Equal),
        _ => None,
    }
}

// ---- parsing ----

struct PathParser<'a> {
    chars: &'a [char],
    pos: usize,
}

fn is_name_char(c: char) -> bool {
    !matches!(c, '.' | '[' | ']' | '(' | ')' | '=' | '!' | '<' | '>' | ',' | '\'' | '"' | '@' | '&' | '|')
        && !c.is_whitespace()
}

impl PathParser<'_> {
    fn peek(&self) -> Option<char> {
        self.chars.get(self.pos).copied()
    }

    fn eat(&mut self, c: char) -> bool {
        if self.peek() == Some(c) {
            self.pos += 1;
            true
        } else {
            false
        }
    }

    fn skip_ws(&mut self) {
        while self.peek().is_some_and(char::is_whitespace) {
            self.pos += 1;
        }
    }

    /// Steps until the end of input (or, inside a filter, until a token that ends the operand).
    fn steps(&mut self, in_filter: bool) -> Result<Vec<Step>, String> {
        let mut steps = Vec::new();
        // a bare leading name (`metadata.name`) is accepted as `.metadata.name`
        if !in_filter && self.peek().is_some_and(is_name_char) && self.peek() != Some('*') {
            steps.push(Step::Field(self.name()));
        }
        loop {
            match self.peek() {
                Some('.') => {
                    self.pos += 1;
                    if self.eat('.') {
                        steps.push(Step::Descend);
                        if self.eat('*') {
                            steps.push(Step::Wildcard);
                        } else if self.peek() == Some('[') {
                            let b = self.bracket()?;
                            steps.push(b);
                        } else {
                            let n = self.name();
                            if n.is_empty() {
                                return Err("expected a field name after '..'".into());
                            }
                            steps.push(Step::Field(n));
                        }
                    } else if self.eat('*') {
                        steps.push(Step::Wildcard);
                    } else {
                        let n = self.name();
                        if n.is_empty() {
                            // a trailing or lone `.` selects the current value
                            if matches!(self.peek(), None | Some('[')) {
                                continue;
                            }
                            return Err(format!("expected a field name at offset {}", self.pos));
                        }
                        steps.push(Step::Field(n));
                    }
                }
                Some('[') => {
                    let b = self.bracket()?;
                    steps.push(b);
                }
                _ => return Ok(steps),
            }
        }
    }

    fn name(&mut self) -> String {
        let start = self.pos;
        while self.peek().is_some_and(is_name_char) {
            self.pos += 1;
        }
        self.chars[start..self.pos].iter().collect()
    }

    fn quoted(&mut self) -> Result<String, String> {
        let Some(q) = self.peek().filter(|c| *c == '\'' || *c == '"') else {
            return Err(format!("expected a quote at offset {}", self.pos));
        };
        self.pos += 1;
        let mut s = String::new();
        loop {
            match self.peek() {
                None => return Err("unterminated string".into()),
                Some('\\') => {
                    self.pos += 1;
                    match self.peek() {
                        Some(c) => s.push(c),
                        None => return Err("unterminated string".into()),
                    }
                    self.pos += 1;
                }
                Some(c) if c == q => {
                    self.pos += 1;
                    return Ok(s);
                }
                Some(c) => {
                    s.push(c);
                    self.pos += 1;
                }
            }
        }
    }

    fn int(&mut self) -> Option<i64> {
        let start = self.pos;
        if self.peek() == Some('-') {
            self.pos += 1;
        }
        while self.peek().is_some_and(|c| c.is_ascii_digit()) {
            self.pos += 1;
        }
        let text: String = self.chars[start..self.pos].iter().collect();
        let n = text.parse().ok();
        if n.is_none() {
            self.pos = start;
        }
        n
    }

    fn bracket(&mut self) -> Result<Step, String> {
        if !self.eat('[') {
            return Err(format!("expected '[' at offset {}", self.pos));
        }
        self.skip_ws();
        let step = if self.eat('*') {
            Step::Wildcard
        } else if self.eat('?') {
            self.skip_ws();
            if !self.eat('(') {
                return Err("expected '(' after '?'".into());
            }
            let f = self.filter()?;
            self.skip_ws();
            if !self.eat(')') {
                return Err("expected ')' to close the filter".into());
            }
            Step::Filter(f)
        } else {
            let mut keys = Vec::new();
            let mut slice = None;
            loop {
                self.skip_ws();
                if matches!(self.peek(), Some('\'' | '"')) {
                    keys.push(Key::Name(self.quoted()?));
                } else {
                    let a = self.int();
                    self.skip_ws();
                    if self.eat(':') {
                        self.skip_ws();
                        let b = self.int();
                        self.skip_ws();
                        let c = if self.eat(':') {
                            self.skip_ws();
                            self.int()
                        } else {
                            None
                        };
                        slice = Some(Step::Slice(a, b, c));
                        self.skip_ws();
                        break;
                    }
                    match a {
                        Some(i) => keys.push(Key::Index(i)),
                        None => return Err(format!("unexpected {:?} in brackets", self.peek())),
                    }
                }
                self.skip_ws();
                if !self.eat(',') {
                    break;
                }
            }
            match (slice, keys.len()) {
                (Some(s), 0) => s,
                (Some(_), _) => return Err("a slice cannot be part of a union".into()),
                (None, 1) => match keys.remove(0) {
                    Key::Index(i) => Step::Index(i),
                    Key::Name(n) => Step::Field(n),
                },
                (None, _) => Step::Union(keys),
            }
        };
        self.skip_ws();
        if !self.eat(']') {
            return Err(format!("expected ']' at offset {}", self.pos));
        }
        Ok(step)
    }

    fn filter(&mut self) -> Result<Filter, String> {
        self.skip_ws();
        let left = self.operand()?;
        self.skip_ws();
        let cmp = match (self.peek(), self.chars.get(self.pos + 1).copied()) {
            (Some('='), Some('=')) => Some((Cmp::Eq, 2)),
            (Some('!'), Some('=')) => Some((Cmp::Ne, 2)),
            (Some('<'), Some('=')) => Some((Cmp::Le, 2)),
            (Some('>'), Some('=')) => Some((Cmp::Ge, 2)),
            (Some('<'), _) => Some((Cmp::Lt, 1)),
            (Some('>'), _) => Some((Cmp::Gt, 1)),
            _ => None,
        };
        let Some((cmp, len)) = cmp else { return Ok(Filter { left, cmp: None }) };
        self.pos += len;
        self.skip_ws();
        let right = self.operand()?;
        Ok(Filter { left, cmp: Some((cmp, right)) })
    }

    fn operand(&mut self) -> Result<Operand, String> {
        match self.peek() {
            Some('@') => {
                self.pos += 1;
                Ok(Operand::Current(self.steps(true)?))
            }
            Some('\'' | '"') => Ok(Operand::Literal(Value::String(self.quoted()?))),
            Some(c) if c == '-' || c.is_ascii_digit() => {
                let start = self.pos;
                self.pos += 1;
                while self
                    .peek()
                    .is_some_and(|c| c.is_ascii_digit() || matches!(c, '.' | 'e' | 'E' | '+' | '-'))
                {
                    self.pos += 1;
                }
                let text: String = self.chars[start..self.pos].iter().collect();
                serde_json::from_str::<serde_json::Number>(&text)
                    .map(|n| Operand::Literal(Value::Number(n)))
                    .map_err(|_| format!("invalid number {text:?}"))
            }
            _ => {
                let word = self.name();
                match word.as_str() {
                    "true" => Ok(Operand::Literal(Value::Bool(true))),
                    "false" => Ok(Operand::Literal(Value::Bool(false))),
                    "null" | "nil" => Ok(Operand::Literal(Value::Null)),
                    _ => Err(format!("unexpected {word:?} in filter")),
                }
            }
        }
    }
}

#[cfg(test)]
mod tests;
