//! slipway: a declarative GitOps controller for bare-metal provisioning.
//!
//! Crate map (see docs/ARCHITECTURE.md):
//! - [`design`]: parse, schema-check, type and validate design documents (pure).
//! - [`validation`]: [`validate`]: `design`'s stages, then `render`'s template checks.
//! - [`inspection`]: machine inventories matched, compared and proposed against the design (pure).
//! - [`source`]: git revisions and directories as design files (only user of git2).
//! - [`state`]: SQLite state and migrations (only user of rusqlite).
//! - [`plan`]: the pure diff of a design against the applied state.
//! - [`reconcile`]: the loop that turns new heads into applied revisions.
//! - [`boot`]: deployments, keys and boot data of the applied revision's nodes.
//! - [`api`]: the HTTP API (only user of axum).
//! - [`render`]: boot data rendering (only user of minijinja, tar, flate2).
//! - [`keys`]: server secret, action and identity keys, ULIDs (only user of hmac, ulid).
//! - [`revision`]: what a revision is, shared by source and state.
//! - [`metrics`]: Prometheus metrics of a server (only user of prometheus).
//! - [`power`]: power and BMC control over IPMI (ipmitool) and Redfish (only user of reqwest).

pub mod api;
pub mod boot;
pub mod design;
pub mod inspection;
pub mod keys;
pub mod metrics;
pub mod plan;
pub mod power;
pub mod reconcile;
pub mod render;
pub mod revision;
pub mod source;
pub mod state;
pub mod validation;

pub use validation::{validate, validate_cached, validate_within};
