//! Where designs come from: git revisions (read from the commit's tree, never
//! the work tree) and plain directories. The only user of `git2`.

use std::path::{Path, PathBuf};

use sha2::{Digest, Sha256};

use crate::design::{DesignFile, Limits, Message};
use crate::revision::Revision;

/// What can go wrong reading a design source.
#[derive(Debug, thiserror::Error)]
pub enum SourceError {
    /// `path` is not inside a git repository.
    #[error("{path}: not a git repository: {reason}")]
    NotARepository {
        /// The path that was searched from.
        path: String,
        /// Why git2 refused it.
        reason: String,
    },
    /// A revision expression names no commit.
    #[error("revision `{rev}` not found in {path}")]
    UnknownRevision {
        /// The repository root.
        path: String,
        /// The expression that did not resolve.
        rev: String,
    },
    /// The design directory is missing from a commit's tree.
    #[error("commit {commit}: design directory `{dir}` not found in its tree")]
    NoDesignDir {
        /// The commit read.
        commit: String,
        /// The directory asked for.
        dir: String,
    },
    /// A design file, or the design as a whole, is over a byte cap; nothing
    /// past the cap was read. Carries the validation message (SW113, SW114).
    #[error("{}", .0.to_text_line())]
    TooLarge(Box<Message>),
    /// Any other git failure, with what was being done.
    #[error("{0}")]
    Git(String),
    /// A proposal cannot be written as asked (a bad path or branch).
    #[error("proposal: {0}")]
    Proposal(String),
    /// A branch was not where a commit expected it (compare-and-swap lost:
    /// another writer moved, created or locked it first).
    #[error("branch `{branch}` moved: expected {expected}")]
    Moved {
        /// The branch.
        branch: String,
        /// The head the commit was built on (the zero id: no branch).
        expected: String,
    },
    /// A filesystem failure reading a plain directory.
    #[error("{path}: {source}")]
    Io {
        /// The file or directory.
        path: String,
        /// The underlying error.
        source: std::io::Error,
    },
}

impl SourceError {
    /// The validation message when the design is refused for its size: the
    /// revision is invalid (not unreadable).
    pub fn limit_message(&self) -> Option<&Message> {
        match self {
            SourceError::TooLarge(m) => Some(m),
            _ => None,
        }
    }
}

/// Adds what was being done to a git2 error.
fn git_err(what: impl std::fmt::Display) -> impl FnOnce(git2::Error) -> SourceError {
    move |e| SourceError::Git(format!("{what}: {}", e.message()))
}

/// A git repository holding designs.
pub struct Repo {
    repo: git2::Repository,
}

impl Repo {
    /// Opens the repository at or above `path`.
    pub fn discover(path: &Path) -> Result<Repo, SourceError> {
        let repo = git2::Repository::discover(path).map_err(|e| SourceError::NotARepository {
            path: path.display().to_string(),
            reason: e.message().to_string(),
        })?;
        Ok(Repo { repo })
    }

    /// The work-tree root (or the git dir of a bare repository).
    pub fn root(&self) -> PathBuf {
        self.repo
            .workdir()
            .unwrap_or_else(|| self.repo.path())
            .to_path_buf()
    }

    /// The design directory of `commit` as a repository path prefix (`""`
    /// for the root, else `dir/`): `design_dir` when given, else `designs/`
    /// when the commit's tree has it, as [`Repo::design_files_within`] reads.
    pub fn design_root(
        &self,
        commit: &str,
        design_dir: Option<&str>,
    ) -> Result<String, SourceError> {
        match design_dir.map(|d| d.trim_matches('/')) {
            None | Some("") | Some(".") => {
                let rev = self.resolve(commit)?;
                let oid = git2::Oid::from_str(&rev.commit).map_err(git_err("parsing commit id"))?;
                let tree = self
                    .repo
                    .find_commit(oid)
                    .and_then(|c| c.tree())
                    .map_err(git_err(format!("reading the tree of {}", rev.commit)))?;
                let has_designs = tree
                    .get_name("designs")
                    .is_some_and(|e| e.kind() == Some(git2::ObjectType::Tree));
                Ok(if has_designs {
                    "designs/".into()
                } else {
                    String::new()
                })
            }
            Some(dir) => Ok(format!("{dir}/")),
        }
    }

