using RollingReboot.Core.Pool;

namespace RollingReboot.Core.Planning;

/// <summary>One live migration: a running VM moved from one host to another.</summary>
public sealed record PlannedMigration(
    string VmUuid,
    string VmName,
    string FromUuid,
    string FromName,
    string ToUuid,
    string ToName,
    long MemoryBytes)
{
    /// <summary>The placement rule that shaped where this VM goes (CloudStack affinity, host tags, dedication), or null.</summary>
    public string? Rule { get; init; }
}

/// <summary>
/// One host evacuated and rebooted. <see cref="Index"/> counts from 1 in reboot order; steps of one wave
/// (hosts rebooted together) share <see cref="Wave"/>, also counting from 1. Seconds are estimates from the
/// start of the step's wave.
/// </summary>
public sealed record PlanStep(
    int Index,
    int Wave,
    string HostUuid,
    string HostName,
    bool IsMaster,
    IReadOnlyList<PlannedMigration> Migrations,
    double EvacuationSeconds,
    double EstimatedSeconds)
{
    /// <summary>Estimated seconds from the start of the run to the start of this step's wave.</summary>
    public double StartSeconds { get; init; }

    /// <summary>--shutdown-pinned-vms: the VMs of this host that cannot be live-migrated, shut down right before its
    /// reboot and started on it again once it is back; empty otherwise.</summary>
    public IReadOnlyList<PinnedVm> Shutdowns { get; init; } = [];
}

/// <summary>A running VM that stays on its host through the host's reboot, shut down and started again
/// (--shutdown-pinned-vms); <see cref="Reason"/> is the XAPI code that keeps it from live-migrating.</summary>
public sealed record PinnedVm(string VmUuid, string VmName, string HostUuid, string HostName, long MemoryBytes, string Reason);

public static class HostAction
{
    public const string Reboot = "reboot";
    public const string Skip = "skip";
}

/// <summary>What happens to one host, and why.</summary>
public sealed record HostDecision(string Uuid, string Name, bool IsMaster, string Action, string Reason);

/// <summary>Something that makes the plan not executable; <see cref="Vm"/> and <see cref="Host"/> are name labels.</summary>
public sealed record Blocker(string Code, string Message, string Fix, string? Vm = null, string? Host = null);

/// <summary>Something the operator should know; the plan can still run.</summary>
public sealed record PlanWarning(string Code, string Message, string Fix);

/// <summary>
/// The whole run: <see cref="TotalSeconds"/> includes the migrate-back when planned; <see cref="Migrations"/> and
/// <see cref="Bytes"/> (bytes on the wire: memory plus re-sent dirty pages) count every migration of the plan.
/// </summary>
public sealed record PlanEstimate(double TotalSeconds, int Migrations, long Bytes)
{
    /// <summary>Sum of the memory of every migration (without dirty pages).</summary>
    public long MemoryBytes { get; init; }

    /// <summary>Part of <see cref="TotalSeconds"/> spent migrating VMs back.</summary>
    public double ReturnSeconds { get; init; }
}

/// <summary>The dry-run result: hosts in reboot order (then those skipped), steps, blockers, warnings, estimate.</summary>
public sealed record Plan(
    PoolSnapshot Pool,
    PlanOptions Options,
    IReadOnlyList<HostDecision> Hosts,
    IReadOnlyList<PlanStep> Steps,
    IReadOnlyList<PlannedMigration> ReturnMigrations,
    IReadOnlyList<Blocker> Blockers,
    IReadOnlyList<PlanWarning> Warnings,
    PlanEstimate Estimate)
{
    public string PoolUuid => Pool.Uuid;

    /// <summary>The maintenance window (--window) as it stands when the plan was made; null without one.</summary>
    public PlanWindow? Window { get; init; }

    /// <summary>VM.pool_migrate's options for this plan's migrations (--migration-network, --compress).</summary>
    public MigrationRoute Route => MigrationRouting.RouteFor(Pool, Options);

    public string PoolName => Pool.Name;

    public string MasterUuid => Pool.MasterUuid;

    public string MasterName => Pool.Hosts.FirstOrDefault(h => h.Uuid == Pool.MasterUuid)?.Name ?? Pool.MasterUuid;

    /// <summary>--apply-updates: each host's updates and what follows them, master first (empty otherwise).</summary>
    public IReadOnlyList<HostUpdatePlan> UpdatePlan => Options.ApplyUpdates ? UpdatePlanning.Decide(Pool) : [];

    /// <summary>True when nothing blocks the run.</summary>
    public bool CanRun => Blockers.Count == 0;
}

