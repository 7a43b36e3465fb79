//! A serving process's hold on its database: one writer per database file
//! ([`DatabaseLock`]) and the check that the file it writes is still the file
//! at its path ([`DatabaseFile`]).
//!
//! The lock is an exclusive `flock` on `<db>.lock`, taken before anything is
//! written and released by the kernel when the process dies, so `kill -9`
//! leaves no stale lock. It sits beside the database rather than on it so it
//! never meets SQLite's own (POSIX) locks; the lock file holds the holder's
//! pid for the message a second server prints.
//!
//! SQLite keeps writing to an open file after it is removed or replaced under
//! it, and every such write is lost. [`DatabaseFile`] records the (device,
//! inode) of the file at start and compares it with what the path names now
//! (one `stat`); once they differ the database is marked lost for good, so
//! every later write is refused and health says why.

use std::fs::File;
use std::io::{Read, Seek, Write};
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};
use std::sync::OnceLock;

use super::StateError;

/// The exclusive hold of one serving process on a database (see the module
/// docs). Dropping it (or the process ending) releases it.
#[derive(Debug)]
pub struct DatabaseLock {
    _file: Option<File>,
    path: PathBuf,
}

/// How long [`DatabaseLock::acquire`] waits for a holder to let go.
const RELEASE_WAIT: std::time::Duration = std::time::Duration::from_secs(2);

/// The lock file of a database: `<db>.lock` beside it.
pub fn lock_path(db: &Path) -> PathBuf {
    let mut name = db.as_os_str().to_owned();
    name.push(".lock");
    PathBuf::from(name)
}

impl DatabaseLock {
    /// Takes the lock of `db`, waiting at most a couple of seconds; fails
    /// with [`StateError::Locked`] (naming the holder's pid when it wrote
    /// one) when another process holds it.
    ///
    /// A PostgreSQL database takes no file lock: several replicas share it by
    /// design, its writers are serialised by the server (see `state::db`).
    pub fn acquire(db: &Path) -> Result<DatabaseLock, StateError> {
        if db.to_str().is_some_and(super::is_postgres_url) {
            return Ok(DatabaseLock {
                _file: None,
                path: PathBuf::new(),
            });
        }
        let path = lock_path(db);
        let io = |what: &str, e: std::io::Error| StateError::Open {
            path: db.display().to_string(),
            source: format!("{what} {}: {e}", path.display()).into(),
        };
        let mut file = std::fs::OpenOptions::new()
            .read(true)
            .write(true)
            .create(true)
            .truncate(false)
            .open(&path)
            .map_err(|e| io("cannot open the lock file", e))?;
        // A server that is stopping releases the lock within moments (and a
        // child forked by another thread holds a copy of the descriptor until
        // it execs): wait that long before calling the database taken.
        let deadline = std::time::Instant::now() + RELEASE_WAIT;
        loop {
            match file.try_lock() {
                Ok(()) => break,
                Err(std::fs::TryLockError::WouldBlock) if std::time::Instant::now() < deadline => {
                    std::thread::sleep(std::time::Duration::from_millis(20));
                }
                Err(std::fs::TryLockError::WouldBlock) => {
                    let mut text = String::new();
                    let _ = file.read_to_string(&mut text);
                    return Err(StateError::Locked {
                        path: db.display().to_string(),
                        lock: path.display().to_string(),
                        holder: text.trim().parse().ok(),
                    });
                }
                Err(std::fs::TryLockError::Error(e)) => return Err(io("cannot lock", e)),
            }
        }
        // Ours now: say who holds it, for the next process that tries.
        file.set_len(0)
            .and_then(|_| file.rewind())
            .and_then(|_| writeln!(file, "{}", std::process::id()))
            .and_then(|_| file.flush())
            .map_err(|e| io("cannot write the pid into", e))?;
        Ok(DatabaseLock {
            _file: Some(file),
            path,
        })
    }

    /// The lock file.
    pub fn path(&self) -> &Path {
        &self.path
    }
}

