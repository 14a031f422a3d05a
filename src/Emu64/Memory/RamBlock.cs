using System.Runtime.InteropServices;

namespace Emu64.Memory;

/// <summary>
/// The host memory behind guest RAM: one block outside the managed heap, zero-filled lazily by the host OS.
/// On Linux an anonymous private mapping (mmap with MAP_NORESERVE): a page costs host memory only once the guest
/// (or a loader) touches it, so a 3 GiB guest that uses 200 MiB costs about 200 MiB, and the GC never scans or
/// moves it. Elsewhere <see cref="NativeMemory.AllocZeroed(nuint)"/> (calloc, which large blocks get from the OS
/// already zeroed). The block is freed when the owner disposes it, or by the finalizer of this handle when a
/// machine is dropped without Dispose (the test suite creates thousands). No GC memory pressure is added: a block's
/// size says nothing about the host memory it really uses.
/// The mapping is advised for transparent huge pages (madvise MADV_HUGEPAGE, as QEMU does for guest RAM): with the host's
/// THP in "madvise" mode, guest RAM the guest touches is backed by 2 MiB host pages, so a guest that walks a large array
/// (kvm-unit-tests `sieve`: 100 MB of 4 KiB guest pages in random order) costs far fewer host TLB misses. Untouched RAM still
/// costs nothing; touched RAM is resident in 2 MiB pieces where the host can find them. The advice is only a hint: if it
/// fails (no THP in the kernel) nothing changes.
/// </summary>
internal sealed unsafe class RamBlock : SafeHandle
{
    public ulong Length { get; }
    private readonly bool _mapped;

    public RamBlock(ulong length) : base(IntPtr.Zero, ownsHandle: true)
    {
        Length = length;
        if (OperatingSystem.IsLinux())
        {
            nint p = Mmap(0, (nuint)length, ProtRead | ProtWrite, MapPrivate | MapAnonymous | MapNoReserve, -1, 0);
            if (p == -1) throw new OutOfMemoryException($"mmap of {length >> 20} MiB of guest RAM failed (errno {Marshal.GetLastPInvokeError()})");
            _mapped = true;
            Madvise(p, (nuint)length, MadvHugepage);   // a hint; its failure changes nothing
            SetHandle(p);
        }
        else
            SetHandle((nint)NativeMemory.AllocZeroed((nuint)length));
    }

    public byte* Pointer => (byte*)handle;

    public override bool IsInvalid => handle == IntPtr.Zero;

    protected override bool ReleaseHandle()
    {
        if (_mapped) return Munmap(handle, (nuint)Length) == 0;
        NativeMemory.Free((void*)handle);
        return true;
    }

    // Linux's values (asm-generic/mman-common.h, x86-64's mman.h).
    private const int ProtRead = 1, ProtWrite = 2, MapPrivate = 0x02, MapAnonymous = 0x20, MapNoReserve = 0x4000, MadvHugepage = 14;

    [DllImport("libc", EntryPoint = "mmap", SetLastError = true)]
    private static extern nint Mmap(nint addr, nuint length, int prot, int flags, int fd, nint offset);

    [DllImport("libc", EntryPoint = "madvise", SetLastError = true)]
    private static extern int Madvise(nint addr, nuint length, int advice);

    [DllImport("libc", EntryPoint = "munmap", SetLastError = true)]
    private static extern int Munmap(nint addr, nuint length);
}
