#!/usr/bin/env bash
# Install pinned versions of the real AI coding tools and SDKs that test/e2e/clients.e2e.test.ts runs,
# into a cache folder outside the repo.
#
#   CLIENTS_DIR=$(bash scripts/setup-clients.sh | tail -n1)
#   bash scripts/setup-clients.sh --dir      # print that folder without installing anything
#
# The last (and only) line on stdout is the absolute path of the folder; everything else goes to stderr.
# Its layout:
#   node/node_modules/.bin/{claude,codex,gemini,qwen,opencode}   the CLIs (npm)
#   node/node_modules/{openai,@anthropic-ai/sdk}                 the JavaScript SDKs (npm)
#   venv/bin/python                                              with the openai and anthropic SDKs (PyPI)
#   java/lib/*.jar, java/classes/MemproxyProbe.class             openai-java (Maven Central) and a tiny
#                                                                program: java -cp "classes:lib/*" MemproxyProbe sync|async|sync-stream PROMPT
#   env                                                          the same paths as shell assignments, to source
# The folder name carries a hash of the pins and of the Java fixture (test/e2e/clients/java/), so changing
# either installs afresh next to the old one. Idempotent and serialised with flock: a complete install of
# the same pins is reused at once. A fresh install took about 2 minutes here (network-bound: npm ~70 s,
# pip ~25 s, Maven ~20 s, run side by side), and needs about 1.6 GB.
#
# Requirements: Node.js >= 20 with npm, python3 with venv, a JDK (javac, java) >= 11 and Maven 3.
# Environment:
#   MEMPROXY_CACHE_DIR   cache root (default: $HOME/.cache/memproxy)
#   PYTHON               interpreter for the venv (default: python3)
set -euo pipefail

# Pinned. Each is the newest release on its registry when pinned; all run on Node.js 20 here, although
# @qwen-code/qwen-code 0.24 and openai 7 declare engines node >= 22 (npm warns; `qwen -p` and the SDK calls
# the tests make work on 20.20). @anthropic-ai/claude-code, @openai/codex and opencode-ai ship native
# executables in platform packages (npm's optional dependencies), so Node's version does not matter to them.
NPM_PINS=(
  "@anthropic-ai/claude-code@2.1.332"
  "@openai/codex@0.171.0"
  "@google/gemini-cli@0.61.0"
  "@qwen-code/qwen-code@0.24.4"
  "opencode-ai@1.18.33"
  "openai@7.59.0"
  "@anthropic-ai/sdk@1.14.0"
)
PIP_PINS=("openai==3.57.0" "anthropic==2.14.0")
# com.openai:openai-java's version is pinned in test/e2e/clients/java/pom.xml (4.101.0).

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd -P)"
JAVA_SRC="$ROOT/test/e2e/clients/java"
CACHE_DIR="${MEMPROXY_CACHE_DIR:-${HOME:?HOME is not set}/.cache/memproxy}"
PYTHON="${PYTHON:-python3}"

log() { printf 'setup-clients: %s\n' "$*" >&2; }
die() { printf 'setup-clients: ERROR: %s\n' "$*" >&2; exit 1; }

[[ -f "$JAVA_SRC/pom.xml" && -f "$JAVA_SRC/MemproxyProbe.java" ]] || die "missing $JAVA_SRC/pom.xml or MemproxyProbe.java"
# What the folder is built from: any change gives another folder.
MANIFEST="$(printf '%s\n' "${NPM_PINS[@]}" "${PIP_PINS[@]}"; sha256sum "$JAVA_SRC/pom.xml" "$JAVA_SRC/MemproxyProbe.java" | cut -d' ' -f1)"
HASH="$(printf '%s' "$MANIFEST" | sha256sum | cut -c1-12)"

mkdir -p "$CACHE_DIR" || die "cannot create cache dir $CACHE_DIR"
CACHE_DIR="$(cd "$CACHE_DIR" && pwd -P)"
DIR="$CACHE_DIR/clients-$HASH"
MARKER="$DIR/.installed"   # holds the manifest it was built from

if [[ "${1:-}" == "--dir" ]]; then
  printf '%s\n' "$DIR"
  exit 0
