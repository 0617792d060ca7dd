//! Starts and stops a prometheus test backend.
