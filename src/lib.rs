//! slipway: a declarative GitOps controller for bare-metal provisioning.
//!
//! Crate map (see docs/ARCHITECTURE.md, which draws the layers; a module
//! names only the ones below it, checked by tests/architecture.rs):
//! - [`server`]: the server's wiring: `run(cfg, listener, shutdown)`, start-up
//!   checks, background tasks, the services and every dialect's routes.
//! - [`api`]: the HTTP API (only user of axum): [`api::http`], the machinery
//!   every dialect shares, and one folder per dialect ([`api::drydock`]).
//! - [`reconcile`]: the loop that turns new heads into applied revisions.
//! - [`services`]: domain services every dialect calls: deployments and keys,
//!   the render cache, the report writer, the worker pool, node inventory,
//!   tasks, design references, what is served.
//! - [`plan`]: the pure diff of a design against the applied state (owns `Snapshot`).
//! - [`state`]: SQLite state and migrations (only user of rusqlite).
//! - [`source`]: git revisions and directories as design files (only user of git2).
//! - [`render`]: boot data rendering (only user of minijinja, tar, flate2).
//! - [`power`]: power and BMC control over IPMI (ipmitool) and Redfish (only user of reqwest).
//! - [`validation`]: [`validate`]: `design`'s stages, then `render`'s template checks.
//! - [`inspection`]: machine inventories matched, compared and proposed against the design (pure).
//! - [`hostlist`]: Luna2's hostlist expressions (`node[001-004]`) expanded as python-hostlist does (pure).
//! - [`design`]: parse, schema-check, type and validate design documents (pure).
//! - [`keys`]: server secret, action and identity keys, ULIDs (only user of hmac, ulid).
//! - [`revision`]: what a revision is, shared by source and state.
//! - [`metrics`]: Prometheus metrics of a server (only user of prometheus).
//! - [`clock`]: the wall clock, read in one place.

pub mod api;
pub mod clock;
pub mod design;
pub mod hostlist;
pub mod inspection;
pub mod keys;
pub mod metrics;
pub mod plan;
pub mod power;
pub mod reconcile;
pub mod render;
pub mod revision;
pub mod server;
pub mod services;
pub mod source;
pub mod state;
pub mod validation;

pub use validation::{validate, validate_cached, validate_within};
