//! The fuzz targets (`ledger_core::fuzzing`, run by libFuzzer from `fuzz/`)
//! replayed deterministically on stable Rust, as CI runs them: each
//! target's seed corpus (from the fixtures), the regression inputs earlier
//! runs found (`fuzz/regressions/TARGET/`), then a fixed count of mutants
//! from a fixed seed.

use std::path::{Path, PathBuf};

use ledger_core::fuzzing::{self, Target};

const ROOT: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/../..");

/// Mutants per target: with the seeds, a few seconds per target in debug.
const MUTANTS: usize = 1_000;
const SEED: u64 = 0x1ed6_e7f0_2026_0007;
/// Corpus lines longer than this are left out of the seeds: the large
/// events are the hostile ingest test's, and debug builds are slow.
const MAX_SEED_LINE: usize = 16 * 1024;

fn fixture_lines() -> Vec<Vec<u8>> {
    let fixtures = Path::new(ROOT).join("tests/fixtures");
    let mut files: Vec<PathBuf> = std::fs::read_dir(fixtures.join("dialects"))
        .expect("dialect fixtures")
        .map(|e| e.expect("entry").path())
        .filter(|p| p.extension().is_some_and(|e| e == "jsonl"))
        .collect();
    files.sort();
    files.push(fixtures.join("sample-events.jsonl"));
    let mut lines: Vec<Vec<u8>> = Vec::new();
    for f in &files {
        let bytes = std::fs::read(f).expect("fixture");
        lines.extend(
            bytes
                .split(|b| *b == b'\n')
                .filter(|l| !l.is_empty())
                .map(<[u8]>::to_vec),
        );
    }
    // A share of the shared corpus: every dialect and scenario again.
    let corpus = std::fs::read(fixtures.join("corpus/corpus.jsonl")).expect("corpus");
    lines.extend(
        corpus
            .split(|b| *b == b'\n')
            .filter(|l| !l.is_empty() && l.len() <= MAX_SEED_LINE)
            .step_by(8)
            .map(<[u8]>::to_vec),
    );
    lines
}

fn regressions(target: Target) -> Vec<Vec<u8>> {
    let dir = Path::new(ROOT).join("fuzz/regressions").join(target.name());
    let Ok(entries) = std::fs::read_dir(&dir) else {
        return Vec::new();
    };
    let mut paths: Vec<PathBuf> = entries.map(|e| e.expect("entry").path()).collect();
    paths.sort();
    paths
        .iter()
        .map(|p| std::fs::read(p).expect("regression input"))
        .collect()
}

fn replay(target: Target) {
    let mut seeds = fuzzing::seeds(target, &fixture_lines());
    assert!(seeds.len() > 10, "{}: {} seeds", target.name(), seeds.len());
    seeds.extend(regressions(target));
    let artifacts = std::env::temp_dir().join("aoai-ledger-fuzz-failures");
    fuzzing::replay(target, &seeds, MUTANTS, SEED, Some(&artifacts));
}

#[test]
fn decode() {
    replay(Target::Decode);
}

#[test]
fn sse() {
    replay(Target::Sse);
}

#[test]
fn json_repair() {
    replay(Target::JsonRepair);
}

#[test]
fn scrub() {
    replay(Target::Scrub);
}

#[test]
fn ledger() {
    replay(Target::Ledger);
}

/// Writes each target's seed corpus to `$FUZZ_CORPUS_DIR/TARGET/` for
/// libFuzzer (`fuzz/run`); not a check.
#[test]
#[ignore = "writes the libFuzzer seed corpus; run by fuzz/run"]
fn write_seed_corpus() {
    let out = PathBuf::from(std::env::var("FUZZ_CORPUS_DIR").expect("FUZZ_CORPUS_DIR"));
    let lines = fixture_lines();
    for target in Target::ALL {
        let dir = out.join(target.name());
        std::fs::create_dir_all(&dir).expect("corpus dir");
        let mut seeds = fuzzing::seeds(target, &lines);
        seeds.extend(regressions(target));
        for (i, s) in seeds.iter().enumerate() {
            std::fs::write(dir.join(format!("seed-{i:05}")), s).expect("seed file");
        }
    }
}

#[test]
#[ignore = "debug"]
fn debug_one() {
    let input = std::fs::read(std::env::var("FUZZ_INPUT").unwrap()).unwrap();
    let planted = fuzzing::plant(&input);
    let out = ledger_core::redact::scrub_raw_bytes(&planted);
    let s = String::from_utf8_lossy(&out.bytes);
    let at = s.find(fuzzing::PLANTED).unwrap();
    println!(
        "partly={} ...{}...",
        out.partly_masked,
        &s[at.saturating_sub(300)..(at + 100).min(s.len())]
    );
}
