//! The limits on what one event may make the ledger do, in one place.
//!
//! Every number read from the input that could size a loop or an
//! allocation is checked against one of these before it is used; what
//! goes past a limit is dead-lettered (an event whose structure cannot be
//! trusted) or kept with a warning on its record (content past a cap is
//! dropped, the rest kept). Work per event then stays proportional to the
//! event's size, whatever its numbers say.
//!
//! | limit | value | past it |
//! |---|---|---|
//! | [`MAX_EVENT_BYTES`] bytes of one event | 16 MiB | dead letter, not decoded |
//! | [`MAX_CHUNKS`] body chunks per call (`chunk.count`, `chunk.index`, azure-monitor `sequenceNumber`) | 10,000 | dead letter |
//! | [`MAX_CHOICES`] choices per response (streamed or not), request `n` | 128 | choices dropped, warning |
//! | [`MAX_TOOL_CALLS`] tool calls per choice | 128 | tool calls dropped, warning |
//! | [`DEAD_LETTER_RAW_PREFIX`] raw bytes kept in a dead letter | 1 MiB | prefix kept; length and SHA-256 in the reason |
//!
//! Choice and tool-call indexes are map keys, never vector positions, so an
//! index of 4,000,000,000 costs what an index of 0 costs.

/// Bytes of one event. APIM's `log-to-eventhub` sends at most 200 KB and
/// Event Hubs carries at most 1 MB (20 MB on dedicated clusters' largest
/// setting), so a larger event is not an APIM event: it is dead-lettered
/// without being decoded, which would cost memory and time in proportion
/// to a size no real event has.
pub const MAX_EVENT_BYTES: usize = 16 << 20;

/// Body chunks of one call; a chunk count or index at or past it is refused.
pub const MAX_CHUNKS: u32 = 10_000;

/// Choices of one response (and the request's `n`).
pub const MAX_CHOICES: usize = 128;

/// Tool calls of one choice.
pub const MAX_TOOL_CALLS: usize = 128;

/// Raw bytes a dead letter keeps of its event.
pub const DEAD_LETTER_RAW_PREFIX: usize = 1 << 20;

/// How many of the chunk indexes `0..count` are not among `indexes`, in
/// time proportional to the number of indexes, never to `count`.
pub fn missing_chunks(indexes: impl IntoIterator<Item = u32>, count: u32) -> u32 {
    let mut seen: Vec<u32> = indexes.into_iter().filter(|i| *i < count).collect();
    seen.sort_unstable();
    seen.dedup();
    // `seen` holds distinct indexes below `count`: at most `count` of them.
    count - u32::try_from(seen.len()).unwrap_or(count)
}

/// The warning for content dropped past a cap.
pub(crate) fn dropped(what: &str, dropped: usize, limit: usize) -> String {
    format!("{dropped} {what} past the limit of {limit} dropped")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn missing_chunks_costs_the_parts_not_the_count() {
        assert_eq!(missing_chunks([0, 1, 2], 3), 0);
        assert_eq!(missing_chunks([2, 0, 2], 3), 1);
        assert_eq!(missing_chunks([], 2), 2);
        assert_eq!(missing_chunks([5], 2), 2);
        let t = std::time::Instant::now();
        assert_eq!(missing_chunks([0, 7], u32::MAX), u32::MAX - 2);
        assert!(t.elapsed() < std::time::Duration::from_millis(50));
    }
}
