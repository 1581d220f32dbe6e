//! API tokens: opaque random secrets, stored as their SHA-256.

use jiff::Timestamp;
use klaxon_domain::wire::{TokenInfo, TokenRole};
use rand::RngCore;
use sha2::{Digest, Sha256};
use sqlx::Row;
use sqlx::any::AnyRow;

use crate::{Store, StoreError};

/// `prefix` followed by `bytes` random bytes in hex: IDs, keys and secrets.
pub fn random_hex(prefix: &str, bytes: usize) -> String {
    let mut buf = vec![0u8; bytes];
    rand::rng().fill_bytes(&mut buf);
    format!("{prefix}{}", hex::encode(buf))
}

/// A fresh secret: `kx_` followed by 64 hex characters (256 random bits).
pub fn new_secret() -> String {
    random_hex("kx_", 32)
}

pub fn hash_secret(secret: &str) -> String {
    hex::encode(Sha256::digest(secret.as_bytes()))
}

fn role(s: &str) -> TokenRole {
    match s {
        "admin" => TokenRole::Admin,
        "viewer" => TokenRole::Viewer,
        _ => TokenRole::Responder,
    }
}

fn info(r: &AnyRow) -> Result<TokenInfo, StoreError> {
    let created: i64 = r.try_get("created_at")?;
    let revoked: Option<i64> = r.try_get("revoked_at")?;
    let t = |v: i64| Timestamp::from_millisecond(v).map_err(|e| StoreError::Corrupt(e.to_string()));
    Ok(TokenInfo {
        id: r.try_get("id")?,
        name: r.try_get("name")?,
        role: role(&r.try_get::<String, _>("role")?),
        prefix: r.try_get("prefix")?,
        created_at: t(created)?,
        revoked_at: revoked.map(t).transpose()?,
    })
}

impl Store {
    /// Store a token for `secret`. The secret itself is never stored.
    pub async fn create_token(
        &self,
        name: &str,
        role: TokenRole,
        secret: &str,
        now: Timestamp,
    ) -> Result<TokenInfo, StoreError> {
        let id = random_hex("tok_", 8);
        let prefix: String = secret.chars().take(10).collect();
        sqlx::query(
            "INSERT INTO api_tokens (id, name, role, prefix, secret_hash, created_at) VALUES ($1, $2, $3, $4, $5, $6)",
        )
        .bind(id.clone())
        .bind(name.to_string())
        .bind(role.as_str())
        .bind(prefix.clone())
        .bind(hash_secret(secret))
        .bind(now.as_millisecond())
        .execute(&self.write)
        .await?;
        Ok(TokenInfo {
            id,
            name: name.to_string(),
            role,
            prefix,
            created_at: now,
            revoked_at: None,
        })
    }

    /// The live token whose secret hashes to `secret_hash`.
    pub async fn find_token(&self, secret_hash: &str) -> Result<Option<TokenInfo>, StoreError> {
        let row = sqlx::query(
            "SELECT id, name, role, prefix, created_at, revoked_at FROM api_tokens WHERE secret_hash = $1 AND revoked_at IS NULL",
        )
        .bind(secret_hash.to_string())
        .fetch_optional(&self.read)
        .await?;
        row.as_ref().map(info).transpose()
    }

    pub async fn list_tokens(&self) -> Result<Vec<TokenInfo>, StoreError> {
        let rows = sqlx::query(
            "SELECT id, name, role, prefix, created_at, revoked_at FROM api_tokens ORDER BY created_at, id",
        )
        .fetch_all(&self.read)
        .await?;
        rows.iter().map(info).collect()
    }

    pub async fn count_tokens(&self) -> Result<i64, StoreError> {
        Ok(sqlx::query_scalar("SELECT COUNT(*) FROM api_tokens")
            .fetch_one(&self.read)
            .await?)
    }

    /// Revoke by token ID or by name. Revoking twice is harmless.
    pub async fn revoke_token(&self, id_or_name: &str, now: Timestamp) -> Result<TokenInfo, StoreError> {
        let res =
            sqlx::query("UPDATE api_tokens SET revoked_at = $1 WHERE (id = $2 OR name = $2) AND revoked_at IS NULL")
                .bind(now.as_millisecond())
                .bind(id_or_name.to_string())
                .execute(&self.write)
                .await?;
        let row = sqlx::query("SELECT id, name, role, prefix, created_at, revoked_at FROM api_tokens WHERE id = $1 OR name = $1 ORDER BY created_at DESC")
            .bind(id_or_name.to_string())
            .fetch_optional(&self.read)
            .await?;
        match row {
            Some(r) => info(&r),
            None if res.rows_affected() == 0 => Err(StoreError::TokenNotFound(id_or_name.to_string())),
            None => Err(StoreError::Corrupt("revoked token vanished".into())),
        }
    }
}
