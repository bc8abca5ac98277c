//! Fuzz harnesses (feature `fuzzing`): one function per target, each
//! asserting the properties every input must keep, whatever its bytes:
//!
//! - no panic;
//! - work in proportion to the input's size ([`budget`]): no number from
//!   the input may size a loop or an allocation;
//! - no secret planted in the input survives scrubbing ([`scrub`], and the
//!   dead letters of [`ledger`]).
//!
//! The same functions serve libFuzzer (the `fuzz/` workspace, under
//! cargo-fuzz or its `run` script) and the deterministic replay CI runs on
//! stable Rust ([`Mutator`], [`replay`]): the seed corpus, then a fixed
//! count of mutants from a fixed seed.

use std::time::{Duration, Instant};

use chrono::{TimeZone, Utc};

use crate::ledger::{Ledger, LedgerConfig};
use crate::model::{Position, RawEvent};
use crate::{body, dialects, json_repair, limits, redact};

/// The fuzz targets.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Target {
    /// One event body through dialect detection and decoding (every dialect).
    Decode,
    /// A response body (SSE streams, JSON) rebuilt into one response.
    Sse,
    /// Closing a cut JSON text, as events and bodies use it.
    JsonRepair,
    /// The raw-bytes scrubber, with secrets planted in the input.
    Scrub,
    /// Lines as a stream of events through [`Ledger::process`] and `finish`.
    Ledger,
}

impl Target {
    pub const ALL: [Target; 5] = [
        Target::Decode,
        Target::Sse,
        Target::JsonRepair,
        Target::Scrub,
        Target::Ledger,
    ];

    pub fn name(self) -> &'static str {
        match self {
            Target::Decode => "decode",
            Target::Sse => "sse",
            Target::JsonRepair => "json_repair",
            Target::Scrub => "scrub",
            Target::Ledger => "ledger",
        }
    }

    /// Runs the target's harness on one input.
    pub fn run(self, data: &[u8]) {
        match self {
            Target::Decode => decode(data),
            Target::Sse => sse(data),
            Target::JsonRepair => json_repair(data),
            Target::Scrub => scrub(data),
            Target::Ledger => ledger(data),
        }
    }
}

/// The time an input of `len` bytes may take: a fixed allowance (debug
/// builds on a loaded machine) plus a per-byte one far above what any real
/// event costs. A loop sized by a number from the input blows through it.
pub fn budget(len: usize) -> Duration {
    Duration::from_millis(2_000)
        + Duration::from_micros(20) * u32::try_from(len).unwrap_or(u32::MAX)
}

/// One-time costs (tokenizers, price table, patterns) are not an input's.
fn warm() {
    static WARM: std::sync::Once = std::sync::Once::new();
    WARM.call_once(|| {
        let _ = crate::tokens::count(crate::tokens::Encoding::O200kBase, "warm up");
        let _ = crate::tokens::count(crate::tokens::Encoding::Cl100kBase, "warm up");
        let _ = redact::scrub_raw_bytes(b"{\"api-key\":\"x\"} Authorization: Bearer y");
        let _ = redact::scrub_text("Authorization: Bearer y");
        run_ledger(b"{\"schema\":\"ledger/v1\",\"kind\":\"request\",\"requestId\":\"w\",\"body\":\"{}\"}\n{\"schema\":\"ledger/v1\",\"kind\":\"response\",\"requestId\":\"w\",\"status\":200,\"body\":\"data: {}\\n\\n\"}");
    });
}

/// CPU time this thread has run, where Linux tells it (scheduler stats,
/// in nanoseconds), else wall time: a loaded machine (CI, a fuzzer at the
/// lowest priority) must not pass for slow code.
fn cpu_time() -> Duration {
    static START: std::sync::LazyLock<Instant> = std::sync::LazyLock::new(Instant::now);
    std::fs::read_to_string("/proc/thread-self/schedstat")
        .ok()
        .and_then(|s| s.split_whitespace().next()?.parse::<u64>().ok())
        .map_or_else(|| START.elapsed(), Duration::from_nanos)
}

