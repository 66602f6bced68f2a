#!/usr/bin/env bash
# Go benchmarks behind the figures: token mint and verify (with the user
# lookup), user lookup, durable appends with fsync from 512 senders, and one
# bcrypt hash. Prints the median of RUNS runs of each.
# usage: bench/scripts/micro.sh [RUNS]
set -euo pipefail
cd "$(dirname "$0")/../.."
RUNS=${1:-6}
{
  go test ./admin ./auth ./store -run '^$' -bench 'Mint|Verify$|UserLookup' -count "$RUNS"
  go test ./store -run '^$' -bench 'AppendParallel' -benchtime 3s -count "$RUNS"
  go test ./auth -run '^$' -bench 'Hash/cost12' -benchtime 8x -count 3
} | python3 -c '
import sys, re, statistics, collections
d = collections.defaultdict(list)
for line in sys.stdin:
    m = re.match(r"^(Benchmark\S+)\s+\d+\s+([\d.]+) ns/op", line)
    if m: d[m.group(1)].append(float(m.group(2)))
for name, v in d.items():
    med = statistics.median(v)
    extra = f"  = {1e9/med:,.0f} appends/s" if "Append" in name else ""
    print(f"{name:36s} median {med:>14,.1f} ns/op over {len(v)} runs{extra}")
'