    /// The checked-out branch name, if HEAD is on a branch.
    pub fn current_branch(&self) -> Option<String> {
        // `find_reference("HEAD")` works even on an unborn branch, unlike `head()`.
        let head = self.repo.find_reference("HEAD").ok()?;
        let target = head.symbolic_target()?;
        target.strip_prefix("refs/heads/").map(str::to_string)
    }

    /// Resolves a revision expression (commit, short sha, branch, tag, `HEAD`).
    pub fn resolve(&self, rev: &str) -> Result<Revision, SourceError> {
        let unknown = || SourceError::UnknownRevision {
            path: self.root().display().to_string(),
            rev: rev.to_string(),
        };
        let object = self.repo.revparse_single(rev).map_err(|_| unknown())?;
        let commit = object.peel_to_commit().map_err(|_| unknown())?;
        Ok(self.revision_of(&commit))
    }

    /// The head of a branch (`None`: HEAD).
    pub fn head(&self, branch: Option<&str>) -> Result<Revision, SourceError> {
        match branch {
            None => self.resolve("HEAD"),
            // The full ref name, so a tag or file named like the branch cannot shadow it.
            Some(b) => self.resolve(&format!("refs/heads/{b}")),
        }
    }

    /// The trailers of a commit's message (`Key: value` lines of its last
    /// paragraph, git's rules), in order.
    pub fn trailers(&self, commit: &str) -> Result<Vec<(String, String)>, SourceError> {
        let what = || format!("reading the message of commit {commit}");
        let oid = git2::Oid::from_str(commit).map_err(git_err(what()))?;
        let c = self.repo.find_commit(oid).map_err(git_err(what()))?;
        let message = String::from_utf8_lossy(c.message_bytes()).into_owned();
        let trailers = git2::message_trailers_strs(&message).map_err(git_err(what()))?;
        Ok(trailers
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect())
    }

    /// Builds the [`Revision`] of a commit.
    fn revision_of(&self, commit: &git2::Commit<'_>) -> Revision {
        Revision {
            commit: commit.id().to_string(),
            tree: commit.tree_id().to_string(),
            author: person(&commit.author()),
            committer: person(&commit.committer()),
            signed_by: self.signer(commit.id()),
            summary: String::from_utf8_lossy(commit.summary_bytes().unwrap_or_default())
                .into_owned(),
            committed_at: commit.time().seconds(),
        }
    }

    /// Who signed a commit, as far as the signature itself says. slipway does
    /// not verify signatures (no keyring); it reports the claimed key so an
    /// operator can see that a revision was signed and by which key.
    fn signer(&self, id: git2::Oid) -> Option<String> {
        let (signature, _signed) = self.repo.extract_signature(&id, None).ok()?;
        let text = String::from_utf8_lossy(&signature).into_owned();
        Some(signer_of(&text).unwrap_or_else(|| "unverified signature".to_string()))
    }

    /// The design files of a commit: every `*.yaml`/`*.yml` under `design_dir`
    /// (default: `designs/` when the tree has it, else the root), paths relative
    /// to the design root, sorted; within the default [`Limits`].
    pub fn design_files(
        &self,
        commit: &str,
        design_dir: Option<&str>,
    ) -> Result<Vec<DesignFile>, SourceError> {
        self.design_files_within(commit, design_dir, &Limits::default())
    }

