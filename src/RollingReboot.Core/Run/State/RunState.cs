using System.Collections.Immutable;
using RollingReboot.Core.Pool;
using RollingReboot.Core.Run.Journal;

namespace RollingReboot.Core.Run.State;

/// <summary>Whether a change the run makes is outstanding: asked for (may have happened) and not yet put back.</summary>
public enum ChangeState
{
    /// <summary>Not made by this run (or already put back).</summary>
    None,

    /// <summary>Its intent is journaled: it may have happened. Counts as made.</summary>
    Intended,

    /// <summary>It happened.</summary>
    Made,
}

/// <summary>
/// What the run has done and must put back, as an immutable value: the fold of its journal. The live run applies each
/// event as it journals it, resume and restore fold the file: one <see cref="Apply"/>, so they cannot disagree.
/// A change counts from its intent.
/// </summary>
public sealed record RunState
{
    public string RunId { get; init; } = "";

    public string PoolUuid { get; init; } = "";

    public string? Cluster { get; init; }

    /// <summary>"run", "evacuate" or "return".</summary>
    public string Mode { get; init; } = "run";

    public bool Ended { get; init; }

    public bool Paused { get; init; }

    public OriginalState? Original { get; init; }

    public ChangeState Lock { get; init; }

    public ChangeState HaOff { get; init; }

    /// <summary>pool.other_config:auto_poweron switched off by the run.</summary>
    public ChangeState AutoPowerOnOff { get; init; }

    public ChangeState ClusterUnmanaged { get; init; }

    public ImmutableDictionary<string, HostProgress> Hosts { get; init; } = ImmutableDictionary.Create<string, HostProgress>(StringComparer.Ordinal);

    /// <summary>Evacuation markers written (or about to be) and not cleared: host uuid to pool.other_config key.</summary>
    public ImmutableDictionary<string, string> Markers { get; init; } = ImmutableDictionary.Create<string, string>(StringComparer.Ordinal);

    /// <summary>VMs whose migration was asked for and has not ended (done or failed): VM uuid to its target's uuid.</summary>
    public ImmutableDictionary<string, string> MigrationsInFlight { get; init; } = ImmutableDictionary.Create<string, string>(StringComparer.Ordinal);

    /// <summary>
    /// --shutdown-pinned-vms: VMs the run shut down (or is about to) for their host's reboot and has not started again,
    /// by uuid. Counts from the intent: the restore starts each one that is halted.
    /// </summary>
    public ImmutableDictionary<string, VmShutdownIntended> VmsShutDown { get; init; } = ImmutableDictionary.Create<string, VmShutdownIntended>(StringComparer.Ordinal);

    public PlanDecided? Decisions { get; init; }

    /// <summary>--apply-updates: hosts whose installation was asked for and has not been seen to end (may be running).</summary>
    public ImmutableDictionary<string, UpdateIntended> UpdatesInFlight { get; init; } = ImmutableDictionary.Create<string, UpdateIntended>(StringComparer.Ordinal);

    /// <summary>--apply-updates: hosts whose updates are installed in this run.</summary>
    public ImmutableHashSet<string> UpdatesApplied { get; init; } = ImmutableHashSet.Create<string>(StringComparer.Ordinal);

    /// <summary>--apply-updates: hosts whose toolstack restart was asked for and not proven; host to agent_start_time before (Unix ms).</summary>
    public ImmutableDictionary<string, long?> ToolstackRestarts { get; init; } = ImmutableDictionary.Create<string, long?>(StringComparer.Ordinal);

    /// <summary>--apply-updates: what the run decided for each host (host uuid to action), from <see cref="Decisions"/>.</summary>
    public UpdateAction? UpdateActionOf(string hostUuid) =>
        Decisions?.Updates?.GetValueOrDefault(hostUuid) is { } a && Enum.TryParse<UpdateAction>(a, out var action) ? action : null;

    public ImmutableList<string> OperatorActions { get; init; } = [];

    /// <summary>Hosts finished in this run, with their timings, in order.</summary>
    public ImmutableList<HostFinished> Finished { get; init; } = [];

    public static RunState Empty { get; } = new();

    public static RunState Fold(IEnumerable<RunEvent> events)
    {
        ArgumentNullException.ThrowIfNull(events);
        var state = Empty;
        foreach (var e in events)
        {
            state = state.Apply(e);
        }

        return state.RunId.Length == 0 ? throw new JournalException("the journal is empty") : state;
    }

    public HostProgress Host(string uuid) => Hosts.GetValueOrDefault(uuid) ?? HostProgress.New(uuid, null);

    /// <summary>Hosts rebooted in this run: proven back (host.back) or finished as rebooted (host.done).</summary>
    public ImmutableHashSet<string> Rebooted { get; init; } = ImmutableHashSet.Create<string>(StringComparer.Ordinal);

