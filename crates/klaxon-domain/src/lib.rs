//! Klaxon's domain: the rules of the playbooks as pure functions.
//!
//! Nothing here performs I/O or reads the clock. Callers pass `now` in; the
//! [`clock::Clock`] trait lets adapters decide where `now` comes from.

pub mod alert;
pub mod clock;
pub mod communication;
pub mod config;
pub mod decide;
pub mod duration;
pub mod engine;
pub mod error;
pub mod escalation;
pub mod event;
pub mod id;
pub mod incident;
pub mod lifecycle;
pub mod message;
pub mod paging_rules;
pub mod people;
pub mod rotation;
pub mod schedule;
pub mod severity;
pub mod status_page;
pub mod templates;
pub mod wire;

pub use clock::{Clock, ManualClock};
pub use error::{DomainError, FieldError};
pub use event::{EventKind, TimelineEvent};
pub use incident::Incident;
pub use lifecycle::Status;
