//! The report writer: one thread with its own database connection that
//! commits every boot-action report waiting in one IMMEDIATE transaction
//! (group commit) and answers each once it is durable, so a boot storm's
//! reports cost a few syncs instead of one each.

use std::sync::Arc;

use super::deployments::BootError;
use crate::clock::now;
use crate::state::{
    BootActionDetail, BootActionStatus, DatabaseFile, ReportOutcome, StateError, Store,
};

/// The report writer of a service, started on the first report.
#[derive(Default)]
pub struct ReportWriter {
    sender: std::sync::Mutex<Option<std::sync::mpsc::Sender<ReportJob>>>,
}

/// Where the writer opens its connection, and the file it checks.
type Target = (String, Option<Arc<DatabaseFile>>);

impl ReportWriter {
    /// Hands a report to the writer; the receiver gets its outcome once it
    /// is committed. `target` is asked for only to start the writer.
    pub fn submit(
        &self,
        action_id: &str,
        status: Option<BootActionStatus>,
        details: &[BootActionDetail],
        target: impl FnOnce() -> Result<Target, BootError>,
    ) -> Result<tokio::sync::oneshot::Receiver<Result<ReportOutcome, BootError>>, BootError> {
        let (reply, answer) = tokio::sync::oneshot::channel();
        self.send(
            ReportJob {
                action_id: action_id.to_string(),
                status,
                details: details.to_vec(),
                reply: Reply::Async(reply),
            },
            target,
        )?;
        Ok(answer)
    }

    /// Records a report; returns once it is committed (blocking).
    pub fn report(
        &self,
        action_id: &str,
        status: Option<BootActionStatus>,
        details: &[BootActionDetail],
        target: impl FnOnce() -> Result<Target, BootError>,
    ) -> Result<ReportOutcome, BootError> {
        let (reply, answer) = std::sync::mpsc::sync_channel(1);
        self.send(
            ReportJob {
                action_id: action_id.to_string(),
                status,
                details: details.to_vec(),
                reply: Reply::Blocking(reply),
            },
            target,
        )?;
        answer.recv().map_err(|_| writer_gone())?
    }

    fn send(
        &self,
        job: ReportJob,
        target: impl FnOnce() -> Result<Target, BootError>,
    ) -> Result<(), BootError> {
        let mut w = self.sender.lock().unwrap_or_else(|p| p.into_inner());
        if w.is_none() {
            let (path, db) = target()?;
            *w = Some(spawn_report_writer(std::path::Path::new(&path), db)?);
        }
        let tx = w.as_ref().expect("writer just started");
        if tx.send(job).is_err() {
            *w = None;
            return Err(writer_gone());
        }
        Ok(())
    }
}

/// The error of a report the writer could not take or answer.
pub fn writer_gone() -> BootError {
    BootError::Service("the boot-action report writer stopped".into())
}

/// Where a report's outcome goes.
enum Reply {
    Blocking(std::sync::mpsc::SyncSender<Result<ReportOutcome, BootError>>),
    Async(tokio::sync::oneshot::Sender<Result<ReportOutcome, BootError>>),
}

impl Reply {
    fn send(self, r: Result<ReportOutcome, BootError>) {
        match self {
            Reply::Blocking(tx) => {
                let _ = tx.send(r);
            }
            Reply::Async(tx) => {
                let _ = tx.send(r);
            }
        }
    }
}

/// A report waiting for the writer, and where its outcome goes.
struct ReportJob {
    action_id: String,
    status: Option<BootActionStatus>,
    details: Vec<BootActionDetail>,
    reply: Reply,
}

/// Most reports committed in one transaction.
const REPORT_BATCH: usize = 512;

/// Starts the report writer on its own connection to the database at
/// `path`: it takes whatever reports are waiting (up to [`REPORT_BATCH`]),
/// commits them in one transaction, answers each, and repeats; it ends when
/// the service is dropped.
fn spawn_report_writer(
    path: &std::path::Path,
    db: Option<Arc<DatabaseFile>>,
) -> Result<std::sync::mpsc::Sender<ReportJob>, BootError> {
    let mut store = Store::open(path)?;
    let (tx, rx) = std::sync::mpsc::channel::<ReportJob>();
    std::thread::Builder::new()
        .name("report-writer".into())
        .spawn(move || {
            while let Ok(first) = rx.recv() {
                let mut jobs = vec![first];
                while jobs.len() < REPORT_BATCH {
                    match rx.try_recv() {
                        Ok(j) => jobs.push(j),
                        Err(_) => break,
                    }
                }
                let reports: Vec<crate::state::Report<'_>> = jobs
                    .iter()
                    .map(|j| crate::state::Report {
                        action_id: &j.action_id,
                        status: j.status.map(BootActionStatus::as_str),
                        details: &j.details,
                    })
                    .collect();
                // The file is looked at before the batch and again before
                // anything is acknowledged: a report committed into a file
                // removed or replaced meanwhile is lost, so it gets a 503.
                let check = || db.as_ref().map_or(Ok(()), |d| d.check());
                let result = check()
                    .and_then(|()| store.report_boot_actions(&reports, now()))
                    .and_then(|outcomes| check().map(|()| outcomes));
                drop(reports);
                match result {
                    Ok(outcomes) => {
                        for (j, o) in jobs.into_iter().zip(outcomes) {
                            j.reply.send(o.map_err(BootError::from));
                        }
                    }
                    Err(e) => {
                        tracing::error!(error = %e, reports = jobs.len(), "recording boot-action reports failed");
                        for j in jobs {
                            let e = match &e {
                                StateError::Replaced { path, why } => StateError::Replaced {
                                    path: path.clone(),
                                    why: why.clone(),
                                },
                                other => StateError::Batch(other.to_string()),
                            };
                            j.reply.send(Err(BootError::State(e)));
                        }
                    }
                }
            }
        })
        .map_err(|e| BootError::Service(format!("starting the report writer: {e}")))?;
    Ok(tx)
}