/// Runs `f`, asserting it stays within the input's [`budget`].
fn timed<T>(what: &str, len: usize, f: impl FnOnce() -> T) -> T {
    warm();
    let t = cpu_time();
    let out = f();
    let took = cpu_time().saturating_sub(t);
    assert!(
        took <= budget(len),
        "{what}: {len} bytes took {took:?}, over the budget of {:?}",
        budget(len)
    );
    out
}

/// Dialect decoding: whatever the event, chunk indexes and counts stay
/// within their limit (they size work later).
pub fn decode(data: &[u8]) {
    let decoded = timed("decode", data.len(), || dialects::decode_event(data));
    let Ok(decoded) = decoded else { return };
    for f in &decoded.fragments {
        for b in [
            &f.request_body,
            &f.response_body,
            &f.backend_request_body,
            &f.backend_response_body,
        ]
        .into_iter()
        .flatten()
        {
            assert!(b.index < limits::MAX_CHUNKS, "chunk index {}", b.index);
            assert!(
                b.count.is_none_or(|c| c <= limits::MAX_CHUNKS),
                "chunk count {:?}",
                b.count
            );
        }
    }
}

/// A response body, SSE or JSON: choices and tool calls stay within their
/// limits, and rendering the equivalent body works.
pub fn sse(data: &[u8]) {
    let text = String::from_utf8_lossy(data);
    let r = timed("sse", data.len(), || {
        let r = body::parse_response(&text);
        let _ = r.to_json(r.usage.as_ref());
        r
    });
    assert!(r.choices.len() <= limits::MAX_CHOICES);
    assert!(
        r.choices
            .iter()
            .all(|c| c.tool_calls.len() <= limits::MAX_TOOL_CALLS)
    );
}

/// Closing cut JSON: a whole JSON text is kept whole, and a cut of one,
/// closed as a body, is JSON again.
pub fn json_repair(data: &[u8]) {
    let text = String::from_utf8_lossy(data);
    timed("json_repair", data.len(), || {
        let _ = json_repair::close_event(&text);
        let _ = json_repair::repair(&text);
        if serde_json::from_str::<serde_json::Value>(&text).is_err() {
            return;
        }
        if let Some(c) = json_repair::close_event(&text) {
            assert_eq!(c.cut_key, None, "a whole text is not cut");
        }
        // Cuts at eight points of the text, on character boundaries.
        for k in 1..8 {
            let mut at = text.len() * k / 8;
            while !text.is_char_boundary(at) {
                at -= 1;
            }
            if let Some(c) = json_repair::close(&text[..at], json_repair::BODY) {
                assert!(
                    serde_json::from_str::<serde_json::Value>(&c.text).is_ok(),
                    "a cut at {at} closed into invalid JSON: {}",
                    c.text
                );
            }
        }
    });
}

/// The secret value every harness plants: long and key-like, as a real
/// key is (the scrubber masks key-like runs where bytes are not JSON).
pub const PLANTED: &str = "SECRETq7Zt4Kp9Wm2Xv8Rb3Ny6Lc1Hd5Fg0J";

/// Shapes a secret takes in the wild; `{}` is the secret.
const SHAPES: [&str; 8] = [
    r#""api-key":"{}""#,
    r#""Ocp-Apim-Subscription-Key": "{}""#,
    "Authorization: Bearer {}",
    "AccountKey={};EndpointSuffix=core.windows.net",
    "https://h/x?sv=2024&sig={}&se=1",
    r#"{"name":"api-key","value":"{}"}"#,
    r#""headers":{"API-KEY":["{}"]}"#,
    "SharedAccessKey={}",
];

