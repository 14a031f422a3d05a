using System.Collections.Concurrent;

namespace Emu64.Cpu;

/// <summary>
/// Compiles hot regions on another thread while the guest goes on running (<see cref="MachineOptions.CompileInBackground"/>),
/// and installs each at a guest time fixed when it was queued, so that a run is the same on every host.
///
/// Why: the JIT takes milliseconds per region (docs/PERFORMANCE.md, "Where a Linux boot spends its time"), which on the run
/// loop's thread is guest progress lost; a region pays that back only after hundreds of thousands of runs. On another core the
/// JIT overlaps the guest, which runs the block interpreted meanwhile.
///
/// Why a fixed install time: interpreted and compiled code give the same results and TLB counters, so installing whenever the
/// JIT finishes would already leave the guest's output alone, but not the host-side counters that say how much ran compiled
/// (`--stats` compiled_blocks, compiled_instructions, the chain's exits), and a run must print the same counters every time.
/// So the run loop chooses the region when the block turns hot (<see cref="BlockCompiler.RegionPlan"/>, from the links as they
/// are) and gives it an install time in guest ticks: <see cref="DefaultLead"/> after now, and at least <see cref="DefaultSpacing"/> after the
/// previous job's, about what the JIT needs per region at the guest's usual speed. This machine's queue is a timed device
/// (<see cref="ITimedDevice"/>): at that tick the run loop leaves its chain as for any device event and installs the code, waiting
/// for the compiler thread only if it is late (then the host is slower than the schedule assumes: it costs wall time, never a
/// different run). A job whose head got code meanwhile (inside another region) or whose page was written is dropped, also at
/// its install time. The compiler thread is shared by every machine of the process and never touches a block.
/// </summary>
internal sealed class BackgroundCompiler(Machine machine) : ITimedDevice
{
    /// <summary>Guest ticks from queuing a region to installing it, and between two installs at least (defaults; MachineOptions).</summary>
    public const ulong DefaultLead = 4_000_000, DefaultSpacing = 1_000_000;
    private readonly ulong Lead = machine.Options.BackgroundCompileLead, Spacing = machine.Options.BackgroundCompileSpacing;

    private sealed class Job(BlockCompiler.RegionPlan plan, ulong installAt)
    {
        public readonly BlockCompiler.RegionPlan Plan = plan;
        public readonly ulong InstallAt = installAt;
        public BlockCode? Code;   // written by the compiler thread before Done is set
        public readonly ManualResetEventSlim Done = new();
    }

    private readonly Queue<Job> _jobs = new();
    private ulong _lastInstallAt;

    public ulong NextEventAt => _jobs.Count > 0 ? _jobs.Peek().InstallAt : ulong.MaxValue;

    /// <summary>Queues the region of a block that just turned hot; the run loop goes on interpreting it until its install time.</summary>
    public void Enqueue(Block head)
    {
        ulong at = Math.Max(machine.Now + Lead, _lastInstallAt + Spacing);
        _lastInstallAt = at;
        var job = new Job(new BlockCompiler.RegionPlan(head), at);
        _jobs.Enqueue(job);
        Worker.Add(job);
        machine.RecomputeNextEvent();
    }

    /// <summary>Installs every job whose time has come, in order, waiting for the compiler thread where it is behind.</summary>
    public void OnTime(ulong now)
    {
        while (_jobs.Count > 0 && _jobs.Peek().InstallAt <= now)
        {
            var job = _jobs.Dequeue();
            job.Done.Wait();
            job.Done.Dispose();
            var head = job.Plan.Head;
            if (head.Code is not null || !head.Valid) continue;   // dropped: compiled inside another region, or its page was written
            // The compiler thread failed (it never should: synchronous compilation, the default, lets a compile error surface): compile here.
            BlockCompiler.Install(job.Plan, job.Code ?? BlockCompiler.Emit(job.Plan));
            machine.Cache.Compiled++;
        }
    }

    /// <summary>Waits until the compiler thread has compiled everything queued so far (tests); false after <paramref name="bound"/>.</summary>
    public bool WaitCompiled(TimeSpan bound) => _jobs.All(j => j.Done.Wait(bound));

    /// <summary>The one compiler thread of the process: emits each job's method and makes the JIT compile it.</summary>
    private static class Worker
    {
        private static readonly BlockingCollection<Job> Jobs = new();
        private static readonly Lock StartLock = new();
        private static Thread? _thread;

        public static void Add(Job job)
        {
            if (_thread is null) Start();
            Jobs.Add(job);
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
            foreach (var job in Jobs.GetConsumingEnumerable())
            {
                try
                {
                    // A head already dropped would be dropped at install time too: skip the JIT (only an optimisation).
                    if (job.Plan.Head.Valid)
                    {
                        var code = BlockCompiler.Emit(job.Plan);
                        code(null!, 0, BlockCompiler.WarmUp);   // the JIT compiles the whole method here, not at the first call
                        job.Code = code;
                    }
                }
                catch (Exception)
                {
                    // Leave Code null: the run loop compiles the region itself at its install time.
                }
                finally { job.Done.Set(); }
            }
        }
    }
}
