//! Command-line arguments (clap) and dispatch of `ebb crd`, `ebb check` and `ebb simulate`.

use std::io::Write;
use std::time::Duration;

use clap::{Parser, Subcommand, ValueEnum};

use crate::error::CliError;
use crate::load::{Loaded, Manifests, load};
use crate::prepare::{EnvOptions, prepare};
use crate::{check, simulate};

/// ebb: event-driven autoscaling for Kubernetes, compatible with keda.sh/v1alpha1.
#[derive(Debug, Parser)]
#[command(name = "ebb", version, about)]
pub struct Args {
    #[command(subcommand)]
    pub command: Command,
}

#[derive(Debug, Clone, Copy, ValueEnum, PartialEq, Eq)]
pub enum Output {
    Text,
    Json,
}

/// Where `…FromEnv` parameters and `env` TriggerAuthentication entries get their values. The
/// manifests choose the variable names and the servers that receive them, so nothing is read
/// from this process's environment unless `--env-from-process` is given.
#[derive(Debug, Clone, clap::Args)]
pub struct EnvArgs {
    /// NAME=VALUE for `…FromEnv` parameters and `env` TriggerAuthentication entries (repeatable;
    /// wins over --env-file and the workload manifest).
    #[arg(long = "env", value_name = "NAME=VALUE")]
    pub env: Vec<String>,
    /// File of NAME=VALUE lines (`#` comments, blank lines and an `export ` prefix allowed);
    /// repeatable, later files win.
    #[arg(long = "env-file", value_name = "FILE")]
    pub env_files: Vec<String>,
    /// Also read variables from this shell's environment (sends them wherever the manifest's
    /// triggers point).
    #[arg(long)]
    pub env_from_process: bool,
}

impl EnvArgs {
    fn options(&self) -> Result<EnvOptions, CliError> {
        EnvOptions::from_flags(&self.env, &self.env_files, self.env_from_process)
    }
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Print ebb's CustomResourceDefinitions (YAML, ready for `kubectl apply -f -`).
    Crd,
    /// Run the whole stack on a local control plane (kubectl works against it).
    Sandbox {
        /// Where to write the kubeconfig.
        #[arg(long, default_value = "ebb-sandbox.kubeconfig")]
        kubeconfig: String,
        /// Port of the control plane on 127.0.0.1 (0 picks a free one).
        #[arg(long, default_value_t = 6443)]
        port: u16,
        /// Do not apply the demo Deployment and ScaledObject.
        #[arg(long)]
        no_demo: bool,
        /// Install this rendered manifest (e.g. `kubectl kustomize my-overlay > my.yaml`)
        /// instead of deploy/'s default overlay.
        #[arg(long, value_name = "FILE", conflicts_with = "no_install")]
        manifests: Option<std::path::PathBuf>,
        /// Install nothing: apply ebb yourself (`kubectl apply -k deploy/overlays/default`).
        #[arg(long)]
        no_install: bool,
        /// Where the programs' files and logs go.
        #[arg(long, default_value = "ebb-sandbox-logs")]
        dir: std::path::PathBuf,
        /// Run on upstream Kubernetes (etcd, kube-apiserver, kube-controller-manager) built by
        /// `scripts/backends/kubernetes.sh` instead of ebb's embedded control plane (--port is
        /// then picked freely).
        #[arg(long)]
        upstream: bool,
    },
    /// Query every trigger now and explain whether and how the target would scale.
    Check {
        /// ScaledObject manifest; more -f files may add TriggerAuthentications, Secrets,
        /// ConfigMaps and the target workload. `-` reads standard input.
        #[arg(short = 'f', long = "filename", required = true)]
        files: Vec<String>,
        #[arg(long, short = 'o', value_enum, default_value = "text")]
        output: Output,
        /// Replicas the target has now (default: minReplicaCount).
        #[arg(long)]
        current_replicas: Option<i32>,
        /// Bound on each trigger query.
        #[arg(long, default_value = "3s", value_parser = humantime::parse_duration)]
        timeout: Duration,
        #[command(flatten)]
        env: EnvArgs,
    },
    /// Replay the scale loop and the HPA over simulated time and print the replica timeline.
    Simulate {
        #[arg(short = 'f', long = "filename", required = true)]
        files: Vec<String>,
        /// Start, RFC 3339 (default: now).
        #[arg(long)]
        from: Option<String>,
        /// Length of the simulation, e.g. 2h.
        #[arg(long = "for", default_value = "1h")]
        duration: String,
        /// Interval between printed rows.
        #[arg(long, default_value = "1m")]
        step: String,
        /// METRIC=file.csv: values for a trigger (metric name, trigger name or s<index>).
        #[arg(long)]
        series: Vec<String>,
        /// Replicas at the start (default: minReplicaCount).
        #[arg(long)]
        initial_replicas: Option<i32>,
        /// Also draw the timeline as an SVG chart into this file.
        #[arg(long)]
        svg: Option<String>,
        #[arg(long, short = 'o', value_enum, default_value = "text")]
        output: Output,
        #[command(flatten)]
        env: EnvArgs,
    },
}