    /// [`Repo::design_files`] within `limits`: each blob's size is read from
    /// its object header before it is inflated, so a file or design over a cap
    /// is refused ([`SourceError::TooLarge`]) without being read.
    pub fn design_files_within(
        &self,
        commit: &str,
        design_dir: Option<&str>,
        limits: &Limits,
    ) -> Result<Vec<DesignFile>, SourceError> {
        let rev = self.resolve(commit)?;
        let oid = git2::Oid::from_str(&rev.commit).map_err(git_err("parsing commit id"))?;
        let tree = self
            .repo
            .find_commit(oid)
            .and_then(|c| c.tree())
            .map_err(git_err(format!("reading the tree of {}", rev.commit)))?;
        let root = match design_dir.map(|d| d.trim_matches('/')) {
            None | Some("") | Some(".") => {
                let has_designs = tree
                    .get_name("designs")
                    .is_some_and(|e| e.kind() == Some(git2::ObjectType::Tree));
                if has_designs {
                    self.subtree(&tree, "designs", &rev.commit)?
                } else {
                    tree
                }
            }
            Some(dir) => self.subtree(&tree, dir, &rev.commit)?,
        };
        let mut blobs = Vec::new();
        root.walk(git2::TreeWalkMode::PreOrder, |parent, entry| {
            let name = entry.name().unwrap_or_default();
            if entry.kind() == Some(git2::ObjectType::Blob) && is_design_file(name) {
                blobs.push((format!("{parent}{name}"), entry.id()));
            }
            git2::TreeWalkResult::Ok
        })
        .map_err(git_err(format!("walking the tree of {}", rev.commit)))?;
        blobs.sort_by(|a, b| a.0.cmp(&b.0));
        let odb = self.repo.odb().map_err(git_err(format!(
            "opening the object database for {}",
            rev.commit
        )))?;
        let mut sizes = Vec::with_capacity(blobs.len());
        for (path, id) in &blobs {
            let (size, _) = odb.read_header(*id).map_err(git_err(format!(
                "reading the size of {path} at {}",
                rev.commit
            )))?;
            sizes.push((path.as_str(), size as u64));
        }
        if let Some(m) = limits.check_sizes(sizes) {
            return Err(SourceError::TooLarge(Box::new(m)));
        }
        let mut files = Vec::with_capacity(blobs.len());
        for (path, id) in blobs {
            let blob = self
                .repo
                .find_blob(id)
                .map_err(git_err(format!("reading {path} at {}", rev.commit)))?;
            files.push(DesignFile {
                path,
                bytes: blob.content().to_vec(),
            });
        }
        files.sort_by(|a, b| a.path.cmp(&b.path));
        Ok(files)
    }

    /// The tree at `dir` inside `tree`, or a clear error when it is missing.
    fn subtree(
        &self,
        tree: &git2::Tree<'_>,
        dir: &str,
        commit: &str,
    ) -> Result<git2::Tree<'_>, SourceError> {
        let missing = || SourceError::NoDesignDir {
            commit: commit.to_string(),
            dir: dir.to_string(),
        };
        let entry = tree.get_path(Path::new(dir)).map_err(|_| missing())?;
        if entry.kind() != Some(git2::ObjectType::Tree) {
            return Err(missing());
        }
        self.repo
            .find_tree(entry.id())
            .map_err(git_err(format!("reading {dir} at {commit}")))
    }

    /// Paths whose change means a ref may have moved (for the file watcher):
    /// `HEAD` of this work tree, and `refs/` and `packed-refs` of the common
    /// git dir (shared by all work trees of the repository).
    pub fn watch_paths(&self) -> Vec<PathBuf> {
        let common = self.repo.commondir();
        vec![
            self.repo.path().join("HEAD"),
            common.join("refs"),
            common.join("packed-refs"),
        ]
    }
}

/// `Name <email>`.
fn person(sig: &git2::Signature<'_>) -> String {
    let name = String::from_utf8_lossy(sig.name_bytes());
    let email = String::from_utf8_lossy(sig.email_bytes());
    format!("{name} <{email}>")
}

/// True for `*.yaml` / `*.yml` names.
fn is_design_file(name: &str) -> bool {
    name.ends_with(".yaml") || name.ends_with(".yml")
}

/// The key an armored commit signature claims: the issuer of an OpenPGP
/// signature (`gpg <fingerprint or key id>`), or the public key of an SSH
/// signature (`ssh <key type> SHA256:<hex>`). `None` when it cannot be read.
fn signer_of(armored: &str) -> Option<String> {
    let body: String = armored
        .lines()
        .map(str::trim)
        .filter(|l| !l.is_empty() && !l.starts_with("-----") && !l.contains(": "))
        // The OpenPGP armor checksum line starts with '='.
        .filter(|l| !l.starts_with('='))
        .collect();
    let bytes = base64_decode(&body)?;
    if armored.contains("BEGIN SSH SIGNATURE") {
        ssh_signer(&bytes)
    } else {
        pgp_issuer(&bytes)
    }
}

/// The public key of an `SSHSIG` blob.
fn ssh_signer(b: &[u8]) -> Option<String> {
    let rest = b.strip_prefix(b"SSHSIG")?;
    let rest = rest.get(4..)?; // version
    let len = u32::from_be_bytes(rest.get(..4)?.try_into().ok()?) as usize;
    let key = rest.get(4..4 + len)?;
    let tlen = u32::from_be_bytes(key.get(..4)?.try_into().ok()?) as usize;
    let key_type = std::str::from_utf8(key.get(4..4 + tlen)?).ok()?;
    // The same form `ssh-keygen -l` prints, so operators can compare.
    Some(format!(
        "ssh {key_type} SHA256:{}",
        base64_encode_unpadded(&Sha256::digest(key))
    ))
}

