#!/usr/bin/env bash
# Fetches the inputs of the Linux boot tests (docs/LINUX.md) into tests/linux/out/ (gitignored):
#   out/vmlinuz     Debian 12's cloud kernel (a bzImage), from linux-image-6.1.*-cloud-amd64
#   out/vmlinux     the same kernel uncompressed (an ELF with the PVH note), from the bzImage's payload
#   out/initrd.gz   a busybox-static initramfs with tests/linux/initramfs/init and the static user programs (getpid, measure-*)
#                   built from tests/linux/initramfs/*.c (gcc, no libc), built reproducibly
# The packages come from the configured Debian mirror with `apt-get download` and are only unpacked
# (dpkg-deb -x), never installed. Needs root for apt-get update/install (cpio, lz4 when missing) and to
# create /dev/console in the archive. Running it twice gives byte-identical files.
set -euo pipefail

here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
out="$here/out"
mkdir -p "$out/debs"

need() { command -v "$1" >/dev/null 2>&1 || { apt_update_once; DEBIAN_FRONTEND=noninteractive apt-get install -y -q --no-install-recommends "$2" >/dev/null; }; }
updated=0
apt_update_once() { if [ "$updated" = 0 ]; then apt-get update -q >/dev/null; updated=1; fi; }

need cpio cpio
need lz4 lz4
need gcc gcc

# The package lists are empty on a fresh system: apt-cache then knows no linux-image-cloud-amd64.
if ! apt-cache show linux-image-cloud-amd64 >/dev/null 2>&1; then apt_update_once; fi

# linux-image-cloud-amd64 is a metapackage: its Depends names the real kernel package.
kpkg=$(apt-cache depends linux-image-cloud-amd64 | awk '$1 == "Depends:" && $2 ~ /^linux-image-6\.1\..*-cloud-amd64$/ { print $2; exit }')
[ -n "$kpkg" ] || { echo "fetch-linux.sh: linux-image-cloud-amd64 names no linux-image-6.1.*-cloud-amd64 package" >&2; exit 1; }
echo "kernel package: $kpkg"

cd "$out/debs"
rm -f ./*.deb
apt-get download "$kpkg" busybox-static >/dev/null 2>&1 || apt-get download "$kpkg" busybox-static
rm -rf "$out/kernel" "$out/busybox"
dpkg-deb -x "$out"/debs/linux-image-*.deb "$out/kernel"
dpkg-deb -x "$out"/debs/busybox-static_*.deb "$out/busybox"
cp "$out"/kernel/boot/vmlinuz-* "$out/vmlinuz"

# vmlinux: the bzImage's payload (payload_offset/payload_length in the setup header, protocol 2.08+) is
# the compressed ELF vmlinux; Debian's is LZ4 (legacy frame format).
setup_sects=$(od -An -tu1 -j $((0x1F1)) -N1 "$out/vmlinuz" | tr -d ' ')
payload_offset=$(od -An -tu4 -j $((0x248)) -N4 "$out/vmlinuz" | tr -d ' ')
payload_length=$(od -An -tu4 -j $((0x24C)) -N4 "$out/vmlinuz" | tr -d ' ')
start=$(( (setup_sects + 1) * 512 + payload_offset ))
dd if="$out/vmlinuz" of="$out/payload.lz4" iflag=skip_bytes,count_bytes skip="$start" count="$payload_length" bs=1M status=none
lz4 -dc "$out/payload.lz4" > "$out/vmlinux" 2>/dev/null || true   # the payload ends with the decompressed size: lz4 stops before it
rm -f "$out/payload.lz4"
[ "$(head -c 4 "$out/vmlinux" | od -An -tx1 | tr -d ' ')" = 7f454c46 ] || { echo "fetch-linux.sh: the payload did not decompress to an ELF file" >&2; exit 1; }

# The initramfs: a sorted file list, every mtime 0, owner root, newc format, gzip without a name or time.
root="$out/initramfs-root"
rm -rf "$root"
mkdir -p "$root"/{bin,dev,proc,sys}
install -m 0755 "$out/busybox/bin/busybox" "$root/bin/busybox"
install -m 0755 "$here/initramfs/init" "$root/init"
# The user programs: static, no libc (raw system calls), no build id, so the bytes depend only on the source and gcc.
for c in "$here"/initramfs/*.c; do
  gcc -static -nostdlib -O2 -mgeneral-regs-only -fno-stack-protector -fno-pie -no-pie -fno-asynchronous-unwind-tables \
      -Wl,--build-id=none -o "$root/bin/$(basename "$c" .c)" "$c"
done
mknod -m 0600 "$root/dev/console" c 5 1
mknod -m 0666 "$root/dev/null" c 1 3
find "$root" -exec touch -h -d @0 {} +
(cd "$root" && find . -mindepth 1 | LC_ALL=C sort | cpio -o -H newc --reproducible --owner=0:0 --quiet) | gzip -9 -n > "$out/initrd.gz"

ls -l "$out/vmlinuz" "$out/vmlinux" "$out/initrd.gz"
sha256sum "$out/vmlinuz" "$out/vmlinux" "$out/initrd.gz"
