//! Shared process plumbing.
