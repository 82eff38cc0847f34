//! Door access decisions, sans IO.
//!
//! Architecture invariant: no IO, no clock, no threads. Callers pass `now`; every input returns the
//! outputs it causes ([`AccessOutput`]: a journalled [`Decision`], a [`DoorCommand`] for a lock, an
//! [`Alarm`]). Events for the spool are built with [`Decision::to_event`] and [`Alarm::to_event`].
//!
//! The data comes from one versioned [`SiteDocument`] (people, credentials, groups, areas, doors,
//! schedules, holidays, degraded policy) checked into a [`Policy`]; the same document will be
//! pushed by the cloud.

#![cfg_attr(not(test), warn(clippy::unwrap_used))]

mod document;
mod engine;
mod policy;
#[cfg(test)]
mod tests;

pub use document::{
    AccessGroup, AntiPassback, Area, Credential, Day, DegradedPolicy, DocumentLoadError, Door, FirstPersonIn, Holiday,
    Person, SITE_DOCUMENT_SCHEMA, Schedule, SiteDocument, Window,
};
pub use engine::{
    AccessEngine, AccessOutput, Alarm, AlarmKind, Decision, DoorCommand, DoorInput, EngineError, LockAction, Lockdown,
    Presentation, Reason,
};
pub use policy::{Policy, PolicyError};
