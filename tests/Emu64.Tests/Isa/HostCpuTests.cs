using System.Runtime.CompilerServices;
using Emu64.Cpu;

namespace Emu64.Tests.Isa;

/// <summary>The native harness itself: what goes in comes out, and what the bytes change is seen.</summary>
[Trait("Category", "Isa")]
public class HostCpuTests
{
    [Fact]
    public void The_state_layout_matches_the_offsets_the_generated_code_uses()
    {
        var s = new HostState();
        ref byte b = ref Unsafe.As<HostState, byte>(ref s);
        Assert.Equal(HostState.MxcsrOffset, (int)Unsafe.ByteOffset(ref b, ref Unsafe.As<uint, byte>(ref s.Mxcsr)));
        Assert.Equal(HostState.XmmOffset, (int)Unsafe.ByteOffset(ref b, ref Unsafe.As<XmmFile, byte>(ref s.Xmm)));
    }

    [Fact]
    public void An_empty_slot_returns_every_register_flag_and_xmm_unchanged()
    {
        if (!HostCpu.Available) return;
        var h = HostCpu.Shared;
        lock (h.Lock)
        {
            h.Load([]);
            var s = new HostState();
            for (int r = 0; r < 16; r++) s.Gpr[r] = 0x1111111111111111UL * (ulong)r;
            for (int r = 0; r < 16; r++) s.Xmm[r] = ((UInt128)(ulong)r << 64) | (ulong)(r + 100);
            s.Rflags = RFlags.Reserved1 | RFlags.CF | RFlags.ZF | RFlags.OF;
            s.Mxcsr = 0x1F80 | 0x6000;   // round toward zero
            var want = s;
            h.Run(ref s);
            for (int r = 0; r < 16; r++) if (r != Reg.RSP) Assert.Equal(want.Gpr[r], s.Gpr[r]);
            for (int r = 0; r < 16; r++) Assert.Equal(want.Xmm[r], s.Xmm[r]);
            Assert.Equal(want.Rflags & (RFlags.Status | RFlags.DF), s.Rflags & (RFlags.Status | RFlags.DF));
            Assert.Equal(0x7F80u, s.Mxcsr);
        }
    }

    [Fact]
    public void The_bytes_under_test_change_the_state_seen_afterwards()
    {
        if (!HostCpu.Available) return;
        var h = HostCpu.Shared;
        lock (h.Lock)
        {
            h.Load([0x66, 0x0F, 0x6F, 0xCA, 0x48, 0x01, 0xD8, 0xFD]);   // movdqa xmm1,xmm2; add rax,rbx; std
            var s = new HostState();
            s.Xmm[2] = UInt128.MaxValue - 5;
            s.Gpr[Reg.RAX] = ulong.MaxValue; s.Gpr[Reg.RBX] = 1;
            s.Rflags = RFlags.Reserved1;
            h.Run(ref s);
            Assert.Equal(UInt128.MaxValue - 5, s.Xmm[1]);
            Assert.Equal(0UL, s.Gpr[Reg.RAX]);
            Assert.Equal(RFlags.CF | RFlags.PF | RFlags.AF | RFlags.ZF | RFlags.DF, s.Rflags & (RFlags.Status | RFlags.DF));
        }
    }

    [Fact]
    public void The_compatibility_mode_harness_runs_32_bit_code_natively()
    {
        if (!HostCpu.Available) return;
        var ch = CompatHost.Shared;
        Assert.NotNull(ch);   // the pages at 0x8000-0xFFFF and below 4 GiB could be mapped
        lock (HostCpu.Shared.Lock)
        {
            // push cs; add eax, ebx; push ds; 48 is DEC EAX here, not REX.W
            ch!.Load([0x0E, 0x01, 0xD8, 0x1E, 0x48]);
            var s = new HostState();
            for (int r = 0; r < 16; r++) s.Gpr[r] = 0x1111111111111111UL * (ulong)(r + 1);
            s.Gpr[Reg.RSP] = CompatHost.Data + CompatHost.StackOffset;
            s.Rflags = RFlags.Reserved1;
            ch.Run(ref s);
            Assert.Equal(0x11111111U + 0x44444444U - 1, (uint)s.Gpr[Reg.RAX]);
            Assert.Equal(CompatHost.Data + CompatHost.StackOffset - 8, s.Gpr[Reg.RSP] & 0xFFFFFFFF);
            var stack = ch.DataSpan[(int)(CompatHost.StackOffset - 8)..];
            Assert.Equal(CompatHost.UserDs, BitConverter.ToUInt16(stack));
            Assert.Equal(CompatHost.User32Cs, BitConverter.ToUInt16(stack[4..]));
            Assert.Equal(0x4444444444444444UL, s.Gpr[Reg.RBX]);
            Assert.Equal(0x9999999999999999UL, s.Gpr[Reg.R8]);
        }
    }
}
