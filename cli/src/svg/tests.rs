use super::*;
use chrono::Duration;

fn times(n: usize, step_minutes: i64) -> Vec<DateTime<FixedOffset>> {
    let base = DateTime::parse_from_rfc3339("2024-05-01T00:00:00+09:00").unwrap();
    (0..n).map(|i| base + Duration::minutes(step_minutes * i as i64)).collect()
}

fn chart(replicas: Vec<i32>, active: Vec<bool>, metrics: Vec<MetricSeries>) -> Chart {
    Chart {
        title: "demo".to_string(),
        times: times(replicas.len(), 15),
        replicas,
        active,
        min_replicas: 0,
        max_replicas: 2,
        metrics,
    }
}

/// Two hours at one-minute steps of a cron trigger active from :00 to :10 of each quarter.
fn cron_chart() -> Chart {
    let n = 120;
    let active: Vec<bool> = (0..n).map(|i| i % 15 < 10).collect();
    Chart {
        title: "php-apache-cron-scaled — cron (Asia/Seoul)".to_string(),
        times: times(n, 1),
        replicas: active.iter().map(|a| i32::from(*a)).collect(),
        active: active.clone(),
        min_replicas: 0,
        max_replicas: 2,
        metrics: vec![MetricSeries {
            name: "s0-cron-Asia-Seoul-00,15,30,45xxxx-05,20,35,50xxxx".to_string(),
            values: active.iter().map(|a| Some(if *a { 1.0 } else { 0.0 })).collect(),
            target: Some(1.0),
        }],
    }
}

fn parse(svg: &str) -> roxmltree::Document<'_> {
    roxmltree::Document::parse(svg).unwrap_or_else(|e| panic!("not well-formed: {e}\n{svg}"))
}

fn with_class<'a, 'i>(doc: &'a roxmltree::Document<'i>, class: &str) -> Vec<roxmltree::Node<'a, 'i>> {
    doc.descendants().filter(|n| n.attribute("class") == Some(class)).collect()
}

fn texts(doc: &roxmltree::Document<'_>) -> Vec<String> {
    doc.descendants()
        .filter(|n| n.has_tag_name("text"))
        .map(|n| n.children().filter(|c| c.is_text()).filter_map(|c| c.text()).collect())
        .collect()
}

fn points(node: roxmltree::Node<'_, '_>) -> Vec<(f64, f64)> {
    node.attribute("points")
        .unwrap()
        .split(' ')
        .map(|p| {
            let (x, y) = p.split_once(',').unwrap();
            (x.parse().unwrap(), y.parse().unwrap())
        })
        .collect()
}

fn assert_points(actual: &[(f64, f64)], expected: &[(f64, f64)]) {
    assert_eq!(actual.len(), expected.len(), "{actual:?} vs {expected:?}");
    for (a, e) in actual.iter().zip(expected) {
        assert!((a.0 - e.0).abs() < 0.06 && (a.1 - e.1).abs() < 0.06, "{actual:?} vs {expected:?}");
    }
}

#[test]
fn svg_is_well_formed_with_expected_size() {
    for (c, height) in [(cron_chart(), "480"), (chart(vec![1, 2], vec![true, false], vec![]), "300")] {
        let svg = render(&c).unwrap();
        let doc = parse(&svg);
        let root = doc.root_element();
        assert_eq!(root.tag_name().name(), "svg");
        assert_eq!(root.attribute("width"), Some("1000"));
        assert_eq!(root.attribute("height"), Some(height));
    }
}

#[test]
fn svg_replicas_step_line_follows_the_steps() {
    // 15-minute steps: x = 70, 272.5, 475, 677.5 and the end of the last step at 880.
    // Axis 0..3 over the plot from y 80 to 212 (6 px above the frame at 218):
    // y(0) = 212, y(1) = 168, y(2) = 124.
    let svg = render(&chart(vec![1, 1, 2, 0], vec![false, true, true, false], vec![])).unwrap();
    let doc = parse(&svg);
    let lines = with_class(&doc, "replicas");
    assert_eq!(lines.len(), 1);
    assert_points(
        &points(lines[0]),
        &[(70.0, 168.0), (475.0, 168.0), (475.0, 124.0), (677.5, 124.0), (677.5, 212.0), (880.0, 212.0)],
    );
    let bands = with_class(&doc, "active-band");
    assert_eq!(bands.len(), 1);
    assert_eq!(bands[0].attribute("x"), Some("272.5"));
    assert_eq!(bands[0].attribute("width"), Some("405"));
    // Axis labels 0..3, bound labels, legend.
    let t = texts(&doc);
    for expected in ["0", "1", "2", "3", "min 0", "max 2", "active", "replicas"] {
        assert!(t.iter().any(|s| s == expected), "{expected} missing: {t:?}");
    }
}

