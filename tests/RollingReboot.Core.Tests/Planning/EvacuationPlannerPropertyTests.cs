using CsCheck;
using RollingReboot.Core.Planning;
using RollingReboot.Core.Pool;

namespace RollingReboot.Core.Tests.Planning;

public class EvacuationPlannerPropertyTests
{
    private static readonly Gen<RandomPoolSpec> s_pools =
        Gen.Select(Gen.Int[2, 12], Gen.Int[20, 95], Gen.Int[1, 3], Gen.Bool, Gen.Bool, Gen.Int[0, int.MaxValue],
            (hosts, fill, k, back, flaws, seed) => new RandomPoolSpec(hosts, fill, k, back, flaws, seed));

    [Fact]
    public void Plan_RandomPools_KeepsEveryPromiseWhenReplayed()
    {
        s_pools.Sample(spec =>
        {
            var (pool, options, constraints, _) = spec.Build();
            var plan = EvacuationPlanner.Plan(pool, options, constraints);
            var problems = PlanVerifier.Violations(pool, plan, options, constraints);
            Assert.True(problems.Count == 0, string.Join(Environment.NewLine, problems));
        }, iter: 400);
    }

    [Fact]
    public void Plan_RandomPoolsWithPlacementRules_NeverBreaksAHardRule()
    {
        // Host filters (tags, dedication), groups kept together and preferences, drawn from the pool's own seed.
        int withRules = 0;
        s_pools.Sample(spec =>
        {
            var (pool, options, constraints, _) = spec.Build();
            var rng = new Random(spec.Seed);
            var hosts = pool.Hosts.Select(h => h.Name).ToList();
            var vms = pool.Vms.Where(v => v.IsRunningGuest).ToList();
            var forbidden = vms.Where(_ => rng.Next(6) == 0)
                .ToDictionary(v => v.Name, _ => hosts.Where(_ => rng.Next(3) == 0).ToHashSet(), StringComparer.Ordinal);
            var together = vms.GroupBy(v => v.ResidentOnUuid).Where(_ => rng.Next(3) == 0)
                .Select((g, i) => (Name: "t" + i, Vms: (IReadOnlyList<string>)[.. g.Take(2 + rng.Next(2)).Select(v => v.Name)]))
                .Where(g => g.Vms.Count > 1).ToDictionary(g => g.Name, g => g.Vms, StringComparer.Ordinal);
            var apart = vms.Where(_ => rng.Next(5) == 0).ToDictionary(v => v.Name, _ => (IReadOnlyList<string>)["soft" + rng.Next(3)], StringComparer.Ordinal);
            var ruled = constraints with
            {
                HostFilter = (vm, host) => forbidden.TryGetValue(vm, out var off) && off.Contains(host) ? "forbidden" : null,
                TogetherGroups = together,
                PreferApartGroups = apart,
            };
            var plan = EvacuationPlanner.Plan(pool, options, ruled);
            var problems = PlanVerifier.Violations(pool, plan, options, ruled);
            Assert.True(problems.Count == 0, string.Join(Environment.NewLine, problems));
            if (together.Count > 0 && forbidden.Count > 0)
            {
                Interlocked.Increment(ref withRules);
            }
        }, iter: 300);
        Assert.True(withRules > 50, $"only {withRules} pools with rules");
    }

    [Fact]
    public void Plan_RandomPools_ExerciseCompletePlansAndBlockedOnes()
    {
        // Guards the generator: the properties above mean little unless many plans are complete and many blocked.
        int clean = 0, capacity = 0, total = 0;
        s_pools.Sample(spec =>
        {
            var (pool, options, constraints, _) = spec.Build();
            var plan = EvacuationPlanner.Plan(pool, options, constraints);
            Interlocked.Increment(ref total);
            if (plan.CanRun && plan.Steps.Count > 1)
            {
                Interlocked.Increment(ref clean);
            }

            if (plan.Blockers.Any(b => b.Code == PlanCodes.Capacity))
            {
                Interlocked.Increment(ref capacity);
            }
        }, iter: 400);
        Assert.True(clean > total / 5, $"{clean} of {total} plans complete");
        Assert.True(capacity > total / 20, $"{capacity} of {total} plans short of memory");
    }

