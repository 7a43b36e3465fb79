//! The API versions the OpenStack dialects announce, in one place: Ironic's
//! (the agent dialect) and ironic-inspector's. `GET /` carries both sets of
//! headers (the one path the two dialects share), so both are here, in the
//! shared layer, for either dialect to use.

/// Ironic's version headers.
pub const IRONIC_MIN_HEADER: &str = "x-openstack-ironic-api-minimum-version";
/// Ironic's version headers.
pub const IRONIC_MAX_HEADER: &str = "x-openstack-ironic-api-maximum-version";
/// The version a request was answered at (and the one a client asks for).
pub const IRONIC_VERSION_HEADER: &str = "x-openstack-ironic-api-version";

/// Ironic's lowest version (no header means this one).
pub const IRONIC_MIN: (u32, u32) = (1, 1);
/// Ironic's highest version slipway answers: 1.68, the lowest at which IPA
/// 13 sends its agent token, version and CA (dialects §1.2).
pub const IRONIC_MAX: (u32, u32) = (1, 68);

/// ironic-inspector's version headers.
pub const INSPECTOR_MIN_HEADER: &str = "x-openstack-ironic-inspector-api-minimum-version";
/// ironic-inspector's version headers.
pub const INSPECTOR_MAX_HEADER: &str = "x-openstack-ironic-inspector-api-maximum-version";
/// The inspector version a client asks for.
pub const INSPECTOR_VERSION_HEADER: &str = "x-openstack-ironic-inspector-api-version";
/// ironic-inspector's lowest version.
pub const INSPECTOR_MIN: (u32, u32) = (1, 0);
/// ironic-inspector's highest version (inspector 2025.2).
pub const INSPECTOR_MAX: (u32, u32) = (1, 18);

/// `major.minor` as text.
pub fn text((major, minor): (u32, u32)) -> String {
    format!("{major}.{minor}")
}