/// `data` with a secret planted at a point the data itself picks (its
/// first two bytes), in a shape its third picks.
pub fn plant(data: &[u8]) -> Vec<u8> {
    let pick = |i: usize| data.get(i).copied().map_or(0, usize::from);
    let at = ((pick(0) << 8) | pick(1)) % (data.len() + 1);
    let shape = SHAPES[pick(2) % SHAPES.len()].replace("{}", PLANTED);
    let mut out = Vec::with_capacity(data.len() + shape.len());
    out.extend_from_slice(&data[..at]);
    out.extend_from_slice(shape.as_bytes());
    out.extend_from_slice(&data[at..]);
    out
}

fn contains(hay: &[u8], needle: &[u8]) -> bool {
    hay.windows(needle.len()).any(|w| w == needle)
}

/// Whether the input carries the secret itself: a fuzzer learns the
/// constant and writes it anywhere (in a key's name, in prose), where it
/// is not a secret the scrubber could know; only the planted copy counts.
fn carries_secret(data: &[u8]) -> bool {
    contains(data, PLANTED.as_bytes())
}

/// The scrubber: a planted secret never survives, wherever it lands.
pub fn scrub(data: &[u8]) {
    let input = plant(data);
    let out = timed("scrub", input.len(), || redact::scrub_raw_bytes(&input));
    assert!(
        carries_secret(data) || !contains(&out.bytes, PLANTED.as_bytes()),
        "planted secret survived: {}",
        String::from_utf8_lossy(&out.bytes)
    );
}

/// Events a [`ledger`] input may hold: more are one event.
const MAX_EVENTS: usize = 64;

/// The lines of `data` as a stream of events through one ledger, a secret
/// planted: it finishes, every event is accounted for, and no dead letter
/// keeps the secret.
pub fn ledger(data: &[u8]) {
    let input = plant(data);
    let commits = timed("ledger", input.len(), || run_ledger(&input));
    if carries_secret(data) {
        return;
    }
    for c in &commits {
        for d in &c.dead_letters {
            assert!(
                !contains(&d.item.raw, PLANTED.as_bytes()) && !d.item.reason.contains(PLANTED),
                "planted secret in a dead letter: {} / {}",
                d.item.reason,
                String::from_utf8_lossy(&d.item.raw)
            );
        }
        for r in &c.records {
            let r = &r.item;
            for field in [&r.url, &r.error, &r.subscription_key_hash] {
                assert!(
                    field.as_deref().is_none_or(|f| !f.contains(PLANTED)),
                    "planted secret in a record: {field:?}"
                );
            }
        }
    }
}

/// The lines of `input` through one ledger, finished.
fn run_ledger(input: &[u8]) -> Vec<crate::Commit> {
    let mut ledger = Ledger::new(LedgerConfig::default()).with_source("fuzz");
    let t0 = Utc
        .timestamp_opt(1_763_600_000, 0)
        .single()
        .unwrap_or_default();
    let mut lines: Vec<&[u8]> = input.splitn(MAX_EVENTS, |b| *b == b'\n').collect();
    lines.retain(|l| !l.is_empty());
    for (i, line) in lines.iter().enumerate() {
        let position = Position {
            partition: "0".into(),
            sequence: i as i64 + 1,
        };
        let event = RawEvent {
            position,
            offset: None,
            enqueued_time: None,
            body: line.to_vec(),
        };
        ledger.process(event, t0);
    }
    assert_eq!(ledger.stats().events, lines.len() as u64);
    ledger.finish()
}

