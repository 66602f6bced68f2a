#!/usr/bin/env bash
# Run a command with a throwaway PostgreSQL server for the tests that need
# one (internal/pgtest), as .ci/run does:
#
#   scripts/pg-test.sh                          # go test -race ./...
#   scripts/pg-test.sh go test -run Store ./store/...
#
# It starts a cluster in a temporary folder with scripts/pg-cluster.sh
# (Debian's postgresql package, or PG_BIN), exports CHATCTL_TEST_POSTGRES,
# runs the command, then stops the cluster and removes the folder, and
# exits with the command's status.
set -euo pipefail

here=$(cd "$(dirname "$0")" && pwd)
dir=$(mktemp -d "${TMPDIR:-/tmp}/chatctl-pg.XXXXXX")
trap '"$here/pg-cluster.sh" stop "$dir" || echo "pg-test: could not stop the cluster in $dir" >&2; rm -rf "$dir"' EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

CHATCTL_TEST_POSTGRES=$("$here/pg-cluster.sh" start "$dir") || {
  echo "pg-test: could not start PostgreSQL (see above)" >&2
  exit 1
}
export CHATCTL_TEST_POSTGRES
echo "pg-test: CHATCTL_TEST_POSTGRES=$CHATCTL_TEST_POSTGRES" >&2

if [ $# -eq 0 ]; then
  set -- go test -race ./...
fi
status=0
"$@" || status=$?
exit "$status"
