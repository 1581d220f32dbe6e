//! Subscriptions from the public page: `POST /status/subscribe` (form:
//! `email=` or `webhook=`), confirmation (double opt-in) and unsubscribe
//! links. Confirmation pages answer `GET` with a button and act on `POST`,
//! so mail scanners that open links change nothing; unsubscribe also takes
//! RFC 8058 one-click `POST`s.

use std::net::SocketAddr;
use std::sync::Arc;

use askama::Template;
use axum::Form;
use axum::extract::{ConnectInfo, Path, State};
use axum::http::StatusCode;
use axum::response::{Html, IntoResponse, Response};
use jiff::Timestamp;
use klaxon_domain::message::{Envelope, EnvelopeIncident, types};
use klaxon_domain::people::ContactKind;
use klaxon_domain::status_page::Subscriber;
use klaxon_domain::templates::Rendered;
use klaxon_domain::wire::Notification;
use serde::Deserialize;

use super::StatusPage;
use super::render::PageView;

#[derive(Template)]
#[template(path = "status/message.html")]
struct MessagePage<'a> {
    page: &'a PageView,
    heading: &'a str,
    text: &'a str,
    form_action: Option<String>,
    button: &'a str,
}

/// The form of `POST /status/subscribe`.
#[derive(Debug, Deserialize)]
pub struct SubscribeForm {
    #[serde(default)]
    email: Option<String>,
    #[serde(default)]
    webhook: Option<String>,
}

fn page_view(p: &StatusPage, now: Timestamp) -> PageView {
    let cfg = &p.cfg;
    PageView {
        name: cfg.name.clone(),
        base: p.base_url(),
        brand_color: cfg.brand_color.clone(),
        logo_url: cfg.logo_url.clone(),
        footer_links: cfg.footer_links.clone(),
        updated: super::render::Clockface::new(cfg).show(now),
        time_zone: cfg.time_zone.clone(),
    }
}

fn message(p: &StatusPage, code: StatusCode, heading: &str, text: &str, form: Option<(String, &str)>) -> Response {
    let now = p.deps.get().map(|d| d.clock.now()).unwrap_or(Timestamp::UNIX_EPOCH);
    let view = page_view(p, now);
    let (form_action, button) = match form {
        Some((a, b)) => (Some(a), b),
        None => (None, ""),
    };
    match (MessagePage {
        page: &view,
        heading,
        text,
        form_action,
        button,
    })
    .render()
    {
        Ok(html) => (code, Html(html)).into_response(),
        Err(e) => (StatusCode::INTERNAL_SERVER_ERROR, format!("rendering failed: {e}")).into_response(),
    }
}

/// 503 with a reason; nothing was changed.
fn unavailable(p: &StatusPage, text: &str) -> Response {
    message(p, StatusCode::SERVICE_UNAVAILABLE, "Try again soon", text, None)
}

fn unknown_link(p: &StatusPage) -> Response {
    message(
        p,
        StatusCode::NOT_FOUND,
        "Unknown link",
        "This link is not valid.",
        None,
    )
}

/// The double opt-in email.
fn confirmation(p: &StatusPage, s: &Subscriber, now: Timestamp) -> Notification {
    let base = p.base_url();
    let confirm = format!("{base}/status/subscriptions/{}/confirm", s.token);
    let name = &p.cfg.name;
    let body = Envelope {
        event_type: types::SUBSCRIPTION_CONFIRM.into(),
        idempotency_key: format!("subscribe:{}:{}", s.id, now.as_millisecond()),
        incident: EnvelopeIncident {
            id: format!("subscription-{}", s.id),
            title: format!("{name} subscription"),
            severity: String::new(),
            status: "pending".into(),
            services: vec![],
            declared_at: now,
            url: None,
        },
        message: Rendered {
            name: "subscription-confirm".into(),
            subject: format!("Confirm your subscription to {name}"),
            body: format!(
                "Someone (hopefully you) asked to receive updates from {name} at {}.\n\nTo confirm, open:\n{confirm}\n\nIf it was not you, ignore this message: nothing will be sent.\n",
                s.address
            ),
            short: format!("Confirm {name} updates: {confirm}"),
        },
        sent_at: now,
        reason: "subscription".into(),
        user: None,
        policy: None,
        level: None,
        level_name: None,
        round: None,
        update_due: None,
        destination: Some("status-page-subscribers".into()),
        unsubscribe_url: None,
    };
    Notification {
        id: 0,
        idempotency_key: body.idempotency_key.clone(),
        incident_id: String::new(),
        user: String::new(),
        channel: "email".into(),
        contact: format!("subscriber {}", s.id),
        address: s.address.clone(),
        purpose: "message".into(),
        state: "pending".into(),
        attempts: 1,
        due_at: now,
        last_error: None,
        created_at: now,
        delivered_at: None,
        body: body.to_json(),
    }
}

