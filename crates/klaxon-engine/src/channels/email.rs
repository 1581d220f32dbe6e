//! Email over SMTP (lettre, rustls): one multipart/alternative message per
//! notification — the template's plain text and an HTML rendering of it —
//! threaded per incident.
//!
//! Threading: every message of an incident names the same (never sent)
//! thread root `<{incident}@klaxon>` in `In-Reply-To` and `References`, and
//! carries its own `Message-ID` `<{incident}.{hash of the idempotency key}@klaxon>`
//! (stable across retries, so a receiver drops a repeat). Outlook also gets
//! `Thread-Topic` and a `Thread-Index` whose 22-byte root is the same for the
//! whole incident. See docs/channels/email.md.

use std::time::{Duration, UNIX_EPOCH};

use futures::future::BoxFuture;
use klaxon_domain::message::Envelope;
use klaxon_store::Notification;
use lettre::message::header::{HeaderName, HeaderValue};
use lettre::message::{Mailbox, MultiPart};
use lettre::transport::smtp::authentication::Credentials;
use lettre::transport::smtp::client::{Certificate, Tls, TlsParameters};
use lettre::transport::smtp::extension::ClientId;
use lettre::{AsyncSmtpTransport, AsyncTransport, Message, Tokio1Executor};
use sha2::{Digest, Sha256};

use super::settings::{EmailSettings, SmtpTls};
use super::{Channel, SendError, envelope};

const X_KLAXON_INCIDENT: HeaderName = HeaderName::new_from_ascii_str("X-Klaxon-Incident");
const X_KLAXON_EVENT: HeaderName = HeaderName::new_from_ascii_str("X-Klaxon-Event");
const X_KLAXON_IDEMPOTENCY_KEY: HeaderName = HeaderName::new_from_ascii_str("X-Klaxon-Idempotency-Key");
const AUTO_SUBMITTED: HeaderName = HeaderName::new_from_ascii_str("Auto-Submitted");
const X_AUTO_RESPONSE_SUPPRESS: HeaderName = HeaderName::new_from_ascii_str("X-Auto-Response-Suppress");
const THREAD_TOPIC: HeaderName = HeaderName::new_from_ascii_str("Thread-Topic");
const THREAD_INDEX: HeaderName = HeaderName::new_from_ascii_str("Thread-Index");
const IMPORTANCE: HeaderName = HeaderName::new_from_ascii_str("Importance");
const X_PRIORITY: HeaderName = HeaderName::new_from_ascii_str("X-Priority");
const LIST_UNSUBSCRIBE: HeaderName = HeaderName::new_from_ascii_str("List-Unsubscribe");
const LIST_UNSUBSCRIBE_POST: HeaderName = HeaderName::new_from_ascii_str("List-Unsubscribe-Post");

/// The email channel: an SMTP relay, connected to once per message.
pub struct Email {
    transport: AsyncSmtpTransport<Tokio1Executor>,
    from: Mailbox,
    /// `host:port`, for error messages.
    relay: String,
    /// Bound of one whole SMTP session (lettre's own only covers connecting).
    timeout: Duration,
}

impl std::fmt::Debug for Email {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Email")
            .field("relay", &self.relay)
            .field("from", &self.from.to_string())
            .finish()
    }
}

impl Email {
    /// Build the transport once: TLS mode, extra CA, credentials, timeout.
    /// `password` is the resolved secret (settings or `KLAXON_SMTP_PASSWORD`).
    pub fn new(s: &EmailSettings, password: Option<String>, timeout: Duration) -> Result<Self, String> {
        let _ = rustls::crypto::ring::default_provider().install_default();
        let from: Mailbox = s
            .from
            .parse()
            .map_err(|e| format!("channels.email.from {:?} is not a mailbox: {e}", s.from))?;
        let port = s.port.unwrap_or(match s.tls {
            SmtpTls::Starttls => 587,
            SmtpTls::Implicit => 465,
            SmtpTls::None => 25,
        });
        let tls = match s.tls {
            SmtpTls::None => Tls::None,
            SmtpTls::Starttls => Tls::Required(tls_parameters(s)?),
            SmtpTls::Implicit => Tls::Wrapper(tls_parameters(s)?),
        };
        let mut builder = AsyncSmtpTransport::<Tokio1Executor>::builder_dangerous(s.host.as_str())
            .port(port)
            .tls(tls)
            .timeout(Some(timeout));
        if let Some(name) = &s.hello_name {
            builder = builder.hello_name(ClientId::Domain(name.clone()));
        }
        match (&s.username, password) {
            (Some(user), Some(pass)) => builder = builder.credentials(Credentials::new(user.clone(), pass)),
            (Some(_), None) => {
                return Err("channels.email.username is set but there is no password \
                            (channels.email.password or KLAXON_SMTP_PASSWORD)"
                    .into());
            }
            (None, _) => {}
        }
        Ok(Self {
            transport: builder.build(),
            from,
            relay: format!("{}:{port}", s.host),
            timeout,
        })
    }

