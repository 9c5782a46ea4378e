#!/usr/bin/env bash
# Benchmarks rollreboot against five baselines on the lab scenarios tests/scenarios/{six-hosts-n-plus-1,bench-*}.json:
# full --exec runs in scaled time, measured from the lab's audit, with the CLI under /usr/bin/time -v.
# Writes docs/benchmarks/results/*.json, the tables in docs/benchmarks/README.md and docs/benchmarks/chart.svg.
#
#   ./scripts/bench.sh                                   # everything (about 110 min at the default time scale 40, estimated)
#   ./scripts/bench.sh --scenarios six-hosts,hetero-16   # some scenarios (results of the others are kept)
#   ./scripts/bench.sh --scenarios 64-hosts-all --methods rollreboot --time-scale 200   # all 64 hosts of the big pool (only when named)
#   ./scripts/bench.sh --methods rollreboot              # some methods
#   ./scripts/bench.sh --time-scale 20                   # slower, less tool overhead per simulated second
#   ./scripts/bench.sh --report-only                     # rewrite README tables and chart from stored results
#   ./scripts/bench.sh --methods evacuate1 --results-dir /tmp/x   # results elsewhere, README and chart untouched
set -euo pipefail
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
export DOTNET_CLI_TELEMETRY_OPTOUT=1 DOTNET_NOLOGO=1 DOTNET_SKIP_FIRST_TIME_EXPERIENCE=1
[ -x /usr/bin/time ] || { echo "bench: /usr/bin/time is missing (apt-get install -y time)" >&2; exit 2; }
"$root/scripts/rollreboot" --help >/dev/null
dotnet build "$root/bench/RollingReboot.Bench/RollingReboot.Bench.csproj" -c Release -nologo -v quiet >"$root/artifacts/bench-build.log" 2>&1 ||
  { tail -n 30 "$root/artifacts/bench-build.log" >&2; exit 2; }
# A private copy of the CLI, so that a rebuild by anyone else during the bench cannot change it under a run.
cli="$root/artifacts/bench-cli"
( flock 9; rm -rf "$cli"; cp -r "$root/artifacts/cli" "$cli" ) 9>"$root/artifacts/.build.lock"
version="${BENCH_VERSION:-$(git -C "$root" rev-parse --short HEAD 2>/dev/null || echo unknown)}"
if [ -z "${BENCH_VERSION:-}" ] && [ -n "$(git -C "$root" status --porcelain -- src 2>/dev/null)" ]; then version="$version + uncommitted src changes"; fi
exec dotnet "$root/bench/RollingReboot.Bench/bin/Release/net10.0/RollingReboot.Bench.dll" --repo "$root" --cli "$cli/rollreboot.dll" --version-note "$version" "$@"
