using RollingReboot.Core.Planning;
using RollingReboot.Core.Pool;

namespace RollingReboot.Core.Tests.Planning;

/// <summary>
/// --apply-updates: only what must reboot reboots (issue 20). The guidance a host's updates leave decides, as xapi
/// predicts it in /updates (xen-api ocaml/xapi/repository.ml get_pool_updates_in_json, repository_helpers.ml
/// reduce_guidance): reboot_host or evacuate_host in mandatory or recommended: evacuate and reboot; restart_toolstack
/// only: toolstack restart in place; a livepatch, or VM guidances only: in place; nothing: left alone. XCP-ng (no
/// guidance): any package means a reboot, as Xen Orchestra's rolling pool update does.
/// </summary>
public class UpdatePlanningTests
{
    private static readonly DateTimeOffset s_boot = new(2026, 1, 10, 8, 0, 0, TimeSpan.Zero);

    private static HostState Host(string name, IReadOnlyList<string>? pending = null) =>
        new("u-" + name, name, "10.0.0.1", true, true, 1, 1, 0, s_boot, s_boot, pending ?? [], [], [])
        {
            Software = PoolSoftware.From(PatchedHostSelectionTests.XenServer8),
        };

    private static HostUpdates Updates(string host, IReadOnlyList<string>? mandatory = null, IReadOnlyList<string>? recommended = null, int livepatches = 0, IReadOnlyList<string>? ids = null) =>
        new("u-" + host, ids ?? ["XS-1"], ["kernel-4.19-1.x86_64"], new UpdateGuidance(mandatory ?? [], recommended ?? [], [], []), livepatches);

    [Theory]
    [InlineData("reboot_host", null, UpdateAction.Reboot)]
    [InlineData("evacuate_host", null, UpdateAction.Reboot)]
    [InlineData(null, "reboot_host", UpdateAction.Reboot)]
    [InlineData(null, "reboot_host_on_kernel_livepatch_failure", UpdateAction.Reboot)]
    [InlineData("restart_toolstack", null, UpdateAction.RestartToolstack)]
    [InlineData("restart_device_model", null, UpdateAction.InPlace)]
    [InlineData("restart_vm", null, UpdateAction.InPlace)]
    [InlineData(null, null, UpdateAction.InPlace)]
    public void TheGuidanceDecides(string? mandatory, string? recommended, UpdateAction expected)
    {
        var u = Updates("h1", mandatory is null ? [] : [mandatory], recommended is null ? [] : [recommended]);
        Assert.Equal(expected, UpdatePlanning.For(Host("h1"), u, xcpNg: false, isMaster: false).Action);
    }

    [Fact]
    public void ALivepatchedKernelFix_IsInstalledInPlace_NotRebooted()
    {
        // reduce_guidance: a RebootHost covered by livepatches is not in mandatory; the livepatch kind lists it.
        var u = Updates("h1", [], [], livepatches: 2) with { Guidance = new UpdateGuidance([], [], [], ["reboot_host"]) };
        var p = UpdatePlanning.For(Host("h1"), u, xcpNg: false, isMaster: false);
        Assert.Equal(UpdateAction.InPlace, p.Action);
        Assert.Contains("livepatch", p.Why, StringComparison.Ordinal);
    }

    [Fact]
    public void NothingToInstall_IsLeftAlone_UnlessItAlreadyNeedsAReboot()
    {
        var none = new HostUpdates("u-h1", [], [], UpdateGuidance.None, 0);
        Assert.Equal(UpdateAction.None, UpdatePlanning.For(Host("h1"), none, false, false).Action);
        Assert.Equal(UpdateAction.Reboot, UpdatePlanning.For(Host("h1", ["reboot_host"]), none, false, false).Action);
        Assert.Equal(UpdateAction.RestartToolstack, UpdatePlanning.For(Host("h1", ["restart_toolstack"]), none, false, false).Action);
    }

    [Fact]
    public void XcpNg_AnyPackage_MeansAReboot_NoneMeansLeftAlone()
    {
        var pkgs = new HostUpdates("u-h1", [], ["xapi-core-23.1-1.xcpng8.3"], UpdateGuidance.None, 0);
        Assert.Equal(UpdateAction.Reboot, UpdatePlanning.For(Host("h1"), pkgs, xcpNg: true, isMaster: true).Action);
        Assert.Equal(UpdateAction.None, UpdatePlanning.For(Host("h1"), new HostUpdates("u-h1", [], [], UpdateGuidance.None, 0), true, false).Action);
    }

    [Theory]
    [InlineData("RebootHost", "reboot_host")]
    [InlineData("RestartToolstack", "restart_toolstack")]
    [InlineData("EvacuateHost", "evacuate_host")]
    [InlineData("RestartDeviceModel", "restart_device_model")]
    [InlineData("RestartVM", "restart_vm")]
    [InlineData("RebootHostOnXenLivePatchFailure", "reboot_host_on_xen_livepatch_failure")]
    [InlineData("SomethingNew", "reboot_host")]
    public void UpdateInfoNames_AsTheHostFieldSpellsThem(string updateInfo, string field)
    {
        // updateinfo.ml Guidance.to_string / of_string: an unknown name falls back to RebootHost.
        Assert.Equal(field, UpdateGuidance.FromUpdateInfo(updateInfo));
    }

    [Fact]
    public void ThePlan_ListsTheMasterFirst_AndKeepsInPlaceHostsOutOfTheRebootOrder()
    {
        var pool = new TestPool();
        pool.AddHost("h1", 65536, master: true);
        pool.AddHost("h2", 65536);
        pool.AddHost("h3", 65536);
        pool.AddHost("h4", 65536);
        var snapshot = pool.Build();
        snapshot = snapshot with
        {
            Hosts = [.. snapshot.Hosts.Select(h => h with { PendingGuidances = [] })],
            Updates = new PoolUpdates("hash-1", false, new Dictionary<string, HostUpdates>
            {
                [TestPool.HostUuid("h1")] = Updates("h1", ["restart_toolstack"]) with { HostUuid = TestPool.HostUuid("h1") },
                [TestPool.HostUuid("h2")] = Updates("h2", ["reboot_host"]) with { HostUuid = TestPool.HostUuid("h2") },
                [TestPool.HostUuid("h3")] = Updates("h3", [], [], livepatches: 1) with { HostUuid = TestPool.HostUuid("h3") },
            }),
        };
        var plan = EvacuationPlanner.Plan(snapshot, new PlanOptions { ApplyUpdates = true }, PlanConstraints.None);

        Assert.Equal(["h1", "h2", "h3", "h4"], plan.UpdatePlan.Select(u => u.HostName));
        Assert.Equal([UpdateAction.RestartToolstack, UpdateAction.Reboot, UpdateAction.InPlace, UpdateAction.None], plan.UpdatePlan.Select(u => u.Action));
        Assert.Equal(["h2"], plan.Steps.Select(s => s.HostName));
        Assert.All(plan.Hosts.Where(h => h.Name != "h2"), h => Assert.StartsWith("--apply-updates: ", h.Reason, StringComparison.Ordinal));
    }
}
