"""Reads a lake the ledger wrote with an independent Delta reader and prints
what the ledger's own test compares: row counts and report R1's sums.

    python read_lake.py deltalake LAKE_URL   # Python deltalake (delta-rs)
    python read_lake.py duckdb LAKE_DIR      # DuckDB's delta extension

Blob lakes (az://container/prefix) take the emulator settings from
AZURITE_BLOB_STORAGE_URL (deltalake only).
"""
import json
import os
import sys

# R1 as queries/token-usage-by-ip-model.sql states it, sums only.
R1 = """
SELECT caller_ip, model, SUM(prompt_tokens), SUM(completion_tokens), SUM(total_tokens)
FROM calls
WHERE lower(operation_id) IN ('completions_create', 'chatcompletions_create')
  AND status_code = 200 AND model IS NOT NULL AND model <> ''
GROUP BY caller_ip, model
ORDER BY caller_ip NULLS LAST, model
"""


def storage_options(url):
    if not url.startswith("az://"):
        return None
    endpoint = os.environ["AZURITE_BLOB_STORAGE_URL"]
    return {
        "account_name": "devstoreaccount1",
        # The emulator's well-known development key; not a secret.
        "account_key": "Eby8vdM02xNOcqFlqUwJPLlmEtlCDXJ1OUzFT50uSRZ6IFsuFq2UVErCz4I6tq/K1SZFPTOtr/KBHBeksoGMGw==",
        "use_emulator": "true",
        "azure_storage_endpoint": endpoint + "/devstoreaccount1",
        "allow_http": "true",
    }


def with_deltalake(lake):
    from deltalake import DeltaTable, QueryBuilder

    opts = storage_options(lake)
    calls = DeltaTable(f"{lake}/calls", storage_options=opts)
    dead = DeltaTable(f"{lake}/dead_letters", storage_options=opts)
    q = QueryBuilder().register("calls", calls).register("dead_letters", dead)

    def rows(sql):
        table = q.execute(sql).read_all()
        cols = [table.column(i).to_pylist() for i in range(table.num_columns)]
        return [list(r) for r in zip(*cols)]

    return {
        "calls": rows("SELECT count(*) FROM calls")[0][0],
        "dead_letters": rows("SELECT count(*) FROM dead_letters")[0][0],
        "r1": rows(R1),
        "version": calls.version(),
    }


def with_duckdb(lake):
    import duckdb
    import duckdb_extension_delta

    ext = os.path.join(
        os.path.dirname(duckdb_extension_delta.__file__),
        "extensions",
        "v" + duckdb.__version__,
        "delta.duckdb_extension",
    )
    con = duckdb.connect()
    con.execute(f"LOAD '{ext}'")
    con.execute(f"CREATE VIEW calls AS SELECT * FROM delta_scan('{lake}/calls')")
    con.execute(f"CREATE VIEW dead_letters AS SELECT * FROM delta_scan('{lake}/dead_letters')")
    return {
        "calls": con.sql("SELECT count(*) FROM calls").fetchone()[0],
        "dead_letters": con.sql("SELECT count(*) FROM dead_letters").fetchone()[0],
        "r1": [list(r) for r in con.sql(R1).fetchall()],
    }


if __name__ == "__main__":
    engine, lake = sys.argv[1], sys.argv[2].rstrip("/")
    out = with_deltalake(lake) if engine == "deltalake" else with_duckdb(lake)
    print(json.dumps(out))
