//! Twilio SMS (`sms`) and voice calls (`voice`) through the REST API
//! 2010-04-01: HTTP Basic auth (account SID : auth token), form-encoded
//! bodies. A voice page reads the message and asks the callee to press 1;
//! Twilio posts the keypress to `{public_url}/hooks/twilio/voice`, signed
//! with `X-Twilio-Signature` ([`twilio_signature`]), which acknowledges the
//! incident.

use std::time::Duration;

use base64::Engine as _;
use futures::future::BoxFuture;
use klaxon_domain::message::Envelope;
use klaxon_store::Notification;
use serde::Deserialize;

use super::settings::TwilioSettings;
use super::{Channel, SendError, envelope, http_client, status_error, transport_error};

/// Longest SMS body Twilio accepts (characters).
pub const SMS_MAX: usize = 1600;
/// Longest text read out in a call.
const SAY_MAX: usize = 1000;

/// `X-Twilio-Signature` of a request: base64 of HMAC-SHA1 keyed with the
/// auth token over the full URL Twilio requested (query included) followed
/// by every POST parameter's name and value, sorted by name.
pub fn twilio_signature(auth_token: &str, url: &str, params: &[(String, String)]) -> String {
    let key = ring::hmac::Key::new(ring::hmac::HMAC_SHA1_FOR_LEGACY_USE_ONLY, auth_token.as_bytes());
    let tag = ring::hmac::sign(&key, &signed_data(url, params));
    base64::engine::general_purpose::STANDARD.encode(tag.as_ref())
}

/// Check `X-Twilio-Signature` in constant time.
pub fn verify_twilio_signature(auth_token: &str, url: &str, params: &[(String, String)], header: &str) -> bool {
    let Ok(got) = base64::engine::general_purpose::STANDARD.decode(header.trim()) else {
        return false;
    };
    let key = ring::hmac::Key::new(ring::hmac::HMAC_SHA1_FOR_LEGACY_USE_ONLY, auth_token.as_bytes());
    ring::hmac::verify(&key, &signed_data(url, params), &got).is_ok()
}

fn signed_data(url: &str, params: &[(String, String)]) -> Vec<u8> {
    let mut sorted: Vec<&(String, String)> = params.iter().collect();
    sorted.sort();
    let mut data = url.as_bytes().to_vec();
    for (k, v) in sorted {
        data.extend_from_slice(k.as_bytes());
        data.extend_from_slice(v.as_bytes());
    }
    data
}

/// Escape text for XML content and attribute values.
pub fn xml_escape(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&apos;"),
            // Control characters are not allowed in XML 1.0.
            c if c.is_control() && c != '\n' && c != '\t' => out.push(' '),
            c => out.push(c),
        }
    }
    out
}

