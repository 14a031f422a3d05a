#!/usr/bin/env bash
# compare.sh - guest instructions per host second of Emu64, QEMU (TCG) and Bochs on the same loop.
#
# One small multiboot guest (bench/guest/loop.S, built here with gcc/GNU as) enters 64-bit long mode under
# 4-level paging and runs `add rax,rcx; dec rcx; jnz` loops=N times (mode=mem: loads and stores over a
# 64 KiB buffer mapped with 4 KiB pages), prints a report line on port 0xE9 and exits (isa-debug-exit for
# QEMU and Emu64, the "Shutdown" string on port 0x8900 for Bochs). Each emulator runs the guest with two
# loop counts N1 < N2; the boot cost (BIOS, GRUB, JIT warm-up, ...) cancels in the difference:
#
#     MIPS = (insns(N2) - insns(N1)) / (t(N2) - t(N1)) / 1e6        insns(N) = 3 N for the register loop
#
# t is wall time (the "MIPS" column); the "cpu MIPS" column uses user+system CPU time of the emulator
# process instead, which is less disturbed by other load on the machine.
#
#   QEMU:  qemu-system-x86_64 -accel tcg -kernel loop.elf -append loops=N
#   Bochs: a GRUB ISO (grub-mkrescue) per N, display_library rfb with timeout=0 (Debian's Bochs has no
#          nogui library; rfb opens a VNC port but never waits for a client), the built-in debugger fed
#          `c` on stdin, port_e9_hack for the guest's output.
#   Emu64: src/Emu64.Cli/bin/Release/net10.0/emu64 run loop.elf --append loops=N  (dotnet build -c Release)
#
# Usage: bench/compare.sh [options]
#   --only LIST     emulators to run, comma-separated from emu64,qemu,bochs (default: all three)
#   --mem           also run the memory loop (mode=mem)
#   --ops [LIST]    instead of the loops, time single operations (bench/guest/loop.S's operation modes, the
#                   operations of kvm-unit-tests' x86/vmexit): nanoseconds per operation, boot cost removed the same
#                   way, (t(N2) - t(N1)) / (N2 - N1). LIST is comma-separated from cpuid,inpm,cr8r,cr8w,pause,tscdl
#                   (default: all). Emulators default to emu64,qemu. QEMU 7.2's TCG has no TSC-deadline timer
#                   (CPUID.1:ECX[24] = 0 even with -cpu max): tscdl is reported as not offered there.
#   --repeat R      run each length R times and keep the fastest (default 1)
#   --quick         loop counts divided by 10 (a smoke test: boot cost dominates, numbers are rough)
#   --no-install    do not apt-get missing tools (a missing emulator is reported and skipped)
#   --no-build      use the existing Release build of Emu64
#   --work DIR      build and scratch directory (default: a new /tmp/emu64-compare.XXXXXX, removed at the end
#                   unless --keep)
#   --keep          keep the work directory (guest, ISOs, logs)
#   --print-bochsrc ISO LOG
#                   print the Bochs configuration a run uses (booting ISO, logging to LOG), and nothing else
# Loop counts per emulator and workload can be set in the environment:
#   EMU64_N1 EMU64_N2 QEMU_N1 QEMU_N2 BOCHS_N1 BOCHS_N2 (register loop), the same with _MEM_ for mode=mem
#   (e.g. EMU64_MEM_N1), with _OPS_ for --ops (EMU64_OPS_N1 ...), and TIMEOUT (seconds per run, default 900).
# EMU64_BIN runs that Emu64 executable instead of building this tree's (e.g. a copy of an earlier build, to time
# before against after); its version column still names this tree's commit.
set -euo pipefail

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
PRINT_BOCHSRC=0; ONLY=""; MEM=0; OPS=""; REPEAT=1; QUICK=0; INSTALL=1; BUILD=1; WORK=""; KEEP=0
TIMEOUT=${TIMEOUT:-900}

while [ $# -gt 0 ]; do
  case "$1" in
    --only) ONLY=$2; shift 2 ;;
    --mem) MEM=1; shift ;;
    --ops) if [ $# -gt 1 ] && [[ "$2" != --* ]]; then OPS=$2; shift 2; else OPS=cpuid,inpm,cr8r,cr8w,pause,tscdl; shift; fi ;;
    --repeat) REPEAT=$2; shift 2 ;;
    --quick) QUICK=1; shift ;;
    --no-install) INSTALL=0; shift ;;
    --no-build) BUILD=0; shift ;;
    --work) WORK=$2; KEEP=1; shift 2 ;;
    --keep) KEEP=1; shift ;;
    --print-bochsrc) PRINT_BOCHSRC=1; RC_ISO=${2:?}; RC_LOG=${3:?}; shift 3 ;;
    -h|--help) sed -n '2,/^set -euo/p' "$0" | sed '$d; s/^# \{0,1\}//'; exit 0 ;;
    *) echo "compare.sh: unknown option '$1' (try --help)" >&2; exit 2 ;;
  esac
