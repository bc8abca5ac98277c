//! Hostile input (issue 7): no secret in any dead letter, and bounded cost
//! for numbers from the input that would size a loop or an allocation.

use std::time::{Duration, Instant};

use chrono::Utc;
use ledger_core::ledger::{Commit, Ledger, LedgerConfig};
use ledger_core::{Position, RawEvent};

fn event(seq: i64, body: &[u8]) -> RawEvent {
    RawEvent {
        position: Position {
            partition: "0".into(),
            sequence: seq,
        },
        offset: None,
        enqueued_time: None,
        body: body.to_vec(),
    }
}

fn run(bodies: &[&[u8]]) -> Vec<Commit> {
    let mut ledger = Ledger::new(LedgerConfig::default());
    for (i, b) in bodies.iter().enumerate() {
        ledger.process(event(i as i64 + 1, b), Utc::now());
    }
    ledger.finish()
}

const API_KEY: &str = "0123456789abcdef0123456789abcdef";
const SUB_KEY: &str = "fedcba9876543210fedcba9876543210";

#[test]
fn duplicate_records_key_leaks_no_secret_into_the_dead_letter() {
    // Issue 7, defect 1: the first `records` array is shadowed by the second.
    let body = format!(
        r#"{{"records":[{{"time":"2024-05-24T14:45:56Z","category":"GatewayLogs","correlationId":"c1","properties":{{"method":"POST","url":"https://x.azure-api.net/openai/deployments/d/chat/completions","requestHeaders":{{"api-key":"{API_KEY}","Ocp-Apim-Subscription-Key":"{SUB_KEY}","content-type":"application/json"}}}}}}], "records": 5}}"#
    );
    let commits = run(&[body.as_bytes()]);
    let dead: Vec<_> = commits.iter().flat_map(|c| &c.dead_letters).collect();
    assert_eq!(dead.len(), 1, "{dead:?}");
    let dl = &dead[0].item;
    assert!(dl.reason.contains("no known dialect"), "{}", dl.reason);
    let raw = String::from_utf8_lossy(&dl.raw);
    for secret in [API_KEY, SUB_KEY] {
        assert!(!raw.contains(secret), "secret left in {raw}");
        assert!(!dl.reason.contains(secret));
    }
    // The rest is kept as it was.
    assert!(
        raw.contains(r#""content-type":"application/json""#),
        "{raw}"
    );
    assert!(raw.contains(r#""records": 5"#), "{raw}");
}
