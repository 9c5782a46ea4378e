using System.Text.Json.Nodes;
using RollingReboot.Core.Pool;
using RollingReboot.Core.Ports;
using RollingReboot.Core.Run;

namespace RollingReboot.Cli.Commands;

/// <summary>
/// The one place the CLI touches the run engine (<see cref="RollingRebootRun"/>, its journal and its pool keys):
/// calls only, no decisions, so that a new engine replaces this file and nothing else.
/// </summary>
internal sealed class RunInvoker
{
    private readonly RunJournal _journal;

    private RunInvoker(RunJournal journal) => _journal = journal;

    /// <summary>A new run (the run itself, evacuate or return): a new journal, opened with <c>run.start</c>.</summary>
    /// <param name="mode">What the journal says the run was started as: "run", "evacuate" or "return".</param>
    public static RunInvoker Start(FileJournalStore store, TimeProvider clock, string runId, PoolSnapshot pool, string cluster, string mode) =>
        Open(store, clock, "run.start", runId, pool, cluster, mode);

    /// <summary>Resume or restore: the unfinished run's journal, continued with <c>run.resume</c> or <c>run.restore</c>.</summary>
    public static RunInvoker Continue(FileJournalStore store, TimeProvider clock, string verb, PreviousRun previous, PoolSnapshot pool, string cluster) =>
        Open(store, clock, "run." + verb, previous.RunId, pool, cluster, "run");

    /// <summary>A journal read back.</summary>
    /// <exception cref="UserFacingException">The journal cannot be read.</exception>
    public static PreviousRun ReadJournal(FileJournalStore store)
    {
        try
        {
            return new PreviousRun(JournalState.From(RunJournal.Read(store)));
        }
        catch (JournalException e)
        {
            throw new UserFacingException($"journal {store.Path} cannot be read: {e.Message}");
        }
    }

    /// <summary>The pool's lock value, or null when no run holds it.</summary>
    public static string? LockOwner(PoolSnapshot pool) => pool.OtherConfig.GetValueOrDefault(RollingRebootRun.LockKey);

    public static string DescribeLock(string lockValue) => RollingRebootRun.DescribeLock(lockValue, out _);

    /// <summary>The mark <c>rollreboot evacuate</c> leaves on the pool for a host it emptied, or null.</summary>
    public static string? EvacuationMarker(PoolSnapshot pool, string hostUuid) =>
        pool.OtherConfig.GetValueOrDefault(RollingRebootRun.EvacuatedKeyPrefix + hostUuid);

    /// <summary>How many VMs an evacuation mark says were moved off the host.</summary>
    public static int EvacuatedVmCount(string? marker) =>
        marker is null ? 0 : JsonNode.Parse(marker)?["vms"]?.AsArray().Count ?? 0;

    /// <summary>The run, or evacuate (<see cref="RunOptions.EvacuateOnly"/>).</summary>
    public Task<RunReport> RunAsync(RunParts parts, CancellationToken stop, CancellationToken abort) =>
        Create(parts).ExecuteAsync(stop, abort);

    public Task<RunReport> ResumeAsync(RunParts parts, PreviousRun previous, PoolSnapshot pool, CancellationToken stop, CancellationToken abort)
    {
        var run = Create(parts);
        run.ResumeFrom(previous.State, pool);
        return run.ExecuteAsync(stop, abort);
    }

    public Task<RunReport> RestoreAsync(RunParts parts, PreviousRun previous, PoolSnapshot pool) =>
        Create(parts).RestoreOnlyAsync(previous.State, pool);

    public Task<RunReport> ReturnAsync(RunParts parts, PoolSnapshot pool, string hostUuid, CancellationToken stop, CancellationToken abort) =>
        Create(parts).ReturnHostAsync(pool, hostUuid, stop, abort);

    private static RunInvoker Open(FileJournalStore store, TimeProvider clock, string kind, string runId, PoolSnapshot pool, string cluster, string mode)
    {
        var journal = new RunJournal(store, clock);
        journal.Write(kind, new Dictionary<string, object?>
        {
            ["runId"] = runId,
            ["pool"] = pool.Uuid,
            ["poolName"] = pool.Name,
            ["cluster"] = cluster,
            ["mode"] = mode,
        });
        return new RunInvoker(journal);
    }

    private RollingRebootRun Create(RunParts p) => new(p.Pool, p.Cloud, p.Probe, _journal, p.Log, p.Clock, p.Options, p.RunId, p.Cluster)
    {
        LocalCommands = p.LocalCommands,
        RemoteShell = p.RemoteShell,
        Notifier = p.Notifier,
    };
}

/// <summary>An unfinished (or finished) run as its journal tells it.</summary>
internal sealed class PreviousRun(JournalState state)
{
    public string RunId => state.RunId;

    public string PoolUuid => state.PoolUuid;

    /// <summary>What the run was started as: "run", "evacuate" or "return".</summary>
    public string Mode => state.Mode;

    public bool Ended => state.Ended;

    internal JournalState State => state;
}

/// <summary>What the run is built from, besides its journal.</summary>
internal sealed record RunParts(IPoolConnection Pool, ClusterBinding? Cloud, IHostProbe? Probe, IRunLog Log, TimeProvider Clock, RunOptions Options, string RunId, string Cluster)
{
    public ILocalCommandRunner? LocalCommands { get; init; }

    public IRemoteShell? RemoteShell { get; init; }

    public IRunNotifier? Notifier { get; init; }
}
