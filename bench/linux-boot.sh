#!/usr/bin/env bash
# linux-boot.sh - boot Debian's kernel to /init under Emu64 and under QEMU (TCG) in one run, side by side.
#
# Input: tests/linux/out/{vmlinuz,initrd.gz} from tests/linux/fetch-linux.sh. The initramfs's /init prints
# "EMU64-INIT: reached /init", a few lines about the machine, and powers off (poweroff -f, ACPI S5).
# Each emulator boots the same kernel, initrd and command line; the script notes the wall time at which the
# marker line reaches the console and the wall time of the whole run (to the power-off), and prints them
# with Emu64's guest instruction count (--stats) and the ratio Emu64 / QEMU.
#
#   Emu64: src/Emu64.Cli/bin/Release/net10.0/emu64 run vmlinuz --initrd initrd.gz --append ARGS -m 512 --stats
#   QEMU:  qemu-system-x86_64 -accel tcg -cpu max -m 512 -kernel vmlinuz -initrd initrd.gz -append ARGS
#          -display none -serial stdio -monitor none -no-reboot
#
# Usage: bench/linux-boot.sh [--no-build] [--repeat R] [--append "console=ttyS0 ..."] [--keep DIR]
#   --repeat R   run each emulator R times, alternating, and keep the fastest (default 1)
#   --keep DIR   leave the last run's consoles and Emu64's --stats in DIR (emu64.console, qemu.console, emu64.err)
#   TIMEOUT      seconds per run (default 900)
set -euo pipefail

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
OUT="$ROOT/tests/linux/out"
BUILD=1; REPEAT=1; KEEP=""; APPEND="console=ttyS0"; TIMEOUT=${TIMEOUT:-900}
while [ $# -gt 0 ]; do
  case "$1" in
    --no-build) BUILD=0 ;;
    --repeat) REPEAT=$2; shift ;;
    --append) APPEND=$2; shift ;;
    --keep) KEEP=$2; shift ;;
    -h|--help) sed -n '2,18p' "$0" | sed 's/^# \{0,1\}//'; exit 0 ;;
    *) echo "linux-boot.sh: unknown option $1 (try --help)" >&2; exit 2 ;;
  esac
  shift
done
[ -f "$OUT/vmlinuz" ] && [ -f "$OUT/initrd.gz" ] || { echo "linux-boot.sh: no $OUT/vmlinuz or initrd.gz: run tests/linux/fetch-linux.sh first" >&2; exit 2; }
command -v qemu-system-x86_64 >/dev/null || { echo "linux-boot.sh: qemu-system-x86_64 is not installed (apt-get install qemu-system-x86)" >&2; exit 2; }

EMU="$ROOT/src/Emu64.Cli/bin/Release/net10.0/emu64"
if [ "$BUILD" = 1 ]; then dotnet build -c Release "$ROOT/src/Emu64.Cli" -v q -nologo >/dev/null; fi
[ -x "$EMU" ] || { echo "linux-boot.sh: $EMU is missing (dotnet build -c Release src/Emu64.Cli)" >&2; exit 2; }

work=$(mktemp -d /tmp/emu64-linux-boot.XXXXXX)
trap 'rm -rf "$work"' EXIT

calc() { awk "BEGIN { printf \"%.2f\", $1 }"; }
less() { awk "BEGIN { exit !($1 < $2) }"; }

# run NAME CMD...: runs CMD with the console on stdout; prints "<seconds to marker> <seconds in all>".
run() {
  local name=$1; shift
  local start marker=NA
  start=$(date +%s.%N)
  while IFS= read -r line; do
    printf '%s\n' "$line" >> "$work/$name.console"
    if [ "$marker" = NA ] && [[ $line == *"EMU64-INIT: reached /init"* ]]; then marker=$(date +%s.%N); fi
  done < <(timeout "$TIMEOUT" "$@" 2> "$work/$name.err" < /dev/null)
  local end; end=$(date +%s.%N)
  if [ "$marker" = NA ]; then echo "NA $(calc "$end - $start")"; else echo "$(calc "$marker - $start") $(calc "$end - $start")"; fi
}

best_emu=""; best_qemu=""
for ((r = 1; r <= REPEAT; r++)); do
  rm -f "$work"/*.console
  e=$(run emu64 "$EMU" run "$OUT/vmlinuz" --initrd "$OUT/initrd.gz" --append "$APPEND" -m 512 --stats)
  q=$(run qemu qemu-system-x86_64 -accel tcg -cpu max -m 512 -kernel "$OUT/vmlinuz" -initrd "$OUT/initrd.gz" \
        -append "$APPEND" -display none -serial stdio -monitor none -no-reboot)
  echo "run $r: emu64 $e; qemu $q" >&2
  if [ -z "$best_emu" ] || less "${e%% *}" "${best_emu%% *}"; then best_emu=$e; fi
  if [ -z "$best_qemu" ] || less "${q%% *}" "${best_qemu%% *}"; then best_qemu=$q; fi
done

if [ -n "$KEEP" ]; then mkdir -p "$KEEP" && cp "$work"/emu64.console "$work"/qemu.console "$work"/emu64.err "$KEEP"/; fi
insns=$(awk -F': ' '$1 == "instructions" { print $2 }' "$work/emu64.err")
ver=$("$EMU" --version 2>/dev/null || echo "Emu64")
qver=$(qemu-system-x86_64 --version | head -1)
printf '%-8s %-48s %14s %14s %16s\n' emulator version "to /init (s)" "whole run (s)" "guest insns"
printf '%-8s %-48s %14s %14s %16s\n' emu64 "$ver" ${best_emu% *} ${best_emu#* } "${insns:-?}"
printf '%-8s %-48s %14s %14s %16s\n' qemu "${qver:0:48}" ${best_qemu% *} ${best_qemu#* } "-"
if [ "${best_emu%% *}" != NA ] && [ "${best_qemu%% *}" != NA ]; then
  echo "ratio emu64/qemu to /init: $(calc "${best_emu%% *} / ${best_qemu%% *}")x"
fi
