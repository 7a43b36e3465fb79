//! Write-back: design edits asked for through an API become validated git
//! commits. Dialect-neutral: Luna2's config writes and Commissaire's
//! membership writes call [`WriteBack::edit`] with edits in design terms
//! ([`Edit`]: put, create, update, delete, clone, rename a document).
//!
//! One call:
//!
//! 1. reads the head of the target branch — the followed branch, or the
//!    review branch of `--write-branch` (created from the followed head on
//!    its first write; the followed branch is then never changed);
//! 2. applies the edits to that head's design files ([`crate::design::edit`]:
//!    untouched documents keep their bytes, comments and order);
//! 3. validates the whole result ([`crate::validation::validate_cached`]);
//!    an invalid result commits nothing and answers
//!    [`WriteError::Invalid`] with the error messages (file:line each) —
//!    unless the head itself was invalid already, answered
//!    [`WriteError::HeadInvalid`] naming it (slipway does not build on a
//!    broken head; fix it in git first);
//! 4. commits the changed files on the branch by compare-and-swap
//!    ([`Repo::commit_files`]: author the requesting user, committer
//!    slipway, the message naming the request); when another writer moved
//!    the branch meanwhile, it reads the new head and does it all again, up
//!    to [`ATTEMPTS`] times, then [`WriteError::Conflict`];
//! 5. on the followed branch, wakes the reconciler and waits (at most
//!    `apply_wait`, 10 s by default) until the commit, or a later one
//!    holding it, is applied: the client's next read sees its write
//!    ([`Applied`] says whether it did).
//!
//! Writers of one server take turns (one lock, which also keeps one
//! validation cache warm); the compare-and-swap covers other writers of the
//! repository (a `git push`, another server). The head is not required to be
//! the applied revision: a commit the reconciler has not reached yet (a
//! previous write, a push) is built upon, as its result is validated whole.
//!
//! Every method blocks (git, validation): call them off the async runtime.

use std::path::PathBuf;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use tokio::sync::Notify;

pub use crate::design::edit::{Change, Edit, EditError, Fields, Outcome};
use crate::design::{self, Limits, Message, ValidationCache};
use crate::services::SharedStatus;
use crate::source::{FileChange, Person, Repo, SourceError};

/// How many times an edit is made again after losing the compare-and-swap.
pub const ATTEMPTS: u32 = 16;

/// Default of [`WriteBackConfig::apply_wait`].
pub const DEFAULT_APPLY_WAIT: Duration = Duration::from_secs(10);

/// Where edits are committed.
#[derive(Debug, Clone)]
pub struct WriteBackConfig {
    /// A path inside the design repository.
    pub repo: PathBuf,
    /// The followed branch (`None`: the checked-out branch).
    pub branch: Option<String>,
    /// Design root inside the repository (`None`: `designs/` or the root).
    pub design_dir: Option<String>,
    /// Commit on this review branch instead of the followed one (`--write-branch`).
    pub write_branch: Option<String>,
    /// Byte caps of the design (the result of an edit is held to them).
    pub limits: Limits,
    /// Longest wait for a commit on the followed branch to be applied.
    pub apply_wait: Duration,
}

/// Whether the client's next read sees its write.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Applied {
    /// The commit (or a later one holding it) is the applied revision.
    Served,
    /// Committed on a review branch: nothing to apply until it is merged.
    ReviewBranch,
    /// Not applied within the wait (the reconciler is busy or stopped).
    Pending,
    /// The reconciler refused the commit (`detail`), e.g. the mass-delete
    /// guard (SW401) or boot data that does not render (SW396).
    Refused(String),
}

/// What [`WriteBack::edit`] did.
#[derive(Debug, Clone)]
pub struct Committed {
    /// The new commit; `None` when the edits changed nothing.
    pub commit: Option<String>,
    /// The branch written.
    pub branch: String,
    /// The repository paths changed.
    pub files: Vec<String>,
    /// What each edit did, in order.
    pub outcomes: Vec<Outcome>,
    /// Whether it is served yet.
    pub applied: Applied,
}

