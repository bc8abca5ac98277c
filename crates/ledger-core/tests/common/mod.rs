//! Helpers shared by the core's integration tests.

use chrono::Utc;
use ledger_core::ledger::{Ledger, LedgerConfig};
use ledger_core::{CallRecord, Position, RawEvent};
use serde_json::Value;

/// The records of `events`, fed in order to one partition and finished,
/// with their positions cleared (positions legitimately follow the order).
pub fn records_of(config: LedgerConfig, events: &[Value]) -> Vec<CallRecord> {
    let mut ledger = Ledger::new(config);
    for (i, e) in events.iter().enumerate() {
        let position = Position {
            partition: "0".into(),
            sequence: i as i64 + 1,
        };
        let body = serde_json::to_vec(e).expect("a JSON value serialises");
        let event = RawEvent {
            position,
            offset: None,
            enqueued_time: None,
            body,
        };
        ledger.process(event, Utc::now());
    }
    ledger
        .finish()
        .into_iter()
        .flat_map(|c| c.records)
        .map(|o| {
            let mut r = o.item;
            r.eh_sequence_first = 0;
            r.eh_sequence_last = 0;
            r
        })
        .collect()
}