done
case "$REPEAT" in ''|*[!0-9]*|0) echo "compare.sh: --repeat needs a positive number" >&2; exit 2 ;; esac
for op in ${OPS//,/ }; do
  case "$op" in cpuid|inpm|cr8r|cr8w|pause|tscdl) ;; *) echo "compare.sh: unknown operation '$op' in --ops (cpuid,inpm,cr8r,cr8w,pause,tscdl)" >&2; exit 2 ;; esac
done
if [ -z "$ONLY" ]; then if [ -n "$OPS" ]; then ONLY="emu64,qemu"; else ONLY="emu64,qemu,bochs"; fi; fi
want() { [[ ",$ONLY," == *",$1,"* ]]; }

BOCHS_BIOS=/usr/share/bochs/BIOS-bochs-latest
VGA_BIOS=/usr/share/vgabios/vgabios.bin
# bochs_rc ISO LOG: the Bochs configuration of a run. The sound layer gets the dummy driver: with its
# default (ALSA on Linux) Bochs 2.7 opens the sound plugin even with the speaker off, and on a machine
# whose ALSA has no default device it died at once with "*** buffer overflow detected ***".
bochs_rc() {
  cat <<EOF
megs: 128
romimage: file=$BOCHS_BIOS
vgaromimage: file=$VGA_BIOS
cpu: model=corei7_skylake_x, count=1, ips=50000000
display_library: rfb, options="timeout=0"
ata0-master: type=cdrom, path=$1, status=inserted
boot: cdrom
log: $2
panic: action=fatal
error: action=report
info: action=report
debug: action=ignore
port_e9_hack: enabled=1
mouse: enabled=0
sound: driver=dummy
speaker: enabled=0
clock: sync=none
EOF
}
if [ "$PRINT_BOCHSRC" = 1 ]; then bochs_rc "$RC_ISO" "$RC_LOG"; exit 0; fi

if [ -z "$WORK" ]; then WORK=$(mktemp -d /tmp/emu64-compare.XXXXXX); fi
mkdir -p "$WORK"
WORK=$(cd "$WORK" && pwd)
cleanup() { if [ "$KEEP" = 0 ]; then rm -rf "$WORK"; fi; }
trap cleanup EXIT

say() { echo "compare: $*" >&2; }
die() { echo "compare.sh: $*" >&2; exit 1; }

# ---------------------------------------------------------------- tools
# install_missing "what" pkg... : apt-get install the packages if allowed; returns 1 when that is impossible.
APT_UPDATED=0
install_missing() {
  local what=$1; shift
  if [ "$INSTALL" = 0 ]; then say "$what: missing and --no-install given"; return 1; fi
  local sudo=""
  if [ "$(id -u)" != 0 ]; then
    if command -v sudo >/dev/null && sudo -n true 2>/dev/null; then sudo="sudo -n"; else
      say "$what: missing, and not root (no password-less sudo) to apt-get install $*"; return 1; fi
  fi
  if ! command -v apt-get >/dev/null; then say "$what: missing and there is no apt-get to install $*"; return 1; fi
  say "installing $* for $what"
  if [ "$APT_UPDATED" = 0 ]; then $sudo apt-get update -qq >"$WORK/apt.log" 2>&1 || true; APT_UPDATED=1; fi
  if ! DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq --no-install-recommends "$@" >>"$WORK/apt.log" 2>&1; then
    say "$what: apt-get install $* failed (log: $WORK/apt.log)"; tail -5 "$WORK/apt.log" >&2; return 1
  fi
}