/// Why an edit was not committed (nothing was).
#[derive(Debug, thiserror::Error)]
pub enum WriteError {
    /// The result does not validate: its error messages.
    #[error("the design would be invalid: {}", lines(.messages))]
    Invalid {
        /// Error-level messages of the edited design.
        messages: Vec<Message>,
    },
    /// The head being edited is invalid itself; nothing is built on it.
    #[error("the head {commit} of branch `{branch}` is invalid; fix it in git first: {}", lines(.messages))]
    HeadInvalid {
        /// The branch.
        branch: String,
        /// Its head.
        commit: String,
        /// The head's error messages.
        messages: Vec<Message>,
    },
    /// The edits do not apply (a missing or existing document, a refused change).
    #[error(transparent)]
    Edit(#[from] EditError),
    /// The branch kept moving under every attempt.
    #[error("{0}")]
    Conflict(String),
    /// The request cannot be made as asked (a user name git refuses).
    #[error("{0}")]
    Refused(String),
    /// Git or the repository failed.
    #[error("{0}")]
    Internal(String),
}

fn lines(messages: &[Message]) -> String {
    messages
        .iter()
        .map(Message::to_text_line)
        .collect::<Vec<_>>()
        .join("; ")
}

impl WriteError {
    /// The messages as `file:line: LEVEL CODE Kind/name: text` lines
    /// (empty but for the validation errors).
    pub fn message_lines(&self) -> Vec<String> {
        match self {
            WriteError::Invalid { messages } | WriteError::HeadInvalid { messages, .. } => {
                messages.iter().map(Message::to_text_line).collect()
            }
            _ => Vec::new(),
        }
    }
}

impl From<SourceError> for WriteError {
    fn from(e: SourceError) -> Self {
        WriteError::Internal(e.to_string())
    }
}

/// See the module docs.
pub struct WriteBack {
    cfg: WriteBackConfig,
    /// The served status and the reconciler's trigger (`None`: no waiting).
    served: Option<(SharedStatus, Arc<Notify>)>,
    /// One writer at a time; the validation cache of the last result.
    turn: Mutex<ValidationCache>,
    /// The served design, for dialects that map their names onto it.
    boot: Option<Arc<crate::services::BootService>>,
}

impl std::fmt::Debug for WriteBack {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("WriteBack")
            .field("cfg", &self.cfg)
            .finish_non_exhaustive()
    }
}

/// The committer of every write-back commit.
fn committer() -> Person {
    Person {
        name: "slipway".into(),
        email: "slipway@localhost".into(),
    }
}

impl WriteBack {
    /// A service committing as `cfg` says; `served` (the server's status and
    /// reconcile trigger) makes it wait for its commits to be applied.
    pub fn new(cfg: WriteBackConfig, served: Option<(SharedStatus, Arc<Notify>)>) -> WriteBack {
        let cache = ValidationCache::with_limits(cfg.limits);
        WriteBack {
            cfg,
            served,
            turn: Mutex::new(cache),
            boot: None,
        }
    }

    /// The same service, reading the applied design through `boot` for
    /// [`WriteBack::with_applied`].
    pub fn with_design(mut self, boot: Arc<crate::services::BootService>) -> WriteBack {
        self.boot = Some(boot);
        self
    }

    /// Runs `f` on the applied design (what the dialects' reads show), e.g.
    /// to find which network a node's interface is on before building an
    /// edit; `Err` when none is served yet.
    pub fn with_applied<T>(&self, f: impl FnOnce(&design::Design) -> T) -> Result<T, String> {
        let boot = self
            .boot
            .as_ref()
            .ok_or_else(|| "no applied design is available to this service".to_string())?;
        let loaded = boot.served_design().map_err(|e| e.to_string())?;
        Ok(f(&loaded.design))
    }

    /// The branch edits are committed on (`None`: the checked-out one).
    pub fn target_branch(&self) -> Option<&str> {
        self.cfg
            .write_branch
            .as_deref()
            .or(self.cfg.branch.as_deref())
    }

    /// Applies `edits` for `user` and commits the result (see the module
    /// docs); `what` names the request in the commit message (e.g.
    /// `luna2: POST /config/node/node001`, then ` by <user>`).
    pub fn edit(&self, user: &str, what: &str, edits: Vec<Edit>) -> Result<Committed, WriteError> {
        if user.is_empty() || user.chars().any(|c| c.is_control() || c == '<' || c == '>') {
            return Err(WriteError::Refused(format!(
                "user `{}` cannot author a commit (empty, or a control character or `<>`)",
                user.escape_debug()
            )));
        }
        let author = Person {
            name: user.to_string(),
            email: format!("{user}@slipway.invalid").replace(' ', "."),
        };
        let mut message = format!("{} by {user}\n\n", what.trim());
        for e in &edits {
            message.push_str(&format!("- {}\n", e.describe()));
        }
        let done = {
            let mut cache = self.turn.lock().unwrap_or_else(|p| p.into_inner());
            self.commit(&mut cache, &author, &message, &edits)?
        };
        let Committed {
            commit,
            branch,
            files,
            outcomes,
            ..
        } = done.0;
        let applied = match (&commit, done.1) {
            (Some(c), true) => self.wait_applied(c),
            (None, true) => Applied::Served,
            (_, false) => Applied::ReviewBranch,
        };
        Ok(Committed {
            commit,
            branch,
            files,
            outcomes,
            applied,
        })
    }

