using System.Collections.Concurrent;

namespace Emu64.Cpu;

/// <summary>
/// One thread per process that compiles hot regions while the guest goes on running (<see cref="MachineOptions.CompileInBackground"/>).
///
/// Why: the JIT takes milliseconds per region (docs/PERFORMANCE.md, "Where a Linux boot spends its time"), which on the run
/// loop's thread is guest progress lost; a region only pays that back after hundreds of thousands of runs. On another core the
/// run loop never waits: it interprets the block until its code is installed, and the interpreter and the compiled code give
/// the same results and counters, so when the code arrives changes host time only, never what the guest sees.
///
/// The run loop chooses the region (<see cref="BlockCompiler.RegionPlan"/>) when the block turns hot, from the links as they are;
/// this thread emits the IL, makes the JIT compile it (a call with a negative entry, which returns at once) and then installs it.
/// Jobs are done in the order the blocks turned hot; a job whose head got code meanwhile (as a member of another region) or was
/// invalidated by a store into its page is dropped.
/// </summary>
internal static class BackgroundCompiler
{
    private static readonly BlockingCollection<(BlockCompiler.RegionPlan Plan, DecodeCache Cache)> Jobs = new();
    private static readonly Lock StartLock = new();
    private static Thread? _thread;

    /// <summary>Regions queued and compiled by the background thread since the process started (diagnostics).</summary>
    public static long Queued, Done, Dropped;
    private static long _pending;

    /// <summary>Waits until every queued region is installed or dropped (tests: code that was queued then surely runs compiled); false after <paramref name="bound"/>.</summary>
    internal static bool WaitIdle(TimeSpan bound)
    {
        var until = DateTime.UtcNow + bound;
        while (Interlocked.Read(ref _pending) > 0)
        {
            if (DateTime.UtcNow > until) return false;
            Thread.Sleep(1);
        }
        return true;
    }

    public static void Enqueue(BlockCompiler.RegionPlan plan, DecodeCache cache)
    {
        if (_thread is null) Start();
        Interlocked.Increment(ref Queued);
        Interlocked.Increment(ref _pending);
        Jobs.Add((plan, cache));
    }

    private static void Start()
    {
        lock (StartLock)
        {
            if (_thread is not null) return;
            // A background thread: a process that has finished does not wait for regions nobody will run.
            _thread = new Thread(Work) { IsBackground = true, Name = "Emu64 block compiler" };
            _thread.Start();
        }
    }

    private static void Work()
    {
        foreach (var (plan, cache) in Jobs.GetConsumingEnumerable())
        {
            try { Compile(plan, cache); }
            finally { Interlocked.Decrement(ref _pending); }
        }
    }

    private static void Compile(BlockCompiler.RegionPlan plan, DecodeCache cache)
    {
        var head = plan.Head;
        if (head.Code is not null || !head.Valid) { Interlocked.Increment(ref Dropped); return; }
        BlockCode code;
        try
        {
            code = BlockCompiler.Emit(plan);
            code(null!, 0, BlockCompiler.WarmUp);   // the JIT compiles the whole method here, not at the run loop's first call
        }
        catch (Exception)
        {
            // Compiling is only ever an optimisation: the block goes on running interpreted. (Synchronous compilation, which the
            // test suite's second pass uses at a threshold of 1, lets such an exception surface.)
            Interlocked.Increment(ref Dropped);
            return;
        }
        BlockCompiler.Install(plan, code);
        Interlocked.Increment(ref cache.Compiled);
        Interlocked.Increment(ref Done);
    }
}