    [Fact]
    public void Plan_RandomPools_MovesNoMasterVmTwiceWhileAHostOutOfTheRunHasRoom()
    {
        // Hosts out of the run (skipped, live, enabled) never reboot: a master's VM placed there moves once. One
        // placed on a host that reboots later moves twice, which is only right when no such host had room for it.
        int checked_ = 0;
        s_pools.Sample(spec =>
        {
            var (pool, options, constraints, _) = spec.Build();
            var plan = EvacuationPlanner.Plan(pool, options, constraints);
            if (plan.Steps.Count == 0 || !plan.Steps[0].IsMaster)
            {
                return;
            }

            var decisions = plan.Hosts.ToDictionary(d => d.Uuid);
            var neverRebooting = pool.Hosts.Where(h => decisions[h.Uuid].Action == HostAction.Skip && h.Live && h.Enabled).ToList();
            if (neverRebooting.Count == 0)
            {
                return;
            }

            // The pool after the master's step: memory and who is where.
            var free = pool.Hosts.ToDictionary(h => h.Uuid, h => h.MemoryFree);
            var running = pool.Vms.Where(v => v.IsRunningGuest && v.ResidentOnUuid is not null).ToDictionary(v => v.Uuid);
            var location = running.ToDictionary(kv => kv.Key, kv => kv.Value.ResidentOnUuid!);
            foreach (var m in plan.Steps[0].Migrations)
            {
                free[m.ToUuid] -= m.MemoryBytes;
                free[m.FromUuid] += m.MemoryBytes;
                location[m.VmUuid] = m.ToUuid;
            }

            // Hosts only receive VMs in the master's step, so room left at its end was there at every VM's turn.
            foreach (var m in plan.Steps[0].Migrations.Where(m => decisions[m.ToUuid].Action == HostAction.Reboot))
            {
                Interlocked.Increment(ref checked_);
                var groups = PlanVerifier.GroupsOf(running[m.VmUuid], constraints);
                foreach (var h in neverRebooting)
                {
                    bool conflict = location.Any(kv => kv.Value == h.Uuid && kv.Key != m.VmUuid && PlanVerifier.GroupsOf(running[kv.Key], constraints).Overlaps(groups));
                    Assert.False(free[h.Uuid] >= m.MemoryBytes && !conflict,
                        $"{spec}: {m.VmName} goes to {m.ToName}, which reboots later, though {h.Name} never reboots and has {free[h.Uuid]} free for its {m.MemoryBytes}");
                }
            }
        }, iter: 600);
        Assert.True(checked_ > 0, "no plan moved a master's VM onto a host that reboots later while another host was out of the run");
    }

    [Fact]
    public void Plan_RandomPools_IsDeterministicWhateverTheListOrder()
    {
        s_pools.Sample(spec =>
        {
            var (pool, options, constraints, _) = spec.Build();
            string first = PlanVerifier.Describe(EvacuationPlanner.Plan(pool, options, constraints));
            string again = PlanVerifier.Describe(EvacuationPlanner.Plan(pool, options, constraints));
            string shuffled = PlanVerifier.Describe(EvacuationPlanner.Plan(RandomPoolSpec.Shuffled(pool, spec.Seed ^ 0x5a5a), options, constraints));
            Assert.Equal(first, again);
            Assert.Equal(first, shuffled);
        }, iter: 200);
    }

    [Fact]
    public void Plan_RandomPools_FindsEveryVmAndHostBlocker()
    {
        s_pools.Sample(spec =>
        {
            var (pool, options, constraints, _) = spec.Build();
            var plan = EvacuationPlanner.Plan(pool, options, constraints);
            var rebooting = plan.Hosts.Where(h => h.Action == HostAction.Reboot).Select(h => h.Uuid).ToHashSet();
            var srs = pool.Srs.ToDictionary(s => s.Uuid);
            foreach (var vm in pool.Vms.Where(v => v.IsRunningGuest && rebooting.Contains(v.ResidentOnUuid!)))
            {
                if (vm.DiskSrUuids.Concat(vm.CdSrUuids).Any(sr => !srs[sr].Shared))
                {
                    AssertBlocker(plan, PlanCodes.VmRequiresSr, vm);
                }

                if (vm.MigrationRefusal is { } refusal)
                {
                    AssertBlocker(plan, refusal, vm);
                }

                if (constraints.ExtraVmBlockers.TryGetValue(vm.Uuid, out var extra))
                {
                    AssertBlocker(plan, extra.Code, vm);
                }
            }

            foreach (var host in pool.Hosts.Where(h => !h.Live))
            {
                bool leftOutByOperator = options.IgnoreHosts.Contains(host.Name)
                    || (options.IncludeHosts.Count > 0 && !options.IncludeHosts.Contains(host.Name))
                    || (!host.Enabled && !host.DisabledUntilReboot);
                Assert.Equal(!leftOutByOperator, plan.Blockers.Any(b => b.Code == PlanCodes.HostNotLive && b.Host == host.Name));
            }

            foreach (var host in pool.Hosts.Where(h => h.CurrentOperations.Count > 0 && rebooting.Contains(h.Uuid)))
            {
                Assert.Contains(plan.Blockers, b => b.Code == PlanCodes.HostBusy && b.Host == host.Name);
            }

            Assert.All(plan.Blockers, b => Assert.False(string.IsNullOrWhiteSpace(b.Fix)));
        }, iter: 300);
    }