/// Seeds for `target` from fixture event lines: the lines themselves; for
/// [`Target::Sse`] and [`Target::JsonRepair`] also the bodies inside them;
/// for [`Target::Ledger`] runs of consecutive lines, as streams.
pub fn seeds(target: Target, lines: &[Vec<u8>]) -> Vec<Vec<u8>> {
    let bodies = || {
        lines
            .iter()
            .filter_map(|l| serde_json::from_slice::<serde_json::Value>(l).ok())
            .flat_map(|v| {
                let mut out = Vec::new();
                strings(&v, &mut out);
                out
            })
    };
    let mut out: Vec<Vec<u8>> = match target {
        Target::Decode | Target::Scrub => lines.to_vec(),
        Target::Sse => bodies()
            .filter(|s| {
                let t = s.trim_start();
                t.starts_with("data:") || t.starts_with("event:") || t.starts_with('{')
            })
            .map(String::into_bytes)
            .collect(),
        Target::JsonRepair => {
            let mut v = lines.to_vec();
            v.extend(
                bodies()
                    .filter(|s| s.trim_start().starts_with(['{', '[']))
                    .map(String::into_bytes),
            );
            v
        }
        Target::Ledger => lines.chunks(6).map(|c| c.join(&b'\n')).collect(),
    };
    out.sort();
    out.dedup();
    out
}

fn strings(v: &serde_json::Value, out: &mut Vec<String>) {
    match v {
        serde_json::Value::String(s) if s.len() > 16 => out.push(s.clone()),
        serde_json::Value::Array(a) => a.iter().for_each(|x| strings(x, out)),
        serde_json::Value::Object(m) => m.values().for_each(|x| strings(x, out)),
        _ => {}
    }
}

/// Tokens that make inputs interesting to this code: structure, numbers
/// past every limit, field names that size work, SSE framing, odd UTF-8.
const DICTIONARY: &[&[u8]] = &[
    b"{",
    b"}",
    b"[",
    b"]",
    b"\"",
    b"\\",
    b",",
    b":",
    b"null",
    b"true",
    b"\\u0000",
    b"\\ud800",
    b"\\\"",
    b"\xef\xbb\xbf",
    b"\xff",
    b"\xc3",
    b"\xe2\x82",
    b"4294967295",
    b"4294967296",
    b"18446744073709551616",
    b"-1",
    b"1e999",
    b"-0.0",
    b"9999",
    b"\"chunk\":{\"index\":0,\"count\":4294967295}",
    b"\"sequenceNumber\":4000000000",
    b"\"index\":4000000000",
    b"\"n\":1000000000",
    b"\"records\":",
    b"\"body\":",
    b"\"schema\":\"ledger/v1\"",
    b"\"kind\":\"response\"",
    b"data: ",
    b"data: [DONE]\n\n",
    b"event: response.output_text.delta\n",
    b"\n\n",
    b"\"choices\":[{\"index\":0,\"delta\":{\"content\":\"x\"}}]",
    b"\"tool_calls\":[{\"index\":7,\"function\":{\"arguments\":\"{\"}}]",
    b"\"api-key\":",
    b"\"Authorization\":\"Bearer ",
    b"sig=",
    b"AccountKey=",
];

/// A deterministic mutator for stable Rust: libFuzzer's kinds of change
/// (bytes, ranges, splices, dictionary tokens), without its coverage
/// feedback. The same seed gives the same mutants.
#[derive(Debug, Clone)]
pub struct Mutator {
    state: u64,
    /// Inputs grow to at most this many bytes.
    pub max_len: usize,
}

impl Mutator {
    pub fn new(seed: u64) -> Self {
        Mutator {
            state: seed,
            max_len: 64 * 1024,
        }
    }

    /// splitmix64.
    fn next(&mut self) -> u64 {
        self.state = self.state.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.state;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }

    fn below(&mut self, n: usize) -> usize {
        if n == 0 {
            0
        } else {
            (self.next() % n as u64) as usize
        }
    }

    /// A mutant of `input` (one to four changes); `other` is spliced from.
    pub fn mutate(&mut self, input: &[u8], other: &[u8]) -> Vec<u8> {
        let mut v = input.to_vec();
        for _ in 0..1 + self.below(4) {
            self.change(&mut v, other);
        }
        v.truncate(self.max_len);
        v
    }