/// The identity of the database file a server opened, and whether it is
/// still the file at its path (see the module docs).
#[derive(Debug)]
pub struct DatabaseFile {
    path: PathBuf,
    /// `None` for a PostgreSQL database: there is no file to lose.
    identity: Option<(u64, u64)>,
    lost: OnceLock<String>,
}

impl DatabaseFile {
    /// Records the (device, inode) of the file at `path` now (after it is
    /// opened, so it exists).
    pub fn pin(path: &Path) -> Result<DatabaseFile, StateError> {
        if path.to_str().is_some_and(super::is_postgres_url) {
            return Ok(DatabaseFile {
                path: PathBuf::new(),
                identity: None,
                lost: OnceLock::new(),
            });
        }
        let meta = std::fs::metadata(path).map_err(|e| StateError::Open {
            path: path.display().to_string(),
            source: format!("cannot inspect the database file: {e}").into(),
        })?;
        Ok(DatabaseFile {
            path: path.to_path_buf(),
            identity: Some((meta.dev(), meta.ino())),
            lost: OnceLock::new(),
        })
    }

    /// `Ok` while the path still names the file opened at start; otherwise
    /// (now or at any earlier check) [`StateError::Replaced`]. One `stat`.
    pub fn check(&self) -> Result<(), StateError> {
        if let Some(why) = self.lost.get() {
            return Err(self.replaced(why));
        }
        let Some(identity) = self.identity else {
            return Ok(());
        };
        let why = match std::fs::metadata(&self.path) {
            Ok(m) if (m.dev(), m.ino()) == identity => return Ok(()),
            Ok(m) => format!(
                "was replaced by another file (device {} inode {}; the server opened device {} inode {})",
                m.dev(),
                m.ino(),
                identity.0,
                identity.1
            ),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => "was removed".to_string(),
            Err(e) => format!("can no longer be inspected ({e})"),
        };
        let why = self.lost.get_or_init(|| why);
        tracing::error!(path = %self.path.display(), %why, "the database file changed under the server; refusing writes");
        Err(self.replaced(why))
    }

    /// Why the database is lost, once a check found it so.
    pub fn problem(&self) -> Option<String> {
        self.lost.get().map(|why| self.replaced(why).to_string())
    }

    fn replaced(&self, why: &str) -> StateError {
        StateError::Replaced {
            path: self.path.display().to_string(),
            why: why.to_string(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_second_lock_on_one_database_is_refused_with_the_holders_pid() {
        let dir = tempfile::tempdir().unwrap();
        let db = dir.path().join("s.db");
        let first = DatabaseLock::acquire(&db).unwrap();
        let e = DatabaseLock::acquire(&db).unwrap_err();
        match &e {
            StateError::Locked { holder, .. } => assert_eq!(*holder, Some(std::process::id())),
            other => panic!("expected Locked, found {other:?}"),
        }
        let text = e.to_string();
        assert!(
            text.contains("s.db") && text.contains("s.db.lock"),
            "{text}"
        );
        drop(first);
        DatabaseLock::acquire(&db).expect("released on drop");
    }

    #[test]
    fn a_removed_or_replaced_file_is_noticed_and_stays_noticed() {
        let dir = tempfile::tempdir().unwrap();
        let db = dir.path().join("s.db");
        std::fs::write(&db, b"x").unwrap();
        let f = DatabaseFile::pin(&db).unwrap();
        f.check().unwrap();
        assert!(f.problem().is_none());
        let other = dir.path().join("other.db");
        std::fs::write(&other, b"y").unwrap();
        std::fs::rename(&other, &db).unwrap();
        let e = f.check().unwrap_err().to_string();
        assert!(e.contains("replaced"), "{e}");
        assert!(f.problem().unwrap().contains("replaced"));

        let db2 = dir.path().join("t.db");
        std::fs::write(&db2, b"x").unwrap();
        let g = DatabaseFile::pin(&db2).unwrap();
        std::fs::remove_file(&db2).unwrap();
        assert!(g.check().unwrap_err().to_string().contains("removed"));
        // Putting a file back at the path does not make it the same file.
        std::fs::write(&db2, b"x").unwrap();
        assert!(g.check().is_err());
    }
}