/// <summary>Codes of blockers and warnings. XAPI's own code where one exists.</summary>
public static class PlanCodes
{
    public const string VmRequiresSr = "VM_REQUIRES_SR";
    public const string VmLacksFeature = "VM_LACKS_FEATURE";
    public const string VmHasPci = "VM_HAS_PCI_ATTACHED";
    public const string VmHasVgpu = "VM_HAS_VGPU";
    public const string VmHasVusb = "VM_HAS_VUSBS";
    public const string VmIsImmobile = "VM_IS_IMMOBILE";
    public const string VmNonSuspendable = "VM_NON_SUSPENDABLE";
    public const string HostNotLive = "HOST_NOT_LIVE";
    public const string HostBusy = "HOST_OPERATION_IN_PROGRESS";
    public const string PoolBusy = "POOL_OPERATION_IN_PROGRESS";
    public const string UnknownHost = "UNKNOWN_HOST";
    public const string UnknownMaster = "UNKNOWN_MASTER";
    public const string Capacity = "CAPACITY";
    public const string AntiAffinity = "ANTI_AFFINITY";
    public const string KeptTogether = "HOST_AFFINITY";
    public const string PlacementRule = "PLACEMENT_RULE";

    public const string HaTimeoutShort = "HA_TIMEOUT_SHORT";
    public const string HaFewHosts = "HA_FEW_HOSTS";
    public const string VmHaProtected = "VM_HA_PROTECTED";
    public const string VmBusy = "VM_OPERATION_IN_PROGRESS";
    public const string VmShutdownForReboot = "VM_SHUTDOWN_FOR_REBOOT";
    public const string PoolBackupRunning = "POOL_BACKUP_IN_PROGRESS";
    public const string HostDisabledPending = "HOST_DISABLED_WITH_PENDING_REBOOT";
    public const string HostDisabledGuidance = "HOST_DISABLED_UNTIL_GUIDANCE_APPLIED";
    public const string HostNotLiveIgnored = "HOST_NOT_LIVE_IGNORED";
    public const string AntiAffinityAlreadyBroken = "ANTI_AFFINITY_ALREADY_BROKEN";
    public const string WavesReduced = "WAVES_REDUCED";
    public const string ReturnSkipped = "RETURN_SKIPPED";
    public const string NothingToReboot = "NOTHING_TO_REBOOT";
    public const string MigrationNetworkUnknown = "MIGRATION_NETWORK_UNKNOWN";
    public const string MigrationNetworkUnsupported = "MIGRATION_NETWORK_UNSUPPORTED";
    public const string CompressionUnsupported = "COMPRESSION_UNSUPPORTED";
}

/// <summary>
/// The maintenance window as the plan shows it (--window): open now and until when, or closed and when it opens next;
/// <see cref="End"/> is the opening's end, or --window-end when that is earlier.
/// </summary>
public sealed record PlanWindow(string Window, bool OpenNow, DateTimeOffset Start, DateTimeOffset End, string Text)
{
    public static PlanWindow For(Time.MaintenanceWindow window, DateTimeOffset? windowEnd, DateTimeOffset now, double estimateSeconds)
    {
        ArgumentNullException.ThrowIfNull(window);
        var opening = window.CurrentOrNext(now);
        var open = opening.Contains(now);
        var end = windowEnd is { } e && e < opening.End ? e : opening.End;
        var estimate = Units.Duration(estimateSeconds);
        var text = open
            ? $"open now, until {window.Local(end)} ({Time.MaintenanceWindow.Span(end - now)} left; the plan is estimated at {estimate})"
            : $"closed now; next opening {window.Local(opening.Start)} (in {Time.MaintenanceWindow.Span(opening.Start - now)}), until {window.Local(end)}; the run does not start before it (--wait-for-window waits for it)";
        if (end - (open ? now : opening.Start) < TimeSpan.FromSeconds(estimateSeconds))
        {
            text += "; the opening is shorter than the estimate: the run stops safely at its end, and 'rollreboot resume' continues in the next one";
        }

        return new PlanWindow(window.Describe(), open, opening.Start, end, text);
    }
}
