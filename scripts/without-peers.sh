#!/usr/bin/env bash
# Runs a command as on a machine without the Debian test peers: inside a private mount namespace,
# mosquitto, its clients, socat, chromium, python3-pymodbus and PostgreSQL's binaries are hidden
# behind empty non-executable files/directories. Needs root (or CAP_SYS_ADMIN) for unshare -m.
# Usage: scripts/without-peers.sh npm test
set -euo pipefail
if [ "$#" -eq 0 ]; then echo "usage: $0 COMMAND [ARGS...]" >&2; exit 2; fi
exec unshare -m --propagation private bash -c '
  set -euo pipefail
  blank=$(mktemp); chmod 0644 "$blank"
  empty=$(mktemp -d)
  for cmd in mosquitto mosquitto_passwd mosquitto_pub mosquitto_sub socat chromium; do
    for p in $(type -ap "$cmd" 2>/dev/null; ls /usr/sbin/$cmd /usr/bin/$cmd 2>/dev/null); do
      mount --bind "$blank" "$(readlink -f "$p")" 2>/dev/null || true
    done
  done
  nopkg=$(mktemp -d); echo "raise ImportError(\"hidden by without-peers.sh\")" > "$nopkg/__init__.py"
  for pkg in pymodbus aiosmtpd; do
    [ -d /usr/lib/python3/dist-packages/$pkg ] && mount --bind "$nopkg" /usr/lib/python3/dist-packages/$pkg
  done
  [ -d /usr/lib/postgresql ] && mount --bind "$empty" /usr/lib/postgresql
  unset HOMEFLEX_REQUIRE_PEERS
  exec "$@"
' bash "$@"
