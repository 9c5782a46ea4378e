using RollingReboot.Core.Planning;
using RollingReboot.Core.Pool;
using RollingReboot.Core.Ports;

namespace RollingReboot.Core.Run;

/// <summary>
/// CloudStack's placement rules for one cluster, read once before the run (CloudStack is not asked mid-run: its hosts are
/// Disconnected), in the pool's names: host names as XAPI labels them, VMs by instance name (the XAPI name label). What each
/// rule means is what CloudStack's deployment planner and affinity processors do with it:
/// <list type="bullet">
/// <item><see cref="NotEnabledHosts"/>: resourcestate not Enabled (Disabled, Maintenance, PrepareForMaintenance,
/// ErrorInMaintenance); CloudStack places nothing there (ResourceManagerImpl.listAllUpAndEnabledHosts and the
/// allocators list only Enabled hosts).</item>
/// <item><see cref="StrictAntiAffinity"/> ("host anti-affinity", HostAntiAffinityProcessor): never two VMs of a group on one host.</item>
/// <item><see cref="PreferredAntiAffinity"/> ("non-strict host anti-affinity", NonStrictHostAntiAffinityProcessor): the hosts
/// of the group's other VMs get a low priority; check() always passes. A preference, not a rule.</item>
/// <item><see cref="HostAffinity"/> ("host affinity", HostAffinityProcessor): check() passes only on a host already holding
/// the group's other VMs: the group runs on one host.</item>
/// <item><see cref="PreferredHostAffinity"/> ("non-strict host affinity"): the group's hosts are preferred.</item>
/// <item>Host tags: a VM's service offering tags must all be on the host (HostVO.checkHostServiceOfferingTags).</item>
/// <item>Dedication: a VM without an ExplicitDedication group avoids every dedicated host
/// (DeploymentPlanningManagerImpl.checkForNonDedicatedResources); one with such a group runs only on hosts dedicated
/// through it (ExplicitDedicationProcessor).</item>
/// </list>
/// </summary>
public sealed record CloudStackPlacement
{
    public static CloudStackPlacement None { get; } = new();

    /// <summary>Pool host name to its CloudStack resourcestate, for every host whose resourcestate is not Enabled.</summary>
    public IReadOnlyDictionary<string, string> NotEnabledHosts { get; init; } = new Dictionary<string, string>();

    /// <summary>VM to its "host anti-affinity" group names (what <see cref="PlanConstraints.AntiAffinityGroups"/> takes).</summary>
    public IReadOnlyDictionary<string, IReadOnlyList<string>> StrictAntiAffinity { get; init; } = new Dictionary<string, IReadOnlyList<string>>();

    /// <summary>VM to its "non-strict host anti-affinity" group names.</summary>
    public IReadOnlyDictionary<string, IReadOnlyList<string>> PreferredAntiAffinity { get; init; } = new Dictionary<string, IReadOnlyList<string>>();

    /// <summary>"host affinity" group name to its VMs on this cluster.</summary>
    public IReadOnlyDictionary<string, IReadOnlyList<string>> HostAffinity { get; init; } = new Dictionary<string, IReadOnlyList<string>>();

    /// <summary>"non-strict host affinity" group name to its VMs on this cluster.</summary>
    public IReadOnlyDictionary<string, IReadOnlyList<string>> PreferredHostAffinity { get; init; } = new Dictionary<string, IReadOnlyList<string>>();

    /// <summary>Pool host name to its CloudStack host tags.</summary>
    public IReadOnlyDictionary<string, IReadOnlyList<string>> HostTags { get; init; } = new Dictionary<string, IReadOnlyList<string>>();

    /// <summary>VM to the host tags of its service offering (all needed on its host).</summary>
    public IReadOnlyDictionary<string, IReadOnlyList<string>> RequiredHostTags { get; init; } = new Dictionary<string, IReadOnlyList<string>>();

    /// <summary>Pool host name to the ExplicitDedication group it is dedicated through.</summary>
    public IReadOnlyDictionary<string, CloudStackAffinityGroup> DedicatedHosts { get; init; } = new Dictionary<string, CloudStackAffinityGroup>();

    /// <summary>VM to its ExplicitDedication groups.</summary>
    public IReadOnlyDictionary<string, IReadOnlyList<CloudStackAffinityGroup>> ExplicitDedication { get; init; } = new Dictionary<string, IReadOnlyList<CloudStackAffinityGroup>>();

    /// <summary>Why a rule could not be read (the dedicated hosts, say), for the plan's warnings; empty when all were.</summary>
    public IReadOnlyList<string> Unread { get; init; } = [];

