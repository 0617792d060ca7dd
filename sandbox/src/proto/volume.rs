//! Conversion tables for core/v1 volumes (every volume source, projections) and
//! PersistentVolumeClaims (StatefulSet claim templates, ephemeral volumes). See `conv.rs` for
//! the table syntax.

use super::conv::{Conv, convert, omit_zero, option_impls};
use k8s_openapi::api::core::v1 as oa_core;
use k8s_pb::api::core::v1 as pb_core;

convert! { pb_core => oa_core;
    AwsElasticBlockStoreVolumeSource as AWSElasticBlockStoreVolumeSource {
        volume_id; omit fs_type, partition, read_only
    }
    AzureDiskVolumeSource { caching_mode, disk_name, disk_uri, fs_type, kind, read_only }
    AzureFileVolumeSource { secret_name, share_name; omit read_only }
    CSIVolumeSource { driver, fs_type, node_publish_secret_ref, read_only, volume_attributes }
    CephFsVolumeSource as CephFSVolumeSource {
        monitors, secret_ref; omit path, read_only, secret_file, user
    }
    CinderVolumeSource { secret_ref, volume_id; omit fs_type, read_only }
    ClusterTrustBundleProjection { label_selector, name, optional, path, signer_name }
    ConfigMapProjection { items, optional; from local_object_reference { name } }
    ConfigMapVolumeSource { default_mode, items, optional; from local_object_reference { name } }
    DownwardAPIProjection { items }
    DownwardAPIVolumeFile { field_ref, mode, path, resource_field_ref }
    DownwardAPIVolumeSource { default_mode, items }
    EmptyDirVolumeSource { size_limit; omit medium }
    EphemeralVolumeSource { volume_claim_template }
    FcVolumeSource as FCVolumeSource {
        lun, target_wwns = target_ww_ns, wwids; omit fs_type, read_only
    }
    FlexVolumeSource { driver, options, secret_ref; omit fs_type, read_only }
    FlockerVolumeSource { ; omit dataset_name, dataset_uuid }
    GcePersistentDiskVolumeSource as GCEPersistentDiskVolumeSource {
        pd_name; omit fs_type, partition, read_only
    }
    GitRepoVolumeSource { repository; omit directory, revision }
    GlusterfsVolumeSource { endpoints, path; omit read_only }
    HostPathVolumeSource { path, type_ = r#type }
    IscsiVolumeSource as ISCSIVolumeSource {
        initiator_name, iqn, lun, portals, secret_ref, target_portal; omit chap_auth_discovery,
        chap_auth_session, fs_type, iscsi_interface, read_only
    }
    ImageVolumeSource { ; omit pull_policy, reference }
    KeyToPath { key, mode, path }
    ModifyVolumeStatus { status; omit target_volume_attributes_class_name }
    NfsVolumeSource as NFSVolumeSource { path, server; omit read_only }
    PersistentVolumeClaim { metadata, spec, status }
    PersistentVolumeClaimCondition {
        last_probe_time, last_transition_time, status, type_ = r#type; omit message, reason
    }
    PersistentVolumeClaimSpec {
        access_modes, data_source, data_source_ref, resources, selector, storage_class_name,
        volume_attributes_class_name, volume_mode; omit volume_name
    }
    PersistentVolumeClaimStatus {
        access_modes, allocated_resource_statuses, allocated_resources, capacity, conditions,
        current_volume_attributes_class_name, modify_volume_status; omit phase
    }
    PersistentVolumeClaimTemplate { metadata, spec }
    PersistentVolumeClaimVolumeSource { claim_name; omit read_only }
    PhotonPersistentDiskVolumeSource { pd_id; omit fs_type }
    PortworxVolumeSource { volume_id; omit fs_type, read_only }
    ProjectedVolumeSource { default_mode, sources }
    QuobyteVolumeSource { registry, volume; omit group, read_only, tenant, user }
    RbdVolumeSource as RBDVolumeSource {
        image, monitors, secret_ref; omit fs_type, keyring, pool, read_only, user
    }
    ScaleIoVolumeSource as ScaleIOVolumeSource {
        gateway, secret_ref, system; omit fs_type, protection_domain, read_only, ssl_enabled,
        storage_mode, storage_pool, volume_name
    }
    SecretProjection { items, optional; from local_object_reference { name } }
    SecretVolumeSource { default_mode, items, optional; omit secret_name }
    ServiceAccountTokenProjection { expiration_seconds, path; omit audience }
    StorageOsVolumeSource as StorageOSVolumeSource {
        secret_ref; omit fs_type, read_only, volume_name, volume_namespace
    }
    TypedLocalObjectReference { api_group, kind, name }
    TypedObjectReference { api_group, kind, name, namespace }
    Volume {
        name; from volume_source { aws_elastic_block_store, azure_disk, azure_file, cephfs, cinder,
        config_map, csi, downward_api, empty_dir, ephemeral, fc, flex_volume, flocker,
        gce_persistent_disk, git_repo, glusterfs, host_path, image, iscsi, nfs,
        persistent_volume_claim, photon_persistent_disk, portworx_volume, projected, quobyte, rbd,
        scale_io, secret, storageos, vsphere_volume }
    }
    VolumeProjection {
        cluster_trust_bundle, config_map, downward_api, secret, service_account_token
    }
    VolumeResourceRequirements { limits, requests }
    VsphereVirtualDiskVolumeSource {
        volume_path; omit fs_type, storage_policy_id, storage_policy_name
    }
}
