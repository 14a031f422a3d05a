using BenchmarkDotNet.Running;

namespace Emu64.Bench;

public static class Program
{
    public static void Main(string[] args)
    {
        if (args.Length > 0 && args[0] == "profile-linux") { LinuxProfile.Run(args); return; }
        if (args.Length > 0 && args[0] == "ops") { OperationBenchmarks.Quick(args.Length > 1 ? int.Parse(args[1]) : 5_000_000, args.Length > 2 ? args[2] : null); return; }
        if (args.Length > 0 && args[0] == "syscalls") { KernelSpeedBenchmarks.Quick(args.Length > 1 ? ulong.Parse(args[1]) : 50_000_000); return; }
        if (args.Length > 0 && args[0] == "paired") { PairedModelCost.Run(args.Length > 1 ? int.Parse(args[1]) : 200); return; }
        BenchmarkSwitcher.FromAssembly(typeof(Program).Assembly).Run(args);
    }
}
