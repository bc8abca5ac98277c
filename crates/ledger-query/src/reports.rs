//! The named reports: SQL files in `queries/`, compiled in.

/// Which range a report covers when the user gives none.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DefaultRange {
    All,
    ThisMonth,
}

#[derive(Debug, Clone, Copy)]
pub struct Report {
    pub name: &'static str,
    pub title: &'static str,
    pub sql: &'static str,
    pub default_range: DefaultRange,
}

macro_rules! report {
    ($name:literal, $title:literal, $range:expr) => {
        Report {
            name: $name,
            title: $title,
            sql: include_str!(concat!("../../../queries/", $name, ".sql")),
            default_range: $range,
        }
    };
}

pub const REPORTS: &[Report] = &[
    report!(
        "token-usage-by-ip-model",
        "R1: token usage by caller IP and model",
        DefaultRange::All
    ),
    report!(
        "prompt-monitoring",
        "R2: prompt monitoring (first choice, prompt tokens)",
        DefaultRange::All
    ),
    report!(
        "usage-by-subscription",
        "R3: token usage by subscription and deployment",
        DefaultRange::All
    ),
    report!(
        "prompts-and-completions",
        "R4: prompts and completions per call",
        DefaultRange::All
    ),
    report!(
        "cost-by-subscription",
        "R5: cost by subscription against a quota (this month by default)",
        DefaultRange::ThisMonth
    ),
    report!(
        "daily-usage",
        "Daily tokens and cost by model, deployment, subscription, product",
        DefaultRange::All
    ),
    report!(
        "top-callers",
        "Top callers by tokens and by cost",
        DefaultRange::All
    ),
    report!(
        "latency-and-errors",
        "Latency percentiles and 429/5xx rates by deployment",
        DefaultRange::All
    ),
    report!(
        "streaming-and-estimates",
        "Share of streamed, estimated and partial calls",
        DefaultRange::All
    ),
];

pub fn find(name: &str) -> Option<&'static Report> {
    REPORTS.iter().find(|r| r.name == name)
}
