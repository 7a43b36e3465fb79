//! The filesystem watcher on the repository's refs: any change there may mean
//! the branch moved, so it wakes the loop (debounced; the loop itself decides
//! whether anything changed).

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use notify::{RecursiveMode, Watcher};
use tokio::sync::Notify;

/// How long to wait for a burst of ref updates (a push writes several files) to settle.
const DEBOUNCE: Duration = Duration::from_millis(100);

/// Keeps the watcher alive; dropping it stops watching.
pub struct RefWatcher {
    _watcher: notify::RecommendedWatcher,
    _debounce: tokio::task::JoinHandle<()>,
}

impl Drop for RefWatcher {
    fn drop(&mut self) {
        self._debounce.abort();
    }
}

/// Watches `paths` (files or directories) and notifies `trigger` after each
/// burst of changes. Files are watched through their directory so that a
/// file created later (`packed-refs`) or replaced by rename (`HEAD`) is seen.
pub fn spawn(paths: &[PathBuf], trigger: Arc<Notify>) -> notify::Result<RefWatcher> {
    let (tx, mut rx) = tokio::sync::mpsc::unbounded_channel::<()>();
    let wanted: Vec<PathBuf> = paths.to_vec();
    let mut watcher = notify::recommended_watcher(move |ev: notify::Result<notify::Event>| {
        let relevant = match ev {
            // Reads (our own pass reading HEAD) must not wake the loop, or it
            // would wake itself forever; nor may unrelated files of the git dir.
            Ok(ev) => {
                !matches!(ev.kind, notify::EventKind::Access(_))
                    && ev
                        .paths
                        .iter()
                        .any(|p| wanted.iter().any(|w| p.starts_with(w)))
            }
            // Errors (e.g. an overflowed queue) may hide a ref change: look.
            Err(_) => true,
        };
        if relevant {
            let _ = tx.send(());
        }
    })?;
    let mut dirs: Vec<(&Path, RecursiveMode)> = Vec::new();
    for p in paths {
        if p.is_dir() {
            dirs.push((p.as_path(), RecursiveMode::Recursive));
        } else if let Some(parent) = p.parent() {
            dirs.push((parent, RecursiveMode::NonRecursive));
        }
    }
    dirs.sort_by(|a, b| a.0.cmp(b.0));
    dirs.dedup_by(|a, b| a.0 == b.0);
    for (dir, mode) in dirs {
        watcher.watch(dir, mode)?;
    }
    let debounce = tokio::spawn(async move {
        while rx.recv().await.is_some() {
            tokio::time::sleep(DEBOUNCE).await;
            while rx.try_recv().is_ok() {}
            trigger.notify_one();
        }
    });
    Ok(RefWatcher {
        _watcher: watcher,
        _debounce: debounce,
    })
}
