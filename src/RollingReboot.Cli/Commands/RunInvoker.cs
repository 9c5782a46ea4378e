using RollingReboot.Core.Pool;
using RollingReboot.Core.Ports;
using RollingReboot.Core.Run;
using RollingReboot.Core.Run.Engine;
using RollingReboot.Core.Run.Journal;
using RollingReboot.Core.Run.State;
using RollingReboot.Core.Run.Steps;

namespace RollingReboot.Cli.Commands;

/// <summary>
/// The one place the CLI touches the run engine (<see cref="RunEngine"/>, its journal and its pool keys): calls only,
/// no decisions. The engine writes the journal itself (<c>run.start</c>, <c>run.resume</c>, <c>run.restore</c>).
/// </summary>
internal sealed class RunInvoker
{
    private readonly FileJournalStore _store;
    private readonly string _runId;
    private readonly PoolSnapshot _pool;
    private readonly RunMode _mode;

    private RunInvoker(FileJournalStore store, string runId, PoolSnapshot pool, RunMode mode)
    {
        _store = store;
        _runId = runId;
        _pool = pool;
        _mode = mode;
    }

    /// <summary>A new run (the run itself, evacuate or return) in a new journal.</summary>
    /// <param name="mode">What the run is started as: "run", "evacuate" or "return".</param>
    public static RunInvoker Start(FileJournalStore store, string runId, PoolSnapshot pool, string mode) =>
        new(store, runId, pool, mode switch { "evacuate" => RunMode.Evacuate, "return" => RunMode.Return, _ => RunMode.Run });

    /// <summary>Resume or restore: the unfinished run's journal.</summary>
    public static RunInvoker Continue(FileJournalStore store, string verb, PreviousRun previous, PoolSnapshot pool) =>
        new(store, previous.RunId, pool, verb == "restore" ? RunMode.Restore : RunMode.Resume);

    /// <summary>A journal read back.</summary>
    /// <exception cref="UserFacingException">The journal cannot be read.</exception>
    public static PreviousRun ReadJournal(FileJournalStore store)
    {
        try
        {
            return new PreviousRun(RunEngine.ReadState(store));
        }
        catch (JournalException e)
        {
            throw new UserFacingException($"journal {store.Path} cannot be read: {e.Message}");
        }
    }

    /// <summary>The pool's lock value, or null when no run holds it.</summary>
    public static string? LockOwner(PoolSnapshot pool) => pool.OtherConfig.GetValueOrDefault(PoolLock.Key);

    public static string DescribeLock(string lockValue) => PoolLock.Parse(lockValue).Owner;

    /// <summary>The mark <c>rollreboot evacuate</c> leaves on the pool for a host it emptied, or null.</summary>
    public static string? EvacuationMarker(PoolSnapshot pool, string hostUuid) =>
        pool.OtherConfig.GetValueOrDefault(Evacuation.MarkerKey(hostUuid));

    /// <summary>How many VMs an evacuation mark says were moved off the host.</summary>
    public static int EvacuatedVmCount(string? marker) => Evacuation.MarkedVms(marker, out _).Count;

    /// <summary>The run, or evacuate (the options name the host and <see cref="RunOptions.EvacuateOnly"/>).</summary>
    public Task<RunReport> RunAsync(RunParts parts, CancellationToken stop, CancellationToken abort) =>
        Create(parts).StartAsync(_store, _runId, _mode, _pool, null, stop, abort);

    public Task<RunReport> ResumeAsync(RunParts parts, CancellationToken stop, CancellationToken abort) =>
        Create(parts).ContinueAsync(_store, RunMode.Resume, stop, abort);

    public Task<RunReport> RestoreAsync(RunParts parts) =>
        Create(parts).ContinueAsync(_store, RunMode.Restore, CancellationToken.None, CancellationToken.None);

    public Task<RunReport> ReturnAsync(RunParts parts, string hostUuid, CancellationToken stop, CancellationToken abort) =>
        Create(parts).StartAsync(_store, _runId, RunMode.Return, _pool, hostUuid, stop, abort);

    private static RunEngine Create(RunParts p) => new(
        new RunServices(p.Pool, p.Cloud, p.Log, p.Clock)
        {
            Probe = p.Probe,
            LocalCommands = p.LocalCommands,
            RemoteShell = p.RemoteShell,
            Notifier = p.Notifier,
            Alerts = p.Alerts,
            ProcessAlive = Adapters.LocalProcesses.IsRollrebootRunning,
        },
        p.Options,
        p.Cluster);
}

/// <summary>An unfinished (or finished) run as its journal tells it.</summary>
internal sealed class PreviousRun(RunState state)
{
    public string RunId => state.RunId;

    public string PoolUuid => state.PoolUuid;

    /// <summary>What the run was started as: "run", "evacuate" or "return".</summary>
    public string Mode => state.Mode;

    public bool Ended => state.Ended;

    internal RunState State => state;
}

/// <summary>What the run is built from, besides its journal.</summary>
internal sealed record RunParts(IPoolConnection Pool, ClusterBinding? Cloud, IHostProbe? Probe, IRunLog Log, TimeProvider Clock, RunOptions Options, string RunId, string Cluster)
{
    public ILocalCommandRunner? LocalCommands { get; init; }

    public IRemoteShell? RemoteShell { get; init; }

    public IRunNotifier? Notifier { get; init; }

    public AlertGate? Alerts { get; init; }
}
