//! Command-line flags shared by every ebb server: admin address, log format and log level.
//! Each flag can also be given as an environment variable (`EBB_ADMIN_ADDR`,
//! `EBB_LOG_FORMAT`, `EBB_LOG_LEVEL`). Servers embed [`CommonArgs`] with
//! `#[command(flatten)]`.

use std::net::SocketAddr;

use crate::logging::LogFormat;

/// Default address of the admin server (`/livez`, `/readyz`, `/metrics`).
pub const DEFAULT_ADMIN_ADDR: &str = "0.0.0.0:8080";

/// Flags every ebb server accepts.
#[derive(Debug, Clone, PartialEq, Eq, clap::Args)]
pub struct CommonArgs {
    /// Address of the admin HTTP server serving /livez, /readyz and /metrics.
    #[arg(long, env = "EBB_ADMIN_ADDR", default_value = DEFAULT_ADMIN_ADDR)]
    pub admin_addr: SocketAddr,

    /// Log output format.
    #[arg(long, env = "EBB_LOG_FORMAT", value_enum, default_value_t = LogFormat::Text)]
    pub log_format: LogFormat,

    /// Log filter: a level (`info`, `debug`, ...) or `tracing` directives such as
    /// `info,ebb_operator=debug`. `RUST_LOG`, when set, takes precedence.
    #[arg(long, env = "EBB_LOG_LEVEL", default_value = "info")]
    pub log_level: String,
}

#[cfg(test)]
mod tests {
    use clap::Parser;

    use super::*;

    #[derive(Debug, Parser)]
    struct TestCli {
        #[command(flatten)]
        common: CommonArgs,
    }

    #[test]
    fn parses_flags_and_defaults() {
        struct Case {
            argv: &'static [&'static str],
            admin_addr: &'static str,
            log_format: LogFormat,
            log_level: &'static str,
        }
        let cases = [
            Case { argv: &[], admin_addr: "0.0.0.0:8080", log_format: LogFormat::Text, log_level: "info" },
            Case {
                argv: &["--admin-addr", "127.0.0.1:9090", "--log-format", "json"],
                admin_addr: "127.0.0.1:9090",
                log_format: LogFormat::Json,
                log_level: "info",
            },
            Case {
                argv: &["--log-level", "info,ebb=debug", "--admin-addr=[::1]:0"],
                admin_addr: "[::1]:0",
                log_format: LogFormat::Text,
                log_level: "info,ebb=debug",
            },
        ];
        for case in cases {
            let argv = std::iter::once("test").chain(case.argv.iter().copied());
            let cli = TestCli::try_parse_from(argv).unwrap();
            assert_eq!(
                cli.common,
                CommonArgs {
                    admin_addr: case.admin_addr.parse().unwrap(),
                    log_format: case.log_format,
                    log_level: case.log_level.to_owned(),
                },
                "argv {:?}",
                case.argv
            );
        }
    }

    #[test]
    fn rejects_invalid_values() {
        for argv in [
            &["test", "--admin-addr", "localhost"][..],
            &["test", "--admin-addr", "0.0.0.0"],
            &["test", "--log-format", "yaml"],
        ] {
            assert!(TestCli::try_parse_from(argv).is_err(), "argv {argv:?}");
        }
    }
}
