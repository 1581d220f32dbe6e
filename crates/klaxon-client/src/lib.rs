//! Typed client of Klaxon's REST API. The CLI and the integration tests use it.

use klaxon_domain::Incident;
use klaxon_domain::event::VerifyReport;
use klaxon_domain::wire::{
    AckRequest, AlertOutcome, AlertRecord, CreateIntegration, CreateSilence, CreateToken, CreatedToken,
    DeclareIncident, ErrorBody, IncidentPage, IncidentPatch, IncidentQuery, IntegrationInfo, IntegrationWithKey,
    NoteRequest, Notification, NotificationQuery, ReasonRequest, ReassignRequest, ReopenRequest, RoleAssignment,
    SeverityChange, SnoozeRequest, StatusChange, Timeline, TokenInfo,
};
use reqwest::{Method, RequestBuilder};
use serde::Serialize;
use serde::de::DeserializeOwned;

#[derive(Debug, thiserror::Error)]
pub enum ClientError {
    /// The server answered with an error body.
    #[error("{status} {code}: {message}{}", .field.as_ref().map(|f| format!(" (field: {f})")).unwrap_or_default())]
    Api {
        status: u16,
        code: String,
        message: String,
        field: Option<String>,
    },
    #[error("cannot reach Klaxon at {url}: {source}")]
    Http {
        url: String,
        #[source]
        source: reqwest::Error,
    },
    #[error("unexpected answer from Klaxon: {0}")]
    Decode(String),
}

impl ClientError {
    pub fn status(&self) -> Option<u16> {
        match self {
            ClientError::Api { status, .. } => Some(*status),
            _ => None,
        }
    }
}

pub type Result<T> = std::result::Result<T, ClientError>;

/// Install the ring crypto provider once for every rustls user in the process.
pub fn install_crypto_provider() {
    let _ = rustls::crypto::ring::default_provider().install_default();
}

#[derive(Clone, Debug)]
pub struct Client {
    base: String,
    token: Option<String>,
    http: reqwest::Client,
}

fn path_segment(s: &str) -> String {
    // IDs are [A-Za-z0-9-_.]; anything else is percent-encoded.
    s.bytes()
        .map(|b| {
            if b.is_ascii_alphanumeric() || b"-_.~".contains(&b) {
                (b as char).to_string()
            } else {
                format!("%{b:02X}")
            }
        })
        .collect()
}

impl Client {
    pub fn new(base_url: &str, token: Option<String>) -> Result<Self> {
        install_crypto_provider();
        let http = reqwest::Client::builder()
            .timeout(std::time::Duration::from_secs(30))
            .build()
            .map_err(|e| ClientError::Http {
                url: base_url.to_string(),
                source: e,
            })?;
        Ok(Self::with_http(base_url, token, http))
    }

    pub fn with_http(base_url: &str, token: Option<String>, http: reqwest::Client) -> Self {
        Self {
            base: base_url.trim_end_matches('/').to_string(),
            token: token.filter(|t| !t.is_empty()),
            http,
        }
    }

    pub fn base_url(&self) -> &str {
        &self.base
    }

    fn request(&self, method: Method, path: &str) -> RequestBuilder {
        let rb = self.http.request(method, format!("{}{path}", self.base));
        match &self.token {
            Some(t) => rb.bearer_auth(t),
            None => rb,
        }
    }

    async fn send<T: DeserializeOwned>(&self, rb: RequestBuilder) -> Result<T> {
        let resp = rb.send().await.map_err(|e| ClientError::Http {
            url: self.base.clone(),
            source: e,
        })?;
        let status = resp.status();
        let bytes = resp.bytes().await.map_err(|e| ClientError::Http {
            url: self.base.clone(),
            source: e,
        })?;
        if status.is_success() {
            return serde_json::from_slice(&bytes)
                .map_err(|e| ClientError::Decode(format!("{e}: {}", String::from_utf8_lossy(&bytes))));
        }
        match serde_json::from_slice::<ErrorBody>(&bytes) {
            Ok(b) => Err(ClientError::Api {
                status: status.as_u16(),
                code: b.error.code,
                message: b.error.message,
                field: b.error.field,
            }),
            Err(_) => Err(ClientError::Api {
                status: status.as_u16(),
                code: "http".into(),
                message: String::from_utf8_lossy(&bytes).into_owned(),
                field: None,
            }),
        }
    }

