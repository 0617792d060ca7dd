//! Formula tables: every expected figure is worked out by hand from expr-lang's documented
//! operators and precedence (and Go expr's runtime semantics), not from the evaluator.

use std::collections::BTreeMap;

use super::{Formula, MAX_DEPTH, MAX_FORMULA_LEN, MAX_INDEX_DEPTH, MAX_OPERATORS};

fn vars(list: &[(&str, Option<f64>)]) -> BTreeMap<String, Option<f64>> {
    list.iter().map(|(k, v)| ((*k).to_owned(), *v)).collect()
}

fn eval(src: &str, v: &[(&str, Option<f64>)]) -> Result<Option<f64>, String> {
    Formula::compile(src).map_err(|e| e.to_string())?.eval(&vars(v)).map_err(|e| e.to_string())
}

#[test]
fn arithmetic_precedence_and_functions() {
    let v = [("trig_one", Some(2.0)), ("trig_two", Some(5.0)), ("a", Some(-3.5))];
    for (src, want) in [
        // The documentation's average: (2 + 5) / 2.
        ("(trig_one + trig_two)/2", 3.5),
        ("trig_one + trig_two * 2", 12.0),
        ("7 / 2", 3.5),
        ("7 % 3", 1.0),
        ("-7 % 3", -1.0),
        ("2 ** 3 ** 2", 512.0),
        ("2 ^ 3", 8.0),
        ("-2 ** 2", -4.0),
        ("10 - 4 - 3", 3.0),
        ("min(trig_one, trig_two, 4)", 2.0),
        ("max(trig_one, trig_two, 4)", 5.0),
        ("abs(a)", 3.5),
        ("round(a)", -4.0),
        ("round(2.5)", 3.0),
        ("floor(a)", -4.0),
        ("ceil(a)", -3.0),
        ("1_000 + 1e2 + 2.5E-1", 1100.25),
        // Conditions, as in the documentation's conditional example.
        ("trig_one < 2 ? trig_one + trig_two : 1", 1.0),
        ("trig_one <= 2 ? trig_one + trig_two : 1", 7.0),
        ("trig_one > 1 && trig_two > 1 ? 10 : 0", 10.0),
        ("trig_one > 3 || trig_two == 5 ? 10 : 0", 10.0),
        ("!(trig_one > 3) ? 1 : 0", 1.0),
        ("not (trig_one > 3) and trig_two != 5 ? 1 : 0", 0.0),
        ("trig_one > 3 ? 1 : trig_two > 3 ? 2 : 3", 2.0),
    ] {
        assert_eq!(eval(src, &v), Ok(Some(want)), "{src}");
    }
}

#[test]
fn nil_coalescing() {
    let all = [("best_metric", Some(4.0)), ("slower_metric", Some(6.0)), ("metric_backup", Some(9.0))];
    let f = "best_metric ?? slower_metric ?? metric_backup ?? 8";
    assert_eq!(eval(f, &all), Ok(Some(4.0)));
    assert_eq!(
        eval(f, &[("best_metric", None), ("slower_metric", Some(6.0)), ("metric_backup", Some(9.0))]),
        Ok(Some(6.0))
    );
    assert_eq!(
        eval(f, &[("best_metric", None), ("slower_metric", None), ("metric_backup", Some(9.0))]),
        Ok(Some(9.0))
    );
    assert_eq!(
        eval(f, &[("best_metric", None), ("slower_metric", None), ("metric_backup", None)]),
        Ok(Some(8.0))
    );
    // Without a literal last, every trigger failing yields nil (fallback.replicas applies).
    assert_eq!(eval("a ?? b", &[("a", None), ("b", None)]), Ok(None));
    // In expr-lang `??` binds tighter than `+` ((a ?? 1) + 2); the crate would read a ?? (1 + 2),
    // so the unparenthesized form is refused and either grouping is accepted.
    let err = Formula::compile("a ?? 1 + 2").unwrap_err();
    assert_eq!(err.offset, Some(7), "{err}");
    assert!(err.message.contains("parenthesize"), "{err}");
    assert_eq!(eval("(a ?? 1) + 2", &[("a", None)]), Ok(Some(3.0)));
    assert_eq!(eval("(a ?? 1) + 2", &[("a", Some(10.0))]), Ok(Some(12.0)));
    assert_eq!(eval("a ?? (1 + 2)", &[("a", None)]), Ok(Some(3.0)));
    assert_eq!(eval("a + b ?? 1", &[("a", Some(1.0)), ("b", None)]), Ok(Some(2.0)));
}

