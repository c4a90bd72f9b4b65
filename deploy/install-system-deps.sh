#!/usr/bin/env bash
# Installs the outside programs the test suite talks to, when they are missing:
# mosquitto (a real MQTT broker the tests start on a free port), Debian's
# chromium (the dashboard test), openssl (TLS tests with s_client), tmux, and
# sqlite3 (the tamper example of docs/records.md, run as written), and Debian's
# postgresql (the PostgreSQL store's tests start a throwaway server from its
# initdb and pg_ctl, which Debian keeps in /usr/lib/postgresql/<version>/bin).
set -euo pipefail
need=()
command -v mosquitto >/dev/null 2>&1 || [ -x /usr/sbin/mosquitto ] || need+=(mosquitto)
command -v chromium >/dev/null 2>&1 || need+=(chromium)
command -v openssl >/dev/null 2>&1 || need+=(openssl)
command -v tmux >/dev/null 2>&1 || need+=(tmux)
command -v sqlite3 >/dev/null 2>&1 || need+=(sqlite3)
ls /usr/lib/postgresql/*/bin/initdb >/dev/null 2>&1 || need+=(postgresql)
if [ ${#need[@]} -eq 0 ]; then
  exit 0
fi
echo "installing: ${need[*]}"
if [ "$(id -u)" != 0 ]; then
  SUDO=sudo
else
  SUDO=
fi
export DEBIAN_FRONTEND=noninteractive
$SUDO apt-get update -q >/dev/null
$SUDO apt-get install -y -q --no-install-recommends "${need[@]}" >/dev/null
