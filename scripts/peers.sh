# Sourced by scripts/test: the independent peers the tests compare against,
# each pinned in its own virtualenv: the Delta readers of the lake tests
# (DuckDB's delta extension from PyPI needs DuckDB at its own version) and
# the Python Event Hubs SDK of the broker tests. Installed on first use, then
# reused.

AOAI_VENV_DIR="${AOAI_VENV_DIR:-$HOME/.cache/aoai-ledger/venvs}"

peer_venv() { # name, then pip requirements
  local name=$1; shift
  local dir="$AOAI_VENV_DIR/$name"
  local want="$*"
  if [ ! -x "$dir/bin/python" ] || [ "$(cat "$dir/.pinned" 2>/dev/null)" != "$want" ]; then
    echo "installing $want into $dir" >&2
    rm -rf "$dir"
    python3 -m venv "$dir" >&2
    "$dir/bin/pip" install --quiet --disable-pip-version-check "$@" >&2
    echo "$want" >"$dir/.pinned"
  fi
  echo "$dir/bin/python"
}

AOAI_TEST_PY_DELTALAKE=$(peer_venv deltalake deltalake==1.6.6 pyarrow==26.0.1)
AOAI_TEST_PY_DUCKDB=$(peer_venv duckdb-delta duckdb==1.5.5 duckdb-extension-delta==1.5.5)
AOAI_TEST_PY_EVENTHUB=$(peer_venv eventhub azure-eventhub==5.15.1 azure-core==1.41.0 typing_extensions==4.16.0)
export AOAI_TEST_PY_DELTALAKE AOAI_TEST_PY_DUCKDB AOAI_TEST_PY_EVENTHUB
