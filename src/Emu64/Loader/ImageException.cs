namespace Emu64.Loader;

/// <summary>
/// A kernel image or module that cannot be loaded; the message names what is wrong, and
/// <see cref="Subject"/> what was being loaded ("kernel image" or "initrd module").
/// </summary>
public sealed class ImageException(string message, string subject = "kernel image") : Exception(message)
{
    public string Subject { get; } = subject;
}

/// <summary>How a kernel image was booted.</summary>
public enum KernelFormat { Multiboot, BzImage, Pvh }