/// Percent-encode a query value (everything but RFC 3986 unreserved characters).
fn query_escape(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for b in s.bytes() {
        if b.is_ascii_alphanumeric() || matches!(b, b'-' | b'.' | b'_' | b'~') {
            out.push(b as char);
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

/// At most `max` characters, ending in `…` when cut.
fn truncate(s: &str, max: usize) -> String {
    if s.chars().count() <= max {
        return s.to_string();
    }
    let mut out: String = s.chars().take(max.saturating_sub(1)).collect();
    out.push('…');
    out
}

/// The URL Twilio posts the keypress of a voice page to.
pub fn voice_action_url(public_url: &str, incident: &str, user: &str) -> String {
    format!(
        "{}/hooks/twilio/voice?incident={}&user={}",
        public_url.trim_end_matches('/'),
        query_escape(incident),
        query_escape(user)
    )
}

/// The text of an SMS: the short message; pages say how to acknowledge.
pub fn sms_body(env: &Envelope) -> String {
    let short = env.message.short.trim();
    if !env.is_page() {
        return truncate(short, SMS_MAX);
    }
    let mut suffix = format!("\nAck: klaxon ack {}", env.incident.id);
    if let Some(url) = &env.incident.url {
        suffix.push_str(&format!("\n{url}"));
    }
    let room = SMS_MAX.saturating_sub(suffix.chars().count());
    format!("{}{suffix}", truncate(short, room))
}

/// Inline TwiML of a call. Pages with a public URL gather one digit and
/// send it to [`voice_action_url`]; without one the call can only be heard.
pub fn voice_twiml(env: &Envelope, user: &str, public_url: Option<&str>) -> String {
    let text = xml_escape(&truncate(env.message.short.trim(), SAY_MAX));
    match public_url.filter(|_| env.is_page()) {
        Some(base) => format!(
            "<Response><Gather numDigits=\"1\" action=\"{}\" method=\"POST\" timeout=\"10\">\
             <Say>This is Klaxon. {text} Press 1 to acknowledge.</Say></Gather>\
             <Say>No input received. Goodbye.</Say></Response>",
            xml_escape(&voice_action_url(base, &env.incident.id, user))
        ),
        None if env.is_page() => format!(
            "<Response><Say>This is Klaxon. {text} Acknowledge incident {} with Klaxon.</Say></Response>",
            xml_escape(&env.incident.id)
        ),
        None => format!("<Response><Say>This is Klaxon. {text}</Say></Response>"),
    }
}

/// Register `sms` and `voice` when `channels.twilio` is configured.
pub fn register(
    channels: super::Channels,
    cfg: &super::ChannelsConfig,
    deps: &super::ChannelDeps,
) -> Result<super::Channels, String> {
    let Some(s) = &cfg.twilio else {
        return Ok(channels);
    };
    if deps.public_url.is_none() {
        tracing::warn!(
            "engine.public_url is not set: voice pages are read out but cannot be acknowledged by pressing 1"
        );
    }
    let sms = Twilio::new(TwilioKind::Sms, s, deps.public_url.clone(), cfg.timeout())?;
    let voice = Twilio::new(TwilioKind::Voice, s, deps.public_url.clone(), cfg.timeout())?;
    Ok(channels
        .with("sms", std::sync::Arc::new(sms))
        .with("voice", std::sync::Arc::new(voice)))
}

/// Twilio's error document.
#[derive(Debug, Deserialize)]
struct TwilioError {
    #[serde(default)]
    code: Option<i64>,
    #[serde(default)]
    message: Option<String>,
}

/// What a [`Twilio`] channel sends.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TwilioKind {
    Sms,
    Voice,
}

/// SMS or voice through one Twilio account.
#[derive(Debug, Clone)]
pub struct Twilio {
    http: reqwest::Client,
    kind: TwilioKind,
    api_url: String,
    account_sid: String,
    auth_token: String,
    from: String,
    public_url: Option<String>,
}

impl Twilio {
    pub fn new(
        kind: TwilioKind,
        s: &TwilioSettings,
        public_url: Option<String>,
        timeout: Duration,
    ) -> Result<Self, String> {
        let auth_token = s
            .auth_token_or_env()
            .ok_or("channels.twilio.auth_token (or KLAXON_TWILIO_AUTH_TOKEN) is not set")?;
        if s.account_sid.trim().is_empty() {
            return Err("channels.twilio.account_sid is empty".into());
        }
        if klaxon_domain::people::ContactKind::Sms.check_address(&s.from).is_err() {
            return Err(format!(
                "channels.twilio.from must be an E.164 number such as +14155550100, not {:?}",
                s.from
            ));
        }
        let http = http_client(timeout).map_err(|e| format!("twilio client: {e}"))?;
        Ok(Self {
            http,
            kind,
            api_url: s.api_url.trim_end_matches('/').to_string(),
            account_sid: s.account_sid.clone(),
            auth_token,
            from: s.from.clone(),
            public_url,
        })
    }

    fn url(&self) -> String {
        let res = match self.kind {
            TwilioKind::Sms => "Messages",
            TwilioKind::Voice => "Calls",
        };
        format!("{}/2010-04-01/Accounts/{}/{res}.json", self.api_url, self.account_sid)
    }

    fn form(&self, n: &Notification, env: &Envelope) -> Vec<(&'static str, String)> {
        let mut form = vec![("To", n.address.clone()), ("From", self.from.clone())];
        match self.kind {
            TwilioKind::Sms => form.push(("Body", sms_body(env))),
            TwilioKind::Voice => form.push(("Twiml", voice_twiml(env, &n.user, self.public_url.as_deref()))),
        }
        form
    }
}

impl Channel for Twilio {
    fn send<'a>(&'a self, n: &'a Notification, _now_unix: i64) -> BoxFuture<'a, Result<(), SendError>> {
        Box::pin(async move {
            let env = envelope(n)?;
            let url = self.url();
            let resp = self
                .http
                .post(&url)
                .basic_auth(&self.account_sid, Some(&self.auth_token))
                .header("Idempotency-Key", &n.idempotency_key)
                .form(&self.form(n, &env))
                .send()
                .await
                .map_err(|e| transport_error("POST", &url, e))?;
            if resp.status().is_success() {
                return Ok(());
            }
            let mut err = status_error("POST", &url, &resp);
            let text = resp.text().await.unwrap_or_default();
            if let Ok(e) = serde_json::from_str::<TwilioError>(&text) {
                err.message = format!(
                    "{}: Twilio error {}: {}",
                    err.message,
                    e.code.map(|c| c.to_string()).unwrap_or_else(|| "?".into()),
                    e.message.unwrap_or_default()
                );
            }
            Err(err)
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn p(list: &[(&str, &str)]) -> Vec<(String, String)> {
        list.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect()
    }

    /// The example of Twilio's "Validating requests" documentation.
    #[test]
    fn signature_matches_twilios_documented_example() {
        let params = p(&[
            ("CallSid", "CA1234567890ABCDE"),
            ("Caller", "+12349013030"),
            ("Digits", "1234"),
            ("From", "+12349013030"),
            ("To", "+18005551212"),
        ]);
        let url = "https://mycompany.com/myapp.php?foo=1&bar=2";
        assert_eq!(twilio_signature("12345", url, &params), "0/KCTR6DLpKmkAf8muzZqo1nDgQ=");
        assert!(verify_twilio_signature(
            "12345",
            url,
            &params,
            "0/KCTR6DLpKmkAf8muzZqo1nDgQ="
        ));
        assert!(!verify_twilio_signature(
            "12346",
            url,
            &params,
            "0/KCTR6DLpKmkAf8muzZqo1nDgQ="
        ));
        assert!(!verify_twilio_signature(
            "12345",
            "https://mycompany.com/myapp.php?foo=1&bar=3",
            &params,
            "0/KCTR6DLpKmkAf8muzZqo1nDgQ="
        ));
        assert!(!verify_twilio_signature("12345", url, &params, "not base64!"));
    }

    fn env(event_type: &str, short: &str) -> Envelope {
        Envelope {
            event_type: event_type.into(),
            idempotency_key: "k".into(),
            incident: klaxon_domain::message::EnvelopeIncident {
                id: "INC-1".into(),
                title: "A & B".into(),
                severity: "SEV-1".into(),
                status: "triggered".into(),
                services: vec![],
                declared_at: jiff::Timestamp::UNIX_EPOCH,
                url: Some("https://k.example.com/api/v1/incidents/INC-1".into()),
            },
            message: klaxon_domain::templates::Rendered {
                name: "n".into(),
                subject: "s".into(),
                body: "b".into(),
                short: short.into(),
            },
            sent_at: jiff::Timestamp::UNIX_EPOCH,
            reason: "escalation".into(),
            user: None,
            policy: None,
            level: None,
            level_name: None,
            round: None,
            update_due: None,
            destination: None,
            unsubscribe_url: None,
        }
    }

    #[test]
    fn sms_bodies_fit_and_keep_the_ack_line() {
        use klaxon_domain::message::types;
        let long = "x".repeat(3000);
        let page = sms_body(&env(types::PAGED, &long));
        assert_eq!(page.chars().count(), SMS_MAX);
        assert!(page.ends_with("…\nAck: klaxon ack INC-1\nhttps://k.example.com/api/v1/incidents/INC-1"));
        assert_eq!(sms_body(&env(types::UPDATED, "hello")), "hello");
        assert_eq!(sms_body(&env(types::UPDATED, &long)).chars().count(), SMS_MAX);
    }

    #[test]
    fn twiml_gathers_only_for_pages_with_a_public_url() {
        use klaxon_domain::message::types;
        let page = env(types::PAGED, "SEV-1 <A & B>");
        let with = voice_twiml(&page, "alice", Some("https://k.example.com"));
        assert!(with.contains(
            "<Gather numDigits=\"1\" action=\"https://k.example.com/hooks/twilio/voice?incident=INC-1&amp;user=alice\""
        ));
        assert!(with.contains("SEV-1 &lt;A &amp; B&gt; Press 1 to acknowledge."));
        let without = voice_twiml(&page, "alice", None);
        assert!(!without.contains("Gather") && without.contains("Acknowledge incident INC-1 with Klaxon"));
        let info = voice_twiml(&env(types::UPDATED, "update"), "alice", Some("https://k.example.com"));
        assert_eq!(info, "<Response><Say>This is Klaxon. update</Say></Response>");
    }

    #[test]
    fn escaping_and_truncation() {
        assert_eq!(xml_escape("a<b & \"c\"'"), "a&lt;b &amp; &quot;c&quot;&apos;");
        assert_eq!(query_escape("INC-2026 a&b"), "INC-2026%20a%26b");
        assert_eq!(truncate("abcdef", 4), "abc…");
        assert_eq!(truncate("abc", 4), "abc");
        assert_eq!(
            voice_action_url("https://k.example.com/", "INC-1", "al ice"),
            "https://k.example.com/hooks/twilio/voice?incident=INC-1&user=al%20ice"
        );
    }
}
