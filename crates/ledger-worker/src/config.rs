//! The worker configuration (being written).
