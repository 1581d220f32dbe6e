//! Rate limits.

use std::net::SocketAddr;
use std::num::NonZeroU32;

use axum::extract::{ConnectInfo, Request, State};
use axum::http::StatusCode;
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use governor::{DefaultKeyedRateLimiter, Quota, RateLimiter};

use crate::error::ApiError;
use crate::state::AppState;

/// A keyed rate limit (events per second, with a burst): per integration for
/// ingest, per client address for the API.
pub struct KeyedLimiter {
    limiter: Option<DefaultKeyedRateLimiter<String>>,
}

impl std::fmt::Debug for KeyedLimiter {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("KeyedLimiter")
    }
}

impl KeyedLimiter {
    /// `per_second` 0 disables the limit.
    pub fn new(per_second: u32, burst: u32) -> Self {
        let limiter = NonZeroU32::new(per_second).map(|ps| {
            let burst = NonZeroU32::new(burst.max(per_second)).unwrap_or(ps);
            RateLimiter::keyed(Quota::per_second(ps).allow_burst(burst))
        });
        Self { limiter }
    }

    /// Take `n` events' worth; false when over the limit.
    pub fn allow(&self, integration: &str, n: usize) -> bool {
        let Some(l) = &self.limiter else { return true };
        let n = NonZeroU32::new(n.clamp(1, u32::MAX as usize) as u32).unwrap_or(NonZeroU32::MIN);
        matches!(l.check_key_n(&integration.to_string(), n), Ok(Ok(())))
    }
}

/// Requests per second per client address on `/api/v1`; 429 beyond.
pub async fn limit_api(State(s): State<AppState>, req: Request, next: Next) -> Response {
    let who = req
        .extensions()
        .get::<ConnectInfo<SocketAddr>>()
        .map(|c| c.0.ip().to_string())
        .unwrap_or_else(|| "unknown".into());
    if !s.api_limiter.allow(&who, 1) {
        return ApiError::new(
            StatusCode::TOO_MANY_REQUESTS,
            "rate_limited",
            "too many requests from this address; retry later",
        )
        .into_response();
    }
    next.run(req).await
}