/// The issuer of an OpenPGP v4 signature packet (subpacket 33 or 16).
fn pgp_issuer(b: &[u8]) -> Option<String> {
    let tag = *b.first()?;
    // Old format packet header (tag 2 = signature): length type in the low bits.
    let body = if tag & 0x40 == 0 {
        let len_bytes = match tag & 3 {
            0 => 1,
            1 => 2,
            2 => 4,
            _ => 0,
        };
        b.get(1 + len_bytes..)?
    } else {
        // New format: one-, two- or five-octet length.
        let first = *b.get(1)?;
        match first {
            0..=191 => b.get(2..)?,
            192..=223 => b.get(3..)?,
            _ => b.get(6..)?,
        }
    };
    if *body.first()? != 4 {
        return None;
    }
    let hashed_len = u16::from_be_bytes(body.get(4..6)?.try_into().ok()?) as usize;
    let hashed = body.get(6..6 + hashed_len)?;
    let after = body.get(6 + hashed_len..)?;
    let unhashed_len = u16::from_be_bytes(after.get(..2)?.try_into().ok()?) as usize;
    let unhashed = after.get(2..2 + unhashed_len)?;
    let mut key_id = None;
    for area in [hashed, unhashed] {
        let mut i = 0;
        while i < area.len() {
            let (len, skip) = match area[i] {
                n @ 0..=191 => (n as usize, 1),
                n @ 192..=254 => (
                    ((n as usize - 192) << 8) + *area.get(i + 1)? as usize + 192,
                    2,
                ),
                _ => (
                    u32::from_be_bytes(area.get(i + 1..i + 5)?.try_into().ok()?) as usize,
                    5,
                ),
            };
            let sub = area.get(i + skip..i + skip + len)?;
            match sub.first().map(|t| t & 0x7f) {
                // Issuer fingerprint: version octet then the fingerprint.
                Some(33) if sub.len() > 2 => {
                    return Some(format!("gpg {}", hex::encode_upper(&sub[2..])))
                }
                Some(16) if sub.len() == 9 => key_id = Some(hex::encode_upper(&sub[1..])),
                _ => {}
            }
            i += skip + len;
        }
    }
    key_id.map(|k| format!("gpg {k}"))
}

/// Standard base64 without padding (as in OpenSSH fingerprints).
fn base64_encode_unpadded(bytes: &[u8]) -> String {
    const ALPHABET: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    let mut out = String::with_capacity(bytes.len() * 4 / 3 + 3);
    for chunk in bytes.chunks(3) {
        let n = chunk
            .iter()
            .enumerate()
            .fold(0u32, |acc, (i, b)| acc | (*b as u32) << (16 - 8 * i));
        for i in 0..=chunk.len() {
            out.push(ALPHABET[(n >> (18 - 6 * i) & 63) as usize] as char);
        }
    }
    out
}

/// Standard base64 (with or without padding); `None` on a bad character.
fn base64_decode(s: &str) -> Option<Vec<u8>> {
    let mut out = Vec::with_capacity(s.len() * 3 / 4);
    let mut acc = 0u32;
    let mut bits = 0;
    for c in s.bytes() {
        let v = match c {
            b'A'..=b'Z' => c - b'A',
            b'a'..=b'z' => c - b'a' + 26,
            b'0'..=b'9' => c - b'0' + 52,
            b'+' => 62,
            b'/' => 63,
            b'=' => break,
            _ => return None,
        };
        acc = (acc << 6) | v as u32;
        bits += 6;
        if bits >= 8 {
            bits -= 8;
            out.push((acc >> bits) as u8);
            acc &= (1 << bits) - 1;
        }
    }
    Some(out)
}

/// Every `*.yaml`/`*.yml` file under a directory (recursively, sorted), with
/// paths relative to `dir`, within the default [`Limits`]. Hidden directories
/// (`.git`, ...) are skipped.
pub fn read_dir_files(dir: &Path) -> Result<Vec<DesignFile>, SourceError> {
    read_dir_files_within(dir, &Limits::default())
}

