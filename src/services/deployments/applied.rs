//! The applied revision's design as the service serves it: read again by
//! the reconciler after a start (never on a request's thread), waited for
//! by requests (bounded), replaced under one short write lock.

use std::sync::Arc;
use std::time::Duration;

use super::{BootConfig, BootError, BootService};
use crate::design;
use crate::services::render_cache::{serving_error, Index, Loaded, Served, Serving, ServingState};
use crate::source::Repo;

impl BootService {
    /// What is being served, for health checks.
    pub fn serving(&self) -> ServingState {
        match &self.read().design {
            Serving::Nothing => ServingState::Nothing,
            Serving::Loading(c) => ServingState::Loading { commit: c.clone() },
            Serving::Ready(l) => ServingState::Ready {
                commit: l.commit.clone(),
            },
            Serving::Unavailable { commit, reason } => ServingState::Unavailable {
                commit: commit.clone(),
                reason: reason.clone(),
            },
        }
    }

    /// Whether the design of `commit` is the one served.
    pub fn serves(&self, commit: &str) -> bool {
        matches!(&self.read().design, Serving::Ready(l) if l.commit == commit)
    }

    pub(super) fn read(&self) -> std::sync::RwLockReadGuard<'_, Served> {
        self.served.read().unwrap_or_else(|p| p.into_inner())
    }

    pub(super) fn write(&self) -> std::sync::RwLockWriteGuard<'_, Served> {
        self.served.write().unwrap_or_else(|p| p.into_inner())
    }

    /// Changes the served design (under the write lock, with `edit` on the
    /// nodes served from memory) and wakes whoever waits for it. The old
    /// design is dropped after the lock is released.
    pub(super) fn set_design(&self, design: Serving, edit: impl FnOnce(&mut Served)) {
        let old = {
            let mut served = self.write();
            served.generation += 1;
            edit(&mut served);
            std::mem::replace(&mut served.design, design)
        };
        drop(old);
        self.changes.send_modify(|v| *v += 1);
    }

    /// Marks the applied revision `commit` as being read again (at start),
    /// so requests wait for it instead of failing.
    pub fn begin_loading(&self, commit: &str) {
        self.set_design(Serving::Loading(commit.to_string()), |_| {});
    }

    /// Marks that there is no applied revision to serve.
    pub fn serve_nothing(&self) {
        if !matches!(self.read().design, Serving::Nothing) {
            self.set_design(Serving::Nothing, |s| s.nodes.clear());
        }
    }

    /// Waits (without a thread, at most `bound`) while the applied revision
    /// is being loaded. Requests call it before work that needs the design.
    pub async fn wait_ready(&self, bound: Duration) {
        // Subscribed before looking, so a change in between is not missed.
        let mut changes = self.changes.subscribe();
        let deadline = tokio::time::Instant::now() + bound;
        while matches!(self.read().design, Serving::Loading(_)) {
            // Past the bound (or the service gone), the caller answers 503.
            let Ok(Ok(())) = tokio::time::timeout_at(deadline, changes.changed()).await else {
                return;
            };
        }
    }

    /// Reads the applied revision `commit` again (git, validation with
    /// `cache`, compile) and serves it. For the reconciler (at start, or
    /// while it could not be read) and the offline `slipway node-key`;
    /// never on a request's thread. No lock is held while it works; on
    /// failure the revision is marked unavailable (health says why) and the
    /// error returned.
    pub fn load_applied(
        &self,
        commit: &str,
        cache: Option<&mut design::ValidationCache>,
    ) -> Result<(), BootError> {
        let t = std::time::Instant::now();
        match read_design(&self.cfg, commit, cache) {
            Ok(loaded) => {
                tracing::info!(
                    %commit,
                    took_ms = t.elapsed().as_millis() as u64,
                    "boot data: applied revision read again and compiled"
                );
                let loaded = Arc::new(loaded);
                // A node served from memory keeps its entry: its deployment
                // was made from this very revision's inputs.
                self.set_design(Serving::Ready(loaded), |_| {});
                Ok(())
            }
            Err(e) => {
                let reason = match &e {
                    BootError::Revision { message, .. } => message.clone(),
                    other => other.to_string(),
                };
                tracing::error!(%commit, %reason, "boot data: the applied revision cannot be served; serving what the database holds");
                self.set_design(
                    Serving::Unavailable {
                        commit: commit.to_string(),
                        reason: reason.clone(),
                    },
                    |_| {},
                );
                Err(BootError::Unavailable {
                    commit: commit.to_string(),
                    reason,
                })
            }
        }
    }

    /// The design being served and its commit, for the services that index
    /// it (the agents' node index), or why none is.
    pub(in crate::services) fn served_design(&self) -> Result<Arc<Loaded>, BootError> {
        self.loaded()
    }

    /// The design being served, or why none is.
    pub(in crate::services) fn loaded(&self) -> Result<Arc<Loaded>, BootError> {
        serving_error(&self.read().design)
    }
}

/// Reads, validates and compiles the design of `commit`.
pub(super) fn read_design(
    cfg: &BootConfig,
    commit: &str,
    cache: Option<&mut design::ValidationCache>,
) -> Result<Loaded, BootError> {
    let err = |message: String| BootError::Revision {
        commit: commit.to_string(),
        message,
    };
    let repo = Repo::discover(&cfg.repo).map_err(|e| err(e.to_string()))?;
    let files = repo
        .design_files_within(commit, cfg.design_dir.as_deref(), &cfg.limits)
        .map_err(|e| err(e.to_string()))?;
    drop(repo);
    let v = match cache {
        Some(c) => crate::validate_cached(&files, c),
        None => crate::validate(&files),
    };
    drop(files);
    let mut design = match v.design {
        Some(d) if v.messages.iter().all(|m| m.level != design::Level::Error) => d,
        _ => {
            return Err(err(format!(
                "it no longer validates ({} error(s)); see `slipway validate --rev {commit}`",
                v.error_count()
            )))
        }
    };
    design.release_canonical();
    let index = Index::build(&design).map_err(|e| err(e.to_string()))?;
    Ok(Loaded {
        commit: commit.to_string(),
        design,
        index,
    })
}