# The guest toolchain is needed by everything.
pk=()
command -v gcc >/dev/null || pk+=(gcc)
command -v ld >/dev/null || pk+=(binutils)
command -v make >/dev/null || pk+=(make)
[ -x /usr/bin/time ] || pk+=(time)
if [ ${#pk[@]} -gt 0 ]; then install_missing "the guest build" "${pk[@]}" || true; fi
command -v gcc >/dev/null && command -v ld >/dev/null && command -v make >/dev/null \
  || die "gcc, ld and make are needed to build the guest (bench/guest) and could not be installed"
command -v timeout >/dev/null || die "timeout (coreutils) is needed"

HAVE_QEMU=0; HAVE_BOCHS=0; HAVE_EMU64=0
if want qemu; then
  command -v qemu-system-x86_64 >/dev/null || install_missing QEMU qemu-system-x86 || true
  command -v qemu-system-x86_64 >/dev/null && HAVE_QEMU=1
fi
if want bochs; then
  pk=()
  command -v bochs >/dev/null || pk+=(bochs)
  [ -f "$BOCHS_BIOS" ] || pk+=(bochsbios)
  [ -f "$VGA_BIOS" ] || pk+=(vgabios)
  command -v grub-mkrescue >/dev/null || pk+=(grub-common)
  [ -d /usr/lib/grub/i386-pc ] || pk+=(grub-pc-bin)
  command -v xorriso >/dev/null || pk+=(xorriso)
  command -v mformat >/dev/null || pk+=(mtools)
  if [ ${#pk[@]} -gt 0 ]; then install_missing Bochs "${pk[@]}" || true; fi
  if command -v bochs >/dev/null && [ -f "$BOCHS_BIOS" ] && [ -f "$VGA_BIOS" ] && command -v grub-mkrescue >/dev/null \
     && [ -d /usr/lib/grub/i386-pc ] && command -v xorriso >/dev/null; then HAVE_BOCHS=1; fi
fi
EMU64=${EMU64_BIN:-"$ROOT/src/Emu64.Cli/bin/Release/net10.0/emu64"}
if want emu64; then
  if [ "$BUILD" = 1 ] && [ -z "${EMU64_BIN:-}" ]; then
    command -v dotnet >/dev/null || die "dotnet is needed to build Emu64 (or use --no-build, or --only qemu,bochs)"
    say "building Emu64 (dotnet build -c Release src/Emu64.Cli)"
    dotnet build -c Release "$ROOT/src/Emu64.Cli" -nologo -v q >"$WORK/dotnet-build.log" 2>&1 \
      || { tail -20 "$WORK/dotnet-build.log" >&2; die "dotnet build -c Release failed"; }
  fi
  [ -x "$EMU64" ] && HAVE_EMU64=1 || say "Emu64: $EMU64 not found (build with dotnet build -c Release)"
fi

# ---------------------------------------------------------------- the guest
say "building the guest into $WORK/guest"
make -s -C "$ROOT/bench/guest" O="$WORK/guest" >"$WORK/guest-build.log" 2>&1 \
  || { cat "$WORK/guest-build.log" >&2; die "building bench/guest failed"; }
GUEST="$WORK/guest/loop.elf"

# ---------------------------------------------------------------- loop counts
# Chosen so the longer run takes a few seconds or more on one core of a 2020s x86-64 at the emulators' speeds
# (QEMU and Emu64 1-3 GIPS on these loops, Bochs about 50 MIPS), and the shorter one a fifth of that: runs of
# about a second, as Emu64's were with the counts of its slower days, left the difference at the noise's mercy.
n() { local v=${!1:-$2}; [ "$QUICK" = 1 ] && v=$((v / 10)); echo "$v"; }
declare -A N1 N2
N1[emu64,reg]=$(n EMU64_N1 1000000000);     N2[emu64,reg]=$(n EMU64_N2 5000000000)
N1[qemu,reg]=$(n QEMU_N1 1000000000);       N2[qemu,reg]=$(n QEMU_N2 5000000000)
N1[bochs,reg]=$(n BOCHS_N1 50000000);       N2[bochs,reg]=$(n BOCHS_N2 250000000)
N1[emu64,mem]=$(n EMU64_MEM_N1 200000000);  N2[emu64,mem]=$(n EMU64_MEM_N2 1000000000)
N1[qemu,mem]=$(n QEMU_MEM_N1 200000000);    N2[qemu,mem]=$(n QEMU_MEM_N2 1000000000)
N1[bochs,mem]=$(n BOCHS_MEM_N1 25000000);   N2[bochs,mem]=$(n BOCHS_MEM_N2 125000000)
# Operations cost 0.01-0.5 us each: the longer run is a few seconds. Emu64 runs more: its JIT warm-up and the
# compilation of the loop after 1e6 runs (MachineOptions.CompileThreshold) must lie inside the shorter run.
# QEMU runs CPUID in about 12 ns, the rest in 70-460 ns: CPUID gets five times the iterations.
for op in ${OPS//,/ }; do
  N1[emu64,$op]=$(n EMU64_OPS_N1 10000000); N2[emu64,$op]=$(n EMU64_OPS_N2 50000000)
  q=1; [ "$op" = cpuid ] && q=5
  N1[qemu,$op]=$(n QEMU_OPS_N1 $((2000000 * q)));    N2[qemu,$op]=$(n QEMU_OPS_N2 $((10000000 * q)))
  N1[bochs,$op]=$(n BOCHS_OPS_N1 200000);   N2[bochs,$op]=$(n BOCHS_OPS_N2 1000000)
done

# ---------------------------------------------------------------- one run
# run_guest EMU MODE N -> sets R_WALL R_CPU R_INSNS; returns 1 (with a message) when the run failed.
now_ns() { date +%s%N; }
expected_reg_result() {   # N(N+1)/2 mod 2^64 as 16 hex digits (bash arithmetic wraps at 64 bits)
  local n=$1 v
  if (( n % 2 == 0 )); then v=$(( (n / 2) * (n + 1) )); else v=$(( n * ((n + 1) / 2) )); fi
  printf '0x%016x' "$v"
}
bochs_iso() {   # bochs_iso MODE N -> path of a GRUB ISO whose menu entry boots the guest with that command line
  local mode=$1 n=$2 d="$WORK/iso-$1-$2"
  if [ ! -f "$d.iso" ]; then
    mkdir -p "$d/boot/grub"
    cp "$GUEST" "$d/boot/loop.elf"
    printf 'set timeout=0\nset default=0\nmenuentry "emu64-bench" {\n  multiboot /boot/loop.elf loops=%s mode=%s\n  boot\n}\n' \
      "$n" "$mode" >"$d/boot/grub/grub.cfg"
    grub-mkrescue -d /usr/lib/grub/i386-pc -o "$d.iso" "$d" >"$d.log" 2>&1 \
      || { cat "$d.log" >&2; say "grub-mkrescue failed"; return 1; }
  fi
  echo "$d.iso"
}
run_guest() {
  local emu=$1 mode=$2 n=$3 out="$WORK/run-$1-$2-$3.out" tf="$WORK/run-$1-$2-$3.time" status t0 t1 line
  local -a cmd
  case "$emu" in
    emu64) cmd=("$EMU64" run "$GUEST" --append "loops=$n mode=$mode") ;;
    qemu)  cmd=(qemu-system-x86_64 -accel tcg -nodefaults -display none -no-reboot -m 128
                -device isa-debug-exit,iobase=0xf4,iosize=0x04 -debugcon "file:$out.e9"
                -kernel "$GUEST" -append "loops=$n mode=$mode") ;;
    bochs)
      local iso; iso=$(bochs_iso "$mode" "$n") || return 1
      bochs_rc "$iso" "$out.log" >"$WORK/bochsrc-$mode-$n"
      cmd=(bochs -q -f "$WORK/bochsrc-$mode-$n") ;;
  esac
  t0=$(now_ns)
  set +e
  if [ "$emu" = bochs ]; then
    # Debian's Bochs is built with its debugger, which stops before the first instruction: `c` continues.
    printf 'c\nquit\n' | /usr/bin/time -o "$tf" -f '%U %S' timeout "$TIMEOUT" "${cmd[@]}" >"$out" 2>"$out.err"
  else
    /usr/bin/time -o "$tf" -f '%U %S' timeout "$TIMEOUT" "${cmd[@]}" >"$out" 2>"$out.err" </dev/null
  fi
  status=$?
  set -e
  t1=$(now_ns)
  [ -f "$out.e9" ] && cat "$out.e9" >>"$out"
  if [ "$status" = 124 ]; then say "$emu $mode loops=$n: timed out after ${TIMEOUT}s"; return 1; fi
  case "$emu" in
    emu64|qemu) [ "$status" = 33 ] || { say "$emu $mode loops=$n: exit status $status, expected 33 (isa-debug-exit 0x10)"; tail -5 "$out" "$out.err" >&2; return 1; } ;;
    bochs) grep -q "shutdown requested" "$out.log" 2>/dev/null || { say "bochs $mode loops=$n: no shutdown in $out.log (status $status)"; tail -5 "$out.log" >&2; return 1; } ;;
  esac
  if grep -a -q "emu64-bench: no tsc-deadline" "$out"; then say "$emu $mode: the machine offers no TSC-deadline timer (CPUID.1:ECX[24] = 0)"; R_ABSENT=1; return 1; fi
  line=$(grep -a -o "emu64-bench: mode=$mode loops=[0-9]* insns=[0-9]* result=0x[0-9a-f]*" "$out" | tail -1 || true)
  [ -n "$line" ] || { say "$emu $mode loops=$n: no report line from the guest on port 0xE9"; tail -5 "$out" >&2; return 1; }
  if [ "$mode" = reg ]; then
    local want; want=$(expected_reg_result "$n")
    [[ "$line" == *"loops=$n "*"result=$want" ]] || { say "$emu reg loops=$n: wrong result: $line (expected $want)"; return 1; }
  fi
  R_INSNS=${line#*insns=}; R_INSNS=${R_INSNS%% *}
  R_LOOPS=${line#*loops=}; R_LOOPS=${R_LOOPS%% *}
  R_WALL=$(awk -v a="$t0" -v b="$t1" 'BEGIN { printf "%.3f", (b - a) / 1e9 }')
  R_CPU=$(tail -1 "$tf" | awk '{ printf "%.3f", $1 + $2 }')
  say "$(printf '%-6s %s loops=%-11s %8.3f s wall %8.3f s cpu' "$emu" "$mode" "$n" "$R_WALL" "$R_CPU")"
}

# best_of EMU MODE N -> B_WALL B_CPU B_INSNS: the fastest of REPEAT runs (by wall time; cpu likewise).
best_of() {
  local i; B_WALL=""; B_CPU=""
  for ((i = 0; i < REPEAT; i++)); do
    run_guest "$@" || return 1
    B_INSNS=$R_INSNS; B_LOOPS=$R_LOOPS
    if [ -z "$B_WALL" ] || awk -v a="$R_WALL" -v b="$B_WALL" 'BEGIN { exit !(a < b) }'; then B_WALL=$R_WALL; fi
    if [ -z "$B_CPU" ] || awk -v a="$R_CPU" -v b="$B_CPU" 'BEGIN { exit !(a < b) }'; then B_CPU=$R_CPU; fi
  done
}

version_of() {
  case "$1" in
    emu64) local v c; v=$(sed -n 's:.*<Version>\(.*\)</Version>.*:\1:p' "$ROOT/Directory.Build.props" | head -1)
           c=$(git -C "$ROOT" rev-parse --short HEAD 2>/dev/null || echo unknown)
           echo "Emu64 ${v:-?} ($c)" ;;
    qemu)  qemu-system-x86_64 --version | head -1 | sed 's/QEMU emulator version /QEMU /' ;;
    bochs) local v; v=$(dpkg-query -W -f '${Version}' bochs 2>/dev/null || true)
           echo "Bochs ${v:-$(bochs --help 2>&1 | grep -o 'Bochs x86 Emulator [0-9.]*' | head -1)}" ;;
  esac
}

