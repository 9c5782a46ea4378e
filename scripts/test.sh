#!/usr/bin/env bash
# The whole test suite: what the README tells a new user to run, and what CI runs.
# Builds once, runs every test project, and ends with one "N passed, N failed" line.
set -uo pipefail
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$root"
export DOTNET_CLI_TELEMETRY_OPTOUT=1 DOTNET_NOLOGO=1 DOTNET_SKIP_FIRST_TIME_EXPERIENCE=1

if [ ! -x /usr/sbin/sshd ]; then
  echo "test.sh: OpenSSH server (/usr/sbin/sshd) is missing; the SSH tests need it: sudo apt-get install -y openssh-server" >&2
fi

dotnet build RollingReboot.sln -c Release -nologo -v quiet 2>&1 | grep -E "error|Warn|warn" | grep -v "^\s*0 " | head -50
if [ "${PIPESTATUS[0]}" -ne 0 ]; then
  echo "test.sh: build failed" >&2
  echo "0 passed, 1 failed"
  exit 1
fi

results="$root/artifacts/test-results"
rm -rf "$results"
mkdir -p "$results"
dotnet test RollingReboot.sln -c Release --no-build -nologo \
  --logger "trx" --results-directory "$results" \
  --logger "console;verbosity=minimal" "$@" -- RunConfiguration.MaxCpuCount=1
status=$?

# One closing line for humans and CI, summed over every test project.
python3 - "$results" <<'PY' || true
import glob, sys, xml.etree.ElementTree as ET
p = f = s = 0
for trx in glob.glob(sys.argv[1] + "/*.trx"):
    c = ET.parse(trx).getroot().find(".//{*}Counters")
    if c is None:
        continue
    p += int(c.get("passed", 0)); f += int(c.get("failed", 0)) + int(c.get("error", 0)) + int(c.get("timeout", 0) or 0)
    s += int(c.get("notExecuted", 0))
print(f"{p} passed, {f} failed, {s} skipped")
PY
exit $status
