//! Results across runs: every figure of every run with the load average at its end, errors of
//! measurements that could not be made, the summary table (medians, ratios ebb / KEDA) and
//! RESULTS.md (the table, then every run's figures and the errors in full).

use std::collections::BTreeMap;
use std::fmt::Write as _;

use crate::plane::PlaneKind;
use crate::stats;
use crate::system::System;

/// A figure of one run and the load average when it was taken.
#[derive(Debug, Clone)]
struct Sample {
    value: f64,
    load: String,
}

#[derive(Debug, Default)]
pub struct Results {
    /// Unit labels in the order they were first measured, each with its row names in order.
    units: Vec<(String, Vec<String>)>,
    samples: BTreeMap<(String, String, PlaneKind, String), Vec<Sample>>,
    errors: BTreeMap<(String, PlaneKind, String), Vec<String>>,
}

impl Results {
    fn unit_rows(&mut self, unit: &str) -> &mut Vec<String> {
        if let Some(i) = self.units.iter().position(|(u, _)| u == unit) {
            &mut self.units[i].1
        } else {
            self.units.push((unit.to_owned(), Vec::new()));
            let last = self.units.len() - 1;
            &mut self.units[last].1
        }
    }

    pub fn record(
        &mut self,
        unit: &str,
        plane: PlaneKind,
        system: &System,
        row: &str,
        value: f64,
        load: &str,
    ) {
        let rows = self.unit_rows(unit);
        if !rows.iter().any(|r| r == row) {
            rows.push(row.to_owned());
        }
        self.samples
            .entry((unit.to_owned(), row.to_owned(), plane, system.name()))
            .or_default()
            .push(Sample { value, load: load.to_owned() });
    }

    pub fn error(&mut self, unit: &str, plane: PlaneKind, system: &System, error: &str) {
        self.unit_rows(unit);
        self.errors.entry((unit.to_owned(), plane, system.name())).or_default().push(error.to_owned());
    }

    fn median(&self, unit: &str, row: &str, plane: PlaneKind, system: &System) -> Option<f64> {
        let s = self.samples.get(&(unit.to_owned(), row.to_owned(), plane, system.name()))?;
        let v: Vec<f64> = s.iter().map(|s| s.value).collect();
        Some(stats::median(&v))
    }

    fn cell(&self, unit: &str, row: &str, plane: PlaneKind, system: &System) -> String {
        match self.median(unit, row, plane, system) {
            Some(m) => fmt(m),
            None => match self.errors.get(&(unit.to_owned(), plane, system.name())) {
                Some(e) => format!("not measured: {}", short(e.first().map_or("", String::as_str))),
                None => "—".into(),
            },
        }
    }

    /// The summary table (Markdown) over `planes` and `systems` (ebb first, then each KEDA).
    pub fn table(&self, planes: &[PlaneKind], systems: &[System]) -> String {
        let kedas: Vec<&System> = systems.iter().filter(|s| **s != System::Ebb).collect();
        let has_ebb = systems.contains(&System::Ebb);
        let mut head = String::from("| scenario | control plane |");
        let mut rule = String::from("|---|---|");
        if has_ebb {
            head.push_str(" ebb |");
            rule.push_str("---:|");
        }
        for k in &kedas {
            let _ = write!(head, " {} |", k.title());
            rule.push_str("---:|");
        }
        if has_ebb {
            for k in &kedas {
                let _ = write!(head, " ebb / {} |", k.title());
                rule.push_str("---:|");
            }
        }
        let mut out = format!("{head}\n{rule}\n");
        for (unit, rows) in &self.units {
            let rows: Vec<String> = if rows.is_empty() { vec!["(all figures)".into()] } else { rows.clone() };
            for row in &rows {
                for &plane in planes {
                    let _ = write!(out, "| {unit}: {row} | {} |", plane.name());
                    if has_ebb {
                        let _ = write!(out, " {} |", self.cell(unit, row, plane, &System::Ebb));
                    }
                    for k in &kedas {
                        let _ = write!(out, " {} |", self.cell(unit, row, plane, k));
                    }
                    if has_ebb {
                        for k in &kedas {
                            let ratio = match (
                                self.median(unit, row, plane, &System::Ebb),
                                self.median(unit, row, plane, k),
                            ) {
                                (Some(a), Some(b)) if b != 0.0 && a.is_finite() && b.is_finite() => {
                                    format!("{:.2}", a / b)
                                }
                                _ => "—".into(),
                            };
                            let _ = write!(out, " {ratio} |");
                        }
                    }
                    out.push('\n');
                }
            }
        }
        out
    }

    /// Every run's figures and every error, in full.
    pub fn details(&self) -> String {
        let mut out = String::from(
            "| scenario | control plane | system | runs (value @ load average 1/5/15 min) |\n|---|---|---|---|\n",
        );
        for (unit, rows) in &self.units {
            for row in rows {
                for ((u, r, plane, system), samples) in &self.samples {
                    if u == unit && r == row {
                        let runs: Vec<String> =
                            samples.iter().map(|s| format!("{} @ {}", fmt(s.value), s.load)).collect();
                        let _ = writeln!(
                            out,
                            "| {unit}: {row} | {} | {system} | {} |",
                            plane.name(),
                            runs.join("; ")
                        );
                    }
                }
            }
        }
        if !self.errors.is_empty() {
            out.push_str("\nNot measured (each failed run's error):\n\n");
            for ((unit, plane, system), errors) in &self.errors {
                for e in errors {
                    let _ = writeln!(
                        out,
                        "- {unit} — {} — {system}:\n\n  ```\n  {}\n  ```",
                        plane.name(),
                        e.replace('\n', "\n  ")
                    );
                }
            }
        }
        out
    }
}

fn fmt(v: f64) -> String {
    if v.is_nan() {
        "n/a".into()
    } else if v.abs() >= 100.0 {
        format!("{v:.0}")
    } else if v.abs() >= 1.0 {
        format!("{v:.2}")
    } else {
        format!("{v:.3}")
    }
}

/// The first line of an error, at most 120 characters, without table separators.
fn short(e: &str) -> String {
    let line = e.lines().next().unwrap_or("").replace('|', "/");
    if line.chars().count() > 120 {
        format!("{}…", line.chars().take(120).collect::<String>())
    } else {
        line
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn table_has_medians_ratios_and_reasons() {
        let mut r = Results::default();
        let keda = System::Keda("2.16.0".into());
        for v in [30.0, 10.0, 20.0] {
            r.record("operator, idle", PlaneKind::Upstream, &System::Ebb, "RSS (MiB)", v, "0.5 0.5 0.5");
            r.record("operator, idle", PlaneKind::Upstream, &keda, "RSS (MiB)", v * 4.0, "0.5 0.5 0.5");
        }
        r.error("operator, idle", PlaneKind::Local, &keda, "cannot list | discovery\nmore");
        let t = r.table(&[PlaneKind::Upstream, PlaneKind::Local], &[System::Ebb, keda]);
        assert!(t.contains("| operator, idle: RSS (MiB) | upstream | 20.00 | 80.00 | 0.25 |"), "{t}");
        assert!(
            t.contains(
                "| operator, idle: RSS (MiB) | local | — | not measured: cannot list / discovery | — |"
            ),
            "{t}"
        );
        assert!(r.details().contains("10.00 @ 0.5 0.5 0.5"));
    }
}
