//! `erase` blanks a data subject's prompts and responses: after a vacuum
//! past the retention no file of the lake holds them, while usage and cost
//! are what they were and `history` records the erasure.

use std::path::Path;

use datafusion::arrow::array::{Array, AsArray};
use datafusion::arrow::datatypes::DataType;
use parquet::arrow::arrow_reader::ParquetRecordBatchReaderBuilder;
use serde_json::{Value, json};

mod common;
use common::{ledger, sql};

/// Whether any file below `dir` holds `needle`: text files as they are,
/// Parquet files decoded, every string column of every row.
fn lake_holds(dir: &Path, needle: &str) -> bool {
    for e in std::fs::read_dir(dir).unwrap() {
        let p = e.unwrap().path();
        if p.is_dir() {
            if lake_holds(&p, needle) {
                return true;
            }
        } else if p.extension().is_some_and(|x| x == "parquet") {
            let file = std::fs::File::open(&p).unwrap();
            for batch in ParquetRecordBatchReaderBuilder::try_new(file)
                .unwrap()
                .build()
                .unwrap()
            {
                let batch = batch.unwrap();
                for c in batch
                    .columns()
                    .iter()
                    .filter(|c| c.data_type() == &DataType::Utf8)
                {
                    let s = c.as_string::<i32>();
                    if (0..s.len()).any(|i| s.is_valid(i) && s.value(i).contains(needle)) {
                        return true;
                    }
                }
            }
        } else if std::fs::read(&p)
            .unwrap()
            .windows(needle.len())
            .any(|w| w == needle.as_bytes())
        {
            return true;
        }
    }
    false
}

#[test]
fn erased_content_is_gone_and_the_numbers_stay() {
    let dir = tempfile::tempdir().unwrap();
    let lake = dir.path().join("lake").display().to_string();
    let mut text = String::new();
    for i in 0..12 {
        let id = format!("call-{i:02}");
        let user = if i % 3 == 0 {
            "subject-7"
        } else {
            "someone-else"
        };
        let secret = format!("private matter number {i} of {user}");
        let body = json!({"messages": [{"role": "user", "content": secret}], "user": user});
        let req = json!({"schema": "ledger/v1", "kind": "request", "requestId": id,
            "time": format!("2026-11-2{}T08:00:00Z", i % 3), "callerIp": "10.1.1.1", "body": body.to_string()});
        let resp = json!({"schema": "ledger/v1", "kind": "response", "requestId": id,
            "time": format!("2026-11-2{}T08:00:01Z", i % 3), "status": 200,
            "body": json!({"object": "chat.completion", "model": "gpt-4o-2024-08-06",
                "choices": [{"message": {"role": "assistant", "content": format!("answer for {user} {i}")}}],
                "usage": {"prompt_tokens": 10 + i, "completion_tokens": 3, "total_tokens": 13 + i}}).to_string()});
        text.push_str(&format!("{req}\n{resp}\n"));
    }
    let capture = dir.path().join("c.jsonl");
    std::fs::write(&capture, text).unwrap();
    ledger(&[
        "ingest",
        "-q",
        "--lake",
        &lake,
        &capture.display().to_string(),
    ]);
    let totals = "SELECT sum(prompt_tokens) AS p, sum(total_tokens) AS t, CAST(sum(cost) AS VARCHAR) AS c, count(*) AS n FROM calls";
    let before = sql(&lake, totals);
    let lake_dir = Path::new(&lake);
    assert!(lake_holds(lake_dir, "private matter number 3 of subject-7"));

    let dry = ledger(&[
        "erase",
        "--lake",
        &lake,
        "--user",
        "subject-7",
        "--dry-run",
        "--by",
        "dpo@example.com",
    ]);
    assert!(dry.contains("would erase the content of 4 calls"), "{dry}");
    assert!(lake_holds(lake_dir, "private matter number 3 of subject-7"));
    let done = ledger(&[
        "erase",
        "--lake",
        &lake,
        "--user",
        "subject-7",
        "--by",
        "dpo@example.com",
    ]);
    assert!(done.contains("erased the content of 4 calls"), "{done}");

    // Readers see it at once; the numbers are unchanged.
    assert_eq!(sql(&lake, totals), before);
    let left = sql(
        &lake,
        "SELECT count(*) AS n FROM calls WHERE end_user = 'subject-7' AND prompt_text IS NULL AND response_text IS NULL",
    );
    assert_eq!(left, vec![json!({"n": 4})]);
    let others = sql(
        &lake,
        "SELECT count(*) AS n FROM calls WHERE prompt_text LIKE '%someone-else%'",
    );
    assert_eq!(others, vec![json!({"n": 8})]);
    // history says who erased what.
    let h: Vec<Value> = serde_json::from_str(&ledger(&[
        "history", "--lake", &lake, "--table", "calls", "--format", "json",
    ]))
    .unwrap();
    let erase = h.iter().find(|e| e["operation"] == "erase").unwrap();
    let details: Value = serde_json::from_str(erase["details"].as_str().unwrap()).unwrap();
    assert_eq!(details["by"], "dpo@example.com");
    assert_eq!(details["calls"], 4);
    // Erasing again finds nothing left to erase.
    let again = ledger(&["erase", "--lake", &lake, "--user", "subject-7"]);
    assert!(again.contains("content of 0 calls"), "{again}");

    // The old files still hold it until a vacuum past the retention.
    assert!(lake_holds(lake_dir, "private matter number 3 of subject-7"));
    ledger(&["vacuum", "--lake", &lake, "--retain", "0s"]);
    for i in [0, 3, 6, 9] {
        let needle = format!("private matter number {i} of subject-7");
        assert!(!lake_holds(lake_dir, &needle), "{needle} survived");
        assert!(!lake_holds(lake_dir, &format!("answer for subject-7 {i}")));
    }
    assert!(lake_holds(
        lake_dir,
        "private matter number 1 of someone-else"
    ));
    assert_eq!(sql(&lake, totals), before);
    // Erasure loses no call: the audit still passes.
    ledger(&["audit", "--lake", &lake]);
}