    /// <summary>Hosts that failed in the run (--max-failed-hosts), with why, in the order they failed.</summary>
    public IReadOnlyList<HostFailed> Failed { get; init; } = [];

    public IReadOnlySet<string> Skipped =>
        Hosts.Values.Where(h => h.Phase == HostPhase.Skipped).Select(h => h.Uuid).ToHashSet(StringComparer.Ordinal);

    /// <summary>Hosts whose reboot may be in flight: their proof is journaled, they are not proven back.</summary>
    public IEnumerable<HostProgress> RebootsInFlight => Hosts.Values.Where(h => h.RebootInFlight).OrderBy(h => h.Uuid, StringComparer.Ordinal);

    /// <summary>Hosts the run may have disabled and must enable again (a host left evacuated stays out).</summary>
    public IEnumerable<HostProgress> LeftDisabled =>
        Hosts.Values.Where(h => h.DisabledByRun && h.Phase != HostPhase.LeftEvacuated).OrderBy(h => h.Uuid, StringComparer.Ordinal);

    /// <summary>Was the host enabled before the run? (Unknown hosts: yes, the safe default for "enable it again".)</summary>
    public bool WasEnabled(string hostUuid) => Original?.HostEnabled.GetValueOrDefault(hostUuid, true) ?? true;

    /// <summary>
    /// Was the host disabled before the run only until its reboot (a mandatory reboot guidance pending, xapi 24.10.0+:
    /// <see cref="HostState.DisabledUntilReboot"/>)? Then it is enabled after its reboot, and left disabled without one.
    /// </summary>
    public bool EnableAfterReboot(string hostUuid) => Original?.DisabledUntilReboot.Contains(hostUuid) ?? false;

    /// <summary>Is anything left to put back? (What <see cref="Restorer"/> walks.)</summary>
    public bool HasOutstanding =>
        Lock != ChangeState.None || HaOff != ChangeState.None || AutoPowerOnOff != ChangeState.None || ClusterUnmanaged != ChangeState.None || LeftDisabled.Any() || !VmsShutDown.IsEmpty
        || Markers.Keys.Any(h => Host(h).Phase != HostPhase.LeftEvacuated);

    public RunState Apply(RunEvent e) => e switch
    {
        RunStarted s => this with { RunId = s.RunId, PoolUuid = s.Pool, Cluster = s.Cluster, Mode = s.Mode },
        RunContinued => this with { Paused = false },
        OriginalsRecorded o => this with { Original = ToOriginal(o) },
        PlanDecided d => this with { Decisions = d },
        OperatorActionNeeded a => this with { OperatorActions = OperatorActions.Add(a.Action) },
        RunPaused => this with { Paused = true },
        RunEnded => this with { Ended = true },

        LockIntended => this with { Lock = ChangeState.Intended },
        LockAcquired => this with { Lock = ChangeState.Made },
        LockReleased => this with { Lock = ChangeState.None },

        HaDisableIntended => this with { HaOff = Max(HaOff, ChangeState.Intended) },
        HaDisabled => this with { HaOff = ChangeState.Made },
        HaEnabled => this with { HaOff = ChangeState.None },
        AutoPowerOnOffIntended => this with { AutoPowerOnOff = Max(AutoPowerOnOff, ChangeState.Intended) },
        Journal.AutoPowerOnOff => this with { AutoPowerOnOff = ChangeState.Made },
        AutoPowerOnRestored => this with { AutoPowerOnOff = ChangeState.None },
        UnmanageIntended => this with { ClusterUnmanaged = Max(ClusterUnmanaged, ChangeState.Intended) },
        Journal.Unmanaged => this with { ClusterUnmanaged = ChangeState.Made },
        Managed => this with { ClusterUnmanaged = ChangeState.None },

        HostDisableIntended d => Update(d.Host, d.Name, h => h with { DisabledByRun = true, Phase = h.Phase == HostPhase.Planned ? HostPhase.Disabled : h.Phase }),
        HostEnabled en => Update(en.Host, null, h => h with { DisabledByRun = false, Phase = h.Phase == HostPhase.Back ? HostPhase.Enabled : h.Phase }),
        HostEmptied em => Update(em.Host, null, h => h.Phase == HostPhase.Disabled ? h with { Phase = HostPhase.Evacuated } : h),
        RebootIntended r => Update(r.Host, r.Name, h => h with
        {
            Phase = HostPhase.RebootRequested,
            Proof = new RebootProof(
                r.BootTime is { } ms ? DateTimeOffset.FromUnixTimeMilliseconds(ms) : null,
                Time.IsoMoment.TryParse(r.ServerTime, out var st) ? st : null,
                r.BootId,
                r.Halt),
        }),
        RebootTaken t => Update(t.Host, null, h => h.Phase == HostPhase.RebootRequested ? h with { Phase = HostPhase.RebootTaken } : h),
        HostBack b => Update(b.Host, null, h => h with { Phase = HostPhase.Back }) with { Rebooted = Rebooted.Add(b.Host) },
        HostFinished f => Finish(f),
        HostSkipped s => Update(s.Host, s.Name, h => h with { Phase = HostPhase.Skipped }),
        HostFailed f => Update(f.Host, f.Name, h => h with { Phase = HostPhase.Failed }) with { Failed = [.. Failed, f] },
        EvacuationMarkIntended m => this with { Markers = Markers.SetItem(m.Host, m.Key) },
        HostLeftEvacuated l => Update(l.Host, l.Name, h => h with { Phase = HostPhase.LeftEvacuated }),
        EvacuationMarkCleared c => this with { Markers = Markers.Remove(c.Host) },

        MigrationIntended m => this with { MigrationsInFlight = MigrationsInFlight.SetItem(m.Vm, m.To) },
        MigrationDone m => this with { MigrationsInFlight = MigrationsInFlight.Remove(m.Vm) },
        MigrationFailed m => this with { MigrationsInFlight = MigrationsInFlight.Remove(m.Vm) },
        ReturnIntended m => this with { MigrationsInFlight = MigrationsInFlight.SetItem(m.Vm, m.To) },
        ReturnDone m => this with { MigrationsInFlight = MigrationsInFlight.Remove(m.Vm) },
        VmShutdownIntended v => this with { VmsShutDown = VmsShutDown.SetItem(v.Vm, v) },
        VmStarted v => this with { VmsShutDown = VmsShutDown.Remove(v.Vm) },

        UpdateIntended u => this with { UpdatesInFlight = UpdatesInFlight.SetItem(u.Host, u) },
        UpdateApplied u => this with { UpdatesInFlight = UpdatesInFlight.Remove(u.Host), UpdatesApplied = UpdatesApplied.Add(u.Host) },
        UpdateFailed u => this with { UpdatesInFlight = UpdatesInFlight.Remove(u.Host) },
        ToolstackRestartIntended t => this with { ToolstackRestarts = ToolstackRestarts.SetItem(t.Host, t.AgentStartTime) },
        ToolstackRestarted t => this with { ToolstackRestarts = ToolstackRestarts.Remove(t.Host) },

        // Intents whose outcome is read from the pool when it matters (enable, mark clear, HA on, Managed, release).
        _ => this,
    };

