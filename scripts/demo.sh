#!/usr/bin/env bash
# Starts the lab with the six-host scenario, shows the plan, runs the rolling reboot, shows the audit.
set -euo pipefail
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
scenario="${1:-$root/tests/scenarios/six-hosts-n-plus-1.json}"
scale="${SCALE:-200}"
work="$(mktemp -d)"
trap 'kill "$lab_pid" 2>/dev/null || true; wait "$lab_pid" 2>/dev/null || true; rm -rf "$work"' EXIT

"$root/scripts/rollreboot" lab --scenario "$scenario" --time-scale "$scale" >"$work/ready" 2>"$work/lab.log" &
lab_pid=$!
for _ in $(seq 1 600); do
  [ -s "$work/ready" ] && break
  kill -0 "$lab_pid" 2>/dev/null || { cat "$work/lab.log" >&2; exit 2; }
  sleep 0.2
done
eval "$(python3 -c '
import json, shlex, sys
d = json.load(open(sys.argv[1]))
for k, v in d["env"].items():
    print("export %s=%s" % (k, shlex.quote(v)))
print("export AUDIT_URL=%s" % shlex.quote(d["auditUrl"]))
' "$work/ready")"
export ROLLREBOOT_STATE_DIR="$work/state"
cluster="$(python3 -c 'import json,sys; d=json.load(open(sys.argv[1])); print((d.get("cloudstack") or {}).get("clusterName") or d["pool"]["name"])' "$scenario")"

echo "== the plan (dry run) =="
"$root/scripts/rollreboot" --clustername "$cluster" || true
echo
echo "== the run =="
"$root/scripts/rollreboot" --clustername "$cluster" --exec
echo
echo "== what the lab saw =="
python3 - "$AUDIT_URL" <<'PY'
import json, sys, urllib.request
a = json.load(urllib.request.urlopen(sys.argv[1]))
print("hosts rebooted:", {h["name"]: h["bootCount"] for h in a["hosts"]})
print("VMs running:", sum(v["powerState"] == "Running" for v in a["vms"]), "of", len(a["vms"]))
print("HA:", a["pool"]["haEnabled"], a["pool"]["haConfiguration"], "| CloudStack:", (a["cloudstack"] or {}).get("managedState"))
print("violations:", a["violations"] or "none")
PY
