using RollingReboot.Core.Planning;
using RollingReboot.Core.Pool;

namespace RollingReboot.Core.Tests.Planning;

/// <summary>
/// A random pool described by a few numbers CsCheck can shrink; the details come from a seeded generator, so a
/// failing case prints as one short line and rebuilds exactly.
/// </summary>
internal sealed record RandomPoolSpec(int Hosts, int FillPercent, int MaxHostsDown, bool ReturnVms, bool Flaws, int Seed)
{
    private static readonly long[] s_vmSizesMiB = [512, 1024, 2048, 4096, 8192, 16384];
    private static readonly long[] s_hostSizesGiB = [64, 128, 256, 512];

    public (PoolSnapshot Pool, PlanOptions Options, PlanConstraints Constraints, TestPool Source) Build()
    {
        var rng = new Random(Seed);
        var pool = new TestPool { Name = "POOL-R" };
        bool equal = rng.Next(2) == 0;
        long equalSize = s_hostSizesGiB[rng.Next(s_hostSizesGiB.Length)] * 1024;
        int master = rng.Next(Hosts);
        pool.AddSr("sr-iso-local", "iso-local", false, "xen1");
        for (int i = 0; i < Hosts; i++)
        {
            string name = "xen" + (i + 1);
            var host = pool.AddHost(name, equal ? equalSize : s_hostSizesGiB[rng.Next(s_hostSizesGiB.Length)] * 1024, i == master);
            pool.AddSr("sr-local-" + name, name + "-local", false, name);
            host.Enabled = rng.Next(100) >= 8;
            host.Live = !Flaws || rng.Next(100) >= 4;
            if (rng.Next(100) < 30)
            {
                host.PendingGuidances.Clear();
            }

            if (rng.Next(100) < 20)
            {
                host.Updates.Add("XS82ECU" + rng.Next(1000, 1100));
            }

            if (Flaws && rng.Next(100) < 3)
            {
                host.Operations.Add("evacuate");
            }
        }

        int vmCount = 0;
        foreach (var host in pool.Hosts)
        {
            int fill = Math.Clamp(FillPercent + rng.Next(-10, 11), 0, 98);
            long budget = (host.TotalMiB - host.Dom0MiB) * TestPool.MiB * fill / 100;
            long used = 0;
            for (int tries = 0; tries < 400; tries++)
            {
                long size = TestPool.WithOverhead(s_vmSizesMiB[rng.Next(s_vmSizesMiB.Length)]);
                if (used + size > budget)
                {
                    continue;
                }

                var vm = pool.AddVm("i-2-" + (++vmCount) + "-VM", host.Name, size);
                used += size;
                int roll = Flaws ? rng.Next(1000) : 40 + rng.Next(960);
                if (roll < 15)
                {
                    vm.Disks.Add("sr-local-" + host.Name);
                }
                else if (roll < 25)
                {
                    vm.PvDrivers = false;
                }
                else if (roll < 32)
                {
                    vm.Cds.Add("sr-iso-local");
                }
                else if (roll < 36)
                {
                    vm.Pci = true;
                }
                else if (roll < 60)
                {
                    vm.HaPriority = "restart";
                }
            }

            // Halted VMs belong to no host and never move.
            if (rng.Next(100) < 30)
            {
                pool.AddVm("halted-" + (++vmCount), null, TestPool.WithOverhead(4096)).PowerState = "Halted";
            }
        }

        var running = pool.Vms.Where(v => v.PowerState == "Running").ToList();
        var extra = new Dictionary<string, VmIssue>();
        foreach (var vm in running.Where(_ => Flaws && rng.Next(200) == 0))
        {
            extra[TestPool.VmUuid(vm.Name)] = new VmIssue("VM_IS_TEMPLATE_LIKE", $"XAPI says {vm.Name} cannot move", "ask XAPI");
        }

        // Anti-affinity groups whose members start on different hosts.
        var groups = new Dictionary<string, IReadOnlyList<string>>();
        var grouped = new HashSet<string>();
        int groupCount = rng.Next(0, 4);
        for (int g = 0; g < groupCount; g++)
        {
            var hostNames = pool.Hosts.Select(h => h.Name).OrderBy(_ => rng.Next()).Take(rng.Next(2, 5)).ToList();
            foreach (var hn in hostNames)
            {
                var candidates = running.Where(v => v.Host == hn && !grouped.Contains(v.Name)).ToList();
                if (candidates.Count == 0)
                {
                    continue;
                }

                var vm = candidates[rng.Next(candidates.Count)];
                grouped.Add(vm.Name);
                groups[rng.Next(2) == 0 ? vm.Name : TestPool.VmUuid(vm.Name)] = ["ag-" + g];
            }
        }

        var names = pool.Hosts.Select(h => h.Name).ToList();
        var ignore = rng.Next(100) < 15 ? [names[rng.Next(names.Count)]] : new List<string>();
        var include = rng.Next(100) < 10 ? names.Where(_ => rng.Next(2) == 0).ToList() : [];
        var rebooted = rng.Next(100) < 15
            ? names.Where((_, i) => i != master && rng.Next(4) == 0).Select(TestPool.HostUuid).ToList()
            : [];
        if (rng.Next(100) < 30)
        {
            var ha = new Dictionary<string, string> { ["timeout"] = new[] { "30", "60", "120", "180" }[rng.Next(4)] };
            pool.Ha = new HaSettings(true, ["sr-nfs"], ha, 1, true);
        }

        var options = new PlanOptions
        {
            Threads = rng.Next(1, 9),
            MaxHostsDown = MaxHostsDown,
            ReturnVms = ReturnVms,
            OnlyNeedingReboot = rng.Next(100) < 30,
            IgnoreHosts = ignore,
            IncludeHosts = include,
        };
        var constraints = new PlanConstraints
        {
            AntiAffinityGroups = groups,
            ExtraVmBlockers = extra,
            AlreadyRebootedHosts = rebooted,
        };
        return (pool.Build(), options, constraints, pool);
    }

    /// <summary>The same snapshot with every list in another order.</summary>
    public static PoolSnapshot Shuffled(PoolSnapshot pool, int seed)
    {
        var rng = new Random(seed);
        return pool with
        {
            Hosts = [.. pool.Hosts.OrderBy(_ => rng.Next())],
            Vms = [.. pool.Vms.OrderBy(_ => rng.Next())],
            Srs = [.. pool.Srs.OrderBy(_ => rng.Next())],
        };
    }
}
