#!/bin/sh
# Installs memproxy from a release archive into ~/.local/bin (or --bin-dir DIR, or --prefix DIR for DIR/bin),
# after checking the archive against its .sha256 file and the binary against memproxy.sha256.
#   sh install.sh memproxy-<version>-<os>-<arch>.tar.gz     (the .tar.gz.sha256 next to it)
#   ./install.sh                                            (inside an extracted archive)
set -eu

usage() {
  cat <<'EOF'
Usage: install.sh [--bin-dir DIR | --prefix DIR] [ARCHIVE.tar.gz]

Installs memproxy into ~/.local/bin (or DIR, or DIR/bin for --prefix), checking SHA-256 checksums first.
With ARCHIVE, its checksum file ARCHIVE.sha256 must be next to it. Without ARCHIVE, installs the memproxy
binary next to this script (an extracted archive), checked against memproxy.sha256.
EOF
}

fail() {
  echo "install.sh: $*" >&2
  exit 1
}

bin_dir="${HOME:?HOME is not set}/.local/bin"
archive=""
while [ $# -gt 0 ]; do
  case "$1" in
    --bin-dir) [ $# -ge 2 ] || fail "--bin-dir needs a directory"; bin_dir="$2"; shift 2 ;;
    --prefix) [ $# -ge 2 ] || fail "--prefix needs a directory"; bin_dir="$2/bin"; shift 2 ;;
    -h|--help) usage; exit 0 ;;
    -*) usage >&2; fail "unknown option $1" ;;
    *) [ -z "$archive" ] || fail "only one archive, please (got $archive and $1)"; archive="$1"; shift ;;
  esac
done

sha256_of() {
  if command -v sha256sum >/dev/null 2>&1; then sha256sum "$1" | cut -d' ' -f1
  elif command -v shasum >/dev/null 2>&1; then shasum -a 256 "$1" | cut -d' ' -f1
  else fail "neither sha256sum nor shasum is installed: cannot check the download"
  fi
}

# verify FILE CHECKSUM_FILE: the first word of CHECKSUM_FILE must be FILE's SHA-256.
verify() {
  [ -f "$2" ] || fail "no checksum file $2: download it next to $1 and run again"
  expected=$(cut -d' ' -f1 "$2" | head -n 1)
  actual=$(sha256_of "$1")
  [ "$expected" = "$actual" ] || fail "checksum mismatch for $1: expected $expected, got $actual. The file is damaged or not the one released; download it again."
}

case "$(uname -s)" in
  Linux) os=linux ;;
  Darwin) os=darwin ;;
  *) os=$(uname -s) ;;
esac
case "$(uname -m)" in
  x86_64|amd64) arch=x64 ;;
  aarch64|arm64) arch=arm64 ;;
  *) arch=$(uname -m) ;;
esac

tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT INT TERM

if [ -n "$archive" ]; then
  [ -f "$archive" ] || fail "$archive: no such file"
  case "$(basename "$archive")" in
    *-"$os-$arch".tar.gz) ;;
    memproxy-*.tar.gz) fail "$archive is not for this machine ($os-$arch): download memproxy-<version>-$os-$arch.tar.gz" ;;
    *) fail "$archive does not look like a memproxy release archive (memproxy-<version>-$os-$arch.tar.gz)" ;;
  esac
  verify "$archive" "$archive.sha256"
  tar -xzf "$archive" -C "$tmp"
  src=$(find "$tmp" -mindepth 2 -maxdepth 2 -name memproxy -type f | head -n 1)
  [ -n "$src" ] || fail "$archive has no memproxy binary inside"
else
  src="$(cd "$(dirname "$0")" && pwd)/memproxy"
  [ -f "$src" ] || { usage >&2; fail "no archive given and no memproxy binary next to this script"; }
fi
(cd "$(dirname "$src")" && verify memproxy memproxy.sha256)

mkdir -p "$bin_dir"
# Copy then rename: replacing a running binary in place fails ("text file busy"), a rename does not.
cp "$src" "$bin_dir/.memproxy.new"
chmod 755 "$bin_dir/.memproxy.new"
if [ "$os" = darwin ]; then
  # A browser's download is quarantined, and Gatekeeper refuses a quarantined binary that Apple has not
  # notarised ("cannot be opened": releases are signed ad hoc unless built with a Developer ID). The
  # checksums above stand in for that check: the attribute goes.
  if command -v xattr >/dev/null 2>&1; then
    xattr -d com.apple.quarantine "$bin_dir/.memproxy.new" 2>/dev/null || true
  fi
  # macOS kills a binary whose signature does not match its contents before it prints anything.
  if command -v codesign >/dev/null 2>&1 && ! codesign --verify --strict "$bin_dir/.memproxy.new" 2>"$tmp/codesign.err"; then
    rm -f "$bin_dir/.memproxy.new"
    fail "the memproxy binary's code signature does not verify ($(cat "$tmp/codesign.err")): macOS would not run it. Nothing was installed; download the release again, or report it."
  fi
fi
# Run before it replaces anything: a binary that does not start here must not take the place of one that does.
if ! version=$("$bin_dir/.memproxy.new" --version 2>"$tmp/run.err"); then
  rm -f "$bin_dir/.memproxy.new"
  fail "the memproxy binary does not run on this machine ($os-$arch): $(head -c 500 "$tmp/run.err"). Nothing was installed."
fi
mv -f "$bin_dir/.memproxy.new" "$bin_dir/memproxy"
case "$version" in
  memproxy\ *) ;;
  *) version="memproxy $version" ;;
esac
echo "installed $version to $bin_dir/memproxy"
case ":$PATH:" in
  *":$bin_dir:"*) ;;
  *) echo "note: $bin_dir is not on your PATH; add it, e.g.: echo 'export PATH=\"$bin_dir:\$PATH\"' >> ~/.profile" ;;
esac
echo "next: memproxy service install    (runs it in the background; see README: Running as a service)"
