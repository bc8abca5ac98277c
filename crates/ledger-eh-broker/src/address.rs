//! What a link address and a start filter mean.
//!
//! Clients write `amqps://host/hub/ConsumerGroups/cg/Partitions/0` even over
//! plain TCP, so addresses are read by their path only, and the fixed words
//! (`ConsumerGroups`, `Partitions`) are matched without regard to case.

/// The node a link attaches to.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Node {
    /// `$cbs`: put-token requests.
    Cbs,
    /// `$management`: READ requests.
    Management,
    /// A partition reader: `hub/ConsumerGroups/cg/Partitions/id`.
    Consumer {
        hub: String,
        consumer_group: String,
        partition: String,
    },
    /// A producer: `hub`, or `hub/Partitions/id`.
    Producer {
        hub: String,
        partition: Option<String>,
    },
    /// A reply address chosen by a client (`rust_amqp_cbs`, a UUID, …).
    Other(String),
}

/// Path segments of an address, scheme and host removed.
pub fn path_segments(address: &str) -> Vec<String> {
    let path = match address.split_once("://") {
        Some((_, rest)) => rest.split_once('/').map_or("", |(_, p)| p),
        None => address,
    };
    path.split('/')
        .filter(|s| !s.is_empty())
        .map(percent_decode)
        .collect()
}

/// Reads an address as a node.
pub fn parse_node(address: &str) -> Node {
    let segments = path_segments(address);
    let eq = |s: &String, word: &str| s.eq_ignore_ascii_case(word);
    match segments.as_slice() {
        [one] if one == "$cbs" => Node::Cbs,
        [one] if one == "$management" => Node::Management,
        [_, last] if last == "$management" => Node::Management,
        [hub, cg_word, cg, p_word, id]
            if eq(cg_word, "consumergroups") && eq(p_word, "partitions") =>
        {
            Node::Consumer {
                hub: hub.clone(),
                consumer_group: cg.clone(),
                partition: id.clone(),
            }
        }
        [hub, p_word, id] if eq(p_word, "partitions") => Node::Producer {
            hub: hub.clone(),
            partition: Some(id.clone()),
        },
        [hub] => Node::Producer {
            hub: hub.clone(),
            partition: None,
        },
        _ => Node::Other(address.to_owned()),
    }
}

/// The entity path a token must cover for a node: lowercased, no scheme or
/// host (`hub/consumergroups/$default/partitions/0`).
pub fn entity_path(address: &str) -> String {
    path_segments(address)
        .iter()
        .map(|s| s.to_ascii_lowercase())
        .collect::<Vec<_>>()
        .join("/")
}

fn percent_decode(segment: &str) -> String {
    if !segment.contains('%') {
        return segment.to_owned();
    }
    let bytes = segment.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] == b'%'
            && i + 2 < bytes.len()
            && let Some(v) = std::str::from_utf8(&bytes[i + 1..i + 3])
                .ok()
                .and_then(|h| u8::from_str_radix(h, 16).ok())
        {
            out.push(v);
            i += 3;
            continue;
        }
        out.push(bytes[i]);
        i += 1;
    }
    String::from_utf8_lossy(&out).into_owned()
}

/// Where a reader starts.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum StartPosition {
    Earliest,
    Latest,
    Offset { value: i64, inclusive: bool },
    Sequence { value: i64, inclusive: bool },
    EnqueuedTime { unix_ms: i64, inclusive: bool },
}

/// Why a start filter was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error(
    "unsupported start filter {0:?}: expected amqp.annotation.x-opt-offset|x-opt-sequence-number|x-opt-enqueued-time > or >= 'value'"
)]
pub struct FilterError(pub String);

