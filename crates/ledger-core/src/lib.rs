//! ledger-core turns raw APIM → Event Hubs events into canonical per-call
//! records. It is pure: no I/O, no clocks except those passed in.
//!
//! Stages: [`dialects`] decode an event into [`Fragment`]s; [`correlate`]
//! joins the fragments of one call and decides when it is whole;
//! [`assemble`] parses the bodies ([`body`]), fills usage ([`tokens`]) and
//! cost ([`cost`]), removes secrets ([`redact`]) and yields a [`CallRecord`].
//! [`ledger`] wraps all of it in the exactly-once bookkeeping of
//! `architecture.md`: owning sequence numbers and resume points.

pub mod assemble;
pub mod body;
pub mod columns;
pub mod correlate;
pub mod cost;
pub mod dialects;
pub mod error;
pub mod ledger;
pub mod model;
pub mod redact;
pub mod time;
pub mod tokens;

pub use error::DecodeError;
pub use model::*;
