# shellcheck shell=bash
# Provides the real OpenWork orchestrator (openwork-orchestrator-linux-x64) for
# test/orchestrator.test.ts, with the OpenCode version it pins, and exports ORCHESTRATOR_BIN and
# ORCHESTRATOR_OPENCODE_BIN. SOURCED by .ci/run before `npm test`. Packages are fetched with
# `npm pack` into a cache OUTSIDE the repo and reused when present. It never exits the calling
# shell: on failure the variables stay unset and, with CI set, the test fails loudly.
#
# Overrides: ORCHESTRATOR_BIN, ORCHESTRATOR_OPENCODE_BIN, OPENWORK_CI_CACHE (default $HOME/.cache/openwork-ci).

__openwork_pack() { # <package> <version> <relative binary> → prints the binary's path
  local dir="${OPENWORK_CI_CACHE:-$HOME/.cache/openwork-ci}/$1-$2"
  if [[ ! -x "$dir/package/$3" ]]; then
    mkdir -p "$dir" || return 1
    local tgz
    tgz="$(cd "$dir" && npm pack --silent "$1@$2" | tail -n 1)" || return 1
    tar -xzf "$dir/$tgz" -C "$dir" && rm -f "$dir/$tgz" || return 1
  fi
  [[ -x "$dir/package/$3" ]] && echo "$dir/package/$3"
}

case "$(uname -m)" in
  x86_64 | amd64) __openwork_arch="x64" ;;
  aarch64 | arm64) __openwork_arch="arm64" ;;
  *) __openwork_arch="" ;;
esac
if [[ -n "$__openwork_arch" ]]; then
  if [[ -z "${ORCHESTRATOR_BIN:-}" ]]; then
    ORCHESTRATOR_BIN="$(__openwork_pack "openwork-orchestrator-linux-${__openwork_arch}" 0.18.1 bin/openwork)" && export ORCHESTRATOR_BIN
  fi
  # 0.18.1 pins OpenCode 1.17.11 (a newer one may not answer its health check during start-up).
  if [[ -z "${ORCHESTRATOR_OPENCODE_BIN:-}" ]]; then
    ORCHESTRATOR_OPENCODE_BIN="$(__openwork_pack "opencode-linux-${__openwork_arch}" 1.17.11 bin/opencode)" && export ORCHESTRATOR_OPENCODE_BIN
  fi
fi
echo "orchestrator: ORCHESTRATOR_BIN=${ORCHESTRATOR_BIN:-unset} ORCHESTRATOR_OPENCODE_BIN=${ORCHESTRATOR_OPENCODE_BIN:-unset}"
unset -f __openwork_pack
unset __openwork_arch