    /// The message for one notification (public for tests and previews).
    pub fn message(&self, n: &Notification, env: &Envelope, now_unix: i64) -> Result<Message, SendError> {
        let to: Mailbox = n.address.parse().map_err(|e| {
            SendError::permanent(format!(
                "notification {}: {:?} is not an email address: {e}",
                n.id, n.address
            ))
        })?;
        let inc = &env.incident;
        let ids = thread_ids(&inc.id, &n.idempotency_key);
        let header = |name: HeaderName, value: &str| HeaderValue::new(name, one_line(value));
        let mut b = Message::builder()
            .from(self.from.clone())
            .to(to)
            .subject(one_line(&env.message.subject))
            .date(UNIX_EPOCH + Duration::from_secs(u64::try_from(now_unix).unwrap_or(0)))
            .message_id(Some(ids.message_id))
            .in_reply_to(ids.root.clone())
            .references(ids.root)
            .raw_header(header(X_KLAXON_INCIDENT, &inc.id))
            .raw_header(header(X_KLAXON_EVENT, &env.event_type))
            .raw_header(header(X_KLAXON_IDEMPOTENCY_KEY, &n.idempotency_key))
            .raw_header(header(AUTO_SUBMITTED, "auto-generated"))
            .raw_header(header(X_AUTO_RESPONSE_SUPPRESS, "All"))
            .raw_header(header(THREAD_TOPIC, &format!("{}: {}", inc.id, inc.title)))
            .raw_header(header(
                THREAD_INDEX,
                &thread_index(&inc.id, inc.declared_at.as_second(), now_unix, &n.idempotency_key),
            ));
        if let Some(u) = &env.unsubscribe_url {
            // RFC 2369 and RFC 8058 (one-click unsubscribe by POST).
            b = b
                .raw_header(header(LIST_UNSUBSCRIBE, &format!("<{u}>")))
                .raw_header(header(LIST_UNSUBSCRIBE_POST, "List-Unsubscribe=One-Click"));
        }
        if env.is_page() {
            b = b
                .raw_header(header(IMPORTANCE, "high"))
                .raw_header(header(X_PRIORITY, "1"));
        }
        let html = html(&env.message.subject, &env.message.body, inc.url.as_deref());
        b.multipart(MultiPart::alternative_plain_html(env.message.body.clone(), html))
            .map_err(|e| SendError::permanent(format!("notification {}: cannot build the email: {e}", n.id)))
    }
}

impl Channel for Email {
    fn send<'a>(&'a self, n: &'a Notification, now_unix: i64) -> BoxFuture<'a, Result<(), SendError>> {
        Box::pin(async move {
            let env = envelope(n)?;
            let msg = self.message(n, &env, now_unix)?;
            match tokio::time::timeout(self.timeout, self.transport.send(msg)).await {
                Ok(Ok(_)) => Ok(()),
                Ok(Err(e)) => Err(smtp_error(&self.relay, &n.address, &e)),
                Err(_) => Err(SendError::transient(format!(
                    "SMTP {} (to {}): timed out after {:?}",
                    self.relay, n.address, self.timeout
                ))),
            }
        })
    }
}

/// The TLS parameters: the system's roots plus `ca_file`, if any.
fn tls_parameters(s: &EmailSettings) -> Result<TlsParameters, String> {
    let mut b = TlsParameters::builder(s.host.clone());
    if let Some(path) = &s.ca_file {
        let pem = std::fs::read(path).map_err(|e| format!("channels.email.ca_file {}: {e}", path.display()))?;
        let cert =
            Certificate::from_pem(&pem).map_err(|e| format!("channels.email.ca_file {}: {e}", path.display()))?;
        if !String::from_utf8_lossy(&pem).contains("-----BEGIN CERTIFICATE-----") {
            return Err(format!(
                "channels.email.ca_file {}: no PEM certificate in it",
                path.display()
            ));
        }
        b = b.add_root_certificate(cert);
    }
    b.build_rustls()
        .map_err(|e| format!("channels.email TLS for {}: {e}", s.host))
}

/// 4xx replies, refused connections, timeouts and TLS failures are worth
/// retrying; a 5xx reply (550 no such user, 535 bad credentials) is not.
fn smtp_error(relay: &str, to: &str, e: &lettre::transport::smtp::Error) -> SendError {
    let mut message = format!("SMTP {relay} (to {to}): {e}");
    if e.is_timeout() {
        message.push_str(" (timed out)");
    }
    if e.is_permanent() {
        SendError::permanent(message)
    } else {
        SendError::transient(message)
    }
}

