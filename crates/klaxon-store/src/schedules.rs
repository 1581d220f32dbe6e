//! On-call schedules and their overrides.

use jiff::Timestamp;
use klaxon_domain::schedule::{Schedule, ScheduleOverride, ScheduleSpec};
use sqlx::Row;
use sqlx::any::AnyRow;

use crate::error::ts;
use crate::tokens::random_hex;
use crate::{Store, StoreError};

fn override_row(r: &AnyRow) -> Result<ScheduleOverride, StoreError> {
    Ok(ScheduleOverride {
        id: r.try_get("id")?,
        role: r.try_get("role")?,
        user: r.try_get("user_name")?,
        start: ts(r.try_get("starts_at")?)?,
        end: ts(r.try_get("ends_at")?)?,
        created_by: r.try_get("created_by")?,
    })
}

impl Store {
    /// Create (`replace` false) or replace (`replace` true) a schedule.
    pub async fn put_schedule(&self, spec: &ScheduleSpec, replace: bool, now: Timestamp) -> Result<(), StoreError> {
        let body = serde_json::to_string(spec).map_err(|e| StoreError::Corrupt(e.to_string()))?;
        let sql = if replace {
            "INSERT INTO schedules (id, body, created_at, updated_at) VALUES ($1, $2, $3, $3) \
             ON CONFLICT (id) DO UPDATE SET body = excluded.body, updated_at = excluded.updated_at"
        } else {
            "INSERT INTO schedules (id, body, created_at, updated_at) VALUES ($1, $2, $3, $3)"
        };
        sqlx::query(sql)
            .bind(spec.name.clone())
            .bind(body)
            .bind(now.as_millisecond())
            .execute(&self.write)
            .await
            .map_err(|e| match &e {
                sqlx::Error::Database(d) if d.is_unique_violation() => {
                    StoreError::Conflict(format!("schedule {:?} already exists; PUT replaces it", spec.name))
                }
                _ => StoreError::Db(e),
            })?;
        Ok(())
    }

    /// Overrides of a schedule that end after `after`.
    pub async fn schedule_overrides(&self, id: &str, after: Timestamp) -> Result<Vec<ScheduleOverride>, StoreError> {
        let rows = sqlx::query(
            "SELECT id, role, user_name, starts_at, ends_at, created_by FROM schedule_overrides \
             WHERE schedule_id = $1 AND ends_at > $2 ORDER BY created_at, id",
        )
        .bind(id.to_string())
        .bind(after.as_millisecond())
        .fetch_all(&self.read)
        .await?;
        rows.iter().map(override_row).collect()
    }

    pub async fn schedule(&self, id: &str, now: Timestamp) -> Result<Option<Schedule>, StoreError> {
        let row = sqlx::query("SELECT body, created_at, updated_at FROM schedules WHERE id = $1")
            .bind(id.to_string())
            .fetch_optional(&self.read)
            .await?;
        let Some(r) = row else { return Ok(None) };
        let spec: ScheduleSpec = serde_json::from_str(&r.try_get::<String, _>("body")?)
            .map_err(|e| StoreError::Corrupt(format!("schedule {id}: {e}")))?;
        Ok(Some(Schedule {
            spec,
            overrides: self.schedule_overrides(id, now).await?,
            created_at: ts(r.try_get("created_at")?)?,
            updated_at: ts(r.try_get("updated_at")?)?,
        }))
    }

    pub async fn schedules(&self, now: Timestamp) -> Result<Vec<Schedule>, StoreError> {
        let ids: Vec<String> = sqlx::query_scalar("SELECT id FROM schedules ORDER BY id")
            .fetch_all(&self.read)
            .await?;
        let mut out = Vec::with_capacity(ids.len());
        for id in ids {
            if let Some(s) = self.schedule(&id, now).await? {
                out.push(s);
            }
        }
        Ok(out)
    }

    pub async fn delete_schedule(&self, id: &str) -> Result<(), StoreError> {
        let mut tx = self.write.begin().await?;
        sqlx::query("DELETE FROM schedule_overrides WHERE schedule_id = $1")
            .bind(id.to_string())
            .execute(&mut *tx)
            .await?;
        let res = sqlx::query("DELETE FROM schedules WHERE id = $1")
            .bind(id.to_string())
            .execute(&mut *tx)
            .await?;
        if res.rows_affected() == 0 {
            return Err(StoreError::NotFoundOf("schedule", id.to_string()));
        }
        tx.commit().await?;
        Ok(())
    }

    /// Store an override; its `id` is assigned here.
    pub async fn add_schedule_override(
        &self,
        schedule: &str,
        mut o: ScheduleOverride,
        now: Timestamp,
    ) -> Result<ScheduleOverride, StoreError> {
        o.id = random_hex("ovr_", 6);
        sqlx::query(
            "INSERT INTO schedule_overrides (id, schedule_id, role, user_name, starts_at, ends_at, created_by, created_at) \
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8)",
        )
        .bind(o.id.clone())
        .bind(schedule.to_string())
        .bind(o.role.clone())
        .bind(o.user.clone())
        .bind(o.start.as_millisecond())
        .bind(o.end.as_millisecond())
        .bind(o.created_by.clone())
        .bind(now.as_millisecond())
        .execute(&self.write)
        .await?;
        Ok(o)
    }

    pub async fn delete_schedule_override(&self, schedule: &str, id: &str) -> Result<(), StoreError> {
        let res = sqlx::query("DELETE FROM schedule_overrides WHERE schedule_id = $1 AND id = $2")
            .bind(schedule.to_string())
            .bind(id.to_string())
            .execute(&self.write)
            .await?;
        if res.rows_affected() == 0 {
            return Err(StoreError::NotFoundOf("override", id.to_string()));
        }
        Ok(())
    }
}
