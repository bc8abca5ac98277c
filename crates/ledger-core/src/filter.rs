//! Which calls a compliance search or an erasure selects. The filter says
//! once which columns each criterion looks at and how it matches
//! ([`CallFilter::conditions`]); the query layer turns that into a
//! DataFusion predicate, the lake's erasure into a check on records.
//!
//! ```
//! use ledger_core::CallRecord;
//! use ledger_core::filter::CallFilter;
//!
//! let filter = CallFilter { user: Some("alice".into()), text: Some("INVOICE".into()), ..Default::default() };
//! let call = CallRecord {
//!     end_user: Some("alice".into()),
//!     prompt_text: Some(r#"[{"role":"user","content":"my invoice"}]"#.into()),
//!     ..Default::default()
//! };
//! assert!(filter.matches(&call));
//! ```

use crate::columns::{CALL_COLUMNS, Read};
use crate::model::CallRecord;

/// A call must match every criterion given. Values match exactly, except
/// `text`, a case-insensitive substring of the prompt or the response.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct CallFilter {
    pub caller_ip: Option<String>,
    /// The subscription id or name.
    pub subscription: Option<String>,
    /// The APIM user id or the request body's `user`.
    pub user: Option<String>,
    pub app_id: Option<String>,
    /// The model as reported, or its family (`model_key`).
    pub model: Option<String>,
    pub deployment: Option<String>,
    pub request_id: Option<String>,
    pub text: Option<String>,
}

/// How a criterion compares a column's value.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Match<'a> {
    Exact(&'a str),
    /// Case-insensitive substring.
    Contains(&'a str),
}

/// One criterion: true when any of its columns matches.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Condition<'a> {
    pub columns: &'static [&'static str],
    pub matching: Match<'a>,
}

impl CallFilter {
    /// The criteria given, each with the columns it looks at.
    pub fn conditions(&self) -> Vec<Condition<'_>> {
        fn exact<'a>(
            columns: &'static [&'static str],
            v: &'a Option<String>,
        ) -> Option<Condition<'a>> {
            v.as_deref().map(|v| Condition {
                columns,
                matching: Match::Exact(v),
            })
        }
        [
            exact(&["caller_ip"], &self.caller_ip),
            exact(
                &["subscription_id", "subscription_name"],
                &self.subscription,
            ),
            exact(&["user_id", "end_user"], &self.user),
            exact(&["app_id"], &self.app_id),
            exact(&["model", "model_key"], &self.model),
            exact(&["deployment"], &self.deployment),
            exact(&["request_id"], &self.request_id),
            self.text.as_deref().map(|t| Condition {
                columns: &["prompt_text", "response_text"],
                matching: Match::Contains(t),
            }),
        ]
        .into_iter()
        .flatten()
        .collect()
    }

    /// True when no criterion is given: every call matches.
    pub fn is_empty(&self) -> bool {
        self.conditions().is_empty()
    }

    /// Whether a record matches every criterion.
    pub fn matches(&self, record: &CallRecord) -> bool {
        self.conditions().iter().all(|c| {
            c.columns.iter().any(|name| {
                let value = CALL_COLUMNS
                    .iter()
                    .find(|col| col.name == *name)
                    .and_then(|col| match col.read {
                        Read::Text(read) => read(record),
                        _ => None,
                    });
                match (value, c.matching) {
                    (Some(v), Match::Exact(want)) => v == want,
                    (Some(v), Match::Contains(want)) => {
                        v.to_lowercase().contains(&want.to_lowercase())
                    }
                    (None, _) => false,
                }
            })
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_named_column_is_a_text_column() {
        let all = CallFilter {
            caller_ip: Some("x".into()),
            subscription: Some("x".into()),
            user: Some("x".into()),
            app_id: Some("x".into()),
            model: Some("x".into()),
            deployment: Some("x".into()),
            request_id: Some("x".into()),
            text: Some("x".into()),
        };
        for c in all.conditions() {
            for name in c.columns {
                let col = CALL_COLUMNS.iter().find(|col| col.name == *name);
                assert!(
                    matches!(col.map(|c| &c.read), Some(Read::Text(_))),
                    "{name}"
                );
            }
        }
    }

    #[test]
    fn criteria_all_match_and_any_column_does() {
        let r = CallRecord {
            subscription_name: Some("finance".into()),
            model_key: Some("gpt-4o".into()),
            ..Default::default()
        };
        let f = |subscription: &str, model: &str| CallFilter {
            subscription: Some(subscription.into()),
            model: Some(model.into()),
            ..Default::default()
        };
        assert!(f("finance", "gpt-4o").matches(&r));
        assert!(!f("finance", "gpt-4").matches(&r));
        assert!(CallFilter::default().matches(&r));
    }
}
