#!/usr/bin/env bash
# Install the archival competitors used by benchmarks/bench_archive.py (idempotent).
#   restic, borgbackup, zstd, git, tar: Debian packages (apt-get).
# Does nothing when every tool is already on PATH. Needs root (or sudo) otherwise.
set -euo pipefail

declare -A PKG=([restic]=restic [borg]=borgbackup [zstd]=zstd [git]=git [tar]=tar)
missing=()
for tool in restic borg zstd git tar; do
    command -v "$tool" >/dev/null 2>&1 || missing+=("${PKG[$tool]}")
done
if [ ${#missing[@]} -eq 0 ]; then
    exit 0
fi

SUDO=""
if [ "$(id -u)" -ne 0 ]; then
    if command -v sudo >/dev/null 2>&1; then SUDO="sudo"; else
        echo "setup_tools.sh: need root to install: ${missing[*]}" >&2; exit 1
    fi
fi
echo "setup_tools.sh: installing ${missing[*]}" >&2
export DEBIAN_FRONTEND=noninteractive
# apt-get update only when the package lists are missing or older than a day
if [ -z "$(find /var/lib/apt/lists -maxdepth 1 -name '*Packages*' -mtime -1 2>/dev/null | head -1)" ]; then
    $SUDO apt-get update -qq
fi
$SUDO apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
for tool in restic borg zstd git tar; do
    command -v "$tool" >/dev/null 2>&1 || { echo "setup_tools.sh: $tool still missing" >&2; exit 1; }
done
