using System.Collections.Immutable;
using RollingReboot.Core.Pool;

namespace RollingReboot.Core.Planning;

/// <summary>
/// The pool as the planner sees it. Hosts and VMs are put in a canonical order (name as an operator reads it, then
/// uuid) and handled by index from then on, so no result depends on the order of the snapshot's lists or on
/// hashing. Built once per plan and never changed: every job of the planner reads it, none writes it.
/// </summary>
internal sealed class PlanIndex
{
    public PlanIndex(PoolSnapshot pool, PlanOptions options, PlanConstraints constraints)
    {
        Pool = pool;
        Options = options;
        Constraints = constraints;

        Hosts = [.. pool.Hosts
            .GroupBy(h => h.Uuid, StringComparer.Ordinal).Select(g => g.First())
            .OrderBy(h => h.Name, NaturalNameComparer.Instance).ThenBy(h => h.Uuid, StringComparer.Ordinal)];
        var hostIndex = new Dictionary<string, int>(StringComparer.Ordinal);
        for (int i = 0; i < Hosts.Length; i++)
        {
            hostIndex[Hosts[i].Uuid] = i;
        }

        Master = hostIndex.TryGetValue(pool.MasterUuid, out int m) ? m : -1;

        Vms = [.. pool.Vms
            .Where(v => v.IsRunningGuest && v.ResidentOnUuid is not null && hostIndex.ContainsKey(v.ResidentOnUuid))
            .GroupBy(v => v.Uuid, StringComparer.Ordinal).Select(g => g.First())
            .OrderBy(v => v.Name, NaturalNameComparer.Instance).ThenBy(v => v.Uuid, StringComparer.Ordinal)];
        Home = [.. Vms.Select(v => hostIndex[v.ResidentOnUuid!])];
        Memory = [.. Vms.Select(v => Math.Max(0, v.MemoryBytes))];

        (Groups, GroupNames) = ResolveGroups(Vms, constraints.AntiAffinityGroups);
    }

    public PoolSnapshot Pool { get; }

    public PlanOptions Options { get; }

    public PlanConstraints Constraints { get; }

    /// <summary>Every host once, in canonical order.</summary>
    public ImmutableArray<HostState> Hosts { get; }

    /// <summary>The master's index, or -1 when it is not among the hosts.</summary>
    public int Master { get; }

    /// <summary>Running guests resident on a known host, in canonical order.</summary>
    public ImmutableArray<VmState> Vms { get; }

    /// <summary>Per VM: the host it runs on in the snapshot.</summary>
    public ImmutableArray<int> Home { get; }

    /// <summary>Per VM: its memory in bytes (never negative).</summary>
    public ImmutableArray<long> Memory { get; }

    /// <summary>Per VM: its anti-affinity groups, as indexes into <see cref="GroupNames"/>, ascending.</summary>
    public ImmutableArray<ImmutableArray<int>> Groups { get; }

    /// <summary>Every anti-affinity group of a running VM, in ordinal order.</summary>
    public ImmutableArray<string> GroupNames { get; }

    public int HostCount => Hosts.Length;

    public int VmCount => Vms.Length;

    public PlannedMigration Migration(int v, int from, int to) =>
        new(Vms[v].Uuid, Vms[v].Name, Hosts[from].Uuid, Hosts[from].Name, Hosts[to].Uuid, Hosts[to].Name, Memory[v]);

    private static (ImmutableArray<ImmutableArray<int>> Groups, ImmutableArray<string> Names) ResolveGroups(
        ImmutableArray<VmState> vms, IReadOnlyDictionary<string, IReadOnlyList<string>> map)
    {
        var perVm = new List<string>[vms.Length];
        var all = new SortedSet<string>(StringComparer.Ordinal);
        for (int v = 0; v < vms.Length; v++)
        {
            var names = new List<string>();
            if (map.TryGetValue(vms[v].Uuid, out var byUuid))
            {
                names.AddRange(byUuid);
            }

            if (map.TryGetValue(vms[v].Name, out var byName))
            {
                names.AddRange(byName);
            }

            perVm[v] = names;
            all.UnionWith(names);
        }

        ImmutableArray<string> groupNames = [.. all];
        var ids = new Dictionary<string, int>(StringComparer.Ordinal);
        for (int g = 0; g < groupNames.Length; g++)
        {
            ids[groupNames[g]] = g;
        }

        var groups = new ImmutableArray<int>[vms.Length];
        for (int v = 0; v < vms.Length; v++)
        {
            groups[v] = [.. perVm[v].Select(n => ids[n]).Distinct().Order()];
        }

        return ([.. groups], groupNames);
    }
}
