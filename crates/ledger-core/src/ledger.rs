//! Exactly-once bookkeeping.
