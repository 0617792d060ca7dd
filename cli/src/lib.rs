//! The `ebb` command line as a library: manifest loading, `check`, `simulate` (with its SVG
//! chart) and the command dispatcher, so integration tests can drive it in-process.

pub mod check;
pub mod commands;
pub mod error;
pub mod load;
pub mod prepare;
pub mod sandbox_cmd;
pub mod sandbox_node;
pub mod sandbox_upstream;
pub mod simulate;
pub mod svg;
