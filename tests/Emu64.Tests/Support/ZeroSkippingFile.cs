namespace Emu64.Tests.Support;

/// <summary>A file written sparsely: all-zero pieces move the position instead of being written (a 3 GiB dump of a
/// guest that touched 200 MiB takes 200 MiB of disk).</summary>
public sealed class ZeroSkippingFile(string path) : Stream
{
    private readonly FileStream _f = new(path, FileMode.Create, FileAccess.Write);
    public override void Write(ReadOnlySpan<byte> buffer)
    {
        if (buffer.IndexOfAnyExcept((byte)0) < 0) _f.Seek(buffer.Length, SeekOrigin.Current);
        else _f.Write(buffer);
    }
    public override void Write(byte[] buffer, int offset, int count) => Write(buffer.AsSpan(offset, count));
    protected override void Dispose(bool disposing)
    {
        if (disposing) { _f.SetLength(_f.Position); _f.Dispose(); }
        base.Dispose(disposing);
    }
    public override long Length => _f.Position;
    public override bool CanRead => false;
    public override bool CanSeek => false;
    public override bool CanWrite => true;
    public override long Position { get => _f.Position; set => throw new NotSupportedException(); }
    public override void Flush() => _f.Flush();
    public override int Read(byte[] buffer, int offset, int count) => throw new NotSupportedException();
    public override long Seek(long offset, SeekOrigin origin) => throw new NotSupportedException();
    public override void SetLength(long value) => throw new NotSupportedException();
}
