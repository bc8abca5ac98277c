# Sourced by scripts/test: installs Azurite from npm (pinned) on first use,
# starts it in memory on a free port, creates the test container, and
# exports what the tests read. Stopped when the sourcing shell exits.

AOAI_NODE_DIR="${AOAI_NODE_DIR:-$HOME/.cache/aoai-ledger/node}"
AZURITE_VERSION=3.35.0
STORAGE_BLOB_VERSION=12.28.0

if [ ! -x "$AOAI_NODE_DIR/node_modules/.bin/azurite-blob" ] || [ ! -d "$AOAI_NODE_DIR/node_modules/@azure/storage-blob" ]; then
  echo "installing azurite@$AZURITE_VERSION into $AOAI_NODE_DIR" >&2
  mkdir -p "$AOAI_NODE_DIR"
  npm install --prefix "$AOAI_NODE_DIR" --no-audit --no-fund --loglevel=error \
    "azurite@$AZURITE_VERSION" "@azure/storage-blob@$STORAGE_BLOB_VERSION" >&2
fi

AZURITE_PORT=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')
AZURITE_LOG=$(mktemp -t azurite.XXXXXX.log)
"$AOAI_NODE_DIR/node_modules/.bin/azurite-blob" --inMemoryPersistence --skipApiVersionCheck --disableTelemetry \
  --blobHost 127.0.0.1 --blobPort "$AZURITE_PORT" >"$AZURITE_LOG" 2>&1 &
AZURITE_PID=$!
trap 'kill $AZURITE_PID 2>/dev/null || true' EXIT

for _ in $(seq 1 100); do
  if (echo >"/dev/tcp/127.0.0.1/$AZURITE_PORT") 2>/dev/null; then break; fi
  sleep 0.1
done

export AZURITE_BLOB_STORAGE_URL="http://127.0.0.1:$AZURITE_PORT"
export AOAI_TEST_AZURITE_CONTAINER=ledger-test
# The emulator's well-known development account; not a secret.
NODE_PATH="$AOAI_NODE_DIR/node_modules" node -e '
const { BlobServiceClient } = require("@azure/storage-blob");
const url = process.env.AZURITE_BLOB_STORAGE_URL;
const client = BlobServiceClient.fromConnectionString(
  "DefaultEndpointsProtocol=http;AccountName=devstoreaccount1;AccountKey=Eby8vdM02xNOcqFlqUwJPLlmEtlCDXJ1OUzFT50uSRZ6IFsuFq2UVErCz4I6tq/K1SZFPTOtr/KBHBeksoGMGw==;" + // devstoreaccount1
  "BlobEndpoint=" + url + "/devstoreaccount1;");
client.getContainerClient(process.env.AOAI_TEST_AZURITE_CONTAINER).createIfNotExists()
  .then(() => process.exit(0), (e) => { console.error("cannot create container:", e.message); process.exit(1); });
' || { cat "$AZURITE_LOG" >&2; exit 1; }
echo "azurite on $AZURITE_BLOB_STORAGE_URL (container $AOAI_TEST_AZURITE_CONTAINER)" >&2
