#!/usr/bin/env bash
# sieve.sh - run kvm-unit-tests' x86/sieve under Emu64 and under QEMU (TCG) in one run, side by side.
#
# sieve counts primes with byte stores over large arrays, first with paging off, then mapped, then in a
# 100 M-entry virtual array (issue #19's "sieve no slower than QEMU": a run of TLB misses and page walks).
# Both emulators run the same image; the script checks that each printed the last result line
# ("virtual:5761455 out of 100000000") and prints user+system CPU seconds, wall seconds and the ratio
# Emu64 / QEMU (by wall time, as issue #19 measures it).
#
#   Emu64: src/Emu64.Cli/bin/Release/net10.0/emu64 run sieve.flat -m 256
#   QEMU:  qemu-system-x86_64 -nodefaults -no-reboot -display none -serial stdio -device pc-testdev
#          -device isa-debug-exit,iobase=0xf4,iosize=0x4 -machine accel=tcg -cpu max -m 256 -smp 1 -kernel sieve.flat
#
# Input: a kvm-unit-tests build (docs/ARCHITECTURE.md, "An external referee": clone, ./configure --arch=x86_64,
# make); give its directory with --kut DIR or KVM_UNIT_TESTS (default: ../kvm-unit-tests beside the repository).
#
# Usage: bench/sieve.sh [--no-build] [--repeat R] [--kut DIR]
#   --repeat R   run each emulator R times, alternating, and keep the fastest (default 1)
#   TIMEOUT      seconds per run (default 900)
set -euo pipefail

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
KUT=${KVM_UNIT_TESTS:-$ROOT/../kvm-unit-tests}
BUILD=1; REPEAT=1; TIMEOUT=${TIMEOUT:-900}
while [ $# -gt 0 ]; do
  case "$1" in
    --no-build) BUILD=0 ;;
    --repeat) REPEAT=$2; shift ;;
    --kut) KUT=$2; shift ;;
    -h|--help) sed -n '2,19p' "$0" | sed 's/^# \{0,1\}//'; exit 0 ;;
    *) echo "sieve.sh: unknown option $1 (try --help)" >&2; exit 2 ;;
  esac
  shift
done
IMAGE="$KUT/x86/sieve.flat"
[ -f "$IMAGE" ] || { echo "sieve.sh: no $IMAGE: build kvm-unit-tests (docs/ARCHITECTURE.md) and give its directory with --kut" >&2; exit 2; }
command -v qemu-system-x86_64 >/dev/null || { echo "sieve.sh: qemu-system-x86_64 is not installed (apt-get install qemu-system-x86)" >&2; exit 2; }
[ -x /usr/bin/time ] || { echo "sieve.sh: /usr/bin/time is not installed (apt-get install time)" >&2; exit 2; }

EMU="$ROOT/src/Emu64.Cli/bin/Release/net10.0/emu64"
if [ "$BUILD" = 1 ]; then dotnet build -c Release "$ROOT/src/Emu64.Cli" -v q -nologo >/dev/null; fi
[ -x "$EMU" ] || { echo "sieve.sh: $EMU is missing (dotnet build -c Release src/Emu64.Cli)" >&2; exit 2; }

work=$(mktemp -d /tmp/emu64-sieve.XXXXXX)
trap 'rm -rf "$work"' EXIT

# run NAME CMD...: prints "<cpu seconds> <wall seconds>"; fails if the run did not print sieve's last result.
run() {
  local name=$1; shift
  # sieve ends through isa-debug-exit with a non-zero status in both emulators: the result line decides
  timeout "$TIMEOUT" /usr/bin/time -f "%U %S %e" -o "$work/$name.time" "$@" > "$work/$name.out" 2>&1 < /dev/null || true
  grep -q "virtual:5761455 out of 100000000" "$work/$name.out" \
    || { echo "sieve.sh: $name did not print sieve's result:" >&2; tail -5 "$work/$name.out" >&2; exit 1; }
  tail -1 "$work/$name.time" | awk '{ printf "%.2f %.2f\n", $1 + $2, $3 }'
}

best_emu=""; best_qemu=""
for i in $(seq "$REPEAT"); do
  e=$(run emu64 "$EMU" run "$IMAGE" -m 256)
  q=$(run qemu qemu-system-x86_64 -nodefaults -no-reboot -display none -serial stdio -device pc-testdev \
        -device isa-debug-exit,iobase=0xf4,iosize=0x4 -machine accel=tcg -cpu max -m 256 -smp 1 -kernel "$IMAGE")
  echo "run $i: emu64 $e; qemu $q (cpu s, wall s)"
  if [ -z "$best_emu" ] || awk "BEGIN { exit !(${e#* } < ${best_emu#* }) }"; then best_emu=$e; fi
  if [ -z "$best_qemu" ] || awk "BEGIN { exit !(${q#* } < ${best_qemu#* }) }"; then best_qemu=$q; fi
done
printf '%-8s %-52s %10s %10s\n' emulator version "cpu (s)" "wall (s)"
printf '%-8s %-52s %10s %10s\n' emu64 "Emu64 ($(git -C "$ROOT" rev-parse --short HEAD 2>/dev/null || echo unknown))" ${best_emu}
printf '%-8s %-52s %10s %10s\n' qemu "$(qemu-system-x86_64 --version | head -1 | cut -c1-52)" ${best_qemu}
awk "BEGIN { printf \"ratio emu64/qemu (wall): %.2fx\n\", ${best_emu#* } / ${best_qemu#* } }"
