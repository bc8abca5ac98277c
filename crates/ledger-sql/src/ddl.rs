//! The schema, generated from ledger-core's column table: column types per
//! engine, the tables' DDL, and the generated migrations checked in under
//! `schemas/sql/<engine>/` (a test fails when they differ from what this
//! module generates).
//!
//! A column added to the column table later is not folded into the first
//! migration (that would change a migration databases already applied):
//! it is named in [`LATER`] with the migration that adds it, which this
//! module generates as `ALTER TABLE … ADD`.

use ledger_core::columns::{CALL_COLUMNS, Column, DEAD_LETTER_COLUMNS, LogicalType};

/// The SQL engines the sink writes to.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum EngineKind {
    Postgres,
    MsSql,
}

impl EngineKind {
    pub const ALL: [EngineKind; 2] = [EngineKind::Postgres, EngineKind::MsSql];

    /// The directory of its migrations under `schemas/sql/`.
    pub fn dir(self) -> &'static str {
        match self {
            EngineKind::Postgres => "postgres",
            EngineKind::MsSql => "mssql",
        }
    }

    /// A name quoted as an identifier.
    pub fn quote(self, name: &str) -> String {
        match self {
            EngineKind::Postgres => format!("\"{}\"", name.replace('"', "\"\"")),
            EngineKind::MsSql => format!("[{}]", name.replace(']', "]]")),
        }
    }
}

/// Characters (UTF-16 code units, which SQL Server's `nvarchar` counts and
/// which are never fewer than PostgreSQL's characters) a short text column
/// holds. Short text columns are the indexed ones: SQL Server cannot index
/// `nvarchar(max)`, and the primary key (`dialect`, `request_id`) must stay
/// under its 900-byte limit. Longer values are cut, with a warning.
pub const SHORT_TEXT_CHARS: usize = 256;

/// The columns of `calls` that get an index besides the primary key.
pub const INDEXED_CALL_COLUMNS: &[&str] = &[
    "request_time",
    "caller_ip",
    "subscription_id",
    "model",
    "deployment",
];

/// A column of a table this module creates: its name, SQL type per engine
/// and nullability.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SqlColumn {
    pub name: &'static str,
    pub ty: LogicalType,
    pub nullable: bool,
}

impl SqlColumn {
    fn of<R>(c: &Column<R>) -> SqlColumn {
        SqlColumn {
            name: c.name,
            ty: c.ty,
            nullable: c.nullable,
        }
    }
}

/// The SQL type of a logical type.
pub fn sql_type(engine: EngineKind, ty: LogicalType) -> String {
    use EngineKind::*;
    use LogicalType as T;
    match (engine, ty) {
        (Postgres, T::Text) => format!("varchar({SHORT_TEXT_CHARS})"),
        (Postgres, T::LongText | T::Json) => "text".into(),
        (Postgres, T::Int32) => "integer".into(),
        (Postgres, T::Int64) => "bigint".into(),
        (Postgres, T::Float64) => "double precision".into(),
        (Postgres, T::Bool) => "boolean".into(),
        (Postgres, T::Timestamp) => "timestamptz".into(),
        (Postgres, T::Decimal { precision, scale }) => format!("numeric({precision},{scale})"),
        (Postgres, T::Binary) => "bytea".into(),
        (MsSql, T::Text) => format!("nvarchar({SHORT_TEXT_CHARS})"),
        (MsSql, T::LongText | T::Json) => "nvarchar(max)".into(),
        (MsSql, T::Int32) => "int".into(),
        (MsSql, T::Int64) => "bigint".into(),
        (MsSql, T::Float64) => "float".into(),
        (MsSql, T::Bool) => "bit".into(),
        // Microseconds, as the lake keeps them (datetime2(3) would round).
        (MsSql, T::Timestamp) => "datetime2(6)".into(),
        (MsSql, T::Decimal { precision, scale }) => format!("decimal({precision},{scale})"),
        (MsSql, T::Binary) => "varbinary(max)".into(),
    }
}

/// Columns added by a migration after the first: (migration version, its
/// name, the `calls` columns it adds, the `dead_letters` columns it adds).
/// Empty until the column table grows.
pub const LATER: &[(u32, &str, &[&str], &[&str])] = &[];

fn added_later(name: &str, dead_letters: bool) -> bool {
    LATER.iter().any(|(_, _, calls, dead)| {
        if dead_letters {
            dead.contains(&name)
        } else {
            calls.contains(&name)
        }
    })
}

/// The `calls` columns, in table order.
pub fn call_columns() -> Vec<SqlColumn> {
    CALL_COLUMNS.iter().map(SqlColumn::of).collect()
}

/// The `dead_letters` columns, in table order (after the `id` key).
pub fn dead_letter_columns() -> Vec<SqlColumn> {
    DEAD_LETTER_COLUMNS.iter().map(SqlColumn::of).collect()
}

