//! ledger-pipeline drives raw events from a [`Source`] through the
//! [`Ledger`](ledger_core::ledger::Ledger) into every [`Sink`], exactly once.
//!
//! The path of one event: a source ([`FileSource`], later Event Hubs)
//! yields it with its position; the driver ([`Pipeline`]) feeds it to the
//! ledger, which decodes it (`ledger_core::dialects`), joins it with the
//! other fragments of its call (`ledger_core::correlate`) and, once the call
//! is whole or timed out, assembles the record (`ledger_core::assemble`).
//! The driver cuts commits by size, count and time, and gives each sink
//! (the lake in `ledger-lake`, the relational database) the part of each
//! commit it lacks, keyed by the one [`Checkpoint`](ledger_core::Checkpoint)
//! type. Queries then read what the sinks stored (`ledger-query`).
//!
//! The contracts are written on the traits: [`Source`] and [`Sink`].
//! Configuration is typed, one struct per component ([`config`]), and
//! secrets come only from the environment.
//!
//! ```
//! # tokio::runtime::Runtime::new().unwrap().block_on(async {
//! use ledger_pipeline::{CommitPolicy, FileSource, MemorySink, Pipeline, Quiet, Sink};
//!
//! let capture = concat!(
//!     r#"{"schema":"ledger/v1","kind":"request","requestId":"r1","body":"{}"}"#, "\n",
//!     r#"{"schema":"ledger/v1","kind":"response","requestId":"r1","status":200,"body":"{}"}"#, "\n",
//! );
//! let mut source = FileSource::from_reader("capture", std::io::Cursor::new(capture)).unwrap();
//! let mut sink = MemorySink::new("memory");
//! let pipeline = Pipeline::new(Default::default(), CommitPolicy::default());
//! let summary = pipeline
//!     .run(&mut source, &mut [&mut sink as &mut dyn Sink], &mut Quiet)
//!     .await
//!     .unwrap();
//! assert_eq!((summary.events, summary.calls_written), (2, 1));
//! assert_eq!(sink.records[0].request_id, "r1");
//! # });
//! ```

pub mod config;
mod driver;
pub mod file;
pub mod memory;
pub mod sink;
pub mod source;

pub use config::{CommitPolicy, LedgerSettings, Secrets};
pub use driver::{Observer, Pipeline, PipelineError, Quiet, Summary};
pub use file::FileSource;
pub use memory::MemorySink;
pub use sink::{Sink, SinkError, Written};
pub use source::{ByteProgress, Source, SourceError, SourceItem, StartAt};
