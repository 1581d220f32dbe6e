//! Reading alerts back.

use klaxon_domain::wire::AlertRecord;
use sqlx::any::AnyRow;
use sqlx::{AssertSqlSafe, Row};

use crate::error::ts;
use crate::{Store, StoreError};

#[derive(Debug, Clone, Default)]
pub struct AlertFilter {
    /// `firing`, `resolved`, or `suppressed` (firing and silenced).
    pub status: Option<String>,
    pub integration_id: Option<String>,
    pub incident_id: Option<String>,
    pub before_pk: Option<i64>,
    pub limit: u32,
}

fn parse<T: serde::de::DeserializeOwned>(r: &AnyRow, col: &str) -> Result<T, StoreError> {
    let text: String = r.try_get(col)?;
    serde_json::from_str(&text).map_err(|e| StoreError::Corrupt(format!("alert {col}: {e}")))
}

/// An integration's alerts, as a condition on `alerts a` that PostgreSQL
/// answers from its two partial indexes by key (firing, and the others) rather
/// than by reading every alert (migration 0014).
pub(crate) const OF_INTEGRATION: &str =
    "((a.integration_id = $1 AND a.status = 'firing') OR (a.integration_id = $1 AND a.status <> 'firing'))";

const COLS: &str = "a.pk, a.integration_id, a.dedup_key, a.status, a.acknowledged, a.suppressed_by, a.flapping, a.summary, a.severity, a.source, \
    a.labels, a.annotations, a.links, a.details, a.starts_at, a.ends_at, a.last_seen_at, a.receive_count, a.created_at, a.updated_at";

impl Store {
    /// The incident IDs of alerts with keys in [lo, hi], in one query.
    async fn incidents_of(&self, lo: i64, hi: i64) -> Result<std::collections::HashMap<i64, Vec<String>>, StoreError> {
        let rows = sqlx::query(
            "SELECT ia.alert_pk, i.id FROM incident_alerts ia JOIN incidents i ON i.pk = ia.incident_pk \
             WHERE ia.alert_pk BETWEEN $1 AND $2 ORDER BY i.pk",
        )
        .bind(lo)
        .bind(hi)
        .fetch_all(&self.read)
        .await?;
        let mut out: std::collections::HashMap<i64, Vec<String>> = std::collections::HashMap::new();
        for r in rows {
            out.entry(r.try_get("alert_pk")?).or_default().push(r.try_get("id")?);
        }
        Ok(out)
    }

    fn alert_from_row(r: &AnyRow, incidents: Vec<String>) -> Result<AlertRecord, StoreError> {
        let pk: i64 = r.try_get("pk")?;
        Ok(AlertRecord {
            id: pk,
            integration_id: r.try_get("integration_id")?,
            dedup_key: r.try_get("dedup_key")?,
            status: r.try_get("status")?,
            acknowledged: r.try_get::<i64, _>("acknowledged")? != 0,
            suppressed_by: r.try_get("suppressed_by")?,
            flapping: r.try_get::<i64, _>("flapping")? != 0,
            summary: r.try_get("summary")?,
            severity: r.try_get("severity")?,
            source: r.try_get("source")?,
            labels: parse(r, "labels")?,
            annotations: parse(r, "annotations")?,
            links: parse(r, "links")?,
            details: parse(r, "details")?,
            starts_at: ts(r.try_get("starts_at")?)?,
            ends_at: r.try_get::<Option<i64>, _>("ends_at")?.map(ts).transpose()?,
            last_seen_at: ts(r.try_get("last_seen_at")?)?,
            receive_count: r.try_get::<i64, _>("receive_count")? as u64,
            incidents,
            created_at: ts(r.try_get("created_at")?)?,
            updated_at: ts(r.try_get("updated_at")?)?,
        })
    }

    pub async fn alert(&self, id: i64) -> Result<Option<AlertRecord>, StoreError> {
        let row = sqlx::query(AssertSqlSafe(format!("SELECT {COLS} FROM alerts a WHERE a.pk = $1")))
            .bind(id)
            .fetch_optional(&self.read)
            .await?;
        match row {
            Some(r) => {
                let mut incidents = self.incidents_of(id, id).await?;
                Ok(Some(Self::alert_from_row(
                    &r,
                    incidents.remove(&id).unwrap_or_default(),
                )?))
            }
            None => Ok(None),
        }
    }

    /// How many alerts an integration has stored, and how many incidents they joined.
    pub async fn alert_totals(&self, integration_id: &str) -> Result<(i64, i64), StoreError> {
        let alerts: i64 = sqlx::query_scalar(AssertSqlSafe(format!(
            "SELECT COUNT(*) FROM alerts a WHERE {OF_INTEGRATION}"
        )))
        .bind(integration_id.to_string())
        .fetch_one(&self.read)
        .await?;
        let incidents: i64 = sqlx::query_scalar(AssertSqlSafe(format!(
            "SELECT COUNT(DISTINCT ia.incident_pk) FROM incident_alerts ia \
             JOIN alerts a ON a.pk = ia.alert_pk WHERE {OF_INTEGRATION}"
        )))
        .bind(integration_id.to_string())
        .fetch_one(&self.read)
        .await?;
        Ok((alerts, incidents))
    }

    /// Newest first; returns the next cursor when there is more.
    pub async fn alerts(&self, f: &AlertFilter) -> Result<(Vec<AlertRecord>, Option<i64>), StoreError> {
        let mut sql = format!("SELECT {COLS} FROM alerts a WHERE 1 = 1");
        let mut texts: Vec<String> = Vec::new();
        let mut n = 0;
        let mut next = || {
            n += 1;
            format!("${n}")
        };
        match f.status.as_deref() {
            Some("suppressed") => sql.push_str(" AND a.status = 'firing' AND a.suppressed_by IS NOT NULL"),
            Some(s) => {
                sql.push_str(&format!(" AND a.status = {}", next()));
                texts.push(s.to_string());
            }
            None => {}
        }
        if let Some(i) = &f.integration_id {
            sql.push_str(&format!(" AND a.integration_id = {}", next()));
            texts.push(i.clone());
        }
        if let Some(i) = &f.incident_id {
            sql.push_str(&format!(
                " AND a.pk IN (SELECT ia.alert_pk FROM incident_alerts ia JOIN incidents i ON i.pk = ia.incident_pk WHERE i.id = {})",
                next()
            ));
            texts.push(i.clone());
        }
        let before = next();
        let lim = next();
        sql.push_str(&format!(" AND a.pk < {before} ORDER BY a.pk DESC LIMIT {lim}"));
        let limit = f.limit.clamp(1, 500) as i64;
        let mut q = sqlx::query(AssertSqlSafe(sql));
        for t in texts {
            q = q.bind(t);
        }
        let rows = q
            .bind(f.before_pk.unwrap_or(i64::MAX))
            .bind(limit + 1)
            .fetch_all(&self.read)
            .await?;
        let page = &rows[..rows.len().min(limit as usize)];
        let pks: Vec<i64> = page.iter().map(|r| r.try_get("pk")).collect::<Result<_, _>>()?;
        let mut incidents = match (pks.iter().min(), pks.iter().max()) {
            (Some(lo), Some(hi)) => self.incidents_of(*lo, *hi).await?,
            _ => Default::default(),
        };
        let mut items = Vec::with_capacity(page.len());
        for (r, pk) in page.iter().zip(&pks) {
            items.push(Self::alert_from_row(r, incidents.remove(pk).unwrap_or_default())?);
        }
        let cursor = if rows.len() as i64 > limit {
            items.last().map(|a| a.id)
        } else {
            None
        };
        Ok((items, cursor))
    }
}
