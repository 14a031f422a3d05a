using Microsoft.VisualStudio.TestPlatform.ObjectModel;
using Microsoft.VisualStudio.TestPlatform.ObjectModel.Client;

namespace Emu64.SkipReasons;

/// <summary>
/// Prints "Skipped NAME: REASON" for every skipped test. `dotnet test` at its default (minimal)
/// verbosity names skipped tests but not why; a test that needs a tool (QEMU, gdb) or a host (an Intel
/// CPU for undefined flags) must say what is missing on the default console output, without turning
/// on the normal verbosity that lists every passing test.
/// </summary>
[FriendlyName(FriendlyName)]
[ExtensionUri(Uri)]
public sealed class SkipReasonLogger : ITestLogger
{
    public const string FriendlyName = "skipreasons", Uri = "logger://emu64/skipreasons";

    public void Initialize(TestLoggerEvents events, string testRunDirectory)
    {
        events.TestResult += (_, e) =>
        {
            if (e.Result.Outcome != TestOutcome.Skipped) return;
            string name = e.Result.DisplayName ?? e.Result.TestCase.DisplayName;
            string reason = string.IsNullOrWhiteSpace(e.Result.ErrorMessage) ? "(no reason given)" : e.Result.ErrorMessage.Trim();
            Console.WriteLine($"  Skipped {name}: {reason}");
        };
    }
}
