//! An operation over many nodes, followed while it runs, and the gauge of calls in
//! flight (with its peak) that shows the concurrency limit holds.

use std::sync::atomic::{AtomicUsize, Ordering};

use tokio::task::JoinHandle;

use super::{OperationId, OperationRecord, Outcome, PowerService};

/// A fleet operation started by `PowerService::fleet`. Dropping it does not stop
/// the operations: they run to their end and stay in the journal.
pub struct FleetHandle {
    service: PowerService,
    ids: Vec<OperationId>,
    tasks: Vec<JoinHandle<OperationRecord>>,
}

/// How far a fleet operation is.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct FleetProgress {
    /// Nodes in the operation.
    pub total: usize,
    /// Waiting for their turn.
    pub queued: usize,
    /// Talking to their BMC.
    pub running: usize,
    /// Finished well.
    pub succeeded: usize,
    /// Finished badly.
    pub failed: usize,
}

impl FleetProgress {
    /// Every node finished.
    pub fn is_done(&self) -> bool {
        self.succeeded + self.failed == self.total
    }
}

impl FleetHandle {
    pub(crate) fn new(
        service: PowerService,
        ids: Vec<OperationId>,
        tasks: Vec<JoinHandle<OperationRecord>>,
    ) -> FleetHandle {
        FleetHandle {
            service,
            ids,
            tasks,
        }
    }

    /// The operations, one per target, in the targets' order.
    pub fn operations(&self) -> &[OperationId] {
        &self.ids
    }

    /// Snapshots of every operation now.
    pub fn records(&self) -> Vec<OperationRecord> {
        self.ids
            .iter()
            .filter_map(|id| self.service.operation(*id))
            .collect()
    }

    /// Counts by outcome now.
    pub fn progress(&self) -> FleetProgress {
        let mut p = FleetProgress {
            total: self.ids.len(),
            ..FleetProgress::default()
        };
        for r in self.records() {
            match r.outcome {
                Outcome::Queued => p.queued += 1,
                Outcome::Running => p.running += 1,
                Outcome::Succeeded => p.succeeded += 1,
                Outcome::Failed(_) => p.failed += 1,
            }
        }
        p
    }

    /// Waits for every operation and returns their final records, in the targets' order.
    pub async fn wait(self) -> Vec<OperationRecord> {
        let mut out = Vec::with_capacity(self.tasks.len());
        for task in self.tasks {
            // an operation's task only ends by returning its record; a panic in it
            // is a bug, reported as such
            out.push(task.await.expect("a power operation task panicked"));
        }
        out
    }
}

/// Calls running now, and the most seen at once.
#[derive(Default)]
pub(crate) struct InFlight {
    now: AtomicUsize,
    peak: AtomicUsize,
}

/// Counts one call while it lives.
pub(crate) struct CallGuard<'a>(&'a InFlight);

impl InFlight {
    pub(crate) fn enter(&self) -> CallGuard<'_> {
        let n = self.now.fetch_add(1, Ordering::SeqCst) + 1;
        self.peak.fetch_max(n, Ordering::SeqCst);
        CallGuard(self)
    }

    pub(crate) fn now(&self) -> usize {
        self.now.load(Ordering::SeqCst)
    }

    pub(crate) fn peak(&self) -> usize {
        self.peak.load(Ordering::SeqCst)
    }

    pub(crate) fn reset_peak(&self) {
        self.peak.store(self.now(), Ordering::SeqCst);
    }
}

impl Drop for CallGuard<'_> {
    fn drop(&mut self) {
        self.0.now.fetch_sub(1, Ordering::SeqCst);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_gauge_keeps_its_peak_after_calls_end() {
        let g = InFlight::default();
        {
            let _a = g.enter();
            let _b = g.enter();
            assert_eq!(g.now(), 2);
        }
        let _c = g.enter();
        assert_eq!((g.now(), g.peak()), (1, 2));
        g.reset_peak();
        assert_eq!(g.peak(), 1);
    }
}