/// Parses a selector expression such as `amqp.annotation.x-opt-offset > '-1'`.
pub fn parse_selector(expression: &str) -> Result<StartPosition, FilterError> {
    let bad = || FilterError(expression.chars().take(200).collect());
    let text = expression.trim();
    let rest = text.strip_prefix("amqp.annotation.").ok_or_else(bad)?;
    let (field, rest) = [
        "x-opt-offset",
        "x-opt-sequence-number",
        "x-opt-enqueued-time",
    ]
    .iter()
    .find_map(|f| rest.strip_prefix(f).map(|r| (*f, r)))
    .ok_or_else(bad)?;
    let rest = rest.trim_start();
    let (inclusive, rest) = if let Some(r) = rest.strip_prefix(">=") {
        (true, r)
    } else if let Some(r) = rest.strip_prefix('>') {
        (false, r)
    } else {
        return Err(bad());
    };
    let value = rest
        .trim()
        .strip_prefix('\'')
        .and_then(|r| r.strip_suffix('\''))
        .ok_or_else(bad)?;
    let number = || value.parse::<i64>().map_err(|_| bad());
    match field {
        "x-opt-offset" if value == "@latest" => Ok(StartPosition::Latest),
        "x-opt-offset" if value == "-1" && !inclusive => Ok(StartPosition::Earliest),
        "x-opt-offset" => Ok(StartPosition::Offset {
            value: number()?,
            inclusive,
        }),
        "x-opt-sequence-number" => Ok(StartPosition::Sequence {
            value: number()?,
            inclusive,
        }),
        _ => Ok(StartPosition::EnqueuedTime {
            unix_ms: number()?,
            inclusive,
        }),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn addresses_are_read_by_path_without_regard_to_case() {
        assert_eq!(
            parse_node("amqps://localhost/eh1/ConsumerGroups/$Default/Partitions/3"),
            Node::Consumer {
                hub: "eh1".into(),
                consumer_group: "$Default".into(),
                partition: "3".into()
            }
        );
        assert_eq!(
            parse_node("amqp://h:5672/eh1/consumergroups/cg/partitions/0"),
            Node::Consumer {
                hub: "eh1".into(),
                consumer_group: "cg".into(),
                partition: "0".into()
            }
        );
        assert_eq!(
            parse_node("amqps://h/eh1"),
            Node::Producer {
                hub: "eh1".into(),
                partition: None
            }
        );
        assert_eq!(
            parse_node("amqps://h/eh1/Partitions/1"),
            Node::Producer {
                hub: "eh1".into(),
                partition: Some("1".into())
            }
        );
        assert_eq!(parse_node("$cbs"), Node::Cbs);
        assert_eq!(parse_node("amqps://h/eh1/$management"), Node::Management);
        assert_eq!(parse_node("$management"), Node::Management);
        assert_eq!(
            entity_path("sb://localhost:5672/EH1/ConsumerGroups/%24Default"),
            "eh1/consumergroups/$default"
        );
    }

    #[test]
    fn every_start_filter_form_parses() {
        use StartPosition::*;
        let cases = [
            ("amqp.annotation.x-opt-offset > '-1'", Earliest),
            ("amqp.annotation.x-opt-offset > '@latest'", Latest),
            (
                "amqp.annotation.x-opt-offset >= '42'",
                Offset {
                    value: 42,
                    inclusive: true,
                },
            ),
            (
                "amqp.annotation.x-opt-offset >'42'",
                Offset {
                    value: 42,
                    inclusive: false,
                },
            ),
            (
                "amqp.annotation.x-opt-sequence-number > '7'",
                Sequence {
                    value: 7,
                    inclusive: false,
                },
            ),
            (
                "amqp.annotation.x-opt-sequence-number >= '7'",
                Sequence {
                    value: 7,
                    inclusive: true,
                },
            ),
            (
                "amqp.annotation.x-opt-enqueued-time > '1700000000000'",
                EnqueuedTime {
                    unix_ms: 1_700_000_000_000,
                    inclusive: false,
                },
            ),
        ];
        for (text, want) in cases {
            assert_eq!(parse_selector(text), Ok(want), "{text}");
        }
        assert!(parse_selector("amqp.annotation.x-opt-offset < '1'").is_err());
        assert!(parse_selector("drop table").is_err());
    }
}
