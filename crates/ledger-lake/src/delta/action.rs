//! The Delta log's actions, as the protocol spells them in JSON. Only the
//! actions this lake writes or must honour when reading are modelled; a
//! line holding any other action (`cdc`, `checkpointMetadata`, …) is read
//! and ignored, as the protocol allows for writers that do not use them.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

/// One line of a commit file, or one row of a classic checkpoint: exactly
/// one field is set.
#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct Action {
    #[serde(skip_serializing_if = "Option::is_none")]
    pub protocol: Option<Protocol>,
    #[serde(rename = "metaData", skip_serializing_if = "Option::is_none")]
    pub metadata: Option<Metadata>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub add: Option<Add>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub remove: Option<Remove>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub txn: Option<Txn>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub domain_metadata: Option<DomainMetadata>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub commit_info: Option<serde_json::Value>,
}

/// `Action::from(add)` and the like: an action line holding just that.
macro_rules! action_from {
    ($($ty:ident => $field:ident),* $(,)?) => {$(
        impl From<$ty> for Action {
            fn from(v: $ty) -> Self {
                Action {
                    $field: Some(v),
                    ..Default::default()
                }
            }
        }
    )*};
}

action_from!(
    Protocol => protocol,
    Metadata => metadata,
    Add => add,
    Remove => remove,
    Txn => txn,
    DomainMetadata => domain_metadata,
);

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
#[serde(rename_all = "camelCase")]
pub struct Protocol {
    pub min_reader_version: i32,
    pub min_writer_version: i32,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reader_features: Option<Vec<String>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub writer_features: Option<Vec<String>>,
}

impl Protocol {
    /// What this lake writes: reader version 1 (every reader, no reader
    /// feature), writer version 7 with the one feature it uses,
    /// `domainMetadata`, where each partition's checkpoint lives.
    pub fn ours() -> Protocol {
        Protocol {
            min_reader_version: 1,
            min_writer_version: 7,
            reader_features: None,
            writer_features: Some(vec![DOMAIN_METADATA_FEATURE.to_string()]),
        }
    }

    /// Why this writer may not write a table with this protocol, if it may not.
    pub fn unsupported_by_writer(&self) -> Option<String> {
        if self.min_reader_version > 1 {
            return Some(format!(
                "the table needs reader version {} (this ledger reads version 1)",
                self.min_reader_version
            ));
        }
        let known = [DOMAIN_METADATA_FEATURE, "appendOnly", "invariants"];
        match self.min_writer_version {
            ..=2 => None,
            7 => self
                .writer_features
                .iter()
                .flatten()
                .find(|f| !known.contains(&f.as_str()))
                .map(|f| format!("the table uses writer feature `{f}`")),
            v => Some(format!("the table needs writer version {v}")),
        }
    }
}

pub const DOMAIN_METADATA_FEATURE: &str = "domainMetadata";

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct Metadata {
    pub id: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub description: Option<String>,
    pub format: Format,
    pub schema_string: String,
    pub partition_columns: Vec<String>,
    #[serde(default)]
    pub configuration: BTreeMap<String, Option<String>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub created_time: Option<i64>,
}

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
pub struct Format {
    pub provider: String,
    #[serde(default)]
    pub options: BTreeMap<String, Option<String>>,
}

impl Default for Format {
    fn default() -> Self {
        Format {
            provider: "parquet".into(),
            options: BTreeMap::new(),
        }
    }
}

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
#[serde(rename_all = "camelCase")]
pub struct Add {
    /// Relative to the table root, URL-encoded as the protocol says.
    pub path: String,
    pub partition_values: BTreeMap<String, Option<String>>,
    pub size: i64,
    pub modification_time: i64,
    pub data_change: bool,
    /// JSON: `numRecords`, `minValues`, `maxValues`, `nullCount`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub stats: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tags: Option<BTreeMap<String, Option<String>>>,
}

impl Add {
    /// The `remove` action that takes this file out of the table at `now`
    /// (ms since the epoch).
    pub fn removal(&self, now: i64) -> Remove {
        Remove {
            path: self.path.clone(),
            deletion_timestamp: Some(now),
            data_change: true,
            extended_file_metadata: None,
            partition_values: Some(self.partition_values.clone()),
            size: Some(self.size),
        }
    }
}

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
#[serde(rename_all = "camelCase")]
pub struct Remove {
    pub path: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub deletion_timestamp: Option<i64>,
    pub data_change: bool,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub extended_file_metadata: Option<bool>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub partition_values: Option<BTreeMap<String, Option<String>>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub size: Option<i64>,
}

/// An application transaction: the idempotence key of a streaming writer.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
#[serde(rename_all = "camelCase")]
pub struct Txn {
    pub app_id: String,
    pub version: i64,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub last_updated: Option<i64>,
}

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
pub struct DomainMetadata {
    pub domain: String,
    /// Opaque to Delta; ours is JSON.
    pub configuration: String,
    pub removed: bool,
}

/// Parses a commit file: one action per non-empty line.
pub fn parse_commit(bytes: &[u8]) -> Result<Vec<Action>, serde_json::Error> {
    bytes
        .split(|b| *b == b'\n')
        .filter(|l| !l.iter().all(u8::is_ascii_whitespace))
        .map(serde_json::from_slice)
        .collect()
}

/// Writes a commit file: one action per line.
pub fn write_commit(actions: &[Action]) -> Result<Vec<u8>, serde_json::Error> {
    let mut out = Vec::new();
    for a in actions {
        serde_json::to_writer(&mut out, a)?;
        out.push(b'\n');
    }
    Ok(out)
}
