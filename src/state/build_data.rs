//! Data collected from nodes while they build (Drydock's `build_data`), served
//! by `GET /api/v1.0/nodes/{hostname}/builddata[?latest=true]`.

use super::db::{params, Row};
use serde::{Deserialize, Serialize};

use super::{Context, StateError, Store};

/// One piece of build data of a node.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct BuildDataRecord {
    /// Hostname of the node.
    pub node: String,
    /// The task that collected it, if any.
    pub task_id: Option<String>,
    /// What produced it (e.g. `lshw`).
    pub generator: String,
    /// Its MIME type (e.g. `text/plain`, `application/json`).
    pub data_format: String,
    /// The data itself.
    pub data_element: String,
    /// When it was collected, seconds since the Unix epoch.
    pub collected_at: i64,
}

const COLUMNS: &str = "node, task_id, generator, data_format, data_element, collected_at";

fn read(r: &Row<'_>) -> super::db::Result<BuildDataRecord> {
    Ok(BuildDataRecord {
        node: r.get(0)?,
        task_id: r.get(1)?,
        generator: r.get(2)?,
        data_format: r.get(3)?,
        data_element: r.get(4)?,
        collected_at: r.get(5)?,
    })
}

impl Store {
    /// Stores one piece of build data (appended; history is kept).
    pub fn add_build_data(&mut self, rec: &BuildDataRecord) -> Result<(), StateError> {
        self.conn
            .prepare_cached(&format!(
                "INSERT INTO build_data ({COLUMNS}) VALUES (?1, ?2, ?3, ?4, ?5, ?6)"
            ))
            .and_then(|mut s| {
                s.execute(params![
                    rec.node,
                    rec.task_id,
                    rec.generator,
                    rec.data_format,
                    rec.data_element,
                    rec.collected_at
                ])
            })
            .map(|_| ())
            .ctx(|| {
                format!(
                    "storing build data of node {} from {}",
                    rec.node, rec.generator
                )
            })
    }

    /// A node's build data, oldest first; with `latest`, only the newest
    /// record of each generator (Drydock's `?latest=true`), by generator,
    /// leaving out the boot-action reports of ended deployments (a node's
    /// latest status is its current deployment's).
    pub fn build_data(&self, node: &str, latest: bool) -> Result<Vec<BuildDataRecord>, StateError> {
        let sql = if latest {
            format!(
                "SELECT {COLUMNS} FROM build_data AS b WHERE node = ?1 AND id = (
                     SELECT id FROM build_data AS c
                     WHERE node = b.node AND generator = b.generator
                       AND NOT EXISTS (
                           SELECT 1 FROM boot_actions AS a
                           WHERE c.generator LIKE 'bootaction:%' AND a.node = c.node
                             AND a.deployment = c.task_id AND a.ended IS NOT NULL)
                     ORDER BY collected_at DESC, id DESC LIMIT 1)
                 ORDER BY generator"
            )
        } else {
            format!("SELECT {COLUMNS} FROM build_data WHERE node = ?1 ORDER BY collected_at, id")
        };
        let what = || format!("reading build data of node {node}");
        let mut stmt = self.conn.prepare_cached(&sql).ctx(what)?;
        stmt.query_map([node], read)
            .ctx(what)?
            .collect::<super::db::Result<Vec<_>>>()
            .ctx(what)
    }
}
