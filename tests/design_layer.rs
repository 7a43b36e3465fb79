//! `design` does not depend on `render` (render → design only): no file of
//! `src/design*` names the `render` module. Validation composes the two in
//! `src/validation.rs`.

use std::path::{Path, PathBuf};

fn rust_files(dir: &Path, out: &mut Vec<PathBuf>) {
    for e in std::fs::read_dir(dir).unwrap() {
        let p = e.unwrap().path();
        if p.is_dir() {
            rust_files(&p, out);
        } else if p.extension().is_some_and(|x| x == "rs") {
            out.push(p);
        }
    }
}

#[test]
fn design_never_imports_render() {
    let src = Path::new(env!("CARGO_MANIFEST_DIR")).join("src");
    let mut files = vec![src.join("design.rs")];
    rust_files(&src.join("design"), &mut files);
    assert!(files.len() > 10, "src/design not found: {files:?}");
    let mut found = Vec::new();
    for f in files {
        let text = std::fs::read_to_string(&f).unwrap();
        for (i, line) in text.lines().enumerate() {
            let code = line.split("//").next().unwrap_or("");
            if ["crate::render", "slipway::render", "super::render"]
                .iter()
                .any(|p| code.contains(p))
            {
                found.push(format!("{}:{}: {}", f.display(), i + 1, line.trim()));
            }
        }
    }
    assert!(
        found.is_empty(),
        "design imports render:\n{}",
        found.join("\n")
    );
}