#[test]
fn svg_band_count_equals_active_runs() {
    let cases: [(&[bool], usize); 5] = [
        (&[false, false, false], 0),
        (&[true, true, true], 1),
        (&[true, false, true, true, false, true], 3),
        (&[false, true, false, true, false], 2),
        (&[true], 1),
    ];
    for (active, runs) in cases {
        let c = chart(vec![1; active.len()], active.to_vec(), vec![]);
        let svg = render(&c).unwrap();
        let doc = parse(&svg);
        assert_eq!(with_class(&doc, "active-band").len(), runs, "{active:?}");
    }
    let svg = render(&cron_chart()).unwrap();
    assert_eq!(with_class(&parse(&svg), "active-band").len(), 8);
}

#[test]
fn svg_escapes_user_text() {
    let title = "a <b> & 'c' \"d\"";
    let name = "s0-x,y<z>&w";
    let mut c = chart(
        vec![1, 0],
        vec![true, false],
        vec![MetricSeries { name: name.to_string(), values: vec![Some(1.0), Some(0.0)], target: Some(1.0) }],
    );
    c.title = title.to_string();
    let svg = render(&c).unwrap();
    assert!(!svg.contains("<b>") && !svg.contains("<z>") && !svg.contains("& "));
    let doc = parse(&svg);
    let t = texts(&doc);
    assert!(t.iter().any(|s| s == title), "{t:?}");
    assert!(t.iter().any(|s| s == name), "{t:?}");
    let svg_title = doc.root_element().children().find(|n| n.has_tag_name("title")).and_then(|n| n.text());
    assert_eq!(svg_title, Some(title));
}

#[test]
fn svg_drops_characters_xml_cannot_hold() {
    let mut c = chart(vec![1], vec![true], vec![]);
    c.title = "bad\u{1}\u{0}name\nnext".to_string();
    let svg = render(&c).unwrap();
    let doc = parse(&svg);
    assert!(texts(&doc).iter().any(|s| s == "badname next"));
}

#[test]
fn svg_rejects_inconsistent_input() {
    let ok = || chart(vec![1, 1], vec![true, true], vec![]);
    let metric =
        |n: usize| MetricSeries { name: "cpu".to_string(), values: vec![Some(1.0); n], target: None };
    let mut empty = ok();
    empty.times.clear();
    empty.replicas.clear();
    empty.active.clear();
    let mut short_replicas = ok();
    short_replicas.replicas.pop();
    let mut long_active = ok();
    long_active.active.push(false);
    let mut bad_metric = ok();
    bad_metric.metrics = vec![metric(2), metric(3)];
    let mut backwards = ok();
    backwards.times.reverse();
    let cases = [
        (empty, "chart has no time steps"),
        (short_replicas, "chart series replicas has 1 values but there are 2 time steps"),
        (long_active, "chart series active has 3 values but there are 2 time steps"),
        (bad_metric, "chart series metric \"cpu\" has 3 values but there are 2 time steps"),
        (backwards, "chart time steps must be ascending, but step 1 is earlier than step 0"),
    ];
    for (c, message) in cases {
        assert_eq!(render(&c).unwrap_err().to_string(), message);
    }
}

#[test]
fn svg_without_metrics_has_only_the_replicas_panel() {
    let svg = render(&chart(vec![0, 1, 2], vec![false, true, true], vec![])).unwrap();
    let doc = parse(&svg);
    assert_eq!(with_class(&doc, "replicas-panel").len(), 1);
    assert_eq!(with_class(&doc, "metric-panel").len(), 0);
    assert_eq!(with_class(&doc, "metric").len(), 0);
}

#[test]
fn svg_max_far_above_observed_is_noted_off_scale() {
    let mut c = chart(vec![1, 2, 1], vec![true, true, true], vec![]);
    c.max_replicas = 100;
    c.min_replicas = 1;
    let svg = render(&c).unwrap();
    let doc = parse(&svg);
    let t = texts(&doc);
    assert!(t.iter().any(|s| s == "max 100 (off scale)"), "{t:?}");
    assert!(t.iter().any(|s| s == "min 1"), "{t:?}");
    assert!(!t.iter().any(|s| s == "max 100"));
    // Axis stays near the observed range: 0..3.
    assert!(t.iter().any(|s| s == "3") && !t.iter().any(|s| s == "4"));
    assert_eq!(with_class(&doc, "bound").len(), 1);

    // A nearby max is drawn as a line.
    c.max_replicas = 5;
    let doc_svg = render(&c).unwrap();
    let t = texts(&parse(&doc_svg));
    assert!(t.iter().any(|s| s == "max 5"), "{t:?}");
}

