//! A local Kubernetes control plane: an in-memory API server that speaks the real Kubernetes
//! HTTP API (discovery, CRUD, watch, patch, server-side apply, subresources, CRDs), so that
//! kube-rs clients, kubectl and ebb's programs run against it unmodified. It is the stand-in for
//! a cluster in ebb's end-to-end tests and the engine of `ebb sandbox`. Simplifications against
//! kube-apiserver are listed in `sandbox/README.md`.

pub mod admission;
pub mod api_path;
pub mod auth;
pub mod control;
pub mod controllers;
pub mod crd;
pub mod decode;
pub mod defaults;
pub mod discovery;
pub mod faults;
pub mod field_selector;
pub mod gc;
pub mod jsonpath;
pub mod kubeconfig;
pub mod list_options;
pub mod meta;
pub mod openapi;
pub mod patch;
pub mod pki;
pub mod proto;
pub mod proxy;
pub mod resources;
pub mod reviews;
pub mod sandbox;
pub mod schema;
pub mod serve;
pub mod server;
pub mod status;
pub mod store;
pub mod table;
pub mod watch;
