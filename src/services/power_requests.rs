//! Power requests over many nodes that are answered at once and polled
//! (Luna2's bulk `POST /control/action/{subsystem}/_{action}` and
//! `GET /control/status/{request_id}`), run by the one power service
//! ([`NodePower`], bounded in concurrency and time as it is).
//!
//! A request's results arrive one node at a time; each poll takes the
//! results not yet read. Once every node is done and its results were read,
//! the request is gone (the next poll is "no data", Luna2's terminal 404).
//! Requests live in memory only: at most [`MAX_REQUESTS`] at once (a new
//! one beyond that evicts the oldest finished one, or is refused when none
//! is finished), and a finished request nobody polls is dropped after
//! [`EXPIRY`].

use std::collections::{BTreeMap, HashMap, VecDeque};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use super::power::{NodeFailure, NodeOutcome, NodePower, Planned, PowerOp, PowerState};

/// Requests kept at once.
pub const MAX_REQUESTS: usize = 256;
/// Nodes of one request run at once (each still takes a slot of the power
/// service's own limit).
pub const PER_REQUEST: usize = 64;
/// How long a finished request waits to be read.
pub const EXPIRY: Duration = Duration::from_secs(600);

/// One node's result, as a poll presents it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum NodeResult {
    /// The action succeeded (`"power on"`).
    Ok(String),
    /// Status read: on.
    On,
    /// Status read: off.
    Off,
    /// Failed, with the message.
    Failed(String),
}

/// What a poll returns: the results not read before, by node.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Progress {
    /// The request's id.
    pub id: String,
    /// The subsystem (`power`, `chassis`).
    pub subsystem: String,
    /// New results, by node.
    pub results: BTreeMap<String, NodeResult>,
    /// Every node is done (and these are the last results).
    pub done: bool,
}

/// Why a request cannot be started.
#[derive(Debug, thiserror::Error)]
pub enum RequestError {
    /// [`MAX_REQUESTS`] requests are running.
    #[error("too many power requests are running; retry shortly")]
    Busy,
}

struct Request {
    subsystem: String,
    unread: BTreeMap<String, NodeResult>,
    pending: usize,
    finished: Option<Instant>,
}

#[derive(Default)]
struct Inner {
    requests: HashMap<String, Request>,
    order: VecDeque<String>,
}

impl Inner {
    fn expire(&mut self, now: Instant) {
        let requests = &mut self.requests;
        self.order.retain(|id| match requests.get(id) {
            Some(r) if r.finished.is_some_and(|f| now.duration_since(f) > EXPIRY) => {
                requests.remove(id);
                false
            }
            Some(_) => true,
            None => false,
        });
    }

    fn make_room(&mut self) -> Result<(), RequestError> {
        if self.requests.len() < MAX_REQUESTS {
            return Ok(());
        }
        let oldest_done = self
            .order
            .iter()
            .position(|id| self.requests.get(id).is_some_and(|r| r.finished.is_some()));
        match oldest_done {
            Some(i) => {
                if let Some(id) = self.order.remove(i) {
                    self.requests.remove(&id);
                }
                Ok(())
            }
            None => Err(RequestError::Busy),
        }
    }
}

/// The result of one node's outcome, for `subsystem` and the action `word`.
pub fn result_of(outcome: &NodeOutcome, subsystem: &str, word: &str, status: bool) -> NodeResult {
    if let Some(f) = &outcome.failure {
        return NodeResult::Failed(match f {
            NodeFailure::UnknownNode => format!("{} does not exist", outcome.node),
            _ => outcome.message.clone(),
        });
    }
    if status {
        return match outcome.power {
            Some(PowerState::On) => NodeResult::On,
            Some(PowerState::Off) => NodeResult::Off,
            Some(other) => NodeResult::Failed(format!("success with unparsable output: {other}")),
            None => NodeResult::Failed("no power state read".into()),
        };
    }
    NodeResult::Ok(format!("{subsystem} {word}"))
}

/// See the module docs. Cheap to clone.
#[derive(Clone)]
pub struct PowerRequests {
    power: NodePower,
    inner: Arc<Mutex<Inner>>,
}

impl std::fmt::Debug for PowerRequests {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PowerRequests").finish_non_exhaustive()
    }
}