#[test]
fn keda_documented_examples() {
    // KEDA's scalingModifiers examples: the count of triggers above 1 decides 5 or 0.
    let f = "count([trig_one, trig_two], {# > 1}) > 1 ? 5 : 0";
    assert_eq!(eval(f, &[("trig_one", Some(2.0)), ("trig_two", Some(5.0))]), Ok(Some(5.0)));
    assert_eq!(eval(f, &[("trig_one", Some(2.0)), ("trig_two", Some(0.5))]), Ok(Some(0.0)));
    let f = "trig_one < 2 ? trig_one + trig_two >= 2 ? 5 : 10 : 0";
    // 1.5 < 2 and 1.5 + 3 >= 2: 5; 1.5 + 0.25 < 2: 10; 2.5 is not < 2: 0.
    assert_eq!(eval(f, &[("trig_one", Some(1.5)), ("trig_two", Some(3.0))]), Ok(Some(5.0)));
    assert_eq!(eval(f, &[("trig_one", Some(1.5)), ("trig_two", Some(0.25))]), Ok(Some(10.0)));
    assert_eq!(eval(f, &[("trig_one", Some(2.5)), ("trig_two", Some(3.0))]), Ok(Some(0.0)));
}

#[test]
fn evaluation_errors() {
    for (src, v, needle) in [
        // Go expr: float division by zero is +Inf; ebb serves finite values only.
        ("a / 0", vec![("a", Some(1.0))], "not a finite number"),
        // Go expr: `%` needs integers, and trigger values are floats.
        ("a % 0", vec![("a", Some(1.0))], "operator %"),
        ("a % 2", vec![("a", Some(1.5))], "operator %"),
        ("7 % 0", vec![], "divide by zero"),
        ("a + 1", vec![("a", None)], "operator +"),
        ("a ? 1 : 2", vec![("a", Some(2.0))], "condition"),
        ("10 ** 400", vec![], "not a finite number"),
        // Both branches boolean: compiled, refused when evaluated.
        ("a > 1 ? a > 2 : !true", vec![("a", Some(2.0))], "yields a boolean"),
        ("abs(a, a)", vec![("a", Some(2.0))], "abs"),
        ("nosuch(a)", vec![("a", Some(2.0))], "nosuch"),
    ] {
        let got = eval(src, &v);
        assert!(matches!(&got, Err(e) if e.contains(needle)), "{src}: {got:?}");
    }
    // Integer results are numbers too: 7 / 2 is 3.5 in expr (float division), 7 % 3 is 1.
    assert_eq!(eval("7 % 3 + 7 / 2", &[]), Ok(Some(4.5)));
}

#[test]
fn refusals_name_their_offset() {
    for (src, offset, needle) in [
        ("a +", 3, "ends too early"),
        ("(a + b", 6, "ends too early"),
        ("a b", 2, "unexpected 'b'"),
        ("a ?", 3, "ends too early"),
        ("a @ b", 2, "unexpected '@'"),
        ("1.2.3", 4, "unexpected '3'"),
        ("a +\n  @", 6, "unexpected '@'"),
        // Offsets count characters, not bytes.
        ("é + [", 0, "unexpected 'é'"),
        ("", 0, "empty"),
        ("a > 1", 0, "yields a boolean"),
        ("a + 1 == 2 && true", 0, "yields a boolean"),
        ("{a: 1}", 0, "map literals"),
        ("a + len({\"k\": {}})", 8, "map literals"),
    ] {
        let err = Formula::compile(src).expect_err(src);
        assert_eq!(err.offset, Some(offset), "{src}: {err}");
        assert!(err.message.contains(needle), "{src}: {err}");
    }
    assert!(Formula::compile("9e99999").unwrap_err().message.contains("out of range"));
}

#[test]
fn variables_are_listed_with_their_first_offset() {
    let names = |src: &str| -> Vec<(String, usize)> { Formula::compile(src).unwrap().variables().to_vec() };
    assert_eq!(
        names("(trig_one + trig_two) / 2 + trig_one"),
        [("trig_one".to_owned(), 1), ("trig_two".to_owned(), 12)]
    );
    assert!(names("true ? nil : 1").is_empty());
    assert_eq!(names("count([a, b], {# > 1})"), [("a".to_owned(), 7), ("b".to_owned(), 10)]);
    // Not variables: a `let` binding, a function, a member, a string's content, a comment.
    assert_eq!(
        names("let x = a; x + min(b, 1) + len(\"c d\") + [e][0] // f"),
        [("a".to_owned(), 8), ("b".to_owned(), 19), ("e".to_owned(), 41)]
    );
    assert_eq!(names("a?.b ?? c"), [("a".to_owned(), 0), ("c".to_owned(), 8)]);
}