    /// <summary>
    /// Why CloudStack would not place <paramref name="vm"/> on <paramref name="host"/> (resource state, host tags,
    /// dedication), or null when it would. Affinity groups are about other VMs and are not judged here.
    /// </summary>
    public string? WhyNot(string vm, string host)
    {
        if (NotEnabledHosts.TryGetValue(host, out var resourceState))
        {
            return $"CloudStack has {host} in resource state {resourceState} and places nothing there";
        }

        if (RequiredHostTags.TryGetValue(vm, out var tags) && tags.Count > 0)
        {
            var hostTags = HostTags.GetValueOrDefault(host) ?? [];
            var missing = tags.Where(t => !hostTags.Contains(t, StringComparer.Ordinal)).ToList();
            if (missing.Count > 0)
            {
                return $"its service offering asks for host tag(s) {string.Join(", ", tags)} and {host} lacks {string.Join(", ", missing)}";
            }
        }

        var explicitGroups = ExplicitDedication.GetValueOrDefault(vm) ?? [];
        var dedication = DedicatedHosts.GetValueOrDefault(host);
        if (explicitGroups.Count == 0)
        {
            return dedication is null ? null : $"{host} is dedicated (through {dedication.Name}) and {vm} has no ExplicitDedication group";
        }

        return dedication is not null && explicitGroups.Any(g => g.Id == dedication.Id)
            ? null
            : $"{vm} is explicitly dedicated ({string.Join(", ", explicitGroups.Select(g => g.Name))}) and {host} is not dedicated through that group";
    }

    /// <summary>Whether a rule forbids some VM some host (host tags, dedication): what the planner's host filter is for.</summary>
    public bool HasHostRules => RequiredHostTags.Count > 0 || DedicatedHosts.Count > 0 || ExplicitDedication.Count > 0;

    /// <summary>Whether any rule beyond strict anti-affinity is in force (worth a word in the plan).</summary>
    public bool HasRules =>
        NotEnabledHosts.Count > 0 || PreferredAntiAffinity.Count > 0 || HostAffinity.Count > 0 || PreferredHostAffinity.Count > 0
        || RequiredHostTags.Count > 0 || DedicatedHosts.Count > 0 || ExplicitDedication.Count > 0;

    /// <summary>
    /// The rules from CloudStack's answers: its hosts (matched to the pool's by name or address), the VMs on them and the
    /// dedicated hosts (null when they could not be read; <paramref name="dedicationUnread"/> says why).
    /// </summary>
    public static CloudStackPlacement From(
        PoolSnapshot pool, IReadOnlyList<CloudStackHost> hosts, IReadOnlyList<CloudStackVm> vms, IReadOnlyList<CloudStackDedicatedHost>? dedicated, string? dedicationUnread)
    {
        ArgumentNullException.ThrowIfNull(pool);
        ArgumentNullException.ThrowIfNull(hosts);
        ArgumentNullException.ThrowIfNull(vms);
        string? PoolName(CloudStackHost h) =>
            pool.Hosts.FirstOrDefault(p => p.Name.Equals(h.Name, StringComparison.OrdinalIgnoreCase) || (h.IpAddress.Length > 0 && p.Address == h.IpAddress))?.Name;
        var byId = hosts.Where(h => PoolName(h) is not null).ToDictionary(h => h.Id, h => PoolName(h)!, StringComparer.OrdinalIgnoreCase);

        var notEnabled = new Dictionary<string, string>(StringComparer.Ordinal);
        var hostTags = new Dictionary<string, IReadOnlyList<string>>(StringComparer.Ordinal);
        foreach (var h in hosts)
        {
            if (byId.GetValueOrDefault(h.Id) is not { } name)
            {
                continue;
            }

            if (h.ResourceState.Length > 0 && !h.ResourceState.Equals(CloudStackStates.Enabled, StringComparison.Ordinal))
            {
                notEnabled[name] = h.ResourceState;
            }

            if (h.HostTags.Count > 0)
            {
                hostTags[name] = h.HostTags;
            }
        }

        Dictionary<string, IReadOnlyList<string>> ByVm(string type) => vms
            .Select(v => (v.InstanceName, Groups: v.AffinityGroups.Where(g => g.Type.Equals(type, StringComparison.OrdinalIgnoreCase)).Select(g => g.Name).ToList()))
            .Where(x => x.Groups.Count > 0)
            .ToDictionary(x => x.InstanceName, x => (IReadOnlyList<string>)x.Groups, StringComparer.Ordinal);
        Dictionary<string, IReadOnlyList<string>> ByGroup(string type) => vms
            .SelectMany(v => v.AffinityGroups.Where(g => g.Type.Equals(type, StringComparison.OrdinalIgnoreCase)).Select(g => (g.Name, v.InstanceName)))
            .GroupBy(x => x.Name, StringComparer.Ordinal)
            .ToDictionary(g => g.Key, g => (IReadOnlyList<string>)g.Select(x => x.InstanceName).Distinct(StringComparer.Ordinal).Order(StringComparer.Ordinal).ToList(), StringComparer.Ordinal);

        var groupsById = vms.SelectMany(v => v.AffinityGroups).GroupBy(g => g.Id, StringComparer.OrdinalIgnoreCase).ToDictionary(g => g.Key, g => g.First(), StringComparer.OrdinalIgnoreCase);
        var dedicatedHosts = new Dictionary<string, CloudStackAffinityGroup>(StringComparer.Ordinal);
        foreach (var d in dedicated ?? [])
        {
            if (byId.GetValueOrDefault(d.HostId) is { } name)
            {
                dedicatedHosts[name] = groupsById.GetValueOrDefault(d.AffinityGroupId)
                    ?? new CloudStackAffinityGroup(d.AffinityGroupId, "dedication group " + d.AffinityGroupId, CloudStackAffinityTypes.ExplicitDedication);
            }
        }

        return new CloudStackPlacement
        {
            NotEnabledHosts = notEnabled,
            StrictAntiAffinity = ByVm(CloudStackAffinityTypes.HostAntiAffinity),
            PreferredAntiAffinity = ByVm(CloudStackAffinityTypes.NonStrictHostAntiAffinity),
            HostAffinity = ByGroup(CloudStackAffinityTypes.HostAffinity),
            PreferredHostAffinity = ByGroup(CloudStackAffinityTypes.NonStrictHostAffinity),
            HostTags = hostTags,
            RequiredHostTags = vms.Where(v => v.RequiredHostTags.Count > 0).ToDictionary(v => v.InstanceName, v => v.RequiredHostTags, StringComparer.Ordinal),
            DedicatedHosts = dedicatedHosts,
            ExplicitDedication = vms
                .Select(v => (v.InstanceName, Groups: v.AffinityGroups.Where(g => g.Type.Equals(CloudStackAffinityTypes.ExplicitDedication, StringComparison.OrdinalIgnoreCase)).ToList()))
                .Where(x => x.Groups.Count > 0)
                .ToDictionary(x => x.InstanceName, x => (IReadOnlyList<CloudStackAffinityGroup>)x.Groups, StringComparer.Ordinal),
            Unread = dedicationUnread is null ? [] : [dedicationUnread],
        };
    }

