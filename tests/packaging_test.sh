#!/usr/bin/env bash
# The scheduler recipes in packaging/ are tested, not prose (issue 13):
#   - the systemd units pass `systemd-analyze verify` with no warning at all (an unknown or
#     misspelt key is only a warning there, so any output fails this test);
#   - the Windows Task Scheduler definition is well-formed XML (xmllint), and its command line
#     is the one schtasks.cmd creates;
#   - every recipe's stagesync command line is accepted by the stagesync built here (run with
#     the configuration path replaced by a missing file: one cycle runs and fails on it, exit 2).
# A missing tool fails the test (scripts/install-deps.sh installs systemd and libxml2-utils).
# Usage: packaging_test.sh STAGESYNC_BINARY PACKAGING_DIR
set -uo pipefail
binary=$1
dir=$2
failures=0
fail() { echo "FAIL: $*"; failures=$((failures + 1)); }
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT

for tool in systemd-analyze xmllint; do
  command -v "$tool" >/dev/null || fail "$tool is not installed (scripts/install-deps.sh installs it)"
done

# systemd: the units as shipped, with ExecStart's binary replaced by the one built here.
for unit in "$dir"/systemd/*; do
  sed "s|/usr/local/bin/stagesync|$binary|" "$unit" >"$work/$(basename "$unit")"
done
if command -v systemd-analyze >/dev/null; then
  out=$(cd "$work" && systemd-analyze verify stagesync.service stagesync-once.service stagesync.timer 2>&1)
  rc=$?
  if [ $rc -ne 0 ] || [ -n "$out" ]; then fail "systemd-analyze verify (exit $rc): $out"; else echo "ok: systemd-analyze verify"; fi
fi
grep -q -- '--every' "$dir/systemd/stagesync.service" || fail "stagesync.service must run --every"
grep -q -- '--once' "$dir/systemd/stagesync-once.service" || fail "stagesync-once.service must run --once"
for key in NoNewPrivileges=yes Restart=on-failure User=stagesync ProtectSystem=strict SuccessExitStatus; do
  grep -q "^$key" "$dir/systemd/stagesync.service" || fail "stagesync.service lacks $key"
done

# Windows: well-formed, and the same command line as schtasks.cmd.
xml="$dir/windows/stagesync-task.xml"
if command -v xmllint >/dev/null; then
  if xmllint --noout "$xml"; then echo "ok: xmllint $xml"; else fail "xmllint $xml"; fi
  args=$(xmllint --xpath "string(//*[local-name()='Arguments'])" "$xml")
  exe=$(xmllint --xpath "string(//*[local-name()='Command'])" "$xml")
  tr_cmd="\\\"${exe//\"/}\\\" $args"
  grep -qF -- "/TR \"$tr_cmd\"" "$dir/windows/schtasks.cmd" || fail "schtasks.cmd does not create the XML's command: $tr_cmd"
fi

# Each recipe's command line, through the real argument parser and one cycle.
check_args() {  # NAME ARGS...
  local name=$1
  shift
  local args=()
  local a
  for a in "$@"; do
    case "$a" in
      *stagesync.yaml) args+=("$work/missing.yaml") ;;
      *stagesync.state.json) args+=("$work/state.json") ;;
      --every) args+=("--once") ;;
      5m) ;;  # --every's value
      *) args+=("$a") ;;
    esac
  done
  local out rc
  out=$("$binary" "${args[@]}" 2>&1)
  rc=$?
  if [ $rc -eq 2 ] && grep -q "cycle 1 failed" <<<"$out"; then
    echo "ok: $name command line"
  else
    fail "$name: stagesync ${args[*]} (exit $rc): $out"
  fi
}
for unit in stagesync.service stagesync-once.service; do
  line=$(sed -n 's|^ExecStart=/usr/local/bin/stagesync ||p' "$dir/systemd/$unit")
  read -r -a words <<<"$line"
  check_args "$unit" "${words[@]}"
done
cron=$(grep -E '^[^#A-Z].* stagesync run ' "$dir/cron/stagesync")
read -r -a words <<<"$cron"
[ "${words[5]}" = stagesync ] || fail "cron line: the sixth field must be the user: $cron"
[ "${words[6]}" = stagesync ] || fail "cron line: the command must be stagesync: $cron"
cron_args=()
for w in "${words[@]:7}"; do
  case "$w" in '>>'*|'2>&1') ;; *) cron_args+=("$w") ;; esac
done
check_args cron "${cron_args[@]}"
read -r -a words <<<"$(xmllint --xpath "string(//*[local-name()='Arguments'])" "$xml" 2>/dev/null | tr '\\' '/')"
check_args "Task Scheduler" "${words[@]}"

if [ $failures -ne 0 ]; then
  echo "$failures failure(s)"
  exit 1
fi
echo "all recipes ok"
