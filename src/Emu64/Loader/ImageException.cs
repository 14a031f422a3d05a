namespace Emu64.Loader;

/// <summary>A kernel image or module that cannot be loaded; the message names what is wrong.</summary>
public sealed class ImageException(string message) : Exception(message);
