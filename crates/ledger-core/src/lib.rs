//! ledger-core turns raw APIM → Event Hubs events into canonical per-call
//! records. It is pure: no I/O, no clocks except those passed in.
//!
//! Stages: [`dialects`] decode an event into [`Fragment`]s; [`correlate`]
//! joins the fragments of one call and decides when it is whole;
//! [`assemble`] parses the bodies ([`body`]), fills usage ([`tokens`]) and
//! cost ([`cost`]), removes secrets ([`redact`]) and yields a [`CallRecord`].
//! [`ledger`] wraps all of it in the exactly-once bookkeeping of
//! `architecture.md`: owning sequence numbers and resume points, handed to
//! sinks as [`Commit`]s that carry a [`Checkpoint`].
//!
//! Rules every stage shares live once: [`operations`] (routes and APIM
//! operation ids), [`coerce`] (loose numbers and booleans), `json_repair`
//! (closing cut JSON), and the dialect table `dialects::DIALECTS`.
//!
//! ```
//! use chrono::Utc;
//! use ledger_core::ledger::{Ledger, LedgerConfig};
//! use ledger_core::{Position, RawEvent};
//!
//! let mut ledger = Ledger::new(LedgerConfig::default()).with_source("example");
//! for (seq, body) in [
//!     (1, r#"{"schema":"ledger/v1","kind":"request","requestId":"r1","body":"{\"messages\":[]}"}"#),
//!     (2, r#"{"schema":"ledger/v1","kind":"response","requestId":"r1","status":200,"body":"{\"model\":\"gpt-4o\"}"}"#),
//! ] {
//!     let position = Position { partition: "0".into(), sequence: seq };
//!     let event = RawEvent { position, offset: None, enqueued_time: None, body: body.into() };
//!     ledger.process(event, Utc::now());
//! }
//! let commits = ledger.finish();
//! let record = &commits[0].records[0].item;
//! assert_eq!((record.request_id.as_str(), record.complete), ("r1", true));
//! assert_eq!(record.model.as_deref(), Some("gpt-4o"));
//! ```

pub mod assemble;
pub mod body;
pub mod checkpoint;
pub mod coerce;
pub mod columns;
pub mod correlate;
pub mod cost;
pub mod dialects;
pub mod error;
pub mod filter;
#[cfg(feature = "fuzzing")]
pub mod fuzzing;
pub(crate) mod json_repair;
pub mod ledger;
pub mod limits;
pub mod merge;
pub mod model;
pub mod operations;
pub mod redact;
pub mod time;
pub mod tokens;

pub use checkpoint::{Checkpoint, Commit};
pub use error::DecodeError;
pub use model::*;
