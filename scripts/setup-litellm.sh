#!/usr/bin/env bash
# Install a pinned LiteLLM proxy into a cached virtual environment outside the repo.
#
#   LITELLM_BIN=$(bash scripts/setup-litellm.sh | tail -n1)
#
# The last (and only) line on stdout is the absolute path of the `litellm` executable.
# Everything else goes to stderr. Idempotent: a working install of the pinned version is reused
# (the check imports LiteLLM, about 3-4 s); a fresh install took 52-126 s here (network-bound).
#
# Environment:
#   MEMPROXY_CACHE_DIR   cache root (default: $HOME/.cache/memproxy); venv at <root>/litellm-<version>/venv
#   LITELLM_VERSION      override the pinned version (default below)
#   PYTHON               interpreter to build the venv with (default: python3; LiteLLM needs >= 3.10)
set -euo pipefail

# Pinned. Newer releases do not install from PyPI here: 1.110.x's [proxy] extra requires `litellm-proxy==1.110.x`
# (not on PyPI), 1.108.8 to 1.109.3 pin litellm-proxy-extras / litellm-enterprise releases that are not on it either.
LITELLM_VERSION="${LITELLM_VERSION:-1.108.7}"
# `prisma` is not in the [proxy] extra, but LiteLLM's auth-error path imports it: without it a request with no key
# gets a bare "500 Internal Server Error" instead of 401. No database is used; the client is only imported.
PRISMA_VERSION="0.15.0"
REQUIREMENTS=("litellm[proxy]==$LITELLM_VERSION" "prisma==$PRISMA_VERSION")

CACHE_DIR="${MEMPROXY_CACHE_DIR:-${HOME:?HOME is not set}/.cache/memproxy}"
PYTHON="${PYTHON:-python3}"

log() { printf 'setup-litellm: %s\n' "$*" >&2; }
die() { printf 'setup-litellm: ERROR: %s\n' "$*" >&2; exit 1; }

mkdir -p "$CACHE_DIR" || die "cannot create cache dir $CACHE_DIR"
CACHE_DIR="$(cd "$CACHE_DIR" && pwd -P)"
BASE="$CACHE_DIR/litellm-$LITELLM_VERSION"
VENV="$BASE/venv"
BIN="$VENV/bin/litellm"
MARKER="$BASE/.installed"   # holds the requirement list it was built from

# True when the venv was completely built from exactly these requirements and the proxy imports.
is_ready() {
  [[ -f "$MARKER" && -x "$BIN" && -x "$VENV/bin/python" ]] || return 1
  [[ "$(cat "$MARKER")" == "${REQUIREMENTS[*]}" ]] || return 1
  # LITELLM_LOCAL_MODEL_COST_MAP: importing litellm otherwise fetches its cost map from GitHub (with retries).
  LITELLM_LOCAL_MODEL_COST_MAP=True "$VENV/bin/python" - "$LITELLM_VERSION" "$PRISMA_VERSION" >/dev/null 2>&1 <<'PY'
import sys, importlib.metadata as md
assert md.version("litellm") == sys.argv[1]
assert md.version("prisma") == sys.argv[2]
import litellm.proxy.proxy_cli  # the module behind the `litellm` command
import prisma.errors
PY
}

mkdir -p "$BASE"
# Serialise concurrent runs (e.g. parallel test jobs) on the same version.
if command -v flock >/dev/null 2>&1; then
  exec 9>"$BASE/.lock"
  flock -w 900 9 || die "timed out waiting for another setup-litellm run (lock $BASE/.lock)"
fi

if is_ready; then
  log "litellm $LITELLM_VERSION already installed in $VENV"
  printf '%s\n' "$BIN"
  exit 0
fi

command -v "$PYTHON" >/dev/null 2>&1 || die "python interpreter '$PYTHON' not found (set PYTHON=...)"
"$PYTHON" -c 'import sys; sys.exit(0 if sys.version_info >= (3, 10) else 1)' \
  || die "$PYTHON is $("$PYTHON" -V 2>&1); litellm $LITELLM_VERSION needs Python >= 3.10"

start=$(date +%s)
log "installing ${REQUIREMENTS[*]} into $VENV (takes 1-2 minutes)"
rm -rf "$VENV" "$MARKER"
"$PYTHON" -m venv "$VENV" >&2 \
  || die "could not create a venv with $PYTHON (on Debian/Ubuntu: apt-get install python3-venv)"

if ! "$VENV/bin/python" -m pip install --disable-pip-version-check --no-input --quiet "${REQUIREMENTS[@]}" >&2; then
  rm -rf "$VENV"
  die "pip could not install ${REQUIREMENTS[*]} (no access to PyPI? see pip's output above)"
fi

printf '%s' "${REQUIREMENTS[*]}" >"$MARKER"
if ! is_ready; then
  LITELLM_LOCAL_MODEL_COST_MAP=True "$VENV/bin/python" -c 'import litellm.proxy.proxy_cli, prisma.errors' >&2 || true
  rm -rf "$VENV" "$MARKER"
  die "litellm $LITELLM_VERSION installed but does not import (see the traceback above)"
fi

log "installed litellm $LITELLM_VERSION in $(($(date +%s) - start))s"
printf '%s\n' "$BIN"