/// [`read_dir_files`] within `limits`: sizes are checked (`stat`) before any
/// file is read.
pub fn read_dir_files_within(dir: &Path, limits: &Limits) -> Result<Vec<DesignFile>, SourceError> {
    let io = |p: &Path| {
        let path = p.display().to_string();
        move |source| SourceError::Io { path, source }
    };
    let mut found = Vec::new();
    let mut pending = vec![dir.to_path_buf()];
    while let Some(d) = pending.pop() {
        for entry in std::fs::read_dir(&d).map_err(io(&d))? {
            let entry = entry.map_err(io(&d))?;
            let path = entry.path();
            let name = entry.file_name().to_string_lossy().into_owned();
            let kind = entry.file_type().map_err(io(&path))?;
            // Follow symlinks to files and directories alike, as `validate` on a
            // checkout would see them.
            let is_dir = kind.is_dir() || (kind.is_symlink() && path.is_dir());
            if is_dir {
                if !name.starts_with('.') {
                    pending.push(path);
                }
            } else if is_design_file(&name) {
                let size = std::fs::metadata(&path).map_err(io(&path))?.len();
                let rel = path
                    .strip_prefix(dir)
                    .unwrap_or(&path)
                    .components()
                    .map(|c| c.as_os_str().to_string_lossy())
                    .collect::<Vec<_>>()
                    .join("/");
                found.push((rel, path, size));
            }
        }
    }
    found.sort_by(|a, b| a.0.cmp(&b.0));
    if let Some(m) = limits.check_sizes(found.iter().map(|(rel, _, size)| (rel.as_str(), *size))) {
        return Err(SourceError::TooLarge(Box::new(m)));
    }
    let mut files = Vec::with_capacity(found.len());
    for (rel, path, size) in found {
        // Read no more than was measured: a file growing meanwhile stays within the cap.
        let mut bytes = Vec::with_capacity(size as usize);
        std::fs::File::open(&path)
            .and_then(|f| std::io::Read::read_to_end(&mut std::io::Read::take(f, size), &mut bytes))
            .map_err(io(&path))?;
        files.push(DesignFile { path: rel, bytes });
    }
    Ok(files)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn base64_round() {
        assert_eq!(base64_decode("aGVsbG8=").unwrap(), b"hello");
        assert_eq!(base64_decode("aGVsbG8").unwrap(), b"hello");
        assert!(base64_decode("a*b").is_none());
        for s in ["", "h", "he", "hel", "hell", "hello"] {
            let enc = base64_encode_unpadded(s.as_bytes());
            assert_eq!(base64_decode(&enc).unwrap(), s.as_bytes());
        }
        assert_eq!(base64_encode_unpadded(b"hello"), "aGVsbG8");
    }

    #[test]
    fn unreadable_signature_is_none() {
        assert_eq!(signer_of("-----BEGIN PGP SIGNATURE-----\n\n!!\n"), None);
    }
}

/// Who a proposal commit is by (author and committer).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Person {
    /// Display name.
    pub name: String,
    /// E-mail address.
    pub email: String,
}

/// What writing a proposal did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Proposed {
    /// A new commit on the proposal branch.
    Committed {
        /// The new commit.
        commit: String,
        /// True when the branch was created by this commit.
        created_branch: bool,
    },
    /// The file already holds these bytes: no commit.
    Unchanged,
}

/// One proposed file not yet on the followed branch.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ProposedFile {
    /// Path in the repository.
    pub path: String,
    /// Its content on the proposal branch.
    pub bytes: Vec<u8>,
    /// True when the followed branch has no such file (a new node).
    pub added: bool,
}

/// How often a proposal is retried when another writer moved the branch
/// between our read and our update.
const PROPOSE_ATTEMPTS: u32 = 64;

/// A repository path's components, refusing what would escape or hit `.git`.
fn proposal_path(path: &str) -> Result<Vec<&str>, SourceError> {
    let parts: Vec<&str> = path.split('/').collect();
    let bad = parts.iter().any(|p| {
        p.is_empty()
            || *p == "."
            || *p == ".."
            || p.eq_ignore_ascii_case(".git")
            || p.contains('\0')
    });
    if bad {
        return Err(SourceError::Proposal(format!(
            "path `{path}`: expected a relative path of named components (no empty, `.`, `..` or `.git`)"
        )));
    }
    Ok(parts)
}

