//! Inspection of nodes (issue 12): each node's latest introspection, as
//! ironic-inspector shows it, and where its latest inspection disagreed with
//! the design. The posted inventory itself is build data (generator
//! `inspector`), written in the same transaction as the row it finishes.

use super::db::{params, OptionalExtension, Row};
use serde::Serialize;

use super::{BuildDataRecord, Context, StateError, Store};

/// The generator of an inspection's build data.
pub const INSPECTOR_GENERATOR: &str = "inspector";

/// A node's latest introspection.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct IntrospectionRecord {
    /// The node's name.
    pub node: String,
    /// `waiting`, `processing`, `finished` or `error` (inspector's words).
    pub state: String,
    /// Whether the operator asked slipway to boot the node (inspector's `manage_boot`).
    pub manage_boot: bool,
    /// When it started, seconds since the epoch.
    pub started_at: i64,
    /// When the ramdisk's data was processed.
    pub finished_at: Option<i64>,
    /// What the ramdisk reported as its error, if any.
    pub error: Option<String>,
}

/// One disagreement of a node's latest inspection with the design.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct InspectionMessage {
    /// The kind (`interface_mac`, `boot_mac`, `bmc_address`, ...).
    pub kind: String,
    /// One line naming the design's value and the machine's.
    pub message: String,
    /// When the callback was processed.
    pub at: i64,
}

/// What one processed callback writes.
#[derive(Debug, Clone)]
pub struct InspectionResult<'a> {
    /// The node.
    pub node: &'a str,
    /// The posted bytes, as build data.
    pub data: &'a str,
    /// The disagreements: (kind, message).
    pub messages: &'a [(String, String)],
    /// The ramdisk's own error (`"error"` in the body).
    pub error: Option<&'a str>,
    /// When.
    pub at: i64,
}

const COLUMNS: &str = "node, state, manage_boot, started_at, finished_at, error";

/// Writes one processed callback on `conn` (inside the caller's transaction).
fn write_inspection(conn: &super::db::Db, r: &InspectionResult<'_>) -> Result<(), StateError> {
    let what = || format!("recording the inspection of node {}", r.node);
    conn.prepare_cached(
        "INSERT INTO build_data (node, task_id, generator, data_format, data_element, collected_at)
         VALUES (?1, NULL, ?2, 'application/json', ?3, ?4)",
    )
    .and_then(|mut s| s.execute(params![r.node, INSPECTOR_GENERATOR, r.data, r.at]))
    .ctx(what)?;
    conn.prepare_cached("DELETE FROM inspection_messages WHERE node = ?1")
        .and_then(|mut s| s.execute([r.node]))
        .ctx(what)?;
    {
        let mut ins = conn
            .prepare_cached(
                "INSERT INTO inspection_messages (node, kind, message, at) VALUES (?1, ?2, ?3, ?4)",
            )
            .ctx(what)?;
        for (kind, message) in r.messages {
            ins.execute(params![r.node, kind, message, r.at])
                .ctx(what)?;
        }
    }
    let state = if r.error.is_some() {
        "error"
    } else {
        "finished"
    };
    conn.prepare_cached(
        "INSERT INTO introspections (node, state, manage_boot, started_at, finished_at, error)
         VALUES (?1, ?2, 0, ?3, ?3, ?4)
         ON CONFLICT (node) DO UPDATE SET state = ?2, finished_at = ?3, error = ?4,
             started_at = CASE WHEN introspections.state IN ('waiting', 'processing')
                               THEN introspections.started_at ELSE ?3 END",
    )
    .and_then(|mut s| s.execute(params![r.node, state, r.at, r.error]))
    .ctx(what)?;
    Ok(())
}

fn read(r: &Row<'_>) -> super::db::Result<IntrospectionRecord> {
    Ok(IntrospectionRecord {
        node: r.get(0)?,
        state: r.get(1)?,
        manage_boot: r.get::<_, i64>(2)? != 0,
        started_at: r.get(3)?,
        finished_at: r.get(4)?,
        error: r.get(5)?,
    })
}

impl Store {
    /// Starts (or restarts) a node's introspection: `waiting` from `at`.
    pub fn start_introspection(
        &mut self,
        node: &str,
        manage_boot: bool,
        at: i64,
    ) -> Result<IntrospectionRecord, StateError> {
        self.conn
            .prepare_cached(
                "INSERT INTO introspections (node, state, manage_boot, started_at, finished_at, error)
                 VALUES (?1, 'waiting', ?2, ?3, NULL, NULL)
                 ON CONFLICT (node) DO UPDATE SET state = 'waiting', manage_boot = ?2,
                     started_at = ?3, finished_at = NULL, error = NULL",
            )
            .and_then(|mut s| s.execute(params![node, manage_boot as i64, at]))
            .ctx(|| format!("starting the introspection of node {node}"))?;
        Ok(IntrospectionRecord {
            node: node.to_string(),
            state: "waiting".into(),
            manage_boot,
            started_at: at,
            finished_at: None,
            error: None,
        })
    }

    /// Ends a node's introspection that is still `waiting` as `error` (the
    /// machine could not be booted into the ramdisk, say); `false` when it
    /// was not waiting any more (the callback came first).
    pub fn fail_introspection(
        &mut self,
        node: &str,
        error: &str,
        at: i64,
    ) -> Result<bool, StateError> {
        let n = self
            .conn
            .prepare_cached(
                "UPDATE introspections SET state = 'error', error = ?2, finished_at = ?3
                 WHERE node = ?1 AND state = 'waiting'",
            )
            .and_then(|mut s| s.execute(params![node, error, at]))
            .ctx(|| format!("ending the introspection of node {node}"))?;
        Ok(n > 0)
    }

