#!/usr/bin/env bash
# Check packaging/chatctl.service: `systemd-analyze verify` must print
# nothing (it exits 0 on unknown keys and bad values, and only warns), and
# the ExecStart command line must be one that chatctl accepts.
#
# verify needs the ExecStart binary to exist; rather than install one in
# /usr/local/bin, a freshly built chatctl stands in for it in a copy of the
# unit (same name, only that path changed).
set -euo pipefail
cd "$(dirname "$0")/.."

unit=packaging/chatctl.service
bin=/usr/local/bin/chatctl
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT

go build -o "$tmp/chatctl" .
sed "s#$bin#$tmp/chatctl#g" "$unit" > "$tmp/chatctl.service"

out=$(systemd-analyze verify "$tmp/chatctl.service" 2>&1) || {
  echo "$out"
  echo "error: systemd-analyze verify $unit failed" >&2
  exit 1
}
if [ -n "$out" ]; then
  echo "$out"
  echo "error: systemd-analyze verify $unit reported problems" >&2
  exit 1
fi

# The flags of ExecStart, run with --help: an unknown flag or command fails.
exec_start=$(sed -n 's/^ExecStart=//p' "$unit")
case "$exec_start" in
  "$bin "*) ;;
  *) echo "error: ExecStart of $unit does not start $bin: $exec_start" >&2; exit 1 ;;
esac
# shellcheck disable=SC2086 # the unit's arguments, split as systemd splits them (no quotes there)
if ! "$tmp/chatctl" ${exec_start#"$bin "} --help >/dev/null; then
  echo "error: chatctl does not accept the ExecStart arguments: $exec_start" >&2
  exit 1
fi
echo "ok: $unit"
