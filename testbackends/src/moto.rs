//! Starts and stops a moto test backend.
