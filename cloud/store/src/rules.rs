//! Automation rules, their execution history, and outgoing webhooks.
//!
//! The API validates the shape of triggers, conditions and actions; this crate stores them as JSON.
//! Webhook secrets are write-only: stored for signing deliveries, never returned by a read.

use chrono::{DateTime, Utc};
use serde::Serialize;
use sqlx::AssertSqlSafe;
use uuid::Uuid;

use crate::error::on_unique;
use crate::{EdgeIdentity, Store, StoreError, TenantId};

#[derive(Debug, Clone, PartialEq, Serialize, sqlx::FromRow, utoipa::ToSchema)]
pub struct Rule {
    pub id: Uuid,
    pub name: String,
    pub description: Option<String>,
    #[schema(value_type = Object)]
    pub trigger: serde_json::Value,
    #[schema(value_type = Vec<Object>)]
    pub conditions: serde_json::Value,
    #[schema(value_type = Vec<Object>)]
    pub actions: serde_json::Value,
    pub enabled: bool,
    pub created_by: Option<Uuid>,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
}

/// A rule's content (create and full update).
#[derive(Debug, Clone)]
pub struct RuleSpec<'a> {
    pub name: &'a str,
    pub description: Option<&'a str>,
    pub trigger: &'a serde_json::Value,
    pub conditions: &'a serde_json::Value,
    pub actions: &'a serde_json::Value,
    pub enabled: bool,
}

#[derive(Debug, Clone, PartialEq, Serialize, sqlx::FromRow, utoipa::ToSchema)]
pub struct RuleExecution {
    pub id: Uuid,
    pub rule_id: Uuid,
    pub fired_at: DateTime<Utc>,
    pub event_id: Option<Uuid>,
    pub outcome: String,
    #[schema(value_type = Object)]
    pub detail: serde_json::Value,
}

/// One execution reported by an edge ([`Store::record_edge_rule_executions`]).
#[derive(Debug, Clone, PartialEq)]
pub struct NewExecution {
    pub rule_id: Uuid,
    pub fired_at: DateTime<Utc>,
    pub event_id: Option<Uuid>,
    /// `fired` or `suppressed`.
    pub outcome: String,
    /// The whole execution as the edge recorded it (actions and their results, or why suppressed).
    pub detail: serde_json::Value,
}

/// A webhook as served (no secret).
#[derive(Debug, Clone, PartialEq, Serialize, sqlx::FromRow, utoipa::ToSchema)]
pub struct Webhook {
    pub id: Uuid,
    pub url: String,
    pub events: Vec<String>,
    pub created_by: Option<Uuid>,
    pub created_at: DateTime<Utc>,
}

const RULE_COLUMNS: &str =
    "id, name, description, trigger, conditions, actions, enabled, created_by, created_at, updated_at";
const RULE_CONSTRAINTS: &[(&str, &str)] = &[("rules_tenant_name_key", "name")];

impl Store {
    /// The tenant's rules, by name.
    pub async fn list_rules(&self, tenant: TenantId) -> Result<Vec<Rule>, StoreError> {
        let mut tx = self.tenant_tx(tenant).await?;
        let rows = sqlx::query_as(AssertSqlSafe(format!(
            "SELECT {RULE_COLUMNS} FROM rules WHERE tenant_id = $1 ORDER BY name, id"
        )))
        .bind(tenant.as_uuid())
        .fetch_all(&mut *tx)
        .await?;
        tx.commit().await?;
        Ok(rows)
    }

    /// Creates a rule ([`StoreError::Conflict`] `name` when the tenant has one of that name).
    pub async fn create_rule(&self, tenant: TenantId, spec: &RuleSpec<'_>, by: Uuid) -> Result<Rule, StoreError> {
        let mut tx = self.tenant_tx(tenant).await?;
        let rule = sqlx::query_as(AssertSqlSafe(format!(
            "INSERT INTO rules (id, tenant_id, name, description, trigger, conditions, actions, enabled, created_by) \
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9) RETURNING {RULE_COLUMNS}"
        )))
        .bind(Uuid::now_v7())
        .bind(tenant.as_uuid())
        .bind(spec.name)
        .bind(spec.description)
        .bind(spec.trigger)
        .bind(spec.conditions)
        .bind(spec.actions)
        .bind(spec.enabled)
        .bind(by)
        .fetch_one(&mut *tx)
        .await
        .map_err(|e| on_unique(e, RULE_CONSTRAINTS))?;
        tx.commit().await?;
        Ok(rule)
    }

