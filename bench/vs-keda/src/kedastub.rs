//! Stand-in for `kedasys` when the crate is built with `--no-default-features` (without the KEDA
//! launcher of `ebb_testbackends`): every KEDA row says why it was not measured.

use crate::plane::Plane;
use crate::system::{Limits, Proc};

const WHY: &str = "built without feature `keda` (the KEDA launcher)";

pub fn build(_version: &str) -> Result<(), String> {
    Err(WHY.into())
}

pub async fn install_crds(_plane: &Plane, _version: &str) -> Result<(), String> {
    Err(WHY.into())
}

pub async fn operator(_plane: &Plane, _version: &str, _limits: Limits) -> Result<Proc, String> {
    Err(WHY.into())
}

pub async fn adapter(_plane: &Plane, _version: &str, _operator: &Proc) -> Result<Proc, String> {
    Err(WHY.into())
}

pub async fn webhook(_plane: &Plane, _version: &str) -> Result<Proc, String> {
    Err(WHY.into())
}
