//! The string form's lexer and parser, following kube-apiserver's `labels.Parse`: tokens are
//! separated by ' ', '\t', '\r' and '\n' only (any other byte belongs to a key or value), the
//! special characters are `! = > < , ( )`, and `in`/`notin` are operators only where an operator
//! is expected. One pass over the bytes, then one over the tokens; no recursion.

use std::fmt;

use super::{LabelOp, Requirement, SelectorError, err, validate_label_key};

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Tok<'a> {
    Ident(&'a str),
    Bang,
    NotEq,
    Eq,
    DoubleEq,
    Gt,
    Lt,
    Comma,
    Open,
    Close,
    End,
}

impl fmt::Display for Tok<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Tok::Ident(s) => s,
            Tok::Bang => "!",
            Tok::NotEq => "!=",
            Tok::Eq => "=",
            Tok::DoubleEq => "==",
            Tok::Gt => ">",
            Tok::Lt => "<",
            Tok::Comma => ",",
            Tok::Open => "(",
            Tok::Close => ")",
            Tok::End => "",
        })
    }
}

/// The blanks that separate tokens (apimachinery's `isWhitespace`).
fn is_blank(b: u8) -> bool {
    matches!(b, b' ' | b'\t' | b'\r' | b'\n')
}

fn is_special(b: u8) -> bool {
    matches!(b, b'!' | b'=' | b'>' | b'<' | b',' | b'(' | b')')
}

/// Splits `s` into tokens, ending with [`Tok::End`]. Token boundaries fall on ASCII bytes, so
/// every identifier is a whole UTF-8 slice of `s`.
fn lex(s: &str) -> Vec<Tok<'_>> {
    let bytes = s.as_bytes();
    let mut out = Vec::new();
    let mut i = 0;
    while let Some(&b) = bytes.get(i) {
        if is_blank(b) {
            i += 1;
            continue;
        }
        let (tok, len) = match (b, bytes.get(i + 1)) {
            (b'!', Some(b'=')) => (Tok::NotEq, 2),
            (b'!', _) => (Tok::Bang, 1),
            (b'=', Some(b'=')) => (Tok::DoubleEq, 2),
            (b'=', _) => (Tok::Eq, 1),
            (b'>', _) => (Tok::Gt, 1),
            (b'<', _) => (Tok::Lt, 1),
            (b',', _) => (Tok::Comma, 1),
            (b'(', _) => (Tok::Open, 1),
            (b')', _) => (Tok::Close, 1),
            _ => {
                let rest = bytes.get(i..).unwrap_or_default();
                let len = rest.iter().position(|&c| is_blank(c) || is_special(c)).unwrap_or(rest.len());
                (Tok::Ident(s.get(i..i + len).unwrap_or_default()), len)
            }
        };
        out.push(tok);
        i += len;
    }
    out.push(Tok::End);
    out
}

/// Parses the string form into its requirements, in written order.
pub(super) fn parse(s: &str) -> Result<Vec<Requirement>, SelectorError> {
    let mut p = Parser { tokens: lex(s), pos: 0 };
    let mut reqs = Vec::new();
    loop {
        match p.peek() {
            Tok::Ident(_) | Tok::Bang => {
                let r = p.requirement().map_err(|e| err(format!("unable to parse requirement: {}", e.0)))?;
                reqs.push(r);
                match p.next() {
                    Tok::End => break,
                    Tok::Comma => match p.peek() {
                        Tok::Ident(_) | Tok::Bang => {}
                        t => return Err(err(format!("found '{t}', expected: identifier after ','"))),
                    },
                    t => return Err(err(format!("found '{t}', expected: ',' or 'end of string'"))),
                }
            }
            Tok::End => break,
            t => return Err(err(format!("found '{t}', expected: !, identifier, or 'end of string'"))),
        }
    }
    Ok(reqs)
}

struct Parser<'a> {
    tokens: Vec<Tok<'a>>,
    pos: usize,
}

impl<'a> Parser<'a> {
    fn peek(&self) -> Tok<'a> {
        self.tokens.get(self.pos).copied().unwrap_or(Tok::End)
    }

    fn next(&mut self) -> Tok<'a> {
        let t = self.peek();
        if self.pos < self.tokens.len() {
            self.pos += 1;
        }
        t
    }

    fn requirement(&mut self) -> Result<Requirement, SelectorError> {
        let mut negated = false;
        let mut tok = self.next();
        if tok == Tok::Bang {
            negated = true;
            tok = self.next();
        }
        let Tok::Ident(key) = tok else {
            return Err(err(format!("found '{tok}', expected: identifier")));
        };
        validate_label_key(key)?;
        // `!key` takes no operator: whatever follows is for the selector to judge (a comma or
        // the end), as kube-apiserver does.
        if negated {
            return Requirement::new(key, LabelOp::DoesNotExist, Vec::new());
        }
        if matches!(self.peek(), Tok::End | Tok::Comma) {
            return Requirement::new(key, LabelOp::Exists, Vec::new());
        }
        let op = match self.next() {
            Tok::Ident("in") => LabelOp::In,
            Tok::Ident("notin") => LabelOp::NotIn,
            Tok::Eq => LabelOp::Equals,
            Tok::DoubleEq => LabelOp::DoubleEquals,
            Tok::NotEq => LabelOp::NotEquals,
            Tok::Gt => LabelOp::GreaterThan,
            Tok::Lt => LabelOp::LessThan,
            t => return Err(err(format!("found '{t}', expected: in, notin, =, ==, !=, gt, lt"))),
        };
        let values = match op {
            LabelOp::In | LabelOp::NotIn => self.set_values()?,
            _ => vec![self.exact_value()?],
        };
        Requirement::new(key, op, values)
    }

    fn exact_value(&mut self) -> Result<String, SelectorError> {
        match self.peek() {
            Tok::End | Tok::Comma => Ok(String::new()),
            Tok::Ident(v) => {
                self.pos += 1;
                Ok(v.to_owned())
            }
            t => Err(err(format!("found '{t}', expected: identifier"))),
        }
    }

    fn set_values(&mut self) -> Result<Vec<String>, SelectorError> {
        let t = self.next();
        if t != Tok::Open {
            return Err(err(format!("found '{t}' expected: '('")));
        }
        // As kube-apiserver's `labels.Parse`: `()` is the set holding the empty value; an empty
        // element stands for "" (`(,a)`, `(a,)`, `(a,,b)`), but `,,` right before `)` is an error.
        match self.peek() {
            Tok::Close => {
                self.pos += 1;
                return Ok(vec![String::new()]);
            }
            Tok::Ident(_) | Tok::Comma => {}
            t => return Err(err(format!("found '{t}', expected: ',', ')' or identifier"))),
        }
        let mut values = Vec::new();
        loop {
            match self.next() {
                Tok::Ident(v) => {
                    values.push(v.to_owned());
                    match self.peek() {
                        Tok::Comma => {}
                        Tok::Close => {
                            self.pos += 1;
                            return Ok(values);
                        }
                        t => return Err(err(format!("found '{t}', expected: ',' or ')'"))),
                    }
                }
                Tok::Comma => {
                    if values.is_empty() {
                        values.push(String::new());
                    }
                    match self.peek() {
                        Tok::Close => {
                            self.pos += 1;
                            values.push(String::new());
                            return Ok(values);
                        }
                        Tok::Comma => {
                            self.pos += 1;
                            values.push(String::new());
                        }
                        _ => {}
                    }
                }
                t => return Err(err(format!("found '{t}', expected: ',', or identifier"))),
            }
        }
    }
}
