//! Errors a user can cause. Each maps to a 4xx with a message that says what to fix.

use crate::lifecycle::Status;

/// A validation problem with one named field.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{field}: {message}")]
pub struct FieldError {
    pub field: String,
    pub message: String,
}

impl FieldError {
    pub fn new(field: impl Into<String>, message: impl Into<String>) -> Self {
        Self {
            field: field.into(),
            message: message.into(),
        }
    }
}

#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum DomainError {
    /// A field failed validation (HTTP 422).
    #[error(transparent)]
    Invalid(#[from] FieldError),
    /// The lifecycle does not allow this move (HTTP 409).
    #[error("cannot move incident from {from} to {to}; allowed: {}", allowed_list(.allowed))]
    InvalidTransition {
        from: Status,
        to: Status,
        allowed: Vec<Status>,
    },
    /// The command conflicts with the incident's current state (HTTP 409).
    #[error("{0}")]
    Conflict(String),
}

fn allowed_list(allowed: &[Status]) -> String {
    if allowed.is_empty() {
        return "none (use reopen)".to_string();
    }
    allowed.iter().map(|s| s.as_str()).collect::<Vec<_>>().join(", ")
}

impl DomainError {
    pub fn invalid(field: impl Into<String>, message: impl Into<String>) -> Self {
        Self::Invalid(FieldError::new(field, message))
    }
}
