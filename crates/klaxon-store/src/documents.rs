//! Small JSON documents keyed by ID (users, teams): put, get, list, delete.

use jiff::Timestamp;
use serde::Serialize;
use serde::de::DeserializeOwned;
use sqlx::AssertSqlSafe;

use crate::{Store, StoreError};

/// The tables that hold documents.
#[derive(Debug, Clone, Copy)]
pub enum Collection {
    Users,
    Teams,
    EscalationPolicies,
    /// Status page component statuses set by hand.
    ComponentOverrides,
}

impl Collection {
    fn table(self) -> &'static str {
        match self {
            Collection::Users => "users",
            Collection::Teams => "teams",
            Collection::EscalationPolicies => "escalation_policies",
            Collection::ComponentOverrides => "component_overrides",
        }
    }

    fn what(self) -> &'static str {
        match self {
            Collection::Users => "user",
            Collection::Teams => "team",
            Collection::EscalationPolicies => "escalation policy",
            Collection::ComponentOverrides => "component override",
        }
    }
}

impl Store {
    /// Create or replace a document.
    pub async fn put_document<T: Serialize>(
        &self,
        c: Collection,
        id: &str,
        doc: &T,
        now: Timestamp,
    ) -> Result<(), StoreError> {
        let body = serde_json::to_string(doc).map_err(|e| StoreError::Corrupt(e.to_string()))?;
        sqlx::query(AssertSqlSafe(format!(
            "INSERT INTO {} (id, body, created_at, updated_at) VALUES ($1, $2, $3, $3) \
             ON CONFLICT (id) DO UPDATE SET body = excluded.body, updated_at = excluded.updated_at",
            c.table()
        )))
        .bind(id.to_string())
        .bind(body)
        .bind(now.as_millisecond())
        .execute(&self.write)
        .await?;
        Ok(())
    }

    pub async fn document<T: DeserializeOwned>(&self, c: Collection, id: &str) -> Result<Option<T>, StoreError> {
        let body: Option<String> =
            sqlx::query_scalar(AssertSqlSafe(format!("SELECT body FROM {} WHERE id = $1", c.table())))
                .bind(id.to_string())
                .fetch_optional(&self.read)
                .await?;
        body.map(|b| serde_json::from_str(&b).map_err(|e| StoreError::Corrupt(format!("{} {id}: {e}", c.what()))))
            .transpose()
    }

    pub async fn documents<T: DeserializeOwned>(&self, c: Collection) -> Result<Vec<T>, StoreError> {
        let bodies: Vec<String> =
            sqlx::query_scalar(AssertSqlSafe(format!("SELECT body FROM {} ORDER BY id", c.table())))
                .fetch_all(&self.read)
                .await?;
        bodies
            .iter()
            .map(|b| serde_json::from_str(b).map_err(|e| StoreError::Corrupt(format!("{}: {e}", c.what()))))
            .collect()
    }

    pub async fn delete_document(&self, c: Collection, id: &str) -> Result<(), StoreError> {
        let res = sqlx::query(AssertSqlSafe(format!("DELETE FROM {} WHERE id = $1", c.table())))
            .bind(id.to_string())
            .execute(&self.write)
            .await?;
        if res.rows_affected() == 0 {
            return Err(StoreError::NotFoundOf(c.what(), id.to_string()));
        }
        Ok(())
    }
}
