#!/usr/bin/env python3
"""Transcribes self-contained examples (query and documented output table)
from the Kusto documentation (MicrosoftDocs/dataexplorer-docs) into
tests/kql/conformance/<page>.test. Only queries and their outputs are
copied, never prose. Usage: kql-doc-cases.py DOCS_GIT_DIR PAGE.md... (a page of
data-explorer/kusto/query/ by name, or any page by its path)."""
import re, subprocess, sys, pathlib

SAMPLE_TABLES = re.compile(r"\b(StormEvents|Customers|SalesFact|SalesTable|Products|Covid19|ConferenceSessions|nyc_taxi|PopulationData|TraceLogs|Trips|Events|Logs|demo_\w+|SampleIoTData|OccupancyDetection|external_table|cluster\(|database\()")
SOURCES = re.compile(r"\b(print|datatable|range)\b")

def cases(text):
    lines = text.splitlines()
    i, out = 0, []
    while i < len(lines):
        if lines[i].strip().lower() in ("```kusto", "```kql"):
            j = i + 1
            while j < len(lines) and not lines[j].startswith("```"):
                j += 1
            query = "\n".join(lines[i + 1:j]).strip()
            k = j + 1
            table = []
            while k < len(lines) and not lines[k].startswith("```"):
                if lines[k].strip().startswith("|"):
                    while k < len(lines) and lines[k].strip().startswith("|"):
                        table.append(lines[k].strip())
                        k += 1
                    break
                # A table written without outer pipes: header, then ---|---.
                if "|" in lines[k] and k + 1 < len(lines) and re.fullmatch(r"\s*:?-+:?\s*(\|\s*:?-+:?\s*)+", lines[k + 1]):
                    while k < len(lines) and "|" in lines[k] and lines[k].strip():
                        table.append("|" + lines[k].strip() + "|")
                        k += 1
                    break
                if lines[k].startswith("#"):
                    break
                k += 1
            if len(table) >= 2 and SOURCES.search(query) and not SAMPLE_TABLES.search(query):
                out.append((query, table))
            i = j + 1
        else:
            i += 1
    return out

# `EXPR // RESULT` lines: a scalar example with its documented value.
COMMENTED = re.compile(r"^\s*(?:print\s+)?(?P<expr>[A-Za-z_][\w]*\(.*\))\s*//\s*(?P<result>[^/].*?)\s*$")

def commented_cases(text):
    out = []
    for block in re.findall(r"```kusto\n(.*?)```", text, re.S):
        lines = [l for l in block.splitlines() if l.strip()]
        if not lines or any("|" in l.split("//")[0] for l in lines):
            continue
        found = [COMMENTED.match(l) for l in lines]
        if all(found):
            for m in found:
                result = m.group("result").strip()
                # Results written as prose ("returns ...") are not values.
                if " " in result and not result.startswith(("[", "{", '"')):
                    continue
                out.append((f"print {m.group('expr').strip()}", ["|print_0|", "|" + result.strip('"') + "|"]))
    return out

def cells(row):
    row = row.strip()
    if row.startswith("|"): row = row[1:]
    if row.endswith("|") and not row.endswith("\\|"): row = row[:-1]
    parts = re.split(r"(?<!\\)\|", row)
    return [p.strip().replace("\\|", "|").strip("`").strip() for p in parts]

def main():
    docs, pages = sys.argv[1], sys.argv[2:]
    outdir = pathlib.Path(__file__).resolve().parent.parent / "tests/kql/conformance"
    total = 0
    for page in pages:
        # A page of the query reference by name, or any page by its path.
        path = page if page.startswith("data-explorer/") else f"data-explorer/kusto/query/{page}"
        page = page.removeprefix("data-explorer/kusto/query/").removeprefix("data-explorer/")
        text = subprocess.run(["git", "-C", docs, "show", f"HEAD:{path}"], capture_output=True, text=True).stdout
        found = cases(text) + commented_cases(text)
        if not found:
            continue
        body = [f"# Examples of {path} (MicrosoftDocs/dataexplorer-docs)."]
        for q, table in found:
            header = cells(table[0])
            rows = [cells(r) for r in table[1:] if not re.fullmatch(r"[|\s:-]+", r)]
            body.append("")
            body.append(f"# source: {path}")
            body.append("query")
            body.append(q)
            body.append("----")
            body.append("|".join(header))
            for r in rows:
                body.append("|".join(r))
            total += 1
        (outdir / (page[:-3].replace("/", "-") + ".test")).write_text("\n".join(body) + "\n")
    print(f"{total} cases")

main()