    private RunState Finish(HostFinished f)
    {
        var rebooted = (f.Result ?? HostResult.Rebooted) == HostResult.Rebooted;
        var next = Update(f.Host, f.Name, h => h with
        {
            Phase = h.Phase is HostPhase.LeftEvacuated or HostPhase.Skipped or HostPhase.Failed ? h.Phase : HostPhase.Done,
        });
        return next with { Finished = Finished.Add(f), Rebooted = rebooted ? Rebooted.Add(f.Host) : Rebooted };
    }

    private RunState Update(string host, string? name, Func<HostProgress, HostProgress> change)
    {
        var current = Hosts.GetValueOrDefault(host) ?? HostProgress.New(host, name);
        var next = change(current);
        return this with { Hosts = Hosts.SetItem(host, next.Name is null && name is not null ? next with { Name = name } : next) };
    }

    private static ChangeState Max(ChangeState a, ChangeState b) => a > b ? a : b;

    private static OriginalState ToOriginal(OriginalsRecorded o) => new(
        new HaSettings(o.Ha.Enabled, o.Ha.HeartbeatSrs ?? [], o.Ha.Configuration ?? new Dictionary<string, string>(), o.Ha.HostFailuresToTolerate, o.Ha.AllowOvercommit),
        o.CloudstackManagedState,
        o.HostEnabled ?? new Dictionary<string, bool>(),
        o.VmHost ?? new Dictionary<string, string?>(),
        o.AutoPowerOn)
    {
        DisabledUntilReboot = (o.DisabledUntilReboot ?? []).ToHashSet(StringComparer.Ordinal),
    };

    public static OriginalsRecorded Record(PoolSnapshot pool, string? cloudstackManagedState)
    {
        ArgumentNullException.ThrowIfNull(pool);
        return new OriginalsRecorded(
            pool.Uuid,
            new HaRecord(pool.Ha.Enabled, pool.Ha.HeartbeatSrUuids, pool.Ha.Configuration, pool.Ha.HostFailuresToTolerate, pool.Ha.AllowOvercommit),
            cloudstackManagedState,
            pool.Hosts.ToDictionary(h => h.Uuid, h => h.Enabled, StringComparer.Ordinal),
            pool.Vms.Where(v => v.IsRunningGuest).ToDictionary(v => v.Uuid, v => v.ResidentOnUuid, StringComparer.Ordinal),
            pool.OtherConfig.GetValueOrDefault("auto_poweron"))
        {
            DisabledUntilReboot = pool.Hosts.Where(h => h.DisabledUntilReboot).Select(h => h.Uuid).Order(StringComparer.Ordinal).ToList() is { Count: > 0 } l ? l : null,
        };
    }
}