    /// Replaces one of the tenant's rules; `None` when there is none.
    pub async fn update_rule(
        &self,
        tenant: TenantId,
        id: Uuid,
        spec: &RuleSpec<'_>,
    ) -> Result<Option<Rule>, StoreError> {
        let mut tx = self.tenant_tx(tenant).await?;
        let rule = sqlx::query_as(AssertSqlSafe(format!(
            "UPDATE rules SET name = $3, description = $4, trigger = $5, conditions = $6, actions = $7, enabled = $8, \
             updated_at = now() WHERE tenant_id = $1 AND id = $2 RETURNING {RULE_COLUMNS}"
        )))
        .bind(tenant.as_uuid())
        .bind(id)
        .bind(spec.name)
        .bind(spec.description)
        .bind(spec.trigger)
        .bind(spec.conditions)
        .bind(spec.actions)
        .bind(spec.enabled)
        .fetch_optional(&mut *tx)
        .await
        .map_err(|e| on_unique(e, RULE_CONSTRAINTS))?;
        tx.commit().await?;
        Ok(rule)
    }

    /// Enables or disables one of the tenant's rules; `None` when there is none.
    pub async fn set_rule_enabled(
        &self,
        tenant: TenantId,
        id: Uuid,
        enabled: bool,
    ) -> Result<Option<Rule>, StoreError> {
        let mut tx = self.tenant_tx(tenant).await?;
        let rule = sqlx::query_as(AssertSqlSafe(format!(
            "UPDATE rules SET enabled = $3, updated_at = now() WHERE tenant_id = $1 AND id = $2 RETURNING {RULE_COLUMNS}"
        )))
        .bind(tenant.as_uuid())
        .bind(id)
        .bind(enabled)
        .fetch_optional(&mut *tx)
        .await?;
        tx.commit().await?;
        Ok(rule)
    }

    /// Deletes one of the tenant's rules (and its history); whether it existed.
    pub async fn delete_rule(&self, tenant: TenantId, id: Uuid) -> Result<bool, StoreError> {
        let mut tx = self.tenant_tx(tenant).await?;
        let done = sqlx::query("DELETE FROM rules WHERE tenant_id = $1 AND id = $2")
            .bind(tenant.as_uuid())
            .bind(id)
            .execute(&mut *tx)
            .await?;
        tx.commit().await?;
        Ok(done.rows_affected() == 1)
    }

    /// The latest `limit` executions of one of the tenant's rules, newest first; `None` when the
    /// rule does not exist.
    pub async fn rule_history(
        &self,
        tenant: TenantId,
        id: Uuid,
        limit: u32,
    ) -> Result<Option<Vec<RuleExecution>>, StoreError> {
        let mut tx = self.tenant_tx(tenant).await?;
        let exists: bool = sqlx::query_scalar("SELECT EXISTS (SELECT 1 FROM rules WHERE tenant_id = $1 AND id = $2)")
            .bind(tenant.as_uuid())
            .bind(id)
            .fetch_one(&mut *tx)
            .await?;
        if !exists {
            return Ok(None);
        }
        let rows = sqlx::query_as(
            "SELECT id, rule_id, fired_at, event_id, outcome, detail FROM rule_executions \
             WHERE tenant_id = $1 AND rule_id = $2 ORDER BY fired_at DESC, id DESC LIMIT $3",
        )
        .bind(tenant.as_uuid())
        .bind(id)
        .bind(i64::from(limit))
        .fetch_all(&mut *tx)
        .await?;
        tx.commit().await?;
        Ok(Some(rows))
    }

