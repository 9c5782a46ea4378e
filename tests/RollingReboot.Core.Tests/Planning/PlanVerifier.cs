using System.Globalization;
using System.Text;
using RollingReboot.Core.Planning;
using RollingReboot.Core.Pool;

namespace RollingReboot.Core.Tests.Planning;

/// <summary>
/// Replays a plan against the snapshot it was made from, independently of the planner's code, and lists every
/// promise it breaks: order, targets, moves, capacity, anti-affinity, completeness.
/// </summary>
internal static class PlanVerifier
{
    public static List<string> Violations(PoolSnapshot pool, Plan plan, PlanOptions options, PlanConstraints constraints)
    {
        var problems = new List<string>();
        var hosts = pool.Hosts.ToDictionary(h => h.Uuid);
        var free = pool.Hosts.ToDictionary(h => h.Uuid, h => h.MemoryFree);
        var running = pool.Vms
            .Where(v => v.IsRunningGuest && v.ResidentOnUuid is not null && hosts.ContainsKey(v.ResidentOnUuid))
            .ToDictionary(v => v.Uuid);
        var location = running.ToDictionary(kv => kv.Key, kv => kv.Value.ResidentOnUuid!);
        var groups = running.ToDictionary(kv => kv.Key, kv => GroupsOf(kv.Value, constraints));
        var moves = running.Keys.ToDictionary(k => k, _ => 0);

        if (plan.Hosts.Count != pool.Hosts.Count || plan.Hosts.Select(h => h.Uuid).Distinct().Count() != pool.Hosts.Count)
        {
            problems.Add("every host must be decided exactly once");
        }

        var decisions = plan.Hosts.ToDictionary(d => d.Uuid);
        var rebootOrder = plan.Hosts.Where(d => d.Action == HostAction.Reboot).Select(d => d.Uuid).ToList();
        if (!rebootOrder.SequenceEqual(plan.Steps.Select(s => s.HostUuid)))
        {
            problems.Add("hosts to reboot must be listed in step order");
        }

        var master = pool.MasterUuid;
        if (decisions.TryGetValue(master, out var md) && md.Action == HostAction.Reboot)
        {
            if (plan.Steps[0].HostUuid != master || !plan.Steps[0].IsMaster)
            {
                problems.Add("the master must be rebooted first");
            }

            if (plan.Steps.Count(s => s.Wave == plan.Steps[0].Wave) != 1)
            {
                problems.Add("the master must be rebooted alone");
            }
        }

        for (int i = 0; i < plan.Steps.Count; i++)
        {
            if (plan.Steps[i].Index != i + 1)
            {
                problems.Add("step indexes must count from 1");
            }

            if (i > 0 && plan.Steps[i].Wave < plan.Steps[i - 1].Wave)
            {
                problems.Add("waves must not go backwards");
            }
        }

        foreach (var w in plan.Steps.GroupBy(s => s.Wave))
        {
            if (w.Count() > options.MaxHostsDown)
            {
                problems.Add($"wave {w.Key} has more than {options.MaxHostsDown} hosts");
            }
        }

        var done = new HashSet<string>();
        foreach (var wave in plan.Steps.GroupBy(s => s.Wave).OrderBy(g => g.Key))
        {
            var waveHosts = wave.Select(s => s.HostUuid).ToHashSet();
            bool masterWave = waveHosts.Contains(master);
            foreach (var step in wave)
            {
                foreach (var m in step.Migrations)
                {
                    if (!running.TryGetValue(m.VmUuid, out var vm))
                    {
                        problems.Add($"{m.VmName} is not a running VM");
                        continue;
                    }

                    if (m.FromUuid != step.HostUuid || location.GetValueOrDefault(m.VmUuid) != m.FromUuid)
                    {
                        problems.Add($"{m.VmName} is not on {m.FromName} when step {step.Index} moves it");
                    }

                    if (waveHosts.Contains(m.ToUuid))
                    {
                        problems.Add($"{m.VmName} moved onto {m.ToName}, which reboots in the same wave");
                    }

                    var target = decisions[m.ToUuid];
                    var th = hosts[m.ToUuid];
                    bool allowed = done.Contains(m.ToUuid)
                        || (target.Action == HostAction.Skip && th.Live && th.Enabled)
                        || (masterWave && target.Action == HostAction.Reboot && m.ToUuid != master);
                    if (!allowed)
                    {
                        problems.Add($"{m.VmName} moved at step {step.Index} onto {m.ToName}, which still has to reboot or cannot take VMs");
                    }

                    if (m.MemoryBytes != vm.MemoryBytes)
                    {
                        problems.Add($"{m.VmName}: memory {m.MemoryBytes} differs from the VM's {vm.MemoryBytes}");
                    }

                    Apply(m, $"step {step.Index}");
                }
            }

            CheckTogether($"wave {wave.Key}");
            done.UnionWith(waveHosts);
            foreach (var h in waveHosts)
            {
                var left = location.Where(kv => kv.Value == h).Select(kv => kv.Key).ToList();
                if (left.Count > 0 && plan.Blockers.Count == 0)
                {
                    problems.Add($"{hosts[h].Name} reboots with VMs still on it: {string.Join(", ", left.Select(v => running[v].Name))}");
                }

                // A host rebooted with VMs shuts them down: they leave the pool for the rest of the plan.
                foreach (var v in left)
                {
                    free[h] += running[v].MemoryBytes;
                    location.Remove(v);
                }
            }
        }

        foreach (var (uuid, count) in moves)
        {
            var home = running[uuid].ResidentOnUuid!;
            int limit = home == master ? 2 : 1;
            if (count > limit)
            {
                problems.Add($"{running[uuid].Name} moved {count} times during the reboots");
            }

            if (plan.Blockers.Count == 0 && decisions[home].Action == HostAction.Reboot && count == 0)
            {
                problems.Add($"{running[uuid].Name} never left {hosts[home].Name}");
            }
        }

        foreach (var m in plan.ReturnMigrations)
        {
            if (!running.TryGetValue(m.VmUuid, out var vm) || location.GetValueOrDefault(m.VmUuid) != m.FromUuid || vm.ResidentOnUuid != m.ToUuid)
            {
                problems.Add($"return of {m.VmName} is not from where it is to where it was");
                continue;
            }

            Apply(m, "return");
        }

        CheckTogether("after the returns");
        return problems;

        void Apply(PlannedMigration m, string when)
        {
            var vm = running[m.VmUuid];
            if (free[m.ToUuid] < vm.MemoryBytes)
            {
                problems.Add($"{when}: {m.VmName} ({vm.MemoryBytes}) does not fit on {m.ToName} ({free[m.ToUuid]} free)");
            }

            foreach (var (other, at) in location)
            {
                if (at == m.ToUuid && other != m.VmUuid && groups[other].Overlaps(groups[m.VmUuid]))
                {
                    problems.Add($"{when}: {m.VmName} joins {running[other].Name} of the same anti-affinity group on {m.ToName}");
                }
            }

            if (constraints.HostFilter?.Invoke(m.VmName, m.ToName) is { } why)
            {
                problems.Add($"{when}: {m.VmName} sent to {m.ToName}, which the host filter forbids ({why})");
            }

            free[m.ToUuid] -= vm.MemoryBytes;
            free[m.FromUuid] += vm.MemoryBytes;
            location[m.VmUuid] = m.ToUuid;
            if (when != "return")
            {
                moves[m.VmUuid]++;
            }

            // A group kept together that was on one host before the plan is on one host after every migration of a step.
        }

        void CheckTogether(string when)
        {
            foreach (var (group, names) in constraints.TogetherGroups)
            {
                var members = running.Values.Where(v => names.Contains(v.Name)).ToList();
                if (members.Select(v => v.ResidentOnUuid).Distinct().Count() > 1)
                {
                    continue;
                }

                var now = members.Where(v => location.ContainsKey(v.Uuid)).Select(v => location[v.Uuid]).Distinct().ToList();
                if (now.Count > 1)
                {
                    problems.Add($"{when}: group {group} kept together is split over {now.Count} hosts");
                }
            }
        }
    }

