#!/usr/bin/env bash
# Installs vane for the GitHub Action (action.yml): the release binary for this runner when the
# action was used at a release tag, its SHA-256 checked; otherwise (a branch or a commit, or no
# such release asset) built from the action's own source with `cargo install --locked`.
# A checksum that does not match is an error, never a reason to fall back. What it does is said on
# stderr; nothing is printed on stdout.
#
# Environment (action.yml sets it; tests set it too):
#   VANE_ACTION_PATH  the action's files (github.action_path)
#   VANE_ACTION_REF   the ref the action was used at (github.action_ref): v1, v1.2, v1.2.3, main, a sha
#   VANE_ACTION_REPO  owner/name of the action (github.action_repository)
#   VANE_ROOT         where vane is installed (bin/vane); its parent may be cached
#   VANE_RELEASES     the releases' download base (default https://github.com/$VANE_ACTION_REPO/releases/download)
#   RUNNER_OS, RUNNER_ARCH, GITHUB_PATH  as GitHub sets them
#
# `install.sh --cache-key` prints the key of the cache of a build from source instead: the
# runner's OS and architecture and a hash of the action's own files (hashFiles() cannot see them:
# they are outside GITHUB_WORKSPACE), so a moved tag or a version bump is a new key.
set -euo pipefail

fail() {
    echo "::error title=vane::$*" >&2
    exit 1
}

case "${RUNNER_OS:-}" in
    Linux | macOS) ;;
    "") fail "RUNNER_OS is not set: this script runs inside GitHub Actions (action.yml)" ;;
    *) fail "vane runs on Linux and macOS runners only (it uses Unix process groups and signals); this runner is ${RUNNER_OS}: use runs-on: ubuntu-latest or macos-latest" ;;
esac
case "${RUNNER_OS}-${RUNNER_ARCH:-}" in
    Linux-X64) target=x86_64-unknown-linux-musl ;;
    Linux-ARM64) target=aarch64-unknown-linux-musl ;;
    macOS-X64) target=x86_64-apple-darwin ;;
    macOS-ARM64) target=aarch64-apple-darwin ;;
    *) target="" ;;
esac

: "${VANE_ACTION_PATH:?the path of the action}"

sha256() {
    if command -v sha256sum >/dev/null 2>&1; then sha256sum "$@"; else shasum -a 256 "$@"; fi
}

if [ "${1:-}" = "--cache-key" ]; then
    hasher=(sha256sum)
    command -v sha256sum >/dev/null 2>&1 || hasher=(shasum -a 256)
    cd "$VANE_ACTION_PATH"
    digest=$(find Cargo.toml Cargo.lock src action -type f -print0 | LC_ALL=C sort -z \
        | xargs -0 "${hasher[@]}" | "${hasher[@]}" | cut -c1-20)
    echo "vane-$RUNNER_OS-${RUNNER_ARCH:-unknown}-$digest"
    exit 0
fi

version=$(sed -n 's/^version = "\(.*\)"/\1/p' "$VANE_ACTION_PATH/Cargo.toml" | head -n 1)
[ -n "$version" ] || fail "no version in $VANE_ACTION_PATH/Cargo.toml"
ref=${VANE_ACTION_REF:-}

# The release whose binary is this action's source: used at `v1.2.3`, that release; at a moving
# major or minor tag (`v1`, `v1.2`), the release of the version the action's Cargo.toml names,
# when it is one of that line. A branch or a commit builds from source.
release=""
if [[ $ref =~ ^v[0-9]+\.[0-9]+\.[0-9]+$ ]]; then
    release=$ref
elif [[ $ref =~ ^v[0-9]+(\.[0-9]+)?$ ]] && [[ v$version == "$ref".* ]]; then
    release=v$version
fi

installed() {
    [ -x "$VANE_ROOT/bin/vane" ] && "$VANE_ROOT/bin/vane" --version 2>/dev/null | grep -qx "vane $version"
}

download() {
    local base=${VANE_RELEASES:-https://github.com/${VANE_ACTION_REPO:?owner/name of the action}/releases/download}
    local asset="vane-$target.tar.gz"
    echo "downloading $asset of vane $release" >&2
    if ! curl --fail --silent --show-error --location --retry 3 --proto '=https,http' \
        -o "$work/$asset" "$base/$release/$asset" \
        || ! curl --fail --silent --show-error --location --retry 3 --proto '=https,http' \
            -o "$work/$asset.sha256" "$base/$release/$asset.sha256"; then
        echo "no release asset $asset for $release; building from source instead" >&2
        return 1
    fi
    local expected actual
    expected=$(awk '{print $1; exit}' "$work/$asset.sha256")
    actual=$(sha256 "$work/$asset" | awk '{print $1}')
    [ "$expected" = "$actual" ] \
        || fail "the SHA-256 of $asset is $actual, its release says $expected: refusing to install it"
    tar -xzf "$work/$asset" -C "$work"
    [ -f "$work/vane" ] || fail "$asset holds no \`vane\` binary"
    mkdir -p "$VANE_ROOT/bin"
    install -m 0755 "$work/vane" "$VANE_ROOT/bin/vane"
}

work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT

if command -v vane >/dev/null 2>&1 && vane --version 2>/dev/null | grep -qx "vane $version"; then
    # A vane of this action's version already on PATH (a self-hosted runner's) is used as it is.
    echo "vane $version is on PATH: $(command -v vane)" >&2
    exit 0
elif installed; then
    echo "vane $version is already installed in $VANE_ROOT" >&2
elif [ -n "$release" ] && [ -n "$target" ] && download; then
    installed || fail "the downloaded vane does not say \`vane $version\`"
else
    echo "building vane $version from $VANE_ACTION_PATH (cargo install --locked)" >&2
    # Without the release profile's whole-program LTO: a published binary is built once and is
    # 24 % smaller with it, a build here runs on every cache miss and is minutes faster without.
    CARGO_PROFILE_RELEASE_LTO="${CARGO_PROFILE_RELEASE_LTO:-false}" \
        CARGO_PROFILE_RELEASE_CODEGEN_UNITS="${CARGO_PROFILE_RELEASE_CODEGEN_UNITS:-16}" \
        "${CARGO:-cargo}" install --locked --path "$VANE_ACTION_PATH" --root "$VANE_ROOT"
    installed || fail "the vane built from source does not say \`vane $version\`"
fi
echo "$VANE_ROOT/bin" >> "${GITHUB_PATH:-/dev/null}"
