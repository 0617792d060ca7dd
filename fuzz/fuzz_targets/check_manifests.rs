//! `ebb check` / `ebb simulate` input files: a YAML stream of manifests (ScaledObjects,
//! TriggerAuthentications, ClusterTriggerAuthentications, Secrets, ConfigMaps, Deployments)
//! through `load::load_str`, then every loaded ScaledObject through `prepare::prepare`
//! (authentication resolution against the manifests, then the shared trigger parser); and the
//! same bytes as a `--series` CSV file. Property: no panic; every failure is an error message.
#![no_main]

use chrono::DateTime;
use ebb_cli::load::{Manifests, load_str};
use ebb_cli::prepare::{EnvOptions, prepare};
use ebb_cli::simulate::series::Series;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else { return };
    let mut m = Manifests::default();
    let _ = load_str(&mut m, "fuzz.yaml", text);
    // `--env` values; the process environment is not read (no `--env-from-process`).
    let env = EnvOptions {
        vars: [("HEADERS", "X-Scope-OrgID=t1"), ("TOKEN", "t0ken"), ("AWS_REGION", "us-east-1")]
            .into_iter()
            .map(|(k, v)| (k.to_owned(), v.to_owned()))
            .collect(),
        from_process: false,
    };
    for so in &m.scaled_objects {
        if let Ok(parsed) = prepare(&m, so, &env) {
            let _ = parsed.metric_names();
            for t in &parsed.triggers {
                let _ = (t.target(), t.activation_target(), t.config.describe(), t.config.metric_part());
            }
        }
    }
    if let Some(origin) = DateTime::from_timestamp(1_750_000_000, 0)
        && let Ok(series) = Series::parse(text, origin, "fuzz.csv")
        && let Some(first) = series.first_time()
    {
        let _ = series.at(first);
    }
});
