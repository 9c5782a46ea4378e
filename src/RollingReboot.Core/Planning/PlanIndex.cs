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
        Pinned = options.ShutdownPinnedVms ? PlanChecks.PinReasons(pool, Vms, constraints) : [.. Vms.Select(_ => (string?)null)];

        (Groups, GroupNames) = ResolveGroups(Vms, constraints.AntiAffinityGroups);
        (SoftGroups, SoftGroupNames) = ResolveGroups(Vms, constraints.PreferApartGroups);
        (Together, TogetherNames) = Bundles(constraints.TogetherGroups, requireOneHome: true);
        (PreferTogether, PreferTogetherNames) = Bundles(constraints.PreferTogetherGroups, requireOneHome: false);
        TogetherMembers = [.. Enumerable.Range(0, TogetherNames.Length).Select(b => Enumerable.Range(0, Vms.Length).Where(v => Together[v] == b).ToImmutableArray())];
        if (constraints.HostFilter is { } filter)
        {
            _forbidden = new string?[Vms.Length * Hosts.Length];
            for (int v = 0; v < Vms.Length; v++)
            {
                for (int h = 0; h < Hosts.Length; h++)
                {
                    if (filter(Vms[v].Name, Hosts[h].Name) is { } why)
                    {
                        _forbidden[(v * Hosts.Length) + h] = why;
                        _anyForbidden ??= new bool[Vms.Length];
                        _anyForbidden[v] = true;
                    }
                }
            }
        }
    }

    private readonly string?[]? _forbidden;
    private readonly bool[]? _anyForbidden;

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

    /// <summary>
    /// Per VM: with --shutdown-pinned-vms, the XAPI code that keeps it from live-migrating (it stays on its host, shut down
    /// for the reboot and started there again: never placed elsewhere, its memory reserved there); null otherwise.
    /// </summary>
    public ImmutableArray<string?> Pinned { get; }

    public bool IsPinned(int vm) => Pinned[vm] is not null;

    /// <summary>Per VM: its memory in bytes (never negative).</summary>
    public ImmutableArray<long> Memory { get; }

    /// <summary>Per VM: its anti-affinity groups, as indexes into <see cref="GroupNames"/>, ascending.</summary>
    public ImmutableArray<ImmutableArray<int>> Groups { get; }

    /// <summary>Every anti-affinity group of a running VM, in ordinal order.</summary>
    public ImmutableArray<string> GroupNames { get; }

    /// <summary>Per VM: its non-strict anti-affinity groups, as indexes into <see cref="SoftGroupNames"/>.</summary>
    public ImmutableArray<ImmutableArray<int>> SoftGroups { get; }

    public ImmutableArray<string> SoftGroupNames { get; }

    /// <summary>Per VM: its "keep together" bundle (members on one host move to one target), or -1.</summary>
    public ImmutableArray<int> Together { get; }

    public ImmutableArray<string> TogetherNames { get; }

    /// <summary>Per bundle: its VMs.</summary>
    public ImmutableArray<ImmutableArray<int>> TogetherMembers { get; }

    /// <summary>Per VM: its "prefer together" group, or -1.</summary>
    public ImmutableArray<int> PreferTogether { get; }

    public ImmutableArray<string> PreferTogetherNames { get; }

    /// <summary>Whether the VM may not go to the host at all (a hard placement rule).</summary>
    public bool Forbidden(int vm, int host) => _forbidden is not null && _forbidden[(vm * Hosts.Length) + host] is not null;

    /// <summary>Whether the VM has any rule beyond memory (it is not re-placed to make room for another).</summary>
    public bool HasRules(int vm) =>
        Groups[vm].Length > 0 || SoftGroups[vm].Length > 0 || Together[vm] >= 0 || PreferTogether[vm] >= 0 || (_anyForbidden?[vm] ?? false);

    public int HostCount => Hosts.Length;

    public int VmCount => Vms.Length;

    public PlannedMigration Migration(int v, int from, int to) =>
        new(Vms[v].Uuid, Vms[v].Name, Hosts[from].Uuid, Hosts[from].Name, Hosts[to].Uuid, Hosts[to].Name, Memory[v]) { Rule = RuleOf(v) };

    /// <summary>The rules that shaped where the VM may go, in words for the plan (null: memory alone decided).</summary>
    public string? RuleOf(int v)
    {
        if (!HasRules(v))
        {
            return null;
        }

        var rules = new List<string>();
        if (Together[v] >= 0)
        {
            rules.Add($"host affinity {TogetherNames[Together[v]]}: moves with {string.Join(", ", TogetherMembers[Together[v]].Where(m => m != v).Select(m => Vms[m].Name))}");
        }

        if (_anyForbidden?[v] ?? false)
        {
            var off = Enumerable.Range(0, Hosts.Length).Where(h => _forbidden![(v * Hosts.Length) + h] is not null).ToList();
            rules.Add($"not on {string.Join(", ", off.Select(h => Hosts[h].Name))}: {_forbidden![(v * Hosts.Length) + off[0]]}");
        }

        if (Groups[v].Length > 0)
        {
            rules.Add($"host anti-affinity {string.Join(", ", Groups[v].Select(g => GroupNames[g]))}");
        }

        if (SoftGroups[v].Length > 0)
        {
            rules.Add($"non-strict host anti-affinity {string.Join(", ", SoftGroups[v].Select(g => SoftGroupNames[g]))} (preferred apart)");
        }

        if (PreferTogether[v] >= 0)
        {
            rules.Add($"non-strict host affinity {PreferTogetherNames[PreferTogether[v]]} (preferred together)");
        }

        return rules.Count == 0 ? null : string.Join("; ", rules);
    }

    /// <summary>Per VM the index of its group among <paramref name="groups"/> (the first that names it), -1 for none;
    /// with <paramref name="requireOneHome"/> a group whose running VMs are on more than one host is no bundle.</summary>
    private (ImmutableArray<int> PerVm, ImmutableArray<string> Names) Bundles(IReadOnlyDictionary<string, IReadOnlyList<string>> groups, bool requireOneHome)
    {
        var perVm = Enumerable.Repeat(-1, Vms.Length).ToArray();
        var names = new List<string>();
        var byName = new Dictionary<string, int>(StringComparer.Ordinal);
        for (int v = 0; v < Vms.Length; v++)
        {
            byName.TryAdd(Vms[v].Name, v);
        }

        foreach (var (group, members) in groups.OrderBy(g => g.Key, StringComparer.Ordinal))
        {
            var vms = members.Where(byName.ContainsKey).Select(n => byName[n]).Where(v => perVm[v] < 0).Distinct().ToList();
            if (vms.Count < 2 || (requireOneHome && vms.Select(v => Home[v]).Distinct().Count() > 1))
            {
                continue;
            }

            foreach (int v in vms)
            {
                perVm[v] = names.Count;
            }

            names.Add(group);
        }

        return ([.. perVm], [.. names]);
    }

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