    /// For answers without a body (204).
    async fn send_empty(&self, rb: RequestBuilder) -> Result<()> {
        let resp = rb.send().await.map_err(|e| ClientError::Http {
            url: self.base.clone(),
            source: e,
        })?;
        let status = resp.status();
        if status.is_success() {
            return Ok(());
        }
        let text = resp.text().await.unwrap_or_default();
        Err(match serde_json::from_str::<ErrorBody>(&text) {
            Ok(b) => ClientError::Api {
                status: status.as_u16(),
                code: b.error.code,
                message: b.error.message,
                field: b.error.field,
            },
            Err(_) => ClientError::Api {
                status: status.as_u16(),
                code: "http".into(),
                message: text,
                field: None,
            },
        })
    }

    async fn get<T: DeserializeOwned>(&self, path: &str) -> Result<T> {
        self.send(self.request(Method::GET, path)).await
    }

    async fn with_body<B: Serialize, T: DeserializeOwned>(&self, method: Method, path: &str, body: &B) -> Result<T> {
        self.send(self.request(method, path).json(body)).await
    }

    fn incident_path(id: &str, rest: &str) -> String {
        format!("/api/v1/incidents/{}{rest}", path_segment(id))
    }

    pub async fn declare(&self, req: &DeclareIncident) -> Result<Incident> {
        self.with_body(Method::POST, "/api/v1/incidents", req).await
    }

    pub async fn list(&self, q: &IncidentQuery) -> Result<IncidentPage> {
        self.send(self.request(Method::GET, "/api/v1/incidents").query(q)).await
    }

    pub async fn incident(&self, id: &str) -> Result<Incident> {
        self.get(&Self::incident_path(id, "")).await
    }

    pub async fn update(&self, id: &str, patch: &IncidentPatch) -> Result<Incident> {
        self.with_body(Method::PATCH, &Self::incident_path(id, ""), patch).await
    }

    pub async fn set_status(&self, id: &str, status: &str, message: Option<String>) -> Result<Incident> {
        let body = StatusChange {
            status: status.to_string(),
            message,
        };
        self.with_body(Method::POST, &Self::incident_path(id, "/status"), &body)
            .await
    }

    pub async fn ack(&self, id: &str, message: Option<String>) -> Result<Incident> {
        self.with_body(Method::POST, &Self::incident_path(id, "/ack"), &AckRequest { message })
            .await
    }

    pub async fn unack(&self, id: &str, reason: Option<String>) -> Result<Incident> {
        self.with_body(
            Method::POST,
            &Self::incident_path(id, "/unack"),
            &ReasonRequest { reason },
        )
        .await
    }

    pub async fn escalate(&self, id: &str, reason: Option<String>) -> Result<Incident> {
        self.with_body(
            Method::POST,
            &Self::incident_path(id, "/escalate"),
            &ReasonRequest { reason },
        )
        .await
    }

    pub async fn snooze(&self, id: &str, req: &SnoozeRequest) -> Result<Incident> {
        self.with_body(Method::POST, &Self::incident_path(id, "/snooze"), req)
            .await
    }

    pub async fn reassign(&self, id: &str, users: Vec<String>, reason: Option<String>) -> Result<Incident> {
        self.with_body(
            Method::POST,
            &Self::incident_path(id, "/reassign"),
            &ReassignRequest { users, reason },
        )
        .await
    }

    pub async fn post_update(
        &self,
        id: &str,
        req: &klaxon_domain::wire::PostUpdateRequest,
    ) -> Result<klaxon_domain::wire::PostedUpdate> {
        self.with_body(Method::POST, &Self::incident_path(id, "/updates"), req)
            .await
    }

    pub async fn updates(&self, id: &str) -> Result<Vec<klaxon_domain::wire::IncidentUpdate>> {
        self.get(&Self::incident_path(id, "/updates")).await
    }

    pub async fn templates(&self) -> Result<Vec<klaxon_domain::wire::TemplateInfo>> {
        self.get("/api/v1/templates").await
    }

    pub async fn template(&self, name: &str) -> Result<klaxon_domain::templates::TemplateSource> {
        self.get(&format!("/api/v1/templates/{}", path_segment(name))).await
    }

    pub async fn render_template(
        &self,
        name: &str,
        req: &klaxon_domain::wire::RenderRequest,
    ) -> Result<klaxon_domain::templates::Rendered> {
        self.with_body(
            Method::POST,
            &format!("/api/v1/templates/{}/render", path_segment(name)),
            req,
        )
        .await
    }

    pub async fn notifications(&self, q: &NotificationQuery) -> Result<Vec<Notification>> {
        self.send(self.request(Method::GET, "/api/v1/notifications").query(q))
            .await
    }

    pub async fn retry_notification(&self, id: i64) -> Result<Notification> {
        self.send(self.request(Method::POST, &format!("/api/v1/notifications/{id}/retry")))
            .await
    }

