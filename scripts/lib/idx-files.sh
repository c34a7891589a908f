# Shared by fetch-mnist.sh and fetch-fashion-mnist.sh (sourced, not run): the four
# IDX file names, which copy of one a folder holds, and the SHA-256 check. The
# caller defines say() and die() and the associative array SHA256[name].

readonly NAMES=(train-images-idx3-ubyte train-labels-idx1-ubyte t10k-images-idx3-ubyte t10k-labels-idx1-ubyte)

# Prints the file that holds NAME in folder DIR (raw preferred over .gz), or
# nothing. dataset-prep makes the same choice.
present() {
    if [ -f "$1/$2" ]; then
        echo "$1/$2"
    elif [ -f "$1/$2.gz" ]; then
        echo "$1/$2.gz"
    fi
}

# The names of the four files that DIR lacks, one per line.
missing_in() {
    local name
    for name in "${NAMES[@]}"; do
        [ -n "$(present "$1" "$name")" ] || echo "$name"
    done
}

# Copies FILE to DIR/NAME through a temporary name in DIR, so that an interrupted
# copy never leaves a short file under the real name for the next run to trust.
install_file() {
    local src=$1 dest=$2 part
    part="$(dirname "$dest")/.$(basename "$dest").part.$$"
    cp "$src" "$part" || { rm -f "$part"; die "cannot write $part"; }
    mv -f "$part" "$dest"
    say "wrote $dest"
}

# Checks the uncompressed SHA-256 of every file in DIR against SHA256[]; on a
# mismatch names each bad file and dies with HINT.
check_sums() {
    local dir=$1 hint=$2 bad=0 name file sum
    for name in "${NAMES[@]}"; do
        file=$(present "$dir" "$name")
        case "$file" in
            *.gz) sum=$(gzip -dc -- "$file" | sha256sum) || die "cannot decompress $file (not a valid gzip file?)" ;;
            *) sum=$(sha256sum -- "$file") || die "cannot read $file" ;;
        esac
        sum=${sum%% *}
        if [ "$sum" != "${SHA256[$name]}" ]; then
            say "error: $file: SHA-256 of its uncompressed bytes is $sum, expected ${SHA256[$name]}"
            bad=1
        fi
    done
    [ "$bad" -eq 0 ] || die "$hint"
}
