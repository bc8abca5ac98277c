//! Joins fragments of one call.
