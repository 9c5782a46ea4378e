using RollingReboot.Core.Planning;

namespace RollingReboot.Core.Tests.Planning;

/// <summary>
/// Issue 16: the planner places VMs by CloudStack's rules (host tags and dedication as a host filter, "host affinity"
/// groups moved together, non-strict anti-affinity and host affinity as preferences) and says which rule shaped a
/// placement; the verifier replays every plan independently.
/// </summary>
public sealed class PlacementRulesPlannerTests
{
    // Only the master reboots; the others take its VMs by worst fit (PlaceMastersVms' final targets), so what the rules
    // change is plain to see.
    private static readonly PlanOptions s_options = PlanOptions.Default with { IgnoreHosts = ["h2", "h3", "h4"] };

    private static TestPool FourHosts()
    {
        var pool = new TestPool { Name = "RULES" };
        pool.AddHost("h1", 131072, master: true);
        pool.AddHost("h2", 131072);
        pool.AddHost("h3", 196608);
        pool.AddHost("h4", 131072);
        return pool;
    }

    [Fact]
    public void HostFilter_ATaggedVmNeverGoesWhereItsTagsAreMissing_EvenToTheRoomiestHost()
    {
        var pool = FourHosts();
        pool.AddVm("tagged", "h1", 8 * TestPool.GiB);
        pool.AddVm("plain", "h1", 8 * TestPool.GiB);
        var snapshot = pool.Build();
        // The master's VMs go first, to any other host; h3 is the roomiest: worst fit would pick it.
        var constraints = new PlanConstraints { HostFilter = (vm, host) => vm == "tagged" && host is "h3" or "h4" ? $"{host} lacks host tag ssd" : null };

        var plan = EvacuationPlanner.Plan(snapshot, s_options, constraints);

        Assert.True(plan.CanRun, string.Join("; ", plan.Blockers.Select(b => b.Message)));
        Assert.Empty(PlanVerifier.Violations(snapshot, plan, s_options, constraints));
        var moves = plan.Steps.SelectMany(s => s.Migrations).Where(m => m.VmName == "tagged").ToList();
        Assert.NotEmpty(moves);
        Assert.All(moves, m => Assert.DoesNotContain(m.ToName, new[] { "h3", "h4" }));
        Assert.All(moves, m => Assert.Equal("not on h3, h4: h3 lacks host tag ssd", m.Rule));
        Assert.Contains(plan.Steps.SelectMany(s => s.Migrations), m => m.VmName == "plain" && m.ToName == "h3");
        Assert.All(plan.Steps.SelectMany(s => s.Migrations).Where(m => m.VmName == "plain"), m => Assert.Null(m.Rule));
    }

    [Fact]
    public void HostFilter_NoAllowedHostHasRoom_IsCapacityBlocker_NotAForbiddenMove()
    {
        var pool = FourHosts();
        pool.AddVm("tagged", "h1", 8 * TestPool.GiB);
        var snapshot = pool.Build();
        var constraints = new PlanConstraints { HostFilter = (vm, host) => vm == "tagged" && host != "h1" ? "no tag" : null };

        var plan = EvacuationPlanner.Plan(snapshot, s_options, constraints);

        var blocker = Assert.Single(plan.Blockers);
        Assert.Equal((PlanCodes.PlacementRule, "tagged"), (blocker.Code, blocker.Vm));
        Assert.Contains("no tag", blocker.Message, StringComparison.Ordinal);
        Assert.Empty(PlanVerifier.Violations(snapshot, plan, s_options, constraints));
    }

    [Fact]
    public void TogetherGroup_MovesAsOne_ToOneTarget_AtEveryStep()
    {
        var pool = new TestPool { Name = "EVEN" };
        pool.AddHost("h1", 131072, master: true);
        pool.AddHost("h2", 131072);
        pool.AddHost("h3", 131072);
        pool.AddHost("h4", 131072);
        foreach (var n in new[] { "db-1", "db-2", "db-3" })
        {
            pool.AddVm(n, "h1", 16 * TestPool.GiB);
        }

        pool.AddVm("other", "h4", 16 * TestPool.GiB);
        var snapshot = pool.Build();
        var constraints = new PlanConstraints { TogetherGroups = new Dictionary<string, IReadOnlyList<string>> { ["db"] = ["db-1", "db-2", "db-3"] } };

        var plan = EvacuationPlanner.Plan(snapshot, s_options, constraints);

        Assert.True(plan.CanRun, string.Join("; ", plan.Blockers.Select(b => b.Message)));
        Assert.Empty(PlanVerifier.Violations(snapshot, plan, s_options, constraints));
        foreach (var step in plan.Steps)
        {
            var targets = step.Migrations.Where(m => m.VmName.StartsWith("db-", StringComparison.Ordinal)).Select(m => m.ToName).Distinct().ToList();
            Assert.True(targets.Count <= 1, $"step {step.Index} splits db over {string.Join(", ", targets)}");
        }

        Assert.Contains(plan.Steps.SelectMany(s => s.Migrations), m => m.VmName == "db-1" && m.Rule == "host affinity db: moves with db-2, db-3");

        // Without the rule worst fit spreads them over the three hosts.
        var spread = EvacuationPlanner.Plan(snapshot, s_options, PlanConstraints.None);
        Assert.True(spread.Steps.SelectMany(s => s.Migrations).Where(m => m.VmName.StartsWith("db-", StringComparison.Ordinal)).Select(m => m.ToName).Distinct().Count() > 1);

        // Every host rebooted: at each step the group is on one host after it (the verifier replays each wave).
        var all = EvacuationPlanner.Plan(snapshot, PlanOptions.Default, constraints);
        Assert.True(all.CanRun, string.Join("; ", all.Blockers.Select(b => b.Message)));
        Assert.Empty(PlanVerifier.Violations(snapshot, all, PlanOptions.Default, constraints));
    }

