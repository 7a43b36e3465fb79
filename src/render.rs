//! Boot data: templates, asset pipelines and tarballs, and the template
//! checks of validation. The only user of `minijinja`, `tar` and `flate2`.
//! Depends on `design`, never the reverse.
pub mod bootdata;
pub mod check;
pub mod context;
pub mod ipxe;
pub mod template;