impl Repo {
    /// Writes `bytes` as the file `path` in a new commit on `branch`
    /// (created from the head of `from`, the followed branch, when missing),
    /// without touching `from`, HEAD, the index or the work tree. The same
    /// path always names the same machine, so a repeated proposal replaces
    /// its file; identical bytes make no commit. The branch is moved by
    /// compare-and-swap and retried when another writer moved it first.
    pub fn propose(
        &self,
        branch: &str,
        from: &str,
        path: &str,
        bytes: &[u8],
        author: &Person,
        message: &str,
    ) -> Result<Proposed, SourceError> {
        if branch == from {
            return Err(SourceError::Proposal(format!(
                "branch `{branch}` is the followed branch; expected a separate review branch"
            )));
        }
        let refname = format!("refs/heads/{branch}");
        if !git2::Reference::is_valid_name(&refname) {
            return Err(SourceError::Proposal(format!(
                "`{branch}` is not a valid branch name"
            )));
        }
        let parts = proposal_path(path)?;
        let what = || format!("writing proposal {path} on {branch}");
        let repo = &self.repo;
        let blob = repo.blob(bytes).map_err(git_err(what()))?;
        // The commit's time from the one clock (`git2::Signature::now` reads its own).
        let when = git2::Time::new(crate::clock::now(), 0);
        let sig =
            git2::Signature::new(&author.name, &author.email, &when).map_err(git_err(what()))?;
        let mut last = None;
        for attempt in 0..PROPOSE_ATTEMPTS {
            let existing = match repo.find_reference(&refname) {
                Ok(r) => Some(r.peel_to_commit().map_err(git_err(what()))?),
                Err(e) if e.code() == git2::ErrorCode::NotFound => None,
                Err(e) => return Err(git_err(what())(e)),
            };
            let parent = match &existing {
                Some(c) => c.clone(),
                None => {
                    let base = self.head(Some(from))?;
                    repo.find_commit(git2::Oid::from_str(&base.commit).map_err(git_err(what()))?)
                        .map_err(git_err(what()))?
                }
            };
            let tree = parent.tree().map_err(git_err(what()))?;
            let current = tree.get_path(Path::new(path)).ok().map(|e| e.id());
            if current == Some(blob) {
                return Ok(Proposed::Unchanged);
            }
            let new_tree = put_blob(repo, Some(&tree), &parts, blob).map_err(|e| match e {
                PutError::Git(e) => git_err(what())(e),
                PutError::NotADirectory(at) => SourceError::Proposal(format!(
                    "path `{path}`: `{at}` is a file on {branch}; expected a directory"
                )),
            })?;
            let new_tree = repo.find_tree(new_tree).map_err(git_err(what()))?;
            let commit = repo
                .commit(None, &sig, &sig, message, &new_tree, &[&parent])
                .map_err(git_err(what()))?;
            let log = format!("slipway: proposal {path}");
            // Compare-and-swap under the ref's lock. A missing branch is created
            // with the zero id as the expected value, which libgit2 also checks
            // under the lock; an unforced create checks existence before taking
            // the lock, so two writers creating the branch at once could both
            // succeed and the first one's commit be lost.
            let expected = existing
                .as_ref()
                .map_or_else(git2::Oid::zero, |old| old.id());
            let moved = repo.reference_matching(&refname, commit, true, expected, &log);
            match moved {
                Ok(_) => {
                    return Ok(Proposed::Committed {
                        commit: commit.to_string(),
                        created_branch: existing.is_none(),
                    })
                }
                // Another writer won (the ref moved, exists, or is locked): read again.
                Err(e)
                    if matches!(
                        e.code(),
                        git2::ErrorCode::Modified
                            | git2::ErrorCode::Exists
                            | git2::ErrorCode::Locked
                    ) =>
                {
                    last = Some(e);
                    // Growing, jittered back-off so writers that collided
                    // do not collide again in step.
                    let jitter = (crate::clock::now_nanos() % 1000) as u64;
                    let micros = 1000 * u64::from(attempt.min(20) + 1) + jitter;
                    std::thread::sleep(std::time::Duration::from_micros(micros));
                }
                Err(e) => return Err(git_err(what())(e)),
            }
        }
        Err(SourceError::Proposal(format!(
            "branch `{branch}` kept moving under {PROPOSE_ATTEMPTS} attempts to write {path}: {}",
            last.map(|e| e.message().to_string()).unwrap_or_default()
        )))
    }