fn only_scaled_objects(m: &Manifests, files: &[String]) -> Result<(), CliError> {
    if m.scaled_objects.is_empty() {
        return Err(CliError::Manifest(format!(
            "{}: no keda.sh/v1alpha1 ScaledObject found",
            files.join(", ")
        )));
    }
    Ok(())
}

fn one(m: &Manifests) -> Result<&Loaded, CliError> {
    match m.scaled_objects.as_slice() {
        [so] => Ok(so),
        many => Err(CliError::Usage(format!("simulate takes one ScaledObject; found {}", many.len()))),
    }
}

fn write_out(s: &str) -> Result<(), CliError> {
    let mut out = std::io::stdout().lock();
    out.write_all(s.as_bytes())
        .and_then(|_| out.flush())
        .map_err(|e| CliError::Output(format!("standard output: {e}")))
}

/// Runs one command; warnings go to standard error.
pub async fn run(args: Args) -> Result<(), CliError> {
    match args.command {
        Command::Crd => {
            let yaml = ebb_api::crds::all_yaml()
                .map_err(|e| CliError::Output(format!("cannot encode CRDs: {e}")))?;
            write_out(&yaml)
        }
        Command::Sandbox { kubeconfig, port, no_demo, manifests, no_install, dir, upstream } => {
            use crate::sandbox_cmd::{Install, Options};
            let install = match (manifests, no_install) {
                (Some(f), _) => Install::File(f),
                (None, true) => Install::Nothing,
                (None, false) => Install::Default,
            };
            let opts = Options { kubeconfig, port, demo: !no_demo && !no_install, install, dir };
            if upstream {
                crate::sandbox_upstream::run(opts).await
            } else {
                crate::sandbox_cmd::run(opts).await
            }
        }
        Command::Check { files, output, current_replicas, timeout, env } => {
            let env = env.options()?;
            let m = load(&files)?;
            only_scaled_objects(&m, &files)?;
            warn_skipped(&m);
            let now = chrono::Utc::now();
            let mut reports = Vec::new();
            for so in &m.scaled_objects {
                let parsed = prepare(&m, so, &env)?;
                let mut report = check::check(so, &parsed, now, current_replicas, timeout).await?;
                report.warnings.extend(m.resource_request_problems(&so.object));
                reports.push(report);
            }
            match output {
                Output::Json => {
                    let v = if reports.len() == 1 {
                        serde_json::to_string_pretty(&reports[0])
                    } else {
                        serde_json::to_string_pretty(&reports)
                    };
                    write_out(&(v.map_err(|e| CliError::Output(e.to_string()))? + "\n"))
                }
                Output::Text => {
                    write_out(&reports.iter().map(check::render_text).collect::<Vec<_>>().join("\n"))
                }
            }
        }
        Command::Simulate { files, from, duration, step, series, initial_replicas, svg, output, env } => {
            let env = env.options()?;
            let opts =
                simulate::Options::from_flags(from.as_deref(), &duration, &step, &series, initial_replicas)?;
            let m = load(&files)?;
            only_scaled_objects(&m, &files)?;
            warn_skipped(&m);
            let so = one(&m)?;
            let parsed = prepare(&m, so, &env)?;
            for w in &parsed.warnings {
                eprintln!("warning: {w}");
            }
            let steps = simulate::simulate(so, &parsed, &opts).await?;
            let offset = *opts.from.offset();
            if let Some(path) = svg {
                let chart = simulate::chart(so, &parsed, &steps, offset);
                let text =
                    crate::svg::render(&chart).map_err(|e| CliError::Output(format!("{path}: {e}")))?;
                std::fs::write(&path, text)
                    .map_err(|e| CliError::Output(format!("{path}: cannot write: {e}")))?;
            }
            match output {
                Output::Json => write_out(&(simulate::render_json(&steps, offset)? + "\n")),
                Output::Text => write_out(&simulate::render_text(so, &steps, offset)),
            }
        }
    }
}

fn warn_skipped(m: &Manifests) {
    for s in &m.skipped {
        eprintln!("warning: {s}");
    }
}
