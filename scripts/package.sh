#!/usr/bin/env bash
# Packages the rollreboot CLI two ways and proves each one runs:
#   1. a .NET tool package   artifacts/packages/rollreboot.<version>.nupkg
#      (installed with `dotnet tool install --tool-path <tmp> --add-source ./artifacts/packages rollreboot`,
#       then run: --version, --help, lab --help, and a dry-run plan against the embedded lab, which needs
#       the ASP.NET Core shared framework that the lab references)
#   2. a self-contained single-file Linux x64 binary   artifacts/single-file/rollreboot
#      (no .NET installed needed on the target; the same checks)
#
#   ./scripts/package.sh                     # both
#   ./scripts/package.sh --skip-single-file  # the tool package only (no runtime packs to download)
#
# The self-contained build needs the runtime packs Microsoft.NETCore.App.Runtime.linux-x64 and
# Microsoft.AspNetCore.App.Runtime.linux-x64 from NuGet; when they cannot be downloaded the script says so
# and exits 3 (the tool package, if made, is kept). Builds go to artifacts/package-build (--artifacts-path),
# so packaging never touches the bin/obj folders of a developer's or the tests' builds.
# Exit: 0 everything made and checked, 1 a build or a check failed, 2 bad usage, 3 runtime packs unavailable.
set -euo pipefail
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$root"
export DOTNET_CLI_TELEMETRY_OPTOUT=1 DOTNET_NOLOGO=1 DOTNET_SKIP_FIRST_TIME_EXPERIENCE=1

single_file=1
for arg in "$@"; do
  case "$arg" in
    --skip-single-file) single_file=0 ;;
    -h|--help) sed -n '2,18p' "$0" | sed 's/^# \{0,1\}//'; exit 0 ;;
    *) echo "package.sh: unknown argument '$arg' (see --help)" >&2; exit 2 ;;
  esac
done

project="src/RollingReboot.Cli/RollingReboot.Cli.csproj"
packages="artifacts/packages"
single="artifacts/single-file"
build="$root/artifacts/package-build"
logs="$root/artifacts/package-logs"
mkdir -p "$logs"
tmp="$(mktemp -d /tmp/rollreboot-package.XXXXXX)"
trap 'rm -rf "$tmp"' EXIT

say() { printf 'package.sh: %s\n' "$*"; }
fail() { printf 'package.sh: FAILED: %s\n' "$*" >&2; exit 1; }

# Every artifact must report <version>+<commit of HEAD when it was built> (SourceLink adds the commit).
# Others may commit while this runs, so HEAD is read before and after each build and either is accepted.
git_head() { git -C "$root" rev-parse HEAD 2>/dev/null || true; }
built_from=""

# Runs the checks on one rollreboot executable: $1 label, $2 path.
check_cli() {
  local label="$1" exe="$2" out
  out="$("$exe" --version)" || fail "$label: '$exe --version' exited $?"
  say "$label: rollreboot --version -> $out"
  [ "${out%%+*}" = "$version" ] || fail "$label: --version says '$out', the package version is $version"
  if [ -n "$built_from" ] && [[ " $built_from " != *" ${out#*+} "* ]]; then
    fail "$label: --version says '$out' but the build was made from $built_from: this is not the build just made"
  fi
  "$exe" --help >"$tmp/help.txt" || fail "$label: 'rollreboot --help' failed"
  grep -q -- '--clustername' "$tmp/help.txt" || fail "$label: 'rollreboot --help' does not list --clustername"
  say "$label: rollreboot --help -> $(grep -c -- '^  -' "$tmp/help.txt") options listed"
  "$exe" lab --help >"$tmp/lab-help.txt" || fail "$label: 'rollreboot lab --help' failed"
  grep -q -- '--scenario' "$tmp/lab-help.txt" || fail "$label: 'rollreboot lab --help' does not list --scenario"
  say "$label: rollreboot lab --help -> ok"
  # A real start of the embedded lab (Kestrel from the ASP.NET Core shared framework, XAPI and CloudStack
  # on loopback) and a plan against it: no ROLLREBOOT_* variable may point it at a real pool.
  local state="$tmp/state-$label" rc=0
  (
    while IFS= read -r v; do unset "$v"; done < <(compgen -e | grep '^ROLLREBOOT_' || true)
    export ROLLREBOOT_STATE_DIR="$state"
    timeout 300 "$exe" --clustername CLUSTER-1 >"$tmp/plan.txt" 2>"$tmp/plan.err"
  ) || rc=$?
  if [ "$rc" -ne 0 ] || ! grep -q '^READY' "$tmp/plan.txt"; then
    cat "$tmp/plan.err" >&2
    fail "$label: dry-run plan against the embedded lab exited $rc"
  fi
  say "$label: rollreboot --clustername CLUSTER-1 (embedded lab, dry run) -> exit 0, $(grep -m1 '^READY' "$tmp/plan.txt")"
}

