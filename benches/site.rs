//! `cargo bench --bench site`: every figure of docs/benchmarks.md (being written).
fn main() {}
