//! Command-line flags shared by every ebb server: admin address, log format and log level
//! ([`CommonArgs`]), and the client limits of a TLS port ([`ServingArgs`], see
//! [`crate::limits`]). Each flag can also be given as an environment variable (`EBB_ADMIN_ADDR`,
//! `EBB_LOG_FORMAT`, `EBB_LOG_LEVEL`, `EBB_MAX_CONNECTIONS`, …). Servers embed them with
//! `#[command(flatten)]`.

use std::net::SocketAddr;
use std::time::Duration;

use crate::limits::{self, ServerLimits};
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

/// Limits on the clients of a server's TLS port (defaults in [`crate::limits`]).
#[derive(Debug, Clone, PartialEq, Eq, clap::Args)]
pub struct ServingArgs {
    /// Connections open at once on the TLS port; beyond it new connections wait in the listen
    /// backlog until one closes (open ones keep being served).
    #[arg(long, env = "EBB_MAX_CONNECTIONS", default_value_t = limits::DEFAULT_MAX_CONNECTIONS,
          value_parser = clap::builder::RangedU64ValueParser::<usize>::new().range(1..))]
    pub max_connections: usize,

    /// Bound on a TLS handshake.
    #[arg(long, env = "EBB_TLS_HANDSHAKE_TIMEOUT", default_value = "10s", value_parser = positive_duration)]
    pub tls_handshake_timeout: Duration,

    /// Bound on receiving an HTTP/1 request's line and headers (slow clients are cut off).
    #[arg(long, env = "EBB_HEADER_READ_TIMEOUT", default_value = "10s", value_parser = positive_duration)]
    pub header_read_timeout: Duration,

    /// A connection with no request in flight for this long is closed.
    #[arg(long, env = "EBB_IDLE_TIMEOUT", default_value = "90s", value_parser = positive_duration)]
    pub idle_timeout: Duration,

    /// Concurrent streams one HTTP/2 connection may run.
    #[arg(long, env = "EBB_HTTP2_MAX_CONCURRENT_STREAMS", default_value_t = limits::DEFAULT_HTTP2_MAX_CONCURRENT_STREAMS,
          value_parser = clap::value_parser!(u32).range(1..))]
    pub http2_max_concurrent_streams: u32,

    /// Period of HTTP/2 keep-alive pings.
    #[arg(long, env = "EBB_HTTP2_KEEPALIVE_INTERVAL", default_value = "30s", value_parser = positive_duration)]
    pub http2_keepalive_interval: Duration,

    /// Wait for a keep-alive ping's answer before the connection is closed.
    #[arg(long, env = "EBB_HTTP2_KEEPALIVE_TIMEOUT", default_value = "20s", value_parser = positive_duration)]
    pub http2_keepalive_timeout: Duration,
}

impl ServingArgs {
    /// The limits these flags describe.
    pub fn limits(&self) -> ServerLimits {
        ServerLimits {
            max_connections: self.max_connections,
            tls_handshake_timeout: self.tls_handshake_timeout,
            header_read_timeout: self.header_read_timeout,
            idle_timeout: self.idle_timeout,
            http2_max_concurrent_streams: self.http2_max_concurrent_streams,
            http2_keepalive_interval: self.http2_keepalive_interval,
            http2_keepalive_timeout: self.http2_keepalive_timeout,
        }
    }
}

/// A duration above zero (`10s`, `500ms`, `1m`).
fn positive_duration(text: &str) -> Result<Duration, String> {
    match humantime::parse_duration(text) {
        Ok(d) if d.is_zero() => Err("must be above zero".to_owned()),
        Ok(d) => Ok(d),
        Err(err) => Err(err.to_string()),
    }
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

    #[derive(Debug, Parser)]
    struct ServingCli {
        #[command(flatten)]
        serving: ServingArgs,
    }

    #[test]
    fn serving_defaults_are_the_documented_limits() {
        let cli = ServingCli::try_parse_from(["test"]).unwrap();
        assert_eq!(cli.serving.limits(), ServerLimits::default());
        let d = ServerLimits::default();
        assert_eq!(
            (d.max_connections, d.tls_handshake_timeout, d.header_read_timeout, d.idle_timeout),
            (1024, Duration::from_secs(10), Duration::from_secs(10), Duration::from_secs(90))
        );
        assert_eq!(d.http2_max_concurrent_streams, 250);
    }

    #[test]
    fn serving_flags_parse_and_refuse_zero() {
        let cli = ServingCli::try_parse_from([
            "test",
            "--max-connections",
            "8",
            "--header-read-timeout",
            "500ms",
            "--tls-handshake-timeout=2s",
            "--idle-timeout",
            "1m",
            "--http2-max-concurrent-streams",
            "16",
        ])
        .unwrap();
        let limits = cli.serving.limits();
        assert_eq!(limits.max_connections, 8);
        assert_eq!(limits.header_read_timeout, Duration::from_millis(500));
        assert_eq!(limits.tls_handshake_timeout, Duration::from_secs(2));
        assert_eq!(limits.idle_timeout, Duration::from_secs(60));
        assert_eq!(limits.http2_max_concurrent_streams, 16);
        for argv in [
            &["test", "--max-connections", "0"][..],
            &["test", "--header-read-timeout", "0s"],
            &["test", "--idle-timeout", "soon"],
            &["test", "--http2-max-concurrent-streams", "0"],
        ] {
            assert!(ServingCli::try_parse_from(argv).is_err(), "argv {argv:?}");
        }
    }
}
