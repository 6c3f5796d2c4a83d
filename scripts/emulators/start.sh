#!/usr/bin/env bash
# Starts azurite-blob and the patched Cosmos DB emulator on 127.0.0.1 in the
# background, waits until both accept connections, and prints the variables to
# export (stdout carries only `export ...` lines, so `eval "$(start.sh)"` works;
# diagnostics go to stderr).
#
# Env:
#   AZURITE_PORT            blob port            (default 10000)
#   COSMOS_EMULATOR_PORT    Cosmos port          (default 8081)
#   EMULATORS_RUN_DIR       PID files and logs   (default <repo>/.emulators/run)
#   EMULATORS_WATCH_PID     if set, a watchdog stops both emulators when that
#                           process exits (used by tests/emulators.py)
#   EMULATORS_START_TIMEOUT seconds to wait for the ports (default 30)
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)"
HERE="$ROOT/scripts/emulators"
PREFIX="${EMULATORS_PREFIX:-$ROOT/.emulators}"
RUN_DIR="${EMULATORS_RUN_DIR:-$PREFIX/run}"
AZURITE_PORT="${AZURITE_PORT:-10000}"
COSMOS_PORT="${COSMOS_EMULATOR_PORT:-8081}"
TIMEOUT="${EMULATORS_START_TIMEOUT:-30}"
HOST=127.0.0.1
ACCOUNT_KEY="Eby8vdM02xNOcqFlqUwJPLlmEtlCDXJ1OUzFT50uSRZ6IFsuFq2UVErCz4I6tq/K1SZFPTOtr/KBHBeksoGMGw=="
COSMOS_KEY="C2y6yDjf5/R+ob0N8A7Cgv30VRDJIWEHLM+4QDU5DE2nQ9nqbq/7Fxr6aGgBOqFLpJnDSHWvV5hD2cLsA6w1iA=="

log() { echo "start.sh: $*" >&2; }
die() { echo "start.sh: ERROR: $*" >&2; exit 1; }

command -v node >/dev/null 2>&1 || die "node is not installed (Node.js >= 20 is required)"
AZURITE_BIN="$PREFIX/node_modules/.bin/azurite-blob"
[ -x "$AZURITE_BIN" ] || die "azurite is not installed: run scripts/emulators/install.sh"
[ -f "$PREFIX/node_modules/@vercel/cosmosdb-server/package.json" ] ||
  die "@vercel/cosmosdb-server is not installed: run scripts/emulators/install.sh"

mkdir -p "$RUN_DIR"

pid_alive() { [ -n "${1:-}" ] && kill -0 "$1" 2>/dev/null; }
port_open() { (exec 3<>"/dev/tcp/$HOST/$1") 2>/dev/null; }

for name in azurite cosmos; do
  if [ -f "$RUN_DIR/$name.pid" ] && pid_alive "$(cat "$RUN_DIR/$name.pid")"; then
    die "$name is already running (pid $(cat "$RUN_DIR/$name.pid"), run dir $RUN_DIR); run scripts/emulators/stop.sh first"
  fi
  rm -f "$RUN_DIR/$name.pid"
done
port_open "$AZURITE_PORT" && die "port $AZURITE_PORT (AZURITE_PORT) is already in use"
port_open "$COSMOS_PORT" && die "port $COSMOS_PORT (COSMOS_EMULATOR_PORT) is already in use"

started=()
cleanup_on_failure() {
  for pid in "${started[@]}"; do kill "$pid" 2>/dev/null || true; done
}
trap 'cleanup_on_failure' ERR

log "starting azurite-blob on $HOST:$AZURITE_PORT"
(
  cd "$RUN_DIR"
  exec "$AZURITE_BIN" --blobHost "$HOST" --blobPort "$AZURITE_PORT" --inMemoryPersistence \
    --extentMemoryLimit 1024 --skipApiVersionCheck --silent --disableTelemetry \
    </dev/null >"$RUN_DIR/azurite.log" 2>&1
) &
AZURITE_PID=$!
started+=("$AZURITE_PID")
echo "$AZURITE_PID" >"$RUN_DIR/azurite.pid"

log "starting the Cosmos DB emulator (cosmos-launcher.js) on $HOST:$COSMOS_PORT"
(
  cd "$RUN_DIR"
  COSMOSDB_SERVER_DIR="$PREFIX/node_modules/@vercel/cosmosdb-server" \
    exec node "$HERE/cosmos-launcher.js" --host "$HOST" --port "$COSMOS_PORT" \
    </dev/null >"$RUN_DIR/cosmos.log" 2>&1
) &
COSMOS_PID=$!
started+=("$COSMOS_PID")
echo "$COSMOS_PID" >"$RUN_DIR/cosmos.pid"

deadline=$((SECONDS + TIMEOUT))
wait_port() {  # name pid port
  local name=$1 pid=$2 port=$3
  until port_open "$port"; do
    if ! pid_alive "$pid"; then
      log "$name exited before listening; last log lines:"
      tail -n 30 "$RUN_DIR/$name.log" >&2 || true
      return 1
    fi
    if [ "$SECONDS" -ge "$deadline" ]; then
      log "$name did not accept connections on $HOST:$port within ${TIMEOUT}s; last log lines:"
      tail -n 30 "$RUN_DIR/$name.log" >&2 || true
      return 1
    fi
    sleep 0.1
  done
}
if ! wait_port azurite "$AZURITE_PID" "$AZURITE_PORT" || ! wait_port cosmos "$COSMOS_PID" "$COSMOS_PORT"; then
  cleanup_on_failure
  rm -f "$RUN_DIR/azurite.pid" "$RUN_DIR/cosmos.pid"
  die "emulators failed to start (logs in $RUN_DIR)"
fi
trap - ERR

if [ -n "${EMULATORS_WATCH_PID:-}" ]; then
  # Watchdog: if the owning process dies without calling stop.sh, stop the emulators.
  nohup bash -c '
    while kill -0 "$1" 2>/dev/null; do sleep 1; done
    EMULATORS_RUN_DIR="$2" "$3/stop.sh" >/dev/null 2>&1
  ' emulators-watchdog "$EMULATORS_WATCH_PID" "$RUN_DIR" "$HERE" </dev/null >/dev/null 2>&1 &
  echo $! >"$RUN_DIR/watchdog.pid"
fi

log "ready: azurite pid $AZURITE_PID, cosmos pid $COSMOS_PID (run dir $RUN_DIR)"
BLOB_URL="http://$HOST:$AZURITE_PORT/devstoreaccount1"
cat <<EOF
export AZURITE_BLOB_URL="$BLOB_URL"
export AZURITE_CONNECTION_STRING="DefaultEndpointsProtocol=http;AccountName=devstoreaccount1;AccountKey=$ACCOUNT_KEY;BlobEndpoint=$BLOB_URL;"
export COSMOS_EMULATOR_URL="https://$HOST:$COSMOS_PORT/"
export COSMOS_EMULATOR_KEY="$COSMOS_KEY"
export EMULATORS_RUN_DIR="$RUN_DIR"
EOF
