#!/usr/bin/env bash
# Install the tools a release needs on Linux: rcodesign (signs and verifies the darwin binaries; the pinned
# apple-codesign crate, built with cargo into a cache outside the repo) and QEMU user emulation for arm64
# (Debian's qemu-user-static and libc6-arm64-cross, to start the linux-arm64 binary).
#
#   RCODESIGN=$(bash scripts/setup-release-tools.sh | tail -n1)
#
# The last (and only) line on stdout is the absolute path of `rcodesign`. Everything else goes to stderr.
# Idempotent: a working install of the pinned version is reused (about 0.1 s).
#
# Environment:
#   MEMPROXY_CACHE_DIR   cache root (default: $HOME/.cache/memproxy); rcodesign at <root>/rcodesign-<version>[-notarize]/bin
#   RCODESIGN_NOTARIZE   1: build rcodesign with notarisation (`rcodesign notary-submit`, for a Developer ID release;
#                        pulls in the AWS SDK and takes several times longer to build); default: sign and verify only
#   SKIP_QEMU            1: do not check or install QEMU (rcodesign only)
set -euo pipefail

# Pinned: the newest apple-codesign on crates.io (its rust-version is 1.81).
RCODESIGN_VERSION="0.29.0"

CACHE_DIR="${MEMPROXY_CACHE_DIR:-${HOME:?HOME is not set}/.cache/memproxy}"

log() { printf 'setup-release-tools: %s\n' "$*" >&2; }
die() { printf 'setup-release-tools: ERROR: %s\n' "$*" >&2; exit 1; }

# --- QEMU user emulation (system packages) --------------------------------------------------------
QEMU_PACKAGES=(qemu-user-static libc6-arm64-cross)
qemu_ready() { command -v qemu-aarch64-static >/dev/null 2>&1 && [[ -e /usr/aarch64-linux-gnu/lib/ld-linux-aarch64.so.1 ]]; }
if [[ "${SKIP_QEMU:-}" != 1 ]]; then
  if qemu_ready; then
    log "qemu-aarch64-static and the arm64 C library are installed"
  elif command -v apt-get >/dev/null 2>&1 && [[ "$(id -u)" == 0 ]]; then
    log "installing ${QEMU_PACKAGES[*]} with apt-get"
    # apt's own lock serialises concurrent runs.
    apt-get update -qq >&2 && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${QEMU_PACKAGES[@]}" >&2 \
      || die "apt-get could not install ${QEMU_PACKAGES[*]} (see its output above)"
    qemu_ready || die "${QEMU_PACKAGES[*]} are installed, but qemu-aarch64-static or /usr/aarch64-linux-gnu/lib/ld-linux-aarch64.so.1 is missing"
  else
    die "QEMU user emulation is missing: install ${QEMU_PACKAGES[*]} (as root: apt-get install ${QEMU_PACKAGES[*]}), or set SKIP_QEMU=1"
  fi
fi

# --- rcodesign (cargo, into the cache) ------------------------------------------------------------
if [[ "${RCODESIGN_NOTARIZE:-}" == 1 ]]; then
  FEATURES=(--features notarize)
  BASE_NAME="rcodesign-$RCODESIGN_VERSION-notarize"
else
  # Without the default "notarize" feature: no AWS SDK and no App Store Connect client, which are most of
  # the build (signing and verifying need neither).
  FEATURES=(--no-default-features)
  BASE_NAME="rcodesign-$RCODESIGN_VERSION"
fi

mkdir -p "$CACHE_DIR" || die "cannot create cache dir $CACHE_DIR"
CACHE_DIR="$(cd "$CACHE_DIR" && pwd -P)"
BASE="$CACHE_DIR/$BASE_NAME"
BIN="$BASE/bin/rcodesign"
MARKER="$BASE/.installed"   # holds the crate, version and features it was built with
WANT="apple-codesign $RCODESIGN_VERSION ${FEATURES[*]} opt-level=0"

is_ready() {
  [[ -f "$MARKER" && -x "$BIN" && "$(cat "$MARKER")" == "$WANT" ]] || return 1
  [[ "$("$BIN" --version 2>/dev/null)" == *" $RCODESIGN_VERSION"* ]]
}

mkdir -p "$BASE"
# Serialise concurrent runs (e.g. parallel test jobs) on the same version.
if command -v flock >/dev/null 2>&1; then
  exec 9>"$BASE/.lock"
  flock -w 1800 9 || die "timed out waiting for another setup-release-tools run (lock $BASE/.lock)"
fi

if is_ready; then
  log "rcodesign $RCODESIGN_VERSION already installed in $BASE"
  printf '%s\n' "$BIN"
  exit 0
fi

command -v cargo >/dev/null 2>&1 || die "cargo is not installed: rcodesign is built from the apple-codesign crate (https://rustup.rs, or apt-get install cargo)"

start=$(date +%s)
log "building rcodesign $RCODESIGN_VERSION (cargo install --locked apple-codesign ${FEATURES[*]}) into $BASE; takes a few minutes"
rm -rf "$BASE/bin" "$MARKER" "$BASE/.crates.toml" "$BASE/.crates2.json"
# The build directory is thrown away afterwards (about 1 GB); cargo's download cache stays in CARGO_HOME.
target="$(mktemp -d)"
trap 'rm -rf "$target"' EXIT
# Unoptimised (opt-level 0): rcodesign's hashing is ring's assembly either way, so signing a 100 MB binary takes
# the same 0.1 s of CPU and writes the same bytes, while the build needs less than half the CPU time (233 s
# instead of 516 s here, measured with cargo's own download cache empty).
PROFILE=(--config 'profile.release.opt-level=0' --config 'profile.release.debug=false' --config 'profile.release.codegen-units=256' --config 'profile.release.incremental=false')
if ! CARGO_TARGET_DIR="$target" cargo install --locked --quiet --root "$BASE" "${PROFILE[@]}" "${FEATURES[@]}" "apple-codesign@$RCODESIGN_VERSION" >&2; then
  rm -rf "$BASE/bin"
  die "cargo could not build apple-codesign $RCODESIGN_VERSION (no access to crates.io? a Rust older than 1.81? see cargo's output above)"
fi
printf '%s' "$WANT" >"$MARKER"
is_ready || { rm -rf "$BASE/bin" "$MARKER"; die "rcodesign was built but '$BIN --version' does not report $RCODESIGN_VERSION"; }

log "installed rcodesign $RCODESIGN_VERSION in $(($(date +%s) - start))s"
printf '%s\n' "$BIN"
