using Microsoft.Extensions.Time.Testing;
using RollingReboot.Core.Planning;
using RollingReboot.Core.Pool;
using RollingReboot.Core.Ports;
using RollingReboot.Core.Run;
using RollingReboot.Core.Tests.Run.Fakes;

namespace RollingReboot.Core.Tests.Run;

/// <summary>CloudStack's placement rules as read from its answers, and a plan checked against them.</summary>
public sealed class CloudStackPlacementTests
{
    private static readonly CloudStackAffinityGroup s_dedicated = new("g-ops", "DedicatedGrp-ops", CloudStackAffinityTypes.ExplicitDedication);

    private static async Task<PoolSnapshot> PoolAsync() => await FakePool.Create(new FakeTimeProvider(), hosts: 4).ReadAsync();

    private static CloudStackHost Host(string id, string name, string resourceState = "Enabled", params string[] tags) =>
        new(id, name, "Up", resourceState, "") { HostTags = tags };

    private static CloudStackVm Vm(string name, string host, params CloudStackAffinityGroup[] groups) =>
        new("cs-" + name, name, host, groups) { State = "Running" };

    private static Plan PlanWith(PoolSnapshot pool, params PlanStep[] steps) =>
        new(pool, PlanOptions.Default, [], steps, [], [], [], new PlanEstimate(0, 0, 0));

    private static PlanStep Step(int index, string host, params (string Vm, string From, string To)[] moves) =>
        new(index, index, "h" + host[^1], host, false, moves.Select(m => new PlannedMigration("u-" + m.Vm, m.Vm, "h" + m.From[^1], m.From, "h" + m.To[^1], m.To, 1L << 30)).ToList(), 10, 100);

    [Fact]
    public async Task From_MapsCloudStackHostsToPoolNames_AndSortsGroupsByType()
    {
        var pool = await PoolAsync();
        var placement = CloudStackPlacement.From(pool,
            [Host("cs1", "XEN1"), Host("cs2", "xen2", "Maintenance"), Host("cs3", "xen3", "Enabled", "ssd", "gpu"), Host("cs9", "other-pool-host", "Disabled")],
            [Vm("vm-1-1", "xen1", new CloudStackAffinityGroup("a", "anti", CloudStackAffinityTypes.HostAntiAffinity), new CloudStackAffinityGroup("b", "soft", CloudStackAffinityTypes.NonStrictHostAntiAffinity)),
             Vm("vm-1-2", "xen1", new CloudStackAffinityGroup("c", "together", CloudStackAffinityTypes.HostAffinity)),
             Vm("vm-2-1", "xen2", new CloudStackAffinityGroup("c", "together", CloudStackAffinityTypes.HostAffinity), s_dedicated) with { RequiredHostTags = ["ssd"] }],
            [new CloudStackDedicatedHost("cs3", "xen3", "d", "a", "g-ops")], null);

        Assert.Equal(new Dictionary<string, string> { ["xen2"] = "Maintenance" }, placement.NotEnabledHosts);
        Assert.Equal(["gpu", "ssd"], placement.HostTags["xen3"].Order(StringComparer.Ordinal));
        Assert.Equal(["anti"], placement.StrictAntiAffinity["vm-1-1"]);
        Assert.Equal(["soft"], placement.PreferredAntiAffinity["vm-1-1"]);
        Assert.Equal(["vm-1-2", "vm-2-1"], placement.HostAffinity["together"]);
        Assert.Equal("DedicatedGrp-ops", placement.DedicatedHosts["xen3"].Name);
        Assert.Equal(["ssd"], placement.RequiredHostTags["vm-2-1"]);
        Assert.Empty(placement.Unread);
    }