# 1. The .NET tool package.
say "dotnet pack $project -c Release -o $packages (log: artifacts/package-logs/pack.log)"
rm -f "$packages"/rollreboot.*.nupkg
before="$(git_head)"
if ! dotnet pack "$project" -c Release -o "$packages" --artifacts-path "$build" -nologo >"$logs/pack.log" 2>&1; then
  tail -n 30 "$logs/pack.log" >&2
  fail "dotnet pack failed; see $logs/pack.log"
fi
built_from="$before $(git_head)"
shopt -s nullglob
nupkgs=("$packages"/rollreboot.*.nupkg)
shopt -u nullglob
[ "${#nupkgs[@]}" -eq 1 ] || fail "expected one rollreboot.*.nupkg in $packages, found ${#nupkgs[@]}"
nupkg="${nupkgs[0]}"
version="$(basename "$nupkg" .nupkg)"
version="${version#rollreboot.}"
# Zip entry names are stored uncompressed: no unzip needed to see the tool manifest.
grep -qa 'DotnetToolSettings.xml' "$nupkg" || fail "$nupkg is not a .NET tool package (no DotnetToolSettings.xml)"
say "tool package: $nupkg (version $version, $(du -h "$nupkg" | cut -f1))"

tools="$tmp/tools"
say "dotnet tool install --tool-path $tools --add-source ./$packages rollreboot --version $version"
if ! dotnet tool install --tool-path "$tools" --add-source "./$packages" rollreboot --version "$version" >"$logs/tool-install.log" 2>&1; then
  cat "$logs/tool-install.log" >&2
  fail "dotnet tool install failed; see $logs/tool-install.log"
fi
[ -x "$tools/rollreboot" ] || fail "dotnet tool install made no $tools/rollreboot"
check_cli tool "$tools/rollreboot"

# 2. The self-contained single-file binary.
if [ "$single_file" = 0 ]; then
  say "single-file build skipped (--skip-single-file)"
else
  say "dotnet publish $project -c Release -r linux-x64 --self-contained -p:PublishSingleFile=true -o $single (log: artifacts/package-logs/publish.log)"
  rm -rf "$single"
  before="$(git_head)"
  if ! dotnet publish "$project" -c Release -r linux-x64 --self-contained -p:PublishSingleFile=true -o "$single" \
      --artifacts-path "$build" -nologo >"$logs/publish.log" 2>&1; then
    tail -n 30 "$logs/publish.log" >&2
    # Restore errors at this point concern what the pack above did not need: the linux-x64 runtime packs.
    nuget_error="$(grep -m1 -oE 'error NU1(101|102|103|301|801)[^[]*' "$logs/publish.log" | sed 's/[[:space:]]*$//' || true)"
    if [ -n "$nuget_error" ]; then
      echo "package.sh: NOT MADE: the self-contained single-file build needs the linux-x64 runtime packs" \
        "(Microsoft.NETCore.App.Runtime.linux-x64, Microsoft.AspNetCore.App.Runtime.linux-x64) and they could not be" \
        "downloaded from NuGet ($nuget_error). The tool package $nupkg was made and checked." >&2
      exit 3
    fi
    fail "dotnet publish (self-contained single file) failed; see $logs/publish.log"
  fi
  built_from="$before $(git_head)"
  binary="$single/rollreboot"
  [ -x "$binary" ] || fail "dotnet publish made no $binary"
  # No rollreboot.dll or runtimeconfig beside it: everything (runtime, ASP.NET Core, the app) is in the one file.
  extra="$(find "$single" -maxdepth 1 -type f ! -name rollreboot ! -name '*.pdb' -printf '%f ')"
  [ -z "$extra" ] || fail "$single holds more than the binary and debug symbols: $extra"
  say "single-file binary: $binary ($(du -h "$binary" | cut -f1); the .pdb files beside it are debug symbols only, not needed to run)"
  # DOTNET_ROOT pointing nowhere: the binary must not need an installed .NET.
  DOTNET_ROOT=/nonexistent check_cli single-file "$binary"
fi

say "produced:"
say "  $nupkg  (install: dotnet tool install -g --add-source ./$packages rollreboot)"
if [ "$single_file" = 1 ]; then
  say "  $single/rollreboot  (self-contained, linux-x64; copy the one file)"
fi
