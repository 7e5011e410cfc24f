#!/usr/bin/env bash
# Installs vane for the GitHub Action (action.yml), in two steps the action runs in turn:
#
#   action-install.sh download   the release binary for this runner and the action's ref
#                                (`$GITHUB_ACTION_REF`, e.g. `v0.2.0`), its SHA-256 checked;
#                                writes `installed=true|false` and the build cache `key` to
#                                $GITHUB_OUTPUT. A checksum that does not match is an error.
#   action-install.sh build      `cargo install --locked` from the action's own source, when
#                                there was no release to download (a branch, a sha, `@main`).
#
# Kept out of action.yml so that a test can run it against a local server serving a fake release.
#
# Environment:
#   VANE_ROOT      where vane is installed (bin/vane below it)
#   VANE_SOURCE    the action's folder ($GITHUB_ACTION_PATH)
#   VANE_REF       the action's ref ($GITHUB_ACTION_REF); empty for a local `uses: ./`
#   VANE_RELEASES  the base URL of release downloads; default
#                  https://github.com/$VANE_REPOSITORY/releases/download
#   VANE_REPOSITORY the action's repository ($GITHUB_ACTION_REPOSITORY)
set -euo pipefail

mode=${1:-download}
: "${VANE_ROOT:?VANE_ROOT is the install folder}"
: "${VANE_SOURCE:?VANE_SOURCE is the action folder}"
: "${GITHUB_OUTPUT:=/dev/null}"
: "${GITHUB_PATH:=/dev/null}"

# Sets `target` to the release target of this runner. vane uses Unix process groups and signals:
# on another OS say so rather than fail in a build.
detect_target() {
    local os arch
    case "$(uname -s)" in
        Linux) os=unknown-linux-musl ;;
        Darwin) os=apple-darwin ;;
        *)
            echo "::error::vane runs on Linux and macOS runners only (it uses Unix process groups and signals); this runner is $(uname -s). Use \`runs-on: ubuntu-latest\` or \`macos-latest\`."
            exit 1
            ;;
    esac
    case "$(uname -m)" in
        x86_64 | amd64) arch=x86_64 ;;
        aarch64 | arm64) arch=aarch64 ;;
        *)
            echo "::error::no vane build for the $(uname -m) processor; vane is built for x86_64 and aarch64"
            exit 1
            ;;
    esac
    target="$arch-$os"
}

sha256() {
    if command -v sha256sum >/dev/null 2>&1; then
        sha256sum "$@"
    else
        shasum -a 256 "$@"
    fi
}

# The build cache key: a hash of the action's own files. `hashFiles()` cannot be used, since it
# only sees files inside GITHUB_WORKSPACE and the action lives outside it.
cache_key() {
    local hash
    hash=$(cd "$VANE_SOURCE" && find Cargo.toml Cargo.lock src -type f -print0 2>/dev/null \
        | LC_ALL=C sort -z | xargs -0 cat | sha256 | cut -c1-32)
    echo "vane-$target-$hash"
}

download() {
    local asset base dir key
    key=$(cache_key)
    echo "key=$key" >>"$GITHUB_OUTPUT"
    if [ -x "$VANE_ROOT/bin/vane" ] && [ -f "$VANE_ROOT/ref" ] && [ "$(cat "$VANE_ROOT/ref")" = "${VANE_REF:-}" ] && [ -n "${VANE_REF:-}" ]; then
        echo "vane for ${VANE_REF} is already in $VANE_ROOT"
        echo "$VANE_ROOT/bin" >>"$GITHUB_PATH"
        echo "installed=true" >>"$GITHUB_OUTPUT"
        return 0
    fi
    # Releases are made for version tags only; any other ref is built from its source.
    case "${VANE_REF:-}" in
        v[0-9]*.*) ;;
        *)
            echo "no release for the ref \`${VANE_REF:-}\` (releases are tagged vX.Y.Z): building vane"
            echo "installed=false" >>"$GITHUB_OUTPUT"
            return 0
            ;;
    esac
    asset="vane-$target.tar.gz"
    base=${VANE_RELEASES:-https://github.com/${VANE_REPOSITORY:-vane/vane}/releases/download}
    dir=$(mktemp -d)
    if ! curl --fail --silent --show-error --location --retry 3 --output "$dir/$asset" "$base/$VANE_REF/$asset" \
        || ! curl --fail --silent --show-error --location --retry 3 --output "$dir/$asset.sha256" "$base/$VANE_REF/$asset.sha256"; then
        echo "no release asset $asset for $VANE_REF: building vane"
        echo "installed=false" >>"$GITHUB_OUTPUT"
        rm -rf "$dir"
        return 0
    fi
    local expected actual
    expected=$(cut -d' ' -f1 <"$dir/$asset.sha256")
    actual=$(sha256 "$dir/$asset" | cut -d' ' -f1)
    if [ "$expected" != "$actual" ]; then
        echo "::error::the SHA-256 of $asset is $actual, but the release says $expected: refusing to install it"
        rm -rf "$dir"
        exit 1
    fi
    mkdir -p "$VANE_ROOT/bin"
    tar -xzf "$dir/$asset" -C "$VANE_ROOT/bin" vane
    rm -rf "$dir"
    echo "$VANE_REF" >"$VANE_ROOT/ref"
    echo "installed $("$VANE_ROOT/bin/vane" --version) ($target, SHA-256 $actual)"
    echo "$VANE_ROOT/bin" >>"$GITHUB_PATH"
    echo "installed=true" >>"$GITHUB_OUTPUT"
}

build() {
    local wanted
    wanted=$(sed -n 's/^version = "\(.*\)"/\1/p' "$VANE_SOURCE/Cargo.toml" | head -n 1)
    # The cache may hold this very build already (its key is the hash of the source).
    if [ ! -x "$VANE_ROOT/bin/vane" ] || ! "$VANE_ROOT/bin/vane" --version | grep -qx "vane $wanted"; then
        cargo install --locked --path "$VANE_SOURCE" --root "$VANE_ROOT"
    fi
    echo "$VANE_ROOT/bin" >>"$GITHUB_PATH"
}

detect_target
case "$mode" in
    download) download ;;
    build) build ;;
    *)
        echo "usage: action-install.sh download|build" >&2
        exit 2
        ;;
esac