    /// The files on proposal `branch` that differ from the followed branch
    /// `from` (proposals not yet merged), sorted by path. A missing proposal
    /// branch has none.
    pub fn proposals(&self, branch: &str, from: &str) -> Result<Vec<ProposedFile>, SourceError> {
        let what = || format!("listing proposals on {branch}");
        let repo = &self.repo;
        let tip = match repo.find_reference(&format!("refs/heads/{branch}")) {
            Ok(r) => r.peel_to_commit().map_err(git_err(what()))?,
            Err(e) if e.code() == git2::ErrorCode::NotFound => return Ok(Vec::new()),
            Err(e) => return Err(git_err(what())(e)),
        };
        let base = self.head(Some(from))?;
        let base = repo
            .find_commit(git2::Oid::from_str(&base.commit).map_err(git_err(what()))?)
            .map_err(git_err(what()))?;
        let (new, old) = (
            tip.tree().map_err(git_err(what()))?,
            base.tree().map_err(git_err(what()))?,
        );
        let diff = repo
            .diff_tree_to_tree(Some(&old), Some(&new), None)
            .map_err(git_err(what()))?;
        let mut out = Vec::new();
        for delta in diff.deltas() {
            use git2::Delta;
            let added = match delta.status() {
                Delta::Added => true,
                Delta::Modified | Delta::Typechange => false,
                // A file the proposal branch lacks is the operator's change, not a proposal.
                _ => continue,
            };
            let file = delta.new_file();
            let Some(p) = file.path().and_then(|p| p.to_str()) else {
                continue;
            };
            let blob = repo.find_blob(file.id()).map_err(git_err(what()))?;
            out.push(ProposedFile {
                path: p.to_string(),
                bytes: blob.content().to_vec(),
                added,
            });
        }
        out.sort_by(|a, b| a.path.cmp(&b.path));
        Ok(out)
    }
}

enum PutError {
    Git(git2::Error),
    NotADirectory(String),
}

impl From<git2::Error> for PutError {
    fn from(e: git2::Error) -> Self {
        PutError::Git(e)
    }
}

/// A tree like `tree` with the blob at `parts` (directories made as needed).
fn put_blob(
    repo: &git2::Repository,
    tree: Option<&git2::Tree<'_>>,
    parts: &[&str],
    blob: git2::Oid,
) -> Result<git2::Oid, PutError> {
    let mut builder = repo.treebuilder(tree)?;
    let (first, rest) = parts.split_first().expect("a path has a component");
    if rest.is_empty() {
        builder.insert(first, blob, 0o100644)?;
    } else {
        let sub = match tree.and_then(|t| t.get_name(first)) {
            Some(e) if e.kind() == Some(git2::ObjectType::Tree) => Some(repo.find_tree(e.id())?),
            Some(_) => return Err(PutError::NotADirectory(first.to_string())),
            None => None,
        };
        let id = put_blob(repo, sub.as_ref(), rest, blob)?;
        builder.insert(first, id, 0o040000)?;
    }
    Ok(builder.write()?)
}

/// One file of a commit made by [`Repo::commit_files`]: its repository path
/// and its new bytes (`None`: the file is deleted).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FileChange {
    /// Path in the repository (named components; no `..`, `.git`).
    pub path: String,
    /// The new content; `None` deletes the file.
    pub bytes: Option<Vec<u8>>,
}