    public static HashSet<string> GroupsOf(VmState vm, PlanConstraints constraints)
    {
        var set = new HashSet<string>();
        if (constraints.AntiAffinityGroups.TryGetValue(vm.Uuid, out var a))
        {
            set.UnionWith(a);
        }

        if (constraints.AntiAffinityGroups.TryGetValue(vm.Name, out var b))
        {
            set.UnionWith(b);
        }

        return set;
    }

    /// <summary>Everything the plan says, as text, so two plans can be compared.</summary>
    public static string Describe(Plan plan)
    {
        var sb = new StringBuilder();
        foreach (var h in plan.Hosts)
        {
            sb.AppendLine(CultureInfo.InvariantCulture, $"host {h.Name} {h.Uuid} {h.IsMaster} {h.Action} {h.Reason}");
        }

        foreach (var s in plan.Steps)
        {
            sb.AppendLine(CultureInfo.InvariantCulture, $"step {s.Index} wave {s.Wave} {s.HostName} {s.IsMaster} {s.EvacuationSeconds:R} {s.EstimatedSeconds:R} {s.StartSeconds:R}");
            foreach (var m in s.Migrations)
            {
                sb.AppendLine(CultureInfo.InvariantCulture, $"  {m}");
            }
        }

        foreach (var m in plan.ReturnMigrations)
        {
            sb.AppendLine(CultureInfo.InvariantCulture, $"return {m}");
        }

        foreach (var b in plan.Blockers)
        {
            sb.AppendLine(CultureInfo.InvariantCulture, $"blocker {b}");
        }

        foreach (var w in plan.Warnings)
        {
            sb.AppendLine(CultureInfo.InvariantCulture, $"warning {w}");
        }

        sb.AppendLine(CultureInfo.InvariantCulture, $"estimate {plan.Estimate}");
        return sb.ToString();
    }
}
