//! Formula tables: every expected figure is worked out by hand from expr-lang's documented
//! operators and precedence, not from the evaluator.

use std::collections::BTreeMap;

use super::{Formula, MAX_DEPTH, MAX_FORMULA_LEN, MAX_TREE_DEPTH};

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
    // `??` binds tighter than `+`: (a ?? 1) + 2.
    assert_eq!(eval("a ?? 1 + 2", &[("a", None)]), Ok(Some(3.0)));
    assert_eq!(eval("a ?? 1 + 2", &[("a", Some(10.0))]), Ok(Some(12.0)));
}

#[test]
fn evaluation_errors() {
    for (src, v, needle) in [
        ("a / 0", vec![("a", Some(1.0))], "division by zero"),
        ("a % 0", vec![("a", Some(1.0))], "modulo by zero"),
        ("a % 2", vec![("a", Some(1.5))], "whole numbers"),
        ("a + 1", vec![("a", None)], "`+` needs a number, found nil"),
        ("a ? 1 : 2", vec![("a", Some(2.0))], "condition of `?:` needs a boolean"),
        ("10 ** 400", vec![], "not a finite number"),
    ] {
        let got = eval(src, &v);
        assert!(matches!(&got, Err(e) if e.contains(needle)), "{src}: {got:?}");
    }
}

#[test]
fn unsupported_syntax_is_refused_with_its_offset() {
    for (src, offset, needle) in [
        ("count([trig_one,trig_two],{#>1}) > 1 ? 5 : 0", 0, "unsupported function \"count\""),
        ("[a, b]", 0, "arrays"),
        ("a + \"x\"", 4, "string literals"),
        ("a.b", 1, "member access"),
        ("a in b", 2, "\"in\""),
        ("a ?.b", 2, "optional chaining"),
        ("a | b", 2, "pipes"),
        ("a +", 3, "expected a value"),
        ("(a + b", 6, "expected \")\""),
        ("a b", 2, "unexpected name \"b\""),
        ("abs(a, b)", 0, "abs() takes exactly 1 argument, found 2"),
        ("min()", 0, "at least 1"),
        ("", 0, "empty"),
        ("a ? b", 5, "expected \":\""),
        ("1.2.3", 3, "malformed number"),
        ("a > 1", 0, "yields a boolean"),
        ("a ? b > 1 : !c", 0, "yields a boolean"),
        ("a @ b", 2, "unsupported character '@'"),
        // Offsets count characters, not bytes.
        ("é + [", 4, "arrays"),
    ] {
        let err = Formula::compile(src).expect_err(src);
        assert_eq!(err.offset, Some(offset), "{src}: {err}");
        assert!(err.message.contains(needle), "{src}: {err}");
    }
}

#[test]
fn variables_are_listed_with_their_first_offset() {
    let f = Formula::compile("(trig_one + trig_two) / 2 + trig_one").unwrap();
    assert_eq!(f.variables(), &[("trig_one".to_owned(), 1), ("trig_two".to_owned(), 12)]);
    assert!(Formula::compile("true ? nil : 1").unwrap().variables().is_empty());
}

#[test]
fn hostile_input_is_bounded() {
    let long = "1+".repeat(MAX_FORMULA_LEN);
    assert!(Formula::compile(&long).unwrap_err().message.contains("at most"));
    let deep = format!("{}1{}", "(".repeat(MAX_DEPTH + 1), ")".repeat(MAX_DEPTH + 1));
    assert!(Formula::compile(&deep).unwrap_err().message.contains("nests deeper"));
    let unary = "-".repeat(500) + "1";
    assert!(Formula::compile(&unary).is_err());
    // The longest chain accepted evaluates; one more operator is refused.
    let chain = format!("1{}", "+1".repeat(MAX_TREE_DEPTH - 1));
    assert_eq!(Formula::compile(&chain).unwrap().eval(&BTreeMap::new()), Ok(Some(MAX_TREE_DEPTH as f64)));
    let longer = format!("1{}", "+1".repeat(MAX_TREE_DEPTH));
    assert!(Formula::compile(&longer).unwrap_err().message.contains("nested operations"));
    for junk in ["?", ":", ")", ",", "((((", "1 ? : 2", "max(,)", "\u{0}", "9e99999"] {
        let _ = Formula::compile(junk).map(|f| f.eval(&BTreeMap::new()));
    }
}