    /// Steps 1–4 of the module docs; the bool: the followed branch was written.
    fn commit(
        &self,
        cache: &mut ValidationCache,
        author: &Person,
        message: &str,
        edits: &[Edit],
    ) -> Result<(Committed, bool), WriteError> {
        let repo = Repo::discover(&self.cfg.repo)?;
        let followed = match &self.cfg.branch {
            Some(b) => b.clone(),
            None => repo.current_branch().ok_or_else(|| {
                WriteError::Internal(
                    "the repository's HEAD is on no branch; name the followed branch (--branch)"
                        .into(),
                )
            })?,
        };
        let target = self
            .cfg
            .write_branch
            .clone()
            .unwrap_or_else(|| followed.clone());
        let on_followed = target == followed;
        let dir = self.cfg.design_dir.as_deref();
        for attempt in 0..ATTEMPTS {
            let (head, create) = match repo.head(Some(&target)) {
                Ok(rev) => (rev.commit, false),
                Err(SourceError::UnknownRevision { .. }) if !on_followed => {
                    (repo.head(Some(&followed))?.commit, true)
                }
                Err(e) => return Err(e.into()),
            };
            let root = repo.design_root(&head, dir)?;
            let files = match repo.design_files_within(&head, dir, &self.cfg.limits) {
                Ok(f) => f,
                Err(SourceError::TooLarge(m)) => {
                    return Err(WriteError::HeadInvalid {
                        branch: target,
                        commit: head,
                        messages: vec![*m],
                    })
                }
                Err(e) => return Err(e.into()),
            };
            let edited = design::edit::apply(&files, edits)?;
            if edited.changes.is_empty() {
                return Ok((
                    Committed {
                        commit: None,
                        branch: target,
                        files: Vec::new(),
                        outcomes: edited.outcomes,
                        applied: Applied::Served,
                    },
                    on_followed,
                ));
            }
            let v = crate::validation::validate_cached(&edited.files, cache);
            if !v.is_valid() {
                let errors: Vec<Message> = v.messages.into_iter().filter(|m| m.error).collect();
                let base = crate::validation::validate_cached(&files, cache);
                if !base.is_valid() {
                    return Err(WriteError::HeadInvalid {
                        branch: target,
                        commit: head,
                        messages: base.messages.into_iter().filter(|m| m.error).collect(),
                    });
                }
                return Err(WriteError::Invalid { messages: errors });
            }
            let changes: Vec<FileChange> = edited
                .changes
                .iter()
                .map(|(path, bytes)| FileChange {
                    path: format!("{root}{path}"),
                    bytes: bytes.clone(),
                })
                .collect();
            match repo.commit_files(
                &target,
                &head,
                create,
                &changes,
                author,
                &committer(),
                message,
            ) {
                Ok(commit) => {
                    tracing::info!(%commit, branch = %target, files = changes.len(), attempt, request = %message.lines().next().unwrap_or_default(), "write-back: committed");
                    return Ok((
                        Committed {
                            commit: Some(commit),
                            branch: target,
                            files: changes.into_iter().map(|c| c.path).collect(),
                            outcomes: edited.outcomes,
                            applied: Applied::Pending,
                        },
                        on_followed,
                    ));
                }
                Err(SourceError::Moved { .. }) => {
                    tracing::debug!(branch = %target, attempt, "write-back: the branch moved; editing the new head");
                    let jitter = crate::clock::now_nanos() % 1000;
                    std::thread::sleep(Duration::from_micros(
                        500 * u64::from(attempt + 1) + jitter as u64,
                    ));
                }
                Err(e) => return Err(e.into()),
            }
        }
        Err(WriteError::Conflict(format!(
            "branch `{target}` kept moving under {ATTEMPTS} attempts to commit; try again"
        )))
    }

    /// Wakes the reconciler and waits until `commit` (or a descendant) is
    /// applied, it is refused, or `apply_wait` passes.
    fn wait_applied(&self, commit: &str) -> Applied {
        let Some((status, trigger)) = &self.served else {
            return Applied::Pending;
        };
        trigger.notify_one();
        let Ok(repo) = Repo::discover(&self.cfg.repo) else {
            return Applied::Pending;
        };
        let deadline = Instant::now() + self.cfg.apply_wait;
        let holds = |c: &str| repo.contains(c, commit).unwrap_or(false);
        loop {
            let (applied, last) = {
                let s = status.read().unwrap_or_else(|p| p.into_inner());
                (s.applied.clone(), s.last_pass.clone())
            };
            if applied.as_deref().is_some_and(holds) {
                return Applied::Served;
            }
            if let Some(p) = last {
                let refused = matches!(p.result, crate::services::PassOutcome::Invalid);
                if refused && p.commit.as_deref().is_some_and(holds) {
                    tracing::warn!(%commit, detail = %p.detail, "write-back: the reconciler refused the commit");
                    return Applied::Refused(p.detail);
                }
            }
            if Instant::now() >= deadline {
                tracing::warn!(
                    %commit,
                    wait_secs = self.cfg.apply_wait.as_secs_f64(),
                    "write-back: the commit is not applied yet; answering anyway (the next read may not see it)"
                );
                return Applied::Pending;
            }
            std::thread::sleep(Duration::from_millis(10));
        }
    }
}