/// `POST /status/subscribe`.
pub async fn subscribe(
    State(p): State<Arc<StatusPage>>,
    ConnectInfo(addr): ConnectInfo<SocketAddr>,
    Form(form): Form<SubscribeForm>,
) -> Response {
    let Some(deps) = p.deps.get() else {
        return unavailable(&p, "The status page is starting.");
    };
    if !p.limiter.allow(&addr.ip().to_string(), 1) {
        return message(
            &p,
            StatusCode::TOO_MANY_REQUESTS,
            "Too many requests",
            "Please wait a minute before subscribing again.",
            None,
        );
    }
    let (kind, address) = match (
        form.email.as_deref().map(str::trim),
        form.webhook.as_deref().map(str::trim),
    ) {
        (Some(e), None) if !e.is_empty() => (ContactKind::Email, e.to_string()),
        (None, Some(w)) if !w.is_empty() => (ContactKind::Webhook, w.to_string()),
        _ => {
            return message(
                &p,
                StatusCode::BAD_REQUEST,
                "Nothing to subscribe",
                "Give either an email address (email) or a webhook URL (webhook).",
                None,
            );
        }
    };
    if let Err(want) = kind.check_address(&address) {
        let field = kind.as_str();
        return message(
            &p,
            StatusCode::UNPROCESSABLE_ENTITY,
            "Please check the address",
            &format!("{field}: {address:?} is not {want}."),
            None,
        );
    }
    if kind == ContactKind::Email && deps.mailer.get().is_none() {
        return message(
            &p,
            StatusCode::SERVICE_UNAVAILABLE,
            "Email updates are not available",
            "This status page cannot send email. Use the Atom feed instead.",
            None,
        );
    }
    let now = deps.clock.now();
    let sub = match deps.store.subscribe(kind.as_str(), &address, now).await {
        Ok(s) => s,
        Err(e) => {
            tracing::error!(error = %e, "storing a subscription failed");
            return unavailable(&p, "Something went wrong on our side.");
        }
    };
    match (kind, sub.state.as_str()) {
        (ContactKind::Webhook, _) => message(
            &p,
            StatusCode::OK,
            "Subscribed",
            &format!(
                "Public updates will be POSTed to {address}. To stop: {}/status/subscriptions/{}/unsubscribe",
                p.base_url(),
                sub.token
            ),
            None,
        ),
        (_, "confirmed") => message(
            &p,
            StatusCode::OK,
            "Already subscribed",
            "This address already gets our updates.",
            None,
        ),
        _ => {
            let Some(mailer) = deps.mailer.get() else {
                return unavailable(&p, "Email is not available.");
            };
            let n = confirmation(&p, &sub, now);
            match mailer.send(&n, now.as_second()).await {
                Ok(()) => message(
                    &p,
                    StatusCode::OK,
                    "Check your inbox",
                    &format!("We sent a confirmation link to {address}. Updates start once you open it."),
                    None,
                ),
                Err(e) => {
                    tracing::warn!(error = %e.message, "sending a subscription confirmation failed");
                    unavailable(&p, "We could not send the confirmation email just now.")
                }
            }
        }
    }
}

async fn act(p: &StatusPage, token: &str, to: &str) -> Response {
    let Some(deps) = p.deps.get() else {
        return unavailable(p, "The status page is starting.");
    };
    match deps.store.set_subscriber_state(token, to, deps.clock.now()).await {
        Ok(Some(s)) if to == "confirmed" => message(
            p,
            StatusCode::OK,
            "Subscribed",
            &format!("{} will receive every public update.", s.address),
            None,
        ),
        Ok(Some(s)) => message(
            p,
            StatusCode::OK,
            "Unsubscribed",
            &format!("{} will receive nothing more.", s.address),
            None,
        ),
        Ok(None) => unknown_link(p),
        Err(e) => {
            tracing::error!(error = %e, "changing a subscription failed");
            unavailable(p, "Something went wrong on our side.")
        }
    }
}

async fn ask(p: &StatusPage, token: &str, what: &str) -> Response {
    let Some(deps) = p.deps.get() else {
        return unavailable(p, "The status page is starting.");
    };
    match deps.store.subscriber_by_token(token).await {
        Ok(Some(s)) => {
            let (heading, button) = if what == "confirm" {
                ("Confirm your subscription", "Confirm")
            } else {
                ("Unsubscribe", "Unsubscribe")
            };
            message(
                p,
                StatusCode::OK,
                heading,
                &format!("For {}.", s.address),
                Some((format!("{}/status/subscriptions/{token}/{what}", p.base_url()), button)),
            )
        }
        Ok(None) => unknown_link(p),
        Err(e) => {
            tracing::error!(error = %e, "reading a subscription failed");
            unavailable(p, "Something went wrong on our side.")
        }
    }
}

pub async fn confirm_form(State(p): State<Arc<StatusPage>>, Path(token): Path<String>) -> Response {
    ask(&p, &token, "confirm").await
}

pub async fn confirm(State(p): State<Arc<StatusPage>>, Path(token): Path<String>) -> Response {
    act(&p, &token, "confirmed").await
}

pub async fn unsubscribe_form(State(p): State<Arc<StatusPage>>, Path(token): Path<String>) -> Response {
    ask(&p, &token, "unsubscribe").await
}

pub async fn unsubscribe(State(p): State<Arc<StatusPage>>, Path(token): Path<String>) -> Response {
    act(&p, &token, "unsubscribed").await
}
