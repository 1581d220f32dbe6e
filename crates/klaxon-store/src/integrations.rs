//! Integrations (alert sources), silences and API-managed routes.

use jiff::Timestamp;
use klaxon_domain::alert::{Route, Silence};
use klaxon_domain::wire::{IntegrationFormat, IntegrationInfo};
use sqlx::any::AnyRow;
use sqlx::{AssertSqlSafe, Row};

use crate::alerts::OF_INTEGRATION;
use crate::error::ts;
use crate::tokens::{hash_secret, random_hex};
use crate::{Store, StoreError};

/// A fresh ingest key: 32 hex characters, the shape PagerDuty tools expect of a routing key.
pub fn new_integration_key() -> String {
    random_hex("", 16)
}

fn integration(r: &AnyRow) -> Result<IntegrationInfo, StoreError> {
    let format: String = r.try_get("format")?;
    Ok(IntegrationInfo {
        id: r.try_get("id")?,
        name: r.try_get("name")?,
        format: IntegrationFormat::parse(&format)
            .ok_or_else(|| StoreError::Corrupt(format!("integration format {format}")))?,
        key_prefix: r.try_get("key_prefix")?,
        created_at: ts(r.try_get("created_at")?)?,
        rotated_at: r.try_get::<Option<i64>, _>("rotated_at")?.map(ts).transpose()?,
    })
}

const INTEGRATION_COLS: &str = "id, name, format, key_prefix, created_at, rotated_at";

fn silence(r: &AnyRow) -> Result<Silence, StoreError> {
    let matchers: String = r.try_get("matchers")?;
    Ok(Silence {
        id: r.try_get("id")?,
        matchers: serde_json::from_str(&matchers).map_err(|e| StoreError::Corrupt(format!("silence matchers: {e}")))?,
        starts_at: ts(r.try_get("starts_at")?)?,
        ends_at: ts(r.try_get("ends_at")?)?,
        created_by: r.try_get("created_by")?,
        comment: r.try_get("comment")?,
        kind: r.try_get("kind")?,
    })
}

impl Store {
    pub async fn create_integration(
        &self,
        name: &str,
        format: IntegrationFormat,
        key: &str,
        now: Timestamp,
    ) -> Result<IntegrationInfo, StoreError> {
        let id = random_hex("int_", 6);
        sqlx::query("INSERT INTO integrations (id, name, format, key_hash, key_prefix, created_at) VALUES ($1, $2, $3, $4, $5, $6)")
            .bind(id.clone())
            .bind(name.to_string())
            .bind(format.as_str())
            .bind(hash_secret(key))
            .bind(key.chars().take(6).collect::<String>())
            .bind(now.as_millisecond())
            .execute(&self.write)
            .await
            .map_err(|e| match &e {
                sqlx::Error::Database(d) if d.message().contains("name") => StoreError::Conflict(format!("an integration named {name:?} already exists")),
                sqlx::Error::Database(d) if d.message().contains("key_hash") => StoreError::Conflict("that key is already used by another integration".into()),
                _ => StoreError::Db(e),
            })?;
        self.integration(&id)
            .await?
            .ok_or_else(|| StoreError::Corrupt("integration vanished".into()))
    }

    /// Create or re-key an integration declared in the configuration file.
    pub async fn ensure_integration(
        &self,
        name: &str,
        format: IntegrationFormat,
        key: &str,
        now: Timestamp,
    ) -> Result<IntegrationInfo, StoreError> {
        match self.integration(name).await? {
            None => self.create_integration(name, format, key, now).await,
            Some(existing) => {
                sqlx::query("UPDATE integrations SET format = $1, key_hash = $2, key_prefix = $3 WHERE id = $4")
                    .bind(format.as_str())
                    .bind(hash_secret(key))
                    .bind(key.chars().take(6).collect::<String>())
                    .bind(existing.id.clone())
                    .execute(&self.write)
                    .await?;
                self.integration(&existing.id)
                    .await?
                    .ok_or_else(|| StoreError::Corrupt("integration vanished".into()))
            }
        }
    }

    /// By ID or name.
    pub async fn integration(&self, id_or_name: &str) -> Result<Option<IntegrationInfo>, StoreError> {
        let row = sqlx::query(sqlx::AssertSqlSafe(format!(
            "SELECT {INTEGRATION_COLS} FROM integrations WHERE id = $1 OR name = $1"
        )))
        .bind(id_or_name.to_string())
        .fetch_optional(&self.read)
        .await?;
        row.as_ref().map(integration).transpose()
    }

    pub async fn integration_by_key(&self, key: &str) -> Result<Option<IntegrationInfo>, StoreError> {
        let row = sqlx::query(sqlx::AssertSqlSafe(format!(
            "SELECT {INTEGRATION_COLS} FROM integrations WHERE key_hash = $1"
        )))
        .bind(hash_secret(key))
        .fetch_optional(&self.read)
        .await?;
        row.as_ref().map(integration).transpose()
    }

    pub async fn integrations(&self) -> Result<Vec<IntegrationInfo>, StoreError> {
        let rows = sqlx::query(sqlx::AssertSqlSafe(format!(
            "SELECT {INTEGRATION_COLS} FROM integrations ORDER BY name"
        )))
        .fetch_all(&self.read)
        .await?;
        rows.iter().map(integration).collect()
    }

