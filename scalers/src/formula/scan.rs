//! A lexical pass over a formula before the expr-lang crate sees it: the bounds that keep
//! hostile input cheap (nesting, operator count), the constructs refused because the crate
//! mishandles them (map literals, a `??` whose right side holds a lower-precedence operator),
//! the formula's variables (the crate's syntax tree is private) and the "yields a boolean"
//! refusal for a formula whose top-level operator is a comparison or a logical operator.
//! Offsets are 0-based character offsets.

use super::{FormulaError, MAX_DEPTH, MAX_INDEX_DEPTH, MAX_OPERATORS};

#[derive(Debug, Clone, PartialEq)]
enum Kind {
    Ident(String),
    Number,
    Str,
    Punct(&'static str),
    Open(char),
    Close,
    Other,
}

#[derive(Debug, Clone)]
struct Tok {
    kind: Kind,
    at: usize,
    depth: usize,
}

/// Symbols, longest first so that `??` wins over `?`.
const PUNCTS: [&str; 29] = [
    "?.", "??", "**", "==", "!=", "<=", ">=", "&&", "||", "..", "+", "-", "*", "/", "%", "^", "<", ">", "!",
    "?", ":", "|", ".", ",", ";", "=", "(", "[", "{",
];
/// Words that are operators, literals or keywords rather than variables.
const KEYWORDS: [&str; 13] = [
    "true",
    "false",
    "nil",
    "not",
    "and",
    "or",
    "in",
    "contains",
    "matches",
    "startsWith",
    "endsWith",
    "let",
    "if",
];
const WORD_OPERATORS: [&str; 8] = ["not", "and", "or", "in", "contains", "matches", "startsWith", "endsWith"];
/// Binary operators of lower precedence than expr-lang's `??` (all of them), plus the ternary
/// and the pipe.
const BINARY: [&str; 18] =
    ["**", "==", "!=", "<=", ">=", "&&", "||", "..", "+", "-", "*", "/", "%", "^", "<", ">", "?", "|"];
const BOOLEAN: [&str; 8] = ["==", "!=", "<=", ">=", "&&", "||", "<", ">"];

/// What the scan found in a formula that passed it.
pub(super) struct Scan {
    /// Every variable read, with the offset of its first use, in order of use.
    pub variables: Vec<(String, usize)>,
}

pub(super) fn scan(src: &str) -> Result<Scan, FormulaError> {
    let toks = lex(src)?;
    let operators = toks
        .iter()
        .filter(|t| match &t.kind {
            Kind::Punct(p) => ![",", ";", ":", "="].contains(p),
            Kind::Ident(w) => WORD_OPERATORS.contains(&w.as_str()),
            _ => false,
        })
        .count();
    if operators > MAX_OPERATORS {
        return Err(FormulaError::eval(format!(
            "formula has {operators} operators; at most {MAX_OPERATORS} are accepted"
        )));
    }
    refuse_map_literals(&toks)?;
    refuse_ambiguous_coalescing(&toks)?;
    refuse_boolean(&toks)?;
    Ok(Scan { variables: variables(&toks) })
}

fn lex(src: &str) -> Result<Vec<Tok>, FormulaError> {
    let c: Vec<char> = src.chars().collect();
    let (mut i, mut depth, mut index_depth) = (0, 0usize, 0usize);
    let mut brackets: Vec<char> = Vec::new();
    let mut out: Vec<Tok> = Vec::new();
    while i < c.len() {
        let ch = c[i];
        let at = i;
        let next = c.get(i + 1).copied();
        if ch.is_whitespace() {
            i += 1;
            continue;
        }
        if ch == '/' && next == Some('/') {
            while i < c.len() && c[i] != '\n' {
                i += 1;
            }
            continue;
        }
        if ch == '/' && next == Some('*') {
            i += 2;
            while i < c.len() && !(c[i] == '*' && c.get(i + 1) == Some(&'/')) {
                i += 1;
            }
            i += 2;
            continue;
        }
        let bytes_prefix = (ch == 'b' || ch == 'B') && matches!(next, Some('"' | '\''));
        if matches!(ch, '"' | '\'' | '`') || bytes_prefix {
            if bytes_prefix {
                i += 1;
            }
            let quote = c[i];
            i += 1;
            while i < c.len() && c[i] != quote {
                i += if c[i] == '\\' && quote != '`' { 2 } else { 1 };
            }
            i += 1;
            out.push(Tok { kind: Kind::Str, at, depth });
            continue;
        }
        let after_operand = matches!(
            out.last().map(|t| &t.kind),
            Some(Kind::Ident(_) | Kind::Number | Kind::Str | Kind::Close)
        );
        if ch.is_ascii_digit() || (ch == '.' && next.is_some_and(|n| n.is_ascii_digit()) && !after_operand) {
            i += 1;
            while i < c.len() {
                let d = c[i];
                let exp_sign = matches!(d, '+' | '-')
                    && matches!(c[i - 1], 'e' | 'E')
                    && !matches!(c.get(at + 1), Some('x' | 'X'));
                if d.is_ascii_alphanumeric()
                    || d == '_'
                    || (d == '.' && c.get(i + 1) != Some(&'.'))
                    || exp_sign
                {
                    i += 1;
                } else {
                    break;
                }
            }
            out.push(Tok { kind: Kind::Number, at, depth });
            continue;
        }
        if ch.is_ascii_alphabetic() || matches!(ch, '_' | '$' | '#') {
            i += 1;
            while i < c.len() && (c[i].is_ascii_alphanumeric() || c[i] == '_') {
                i += 1;
            }
            out.push(Tok { kind: Kind::Ident(c[at..i].iter().collect()), at, depth });
            continue;
        }
        if matches!(ch, ')' | ']' | '}') {
            if let Some(open) = brackets.pop() {
                depth = depth.saturating_sub(1);
                if open == '[' {
                    index_depth = index_depth.saturating_sub(1);
                }
            }
            i += 1;
            out.push(Tok { kind: Kind::Close, at, depth });
            continue;
        }
        let rest: String = c[i..c.len().min(i + 2)].iter().collect();
        let Some(p) = PUNCTS.iter().find(|p| rest.starts_with(**p)) else {
            i += 1;
            out.push(Tok { kind: Kind::Other, at, depth });
            continue;
        };
        i += p.chars().count();
        if let Some(open) = ["(", "[", "{"].iter().position(|o| o == p) {
            let open = ['(', '[', '{'][open];
            out.push(Tok { kind: Kind::Open(open), at, depth });
            depth += 1;
            brackets.push(open);
            if depth > MAX_DEPTH {
                return Err(FormulaError::at(at, format!("formula nests deeper than {MAX_DEPTH} levels")));
            }
            if open == '[' {
                index_depth += 1;
                if index_depth > MAX_INDEX_DEPTH {
                    return Err(FormulaError::at(
                        at,
                        format!("brackets `[` nest deeper than {MAX_INDEX_DEPTH} levels"),
                    ));
                }
            }
            continue;
        }
        out.push(Tok { kind: Kind::Punct(p), at, depth });
    }
    Ok(out)
}

/// The crate panics on a map literal whose value is not a plain literal, and drops the rest of
/// an expression value (`{a: 1 + 1}` is `{a: 1}`): map literals are refused.
fn refuse_map_literals(toks: &[Tok]) -> Result<(), FormulaError> {
    for (i, t) in toks.iter().enumerate() {
        if t.kind != Kind::Open('{') {
            continue;
        }
        let empty = matches!(toks.get(i + 1).map(|t| &t.kind), Some(Kind::Close));
        let keyed = matches!(toks.get(i + 1).map(|t| &t.kind), Some(Kind::Ident(_) | Kind::Str))
            && toks.get(i + 2).map(|t| &t.kind) == Some(&Kind::Punct(":"));
        if empty || keyed {
            return Err(FormulaError::at(t.at, "map literals are not supported"));
        }
    }
    Ok(())
}

fn is_operand(kind: &Kind) -> bool {
    match kind {
        Kind::Ident(w) => !KEYWORDS.contains(&w.as_str()) || ["true", "false", "nil"].contains(&w.as_str()),
        Kind::Number | Kind::Str | Kind::Close => true,
        _ => false,
    }
}

fn is_binary(toks: &[Tok], i: usize) -> bool {
    match &toks[i].kind {
        // `+` and `-` are binary after an operand, unary otherwise.
        Kind::Punct("+" | "-") => i > 0 && is_operand(&toks[i - 1].kind),
        Kind::Punct(p) => BINARY.contains(p),
        Kind::Ident(w) if w == "not" => {
            matches!(toks.get(i + 1).map(|t| &t.kind), Some(Kind::Ident(n)) if n == "in")
        }
        Kind::Ident(w) => WORD_OPERATORS.contains(&w.as_str()) && w != "not",
        _ => false,
    }
}

/// In expr-lang `??` binds tighter than every other binary operator (`a ?? 1 + 2` is
/// `(a ?? 1) + 2`), but the crate takes the whole rest of the expression as its right operand.
/// A `??` whose right side holds another binary operator at the same level would mean something
/// else than in KEDA, so it is refused with a hint to parenthesize.
fn refuse_ambiguous_coalescing(toks: &[Tok]) -> Result<(), FormulaError> {
    for (i, t) in toks.iter().enumerate() {
        if t.kind != Kind::Punct("??") {
            continue;
        }
        for j in i + 1..toks.len() {
            let u = &toks[j];
            if u.depth < t.depth || (u.depth == t.depth && matches!(u.kind, Kind::Close)) {
                break;
            }
            if u.depth > t.depth {
                continue;
            }
            if matches!(u.kind, Kind::Punct("," | ":" | ";")) {
                break;
            }
            if u.kind != Kind::Punct("??") && is_binary(toks, j) {
                return Err(FormulaError::at(
                    u.at,
                    "`??` binds tighter than any other operator: parenthesize, e.g. `(a ?? 1) + 2` \
                     or `a ?? (1 + 2)`",
                ));
            }
        }
    }
    Ok(())
}

/// A formula whose top-level operator is a comparison or a logical operator yields a boolean
/// (KEDA's compile-time check refuses it too). Formulas whose result type depends on a ternary,
/// a pipe or a binding are left to evaluation, which reports a non-number result.
fn refuse_boolean(toks: &[Tok]) -> Result<(), FormulaError> {
    let top = || toks.iter().enumerate().filter(|(_, t)| t.depth == 0);
    let opaque = top().any(|(_, t)| match &t.kind {
        Kind::Punct(p) => ["?", "|"].contains(p),
        Kind::Ident(w) => ["let", "if"].contains(&w.as_str()),
        _ => false,
    });
    let boolean = top().any(|(i, t)| match &t.kind {
        Kind::Punct(p) => BOOLEAN.contains(p),
        Kind::Ident(w) => WORD_OPERATORS.contains(&w.as_str()) && is_binary(toks, i),
        _ => false,
    });
    let literal = toks.len() == 1 && matches!(&toks[0].kind, Kind::Ident(w) if w == "true" || w == "false");
    if (boolean && !opaque) || literal {
        return Err(FormulaError::at(0, "formula yields a boolean; it must yield a number"));
    }
    Ok(())
}

fn variables(toks: &[Tok]) -> Vec<(String, usize)> {
    let mut bound: Vec<&str> = Vec::new();
    let mut out: Vec<(String, usize)> = Vec::new();
    for (i, t) in toks.iter().enumerate() {
        let Kind::Ident(name) = &t.kind else { continue };
        let prev = i.checked_sub(1).map(|p| &toks[p].kind);
        if prev == Some(&Kind::Ident("let".into())) {
            bound.push(name);
            continue;
        }
        let member = matches!(prev, Some(Kind::Punct("." | "?.")));
        let call = toks.get(i + 1).map(|t| &t.kind) == Some(&Kind::Open('('));
        if member
            || call
            || name.starts_with('#')
            || name == "$env"
            || KEYWORDS.contains(&name.as_str())
            || name == "else"
            || bound.contains(&name.as_str())
            || out.iter().any(|(v, _)| v == name)
        {
            continue;
        }
        out.push((name.clone(), t.at));
    }
    out
}
