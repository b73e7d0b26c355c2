//! Errors of the HTTP layer and how each becomes an answer.
//!
//! The original answers bad input with a 500 and, in its default debug mode, a traceback page.
//! Here every failure is a small JSON object with a status that tells the caller whose fault it
//! is: 400 for input we refuse, 401/403 for authentication, 503 when Redis cannot be reached,
//! and a 500 without any internal detail only for what should never happen.

use axum::http::{header, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use thiserror::Error;

/// Why a request could not be answered.
#[derive(Debug, Clone, Error)]
pub enum WebError {
    /// A query parameter or path segment we do not accept; the text names it.
    #[error("{0}")]
    BadRequest(String),
    /// No valid session (auth on).
    #[error("authentication required")]
    Unauthorized,
    /// Over a limit (login attempts per address or account, streams per client); the client
    /// may try again after `retry_after` seconds (`Retry-After`).
    #[error("{what}; try again in {retry_after} s")]
    TooManyRequests { what: String, retry_after: u64 },
    #[error("not found")]
    NotFound,
    /// Redis did not answer (down, restarting, unreachable): the caller may retry.
    #[error("the statistics database is unavailable: {0}")]
    Unavailable(String),
    /// Any other refusal by the HTTP layer (405, 413, 414, 431, ...), with its reason.
    #[error("{reason}")]
    Refused { status: StatusCode, reason: String },
    /// A Redis error that is not a connection problem (e.g. WRONGTYPE on a key another program
    /// wrote); logged with detail, answered without.
    #[error("internal error")]
    Internal(String),
}

impl WebError {
    pub fn bad(msg: impl Into<String>) -> Self {
        WebError::BadRequest(msg.into())
    }

    pub fn status(&self) -> StatusCode {
        match self {
            WebError::BadRequest(_) => StatusCode::BAD_REQUEST,
            WebError::Unauthorized => StatusCode::UNAUTHORIZED,
            WebError::TooManyRequests { .. } => StatusCode::TOO_MANY_REQUESTS,
            WebError::NotFound => StatusCode::NOT_FOUND,
            WebError::Unavailable(_) => StatusCode::SERVICE_UNAVAILABLE,
            WebError::Internal(_) => StatusCode::INTERNAL_SERVER_ERROR,
            WebError::Refused { status, .. } => *status,
        }
    }
}

impl From<redis::RedisError> for WebError {
    fn from(e: redis::RedisError) -> Self {
        if crate::redis_util::is_connection_error(&e) {
            WebError::Unavailable(e.to_string())
        } else {
            WebError::Internal(format!("redis: {e}"))
        }
    }
}

impl IntoResponse for WebError {
    fn into_response(self) -> Response {
        let status = self.status();
        if let WebError::Internal(detail) = &self {
            tracing::error!("internal error: {detail}");
        }
        let mut body = String::from("{\"error\": ");
        crate::pyjson::write_str(&mut body, &self.to_string());
        body.push_str(", \"status\": ");
        body.push_str(&status.as_u16().to_string());
        body.push('}');
        let mut resp = (status, body).into_response();
        resp.headers_mut().insert(
            header::CONTENT_TYPE,
            HeaderValue::from_static("application/json"),
        );
        if let WebError::TooManyRequests { retry_after, .. } = &self {
            resp.headers_mut()
                .insert(header::RETRY_AFTER, HeaderValue::from(*retry_after));
        }
        resp
    }
}
