# dataset_lib.sh: what the fetch scripts share, sourced by them. The caller sets `sums` (a
# sha256sum-format file), `files` (the names) and `name` (its own name, for messages).

# verify FILE: 0 when FILE exists and its SHA-256 is the one $sums lists for its name.
verify() {
    [ -f "$1" ] || return 1
    want=$(awk -v f="$(basename "$1")" '$2 == f { print $1 }' "$sums")
    [ -n "$want" ] || return 1
    have=$(sha256sum < "$1" | cut -d' ' -f1)
    [ "$have" = "$want" ]
}

# all_verified DIR: 0 when every one of $files is in DIR with the right checksum.
all_verified() {
    for f in $files; do verify "$1/$f" || return 1; done
}

# install_verified SRC DIR: checks every file of SRC, and only when all pass copies each next
# to its target and renames it, so a reader never sees a half-written or unchecked file.
install_verified() {
    for f in $files; do
        if [ ! -f "$1/$f" ]; then
            echo "$name: $f is missing from $1; $2 left untouched" >&2
            exit 1
        fi
        if ! verify "$1/$f"; then
            echo "$name: $f: checksum mismatch (expected the SHA-256 in $(basename "$sums"));" \
                 "$2 left untouched" >&2
            exit 1
        fi
    done
    mkdir -p "$2"
    for f in $files; do
        cp "$1/$f" "$2/.$f.part"
        mv -f "$2/.$f.part" "$2/$f"
    done
}
