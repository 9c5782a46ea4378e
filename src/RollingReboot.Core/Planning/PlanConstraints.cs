namespace RollingReboot.Core.Planning;

/// <summary>Why a VM cannot be moved, found outside the pool snapshot (e.g. XAPI's own evacuation check).</summary>
public sealed record VmIssue(string Code, string Message, string Fix);

/// <summary>What the planner must respect beyond the pool snapshot itself.</summary>
public sealed record PlanConstraints
{
    public static PlanConstraints None { get; } = new();

    /// <summary>
    /// VM uuid or name label to the names of its host anti-affinity groups: two VMs of one group are never
    /// placed on the same host.
    /// </summary>
    public IReadOnlyDictionary<string, IReadOnlyList<string>> AntiAffinityGroups { get; init; } =
        new Dictionary<string, IReadOnlyList<string>>();

    /// <summary>VM uuid to a reason it cannot be live-migrated; becomes a blocker when that VM has to move.</summary>
    public IReadOnlyDictionary<string, VmIssue> ExtraVmBlockers { get; init; } = new Dictionary<string, VmIssue>();

    /// <summary>Host uuids already rebooted in this run (resume): skipped, and valid migration targets.</summary>
    public IReadOnlyCollection<string> AlreadyRebootedHosts { get; init; } = [];
}
