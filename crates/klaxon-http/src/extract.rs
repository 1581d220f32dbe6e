//! Extractors that turn every bad input into a clear, field-naming error.

use axum::body::Bytes;
use axum::extract::{FromRequest, FromRequestParts, Request};
use axum::http::request::Parts;
use axum::http::{StatusCode, header};
use klaxon_domain::wire::TokenRole;
use klaxon_store::hash_secret;
use serde::de::DeserializeOwned;

use crate::error::ApiError;
use crate::state::AppState;

/// Largest request body accepted: 1 MiB.
pub const MAX_BODY: usize = 1024 * 1024;

/// JSON body: 413 over 1 MiB, 400 for
/// malformed JSON, 422 naming the field for missing/wrong/unknown fields.
pub struct ApiJson<T>(pub T);

/// Turn a serde message + path into a field path. serde reports a missing
/// field by message only ("missing field `title`").
fn field_of(path: &str, message: &str) -> String {
    let named = |marker: &str| {
        message.find(marker).and_then(|i| {
            let rest = &message[i + marker.len()..];
            rest.find('`').map(|end| rest[..end].to_string())
        })
    };
    let leaf = named("missing field `").or_else(|| named("unknown field `"));
    match (path, leaf) {
        (".", Some(l)) | ("", Some(l)) => l,
        (p, Some(l)) if !p.ends_with(&l) => format!("{p}.{l}"),
        (p, _) => p.to_string(),
    }
}

pub fn parse_json<T: DeserializeOwned>(bytes: &[u8]) -> Result<T, ApiError> {
    let bytes = if bytes.iter().all(|b| b.is_ascii_whitespace()) {
        &b"{}"[..]
    } else {
        bytes
    };
    // Parse plainly first; only a body that fails is parsed again to find the path of the
    // offending field (tracking paths on every parse cost ingest a tenth of its CPU).
    if let Ok(v) = serde_json::from_slice(bytes) {
        return Ok(v);
    }
    let de = &mut serde_json::Deserializer::from_slice(bytes);
    serde_path_to_error::deserialize(de).map_err(|e| {
        let path = e.path().to_string();
        let inner = e.into_inner();
        let msg = inner.to_string();
        match inner.classify() {
            serde_json::error::Category::Syntax
            | serde_json::error::Category::Eof
            | serde_json::error::Category::Io => {
                ApiError::bad_request("malformed_json", format!("request body is not valid JSON: {msg}"))
            }
            serde_json::error::Category::Data => {
                let field = field_of(&path, &msg);
                ApiError::invalid(&field, format!("{field}: {msg}"))
            }
        }
    })
}

impl<T: DeserializeOwned, S: Send + Sync> FromRequest<S> for ApiJson<T> {
    type Rejection = ApiError;

    async fn from_request(req: Request, state: &S) -> Result<Self, Self::Rejection> {
        // The body is parsed as JSON whatever the Content-Type says: `curl -d` sends
        // form encoding by default, and a responder at 3 a.m. should not be refused for it.
        let bytes = Bytes::from_request(req, state).await.map_err(|rej| {
            if rej.status() == StatusCode::PAYLOAD_TOO_LARGE {
                ApiError::new(
                    StatusCode::PAYLOAD_TOO_LARGE,
                    "payload_too_large",
                    format!("request body is larger than {MAX_BODY} bytes"),
                )
            } else {
                ApiError::bad_request("unreadable_body", rej.body_text())
            }
        })?;
        parse_json(&bytes).map(ApiJson)
    }
}

/// Who is calling. Anonymous callers may only read public data.
#[derive(Debug, Clone)]
pub struct Caller {
    pub name: String,
    pub role: Option<TokenRole>,
}

impl Caller {
    pub fn is_authenticated(&self) -> bool {
        self.role.is_some()
    }

    /// 401 without a token, 403 with a token of a lesser role.
    pub fn require(&self, role: TokenRole) -> Result<&Self, ApiError> {
        match self.role {
            None => Err(ApiError::unauthorized(
                "this endpoint needs Authorization: Bearer <token>",
            )),
            Some(r) if r < role => Err(ApiError::forbidden(format!(
                "token role {} may not do this; {} is needed",
                r.as_str(),
                role.as_str()
            ))),
            Some(_) => Ok(self),
        }
    }
}

