//! The named KQL reports: `.kql` files in `queries/`, compiled in. Each has
//! the name of the SQL report it reproduces (and whose expected rows it is
//! checked against), or its own name when it has no SQL twin.

#[derive(Debug, Clone, Copy)]
pub struct KqlReport {
    pub name: &'static str,
    pub title: &'static str,
    pub kql: &'static str,
}

macro_rules! report {
    ($name:literal, $title:literal) => {
        KqlReport {
            name: $name,
            title: $title,
            kql: include_str!(concat!("../../../queries/", $name, ".kql")),
        }
    };
}

pub const KQL_REPORTS: &[KqlReport] = &[
    report!("token-usage-by-ip-model", "R1 as KQL (seed, as printed)"),
    report!(
        "token-usage-by-ip-model-unfiltered",
        "R1 as KQL, the seed variant without the status and model filters"
    ),
    report!("prompt-monitoring", "R2 as KQL (seed, as printed)"),
    report!("usage-by-subscription", "R3 as KQL (as printed)"),
    report!("prompts-and-completions", "R4 as KQL (as printed)"),
    report!(
        "cost-by-subscription",
        "R5 as KQL: cost by subscription this month against its quota"
    ),
    report!(
        "cost-by-subscription-per-minute",
        "R5's chart variant: cost per minute this month (render timechart)"
    ),
];

pub fn find(name: &str) -> Option<&'static KqlReport> {
    KQL_REPORTS.iter().find(|r| r.name == name)
}
