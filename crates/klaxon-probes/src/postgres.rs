//! PostgreSQL: connect and `SELECT 1` (what `pg_isready` plus a query tells).

use sqlx::Connection;

use crate::spec::CheckSpec;
use crate::{Found, Outcome};

pub(crate) async fn probe(spec: &CheckSpec) -> Found {
    let url = spec.url.as_deref().ok_or("url is not set")?;
    let mut conn = sqlx::PgConnection::connect(url)
        .await
        .map_err(|e| format!("connect: {e}"))?;
    let one: i32 = sqlx::query_scalar("SELECT 1")
        .fetch_one(&mut conn)
        .await
        .map_err(|e| format!("SELECT 1: {e}"))?;
    let _ = conn.close().await;
    if one != 1 {
        return Err(format!("SELECT 1 answered {one}"));
    }
    Ok((Outcome::Ok, "SELECT 1 answered 1".into()))
}
