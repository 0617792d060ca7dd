//! Process-wide logging setup: a `tracing` subscriber writing to stderr as human-readable
//! text or as one JSON object per line, filtered by a level or directive string that
//! `RUST_LOG` overrides when set.

use std::io::IsTerminal;

use tracing_subscriber::EnvFilter;
use tracing_subscriber::filter::ParseError;

/// Environment variable whose value, when set and non-empty, replaces the configured filter.
pub const RUST_LOG: &str = "RUST_LOG";

/// How log lines are written.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default, clap::ValueEnum)]
pub enum LogFormat {
    /// Human-readable single-line text.
    #[default]
    Text,
    /// One JSON object per line, event fields at the top level.
    Json,
}

/// Why logging could not be set up.
#[derive(Debug, thiserror::Error)]
pub enum LogError {
    /// The configured log level / filter did not parse.
    #[error("invalid log level {filter:?}: {source}")]
    InvalidLevel {
        /// The rejected filter string.
        filter: String,
        /// The parser's complaint.
        #[source]
        source: ParseError,
    },
    /// `RUST_LOG` is set to something that does not parse.
    #[error("invalid RUST_LOG {filter:?}: {source}")]
    InvalidRustLog {
        /// The rejected filter string.
        filter: String,
        /// The parser's complaint.
        #[source]
        source: ParseError,
    },
    /// A global subscriber was installed before (for example by an earlier call).
    #[error("logging is already initialised: {0}")]
    AlreadyInitialised(#[source] Box<dyn std::error::Error + Send + Sync + 'static>),
}

/// Builds the event filter: `rust_log` (the value of `RUST_LOG`) wins when it is set and
/// not blank, otherwise `level_filter` is used.
pub fn build_filter(level_filter: &str, rust_log: Option<&str>) -> Result<EnvFilter, LogError> {
    match rust_log.map(str::trim).filter(|s| !s.is_empty()) {
        Some(directives) => EnvFilter::try_new(directives)
            .map_err(|source| LogError::InvalidRustLog { filter: directives.to_owned(), source }),
        None => EnvFilter::try_new(level_filter)
            .map_err(|source| LogError::InvalidLevel { filter: level_filter.to_owned(), source }),
    }
}

/// Installs the global subscriber. Call once, early in `run`; a second call returns
/// [`LogError::AlreadyInitialised`] and leaves the first subscriber in place.
pub fn init(format: LogFormat, level_filter: &str) -> Result<(), LogError> {
    let rust_log = std::env::var(RUST_LOG).ok();
    let filter = build_filter(level_filter, rust_log.as_deref())?;
    let builder = tracing_subscriber::fmt().with_env_filter(filter).with_writer(std::io::stderr);
    let result = match format {
        LogFormat::Text => builder.with_ansi(std::io::stderr().is_terminal()).try_init(),
        LogFormat::Json => builder.json().flatten_event(true).with_current_span(true).try_init(),
    };
    result.map_err(LogError::AlreadyInitialised)
}

#[cfg(test)]
mod tests {
    use tracing_subscriber::filter::LevelFilter;

    use super::*;

    #[test]
    fn filter_precedence_and_levels() {
        let cases: [(&str, Option<&str>, Option<LevelFilter>); 6] = [
            ("info", None, Some(LevelFilter::INFO)),
            ("debug", None, Some(LevelFilter::DEBUG)),
            ("debug", Some("warn"), Some(LevelFilter::WARN)),
            ("info", Some("  "), Some(LevelFilter::INFO)),
            ("info", Some(""), Some(LevelFilter::INFO)),
            ("warn,ebb_operator=trace", None, Some(LevelFilter::TRACE)),
        ];
        for (level, rust_log, want) in cases {
            let filter = build_filter(level, rust_log).unwrap();
            assert_eq!(filter.max_level_hint(), want, "level {level:?} RUST_LOG {rust_log:?}");
        }
    }

    #[test]
    fn invalid_filters_name_their_source() {
        let err = build_filter("ebb=loud", None).unwrap_err();
        assert!(matches!(err, LogError::InvalidLevel { ref filter, .. } if filter == "ebb=loud"));
        assert!(err.to_string().contains("invalid log level \"ebb=loud\""), "{err}");

        let err = build_filter("info", Some("ebb=loud")).unwrap_err();
        assert!(matches!(err, LogError::InvalidRustLog { ref filter, .. } if filter == "ebb=loud"));
        assert!(err.to_string().contains("RUST_LOG"), "{err}");
    }

    #[test]
    fn log_format_parses_from_flag_values() {
        use clap::ValueEnum;
        assert_eq!(LogFormat::from_str("text", false), Ok(LogFormat::Text));
        assert_eq!(LogFormat::from_str("json", false), Ok(LogFormat::Json));
        assert!(LogFormat::from_str("yaml", false).is_err());
    }
}
