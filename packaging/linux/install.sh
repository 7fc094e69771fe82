#!/bin/sh
# Installs Hearth for the current user, without root: run it from the unpacked tarball.
#
#   ./install.sh              install (or update) Hearth and add it to the applications menu
#   ./install.sh --uninstall  remove Hearth; your models, conversations and settings are kept
#
# The app goes to $XDG_DATA_HOME/hearth (~/.local/share/hearth), the menu entry, icons and AppStream metadata to
# the matching folders under $XDG_DATA_HOME. Your own data lives elsewhere (~/.local/share/Hearth,
# ~/.config/Hearth, ~/.local/state/Hearth, ~/.cache/Hearth) and is never touched by this script.
set -eu

APP_ID=io.hearth.Hearth
HERE=$(cd "$(dirname "$0")" && pwd)
DATA=${XDG_DATA_HOME:-$HOME/.local/share}
APP_DIR=$DATA/hearth
MARKER=$APP_DIR/.hearth-install  # names what this script put in APP_DIR, so only that is ever removed
ICON_SIZES="48 64 128 256 512"

say() { printf '%s\n' "$*"; }
fail() { printf 'install.sh: %s\n' "$*" >&2; exit 1; }

if [ "$(id -u)" = 0 ] && [ -z "${HEARTH_ALLOW_ROOT:-}" ]; then
    fail "run this as your own user, not as root: Hearth installs into your home folder"
fi

remove_app_files() {
    [ -f "$MARKER" ] || return 0
    while IFS= read -r entry; do
        case $entry in
            ''|.|..|*/*) continue ;;
        esac
        rm -rf "${APP_DIR:?}/$entry"
    done < "$MARKER"
    rm -f "$MARKER"
    rmdir "$APP_DIR" 2>/dev/null || true
}

remove_desktop_files() {
    rm -f "$DATA/applications/$APP_ID.desktop" "$DATA/metainfo/$APP_ID.metainfo.xml" \
        "$DATA/icons/hicolor/scalable/apps/$APP_ID.svg"
    for size in $ICON_SIZES; do
        rm -f "$DATA/icons/hicolor/${size}x${size}/apps/$APP_ID.png"
    done
}

refresh_menus() {
    if command -v update-desktop-database >/dev/null 2>&1; then
        update-desktop-database -q "$DATA/applications" 2>/dev/null || true
    fi
    if command -v gtk-update-icon-cache >/dev/null 2>&1 && [ -f "$DATA/icons/hicolor/index.theme" ]; then
        gtk-update-icon-cache -q -t -f "$DATA/icons/hicolor" 2>/dev/null || true
    fi
}

uninstall() {
    if [ ! -f "$MARKER" ] && [ ! -f "$DATA/applications/$APP_ID.desktop" ]; then
        say "Hearth is not installed in $APP_DIR."
        return 0
    fi
    remove_app_files
    remove_desktop_files
    refresh_menus
    say "Hearth was removed."
    say "Your models, conversations and settings are kept in ${DATA}/Hearth and ${XDG_CONFIG_HOME:-$HOME/.config}/Hearth;"
    say "delete those folders yourself if you no longer want them."
}

install() {
    [ -x "$HERE/Hearth/Hearth" ] || fail "no Hearth/Hearth beside this script: run it from the unpacked tarball"
    if [ -d "$APP_DIR" ] && [ ! -f "$MARKER" ] && [ -n "$(ls -A "$APP_DIR" 2>/dev/null)" ]; then
        fail "$APP_DIR exists and was not made by this script; move it away first"
    fi
    mkdir -p "$DATA"
    staging=$(mktemp -d "$DATA/.hearth-install.XXXXXX")
    trap 'rm -rf "$staging" "$staging.list"' EXIT
    cp -RP "$HERE/Hearth/." "$staging/"
    remove_app_files
    mkdir -p "$APP_DIR"
    : > "$staging.list"
    for entry in "$staging"/* "$staging"/.[!.]*; do
        [ -e "$entry" ] || [ -L "$entry" ] || continue
        mv "$entry" "$APP_DIR/"
        basename "$entry" >> "$staging.list"
    done
    mv "$staging.list" "$MARKER"

    mkdir -p "$DATA/applications" "$DATA/metainfo" "$DATA/icons/hicolor/scalable/apps"
    # Exec and TryExec need the absolute path, Exec's quoted since a home folder may contain spaces.
    target=$(printf '%s' "$APP_DIR/Hearth" | sed 's/[\\&|]/\\&/g')
    sed -e "s|^Exec=.*|Exec=\"$target\"|" -e "/^Exec=/a TryExec=$target" \
        "$HERE/$APP_ID.desktop" > "$DATA/applications/$APP_ID.desktop"
    cp "$HERE/$APP_ID.metainfo.xml" "$DATA/metainfo/$APP_ID.metainfo.xml"
    cp "$HERE/icons/hearth.svg" "$DATA/icons/hicolor/scalable/apps/$APP_ID.svg"
    for size in $ICON_SIZES; do
        mkdir -p "$DATA/icons/hicolor/${size}x${size}/apps"
        cp "$HERE/icons/hearth-$size.png" "$DATA/icons/hicolor/${size}x${size}/apps/$APP_ID.png"
    done
    refresh_menus
    say "Hearth is installed in $APP_DIR and listed in your applications menu."
    say "To check it: \"$APP_DIR/Hearth\" --self-test"
}

case ${1:-} in
    '') install ;;
    --uninstall) uninstall ;;
    -h|--help) sed -n '2,9p' "$0" | sed 's/^# \{0,1\}//' ;;
    *) fail "unknown option $1 (use --uninstall, or nothing to install)" ;;
esac
