#!/bin/sh
# qemu-test.sh - boot toykernel.elf in QEMU over the option matrix and
# check each run: exit status 1 (the kernel wrote 0 to isa-debug-exit)
# and the expected lines.  Usage: ./qemu-test.sh [image]
IMG=${1:-toykernel.elf}
fail=0
run() {     # run EXPECTED-REGEX QEMU-CPU APPEND...
	want=$1 cpu=$2
	shift 2
	out=$(timeout 120 qemu-system-x86_64 -kernel "$IMG" -append "$*" -cpu "$cpu" \
		-serial stdio -display none -no-reboot -m 128 \
		-device isa-debug-exit,iobase=0xf4,iosize=4 2>&1)
	st=$?
	if [ $st -ne 1 ] || ! printf '%s\n' "$out" | grep -Eq "$want" ||
	   ! printf '%s\n' "$out" | grep -q 'reboot: Power down'; then
		echo "FAIL ($st) -cpu $cpu '$*'"
		printf '%s\n' "$out" | tail -5
		fail=1
	else
		echo "ok   -cpu $cpu '$*'"
	fi
}
for cpu in qemu64 max; do
	for opts in "pti=on" "pti=off" "pti=on nokaslr" "pti=off nokaslr" "la57" "la57 pti=off nokaslr"; do
		run 'hello: Hello' $cpu init=hello $opts
		run 'syscalls: 1000 getpid' $cpu init=syscalls:1000 $opts
		run 'touch: 10 rounds over 64' $cpu init=touch:64:10 $opts
		run 'pong yielded 100' $cpu init=pingpong:100 $opts
		run 'mmap: 50 map' $cpu init=mmap:50 $opts
		run 'ptdump: ptdump\[1\] kernel PGD' $cpu init=ptdump $opts
		run 'syscalls: 10 getpid' $cpu init=hello,syscalls:10 $opts
		for dm in 4k 2m 1g; do     # qemu64 has no 1 GiB pages: 1g falls back to 2M
			run "pagecache: 2 rounds of reading and writing 64 pages" $cpu init=pagecache:64:2:4096 directmap=$dm $opts
		done
		run ', 2M pages, NX' $cpu init=hello nogbpages $opts
		case "$opts" in
		*pti=off*) run 'probe\[1\]: segfault at [0-9a-f]+ ip [0-9a-f]{16} sp [0-9a-f]{16} error 5' $cpu init=probe $opts ;;
		*) run 'probe\[1\]: segfault at [0-9a-f]+ ip [0-9a-f]{16} sp [0-9a-f]{16} error 4' $cpu init=probe $opts ;;
		esac
	done
done
exit $fail