    pub async fn reopen(&self, id: &str, status: Option<String>, reason: Option<String>) -> Result<Incident> {
        self.with_body(
            Method::POST,
            &Self::incident_path(id, "/reopen"),
            &ReopenRequest { status, reason },
        )
        .await
    }

    pub async fn set_severity(&self, id: &str, severity: &str, reason: Option<String>) -> Result<Incident> {
        let body = SeverityChange {
            severity: severity.to_string(),
            reason,
        };
        self.with_body(Method::POST, &Self::incident_path(id, "/severity"), &body)
            .await
    }

    pub async fn assign_role(&self, id: &str, role: &str, assignee: Option<String>) -> Result<Incident> {
        let path = Self::incident_path(id, &format!("/roles/{}", path_segment(role)));
        self.with_body(Method::PUT, &path, &RoleAssignment { assignee }).await
    }

    pub async fn note(&self, id: &str, text: &str) -> Result<Incident> {
        self.with_body(
            Method::POST,
            &Self::incident_path(id, "/notes"),
            &NoteRequest { text: text.to_string() },
        )
        .await
    }

    pub async fn timeline(&self, id: &str) -> Result<Timeline> {
        self.get(&Self::incident_path(id, "/timeline")).await
    }

    pub async fn verify(&self, id: &str) -> Result<VerifyReport> {
        self.get(&Self::incident_path(id, "/timeline/verify")).await
    }

    pub async fn severities(&self) -> Result<serde_json::Value> {
        self.get("/api/v1/severities").await
    }

    pub async fn create_token(&self, req: &CreateToken) -> Result<CreatedToken> {
        self.with_body(Method::POST, "/api/v1/tokens", req).await
    }

    pub async fn tokens(&self) -> Result<Vec<TokenInfo>> {
        self.get("/api/v1/tokens").await
    }

    pub async fn revoke_token(&self, id_or_name: &str) -> Result<TokenInfo> {
        self.send(self.request(Method::DELETE, &format!("/api/v1/tokens/{}", path_segment(id_or_name))))
            .await
    }

    pub async fn create_integration(&self, req: &CreateIntegration) -> Result<IntegrationWithKey> {
        self.with_body(Method::POST, "/api/v1/integrations", req).await
    }

    pub async fn integrations(&self) -> Result<Vec<IntegrationInfo>> {
        self.get("/api/v1/integrations").await
    }

    pub async fn rotate_integration_key(&self, id: &str) -> Result<IntegrationWithKey> {
        self.send(self.request(
            Method::POST,
            &format!("/api/v1/integrations/{}/rotate-key", path_segment(id)),
        ))
        .await
    }

    pub async fn delete_integration(&self, id: &str) -> Result<IntegrationInfo> {
        self.send(self.request(Method::DELETE, &format!("/api/v1/integrations/{}", path_segment(id))))
            .await
    }

    /// `query`: e.g. `[("status", "firing"), ("incident", "INC-...")]`.
    pub async fn alerts(&self, query: &[(&str, String)]) -> Result<serde_json::Value> {
        self.send(self.request(Method::GET, "/api/v1/alerts").query(query))
            .await
    }

    pub async fn alert(&self, id: &str) -> Result<AlertRecord> {
        self.get(&format!("/api/v1/alerts/{}", path_segment(id))).await
    }

    pub async fn alert_action(&self, id: &str, action: &str) -> Result<AlertOutcome> {
        self.send(self.request(Method::POST, &format!("/api/v1/alerts/{}/{action}", path_segment(id))))
            .await
    }

    /// Health checks with state, last result and uptime.
    pub async fn checks(&self) -> Result<Vec<serde_json::Value>> {
        self.get("/api/v1/checks").await
    }

    /// Raw results of a check over the last `hours` (1-48).
    pub async fn check_history(&self, name: &str, hours: Option<u32>) -> Result<Vec<serde_json::Value>> {
        let q: Vec<(&str, String)> = hours.map(|h| ("hours", h.to_string())).into_iter().collect();
        self.send(
            self.request(Method::GET, &format!("/api/v1/checks/{}/history", path_segment(name)))
                .query(&q),
        )
        .await
    }

    /// Run a check now; the result is recorded.
    pub async fn run_check(&self, name: &str) -> Result<serde_json::Value> {
        self.send(self.request(Method::POST, &format!("/api/v1/checks/{}/run", path_segment(name))))
            .await
    }

    pub async fn create_silence(&self, req: &CreateSilence) -> Result<serde_json::Value> {
        self.with_body(Method::POST, "/api/v1/silences", req).await
    }

    pub async fn silences(&self, all: bool) -> Result<Vec<serde_json::Value>> {
        self.send(self.request(Method::GET, "/api/v1/silences").query(&[("all", all)]))
            .await
    }