# ---------------------------------------------------------------- measure
modes=(reg); [ "$MEM" = 1 ] && modes+=(mem)
[ -n "$OPS" ] && read -r -a modes <<<"${OPS//,/ }"
declare -A MIPS CPUMIPS VER NOTE NSOP CPUNSOP
for emu in emu64 qemu bochs; do
  want "$emu" || continue
  case "$emu" in emu64) have=$HAVE_EMU64 ;; qemu) have=$HAVE_QEMU ;; bochs) have=$HAVE_BOCHS ;; esac
  for mode in "${modes[@]}"; do
    if [ "$have" != 1 ]; then NOTE[$emu,$mode]="missing"; continue; fi
    VER[$emu]=$(version_of "$emu")
    n1=${N1[$emu,$mode]}; n2=${N2[$emu,$mode]}
    R_ABSENT=0
    if best_of "$emu" "$mode" "$n1"; then w1=$B_WALL; c1=$B_CPU; i1=$B_INSNS; l1=$B_LOOPS
    else if [ "$R_ABSENT" = 1 ]; then NOTE[$emu,$mode]="not offered (CPUID.1:ECX[24] = 0)"; else NOTE[$emu,$mode]="failed"; fi; continue; fi
    if best_of "$emu" "$mode" "$n2"; then w2=$B_WALL; c2=$B_CPU; i2=$B_INSNS; l2=$B_LOOPS; else NOTE[$emu,$mode]="failed"; continue; fi
    NSOP[$emu,$mode]=$(awk -v l1="$l1" -v l2="$l2" -v t1="$w1" -v t2="$w2" 'BEGIN { d = t2 - t1; if (d <= 0) print "n/a"; else printf "%.1f", d / (l2 - l1) * 1e9 }')
    CPUNSOP[$emu,$mode]=$(awk -v l1="$l1" -v l2="$l2" -v t1="$c1" -v t2="$c2" 'BEGIN { d = t2 - t1; if (d <= 0) print "n/a"; else printf "%.1f", d / (l2 - l1) * 1e9 }')
    MIPS[$emu,$mode]=$(awk -v i1="$i1" -v i2="$i2" -v t1="$w1" -v t2="$w2" 'BEGIN { d = t2 - t1; if (d <= 0) print "n/a"; else printf "%.1f", (i2 - i1) / d / 1e6 }')
    CPUMIPS[$emu,$mode]=$(awk -v i1="$i1" -v i2="$i2" -v t1="$c1" -v t2="$c2" 'BEGIN { d = t2 - t1; if (d <= 0) print "n/a"; else printf "%.1f", (i2 - i1) / d / 1e6 }')
    NOTE[$emu,$mode]="N=$n1/$n2 wall ${w1}/${w2} s"
  done
