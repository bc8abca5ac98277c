//! The worker metrics (being written).