    pub async fn expire_silence(&self, id: &str) -> Result<serde_json::Value> {
        self.send(self.request(Method::DELETE, &format!("/api/v1/silences/{}", path_segment(id))))
            .await
    }

    pub async fn routes(&self) -> Result<Vec<serde_json::Value>> {
        self.get("/api/v1/routes").await
    }

    pub async fn put_route(&self, name: &str, route: &serde_json::Value) -> Result<serde_json::Value> {
        self.with_body(Method::PUT, &format!("/api/v1/routes/{}", path_segment(name)), route)
            .await
    }

    /// The status page's summary and the component overrides in force.
    pub async fn status_page(&self) -> Result<serde_json::Value> {
        self.get("/api/v1/status-page").await
    }

    /// Set a status page component's status by hand (`note` says why).
    pub async fn set_component(&self, id: &str, status: &str, note: Option<&str>) -> Result<serde_json::Value> {
        let body = serde_json::json!({"status": status, "note": note});
        self.with_body(
            Method::PUT,
            &format!("/api/v1/status-page/components/{}", path_segment(id)),
            &body,
        )
        .await
    }

    pub async fn clear_component(&self, id: &str) -> Result<()> {
        self.send_empty(self.request(
            Method::DELETE,
            &format!("/api/v1/status-page/components/{}", path_segment(id)),
        ))
        .await
    }

    pub async fn delete_route(&self, name: &str) -> Result<()> {
        self.send_empty(self.request(Method::DELETE, &format!("/api/v1/routes/{}", path_segment(name))))
            .await
    }

    pub async fn create_schedule(
        &self,
        spec: &klaxon_domain::schedule::ScheduleSpec,
    ) -> Result<klaxon_domain::schedule::Schedule> {
        self.with_body(Method::POST, "/api/v1/schedules", spec).await
    }

    pub async fn put_schedule(
        &self,
        spec: &klaxon_domain::schedule::ScheduleSpec,
    ) -> Result<klaxon_domain::schedule::Schedule> {
        self.with_body(
            Method::PUT,
            &format!("/api/v1/schedules/{}", path_segment(&spec.name)),
            spec,
        )
        .await
    }

    pub async fn schedules(&self) -> Result<Vec<klaxon_domain::schedule::Schedule>> {
        self.get("/api/v1/schedules").await
    }

    pub async fn schedule(&self, id: &str) -> Result<klaxon_domain::schedule::Schedule> {
        self.get(&format!("/api/v1/schedules/{}", path_segment(id))).await
    }

    pub async fn add_override(
        &self,
        id: &str,
        body: &klaxon_domain::schedule::CreateOverride,
    ) -> Result<klaxon_domain::schedule::ScheduleOverride> {
        self.with_body(
            Method::POST,
            &format!("/api/v1/schedules/{}/overrides", path_segment(id)),
            body,
        )
        .await
    }

    pub async fn oncall(&self, id: &str, at: Option<String>) -> Result<klaxon_domain::schedule::OnCall> {
        let rb = self.request(Method::GET, &format!("/api/v1/schedules/{}/oncall", path_segment(id)));
        let rb = match at {
            Some(a) => rb.query(&[("at", a)]),
            None => rb,
        };
        self.send(rb).await
    }

    pub async fn shifts(
        &self,
        id: &str,
        from: &str,
        to: &str,
        role: Option<String>,
    ) -> Result<Vec<klaxon_domain::schedule::ShiftOut>> {
        let mut q = vec![("from", from.to_string()), ("to", to.to_string())];
        if let Some(r) = role {
            q.push(("role", r));
        }
        self.send(
            self.request(Method::GET, &format!("/api/v1/schedules/{}/shifts", path_segment(id)))
                .query(&q),
        )
        .await
    }

    /// `kind` is `users` or `teams`.
    pub async fn put_document<T: Serialize + DeserializeOwned>(&self, kind: &str, id: &str, doc: &T) -> Result<T> {
        self.with_body(Method::PUT, &format!("/api/v1/{kind}/{}", path_segment(id)), doc)
            .await
    }

    pub async fn documents(&self, kind: &str) -> Result<Vec<serde_json::Value>> {
        self.get(&format!("/api/v1/{kind}")).await
    }

    pub async fn document(&self, kind: &str, id: &str) -> Result<serde_json::Value> {
        self.get(&format!("/api/v1/{kind}/{}", path_segment(id))).await
    }

    pub async fn delete_document(&self, kind: &str, id: &str) -> Result<()> {
        self.send_empty(self.request(Method::DELETE, &format!("/api/v1/{kind}/{}", path_segment(id))))
            .await
    }

    pub async fn ready(&self) -> Result<serde_json::Value> {
        self.get("/readyz").await
    }
}
