//! Read-only summaries for the operator API's node listing.

use std::collections::BTreeMap;

use super::{Context, StateError, Store};

impl Store {
    /// Boot actions per node and status: `node -> status -> count`, over
    /// each node's current deployment only (an ended deployment's statuses
    /// are history, not the node's). Nodes without boot actions are absent.
    pub fn boot_action_counts(
        &self,
    ) -> Result<BTreeMap<String, BTreeMap<String, u64>>, StateError> {
        let what = || "counting boot actions".to_string();
        let mut stmt = self
            .conn
            .prepare_cached(
                "SELECT node, status, count(*) FROM boot_actions WHERE ended IS NULL
                 GROUP BY node, status",
            )
            .ctx(what)?;
        let rows = stmt
            .query_map([], |r| {
                Ok((
                    r.get::<_, String>(0)?,
                    r.get::<_, String>(1)?,
                    r.get::<_, i64>(2)?,
                ))
            })
            .ctx(what)?;
        let mut out: BTreeMap<String, BTreeMap<String, u64>> = BTreeMap::new();
        for row in rows {
            let (node, status, n) = row.ctx(what)?;
            out.entry(node).or_default().insert(status, n.max(0) as u64);
        }
        Ok(out)
    }
}
