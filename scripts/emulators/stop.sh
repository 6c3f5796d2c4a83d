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

# Phase 1: validate the PID and send SIGTERM.  Prints the PID to wait for.
signal_one() {  # name expected-substring
  local name=$1 pattern=$2 file="$RUN_DIR/$1.pid" pid
  [ -f "$file" ] || return 0
  pid="$(cat "$file" 2>/dev/null || true)"
  rm -f "$file"
  if [ -z "$pid" ] || ! kill -0 "$pid" 2>/dev/null; then
    return 0
  fi
  if ! is_ours "$pid" "$pattern"; then
    log "pid $pid of $name is now another process; not touching it"
    return 0
  fi
  kill -TERM "$pid" 2>/dev/null || true
  echo "$name:$pid"
}

# Phase 2: wait for exit, SIGKILL after 10 s.
wait_one() {  # name:pid
  local name=${1%%:*} pid=${1##*:}
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
# The watchdog first, so that it does not race with us; then both emulators
# at once (azurite needs about 2 s to exit).
targets=()
for spec in watchdog:emulators-watchdog cosmos:cosmos-launcher.js azurite:azurite; do
  t="$(signal_one "${spec%%:*}" "${spec#*:}")"
  [ -n "$t" ] && targets+=("$t")
done
for t in "${targets[@]}"; do
  wait_one "$t" || status=1
done
exit $status
