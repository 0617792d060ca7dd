//! The shutdown future reacts to real signals sent to the process.
//! (Its own test binary: signal handlers are process-wide.)

use std::time::Duration;

use ebb_plumbing::shutdown::{self, Shutdown, Signal};
use nix::sys::signal::{self as nix_signal, Signal as NixSignal};

const LONG: Duration = Duration::from_secs(10);

#[tokio::test]
async fn sigterm_and_sigint_complete_the_shutdown_future() {
    for (sent, expected) in [(NixSignal::SIGTERM, Signal::Terminate), (NixSignal::SIGINT, Signal::Interrupt)]
    {
        let received = shutdown::signal().unwrap();
        nix_signal::raise(sent).unwrap();
        let got = tokio::time::timeout(LONG, received).await.unwrap();
        assert_eq!(got, expected, "after {sent}");
    }

    let shutdown = Shutdown::on_signal().unwrap();
    assert!(!shutdown.is_requested());
    nix_signal::raise(NixSignal::SIGTERM).unwrap();
    tokio::time::timeout(LONG, shutdown.wait()).await.unwrap();
    assert!(shutdown.is_requested());
}