    /// Writes a processed callback in one transaction: the posted data as
    /// build data (generator `inspector`), the node's disagreements
    /// (replacing the previous inspection's) and its introspection row
    /// finished (`error` when the ramdisk reported one). An introspection
    /// nobody started (the ramdisk inspected on its own) starts and finishes
    /// at `at`.
    pub fn finish_inspection(&mut self, r: &InspectionResult<'_>) -> Result<(), StateError> {
        let what = || format!("recording the inspection of node {}", r.node);
        let tx = self.conn.transaction().ctx(what)?;
        write_inspection(&tx, r)?;
        tx.commit().ctx(what)
    }

    /// [`Store::finish_inspection`] for several callbacks in one transaction
    /// (group commit: one sync for all), each in a savepoint of its own, so
    /// one that fails leaves the others written. `Err` when the transaction
    /// itself failed (nothing written); else each callback's outcome.
    pub fn finish_inspections(
        &mut self,
        results: &[InspectionResult<'_>],
    ) -> Result<Vec<Result<(), StateError>>, StateError> {
        let what = || format!("recording {} inspections", results.len());
        let mut tx = self.conn.transaction().ctx(what)?;
        let mut out = Vec::with_capacity(results.len());
        for r in results {
            let mut sp = tx.savepoint().ctx(what)?;
            match write_inspection(&sp, r) {
                Ok(()) => {
                    sp.commit().ctx(what)?;
                    out.push(Ok(()));
                }
                Err(e) => {
                    sp.rollback().ctx(what)?;
                    out.push(Err(e));
                }
            }
        }
        tx.commit().ctx(what)?;
        Ok(out)
    }

    /// A node's latest introspection.
    pub fn introspection(&self, node: &str) -> Result<Option<IntrospectionRecord>, StateError> {
        self.conn
            .prepare_cached(&format!(
                "SELECT {COLUMNS} FROM introspections WHERE node = ?1"
            ))
            .and_then(|mut s| s.query_row([node], read).optional())
            .ctx(|| format!("reading the introspection of node {node}"))
    }

    /// The newest `limit` introspections, newest first.
    pub fn introspections(&self, limit: usize) -> Result<Vec<IntrospectionRecord>, StateError> {
        let what = || "listing introspections".to_string();
        let mut stmt = self
            .conn
            .prepare_cached(&format!(
                "SELECT {COLUMNS} FROM introspections ORDER BY started_at DESC, node LIMIT ?1"
            ))
            .ctx(what)?;
        stmt.query_map([limit as i64], read)
            .ctx(what)?
            .collect::<super::db::Result<Vec<_>>>()
            .ctx(what)
    }

    /// Where a node's latest inspection disagreed with the design, in order.
    pub fn inspection_messages(&self, node: &str) -> Result<Vec<InspectionMessage>, StateError> {
        let what = || format!("reading the inspection messages of node {node}");
        let mut stmt = self
            .conn
            .prepare_cached(
                "SELECT kind, message, at FROM inspection_messages WHERE node = ?1 ORDER BY id",
            )
            .ctx(what)?;
        stmt.query_map([node], |r| {
            Ok(InspectionMessage {
                kind: r.get(0)?,
                message: r.get(1)?,
                at: r.get(2)?,
            })
        })
        .ctx(what)?
        .collect::<super::db::Result<Vec<_>>>()
        .ctx(what)
    }

    /// The newest inspection data of a node (build data of generator `inspector`).
    pub fn inspection_data(&self, node: &str) -> Result<Option<BuildDataRecord>, StateError> {
        Ok(self
            .build_data(node, true)?
            .into_iter()
            .find(|r| r.generator == INSPECTOR_GENERATOR))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_callback_finishes_the_started_introspection_and_replaces_the_messages() {
        let dir = tempfile::tempdir().unwrap();
        let mut s = Store::open(&dir.path().join("db")).unwrap();
        s.start_introspection("n1", true, 10).unwrap();
        assert_eq!(s.introspection("n1").unwrap().unwrap().state, "waiting");
        let msgs = vec![("boot_mac".to_string(), "m1".to_string())];
        s.finish_inspection(&InspectionResult {
            node: "n1",
            data: "{\"a\": 1}",
            messages: &msgs,
            error: None,
            at: 20,
        })
        .unwrap();
        let r = s.introspection("n1").unwrap().unwrap();
        assert_eq!(
            (r.state.as_str(), r.started_at, r.finished_at),
            ("finished", 10, Some(20))
        );
        assert_eq!(s.inspection_messages("n1").unwrap().len(), 1);
        assert_eq!(
            s.inspection_data("n1").unwrap().unwrap().data_element,
            "{\"a\": 1}"
        );
        // A second inspection, unasked, with the ramdisk's error and no disagreement.
        s.finish_inspection(&InspectionResult {
            node: "n1",
            data: "{}",
            messages: &[],
            error: Some("collector failed"),
            at: 30,
        })
        .unwrap();
        let r = s.introspection("n1").unwrap().unwrap();
        assert_eq!((r.state.as_str(), r.started_at), ("error", 30));
        assert!(s.inspection_messages("n1").unwrap().is_empty());
        assert_eq!(s.introspections(10).unwrap().len(), 1);
        // Several in one transaction.
        let done = s
            .finish_inspections(&[
                InspectionResult {
                    node: "n2",
                    data: "{}",
                    messages: &msgs,
                    error: None,
                    at: 40,
                },
                InspectionResult {
                    node: "n3",
                    data: "{}",
                    messages: &[],
                    error: None,
                    at: 41,
                },
            ])
            .unwrap();
        assert!(done.iter().all(Result::is_ok));
        assert_eq!(s.introspections(10).unwrap().len(), 3);
        assert_eq!(s.inspection_messages("n2").unwrap().len(), 1);
    }
}
