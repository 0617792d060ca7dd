//! The committed CRDs under deploy/crds/ must equal what the types generate, and must carry the
//! names, short names, printer columns and validation rules KEDA users rely on.

use std::path::PathBuf;

fn crd_dir() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../deploy/crds")
}

#[test]
fn committed_crds_are_fresh() {
    for (file, crd) in ebb_api::crds::all() {
        let want = ebb_api::crds::to_yaml(&crd).unwrap();
        let path = crd_dir().join(file);
        if std::env::var_os("EBB_UPDATE_CRDS").is_some() {
            std::fs::write(&path, &want).unwrap();
        }
        let have = std::fs::read_to_string(&path).unwrap_or_default();
        assert!(
            have == want,
            "{} is stale: run `EBB_UPDATE_CRDS=1 cargo test -p ebb-api --test crds` and commit the result",
            path.display()
        );
    }
}

#[test]
fn scaled_object_crd_matches_keda_names_and_columns() {
    let (_, crd) = ebb_api::crds::all().remove(0);
    assert_eq!(crd.metadata.name.as_deref(), Some("scaledobjects.keda.sh"));
    assert_eq!(crd.spec.names.short_names, Some(vec!["so".to_string()]));
    let v = &crd.spec.versions[0];
    assert_eq!(v.name, "v1alpha1");
    let cols: Vec<&str> =
        v.additional_printer_columns.as_ref().unwrap().iter().map(|c| c.name.as_str()).collect();
    assert_eq!(
        cols,
        [
            "ScaleTargetKind",
            "ScaleTargetName",
            "Min",
            "Max",
            "Ready",
            "Active",
            "Fallback",
            "Paused",
            "Triggers",
            "Authentications",
            "Age"
        ]
    );
    assert!(v.subresources.as_ref().unwrap().status.is_some());
    let json = serde_json::to_string(&crd).unwrap();
    assert!(json.contains("x-kubernetes-validations"), "CEL rules missing");
    assert!(json.contains("idleReplicaCount must be less than minReplicaCount"));
    assert!(json.contains("x-kubernetes-preserve-unknown-fields"));
}

#[test]
fn auth_crds_have_short_names_and_scope() {
    let all = ebb_api::crds::all();
    let ta = &all[1].1;
    let cta = &all[2].1;
    assert_eq!(ta.spec.scope, "Namespaced");
    assert_eq!(cta.spec.scope, "Cluster");
    assert!(ta.spec.names.short_names.as_ref().unwrap().contains(&"ta".to_string()));
    assert!(cta.spec.names.short_names.as_ref().unwrap().contains(&"cta".to_string()));
}