impl Repo {
    /// Commits `changes` on `branch` on top of `parent`, without touching
    /// HEAD, the index or the work tree, and moves the branch by
    /// compare-and-swap: it must still be at `parent` (or, with `create`,
    /// not exist), else [`SourceError::Moved`] and nothing moves (the caller
    /// reads the head again and retries). Deleting a missing file is an
    /// error; a directory left empty disappears. Returns the new commit.
    #[allow(clippy::too_many_arguments)]
    pub fn commit_files(
        &self,
        branch: &str,
        parent: &str,
        create: bool,
        changes: &[FileChange],
        author: &Person,
        committer: &Person,
        message: &str,
    ) -> Result<String, SourceError> {
        let refname = format!("refs/heads/{branch}");
        let bad = |m: String| SourceError::Proposal(m);
        if !git2::Reference::is_valid_name(&refname) {
            return Err(bad(format!("`{branch}` is not a valid branch name")));
        }
        let what = || format!("committing on {branch}");
        let repo = &self.repo;
        let parent_oid = git2::Oid::from_str(parent).map_err(git_err(what()))?;
        let parent_commit = repo.find_commit(parent_oid).map_err(git_err(what()))?;
        let mut tree = parent_commit.tree().map_err(git_err(what()))?;
        for c in changes {
            let parts = proposal_path(&c.path)?;
            let id = match &c.bytes {
                Some(b) => Some(repo.blob(b).map_err(git_err(what()))?),
                None => {
                    if tree.get_path(Path::new(&c.path)).is_err() {
                        return Err(bad(format!(
                            "path `{}`: no such file on {branch} to delete",
                            c.path
                        )));
                    }
                    None
                }
            };
            let new = edit_tree(repo, Some(&tree), &parts, id).map_err(|e| match e {
                PutError::Git(e) => git_err(what())(e),
                PutError::NotADirectory(at) => bad(format!(
                    "path `{}`: `{at}` is a file on {branch}; expected a directory",
                    c.path
                )),
            })?;
            let new = new.unwrap_or(empty_tree(repo).map_err(git_err(what()))?);
            tree = repo.find_tree(new).map_err(git_err(what()))?;
        }
        let when = git2::Time::new(crate::clock::now(), 0);
        let a =
            git2::Signature::new(&author.name, &author.email, &when).map_err(git_err(what()))?;
        let c = git2::Signature::new(&committer.name, &committer.email, &when)
            .map_err(git_err(what()))?;
        let commit = repo
            .commit(None, &a, &c, message, &tree, &[&parent_commit])
            .map_err(git_err(what()))?;
        let expected = if create {
            git2::Oid::zero()
        } else {
            parent_oid
        };
        let log = format!("slipway: {}", message.lines().next().unwrap_or_default());
        match repo.reference_matching(&refname, commit, true, expected, &log) {
            Ok(_) => Ok(commit.to_string()),
            Err(e)
                if matches!(
                    e.code(),
                    git2::ErrorCode::Modified | git2::ErrorCode::Exists | git2::ErrorCode::Locked
                ) =>
            {
                Err(SourceError::Moved {
                    branch: branch.to_string(),
                    expected: expected.to_string(),
                })
            }
            Err(e) => Err(git_err(what())(e)),
        }
    }

    /// True when `commit` is `ancestor` or a descendant of it.
    pub fn contains(&self, commit: &str, ancestor: &str) -> Result<bool, SourceError> {
        if commit == ancestor {
            return Ok(true);
        }
        let what = || format!("comparing {commit} with {ancestor}");
        let a = git2::Oid::from_str(commit).map_err(git_err(what()))?;
        let b = git2::Oid::from_str(ancestor).map_err(git_err(what()))?;
        self.repo.graph_descendant_of(a, b).map_err(git_err(what()))
    }
}

fn empty_tree(repo: &git2::Repository) -> Result<git2::Oid, git2::Error> {
    repo.treebuilder(None)?.write()
}

/// A tree like `tree` with the blob at `parts` put (`Some`) or removed
/// (`None`; directories left empty go too). `None`: the tree became empty.
fn edit_tree(
    repo: &git2::Repository,
    tree: Option<&git2::Tree<'_>>,
    parts: &[&str],
    blob: Option<git2::Oid>,
) -> Result<Option<git2::Oid>, PutError> {
    let mut builder = repo.treebuilder(tree)?;
    let (first, rest) = parts.split_first().expect("a path has a component");
    if rest.is_empty() {
        match blob {
            Some(b) => {
                builder.insert(first, b, 0o100644)?;
            }
            None => {
                if builder.get(first)?.is_some() {
                    builder.remove(first)?;
                }
            }
        }
    } else {
        let sub = match tree.and_then(|t| t.get_name(first)) {
            Some(e) if e.kind() == Some(git2::ObjectType::Tree) => Some(repo.find_tree(e.id())?),
            Some(_) => return Err(PutError::NotADirectory(first.to_string())),
            None => None,
        };
        match edit_tree(repo, sub.as_ref(), rest, blob)? {
            Some(id) => {
                builder.insert(first, id, 0o040000)?;
            }
            None => {
                if builder.get(first)?.is_some() {
                    builder.remove(first)?;
                }
            }
        }
    }
    if builder.is_empty() {
        return Ok(None);
    }
    Ok(Some(builder.write()?))
}