/// Runs compile and eval of `src` on a thread with tokio's default worker stack (2 MiB).
fn on_worker_stack(src: String) -> Result<Option<f64>, String> {
    std::thread::Builder::new()
        .stack_size(2 << 20)
        .spawn(move || {
            let vars = vars(&[("a", Some(2.0)), ("b", Some(5.0))]);
            Formula::compile(&src).map_err(|e| e.to_string())?.eval(&vars).map_err(|e| e.to_string())
        })
        .unwrap()
        .join()
        .unwrap()
}

#[test]
fn hostile_input_is_bounded() {
    let long = "1+".repeat(MAX_FORMULA_LEN);
    assert!(Formula::compile(&long).unwrap_err().message.contains("at most"));
    let deep = format!("{}1{}", "(".repeat(MAX_DEPTH + 1), ")".repeat(MAX_DEPTH + 1));
    assert!(Formula::compile(&deep).unwrap_err().message.contains("nests deeper"));
    let index = format!("a{}0{}", "[a".repeat(MAX_INDEX_DEPTH + 1), "]".repeat(MAX_INDEX_DEPTH + 1));
    assert!(Formula::compile(&index).unwrap_err().message.contains("nest deeper"));
    let many = format!("1{}", "+1".repeat(MAX_OPERATORS + 1));
    assert!(Formula::compile(&many).unwrap_err().message.contains("operators"));
    // The crate panics on these map literals; they are refused before it sees them.
    for map in ["{a: {a: 1}}", "{a: a}", "[{\"a\": (1)}]"] {
        assert!(Formula::compile(map).unwrap_err().message.contains("map literals"), "{map}");
    }
    // At the caps, compile and eval stay within a 2 MiB stack.
    let n = MAX_OPERATORS;
    let d = MAX_DEPTH;
    let cases: Vec<(String, Result<Option<f64>, String>)> = vec![
        (format!("1{}", "+1".repeat(n)), Ok(Some((n + 1) as f64))),
        (format!("{}1{}{}", "(".repeat(d), "+1".repeat(n), ")".repeat(d)), Ok(Some((n + 1) as f64))),
        (format!("{}1{}", "-(".repeat(d), ")".repeat(d)), Ok(Some(1.0))),
        (format!("{}2{}{}", "(".repeat(d), "**1".repeat(n), ")".repeat(d)), Ok(Some(2.0))),
        (format!("{}a{}", "a > 1 ? b : ".repeat(n / 2), ""), Ok(Some(5.0))),
        (format!("{}a{}{}", "(".repeat(d), "??a".repeat(n), ")".repeat(d)), Ok(Some(2.0))),
        (format!("{}0{}", "count([1],{".repeat(d / 2), "})".repeat(d / 2)), Err("predicate".into())),
        (
            format!(
                "{}{}0{}",
                "(".repeat(d - MAX_INDEX_DEPTH),
                "[".repeat(MAX_INDEX_DEPTH),
                "]".repeat(MAX_INDEX_DEPTH) + &")".repeat(d - MAX_INDEX_DEPTH)
            ),
            Err("array".into()),
        ),
    ];
    for (src, want) in cases {
        let got = on_worker_stack(src.clone());
        match want {
            Ok(v) => assert_eq!(got, Ok(v), "{src}"),
            Err(needle) => assert!(matches!(&got, Err(e) if e.contains(&needle)), "{src}: {got:?}"),
        }
    }
    // Nested postfix `[` at the cap, repeated up to the length limit, parses quickly.
    let one = format!("a{}0{}", "[a".repeat(MAX_INDEX_DEPTH), "]".repeat(MAX_INDEX_DEPTH));
    let mut src = one.clone();
    while src.len() + one.len() < MAX_FORMULA_LEN && src.matches('+').count() < MAX_OPERATORS {
        src = format!("{src}+{one}");
    }
    let started = std::time::Instant::now();
    assert!(Formula::compile(&src).is_ok(), "{src}");
    assert!(started.elapsed() < std::time::Duration::from_secs(2), "{:?} for {src}", started.elapsed());
    for junk in [
        "?", ":", ")", ",", "((((", "1 ? : 2", "max(,)", "\u{0}", "9e99999", "\"", "b'", "/*", "{", "}", "#",
        "$env", "let", "a[:", "a?.", "1..", "..1",
    ] {
        let _ = Formula::compile(junk).map(|f| f.eval(&BTreeMap::new()));
    }
}