impl FromRequestParts<AppState> for Caller {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> Result<Self, Self::Rejection> {
        let Some(value) = parts.headers.get(header::AUTHORIZATION) else {
            return Ok(Caller {
                name: "anonymous".into(),
                role: None,
            });
        };
        let value = value
            .to_str()
            .map_err(|_| ApiError::unauthorized("Authorization header is not readable text"))?;
        let secret = value
            .strip_prefix("Bearer ")
            .or_else(|| value.strip_prefix("bearer "))
            .map(str::trim)
            .filter(|s| !s.is_empty())
            .ok_or_else(|| ApiError::unauthorized("Authorization must be 'Bearer <token>'"))?;
        let token = state
            .store
            .find_token(&hash_secret(secret))
            .await?
            .ok_or_else(|| ApiError::unauthorized("unknown or revoked token"))?;
        Ok(Caller {
            name: token.name,
            role: Some(token.role),
        })
    }
}

/// Query parameters: 400 naming the parameter when they cannot be read.
pub struct ApiQuery<T>(pub T);

impl<T: DeserializeOwned, S: Send + Sync> FromRequestParts<S> for ApiQuery<T> {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, _state: &S) -> Result<Self, Self::Rejection> {
        axum::extract::Query::<T>::try_from_uri(&parts.uri)
            .map(|q| ApiQuery(q.0))
            .map_err(|e| {
                let text = e.body_text();
                let field = text
                    .find("unknown field `")
                    .or_else(|| text.find("field `"))
                    .and_then(|i| {
                        let rest = &text[i..];
                        let start = rest.find('`')? + 1;
                        let end = rest[start..].find('`')?;
                        Some(rest[start..start + end].to_string())
                    });
                let err = ApiError::bad_request("invalid_query", text.clone());
                match field {
                    Some(f) => err.field(f),
                    None => err,
                }
            })
    }
}

/// A caller allowed to work incidents (responder or admin); 401/403 otherwise,
/// checked before the body is read.
pub struct Responder(pub Caller);

/// A caller with the admin role.
pub struct Admin(pub Caller);

impl FromRequestParts<AppState> for Responder {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> Result<Self, Self::Rejection> {
        let c = Caller::from_request_parts(parts, state).await?;
        c.require(TokenRole::Responder)?;
        Ok(Responder(c))
    }
}

impl FromRequestParts<AppState> for Admin {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> Result<Self, Self::Rejection> {
        let c = Caller::from_request_parts(parts, state).await?;
        c.require(TokenRole::Admin)?;
        Ok(Admin(c))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[derive(serde::Deserialize, Debug)]
    #[serde(deny_unknown_fields)]
    #[allow(dead_code)]
    struct Body {
        title: String,
        inner: Option<Inner>,
    }
    #[derive(serde::Deserialize, Debug)]
    #[serde(deny_unknown_fields)]
    #[allow(dead_code)]
    struct Inner {
        percent: f64,
    }

    #[test]
    fn errors_name_the_field() {
        let e = parse_json::<Body>(br#"{"inner": {"percent": 1}}"#).unwrap_err();
        assert_eq!((e.status.as_u16(), e.field.as_deref()), (422, Some("title")));
        let e = parse_json::<Body>(br#"{"title": 5}"#).unwrap_err();
        assert_eq!(e.field.as_deref(), Some("title"));
        let e = parse_json::<Body>(br#"{"title": "x", "inner": {"percent": "lots"}}"#).unwrap_err();
        assert_eq!(e.field.as_deref(), Some("inner.percent"));
        let e = parse_json::<Body>(br#"{"title": "x", "colour": 1}"#).unwrap_err();
        assert_eq!(e.field.as_deref(), Some("colour"));
        let e = parse_json::<Body>(br#"{"title": "x""#).unwrap_err();
        assert_eq!((e.status.as_u16(), e.code), (400, "malformed_json"));
    }
}