fi
[[ $# -eq 0 ]] || die "unknown argument '$1' (usage: setup-clients.sh [--dir])"

NODE_BINS=(claude codex gemini qwen opencode)

# True when the folder was completely built from exactly this manifest and its pieces answer.
is_ready() {
  [[ -f "$MARKER" && "$(cat "$MARKER")" == "$MANIFEST" ]] || return 1
  local b
  for b in "${NODE_BINS[@]}"; do [[ -x "$DIR/node/node_modules/.bin/$b" ]] || return 1; done
  [[ -f "$DIR/node/node_modules/openai/package.json" && -f "$DIR/node/node_modules/@anthropic-ai/sdk/package.json" ]] || return 1
  [[ -f "$DIR/java/classes/MemproxyProbe.class" ]] || return 1
  "$DIR/venv/bin/python" -c 'import openai, anthropic' >/dev/null 2>&1 || return 1
}

mkdir -p "$DIR"
# Serialise concurrent runs (parallel test jobs, several engineers) on the same pins.
if command -v flock >/dev/null 2>&1; then
  exec 9>"$DIR/.lock"
  flock -w 1200 9 || die "timed out waiting for another setup-clients run (lock $DIR/.lock)"
fi

if is_ready; then
  log "clients already installed in $DIR"
  printf '%s\n' "$DIR"
  exit 0
fi

command -v node >/dev/null 2>&1 && command -v npm >/dev/null 2>&1 || die "node and npm are needed (Node.js >= 20)"
node -e 'process.exit(Number(process.versions.node.split(".")[0]) >= 20 ? 0 : 1)' || die "Node.js $(node --version) is too old; >= 20 is needed"
command -v "$PYTHON" >/dev/null 2>&1 || die "python interpreter '$PYTHON' not found (set PYTHON=...)"
command -v javac >/dev/null 2>&1 && command -v java >/dev/null 2>&1 || die "a JDK is needed (javac, java; on Debian: apt-get install openjdk-17-jdk-headless)"
command -v mvn >/dev/null 2>&1 || die "Maven is needed (on Debian: apt-get install maven)"

start=$(date +%s)
log "installing into $DIR (about 2 minutes on a fresh machine)"
rm -rf "$MARKER" "$DIR/node" "$DIR/venv" "$DIR/java" "$DIR/logs"
mkdir -p "$DIR/node" "$DIR/java" "$DIR/logs"

install_node() {
  cd "$DIR/node"
  node -e '
    const deps = {};
    for (const pin of process.argv.slice(1)) { const at = pin.lastIndexOf("@"); deps[pin.slice(0, at)] = pin.slice(at + 1); }
    require("fs").writeFileSync("package.json", JSON.stringify({ name: "memproxy-e2e-clients", private: true, dependencies: deps }, null, 2) + "\n");
  ' "${NPM_PINS[@]}"
  # Install scripts must run: Claude Code and opencode put their native executable in place in postinstall.
  npm install --no-audit --no-fund --no-update-notifier --loglevel=error
}

install_python() {
  "$PYTHON" -m venv "$DIR/venv" || { echo "could not create a venv with $PYTHON (on Debian: apt-get install python3-venv)"; return 1; }
  "$DIR/venv/bin/python" -m pip install --disable-pip-version-check --no-input --quiet "${PIP_PINS[@]}"
}

install_java() {
  mvn -q -B -f "$JAVA_SRC/pom.xml" dependency:copy-dependencies -DincludeScope=runtime -DoutputDirectory="$DIR/java/lib"
  javac -encoding UTF-8 -cp "$DIR/java/lib/*" -d "$DIR/java/classes" "$JAVA_SRC/MemproxyProbe.java"
}

# Side by side: each is mostly waiting for its registry.
( install_node >"$DIR/logs/npm.log" 2>&1 ) & npm_pid=$!
( install_python >"$DIR/logs/pip.log" 2>&1 ) & pip_pid=$!
( install_java >"$DIR/logs/java.log" 2>&1 ) & java_pid=$!
failed=()
wait "$npm_pid" || failed+=(npm)
wait "$pip_pid" || failed+=(pip)
wait "$java_pid" || failed+=(java)
for f in "${failed[@]}"; do
  log "$f failed; its output:"
  cat "$DIR/logs/$f.log" >&2
done
[[ ${#failed[@]} -eq 0 ]] || die "could not install ${failed[*]} (no access to the registry? see the output above)"

cat >"$DIR/env" <<EOF
MEMPROXY_CLIENTS_DIR='$DIR'
MEMPROXY_CLIENTS_BIN='$DIR/node/node_modules/.bin'
MEMPROXY_CLIENTS_PYTHON='$DIR/venv/bin/python'
MEMPROXY_CLIENTS_JAVA_CP='$DIR/java/classes:$DIR/java/lib/*'
EOF
printf '%s' "$MANIFEST" >"$MARKER"
if ! is_ready; then
  rm -f "$MARKER"
  die "installed, but a piece is missing or does not start (see $DIR/logs)"
fi

log "installed the clients in $(($(date +%s) - start))s"
printf '%s\n' "$DIR"
