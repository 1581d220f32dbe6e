//! `POST /hooks/twilio/voice`: the keypress of a voice page. Twilio posts
//! the `<Gather>` result (form-encoded, signed with `X-Twilio-Signature`)
//! to the action URL the call's TwiML named, which carries the incident and
//! the person paged. Pressing 1 acknowledges the incident as that person.

use axum::Form;
use axum::extract::{Query, RawQuery, State};
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{IntoResponse, Response};
use klaxon_domain::Status;
use klaxon_domain::decide::Command;
use klaxon_domain::wire::TokenRole;
use klaxon_engine::channels::twilio::{verify_twilio_signature, xml_escape};
use serde::Deserialize;

use crate::error::ApiError;
use crate::extract::Caller;
use crate::state::AppState;

/// The action URL's query.
#[derive(Debug, Deserialize)]
pub struct VoiceQuery {
    incident: String,
    user: String,
}

fn twiml(say: &str) -> Response {
    (
        StatusCode::OK,
        [(header::CONTENT_TYPE, "text/xml; charset=utf-8")],
        format!(
            "<?xml version=\"1.0\" encoding=\"UTF-8\"?><Response><Say>{}</Say></Response>",
            xml_escape(say)
        ),
    )
        .into_response()
}

fn param<'a>(params: &'a [(String, String)], name: &str) -> Option<&'a str> {
    params.iter().find(|(k, _)| k == name).map(|(_, v)| v.as_str())
}

/// Check the request came from Twilio for our account: 404 when Twilio is
/// not configured, 403 for a bad signature or another account.
fn authenticate(
    s: &AppState,
    headers: &HeaderMap,
    raw_query: &str,
    params: &[(String, String)],
) -> Result<(), ApiError> {
    let cfg = s
        .channels
        .twilio
        .as_ref()
        .ok_or_else(|| ApiError::not_found("Twilio is not configured on this Klaxon"))?;
    let token = cfg
        .auth_token_or_env()
        .ok_or_else(|| ApiError::not_found("Twilio is not configured on this Klaxon"))?;
    let base = s.public_url.as_deref().ok_or_else(|| {
        ApiError::new(
            StatusCode::SERVICE_UNAVAILABLE,
            "no_public_url",
            "engine.public_url is not set, so Twilio's signature cannot be checked",
        )
    })?;
    let url = format!("{}/hooks/twilio/voice?{raw_query}", base.trim_end_matches('/'));
    let sig = headers
        .get("x-twilio-signature")
        .and_then(|v| v.to_str().ok())
        .unwrap_or_default();
    if sig.is_empty() || !verify_twilio_signature(&token, &url, params, sig) {
        tracing::warn!(url = %url, "Twilio voice callback with a bad signature");
        return Err(ApiError::forbidden("X-Twilio-Signature does not verify"));
    }
    if param(params, "AccountSid") != Some(cfg.account_sid.as_str()) {
        return Err(ApiError::forbidden("AccountSid is not this Klaxon's Twilio account"));
    }
    Ok(())
}

/// A keypress of a voice page (Twilio `<Gather>` action).
pub async fn voice(
    State(s): State<AppState>,
    headers: HeaderMap,
    RawQuery(raw): RawQuery,
    Query(q): Query<VoiceQuery>,
    Form(params): Form<Vec<(String, String)>>,
) -> Result<Response, ApiError> {
    authenticate(&s, &headers, raw.as_deref().unwrap_or_default(), &params)?;
    let digits = param(&params, "Digits").unwrap_or_default().trim();
    let inc = match s.store.get(&q.incident).await? {
        Some(inc) => inc,
        None => return Ok(twiml(&format!("Incident {} was not found. Goodbye.", q.incident))),
    };
    if digits != "1" {
        return Ok(twiml(&format!(
            "Nothing was changed. Incident {} is still {}. Goodbye.",
            inc.id, inc.status
        )));
    }
    if !inc.status.is_open() {
        return Ok(twiml(&format!(
            "Incident {} is already {}. Goodbye.",
            inc.id, inc.status
        )));
    }
    if inc.status != Status::Triggered {
        return Ok(twiml(&format!(
            "Incident {} was already acknowledged. It is {}. Goodbye.",
            inc.id, inc.status
        )));
    }
    let caller = Caller {
        name: q.user.clone(),
        role: Some(TokenRole::Responder),
    };
    let call = param(&params, "CallSid").unwrap_or("unknown");
    let cmd = Command::Ack {
        message: Some(format!("acknowledged by phone (Twilio call {call})")),
    };
    match crate::incidents::run(&s, &caller, &inc.id, cmd).await {
        Ok(_) => {
            tracing::info!(incident = %inc.id, user = %q.user, "acknowledged by phone");
            Ok(twiml(&format!("Incident {} acknowledged. Thank you.", inc.id)))
        }
        Err(e) if e.status == StatusCode::CONFLICT => Ok(twiml(&format!(
            "Incident {} could not be acknowledged: {}. Goodbye.",
            inc.id, e.message
        ))),
        Err(e) => Err(e),
    }
}
