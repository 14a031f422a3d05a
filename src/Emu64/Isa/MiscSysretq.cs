using Iced.Intel;
using Emu64.Cpu;

namespace Emu64.Isa;

/// <summary>
/// SYSRET with REX.W (Iced's <see cref="Code.Sysretq"/>, mnemonic Sysretq) was not reached by the
/// Mnemonic.Sysret row in Privilege.cs, so every return to 64-bit user code raised #UD. The SSE user-program
/// acceptance test needs it: this row gives the code the handler that SYSRET already has (the handler
/// itself tells the two forms apart by code). Harmless once Privilege.cs maps the mnemonic too.
/// </summary>
public static unsafe class MiscSysretq
{
    internal static void Register()
    {
        if (HandlerTable.IsImplemented(Code.Sysretq) || !HandlerTable.IsImplemented(Code.Sysretd)) return;
        var probe = new Insn { CodeId = (ushort)Code.Sysretd };
        HandlerTable.Bind(ref probe);
        HandlerTable.Map(Code.Sysretq, probe.Exec);
    }
}
