//! Where designs come from: git revisions (read from the commit's tree, never
//! the work tree) and plain directories. The only user of `git2`.

use std::path::{Path, PathBuf};

use crate::design::DesignFile;
use crate::revision::Revision;

/// What can go wrong reading a design source.
#[derive(Debug, thiserror::Error)]
pub enum SourceError {
    #[error("{path}: not a git repository: {reason}")]
    NotARepository { path: String, reason: String },
    #[error("revision `{rev}` not found in {path}")]
    UnknownRevision { path: String, rev: String },
    #[error("{0}")]
    Git(String),
    #[error("{path}: {source}")]
    Io {
        path: String,
        source: std::io::Error,
    },
}

/// A git repository holding designs.
pub struct Repo {
    _private: (),
}

impl Repo {
    /// Opens the repository at or above `path`.
    pub fn discover(_path: &Path) -> Result<Repo, SourceError> {
        todo!()
    }

    /// The work-tree root (or the git dir of a bare repository).
    pub fn root(&self) -> PathBuf {
        todo!()
    }

    /// The checked-out branch name, if HEAD is on a branch.
    pub fn current_branch(&self) -> Option<String> {
        todo!()
    }

    /// Resolves a revision expression (commit, branch, tag, `HEAD`).
    pub fn resolve(&self, _rev: &str) -> Result<Revision, SourceError> {
        todo!()
    }

    /// The head of a branch (`None`: HEAD).
    pub fn head(&self, _branch: Option<&str>) -> Result<Revision, SourceError> {
        todo!()
    }

    /// The design files of a commit: every `*.yaml`/`*.yml` under `design_dir`
    /// (default: `designs/` when the tree has it, else the root), paths relative
    /// to the design root.
    pub fn design_files(
        &self,
        _commit: &str,
        _design_dir: Option<&str>,
    ) -> Result<Vec<DesignFile>, SourceError> {
        todo!()
    }

    /// Paths whose change means a ref may have moved (for the file watcher).
    pub fn watch_paths(&self) -> Vec<PathBuf> {
        todo!()
    }
}

/// Every `*.yaml`/`*.yml` file under a directory (recursively, sorted).
pub fn read_dir_files(_dir: &Path) -> Result<Vec<DesignFile>, SourceError> {
    todo!()
}
