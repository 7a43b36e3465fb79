//! Design references (`design_ref` of tasks, validation and node filters)
//! resolved to design files: `file://` paths or revisions of the watched
//! repository, within the server's byte caps.

use std::path::{Path, PathBuf};

use crate::design::filter::{problems, select, FilterProblem};
use crate::design::model::NodeFilter;
use crate::design::DesignFile;
use crate::source::{read_dir_files_within, Repo};

/// Why a design reference cannot be read (the client's fault: a dialect
/// answers it as a bad request).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{0}")]
pub struct DesignRefError(pub String);

/// Where design references are read from: the watched repository.
#[derive(Debug, Clone)]
pub struct DesignSource {
    /// A path inside the watched repository.
    pub repo: PathBuf,
    /// Design root inside the repository (`None`: `designs/` when present, else the root).
    pub design_dir: Option<String>,
    /// Byte caps on the files a reference names (`--max-file-size`, `--max-design-size`).
    pub limits: crate::design::Limits,
}

/// Reads the design files a reference names. Blocking (git, filesystem).
///
/// Accepted forms: `file:///abs/dir` (every YAML file under it) or
/// `file:///abs/file.yaml`; anything else without a scheme is a revision of the
/// watched repository (full or short commit, branch, tag). Other schemes
/// (`deckhand+http://`, `http://`, ...) are refused.
pub fn read_design(src: &DesignSource, href: &str) -> Result<Vec<DesignFile>, DesignRefError> {
    let href = href.trim();
    if href.is_empty() {
        return Err(DesignRefError("the design reference is empty".into()));
    }
    if let Some(path) = href.strip_prefix("file://") {
        return read_path(Path::new(path), href, &src.limits);
    }
    if let Some((scheme, _)) = href.split_once("://") {
        return Err(DesignRefError(format!(
            "design reference `{href}`: scheme `{scheme}` is not supported; use a revision \
             of the watched repository (commit, branch, tag) or file:///absolute/path"
        )));
    }
    // The reference names a revision of a repository this server cannot
    // read now: the reference cannot be resolved, which Drydock answers as a
    // failed design load (400), not as a server fault.
    let repo = Repo::discover(&src.repo).map_err(|e| {
        DesignRefError(format!(
            "design reference `{href}`: the watched repository is not available ({e}); \
             expected a readable git repository at {}, or use file:///absolute/path",
            src.repo.display()
        ))
    })?;
    let rev = repo.resolve(href).map_err(|_| {
        DesignRefError(format!(
            "design reference `{href}`: no such revision in the watched repository"
        ))
    })?;
    repo.design_files_within(&rev.commit, src.design_dir.as_deref(), &src.limits)
        .map_err(|e| DesignRefError(format!("design reference `{href}`: {e}")))
}

/// Reads a `file://` reference.
fn read_path(
    path: &Path,
    href: &str,
    limits: &crate::design::Limits,
) -> Result<Vec<DesignFile>, DesignRefError> {
    if !path.is_absolute() {
        return Err(DesignRefError(format!(
            "design reference `{href}`: a file:// path must be absolute"
        )));
    }
    let meta = std::fs::metadata(path)
        .map_err(|e| DesignRefError(format!("design reference `{href}`: cannot read: {e}")))?;
    if meta.is_dir() {
        let files = read_dir_files_within(path, limits)
            .map_err(|e| DesignRefError(format!("design reference `{href}`: cannot read: {e}")))?;
        if files.is_empty() {
            return Err(DesignRefError(format!(
                "design reference `{href}`: no *.yaml or *.yml file under it"
            )));
        }
        Ok(files)
    } else {
        // Sized before it is read, like the files of a revision (SW113).
        if meta.len() > limits.max_file_bytes {
            let m = limits.file_too_large(&path.display().to_string(), meta.len());
            return Err(DesignRefError(format!(
                "design reference `{href}`: {} ({})",
                m.message, m.code
            )));
        }
        let bytes = std::fs::read(path)
            .map_err(|e| DesignRefError(format!("design reference `{href}`: cannot read: {e}")))?;
        let name = path
            .file_name()
            .map(|n| n.to_string_lossy().into_owned())
            .unwrap_or_else(|| "design.yaml".into());
        Ok(vec![DesignFile { path: name, bytes }])
    }
}

/// The names of the nodes `filter` selects in a design (blocking: it
/// validates); an invalid design or a filter that cannot apply is the
/// client's fault.
pub fn select_nodes(
    files: &[DesignFile],
    filter: Option<&NodeFilter>,
) -> Result<Vec<String>, DesignRefError> {
    let v = crate::validate(files);
    let d = match v.design {
        Some(d) if v.is_valid() => d,
        _ => {
            return Err(DesignRefError(format!(
                "the design is invalid ({} error(s)); validate it with /api/v1.0/validatedesign",
                v.error_count()
            )))
        }
    };
    if let Some(f) = filter {
        for p in problems(&d, f) {
            if let FilterProblem::Crash { pointer, why } = p {
                return Err(DesignRefError(format!("node_filter ({pointer}): {why}")));
            }
        }
    }
    let nodes = d.effective_nodes();
    Ok(select(&d, nodes, filter)
        .into_iter()
        .map(|i| nodes[i].name.clone())
        .collect())
}
