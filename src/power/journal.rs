//! The record of every power operation, per node, in memory: requested, started,
//! finished, outcome, message. Bounded per node; a `JournalSink` sees every change
//! (persistence is added there when the service is wired to the database).

use std::collections::{HashMap, VecDeque};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::SystemTime;

use super::{FailureKind, PowerOp, PowerState};
use crate::power::Driver;

/// One operation's id, unique within a `PowerService`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct OperationId(pub u64);

impl std::fmt::Display for OperationId {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}", self.0)
    }
}

/// Where an operation is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Outcome {
    /// Requested, waiting for the node's turn or a free call slot.
    Queued,
    /// Talking to the BMC (or waiting between retries).
    Running,
    /// The BMC did what was asked (or it was already so).
    Succeeded,
    /// It did not; the kind says why.
    Failed(FailureKind),
}

impl Outcome {
    /// Succeeded or failed.
    pub fn is_finished(self) -> bool {
        matches!(self, Outcome::Succeeded | Outcome::Failed(_))
    }
}

/// A snapshot of one operation on one node.
#[derive(Debug, Clone, PartialEq)]
pub struct OperationRecord {
    /// Its id.
    pub id: OperationId,
    /// The node it is for.
    pub node: String,
    /// The driver that runs it.
    pub driver: Driver,
    /// What was asked.
    pub op: PowerOp,
    /// When it was asked for.
    pub requested: SystemTime,
    /// When its first call to the BMC started.
    pub started: Option<SystemTime>,
    /// When it succeeded or failed.
    pub finished: Option<SystemTime>,
    /// Calls made to the BMC so far (1 + retries).
    pub attempts: u32,
    /// Where it is.
    pub outcome: Outcome,
    /// The power state the BMC reported, when the operation read it.
    pub power: Option<PowerState>,
    /// What happened, in words (no credential ever).
    pub message: String,
}

/// Receives every change of every record (e.g. to persist it). Called outside the
/// journal's lock, in the order of changes of one operation.
pub trait JournalSink: Send + Sync {
    /// One record after a change.
    fn record(&self, record: &OperationRecord);
}

/// The per-node history of operations.
pub(crate) struct Journal {
    next: AtomicU64,
    per_node: usize,
    inner: Mutex<Entries>,
    sink: Option<Arc<dyn JournalSink>>,
}

#[derive(Default)]
struct Entries {
    records: HashMap<OperationId, OperationRecord>,
    by_node: HashMap<String, VecDeque<OperationId>>,
}

impl Journal {
    /// Keeps up to `per_node` operations of each node (unfinished ones are never dropped).
    pub(crate) fn new(per_node: usize, sink: Option<Arc<dyn JournalSink>>) -> Journal {
        Journal {
            next: AtomicU64::new(1),
            per_node: per_node.max(1),
            inner: Mutex::new(Entries::default()),
            sink,
        }
    }

    /// Records a new request and returns its id.
    pub(crate) fn request(&self, node: &str, driver: Driver, op: PowerOp) -> OperationId {
        let id = OperationId(self.next.fetch_add(1, Ordering::Relaxed));
        let rec = OperationRecord {
            id,
            node: node.to_string(),
            driver,
            op,
            requested: crate::clock::system_now(),
            started: None,
            finished: None,
            attempts: 0,
            outcome: Outcome::Queued,
            power: None,
            message: "queued".to_string(),
        };
        {
            let mut guard = self.inner.lock().unwrap();
            let e = &mut *guard;
            e.records.insert(id, rec.clone());
            let ids = e.by_node.entry(node.to_string()).or_default();
            ids.push_back(id);
            let mut over = ids.len().saturating_sub(self.per_node);
            // drop the oldest finished ones; unfinished ones are still followed
            ids.retain(|i| {
                if over > 0 && e.records.get(i).is_some_and(|r| r.outcome.is_finished()) {
                    over -= 1;
                    e.records.remove(i);
                    false
                } else {
                    true
                }
            });
        }
        self.emit(rec);
        id
    }

    /// Changes one record and tells the sink.
    pub(crate) fn update(&self, id: OperationId, change: impl FnOnce(&mut OperationRecord)) {
        let snapshot = {
            let mut e = self.inner.lock().unwrap();
            let Some(rec) = e.records.get_mut(&id) else {
                return;
            };
            change(rec);
            rec.clone()
        };
        self.emit(snapshot);
    }

    /// A snapshot of one operation.
    pub(crate) fn get(&self, id: OperationId) -> Option<OperationRecord> {
        self.inner.lock().unwrap().records.get(&id).cloned()
    }

    /// Snapshots of a node's operations, oldest first.
    pub(crate) fn node(&self, node: &str) -> Vec<OperationRecord> {
        let e = self.inner.lock().unwrap();
        e.by_node
            .get(node)
            .map(|ids| {
                ids.iter()
                    .filter_map(|i| e.records.get(i).cloned())
                    .collect()
            })
            .unwrap_or_default()
    }

    fn emit(&self, rec: OperationRecord) {
        if let Some(sink) = &self.sink {
            sink.record(&rec);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn history_is_bounded_per_node_and_drops_the_oldest_finished() {
        let j = Journal::new(3, None);
        let first = j.request("n1", Driver::Ipmi, PowerOp::Status);
        // the first stays unfinished: it must survive however many come after
        let mut ids = vec![];
        for _ in 0..5 {
            let id = j.request("n1", Driver::Ipmi, PowerOp::Status);
            j.update(id, |r| r.outcome = Outcome::Succeeded);
            ids.push(id);
        }
        let kept: Vec<OperationId> = j.node("n1").iter().map(|r| r.id).collect();
        // 3 kept after the last request: the unfinished first + the two newest
        // finished (the bound applies when a request arrives).
        assert_eq!(kept.len(), 3, "{kept:?}");
        assert_eq!(kept[0], first);
        assert_eq!(&kept[1..], &ids[3..]);
        assert!(j.get(ids[0]).is_none());
        assert!(j.node("n2").is_empty());
    }

    #[test]
    fn the_sink_sees_every_change_in_order() {
        struct Collect(Mutex<Vec<Outcome>>);
        impl JournalSink for Collect {
            fn record(&self, r: &OperationRecord) {
                self.0.lock().unwrap().push(r.outcome);
            }
        }
        let sink = Arc::new(Collect(Mutex::new(vec![])));
        let j = Journal::new(8, Some(sink.clone()));
        let id = j.request("n1", Driver::Redfish, PowerOp::On);
        j.update(id, |r| r.outcome = Outcome::Running);
        j.update(id, |r| r.outcome = Outcome::Failed(FailureKind::Timeout));
        assert_eq!(
            *sink.0.lock().unwrap(),
            vec![
                Outcome::Queued,
                Outcome::Running,
                Outcome::Failed(FailureKind::Timeout)
            ]
        );
    }
}