    /// <summary>
    /// The plan checked against the rules, independently of the planner that applied them: every migration's target
    /// (<see cref="WhyNot"/>) and every "host affinity" group kept on one host after each step. What the plan still
    /// breaks (the planner found no allowed host with room) is a blocker; a group already split before the run only a
    /// warning.
    /// </summary>
    public (IReadOnlyList<Blocker> Blockers, IReadOnlyList<PlanWarning> Warnings) Check(Plan plan, PoolSnapshot pool)
    {
        ArgumentNullException.ThrowIfNull(plan);
        ArgumentNullException.ThrowIfNull(pool);
        var blockers = new List<Blocker>();
        var warnings = new List<PlanWarning>();
        var hostName = pool.Hosts.ToDictionary(h => h.Uuid, h => h.Name, StringComparer.Ordinal);
        var at = pool.Vms.Where(v => v.ResidentOnUuid is not null && hostName.ContainsKey(v.ResidentOnUuid) && v.PowerState is "Running" or "Paused")
            .GroupBy(v => v.Name, StringComparer.Ordinal)
            .ToDictionary(g => g.Key, g => hostName[g.First().ResidentOnUuid!], StringComparer.Ordinal);

        var splitBefore = HostAffinity.Where(g => g.Value.Where(at.ContainsKey).Select(v => at[v]).Distinct(StringComparer.Ordinal).Count() > 1).Select(g => g.Key).ToHashSet(StringComparer.Ordinal);
        foreach (var group in splitBefore.Order(StringComparer.Ordinal))
        {
            warnings.Add(new PlanWarning("CLOUDSTACK_HOST_AFFINITY_ALREADY_SPLIT",
                $"CloudStack host affinity group {group} is already split across hosts ({string.Join(", ", HostAffinity[group].Where(at.ContainsKey).Select(v => $"{v} on {at[v]}"))})",
                "bring its VMs onto one host in CloudStack (cmk migrate virtualmachine) if they must stay together"));
        }

        var reported = new HashSet<string>(StringComparer.Ordinal);
        void Apply(IEnumerable<PlannedMigration> migrations, string when)
        {
            foreach (var m in migrations)
            {
                if (WhyNot(m.VmName, m.ToName) is { } why && reported.Add("target:" + m.VmName + ":" + m.ToName))
                {
                    var allowed = pool.Hosts.Where(h => h.Name != m.FromName && WhyNot(m.VmName, h.Name) is null).Select(h => h.Name).ToList();
                    blockers.Add(new Blocker("CLOUDSTACK_PLACEMENT",
                        $"The plan moves {m.VmName} from {m.FromName} to {m.ToName} {when}, where CloudStack would not place it: {why}",
                        allowed.Count == 0
                            ? $"no other host of the pool may hold {m.VmName} in CloudStack: shut it down for the window, or leave {m.FromName} out with --ignore-hosts {m.FromName}"
                            : $"no host CloudStack allows ({string.Join(", ", allowed)}) has room for {m.VmName} at that point: free memory there, or shut it down for the window, or leave {m.FromName} out with --ignore-hosts {m.FromName}",
                        m.VmName, m.FromName));
                }

                at[m.VmName] = m.ToName;
            }

            foreach (var (group, members) in HostAffinity.Where(g => !splitBefore.Contains(g.Key)))
            {
                var placed = members.Where(at.ContainsKey).ToList();
                if (placed.Select(v => at[v]).Distinct(StringComparer.Ordinal).Count() > 1 && reported.Add("affinity:" + group))
                {
                    blockers.Add(new Blocker("CLOUDSTACK_HOST_AFFINITY",
                        $"The plan splits CloudStack host affinity group {group} {when}: {string.Join(", ", placed.Select(v => $"{v} on {at[v]}"))}; CloudStack keeps its VMs on one host",
                        "no host has room for the whole group at that point: free memory on a host for all of them, or shut the group down for the window, or leave their host out with --ignore-hosts",
                        placed[0], at[placed[0]]));
                }
            }
        }

        foreach (var step in plan.Steps)
        {
            Apply(step.Migrations, $"(step {step.Index}, evacuating {step.HostName})");
        }

        Apply(plan.ReturnMigrations, "(moving VMs back)");
        return (blockers, warnings);
    }

