# Sourced by .ci/run (written by the CLI/config area) before `npm test`: makes a headless
# Chromium available to test/ui.test.ts and exports CHROMIUM_BIN. The UI test FAILS when CI is
# set and no browser is found, so this snippet must succeed or stop the run.
# Uses Debian's `chromium` package (no npm download, no Puppeteer/Playwright).

if [[ -z "${CHROMIUM_BIN:-}" ]]; then
  for candidate in chromium chromium-browser google-chrome google-chrome-stable; do
    if command -v "$candidate" >/dev/null 2>&1; then
      CHROMIUM_BIN="$(command -v "$candidate")"
      break
    fi
  done
fi

if [[ -z "${CHROMIUM_BIN:-}" ]]; then
  echo "chromium not found: installing Debian's chromium package"
  SUDO=""
  if [[ "$(id -u)" != "0" ]] && command -v sudo >/dev/null 2>&1; then SUDO="sudo"; fi
  $SUDO apt-get update
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y --no-install-recommends chromium
  CHROMIUM_BIN="$(command -v chromium)"
fi

export CHROMIUM_BIN
"$CHROMIUM_BIN" --version || true
