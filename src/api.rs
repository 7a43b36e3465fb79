//! The HTTP API (Drydock v1.0 dialect). The only user of `axum`.
