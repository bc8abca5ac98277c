//! The `aoai-ledger` command's library: the ingest of files into the
//! sinks, the progress display and the output formats. The binary
//! (`main.rs`) parses arguments and builds configuration; the work is in
//! `ledger-pipeline` (driving), `ledger-lake` (storing) and `ledger-query`
//! (reading).

pub mod ingest;
pub mod output;
pub mod progress;
pub mod send;
