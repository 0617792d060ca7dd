//! The `keda_build_info` metric: a gauge with value 1 whose labels say which program and
//! build is running. Label names follow KEDA's (`version`, `git_commit`, `goversion`, `goos`,
//! `goarch`) so dashboards and alerts written for KEDA keep working, plus `name` for the
//! program. `goversion` holds the Rust compiler version; `goos`/`goarch` use Go's spelling
//! of the target (`linux`, `amd64`, `arm64`).

use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::registry::Registry;

/// Name of the metric as exposed (registered without a registry prefix).
pub const METRIC_NAME: &str = "keda_build_info";

/// Value of `git_commit` when the build did not set `EBB_GIT_COMMIT`.
pub const UNKNOWN_COMMIT: &str = "unknown";

const HELP: &str = "Info metric with static information about the build: program name, version, git commit, compiler and target platform";

/// The labels of `keda_build_info`, in exposition order.
#[derive(Debug, Clone, PartialEq, Eq, Hash, EncodeLabelSet)]
pub struct BuildInfo {
    /// Program name, e.g. `ebb-operator`.
    pub name: String,
    /// Program version, usually `env!("CARGO_PKG_VERSION")` of the binary crate.
    pub version: String,
    /// Commit the binary was built from (`EBB_GIT_COMMIT` at build time), or `unknown`.
    pub git_commit: String,
    /// Compiler that built the binary, e.g. `rustc 1.95.0`.
    pub goversion: String,
    /// Target operating system, e.g. `linux`.
    pub goos: String,
    /// Target architecture in Go's spelling, e.g. `amd64`.
    pub goarch: String,
}

impl BuildInfo {
    /// Build information for the program `name` at `version`, with the commit, compiler and
    /// platform of this build.
    pub fn new(name: impl Into<String>, version: impl Into<String>) -> Self {
        BuildInfo {
            name: name.into(),
            version: version.into(),
            git_commit: option_env!("EBB_GIT_COMMIT")
                .filter(|c| !c.is_empty())
                .unwrap_or(UNKNOWN_COMMIT)
                .to_owned(),
            goversion: env!("EBB_RUSTC_VERSION").to_owned(),
            goos: std::env::consts::OS.to_owned(),
            goarch: go_arch(std::env::consts::ARCH).to_owned(),
        }
    }
}

/// Registers `keda_build_info` with `info`'s labels and value 1. Use the root registry
/// (no prefix) so the name stays `keda_build_info`.
pub fn register(registry: &mut Registry, info: &BuildInfo) {
    let family = Family::<BuildInfo, Gauge>::default();
    family.get_or_create(info).set(1);
    registry.register(METRIC_NAME, HELP, family);
}

/// Go's name for a Rust target architecture (`std::env::consts::ARCH`); names that are the
/// same in both, or unknown to Go, pass through unchanged.
pub fn go_arch(rust_arch: &str) -> &str {
    match rust_arch {
        "x86_64" => "amd64",
        "aarch64" => "arm64",
        "x86" => "386",
        "powerpc64" if cfg!(target_endian = "little") => "ppc64le",
        "powerpc64" => "ppc64",
        "loongarch64" => "loong64",
        other => other,
    }
}

#[cfg(test)]
mod tests {
    use prometheus_client::encoding::text::encode;

    use super::*;

    #[test]
    fn go_arch_names() {
        for (rust, go) in [
            ("x86_64", "amd64"),
            ("aarch64", "arm64"),
            ("x86", "386"),
            ("arm", "arm"),
            ("s390x", "s390x"),
            ("riscv64", "riscv64"),
            ("loongarch64", "loong64"),
        ] {
            assert_eq!(go_arch(rust), go, "{rust}");
        }
    }

    #[test]
    fn new_fills_build_and_platform_fields() {
        let info = BuildInfo::new("ebb-test", "1.2.3");
        assert_eq!(info.name, "ebb-test");
        assert_eq!(info.version, "1.2.3");
        assert!(!info.git_commit.is_empty());
        assert!(info.goversion.starts_with("rustc "), "{}", info.goversion);
        assert_eq!(info.goos, std::env::consts::OS);
        assert_eq!(info.goarch, go_arch(std::env::consts::ARCH));
    }

    #[test]
    fn exposition_has_one_sample_with_value_one() {
        let info = BuildInfo {
            name: "ebb-test".into(),
            version: "1.2.3".into(),
            git_commit: "abc123".into(),
            goversion: "rustc 1.95.0".into(),
            goos: "linux".into(),
            goarch: "amd64".into(),
        };
        let mut registry = Registry::default();
        register(&mut registry, &info);
        let mut text = String::new();
        encode(&mut text, &registry).unwrap();
        assert!(text.contains("# TYPE keda_build_info gauge\n"), "{text}");
        let expected = "keda_build_info{name=\"ebb-test\",version=\"1.2.3\",git_commit=\"abc123\",\
                        goversion=\"rustc 1.95.0\",goos=\"linux\",goarch=\"amd64\"} 1\n";
        assert!(text.contains(expected), "{text}");
        assert_eq!(text.matches("keda_build_info{").count(), 1, "{text}");
    }
}