impl PowerRequests {
    /// Requests run by `power`.
    pub fn new(power: NodePower) -> PowerRequests {
        PowerRequests {
            power,
            inner: Arc::new(Mutex::new(Inner::default())),
        }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Inner> {
        self.inner.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Starts `ops` on `nodes` (each node's target, or why it has none) and
    /// returns the request's id at once; `word` is the action as the client
    /// named it, `status` whether it reads the power state. Must be called
    /// on the runtime.
    pub fn start(
        &self,
        subsystem: &str,
        word: &str,
        status: bool,
        ops: Vec<PowerOp>,
        nodes: Vec<Planned>,
    ) -> Result<String, RequestError> {
        let id = crate::keys::new_ulid().to_ascii_lowercase();
        {
            let mut inner = self.lock();
            inner.expire(Instant::now());
            inner.make_room()?;
            inner.requests.insert(
                id.clone(),
                Request {
                    subsystem: subsystem.to_string(),
                    unread: BTreeMap::new(),
                    pending: nodes.len(),
                    finished: if nodes.is_empty() {
                        Some(Instant::now())
                    } else {
                        None
                    },
                },
            );
            inner.order.push_back(id.clone());
        }
        // One driver per request keeps at most PER_REQUEST nodes in flight
        // (the power service bounds the BMC calls themselves), so a
        // 100,000-name hostlist is not 100,000 tasks at once.
        let me = self.clone();
        let (rid, sub, word) = (id.clone(), subsystem.to_string(), word.to_string());
        tokio::spawn(async move {
            let mut running = tokio::task::JoinSet::new();
            let mut nodes = nodes.into_iter();
            loop {
                while running.len() < PER_REQUEST {
                    let Some((name, target)) = nodes.next() else {
                        break;
                    };
                    let (power, ops) = (me.power.clone(), ops.clone());
                    running.spawn(async move {
                        let outcome = power.run_node(&name, target, &ops).await;
                        (name, outcome)
                    });
                }
                let Some(done) = running.join_next().await else {
                    break;
                };
                let result = done.map(|(name, outcome)| {
                    let r = result_of(&outcome, &sub, &word, status);
                    (name, r)
                });
                me.record(&rid, result.ok());
            }
        });
        Ok(id)
    }

    /// Records one node's result (`None`: its task crashed; it only counts).
    fn record(&self, id: &str, result: Option<(String, NodeResult)>) {
        let mut inner = self.lock();
        if let Some(r) = inner.requests.get_mut(id) {
            if let Some((name, result)) = result {
                r.unread.insert(name, result);
            }
            r.pending = r.pending.saturating_sub(1);
            if r.pending == 0 {
                r.finished = Some(Instant::now());
            }
        }
    }

    /// The results of request `id` not read yet; `None` when there is no
    /// such request, or it is done and everything was read (it is dropped).
    pub fn poll(&self, id: &str) -> Option<Progress> {
        let mut inner = self.lock();
        inner.expire(Instant::now());
        let r = inner.requests.get_mut(id)?;
        let done = r.finished.is_some();
        if done && r.unread.is_empty() {
            inner.requests.remove(id);
            inner.order.retain(|i| i != id);
            return None;
        }
        Some(Progress {
            id: id.to_string(),
            subsystem: r.subsystem.clone(),
            results: std::mem::take(&mut r.unread),
            done,
        })
    }

    /// Requests held (running, or finished and not read).
    pub fn len(&self) -> usize {
        self.lock().requests.len()
    }

    /// True when none is held.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn inner_with(n: usize, finished: bool) -> Inner {
        let mut inner = Inner::default();
        for i in 0..n {
            let id = format!("r{i}");
            inner.requests.insert(
                id.clone(),
                Request {
                    subsystem: "power".into(),
                    unread: BTreeMap::new(),
                    pending: 0,
                    finished: finished.then(Instant::now),
                },
            );
            inner.order.push_back(id);
        }
        inner
    }

    #[test]
    fn a_full_table_evicts_the_oldest_finished_request_or_refuses() {
        let mut done = inner_with(MAX_REQUESTS, true);
        done.make_room().unwrap();
        assert!(!done.requests.contains_key("r0"));
        assert_eq!(done.requests.len(), MAX_REQUESTS - 1);
        let mut running = inner_with(MAX_REQUESTS, false);
        assert!(matches!(running.make_room(), Err(RequestError::Busy)));
    }

    #[test]
    fn finished_requests_expire() {
        let mut inner = inner_with(3, true);
        inner.expire(Instant::now() + EXPIRY + Duration::from_secs(1));
        assert!(inner.requests.is_empty() && inner.order.is_empty());
    }
}
