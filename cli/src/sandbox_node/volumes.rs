//! Volumes of the sandbox node's Pods: Secret and ConfigMap data projected into the Pod's local
//! volume directories and kept in step with the objects (each file replaced atomically, files
//! of removed keys deleted), as the kubelet does; emptyDir volumes are plain directories.

use std::collections::BTreeMap;
use std::path::Path;

use base64::Engine;
use serde_json::Value;

use super::Objects;
use super::launch::{Source, Volume};

/// The files a volume should hold now: `None` while a required Secret or ConfigMap is missing.
pub fn files(
    objects: &dyn Objects,
    namespace: &str,
    source: &Source,
) -> Result<Option<BTreeMap<String, Vec<u8>>>, String> {
    let (plural, name, items, optional, secret) = match source {
        Source::EmptyDir => return Ok(Some(BTreeMap::new())),
        Source::Secret { name, items, optional } => ("secrets", name, items, *optional, true),
        Source::ConfigMap { name, items, optional } => ("configmaps", name, items, *optional, false),
    };
    let obj = objects.object(plural, namespace, name);
    let Some(obj) = obj else {
        return Ok(if optional { Some(BTreeMap::new()) } else { None });
    };
    let mut data: BTreeMap<String, Vec<u8>> = BTreeMap::new();
    for (k, v) in obj.get("data").and_then(Value::as_object).into_iter().flatten() {
        let text = v.as_str().unwrap_or_default();
        let bytes = if secret {
            base64::engine::general_purpose::STANDARD
                .decode(unwrapped(text))
                .map_err(|e| format!("Secret {namespace}/{name} key {k}: not base64: {e}"))?
        } else {
            text.as_bytes().to_vec()
        };
        data.insert(k.clone(), bytes);
    }
    if !secret {
        for (k, v) in obj.get("binaryData").and_then(Value::as_object).into_iter().flatten() {
            let bytes = base64::engine::general_purpose::STANDARD
                .decode(unwrapped(v.as_str().unwrap_or_default()))
                .map_err(|e| format!("ConfigMap {namespace}/{name} binaryData {k}: not base64: {e}"))?;
            data.insert(k.clone(), bytes);
        }
    }
    if items.is_empty() {
        return Ok(Some(data));
    }
    let mut out = BTreeMap::new();
    for (key, path) in items {
        match data.remove(key) {
            Some(bytes) => {
                out.insert(path.clone(), bytes);
            }
            None if optional => {}
            None => return Ok(None),
        }
    }
    Ok(Some(out))
}

/// Base64 text without line breaks, which the API server ignores in binary fields (kustomize
/// folds long values).
pub fn unwrapped(text: &str) -> String {
    text.chars().filter(|c| *c != '\n' && *c != '\r').collect()
}

/// Makes `volume.dir` hold exactly `files`; true when anything changed.
pub fn write(volume: &Volume, files: &BTreeMap<String, Vec<u8>>) -> Result<bool, String> {
    let dir = &volume.dir;
    let io = |what: &Path, e: std::io::Error| format!("volume {}: {}: {e}", volume.name, what.display());
    std::fs::create_dir_all(dir).map_err(|e| io(dir, e))?;
    if matches!(volume.source, Source::EmptyDir) {
        return Ok(false);
    }
    let mut changed = false;
    for (path, bytes) in files {
        if path.split('/').any(|p| p == ".." || p.is_empty()) {
            return Err(format!("volume {}: item path {path:?} is not a relative path", volume.name));
        }
        let target = dir.join(path);
        if std::fs::read(&target).is_ok_and(|cur| cur == *bytes) {
            continue;
        }
        if let Some(parent) = target.parent() {
            std::fs::create_dir_all(parent).map_err(|e| io(parent, e))?;
        }
        let tmp = dir.join(format!(".{}.tmp", path.replace('/', "_")));
        std::fs::write(&tmp, bytes).map_err(|e| io(&tmp, e))?;
        std::fs::rename(&tmp, &target).map_err(|e| io(&target, e))?;
        changed = true;
    }
    let entries = std::fs::read_dir(dir).map_err(|e| io(dir, e))?;
    for entry in entries.flatten() {
        let name = entry.file_name().to_string_lossy().into_owned();
        if entry.path().is_file() && !files.contains_key(&name) {
            std::fs::remove_file(entry.path()).map_err(|e| io(&entry.path(), e))?;
            changed = true;
        }
    }
    Ok(changed)
}
