//! Status page subscribers: created pending (email) or confirmed (webhook),
//! confirmed by the link in the confirmation message, ended by the link in
//! every message.

use jiff::Timestamp;
use klaxon_domain::status_page::Subscriber;
use sqlx::Row;
use sqlx::any::AnyRow;

use crate::{Store, StoreError, random_hex};

fn row(r: &AnyRow) -> Result<Subscriber, StoreError> {
    Ok(Subscriber {
        id: r.try_get("id")?,
        kind: r.try_get("kind")?,
        address: r.try_get("address")?,
        state: r.try_get("state")?,
        token: r.try_get("token")?,
        created_at: crate::error::ts(r.try_get("created_at")?)?,
    })
}

impl Store {
    /// Subscribe `address`. A new or unsubscribed email subscriber is
    /// `pending` with a fresh token; a webhook is `confirmed` at once. An
    /// existing subscription is returned as it is (subscribing twice changes nothing).
    pub async fn subscribe(&self, kind: &str, address: &str, now: Timestamp) -> Result<Subscriber, StoreError> {
        let state = if kind == "webhook" { "confirmed" } else { "pending" };
        sqlx::query(
            "INSERT INTO subscribers (id, kind, address, token, state, created_at) VALUES ($1, $2, $3, $4, $5, $6) \
             ON CONFLICT (kind, address) DO UPDATE SET state = excluded.state, token = excluded.token, \
             created_at = excluded.created_at WHERE subscribers.state = 'unsubscribed'",
        )
        .bind(random_hex("sub_", 8))
        .bind(kind.to_string())
        .bind(address.to_string())
        .bind(random_hex("", 24))
        .bind(state)
        .bind(now.as_millisecond())
        .execute(&self.write)
        .await?;
        let r = sqlx::query(
            "SELECT id, kind, address, state, token, created_at FROM subscribers WHERE kind = $1 AND address = $2",
        )
        .bind(kind.to_string())
        .bind(address.to_string())
        .fetch_one(&self.write)
        .await?;
        row(&r)
    }

    /// The subscription a link's token names.
    pub async fn subscriber_by_token(&self, token: &str) -> Result<Option<Subscriber>, StoreError> {
        sqlx::query("SELECT id, kind, address, state, token, created_at FROM subscribers WHERE token = $1")
            .bind(token.to_string())
            .fetch_optional(&self.read)
            .await?
            .as_ref()
            .map(row)
            .transpose()
    }

    /// Move the subscription of `token` to `state` (`confirmed` or
    /// `unsubscribed`); `None` if no subscription has this token.
    pub async fn set_subscriber_state(
        &self,
        token: &str,
        state: &str,
        now: Timestamp,
    ) -> Result<Option<Subscriber>, StoreError> {
        let confirmed_at = (state == "confirmed").then(|| now.as_millisecond());
        let n = sqlx::query(
            "UPDATE subscribers SET state = $1, confirmed_at = COALESCE($2, confirmed_at) WHERE token = $3",
        )
        .bind(state.to_string())
        .bind(confirmed_at)
        .bind(token.to_string())
        .execute(&self.write)
        .await?
        .rows_affected();
        if n == 0 {
            return Ok(None);
        }
        self.subscriber_by_token(token).await
    }

    /// Everyone who hears about public updates.
    pub async fn confirmed_subscribers(&self) -> Result<Vec<Subscriber>, StoreError> {
        sqlx::query("SELECT id, kind, address, state, token, created_at FROM subscribers WHERE state = 'confirmed' ORDER BY created_at, id")
        .fetch_all(&self.read)
        .await?
        .iter()
        .map(row)
        .collect()
    }

    /// All subscriptions, for the operator.
    pub async fn subscribers(&self) -> Result<Vec<Subscriber>, StoreError> {
        sqlx::query("SELECT id, kind, address, state, token, created_at FROM subscribers ORDER BY created_at, id")
            .fetch_all(&self.read)
            .await?
            .iter()
            .map(row)
            .collect()
    }
}
