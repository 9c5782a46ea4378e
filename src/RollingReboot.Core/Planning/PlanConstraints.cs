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

    /// <summary>
    /// Why a VM (name label) may not be placed on a host (name), or null when it may: CloudStack's host tags and
    /// dedication (see CloudStackPlacement.WhyNot). Null: no such rules. The planner never chooses a forbidden target.
    /// </summary>
    public Func<string, string, string?>? HostFilter { get; init; }

    /// <summary>
    /// Groups whose VMs must share a host (CloudStack "host affinity"): group name to VM names. Members on one host
    /// move together, to one target; a group already split is left to the plan's warnings.
    /// </summary>
    public IReadOnlyDictionary<string, IReadOnlyList<string>> TogetherGroups { get; init; } =
        new Dictionary<string, IReadOnlyList<string>>();

    /// <summary>VM name to groups it should not share a host with (CloudStack "non-strict host anti-affinity"): a
    /// target holding another VM of the group is taken only when no other has room.</summary>
    public IReadOnlyDictionary<string, IReadOnlyList<string>> PreferApartGroups { get; init; } =
        new Dictionary<string, IReadOnlyList<string>>();

    /// <summary>Groups whose VMs should share a host (CloudStack "non-strict host affinity"): members evacuated in
    /// one step prefer the target the first of them went to.</summary>
    public IReadOnlyDictionary<string, IReadOnlyList<string>> PreferTogetherGroups { get; init; } =
        new Dictionary<string, IReadOnlyList<string>>();

    /// <summary>VM uuid to a reason it cannot be live-migrated; becomes a blocker when that VM has to move.</summary>
    public IReadOnlyDictionary<string, VmIssue> ExtraVmBlockers { get; init; } = new Dictionary<string, VmIssue>();

    /// <summary>Host uuids already rebooted in this run (resume): skipped, and valid migration targets.</summary>
    public IReadOnlyCollection<string> AlreadyRebootedHosts { get; init; } = [];
}