    [Fact]
    public void Plan_RandomPools_SkipsExactlyWhatTheOperatorAsked()
    {
        s_pools.Sample(spec =>
        {
            var (pool, options, constraints, _) = spec.Build();
            var plan = EvacuationPlanner.Plan(pool, options, constraints);
            foreach (var host in pool.Hosts)
            {
                var d = plan.Hosts.Single(x => x.Uuid == host.Uuid);
                bool skip = constraints.AlreadyRebootedHosts.Contains(host.Uuid)
                    || options.IgnoreHosts.Contains(host.Name)
                    || (options.IncludeHosts.Count > 0 && !options.IncludeHosts.Contains(host.Name))
                    || (!host.Enabled && !host.DisabledUntilReboot)
                    || (options.OnlyNeedingReboot && !host.NeedsReboot);
                Assert.Equal(skip ? HostAction.Skip : HostAction.Reboot, d.Action);
                Assert.Equal(host.Uuid == pool.MasterUuid, d.IsMaster);
            }
        }, iter: 200);
    }

    [Fact]
    public void Plan_RandomPools_EstimateIsAtLeastTheLowerBound()
    {
        s_pools.Sample(spec =>
        {
            var (pool, options, constraints, _) = spec.Build();
            var plan = EvacuationPlanner.Plan(pool, options, constraints);
            Assert.True(plan.Estimate.TotalSeconds + 1e-6 >= PlanEstimator.LowerBoundSeconds(plan));
            Assert.Equal(plan.Steps.Sum(s => s.Migrations.Count) + plan.ReturnMigrations.Count, plan.Estimate.Migrations);
        }, iter: 200);
    }

    [Fact]
    public void Plan_TightEqualPools_PlanWithoutBlockers()
    {
        // Six equal hosts, each about 83% full with VMs of many sizes, built so that the master's VMs can be
        // packed into the other hosts' free memory (with under 1 GiB to spare on each): the plan must find it.
        Gen.Int[0, int.MaxValue].Sample(seed =>
        {
            var snapshot = TightPool(6, 0.83, seed).Build();
            var plan = EvacuationPlanner.Plan(snapshot, PlanOptions.Default, PlanConstraints.None);
            Assert.True(plan.CanRun, string.Join(Environment.NewLine, plan.Blockers.Select(b => b.Message)));
            Assert.Empty(PlanVerifier.Violations(snapshot, plan, PlanOptions.Default, PlanConstraints.None));
        }, iter: 300);
    }

    /// <summary>
    /// Equal hosts: every host but the first (the master) filled to about <paramref name="fill"/> with VMs of many
    /// sizes; the master gets, for each other host, a set of VMs that fits that host's free memory with under 1 GiB
    /// to spare. So an N+1 plan exists, and it is tight.
    /// </summary>
    internal static TestPool TightPool(int hosts, double fill, int seed)
    {
        var rng = new Random(seed);
        long[] sizes = [512, 1024, 2048, 4096, 8192, 16384];
        var pool = new TestPool { Name = "TIGHT" };
        var gifts = new List<long>();
        int n = 0;
        pool.AddHost("xen1", 262144, master: true);
        for (int i = 2; i <= hosts; i++)
        {
            var host = pool.AddHost("xen" + i, 262144);
            long room = (host.TotalMiB - host.Dom0MiB) * TestPool.MiB;
            long own = Fill(room * fill, v => pool.AddVm("i-2-" + (++n) + "-VM", host.Name, v));
            Fill(room - own - rng.Next(0, 1024) * TestPool.MiB, gifts.Add);
        }

        foreach (long v in gifts.OrderBy(_ => rng.Next()))
        {
            pool.AddVm("i-2-" + (++n) + "-VM", "xen1", v);
        }

        return pool;

        long Fill(double budget, Action<long> add)
        {
            long used = 0;
            for (int tries = 0; tries < 1000; tries++)
            {
                long size = TestPool.WithOverhead(sizes[rng.Next(sizes.Length)]);
                if (used + size <= budget)
                {
                    add(size);
                    used += size;
                }
            }

            return used;
        }
    }

    private static void AssertBlocker(Plan plan, string code, VmState vm) =>
        Assert.True(
            plan.Blockers.Any(b => b.Code == code && b.Vm == vm.Name && b.Message.Contains(vm.Name, StringComparison.Ordinal)),
            $"expected a {code} blocker naming {vm.Name}");
}
