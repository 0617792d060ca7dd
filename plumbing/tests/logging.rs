//! Installing the global subscriber twice reports an error instead of panicking.
//! (Its own test binary: the subscriber is process-wide.)

use ebb_plumbing::logging::{self, LogError, LogFormat};

#[test]
fn second_init_is_an_error_value() {
    logging::init(LogFormat::Json, "info").unwrap();
    tracing::info!("first subscriber installed");
    let err = logging::init(LogFormat::Text, "debug").unwrap_err();
    assert!(matches!(err, LogError::AlreadyInitialised(_)), "{err:?}");
    assert!(err.to_string().starts_with("logging is already initialised"), "{err}");
}
