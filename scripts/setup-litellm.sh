#!/usr/bin/env bash
# Install a pinned LiteLLM proxy into a cached virtual environment outside the repo.
#
#   LITELLM_BIN=$(bash scripts/setup-litellm.sh | tail -n1)
#
# The last (and only) line on stdout is the absolute path of the `litellm` executable.
# Everything else goes to stderr. Idempotent: a working install of the pinned version is reused.
#
# Environment:
#   MEMPROXY_CACHE_DIR   cache root (default: $HOME/.cache/memproxy)
#   LITELLM_VERSION      override the pinned version (default below)
#   PYTHON               Python interpreter to build the venv with (default: python3, >= 3.10)
set -euo pipefail

# Pinned. 1.110.x cannot be installed: its [proxy] extra requires `litellm-proxy==1.110.x`, which is not on PyPI.
LITELLM_VERSION="${LITELLM_VERSION:-1.108.7}"
CACHE_DIR="${MEMPROXY_CACHE_DIR:-${HOME:?HOME is not set}/.cache/memproxy}"
PYTHON="${PYTHON:-python3}"

log() { printf 'setup-litellm: %s\n' "$*" >&2; }
die() { printf 'setup-litellm: ERROR: %s\n' "$*" >&2; exit 1; }

mkdir -p "$CACHE_DIR" || die "cannot create cache dir $CACHE_DIR"
CACHE_DIR="$(cd "$CACHE_DIR" && pwd -P)"
BASE="$CACHE_DIR/litellm-$LITELLM_VERSION"
VENV="$BASE/venv"
BIN="$VENV/bin/litellm"
MARKER="$BASE/.installed"

# True when the venv holds the pinned version and the proxy's entry point imports.
is_ready() {
  [[ -f "$MARKER" && -x "$BIN" && -x "$VENV/bin/python" ]] || return 1
  # LITELLM_LOCAL_MODEL_COST_MAP: importing litellm otherwise fetches its cost map from GitHub (with retries).
  LITELLM_LOCAL_MODEL_COST_MAP=True "$VENV/bin/python" - "$LITELLM_VERSION" >/dev/null 2>&1 <<'PY'
import sys, importlib.metadata as md
assert md.version("litellm") == sys.argv[1]
import litellm.proxy.proxy_cli  # the module behind the `litellm` command
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
  || die "$PYTHON is $("$PYTHON" -V 2>&1); litellm needs Python >= 3.10"

start=$(date +%s)
log "installing litellm[proxy]==$LITELLM_VERSION into $VENV (this takes a minute or two)"
rm -rf "$VENV" "$MARKER"
"$PYTHON" -m venv "$VENV" >&2 \
  || die "could not create a venv with $PYTHON (on Debian/Ubuntu: apt-get install python3-venv)"

pip_install() {
  "$VENV/bin/python" -m pip install --disable-pip-version-check --no-input --quiet "$@" >&2
}
if ! pip_install "litellm[proxy]==$LITELLM_VERSION"; then
  rm -rf "$VENV"
  die "pip could not install litellm[proxy]==$LITELLM_VERSION (network to PyPI? see pip output above)"
fi

touch "$MARKER"
if ! is_ready; then
  LITELLM_LOCAL_MODEL_COST_MAP=True "$VENV/bin/python" -c 'import litellm.proxy.proxy_cli' >&2 || true
  rm -rf "$VENV" "$MARKER"
  die "litellm $LITELLM_VERSION installed but does not import (see traceback above)"
fi

log "installed litellm $LITELLM_VERSION in $(( $(date +%s) - start ))s"
printf '%s\n' "$BIN"
