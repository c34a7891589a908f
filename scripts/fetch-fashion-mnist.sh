#!/usr/bin/env bash
# Puts the four Fashion-MNIST IDX files in DIR (default data/fashion-mnist) and
# checks them.
#
#   scripts/fetch-fashion-mnist.sh [DIR]
#
# Files already in DIR are used as they are, raw or gzipped (NAME or NAME.gz).
# Missing ones come from Debian's package dataset-fashion-mnist: from its
# installed folder /usr/share/datasets/fashion-mnist when it is installed, else
# from its .deb, fetched with `apt-get download` (no root needed) and unpacked
# with dpkg-deb, not installed. Every file's SHA-256, taken over its uncompressed
# bytes, must then match the sums below (those of the package's files).
#
# FASHION_MNIST_SKIP_SHA=1 skips that check, for files that differ on purpose.
# FASHION_MNIST_SYSTEM_DIR and FASHION_MNIST_DEB (a .deb to unpack instead of
# downloading one) point elsewhere: for offline machines, and for the tests.
set -euo pipefail

readonly PACKAGE=dataset-fashion-mnist
readonly PACKAGE_DIR=usr/share/datasets/fashion-mnist
declare -A SHA256=(
    [train-images-idx3-ubyte]=c59f468a2f672dc815687fe0f83887768d799fd8a3f3276145d20f83aa44d888
    [train-labels-idx1-ubyte]=bad3541b69d912435c50bb6ba87bec294ff4f6a2e1246121d8633921760443d9
    [t10k-images-idx3-ubyte]=5b4141f0afbad91edebe8549f8fcffe087ea10ca49f1dbef5c9a5cd8815ce37b
    [t10k-labels-idx1-ubyte]=0402a96d92fd2663957122ceb108a494c5af83dab82d92729df917d7dec38c34
)

say() { echo "fetch-fashion-mnist: $*" >&2; }
die() { say "error: $*"; exit 1; }
# shellcheck source=lib/idx-files.sh
. "$(dirname "$0")/lib/idx-files.sh"

if [ "$#" -gt 1 ] || [ "${1:-}" = "-h" ] || [ "${1:-}" = "--help" ]; then
    sed -n '2,16p' "$0" | sed 's/^# \{0,1\}//' >&2
    [ "$#" -gt 1 ] && exit 2
    exit 0
fi

dir=${1:-data/fashion-mnist}
mkdir -p "$dir" || die "cannot create folder $dir"
bring="put the four Fashion-MNIST IDX files (train-images-idx3-ubyte, train-labels-idx1-ubyte, t10k-images-idx3-ubyte, t10k-labels-idx1-ubyte, raw or .gz) in $dir yourself, or install the Debian package $PACKAGE"

# Copies the missing files from FOLDER (which holds NAME.gz, as the package does).
take_from() {
    local from=$1 name
    for name in "${missing[@]}"; do
        [ -f "$from/$name.gz" ] || die "$from has no $name.gz; $bring"
        install_file "$from/$name.gz" "$dir/$name.gz"
    done
}

mapfile -t missing < <(missing_in "$dir")
if [ "${#missing[@]}" -gt 0 ]; then
    say "missing in $dir: ${missing[*]}"
    system_dir=${FASHION_MNIST_SYSTEM_DIR:-/$PACKAGE_DIR}
    if [ -z "${FASHION_MNIST_DEB:-}" ] && [ -d "$system_dir" ]; then
        say "taking them from the installed package folder $system_dir"
        take_from "$system_dir"
    else
        deb=${FASHION_MNIST_DEB:-}
        [ -n "$deb" ] || command -v apt-get >/dev/null ||
            die "$system_dir does not exist and apt-get is not installed; $bring"
        tmp=$(mktemp -d)
        trap 'rm -rf "$tmp"' EXIT
        if [ -z "$deb" ]; then
            say "fetching the .deb of $PACKAGE with apt-get download (about 31 MB)"
            (cd "$tmp" && apt-get download -q "$PACKAGE" >/dev/null 2>&1) ||
                die "apt-get download $PACKAGE failed (no package source reachable?); $bring"
            deb=$(find "$tmp" -maxdepth 1 -name '*.deb' | head -n 1)
            [ -n "$deb" ] || die "apt-get download $PACKAGE produced no .deb"
        fi
        [ -f "$deb" ] || die "FASHION_MNIST_DEB=$deb: no such file"
        command -v dpkg-deb >/dev/null || die "dpkg-deb is not installed, so $deb cannot be unpacked; $bring"
        dpkg-deb -x "$deb" "$tmp/unpacked" 2>/dev/null || die "cannot unpack $deb (not a .deb?)"
        say "taking them from $deb"
        take_from "$tmp/unpacked/$PACKAGE_DIR"
    fi
fi

if [ "${FASHION_MNIST_SKIP_SHA:-0}" = "1" ]; then
    say "FASHION_MNIST_SKIP_SHA=1: not checking SHA-256 sums of the files in $dir"
    exit 0
fi

check_sums "$dir" "files in $dir are not the expected Fashion-MNIST files; replace them, or set FASHION_MNIST_SKIP_SHA=1 to use them anyway"
say "ok: the four Fashion-MNIST files in $dir match their SHA-256 sums"