#[test]
fn svg_metric_path_has_gaps_and_target() {
    // Axis 0..2.5 (step 0.5, headroom above 2) over y 260..392 in the second panel.
    let c = chart(
        vec![1, 1, 1, 1],
        vec![true; 4],
        vec![MetricSeries {
            name: "cpu".to_string(),
            values: vec![Some(1.0), None, Some(2.0), Some(f64::NAN)],
            target: Some(1.5),
        }],
    );
    let svg = render(&c).unwrap();
    let doc = parse(&svg);
    let paths = with_class(&doc, "metric");
    assert_eq!(paths.len(), 1);
    let y = |v: f64| 392.0 - v / 2.5 * 132.0;
    assert_eq!(
        paths[0].attribute("d"),
        Some(format!("M70,{a} L272.5,{a} M475,{b} L677.5,{b}", a = num(y(1.0)), b = num(y(2.0))).as_str())
    );
    let targets = with_class(&doc, "target");
    assert_eq!(targets.len(), 1);
    assert_eq!(targets[0].attribute("y1"), Some(num(y(1.5)).as_str()));
    assert!(texts(&doc).iter().any(|s| s == "target 1.5"));
}

#[test]
fn svg_metric_without_values_says_no_data() {
    let c = chart(
        vec![1, 1],
        vec![true; 2],
        vec![MetricSeries { name: "cpu".to_string(), values: vec![None, None], target: None }],
    );
    let svg = render(&c).unwrap();
    let doc = parse(&svg);
    assert!(with_class(&doc, "metric").is_empty());
    assert!(texts(&doc).iter().any(|s| s == "no data"));
}

#[test]
fn svg_time_ticks_pick_round_intervals() {
    // (steps, minutes per step, first labels, number of ticks)
    let cases: [(usize, i64, &[&str], usize); 4] = [
        (120, 1, &["00:00", "00:15", "00:30"], 9),
        (96, 15, &["00:00", "03:00", "06:00"], 9),
        (12, 1, &["00:00", "00:02", "00:04"], 7),
        (7, 1440, &["00:00", "00:00"], 8),
    ];
    for (n, step, first, count) in cases {
        let xs = XScale::new(&times(n, step));
        let offset = FixedOffset::east_opt(9 * 3600).unwrap();
        let ticks = time_ticks(&xs, &offset);
        let labels: Vec<&str> = ticks.iter().map(|t| t.label.as_str()).collect();
        assert_eq!(&labels[..first.len()], first, "{n}x{step}");
        assert_eq!(ticks.len(), count, "{n}x{step}: {labels:?}");
        assert_eq!(ticks[0].date.as_deref(), Some("2024-05-01"));
        assert!((ticks[0].x - PLOT_LEFT).abs() < 1e-9);
    }
    // Dates appear only where the day changes; labels use the given offset.
    let xs = XScale::new(&times(96, 15));
    let ticks = time_ticks(&xs, &FixedOffset::east_opt(0).unwrap());
    let dated: Vec<(&str, &str)> =
        ticks.iter().filter_map(|t| t.date.as_deref().map(|d| (t.label.as_str(), d))).collect();
    assert_eq!(dated, [("15:00", "2024-04-30"), ("00:00", "2024-05-01")]);
}

#[test]
fn svg_formats_numbers_compactly() {
    let cases = [
        (0.0, "0"),
        (1.0, "1"),
        (2.5, "2.5"),
        (0.25, "0.25"),
        (0.1 + 0.2, "0.3"),
        (-3.0, "-3"),
        (999.0, "999"),
        (1200.0, "1.2k"),
        (1234.0, "1.23k"),
        (999_700.0, "1M"),
        (15_000.0, "15k"),
        (2.5e9, "2.5G"),
        (f64::NAN, "?"),
    ];
    for (v, expected) in cases {
        assert_eq!(fmt_num(v), expected, "{v}");
    }
}

#[test]
fn svg_nice_steps() {
    for (raw, expected) in [(0.25, 0.5), (1.0, 1.0), (1.5, 2.0), (3.0, 5.0), (7.0, 10.0), (0.0, 1.0)] {
        assert!((nice_step(raw) - expected).abs() < 1e-12, "{raw}");
    }
}

/// Writes the cron sample for a person to look at: `SVG_SAMPLE=/tmp/sample.svg cargo test ...`.
#[test]
fn svg_writes_sample_when_asked() {
    let svg = render(&cron_chart()).unwrap();
    parse(&svg);
    if let Ok(path) = std::env::var("SVG_SAMPLE") {
        std::fs::write(path, svg).unwrap();
    }
}
