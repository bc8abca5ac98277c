//! Errors, each with the line and column of the text they are about.

use std::fmt;

/// A position in the query text: line and column, both from 1.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Pos {
    pub line: u32,
    pub col: u32,
}

impl fmt::Display for Pos {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "line {}, column {}", self.line, self.col)
    }
}

#[derive(Debug, thiserror::Error)]
pub enum KqlError {
    #[error("syntax error at {pos}: {message}")]
    Syntax { pos: Pos, message: String },
    /// Valid Kusto outside the supported subset: never run differently.
    #[error("unsupported {what} `{name}` at {pos}")]
    Unsupported {
        what: &'static str,
        name: String,
        pos: Pos,
    },
    #[error("at {pos}: {message}")]
    Semantic { pos: Pos, message: String },
    #[error("chart: {0}")]
    Chart(String),
    #[error("query: {0}")]
    DataFusion(#[from] datafusion::error::DataFusionError),
}

impl KqlError {
    pub fn syntax(pos: Pos, message: impl Into<String>) -> KqlError {
        KqlError::Syntax {
            pos,
            message: message.into(),
        }
    }
    pub fn semantic(pos: Pos, message: impl Into<String>) -> KqlError {
        KqlError::Semantic {
            pos,
            message: message.into(),
        }
    }
    pub fn unsupported(what: &'static str, name: impl Into<String>, pos: Pos) -> KqlError {
        KqlError::Unsupported {
            what,
            name: name.into(),
            pos,
        }
    }
}
