//! Builds the canonical record.
