#!/usr/bin/env bash
# Stops the emulators started by start.sh, by the PIDs saved in the run dir,
# and waits until they have exited (SIGTERM, then SIGKILL after 10 s).
# Env: EMULATORS_RUN_DIR (default <repo>/.emulators/run)
set -uo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)"
PREFIX="${EMULATORS_PREFIX:-$ROOT/.emulators}"
RUN_DIR="${EMULATORS_RUN_DIR:-$PREFIX/run}"

log() { echo "stop.sh: $*" >&2; }

# Only signal a PID whose command line is one of ours (PIDs can be recycled).
is_ours() {  # pid expected-substring
  local cmd
  cmd="$(tr '\0' ' ' <"/proc/$1/cmdline" 2>/dev/null || ps -o args= -p "$1" 2>/dev/null || true)"
  [[ "$cmd" == *"$2"* ]]
}

stop_one() {  # name expected-substring
  local name=$1 pattern=$2 file="$RUN_DIR/$1.pid" pid
  [ -f "$file" ] || return 0
  pid="$(cat "$file" 2>/dev/null || true)"
  rm -f "$file"
  if [ -z "$pid" ] || ! kill -0 "$pid" 2>/dev/null; then
    return 0
  fi
  if ! is_ours "$pid" "$pattern"; then
    log "pid $pid in $file is not $name any more; not touching it"
    return 0
  fi
  kill -TERM "$pid" 2>/dev/null || true
  for _ in $(seq 1 100); do
    kill -0 "$pid" 2>/dev/null || { log "$name (pid $pid) stopped"; return 0; }
    sleep 0.1
  done
  log "$name (pid $pid) ignored SIGTERM for 10 s; sending SIGKILL"
  kill -KILL "$pid" 2>/dev/null || true
  for _ in $(seq 1 50); do
    kill -0 "$pid" 2>/dev/null || return 0
    sleep 0.1
  done
  log "ERROR: $name (pid $pid) is still running"
  return 1
}

status=0
# The watchdog first, so it does not race with us.
stop_one watchdog emulators-watchdog || status=1
stop_one cosmos cosmos-launcher.js || status=1
stop_one azurite azurite || status=1
exit $status
