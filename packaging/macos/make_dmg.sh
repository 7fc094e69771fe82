#!/usr/bin/env bash
# Makes the macOS disk image: Hearth.app beside a link to /Applications, the usual drag-to-install window.
#
#   packaging/macos/make_dmg.sh dist/Hearth.app dist/Hearth-<version>-macos-<arch>.dmg
#
# Signing and notarization happen here when their settings are in the environment (see packaging/README.md):
#   HEARTH_CODESIGN_IDENTITY  "Developer ID Application: Name (TEAMID)": signs the app (hardened runtime) and the image
#   HEARTH_NOTARY_PROFILE     a keychain profile made by `xcrun notarytool store-credentials`: notarizes and staples
# Without them the image is unsigned: fine for testing, but Gatekeeper will warn whoever downloads it.
set -euo pipefail

app=${1:?usage: make_dmg.sh PATH/Hearth.app OUT.dmg}
out=${2:?usage: make_dmg.sh PATH/Hearth.app OUT.dmg}
here=$(cd "$(dirname "$0")" && pwd)
identity=${HEARTH_CODESIGN_IDENTITY:-}
profile=${HEARTH_NOTARY_PROFILE:-}

[ -x "$app/Contents/MacOS/Hearth" ] || { echo "make_dmg.sh: $app is not a built Hearth.app" >&2; exit 1; }

if [ -n "$identity" ]; then
    # Every library inside is signed with the same identity (--deep), so library validation stays on; the
    # entitlements allow only what Python's ctypes and llama.cpp need under the hardened runtime.
    codesign --force --deep --timestamp --options runtime --entitlements "$here/entitlements.plist" \
        --sign "$identity" "$app"
    codesign --verify --strict --verbose=2 "$app"
fi

staging=$(mktemp -d)
trap 'rm -rf "$staging"' EXIT
ditto "$app" "$staging/Hearth.app"  # ditto keeps symbolic links, extended attributes and signatures
ln -s /Applications "$staging/Applications"
rm -f "$out"
hdiutil create -volname Hearth -srcfolder "$staging" -fs HFS+ -format UDZO -imagekey zlib-level=9 -ov "$out"

if [ -n "$identity" ]; then
    codesign --force --timestamp --sign "$identity" "$out"
fi
if [ -n "$identity" ] && [ -n "$profile" ]; then
    xcrun notarytool submit "$out" --keychain-profile "$profile" --wait
    xcrun stapler staple "$out"
fi
echo "$out"
