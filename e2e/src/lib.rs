//! End-to-end scenarios that need more than one of ebb's programs at once (operator with
//! metrics-apiserver, webhook) on the local control plane. The scenarios are the test files under
//! `tests/`; this library is empty on purpose.
