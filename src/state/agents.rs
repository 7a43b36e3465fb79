//! Ironic agents (IPA) per node: the agent token's digest (never the token),
//! for which deployment it was issued, a pending request for a fresh one,
//! and the last heartbeat. One row per node, overwritten.

use super::db::{params, OptionalExtension, Row};

use super::{Context, StateError, Store};

/// What is stored of a node's agent.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct AgentRecord {
    /// The node's name.
    pub node: String,
    /// `Secret::agent_token_digest` of the token issued, if one was.
    pub token_digest: Option<String>,
    /// When that token was issued.
    pub token_issued_at: Option<i64>,
    /// The node's deployment when the token was issued.
    pub deployment: Option<String>,
    /// When a fresh token was asked for (the machine booting again, an
    /// operator); `None` once it was issued.
    pub reset_at: Option<i64>,
    /// Why it was asked for.
    pub reset_reason: Option<String>,
    /// The last heartbeat's `callback_url`.
    pub callback_url: Option<String>,
    /// The last heartbeat's `agent_version`.
    pub agent_version: Option<String>,
    /// When the last heartbeat came.
    pub last_heartbeat: Option<i64>,
}

const COLUMNS: &str = "node, token_digest, token_issued_at, deployment, reset_at, reset_reason, \
                       callback_url, agent_version, last_heartbeat";

fn read(r: &Row<'_>) -> super::db::Result<AgentRecord> {
    Ok(AgentRecord {
        node: r.get(0)?,
        token_digest: r.get(1)?,
        token_issued_at: r.get(2)?,
        deployment: r.get(3)?,
        reset_at: r.get(4)?,
        reset_reason: r.get(5)?,
        callback_url: r.get(6)?,
        agent_version: r.get(7)?,
        last_heartbeat: r.get(8)?,
    })
}

impl Store {
    /// Every node's agent row.
    pub fn agents(&self) -> Result<Vec<AgentRecord>, StateError> {
        let what = || "reading the agents".to_string();
        let mut stmt = self
            .conn
            .prepare_cached(&format!("SELECT {COLUMNS} FROM agents ORDER BY node"))
            .ctx(what)?;
        stmt.query_map([], read)
            .ctx(what)?
            .collect::<super::db::Result<Vec<_>>>()
            .ctx(what)
    }

    /// One node's agent row.
    pub fn agent(&self, node: &str) -> Result<Option<AgentRecord>, StateError> {
        self.conn
            .prepare_cached(&format!("SELECT {COLUMNS} FROM agents WHERE node = ?1"))
            .and_then(|mut s| s.query_row([node], read).optional())
            .ctx(|| format!("reading the agent of node {node}"))
    }

    /// Writes a node's whole agent row (inserted or replaced).
    pub fn put_agent(&mut self, rec: &AgentRecord) -> Result<(), StateError> {
        self.conn
            .prepare_cached(&format!(
                "INSERT INTO agents ({COLUMNS}) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9)
                 ON CONFLICT (node) DO UPDATE SET
                     token_digest = excluded.token_digest,
                     token_issued_at = excluded.token_issued_at,
                     deployment = excluded.deployment, reset_at = excluded.reset_at,
                     reset_reason = excluded.reset_reason, callback_url = excluded.callback_url,
                     agent_version = excluded.agent_version,
                     last_heartbeat = excluded.last_heartbeat"
            ))
            .and_then(|mut s| {
                s.execute(params![
                    rec.node,
                    rec.token_digest,
                    rec.token_issued_at,
                    rec.deployment,
                    rec.reset_at,
                    rec.reset_reason,
                    rec.callback_url,
                    rec.agent_version,
                    rec.last_heartbeat
                ])
            })
            .map(|_| ())
            .ctx(|| format!("storing the agent of node {}", rec.node))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_agent_row_is_written_read_and_replaced() {
        let dir = tempfile::tempdir().unwrap();
        let mut store = Store::open(&dir.path().join("s.db")).unwrap();
        assert_eq!(store.agent("n1").unwrap(), None);
        let mut rec = AgentRecord {
            node: "n1".into(),
            token_digest: Some("a".repeat(64)),
            token_issued_at: Some(5),
            deployment: Some("D".into()),
            ..Default::default()
        };
        store.put_agent(&rec).unwrap();
        assert_eq!(store.agent("n1").unwrap().as_ref(), Some(&rec));
        rec.callback_url = Some("http://192.0.2.1:9999".into());
        rec.last_heartbeat = Some(9);
        store.put_agent(&rec).unwrap();
        assert_eq!(store.agents().unwrap(), vec![rec]);
        let bad = AgentRecord {
            node: "n2".into(),
            token_digest: Some("short".into()),
            ..Default::default()
        };
        assert!(
            store.put_agent(&bad).is_err(),
            "a digest of the wrong length"
        );
    }
}