    pub async fn rotate_integration_key(
        &self,
        id_or_name: &str,
        key: &str,
        now: Timestamp,
    ) -> Result<IntegrationInfo, StoreError> {
        let res = sqlx::query(
            "UPDATE integrations SET key_hash = $1, key_prefix = $2, rotated_at = $3 WHERE id = $4 OR name = $4",
        )
        .bind(hash_secret(key))
        .bind(key.chars().take(6).collect::<String>())
        .bind(now.as_millisecond())
        .bind(id_or_name.to_string())
        .execute(&self.write)
        .await?;
        if res.rows_affected() == 0 {
            return Err(StoreError::NotFoundOf("integration", id_or_name.to_string()));
        }
        self.integration(id_or_name)
            .await?
            .ok_or_else(|| StoreError::Corrupt("integration vanished".into()))
    }

    /// Delete an integration. Its alerts stay on the incidents' timelines.
    pub async fn delete_integration(&self, id_or_name: &str) -> Result<IntegrationInfo, StoreError> {
        let info = self
            .integration(id_or_name)
            .await?
            .ok_or_else(|| StoreError::NotFoundOf("integration", id_or_name.to_string()))?;
        let mut tx = self.write.begin().await?;
        sqlx::query(AssertSqlSafe(format!(
            "DELETE FROM incident_alerts WHERE alert_pk IN (SELECT a.pk FROM alerts a WHERE {OF_INTEGRATION})"
        )))
        .bind(info.id.clone())
        .execute(&mut *tx)
        .await?;
        sqlx::query(AssertSqlSafe(format!("DELETE FROM alerts AS a WHERE {OF_INTEGRATION}")))
            .bind(info.id.clone())
            .execute(&mut *tx)
            .await?;
        sqlx::query("DELETE FROM integrations WHERE id = $1")
            .bind(info.id.clone())
            .execute(&mut *tx)
            .await?;
        tx.commit().await?;
        Ok(info)
    }

    /// Create a silence, or replace the one with the same ID (silences from the configuration file).
    pub async fn create_silence(&self, s: &Silence, now: Timestamp) -> Result<(), StoreError> {
        sqlx::query("INSERT INTO silences (id, kind, matchers, starts_at, ends_at, created_by, comment, created_at) VALUES ($1, $2, $3, $4, $5, $6, $7, $8) \
             ON CONFLICT (id) DO UPDATE SET kind = excluded.kind, matchers = excluded.matchers, starts_at = excluded.starts_at, \
             ends_at = excluded.ends_at, comment = excluded.comment")
            .bind(s.id.clone())
            .bind(s.kind.clone())
            .bind(serde_json::to_string(&s.matchers).map_err(|e| StoreError::Corrupt(e.to_string()))?)
            .bind(s.starts_at.as_millisecond())
            .bind(s.ends_at.as_millisecond())
            .bind(s.created_by.clone())
            .bind(s.comment.clone())
            .bind(now.as_millisecond())
            .execute(&self.write)
            .await?;
        self.rules_changed();
        Ok(())
    }

    /// Silences that have not ended at `now` (active or upcoming); all of them with `include_expired`.
    pub async fn silences(&self, now: Timestamp, include_expired: bool) -> Result<Vec<Silence>, StoreError> {
        let rows = sqlx::query("SELECT id, kind, matchers, starts_at, ends_at, created_by, comment FROM silences WHERE ends_at > $1 ORDER BY starts_at, id")
            .bind(if include_expired { i64::MIN } else { now.as_millisecond() })
            .fetch_all(&self.read)
            .await?;
        rows.iter().map(silence).collect()
    }

    /// End a silence now. Ending it twice is harmless.
    pub async fn expire_silence(&self, id: &str, now: Timestamp) -> Result<Silence, StoreError> {
        sqlx::query("UPDATE silences SET ends_at = $1 WHERE id = $2 AND ends_at > $1")
            .bind(now.as_millisecond())
            .bind(id.to_string())
            .execute(&self.write)
            .await?;
        self.rules_changed();
        let row = sqlx::query(
            "SELECT id, kind, matchers, starts_at, ends_at, created_by, comment FROM silences WHERE id = $1",
        )
        .bind(id.to_string())
        .fetch_optional(&self.read)
        .await?
        .ok_or_else(|| StoreError::NotFoundOf("silence", id.to_string()))?;
        silence(&row)
    }

    /// Routes managed through the API, in order.
    pub async fn api_routes(&self) -> Result<Vec<Route>, StoreError> {
        let rows = sqlx::query("SELECT body FROM routes ORDER BY position, name")
            .fetch_all(&self.read)
            .await?;
        rows.iter()
            .map(|r| {
                let body: String = r.try_get("body")?;
                serde_json::from_str(&body).map_err(|e| StoreError::Corrupt(format!("route: {e}")))
            })
            .collect()
    }

    /// Create or replace a route; a new route goes last.
    pub async fn put_route(&self, route: &Route, now: Timestamp) -> Result<(), StoreError> {
        let body = serde_json::to_string(route).map_err(|e| StoreError::Corrupt(e.to_string()))?;
        sqlx::query(
            "INSERT INTO routes (name, position, body, updated_at) VALUES ($1, (SELECT COALESCE(MAX(position), 0) + 1 FROM routes), $2, $3) \
             ON CONFLICT (name) DO UPDATE SET body = excluded.body, updated_at = excluded.updated_at",
        )
        .bind(route.name.clone())
        .bind(body)
        .bind(now.as_millisecond())
        .execute(&self.write)
        .await?;
        self.rules_changed();
        Ok(())
    }

    pub async fn delete_route(&self, name: &str) -> Result<(), StoreError> {
        let res = sqlx::query("DELETE FROM routes WHERE name = $1")
            .bind(name.to_string())
            .execute(&self.write)
            .await?;
        if res.rows_affected() == 0 {
            return Err(StoreError::NotFoundOf("route", name.to_string()));
        }
        self.rules_changed();
        Ok(())
    }
}