    [Fact]
    public void WhyNot_ResourceStateTagsAndDedication_AsCloudStacksPlannerDecides()
    {
        var placement = new CloudStackPlacement
        {
            NotEnabledHosts = new Dictionary<string, string> { ["xen4"] = "Disabled" },
            HostTags = new Dictionary<string, IReadOnlyList<string>> { ["xen2"] = ["ssd"], ["xen3"] = ["ssd", "fast"] },
            RequiredHostTags = new Dictionary<string, IReadOnlyList<string>> { ["tagged"] = ["ssd", "fast"] },
            DedicatedHosts = new Dictionary<string, CloudStackAffinityGroup> { ["xen3"] = s_dedicated },
            ExplicitDedication = new Dictionary<string, IReadOnlyList<CloudStackAffinityGroup>> { ["ops-vm"] = [s_dedicated] },
        };

        Assert.Contains("resource state Disabled", placement.WhyNot("plain", "xen4"), StringComparison.Ordinal);
        Assert.Null(placement.WhyNot("plain", "xen1"));
        // checkHostServiceOfferingTags: the host needs every tag of the offering.
        Assert.Contains("lacks fast", placement.WhyNot("tagged", "xen2"), StringComparison.Ordinal);
        // A VM without an ExplicitDedication group avoids dedicated hosts; one with it goes only where its group dedicates.
        Assert.Contains("xen3 is dedicated", placement.WhyNot("plain", "xen3"), StringComparison.Ordinal);
        Assert.Null(placement.WhyNot("ops-vm", "xen3"));
        Assert.Contains("not dedicated through that group", placement.WhyNot("ops-vm", "xen1"), StringComparison.Ordinal);
    }

    [Fact]
    public async Task Check_AMigrationOntoAHostCloudStackRefuses_IsABlockerWithTheHostsThatWouldDo()
    {
        var pool = await PoolAsync();
        var placement = new CloudStackPlacement
        {
            HostTags = new Dictionary<string, IReadOnlyList<string>> { ["xen3"] = ["ssd"] },
            RequiredHostTags = new Dictionary<string, IReadOnlyList<string>> { ["vm-1-1"] = ["ssd"] },
        };

        var (blockers, _) = placement.Check(PlanWith(pool, Step(1, "xen1", ("vm-1-1", "xen1", "xen2"))), pool);

        var blocker = Assert.Single(blockers);
        Assert.Equal(("CLOUDSTACK_PLACEMENT", "vm-1-1", "xen1"), (blocker.Code, blocker.Vm, blocker.Host));
        Assert.Contains("to xen2 (step 1, evacuating xen1)", blocker.Message, StringComparison.Ordinal);
        Assert.Contains("no host CloudStack allows (xen3) has room for vm-1-1", blocker.Fix, StringComparison.Ordinal);
    }

    [Fact]
    public async Task Check_HostAffinityGroupSplitByAStep_IsABlocker_KeptTogether_IsNot()
    {
        var pool = await PoolAsync();
        var placement = new CloudStackPlacement { HostAffinity = new Dictionary<string, IReadOnlyList<string>> { ["db"] = ["vm-1-1", "vm-1-2"] } };

        var (together, _) = placement.Check(PlanWith(pool, Step(1, "xen1", ("vm-1-1", "xen1", "xen2"), ("vm-1-2", "xen1", "xen2"), ("vm-1-3", "xen1", "xen3"))), pool);
        var (split, _) = placement.Check(PlanWith(pool, Step(1, "xen1", ("vm-1-1", "xen1", "xen2"), ("vm-1-2", "xen1", "xen3"))), pool);

        Assert.Empty(together);
        var blocker = Assert.Single(split);
        Assert.Equal("CLOUDSTACK_HOST_AFFINITY", blocker.Code);
        Assert.Contains("vm-1-1 on xen2, vm-1-2 on xen3", blocker.Message, StringComparison.Ordinal);
    }

    [Fact]
    public async Task Check_HostAffinityGroupAlreadySplit_IsOnlyAWarning()
    {
        var pool = await PoolAsync();
        var placement = new CloudStackPlacement { HostAffinity = new Dictionary<string, IReadOnlyList<string>> { ["db"] = ["vm-1-1", "vm-2-1"] } };

        var (blockers, warnings) = placement.Check(PlanWith(pool, Step(1, "xen1", ("vm-1-1", "xen1", "xen3"))), pool);

        Assert.Empty(blockers);
        Assert.Equal("CLOUDSTACK_HOST_AFFINITY_ALREADY_SPLIT", Assert.Single(warnings).Code);
    }
}