fn column_def(engine: EngineKind, c: &SqlColumn) -> String {
    let null = if c.nullable { "NULL" } else { "NOT NULL" };
    // A flag added later to a table holding rows needs a default.
    format!("{} {} {null}", engine.quote(c.name), sql_type(engine, c.ty))
}

fn columns_block(engine: EngineKind, columns: &[SqlColumn]) -> String {
    columns
        .iter()
        .map(|c| format!("    {}", column_def(engine, c)))
        .collect::<Vec<_>>()
        .join(",\n")
}

/// The text type of the progress tables' key columns: (source, partition)
/// fits SQL Server's 900-byte key limit.
fn key_text(engine: EngineKind, chars: usize) -> String {
    match engine {
        EngineKind::Postgres => format!("varchar({chars})"),
        EngineKind::MsSql => format!("nvarchar({chars})"),
    }
}

fn long_text(engine: EngineKind) -> String {
    sql_type(engine, LogicalType::LongText)
}

fn timestamp(engine: EngineKind) -> String {
    sql_type(engine, LogicalType::Timestamp)
}

/// One generated migration.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Generated {
    pub version: u32,
    pub file_name: String,
    pub sql: String,
}

const HEADER: &str = "-- Generated by ledger-sql (crates/ledger-sql/src/ddl.rs) from ledger-core's column\n-- table. Do not edit: change the column table and add a migration (ddl::LATER).\n";

/// The first migration: every table, with the columns not added later.
fn initial(engine: EngineKind) -> String {
    let q = |n: &str| engine.quote(n);
    let calls: Vec<SqlColumn> = call_columns()
        .into_iter()
        .filter(|c| !added_later(c.name, false))
        .collect();
    let dead: Vec<SqlColumn> = dead_letter_columns()
        .into_iter()
        .filter(|c| !added_later(c.name, true))
        .collect();
    let mut out = String::from(HEADER);
    out.push_str(&format!(
        "\n-- One row per call, keyed as the lake merges: (dialect, request_id).\nCREATE TABLE {} (\n{},\n    CONSTRAINT {} PRIMARY KEY ({}, {})\n);\n",
        q("calls"),
        columns_block(engine, &calls),
        q("pk_calls"),
        q("dialect"),
        q("request_id"),
    ));
    for c in INDEXED_CALL_COLUMNS {
        out.push_str(&format!(
            "CREATE INDEX {} ON {} ({});\n",
            q(&format!("ix_calls_{c}")),
            q("calls"),
            q(c)
        ));
    }
    let id = match engine {
        EngineKind::Postgres => "bigint GENERATED ALWAYS AS IDENTITY",
        EngineKind::MsSql => "bigint IDENTITY(1,1)",
    };
    out.push_str(&format!(
        "\n-- One row per unusable event (or part of one): written once, by the\n-- commit that owns it, so no natural key is needed.\nCREATE TABLE {} (\n    {} {id} NOT NULL,\n{},\n    CONSTRAINT {} PRIMARY KEY ({})\n);\nCREATE INDEX {} ON {} ({}, {});\n",
        q("dead_letters"),
        q("id"),
        columns_block(engine, &dead),
        q("pk_dead_letters"),
        q("id"),
        q("ix_dead_letters_event"),
        q("dead_letters"),
        q("eh_partition"),
        q("eh_sequence"),
    ));
    let (src, part) = (key_text(engine, 300), key_text(engine, 128));
    let ts = timestamp(engine);
    let text = long_text(engine);
    out.push_str(&format!(
        "\n-- The newest checkpoint per source partition: checked and set in the\n-- transaction that writes the rows (the fence).\nCREATE TABLE {} (\n    {} {src} NOT NULL,\n    {} {part} NOT NULL,\n    {} bigint NOT NULL,\n    {} bigint NOT NULL,\n    {} {text} NOT NULL,\n    {} {ts} NULL,\n    {} {ts} NOT NULL,\n    CONSTRAINT {} PRIMARY KEY ({}, {})\n);\n",
        q("ingest_progress"),
        q("source"),
        q("partition"),
        q("last"),
        q("resume"),
        q("pending"),
        q("clock"),
        q("updated_at"),
        q("pk_ingest_progress"),
        q("source"),
        q("partition"),
    ));
    out.push_str(&format!(
        "\n-- Every commit's range and how its events were accounted for (audit).\nCREATE TABLE {} (\n    {} {src} NOT NULL,\n    {} {part} NOT NULL,\n    {} bigint NOT NULL,\n    {} bigint NOT NULL,\n    {} bigint NOT NULL,\n    {} bigint NOT NULL,\n    {} bigint NOT NULL,\n    {} bigint NOT NULL,\n    {} {text} NOT NULL,\n    {} {text} NULL,\n    {} {} NOT NULL,\n    {} {ts} NOT NULL,\n    CONSTRAINT {} PRIMARY KEY ({}, {}, {})\n);\n",
        q("ingest_commits"),
        q("source"),
        q("partition"),
        q("first"),
        q("last"),
        q("resume"),
        q("calls"),
        q("dead_letters"),
        q("merged"),
        q("lost"),
        q("accounting"),
        q("writer"),
        key_text(engine, 64),
        q("written_at"),
        q("pk_ingest_commits"),
        q("source"),
        q("partition"),
        q("last"),
    ));
    out.push_str(&format!(
        "\n-- Cost quotas for R5 (aoai-ledger db load-quota FILE).\nCREATE TABLE {} (\n    {} {} NOT NULL,\n    {} {} NOT NULL,\n    CONSTRAINT {} PRIMARY KEY ({})\n);\n",
        q("subscription_quota"),
        q("subscription_id"),
        sql_type(engine, LogicalType::Text),
        q("cost_quota"),
        sql_type(engine, cost_type()),
        q("pk_subscription_quota"),
        q("subscription_id"),
    ));
    out
}

