//! The HTTP endpoints (being written).
