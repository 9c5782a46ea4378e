using RollingReboot.Core.Planning;
using RollingReboot.Core.Pool;

namespace RollingReboot.Core.Tests.Planning;

/// <summary>
/// Which patched hosts are in the run, by what their xapi reports (issue 15 section 2). XenServer 8 (xapi 24.10.0+):
/// host.apply_updates leaves a host disabled with mandatory guidance reboot_host, and host.enable refuses it until it
/// reboots (xapi_host.ml apply_updates / assert_safe_to_reenable): such a host is rebooted. A host disabled for another
/// reason stays out, and the plan says why.
/// </summary>
public class PatchedHostSelectionTests
{
    private static readonly DateTimeOffset s_boot = new(2026, 1, 10, 8, 0, 0, TimeSpan.Zero);

    internal static Dictionary<string, string> XenServer8 => new() { ["product_brand"] = "XenServer", ["product_version"] = "8.4.0", ["platform_version"] = "3.4.0", ["xapi"] = "26.1", ["xapi_build"] = "26.1.4" };

    internal static Dictionary<string, string> XenServerBefore2410 => new() { ["product_brand"] = "XenServer", ["product_version"] = "8.4.0", ["xapi"] = "24.3", ["xapi_build"] = "24.3.0" };

    internal static Dictionary<string, string> XcpNg82 => new() { ["product_brand"] = "XCP-ng", ["product_version"] = "8.2.1", ["platform_version"] = "3.2.1", ["xapi"] = "1.20" };

    private static TestPool FourHosts(Dictionary<string, string> software)
    {
        var pool = new TestPool { Name = "XS8" };
        for (int i = 1; i <= 4; i++)
        {
            var h = pool.AddHost("xs" + i, 262144, i == 1);
            h.PendingGuidances.Clear();
            h.BootTime = s_boot;
            foreach (var kv in software)
            {
                h.SoftwareVersion[kv.Key] = kv.Value;
            }
        }

        pool.AddVm("vm-1", "xs1", TestPool.WithOverhead(8192));
        pool.AddVm("vm-4", "xs4", TestPool.WithOverhead(8192));
        return pool;
    }

    [Fact]
    public void XenServer8_DisabledWithRebootGuidance_IsRebooted_AndThePlanSaysItIsEnabledAfter()
    {
        var pool = FourHosts(XenServer8);
        var xs2 = pool.Hosts[1];
        xs2.Enabled = false;
        xs2.PendingGuidances.Add("reboot_host");

        var plan = EvacuationPlanner.Plan(pool.Build(), PlanOptions.Default, PlanConstraints.None);

        var d = plan.Hosts.Single(h => h.Name == "xs2");
        Assert.Equal(HostAction.Reboot, d.Action);
        Assert.Contains("pending guidance: reboot_host", d.Reason, StringComparison.Ordinal);
        Assert.Contains("enabled after its reboot", d.Reason, StringComparison.Ordinal);
        Assert.Contains(plan.Steps, s => s.HostName == "xs2");
        Assert.DoesNotContain(plan.Warnings, w => w.Message.Contains("xs2", StringComparison.Ordinal));
        // Before its reboot it takes no VMs: no migration targets it until then.
        var xs2Step = plan.Steps.Single(s => s.HostName == "xs2").Index;
        Assert.DoesNotContain(plan.Steps.Where(s => s.Index < xs2Step).SelectMany(s => s.Migrations), m => m.ToName == "xs2");
        Assert.Empty(plan.Blockers);
    }

    [Fact]
    public void XenServer8_OnlyNeedingReboot_TakesTheDisabledPatchedHosts_AndLeavesTheRest()
    {
        var pool = FourHosts(XenServer8);
        foreach (var h in pool.Hosts.Skip(1).Take(2))
        {
            h.Enabled = false;
            h.PendingGuidances.Add("reboot_host");
        }

        var plan = EvacuationPlanner.Plan(pool.Build(), PlanOptions.Default with { OnlyNeedingReboot = true }, PlanConstraints.None);

        Assert.Equal(["xs2", "xs3"], plan.Steps.Select(s => s.HostName).Order(StringComparer.Ordinal));
        Assert.All(plan.Hosts.Where(h => h.Name is "xs1" or "xs4"), h => Assert.StartsWith("no reboot needed", h.Reason, StringComparison.Ordinal));
    }