done

# ---------------------------------------------------------------- table
ratio() { awk -v a="$1" -v b="$2" 'BEGIN { if (a == "" || b == "" || a == "n/a" || b == "n/a" || b + 0 == 0) print "-"; else printf "%.2fx", a / b }'; }
echo
host_line() { echo "host: $(grep -m1 'model name' /proc/cpuinfo | sed 's/.*: //'), $(nproc) cpus, load average $(cut -d' ' -f1-3 /proc/loadavg); $(date -u '+%Y-%m-%d %H:%M UTC')"; }
# The work directory (when kept), and status 1 if any run failed.
finish() {
  [ "$KEEP" = 1 ] && echo "work directory: $WORK"
  local fail=0 k
  for k in "${!NOTE[@]}"; do [[ "${NOTE[$k]}" == failed ]] && fail=1; done
  exit $fail
}
if [ -n "$OPS" ]; then
  echo "Host nanoseconds per guest operation (one loop iteration: the operation, dec, jnz), boot cost removed by differencing two loop counts"
  host_line
  echo
  printf '%-9s %-6s %-44s %9s %9s %10s  %s\n' emulator op version "ns/op" "cpu ns/op" "vs qemu" "runs"
  for mode in "${modes[@]}"; do
    for emu in emu64 qemu bochs; do
      want "$emu" || continue
      m=${NSOP[$emu,$mode]:-}; c=${CPUNSOP[$emu,$mode]:-}
      printf '%-9s %-6s %-44s %9s %9s %10s  %s\n' "$emu" "$mode" "${VER[$emu]:-(not run)}" "${m:--}" "${c:--}" \
        "$(ratio "$c" "${CPUNSOP[qemu,$mode]:-}")" "${NOTE[$emu,$mode]:-}"
    done
  done
  echo
  echo "ns/op = (t(N2) - t(N1)) / (N2 - N1) with wall times; 'cpu ns/op' with the emulator's user+system CPU times;"
  echo "'vs qemu' is the cpu ns/op against QEMU's (below 1.00x: faster than QEMU)."
  finish
fi
echo "Guest instructions per host second, boot cost removed by differencing two loop lengths"
host_line
echo
printf '%-9s %-5s %-44s %8s %9s %9s %9s  %s\n' emulator loop version MIPS "vs Bochs" "cpu MIPS" "cpu ratio" "runs"
for mode in "${modes[@]}"; do
  for emu in emu64 qemu bochs; do
    want "$emu" || continue
    m=${MIPS[$emu,$mode]:-}; c=${CPUMIPS[$emu,$mode]:-}
    printf '%-9s %-5s %-44s %8s %9s %9s %9s  %s\n' "$emu" "$mode" "${VER[$emu]:-(not run)}" \
      "${m:--}" "$(ratio "$m" "${MIPS[bochs,$mode]:-}")" "${c:--}" "$(ratio "$c" "${CPUMIPS[bochs,$mode]:-}")" "${NOTE[$emu,$mode]:-}"
  done
done
echo
echo "MIPS = (insns(N2) - insns(N1)) / (t(N2) - t(N1)) with wall times; 'cpu MIPS' with the emulator's user+system"
echo "CPU times instead (less disturbed by other load). Ratios are against Bochs on the same loop."
finish