    [Fact]
    public void TogetherGroup_RoomForEachButNotForAll_IsNotSplit_ItIsABlocker()
    {
        var pool = new TestPool { Name = "TIGHT" };
        pool.AddHost("h1", 65536, master: true);
        pool.AddHost("h2", 65536);
        pool.AddHost("h3", 65536);
        pool.AddHost("h4", 65536);
        pool.AddVm("fill-4", "h4", 58 * TestPool.GiB);
        pool.AddVm("db-1", "h1", 24 * TestPool.GiB);
        pool.AddVm("db-2", "h1", 24 * TestPool.GiB);
        pool.AddVm("fill-2", "h2", 30 * TestPool.GiB);
        pool.AddVm("fill-3", "h3", 30 * TestPool.GiB);
        var snapshot = pool.Build();
        var together = new PlanConstraints { TogetherGroups = new Dictionary<string, IReadOnlyList<string>> { ["db"] = ["db-1", "db-2"] } };

        var split = EvacuationPlanner.Plan(snapshot, s_options, PlanConstraints.None);
        var plan = EvacuationPlanner.Plan(snapshot, s_options, together);

        // Without the rule the planner spreads them; with it the group finds no single host with 48 GiB free.
        Assert.True(split.CanRun);
        var blocker = Assert.Single(plan.Blockers);
        Assert.Equal(PlanCodes.KeptTogether, blocker.Code);
        Assert.Contains("db-1, db-2", blocker.Message, StringComparison.Ordinal);
        Assert.Empty(PlanVerifier.Violations(snapshot, plan, s_options, together));
    }

    [Fact]
    public void PreferApart_TheyGoToDifferentHostsWhereRoomAllows_AndShareOneOnlyWhenNoneElseHasRoom()
    {
        var pool = FourHosts();
        pool.AddVm("web-1", "h1", 8 * TestPool.GiB);
        pool.AddVm("web-2", "h1", 8 * TestPool.GiB);
        var snapshot = pool.Build();
        var apart = new PlanConstraints { PreferApartGroups = new Dictionary<string, IReadOnlyList<string>> { ["web-1"] = ["web"], ["web-2"] = ["web"] } };

        var plan = EvacuationPlanner.Plan(snapshot, s_options, apart);
        var step = plan.Steps.Single(s => s.HostName == "h1");
        Assert.Equal(2, step.Migrations.Select(m => m.ToName).Distinct().Count());
        Assert.All(step.Migrations, m => Assert.Equal("non-strict host anti-affinity web (preferred apart)", m.Rule));
        Assert.Empty(PlanVerifier.Violations(snapshot, plan, s_options, apart));

        // Without the preference worst fit sends both to the roomiest host.
        var free = EvacuationPlanner.Plan(snapshot, s_options, PlanConstraints.None).Steps.Single(s => s.HostName == "h1");
        Assert.Single(free.Migrations.Select(m => m.ToName).Distinct());

        // A preference never blocks: on two hosts both must share the only target.
        var small = new TestPool { Name = "SMALL" };
        small.AddHost("h1", 65536, master: true);
        small.AddHost("h2", 65536);
        small.AddHost("h3", 65536);
        small.AddHost("h4", 65536);
        small.AddVm("fill-3", "h3", 58 * TestPool.GiB);
        small.AddVm("fill-4", "h4", 58 * TestPool.GiB);
        small.AddVm("web-1", "h1", 8 * TestPool.GiB);
        small.AddVm("web-2", "h1", 8 * TestPool.GiB);
        var two = EvacuationPlanner.Plan(small.Build(), s_options, apart);
        Assert.True(two.CanRun, string.Join("; ", two.Blockers.Select(b => b.Message)));
    }

    [Fact]
    public void PreferTogether_TheyFollowTheFirstWhereRoomAllows()
    {
        var pool = FourHosts();
        pool.AddVm("app-1", "h1", 60 * TestPool.GiB);
        pool.AddVm("app-2", "h1", 60 * TestPool.GiB);
        pool.AddVm("app-3", "h1", 8 * TestPool.GiB);
        var snapshot = pool.Build();
        var together = new PlanConstraints { PreferTogetherGroups = new Dictionary<string, IReadOnlyList<string>> { ["app"] = ["app-1", "app-2", "app-3"] } };

        var plan = EvacuationPlanner.Plan(snapshot, s_options, together);
        var step = plan.Steps.Single(s => s.HostName == "h1");

        // h3 (192 GiB) takes all three; worst fit alone would spread them.
        Assert.Single(step.Migrations.Select(m => m.ToName).Distinct());
        Assert.Empty(PlanVerifier.Violations(snapshot, plan, s_options, together));
        var spread = EvacuationPlanner.Plan(snapshot, s_options, PlanConstraints.None).Steps.Single(s => s.HostName == "h1");
        Assert.True(spread.Migrations.Select(m => m.ToName).Distinct().Count() > 1);
    }
}
