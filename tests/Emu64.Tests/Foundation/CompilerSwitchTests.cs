namespace Emu64.Tests.Foundation;

/// <summary>
/// Test classes that flip the block compiler's process-wide switches (<c>BlockCompiler.CrossPage</c>, <c>BlockCompiler.NativeEnabled</c>)
/// for their own runs. They must not run beside other tests: a machine of another class that compiles a region while a switch is
/// flipped compiles a different region (a cross-page region holds more blocks), and a test that compares two of its own runs'
/// compiled-code counters then sees them differ (`BackgroundCompileTests` did, once, in a full run). xunit runs a collection with
/// parallelization disabled on its own, after the parallel ones.
/// </summary>
[CollectionDefinition(Name, DisableParallelization = true)]
public sealed class CompilerSwitchTests
{
    public const string Name = "Compiler switches";
}
