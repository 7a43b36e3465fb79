//! Boot data: templates, asset pipelines and tarballs. The only user of
//! `minijinja`, `tar` and `flate2`.
pub mod bootdata;
pub mod context;
pub mod template;