/// The type of `cost` (and of quotas): the column table's.
pub fn cost_type() -> LogicalType {
    CALL_COLUMNS.iter().find(|c| c.name == "cost").map_or(
        LogicalType::Decimal {
            precision: ledger_core::columns::COST_PRECISION,
            scale: ledger_core::columns::COST_SCALE,
        },
        |c| c.ty,
    )
}

/// A later migration: the columns it adds to tables that may hold rows
/// (so each is nullable; a flag gets the default false).
fn addition(engine: EngineKind, calls: &[&str], dead: &[&str]) -> String {
    let mut out = String::from(HEADER);
    let all_calls = call_columns();
    let all_dead = dead_letter_columns();
    for (table, names, columns) in [
        ("calls", calls, &all_calls),
        ("dead_letters", dead, &all_dead),
    ] {
        for name in names {
            let Some(c) = columns.iter().find(|c| c.name == *name) else {
                out.push_str(&format!("-- {name}: not in the column table\n"));
                continue;
            };
            let default = match (c.nullable, c.ty) {
                (false, LogicalType::Bool) => match engine {
                    EngineKind::Postgres => " NOT NULL DEFAULT false",
                    EngineKind::MsSql => " NOT NULL DEFAULT 0",
                },
                _ => " NULL",
            };
            let add = match engine {
                EngineKind::Postgres => "ADD COLUMN",
                EngineKind::MsSql => "ADD",
            };
            out.push_str(&format!(
                "ALTER TABLE {} {add} {} {}{default};\n",
                engine.quote(table),
                engine.quote(c.name),
                sql_type(engine, c.ty),
            ));
        }
    }
    out
}

/// The migrations this module generates for an engine, in order.
pub fn generated(engine: EngineKind) -> Vec<Generated> {
    let mut out = vec![Generated {
        version: 1,
        file_name: "0001_tables.sql".into(),
        sql: initial(engine),
    }];
    for (version, name, calls, dead) in LATER {
        out.push(Generated {
            version: *version,
            file_name: format!("{version:04}_{name}.sql"),
            sql: addition(engine, calls, dead),
        });
    }
    out
}

/// The temporary table a commit's calls are bulk-loaded into before they
/// are merged into `calls` (PostgreSQL: dropped with the session, emptied
/// by every commit). `existed` says whether the row replaces one read in
/// the transaction.
pub fn postgres_staging() -> String {
    let engine = EngineKind::Postgres;
    let cols: Vec<String> = call_columns()
        .iter()
        .map(|c| format!("{} {}", engine.quote(c.name), sql_type(engine, c.ty)))
        .collect();
    format!(
        "CREATE TEMP TABLE IF NOT EXISTS ledger_stage_calls ({}, existed boolean NOT NULL) ON COMMIT DELETE ROWS",
        cols.join(", ")
    )
}

/// The columns of `calls`, quoted and comma-separated, with a prefix
/// (`s.`) or none.
pub fn column_list(engine: EngineKind, prefix: &str) -> String {
    call_columns()
        .iter()
        .map(|c| format!("{prefix}{}", engine.quote(c.name)))
        .collect::<Vec<_>>()
        .join(", ")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_column_is_created_once() {
        for engine in EngineKind::ALL {
            let sql: String = generated(engine).iter().map(|m| m.sql.clone()).collect();
            for c in call_columns().iter().chain(&dead_letter_columns()) {
                assert!(sql.contains(&engine.quote(c.name)), "{}", c.name);
            }
        }
    }

    #[test]
    fn cost_keeps_the_core_precision() {
        assert_eq!(
            sql_type(EngineKind::Postgres, cost_type()),
            "numeric(28,10)"
        );
        assert_eq!(sql_type(EngineKind::MsSql, cost_type()), "decimal(28,10)");
    }

    #[test]
    fn a_later_column_is_an_alter() {
        let sql = addition(EngineKind::MsSql, &["complete"], &[]);
        assert!(sql.contains("ALTER TABLE [calls] ADD [complete] bit NOT NULL DEFAULT 0;"));
        let sql = addition(EngineKind::Postgres, &["model"], &[]);
        assert!(sql.contains("ALTER TABLE \"calls\" ADD COLUMN \"model\" varchar(256) NULL;"));
    }
}
