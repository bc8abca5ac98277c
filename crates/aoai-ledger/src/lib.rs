//! The `aoai-ledger` command's library: the file source, the ingest driver
//! and output formats. The binary (`main.rs`) is only argument parsing.

pub mod ingest;
pub mod output;
pub mod source;
