//! What delivery channels remember about a provider, by key: the Slack
//! message that shows an incident in a channel, the per-incident channel.

use jiff::Timestamp;

use crate::{Store, StoreError};

impl Store {
    /// The value stored under `key`.
    pub async fn channel_state(&self, key: &str) -> Result<Option<String>, StoreError> {
        Ok(sqlx::query_scalar("SELECT value FROM channel_state WHERE key = $1")
            .bind(key.to_string())
            .fetch_optional(&self.read)
            .await?)
    }

    /// Store `value` under `key`, replacing what was there.
    pub async fn put_channel_state(&self, key: &str, value: &str, now: Timestamp) -> Result<(), StoreError> {
        sqlx::query(
            "INSERT INTO channel_state (key, value, updated_at) VALUES ($1, $2, $3) \
             ON CONFLICT (key) DO UPDATE SET value = excluded.value, updated_at = excluded.updated_at",
        )
        .bind(key.to_string())
        .bind(value.to_string())
        .bind(now.as_millisecond())
        .execute(&self.write)
        .await?;
        Ok(())
    }

    /// Forget entries under `prefix` (no `%` or `_`) last written before `before` (e.g.
    /// Slack's replay guard, which only needs the last five minutes).
    pub async fn prune_channel_state(&self, prefix: &str, before: Timestamp) -> Result<u64, StoreError> {
        Ok(
            sqlx::query("DELETE FROM channel_state WHERE key LIKE $1 AND updated_at < $2")
                .bind(format!("{}%", prefix.replace(['%', '_'], "")))
                .bind(before.as_millisecond())
                .execute(&self.write)
                .await?
                .rows_affected(),
        )
    }

    /// Store `value` under `key` unless a value is there; returns the value
    /// in force (the first writer wins, so two nodes agree on one).
    pub async fn put_channel_state_once(&self, key: &str, value: &str, now: Timestamp) -> Result<String, StoreError> {
        sqlx::query(
            "INSERT INTO channel_state (key, value, updated_at) VALUES ($1, $2, $3) ON CONFLICT (key) DO NOTHING",
        )
        .bind(key.to_string())
        .bind(value.to_string())
        .bind(now.as_millisecond())
        .execute(&self.write)
        .await?;
        let v: Option<String> = sqlx::query_scalar("SELECT value FROM channel_state WHERE key = $1")
            .bind(key.to_string())
            .fetch_optional(&self.write)
            .await?;
        Ok(v.unwrap_or_else(|| value.to_string()))
    }
}
