//! What the public status page reads: public incidents with their public
//! updates, and a cheap fingerprint that changes whenever they might.

use jiff::Timestamp;
use klaxon_domain::status_page::{PageIncident, PublicUpdate};
use klaxon_domain::{EventKind, Incident};
use sqlx::{AssertSqlSafe, Row};

use crate::error::ts;
use crate::{Store, StoreError};

impl Store {
    /// Changes whenever an incident or a silence is written (count and
    /// latest change of each): the page is rebuilt when it moves. (PostgreSQL's
    /// `SUM` of bigints is numeric, which the Any driver cannot read: cast.)
    pub async fn status_page_fingerprint(&self) -> Result<(i64, i64, i64, i64), StoreError> {
        let r = sqlx::query(
            "SELECT (SELECT COUNT(*) FROM incidents) AS n, (SELECT COALESCE(MAX(updated_at), 0) FROM incidents) AS u, \
             (SELECT COUNT(*) FROM silences) AS sn, (SELECT CAST(COALESCE(SUM(ends_at % 1000003), 0) AS BIGINT) FROM silences) AS se, \
             (SELECT COUNT(*) FROM component_overrides) AS cn, (SELECT COALESCE(MAX(updated_at), 0) FROM component_overrides) AS cu",
        )
        .fetch_one(&self.read)
        .await?;
        Ok((
            r.try_get::<i64, _>("n")?,
            r.try_get::<i64, _>("u")?,
            r.try_get::<i64, _>("sn")?,
            r.try_get::<i64, _>("se")? ^ (r.try_get::<i64, _>("cn")? << 40) ^ r.try_get::<i64, _>("cu")?,
        ))
    }

    /// Public (not private) incidents that are open or changed since
    /// `since`, each with its public stakeholder updates, oldest first.
    pub async fn status_page_incidents(&self, since: Timestamp) -> Result<Vec<PageIncident>, StoreError> {
        let rows = sqlx::query(
            "SELECT pk, body FROM incidents WHERE private = 0 AND (status NOT IN ('resolved', 'closed') OR updated_at >= $1) \
             ORDER BY pk DESC LIMIT 1000",
        )
        .bind(since.as_millisecond())
        .fetch_all(&self.read)
        .await?;
        let mut out: Vec<(i64, PageIncident)> = Vec::with_capacity(rows.len());
        for r in &rows {
            let pk: i64 = r.try_get("pk")?;
            let body: String = r.try_get("body")?;
            let incident: Incident =
                serde_json::from_str(&body).map_err(|e| StoreError::Corrupt(format!("incident {pk}: {e}")))?;
            out.push((
                pk,
                PageIncident {
                    incident,
                    updates: vec![],
                },
            ));
        }
        for chunk in out.chunks_mut(200) {
            let ph: Vec<String> = (1..=chunk.len()).map(|i| format!("${i}")).collect();
            let mut q = sqlx::query(AssertSqlSafe(format!(
                "SELECT incident_pk, at, payload FROM incident_events WHERE type = 'update_posted' AND incident_pk IN ({}) \
                 ORDER BY incident_pk, seq",
                ph.join(", ")
            )));
            for (pk, _) in chunk.iter() {
                q = q.bind(*pk);
            }
            for r in q.fetch_all(&self.read).await? {
                let pk: i64 = r.try_get("incident_pk")?;
                let payload: String = r.try_get("payload")?;
                let kind: EventKind = serde_json::from_str(&payload)
                    .map_err(|e| StoreError::Corrupt(format!("update of incident {pk}: {e}")))?;
                if let EventKind::UpdatePosted {
                    number,
                    message,
                    public: true,
                    status,
                    ..
                } = kind
                    && let Some((_, p)) = chunk.iter_mut().find(|(k, _)| *k == pk)
                {
                    p.updates.push(PublicUpdate {
                        number,
                        at: ts(r.try_get("at")?)?,
                        status,
                        body: message,
                    });
                }
            }
        }
        Ok(out.into_iter().map(|(_, p)| p).collect())
    }
}