/// A header value on one line (templates may leave newlines in a subject).
fn one_line(s: &str) -> String {
    s.split(['\r', '\n'])
        .map(str::trim)
        .filter(|l| !l.is_empty())
        .collect::<Vec<_>>()
        .join(" ")
}

/// The message's own ID and the incident's thread root.
struct ThreadIds {
    message_id: String,
    root: String,
}

/// `<{incident}@klaxon>` is the thread root of every message of the
/// incident; a message's own ID adds a hash of its idempotency key.
fn thread_ids(incident: &str, idempotency_key: &str) -> ThreadIds {
    let local: String = incident
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || c == '-' || c == '_' {
                c
            } else {
                '-'
            }
        })
        .collect();
    let local = if local.is_empty() {
        "incident".to_string()
    } else {
        local
    };
    let hash = hex::encode(Sha256::digest(idempotency_key.as_bytes()));
    ThreadIds {
        message_id: format!("<{local}.{}@klaxon>", &hash[..24]),
        root: format!("<{local}@klaxon>"),
    }
}

/// Outlook's `Thread-Index` (MS-OXOMSG PidTagConversationIndex): a 22-byte
/// header — the incident's declaration time as FILETIME and a GUID derived
/// from the incident ID, identical for all its messages — plus one 5-byte
/// child block (time since the declaration, a byte of the key's hash).
fn thread_index(incident: &str, declared_unix: i64, now_unix: i64, idempotency_key: &str) -> String {
    let filetime = |unix: i64| (unix.saturating_add(11_644_473_600).max(0) as u64).saturating_mul(10_000_000);
    let declared = filetime(declared_unix);
    let mut bytes = declared.to_be_bytes()[..6].to_vec();
    bytes[0] = 0x01;
    bytes.extend_from_slice(&Sha256::digest(format!("klaxon-thread:{incident}").as_bytes())[..16]);
    let delta = filetime(now_unix).saturating_sub(declared);
    let block: u32 = if delta >> 49 == 0 {
        ((delta >> 18) & 0x7fff_ffff) as u32
    } else {
        (1 << 31) | ((delta >> 23) & 0x7fff_ffff) as u32
    };
    bytes.extend_from_slice(&block.to_be_bytes());
    bytes.push(Sha256::digest(idempotency_key.as_bytes())[0]);
    base64_encode(&bytes)
}

/// Standard base64 with padding.
fn base64_encode(bytes: &[u8]) -> String {
    const ALPHABET: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    let mut out = String::with_capacity(bytes.len().div_ceil(3) * 4);
    for chunk in bytes.chunks(3) {
        let n = chunk
            .iter()
            .enumerate()
            .fold(0u32, |n, (i, b)| n | (u32::from(*b) << (16 - 8 * i)));
        for i in 0..4 {
            if i <= chunk.len() {
                out.push(char::from(ALPHABET[((n >> (18 - 6 * i)) & 63) as usize]));
            } else {
                out.push('=');
            }
        }
    }
    out
}

/// Escape text for HTML content and attribute values.
pub fn escape_html(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            c => out.push(c),
        }
    }
    out
}

/// A section heading of the templates: `IMPACT:`, `INCIDENT NOTIFICATION`.
fn is_heading(line: &str) -> bool {
    let t = line.trim().trim_end_matches(':');
    t.chars().any(|c| c.is_alphabetic()) && !t.chars().any(char::is_lowercase) && !t.starts_with('-')
}

