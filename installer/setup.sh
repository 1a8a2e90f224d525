#!/usr/bin/env bash
# dmp-bridge set-up on Debian 12: installs what is needed, then runs.
#   installer/setup.sh sandbox   -> the daemon on its embedded default (virtual cards + DMP simulator)
#   installer/setup.sh test      -> ruff, mypy and the whole test suite
# Idempotent: a second run only re-checks what is there.
set -euo pipefail

here="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
mode="${1:-}"
shift || true
venv="${DMP_BRIDGE_VENV:-$here/.venv}"

case "$mode" in
  sandbox|test) ;;
  *) echo "usage: installer/setup.sh sandbox|test [args...]" >&2; exit 2 ;;
esac

as_root() { if [ "$(id -u)" -eq 0 ]; then "$@"; else sudo "$@"; fi; }

apt_packages=(pcscd vsmartcard-vpcd libpcsclite-dev swig python3-venv python3-dev gcc xmlsec1 openssl util-linux)
# softhsm2: a real PKCS#11 module for the PKCS#11 backend tests; rpm2cpio + cpio unpack the Cryptolib RPM.
[ "$mode" = test ] && apt_packages+=(chromium softhsm2 rpm2cpio cpio)

missing=()
for p in "${apt_packages[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
if [ "${#missing[@]}" -gt 0 ]; then
  echo "==> apt: ${missing[*]}"
  as_root apt-get update -qq
  as_root env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
fi

# A system pcscd started by socket activation would hold /run/pcscd; the tests use a private one.
stamp="$venv/.installed-$(sha256sum "$here/pyproject.toml" | cut -c1-16)"
if [ ! -f "$stamp" ]; then
  echo "==> virtualenv $venv"
  [ -x "$venv/bin/python" ] || python3 -m venv "$venv"
  "$venv/bin/pip" install -q --upgrade pip
  "$venv/bin/pip" install -q -e "$here[test]"
  rm -f "$venv"/.installed-*
  touch "$stamp"
fi

cd "$here"
if [ "$mode" = sandbox ]; then
  exec "$venv/bin/dmp-bridge" sandbox "$@"
fi

echo "==> ruff";  "$venv/bin/ruff" check bridge tests
echo "==> mypy";  "$venv/bin/mypy"
echo "==> pytest"
# The suite starts its own pcscd in a private mount namespace (see tests/conftest.py).
set +e
"$venv/bin/python" -m pytest "$@"
rc=$?
set -e
if [ "$rc" -eq 5 ]; then echo "pytest collected no test" >&2; exit 1; fi
exit "$rc"