    [Fact]
    public void XenServer8_DisabledWithRestartToolstackOnly_StaysOut_AndThePlanSaysToRestartTheToolstack()
    {
        var pool = FourHosts(XenServer8);
        pool.Hosts[2].Enabled = false;
        pool.Hosts[2].PendingGuidances.Add("restart_toolstack");

        var plan = EvacuationPlanner.Plan(pool.Build(), PlanOptions.Default, PlanConstraints.None);

        var d = plan.Hosts.Single(h => h.Name == "xs3");
        Assert.Equal(HostAction.Skip, d.Action);
        Assert.StartsWith("disabled until its pending guidance is applied (XAPI refuses host.enable), left alone (pending guidance: restart_toolstack)", d.Reason, StringComparison.Ordinal);
        var w = Assert.Single(plan.Warnings, w => w.Code == PlanCodes.HostDisabledGuidance);
        Assert.Contains("xe host-restart-agent host=xs3", w.Fix, StringComparison.Ordinal);
        Assert.DoesNotContain("host-enable", w.Fix, StringComparison.Ordinal);
    }

    [Fact]
    public void DisabledByOperator_WithoutGuidance_StaysOut_AndTheFixIsHostEnable()
    {
        var pool = FourHosts(XenServer8);
        pool.Hosts[3].Enabled = false;
        pool.Hosts[3].Updates.Add("XS82ECU1001");

        var plan = EvacuationPlanner.Plan(pool.Build(), PlanOptions.Default, PlanConstraints.None);

        var d = plan.Hosts.Single(h => h.Name == "xs4");
        Assert.Equal(HostAction.Skip, d.Action);
        Assert.StartsWith("disabled by operator, left alone", d.Reason, StringComparison.Ordinal);
        Assert.Contains("xe host-enable", Assert.Single(plan.Warnings, w => w.Code == PlanCodes.HostDisabledPending).Fix, StringComparison.Ordinal);
    }

    [Fact]
    public void XenServer8_IgnoredDisabledPatchedHost_WarningNeverSuggestsAHostEnableXapiRefuses()
    {
        var pool = FourHosts(XenServer8);
        pool.Hosts[1].Enabled = false;
        pool.Hosts[1].PendingGuidances.Add("reboot_host");

        var plan = EvacuationPlanner.Plan(pool.Build(), PlanOptions.Default with { IgnoreHosts = ["xs2"] }, PlanConstraints.None);

        Assert.Equal(HostAction.Skip, plan.Hosts.Single(h => h.Name == "xs2").Action);
        var w = Assert.Single(plan.Warnings, w => w.Code == PlanCodes.HostDisabledPending);
        Assert.DoesNotContain("host-enable", w.Fix, StringComparison.Ordinal);
        Assert.Contains("refuses to enable xs2 until it reboots", w.Fix, StringComparison.Ordinal);
    }

    [Fact]
    public void BeforeXapi2410_ADisabledHostWithGuidance_IsTheOperators_AsGuidancesDidNotHoldHostsDisabled()
    {
        var pool = FourHosts(XenServerBefore2410);
        pool.Hosts[1].Enabled = false;
        pool.Hosts[1].PendingGuidances.Add("reboot_host");

        var plan = EvacuationPlanner.Plan(pool.Build(), PlanOptions.Default, PlanConstraints.None);

        var d = plan.Hosts.Single(h => h.Name == "xs2");
        Assert.Equal(HostAction.Skip, d.Action);
        Assert.StartsWith("disabled by operator, left alone (pending guidance: reboot_host)", d.Reason, StringComparison.Ordinal);
        Assert.Contains("xe host-enable", Assert.Single(plan.Warnings, w => w.Code == PlanCodes.HostDisabledPending).Fix, StringComparison.Ordinal);
    }

    [Fact]
    public void XcpNg_PatchedAfterBoot_NeedsReboot_AndThePlanSaysWhy()
    {
        var pool = FourHosts(XcpNg82);
        pool.Hosts[0].RpmPatchInstallationTime = s_boot.AddDays(3);
        pool.Hosts[2].RpmPatchInstallationTime = s_boot.AddDays(3);
        // Patched before the last boot: done.
        pool.Hosts[3].RpmPatchInstallationTime = s_boot.AddDays(-1);

        var plan = EvacuationPlanner.Plan(pool.Build(), PlanOptions.Default with { OnlyNeedingReboot = true }, PlanConstraints.None);

        Assert.Equal(["xs1", "xs3"], plan.Steps.Select(s => s.HostName));
        Assert.Contains("patched at 2026-01-13 08:00:00Z, after its boot (rpm_patch_installation_time)", plan.Hosts.Single(h => h.Name == "xs3").Reason, StringComparison.Ordinal);
        Assert.StartsWith("no reboot needed", plan.Hosts.Single(h => h.Name == "xs4").Reason, StringComparison.Ordinal);
    }
}