    fn change(&mut self, v: &mut Vec<u8>, other: &[u8]) {
        let len = v.len();
        match self.below(10) {
            0 if len > 0 => {
                let i = self.below(len);
                v[i] ^= 1 << self.below(8);
            }
            1 if len > 0 => {
                let i = self.below(len);
                v[i] = self.next() as u8;
            }
            2 if len > 0 => {
                let a = self.below(len);
                let n = 1 + self.below((len - a).min(64));
                v.drain(a..a + n);
            }
            3 if len > 0 => {
                let a = self.below(len);
                let n = 1 + self.below((len - a).min(256));
                let piece = v[a..a + n].to_vec();
                let at = self.below(v.len() + 1);
                v.splice(at..at, piece);
            }
            4 | 5 => {
                let token = DICTIONARY[self.below(DICTIONARY.len())];
                let at = self.below(len + 1);
                v.splice(at..at, token.iter().copied());
            }
            6 if !other.is_empty() => {
                let a = self.below(other.len());
                let n = 1 + self.below((other.len() - a).min(1024));
                let at = self.below(len + 1);
                v.splice(at..at, other[a..a + n].iter().copied());
            }
            7 if len > 0 => {
                // A number replaced by an absurd one.
                if let Some(start) = (self.below(len)..len).find(|&i| v[i].is_ascii_digit()) {
                    let end = (start..len)
                        .find(|&i| !v[i].is_ascii_digit())
                        .unwrap_or(len);
                    let n = [
                        &b"4294967295"[..],
                        b"18446744073709551616",
                        b"1000000000",
                        b"-1",
                    ][self.below(4)];
                    v.splice(start..end, n.iter().copied());
                }
            }
            8 if len > 0 => {
                // A cut, as the 200 KB event limit makes them.
                v.truncate(self.below(len));
            }
            9 => {
                // Deep nesting.
                let open = [&b"["[..], b"{\"a\":", b"\"[", b"{\"body\":\"["][self.below(4)];
                let n = 1 + self.below(2_000);
                let at = self.below(len + 1);
                let deep: Vec<u8> = open.iter().copied().cycle().take(open.len() * n).collect();
                v.splice(at..at, deep);
            }
            _ => {
                let i = self.below(len + 1);
                v.insert(i, self.next() as u8);
            }
        }
    }
}

/// Runs `target` on every seed, then on `mutants` mutants of them from a
/// mutator seeded with `seed`. A failing input is named in the panic with
/// its bytes written to `artifacts` (when given), to be kept as a
/// regression seed.
pub fn replay(
    target: Target,
    seeds: &[Vec<u8>],
    mutants: usize,
    seed: u64,
    artifacts: Option<&std::path::Path>,
) {
    let mut m = Mutator::new(seed);
    let run = |input: &[u8]| {
        if let Err(e) = std::panic::catch_unwind(|| target.run(input)) {
            let msg = e
                .downcast_ref::<String>()
                .cloned()
                .or_else(|| e.downcast_ref::<&str>().map(|s| s.to_string()))
                .unwrap_or_default();
            let saved = artifacts.map(|dir| {
                let path = dir.join(format!("{}-{:016x}", target.name(), fnv(input)));
                let _ = std::fs::create_dir_all(dir);
                let _ = std::fs::write(&path, input);
                path.display().to_string()
            });
            panic!(
                "fuzz target {} failed on an input of {} bytes (saved: {saved:?}): {msg}",
                target.name(),
                input.len()
            );
        }
    };
    for s in seeds {
        run(s);
    }
    if seeds.is_empty() {
        return;
    }
    for _ in 0..mutants {
        let a = m.below(seeds.len());
        let b = m.below(seeds.len());
        let input = m.mutate(&seeds[a], &seeds[b]);
        run(&input);
    }
}

/// A stable name for an input's bytes.
fn fnv(data: &[u8]) -> u64 {
    data.iter().fold(0xcbf2_9ce4_8422_2325, |h, b| {
        (h ^ u64::from(*b)).wrapping_mul(0x0100_0000_01b3)
    })
}