    /// <summary>One line per rule in force, for the plan: what was read and how the run honours it.</summary>
    public IReadOnlyList<PlanWarning> Describe()
    {
        var notes = new List<PlanWarning>();
        foreach (var (host, state) in NotEnabledHosts.OrderBy(kv => kv.Key, StringComparer.Ordinal))
        {
            notes.Add(new PlanWarning("CLOUDSTACK_HOST_NOT_ENABLED",
                $"CloudStack has host {host} in resource state {state}: it takes no VMs and is left out of the run",
                $"to include it, enable it in CloudStack first (cmk {(state.Contains("Maintenance", StringComparison.Ordinal) ? "cancel hostmaintenance" : "update host allocationstate=Enable")} id=...)"));
        }

        if (PreferredAntiAffinity.Count > 0)
        {
            notes.Add(new PlanWarning("CLOUDSTACK_NON_STRICT_ANTI_AFFINITY",
                $"CloudStack non-strict host anti-affinity groups {string.Join(", ", PreferredAntiAffinity.Values.SelectMany(g => g).Distinct(StringComparer.Ordinal).Order(StringComparer.Ordinal))}: a preference (NonStrictHostAntiAffinityProcessor never refuses a host): the plan keeps their VMs apart where another host has room",
                "nothing to do; make the group \"host anti-affinity\" in CloudStack if its VMs must never share a host"));
        }

        if (HostAffinity.Count > 0 || RequiredHostTags.Count > 0 || DedicatedHosts.Count > 0 || ExplicitDedication.Count > 0)
        {
            var rules = new List<string>();
            if (HostAffinity.Count > 0)
            {
                rules.Add($"host affinity groups {string.Join(", ", HostAffinity.Keys.Order(StringComparer.Ordinal))}");
            }

            if (RequiredHostTags.Count > 0)
            {
                rules.Add($"host tags of {RequiredHostTags.Count} VM(s)");
            }

            if (DedicatedHosts.Count > 0 || ExplicitDedication.Count > 0)
            {
                rules.Add($"dedicated hosts {string.Join(", ", DedicatedHosts.Keys.Order(StringComparer.Ordinal))}{(ExplicitDedication.Count > 0 ? $" and {ExplicitDedication.Count} explicitly dedicated VM(s)" : "")}");
            }

            notes.Add(new PlanWarning("CLOUDSTACK_PLACEMENT_RULES",
                $"CloudStack placement rules the plan follows (each migration they shaped names its rule) and checks again: {string.Join("; ", rules)}",
                "a migration that still breaks one (no allowed host had room) is a blocker (CLOUDSTACK_PLACEMENT, CLOUDSTACK_HOST_AFFINITY)"));
        }

        foreach (var unread in Unread)
        {
            notes.Add(new PlanWarning("CLOUDSTACK_RULES_UNREAD", unread, "check the keys' role allows the command, or that the plugin is enabled"));
        }

        return notes;
    }
}
