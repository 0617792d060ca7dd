//! Starts and stops a tansu test backend.
