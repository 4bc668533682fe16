# shellcheck shell=bash
# Provides the real OpenCode binary for test/proxy-opencode-real.test.ts and exports OPENCODE_BIN.
# SOURCED by .ci/run (owned by the CLI/config engineer) before `npm test`: `source .ci/opencode.sh`.
# The package is fetched with `npm pack` into a cache OUTSIDE the repo and reused when present.
# It never exits the calling shell: on failure OPENCODE_BIN stays unset and, with CI set, the
# real-engine test fails loudly (it never skips silently in CI).
#
# Overrides: OPENCODE_BIN (use this binary, fetch nothing), OPENCODE_VERSION (default pinned
# below), OPENWORK_CI_CACHE (default $HOME/.cache/openwork-ci).

__openwork_opencode() {
  if [[ -n "${OPENCODE_BIN:-}" && -x "${OPENCODE_BIN}" ]]; then
    echo "opencode: using OPENCODE_BIN=${OPENCODE_BIN}"
    return 0
  fi
  local arch
  case "$(uname -m)" in
    x86_64 | amd64) arch="x64" ;;
    aarch64 | arm64) arch="arm64" ;;
    *) echo "opencode: unsupported architecture $(uname -m); OPENCODE_BIN left unset" >&2; return 0 ;;
  esac
  local version="${OPENCODE_VERSION:-1.18.34}"
  local pkg="opencode-linux-${arch}"
  local dir="${OPENWORK_CI_CACHE:-$HOME/.cache/openwork-ci}/${pkg}-${version}"
  local bin="${dir}/package/bin/opencode"
  if [[ ! -x "$bin" ]]; then
    mkdir -p "$dir" || return 0
    local tgz
    if ! tgz="$(cd "$dir" && npm pack --silent "${pkg}@${version}" | tail -n 1)" || [[ -z "$tgz" ]]; then
      echo "opencode: npm pack ${pkg}@${version} failed; OPENCODE_BIN left unset" >&2
      return 0
    fi
    if ! tar -xzf "${dir}/${tgz}" -C "$dir"; then
      echo "opencode: could not extract ${dir}/${tgz}; OPENCODE_BIN left unset" >&2
      return 0
    fi
    rm -f "${dir}/${tgz}"
  fi
  if [[ -x "$bin" ]]; then
    export OPENCODE_BIN="$bin"
    echo "opencode: OPENCODE_BIN=${OPENCODE_BIN} ($("$bin" --version 2>/dev/null || echo "version unknown"))"
  else
    echo "opencode: ${bin} is missing after extraction; OPENCODE_BIN left unset" >&2
  fi
}
__openwork_opencode
unset -f __openwork_opencode