    /// Records one execution of one of the tenant's rules (for the rule engine and tests).
    pub async fn record_rule_execution(
        &self,
        tenant: TenantId,
        rule: Uuid,
        event: Option<Uuid>,
        outcome: &str,
        detail: &serde_json::Value,
    ) -> Result<(), StoreError> {
        let mut tx = self.tenant_tx(tenant).await?;
        sqlx::query(
            "INSERT INTO rule_executions (id, tenant_id, rule_id, event_id, outcome, detail) \
             VALUES ($1, $2, $3, $4, $5, $6)",
        )
        .bind(Uuid::now_v7())
        .bind(tenant.as_uuid())
        .bind(rule)
        .bind(event)
        .bind(outcome)
        .bind(detail)
        .execute(&mut *tx)
        .await?;
        tx.commit().await?;
        Ok(())
    }

    /// Stores the executions an edge reports for its tenant's rules, once per rule and instant;
    /// executions of rules that are not the tenant's (an edge's local rules) are skipped. Returns
    /// how many were new.
    pub async fn record_edge_rule_executions(
        &self,
        edge: &EdgeIdentity,
        rows: &[NewExecution],
    ) -> Result<u64, StoreError> {
        let mut tx = self.tenant_tx(edge.tenant_id).await?;
        let ids: Vec<Uuid> = rows.iter().map(|_| Uuid::now_v7()).collect();
        let done = sqlx::query(
            "INSERT INTO rule_executions (id, tenant_id, rule_id, fired_at, event_id, outcome, detail) \
             SELECT x.id, $1, x.rule_id, x.fired_at, x.event_id, x.outcome, x.detail::jsonb \
             FROM unnest($2::uuid[], $3::uuid[], $4::timestamptz[], $5::uuid[], $6::text[], $7::text[]) \
                  AS x(id, rule_id, fired_at, event_id, outcome, detail) \
             JOIN rules r ON r.id = x.rule_id AND r.tenant_id = $1 \
             ON CONFLICT (rule_id, fired_at) DO NOTHING",
        )
        .bind(edge.tenant_id.as_uuid())
        .bind(&ids)
        .bind(rows.iter().map(|r| r.rule_id).collect::<Vec<_>>())
        .bind(rows.iter().map(|r| r.fired_at).collect::<Vec<_>>())
        .bind(rows.iter().map(|r| r.event_id).collect::<Vec<_>>())
        .bind(rows.iter().map(|r| r.outcome.clone()).collect::<Vec<_>>())
        .bind(rows.iter().map(|r| r.detail.to_string()).collect::<Vec<_>>())
        .execute(&mut *tx)
        .await?;
        tx.commit().await?;
        Ok(done.rows_affected())
    }

    /// Registers a webhook for `events` of the tenant.
    pub async fn create_webhook(
        &self,
        tenant: TenantId,
        url: &str,
        events: &[String],
        secret: &str,
        by: Uuid,
    ) -> Result<Webhook, StoreError> {
        let mut tx = self.tenant_tx(tenant).await?;
        let hook = sqlx::query_as(
            "INSERT INTO webhooks (id, tenant_id, url, events, secret, created_by) VALUES ($1, $2, $3, $4, $5, $6) \
             RETURNING id, url, events, created_by, created_at",
        )
        .bind(Uuid::now_v7())
        .bind(tenant.as_uuid())
        .bind(url)
        .bind(events)
        .bind(secret)
        .bind(by)
        .fetch_one(&mut *tx)
        .await?;
        tx.commit().await?;
        Ok(hook)
    }

    /// The tenant's webhooks (without secrets).
    pub async fn list_webhooks(&self, tenant: TenantId) -> Result<Vec<Webhook>, StoreError> {
        let mut tx = self.tenant_tx(tenant).await?;
        let rows = sqlx::query_as(
            "SELECT id, url, events, created_by, created_at FROM webhooks WHERE tenant_id = $1 ORDER BY created_at, id",
        )
        .bind(tenant.as_uuid())
        .fetch_all(&mut *tx)
        .await?;
        tx.commit().await?;
        Ok(rows)
    }

    /// Deletes one of the tenant's webhooks; whether it existed.
    pub async fn delete_webhook(&self, tenant: TenantId, id: Uuid) -> Result<bool, StoreError> {
        let mut tx = self.tenant_tx(tenant).await?;
        let done = sqlx::query("DELETE FROM webhooks WHERE tenant_id = $1 AND id = $2")
            .bind(tenant.as_uuid())
            .bind(id)
            .execute(&mut *tx)
            .await?;
        tx.commit().await?;
        Ok(done.rows_affected() == 1)
    }
}