/// The HTML part: the same text, escaped, with its line breaks, ALL-CAPS
/// lines as headings, `- ` lines as lists, and a link to the incident.
pub fn html(subject: &str, body: &str, url: Option<&str>) -> String {
    const P: &str = "margin:0 0 12px 0";
    let mut out = format!(
        "<!DOCTYPE html>\n<html><head><meta charset=\"utf-8\"><title>{}</title></head>\n\
         <body style=\"font-family:-apple-system,Segoe UI,Helvetica,Arial,sans-serif;font-size:14px;line-height:1.45;color:#1f2328\">\n",
        escape_html(subject)
    );
    let mut para: Vec<String> = Vec::new();
    let mut list: Vec<String> = Vec::new();
    let flush = |out: &mut String, para: &mut Vec<String>, list: &mut Vec<String>| {
        if !para.is_empty() {
            out.push_str(&format!("<p style=\"{P}\">{}</p>\n", para.join("<br>\n")));
            para.clear();
        }
        if !list.is_empty() {
            out.push_str(&format!("<ul style=\"{P}\">{}</ul>\n", list.concat()));
            list.clear();
        }
    };
    for line in body.lines() {
        let trimmed = line.trim_end();
        if trimmed.trim().is_empty() {
            flush(&mut out, &mut para, &mut list);
        } else if let Some(item) = trimmed.trim_start().strip_prefix("- ") {
            if !para.is_empty() {
                let mut none = Vec::new();
                flush(&mut out, &mut para, &mut none);
            }
            list.push(format!("<li>{}</li>", escape_html(item)));
        } else if is_heading(trimmed) {
            flush(&mut out, &mut para, &mut list);
            out.push_str(&format!(
                "<h3 style=\"margin:16px 0 6px 0;font-size:14px\">{}</h3>\n",
                escape_html(trimmed.trim())
            ));
        } else {
            if !list.is_empty() {
                let mut none = Vec::new();
                flush(&mut out, &mut none, &mut list);
            }
            para.push(escape_html(trimmed));
        }
    }
    flush(&mut out, &mut para, &mut list);
    if let Some(url) = url.filter(|u| u.starts_with("https://") || u.starts_with("http://")) {
        out.push_str(&format!(
            "<p style=\"{P}\"><a href=\"{u}\">Open the incident in Klaxon</a><br>\n<span style=\"color:#59636e\">{u}</span></p>\n",
            u = escape_html(url)
        ));
    }
    out.push_str("</body></html>\n");
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn html_is_escaped_and_keeps_structure() {
        let h = html(
            "[SEV-1] <b>x</b>",
            "INCIDENT NOTIFICATION\n\nIssue: a < b & \"c\"\nsecond line\n\nACTIONS TAKEN:\n- restarted <db>\n- paged\nafter",
            Some("https://k.example/api/v1/incidents/INC-1?a=1&b=2"),
        );
        assert!(h.contains("<title>[SEV-1] &lt;b&gt;x&lt;/b&gt;</title>"), "{h}");
        assert!(h.contains("<h3 style=\"margin:16px 0 6px 0;font-size:14px\">INCIDENT NOTIFICATION</h3>"));
        assert!(
            h.contains("Issue: a &lt; b &amp; &quot;c&quot;<br>\nsecond line</p>"),
            "{h}"
        );
        assert!(h.contains("<li>restarted &lt;db&gt;</li><li>paged</li></ul>"), "{h}");
        assert!(h.contains(">after</p>"), "{h}");
        assert!(h.contains("href=\"https://k.example/api/v1/incidents/INC-1?a=1&amp;b=2\""));
        assert!(!html("s", "b", Some("javascript:alert(1)")).contains("javascript"));
    }

    #[test]
    fn thread_ids_share_a_root_and_differ_per_message() {
        let a = thread_ids("INC-2026-11-23-001", "k1");
        let b = thread_ids("INC-2026-11-23-001", "k2");
        assert_eq!(a.root, "<INC-2026-11-23-001@klaxon>");
        assert_eq!(a.root, b.root);
        assert_ne!(a.message_id, b.message_id);
        assert!(a.message_id.starts_with("<INC-2026-11-23-001.") && a.message_id.ends_with("@klaxon>"));
        assert_eq!(thread_ids("a b<c>", "k").root, "<a-b-c-@klaxon>");
    }

    #[test]
    fn thread_index_root_is_per_incident() {
        let one = thread_index("INC-1", 1_795_000_000, 1_795_000_600, "k1");
        let two = thread_index("INC-1", 1_795_000_000, 1_795_003_600, "k2");
        let other = thread_index("INC-2", 1_795_000_000, 1_795_000_600, "k1");
        assert_eq!(one.len(), 36, "27 bytes");
        assert_eq!(
            &one[..28],
            &two[..28],
            "the first 21 bytes (28 base64 chars) are the conversation"
        );
        assert_ne!(&one[..28], &other[..28]);
        assert_ne!(one, two);
    }

    #[test]
    fn base64_matches_the_rfc_vectors() {
        for (i, o) in [
            ("", ""),
            ("f", "Zg=="),
            ("fo", "Zm8="),
            ("foo", "Zm9v"),
            ("foobar", "Zm9vYmFy"),
        ] {
            assert_eq!(base64_encode(i.as_bytes()), o);
        }
    }

    #[test]
    fn headings_are_all_caps_lines() {
        assert!(is_heading("IMPACT:"));
        assert!(is_heading("INCIDENT UPDATE #3"));
        assert!(!is_heading("Incident ID: INC-1"));
        assert!(!is_heading("- A"));
        assert!(!is_heading("123"));
    }
}
