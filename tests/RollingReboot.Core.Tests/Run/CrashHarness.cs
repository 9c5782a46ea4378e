using Microsoft.Extensions.Time.Testing;
using RollingReboot.Core.Pool;
using RollingReboot.Core.Ports;
using RollingReboot.Core.Run;
using RollingReboot.Core.Run.Engine;
using RollingReboot.Core.Run.Journal;
using RollingReboot.Core.Tests.Run.Fakes;

namespace RollingReboot.Core.Tests.Run;

/// <summary>A fake pool, a fake CloudStack and a journal, with the engine composed over them as the CLI composes it.</summary>
internal sealed class CrashHarness
{
    public CrashHarness(int hosts = 4, bool ha = true, bool cloudStack = true, RunOptions? options = null, bool autoPowerOn = false, int vmsPerHost = 3)
    {
        // Each read of the clock moves it on a second: time passes as the run works, never by itself.
        Clock = new FakeTimeProvider(new DateTimeOffset(2026, 11, 22, 1, 0, 0, TimeSpan.Zero)) { AutoAdvanceAmount = TimeSpan.FromSeconds(1) };
        Pool = FakePool.Create(Clock, hosts, vmsPerHost, ha: ha);
        if (autoPowerOn)
        {
            Pool.OtherConfig["auto_poweron"] = "true";
        }

        Cloud = cloudStack ? new FakeCloudStack(Pool) : null;
        Options = options ?? new RunOptions { Operator = "test", Machine = "test", UseSshProof = false };
    }

    /// <summary>The process id of the latest invocation: each one is a new process, a crashed one is dead.</summary>
    public int CurrentPid { get; private set; } = 100;

    /// <summary>What this machine can tell of a process: when false, only the heartbeat's age decides.</summary>
    public bool KnowsProcesses { get; set; } = true;

    public FakeTimeProvider Clock { get; }

    public FakePool Pool { get; }

    public FakeCloudStack? Cloud { get; }

    public RunOptions Options { get; }

    public CollectingRunLog Log { get; } = new();

    /// <summary>What the engine talks to instead of the fake pool (a fault injector, say).</summary>
    public Func<IPoolConnection, IPoolConnection> WrapPool { get; set; } = p => p;

    public Func<ICloudStack, ICloudStack> WrapCloud { get; set; } = c => c;

    public RunEngine Engine(RunOptions? options = null)
    {
        var pid = ++CurrentPid;
        var services = new RunServices(WrapPool(Pool), Cloud is null ? null : new ClusterBinding(WrapCloud(Cloud), Cloud.Cluster), Log, Clock)
        {
            ProcessAlive = (machine, p) => KnowsProcesses && machine == "test" ? p == CurrentPid : null,
        };
        return new(services, (options ?? Options) with { ProcessId = pid }, "C");
    }

    public async Task<PoolSnapshot> SnapshotAsync()
    {
        Pool.Thaw();
        return await Pool.ReadAsync();
    }

    /// <summary>Starts a mode; a simulated crash ends it as kill -9 would (the pool frozen, the journal cut).</summary>
    public async Task<RunReport?> StartAsync(MemoryJournalStore store, RunMode mode, string? hostUuid = null, RunOptions? options = null, string runId = "run-1")
    {
        var pool = await SnapshotAsync();
        try
        {
            return await Engine(options).StartAsync(store, runId, mode, pool, hostUuid, CancellationToken.None, CancellationToken.None);
        }
        catch (SimulatedCrash)
        {
            Pool.Thaw();
            return null;
        }
    }

    public async Task<RunReport?> ContinueAsync(MemoryJournalStore store, RunMode mode, RunOptions? options = null)
    {
        Pool.Thaw();
        try
        {
            return await Engine(options).ContinueAsync(store, mode, CancellationToken.None, CancellationToken.None);
        }
        catch (SimulatedCrash)
        {
            Pool.Thaw();
            return null;
        }
    }

    public MemoryJournalStore CrashingAt(int n) => new() { CrashAt = n, OnCrash = Pool.Freeze };

    /// <summary>A journal that crashes at the first event of this kind.</summary>
    public MemoryJournalStore CrashingAtFirst(string kind) => new() { CrashOn = line => line.Contains($"\"kind\":\"{kind}\"", StringComparison.Ordinal), OnCrash = Pool.Freeze };

    public string Audit() => Pool.Audit() + "\ncloudstack " + (Cloud?.ManagedState ?? "-");
}
