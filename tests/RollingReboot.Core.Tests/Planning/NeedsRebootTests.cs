using RollingReboot.Core.Pool;

namespace RollingReboot.Core.Tests.Planning;

/// <summary>
/// "Needs a reboot" reads every real signal (issue 15 section 2): reboot_host and the three *_livepatch_failure
/// guidances in the mandatory, recommended (where xapi 24.10.0+ puts livepatch failures: repository_helpers.ml
/// update_livepatch_failure_guidance) and full lists, updates_requiring_reboot, and on XCP-ng boot_time older than
/// other_config.rpm_patch_installation_time (xo-server src/xapi-object-to-xo.mjs rebootRequired).
/// </summary>
public class NeedsRebootTests
{
    private static readonly DateTimeOffset s_boot = new(2026, 1, 10, 8, 0, 0, TimeSpan.Zero);

    private static HostState Host(
        IReadOnlyList<string>? mandatory = null, IReadOnlyList<string>? recommended = null, IReadOnlyList<string>? full = null,
        IReadOnlyList<string>? updates = null, DateTimeOffset? rpm = null, Dictionary<string, string>? software = null, bool enabled = true) =>
        new("h1", "h1", "10.0.0.1", enabled, true, 1, 1, 0, s_boot, s_boot, mandatory ?? [], updates ?? [], [])
        {
            PendingGuidancesRecommended = recommended ?? [],
            PendingGuidancesFull = full ?? [],
            RpmPatchInstallationTime = rpm,
            Software = PoolSoftware.From(software),
        };

    [Theory]
    [InlineData("reboot_host")]
    [InlineData("reboot_host_on_livepatch_failure")]
    [InlineData("reboot_host_on_kernel_livepatch_failure")]
    [InlineData("reboot_host_on_xen_livepatch_failure")]
    public void EveryRebootGuidance_InEveryList_NeedsAReboot(string guidance)
    {
        Assert.True(Host(mandatory: [guidance]).NeedsReboot);
        Assert.True(Host(recommended: [guidance]).NeedsReboot);
        Assert.True(Host(full: [guidance]).NeedsReboot);
        Assert.Equal($"recommended guidance: {guidance}", Assert.Single(Host(recommended: [guidance]).RebootSignals));
        Assert.Equal($"full guidance: {guidance}", Assert.Single(Host(full: [guidance]).RebootSignals));
    }

    [Fact]
    public void RestartToolstack_IsNoReboot()
    {
        var h = Host(mandatory: ["restart_toolstack"], enabled: false, software: PatchedHostSelectionTests.XenServer8);

        Assert.False(h.NeedsReboot);
        Assert.Empty(h.RebootSignals);
        Assert.False(h.DisabledUntilReboot);
        Assert.True(h.EnableRefused);
    }

    [Fact]
    public void LegacyUpdates_NeedAReboot()
    {
        Assert.Equal("2 update(s) need a reboot", Assert.Single(Host(updates: ["OpaqueRef:a", "OpaqueRef:b"]).RebootSignals));
    }

    [Fact]
    public void XcpNg_RpmPatchInstallationTimeAfterBoot_NeedsAReboot_BeforeBoot_DoesNot()
    {
        Assert.True(Host(rpm: s_boot.AddHours(1), software: PatchedHostSelectionTests.XcpNg82).NeedsReboot);
        Assert.False(Host(rpm: s_boot.AddHours(-1), software: PatchedHostSelectionTests.XcpNg82).NeedsReboot);
        Assert.False(Host(software: PatchedHostSelectionTests.XcpNg82).NeedsReboot);
    }

    [Fact]
    public void XenServer_RpmPatchInstallationTime_IsNotItsSignal_AsXenOrchestraReadsItOnlyOnXcpNg()
    {
        Assert.False(Host(rpm: s_boot.AddHours(1), software: PatchedHostSelectionTests.XenServer8).NeedsReboot);
    }

    [Fact]
    public void EnableRefused_OnlyWhereXapiRefusesIt()
    {
        Assert.True(Host(mandatory: ["reboot_host"], enabled: false, software: PatchedHostSelectionTests.XenServer8).EnableRefused);
        Assert.True(Host(mandatory: ["reboot_host"], enabled: false, software: PatchedHostSelectionTests.XenServer8).DisabledUntilReboot);
        // An enabled host: host.enable is a no-op (xapi_host.ml enable checks only a disabled host).
        Assert.False(Host(mandatory: ["reboot_host"], software: PatchedHostSelectionTests.XenServer8).EnableRefused);
        Assert.False(Host(mandatory: ["reboot_host"], enabled: false, software: PatchedHostSelectionTests.XenServerBefore2410).EnableRefused);
        Assert.False(Host(mandatory: ["reboot_host"], enabled: false, software: PatchedHostSelectionTests.XenServerBefore2410).DisabledUntilReboot);
    }

    [Fact]
    public void PoolSoftware_ReadsTheVersionAndSaysWhatItAssumes()
    {
        var xs8 = PoolSoftware.From(PatchedHostSelectionTests.XenServer8);
        Assert.Equal(new Version(26, 1, 4), xs8.Xapi);
        Assert.True(xs8.GuidanceKeepsHostDisabled);
        Assert.True(xs8.HasAutoEnable);
        Assert.StartsWith("XenServer 8.4.0, xapi 26.1.4, platform 3.4.0: pending mandatory guidance keeps a host disabled", xs8.Describe(), StringComparison.Ordinal);

        var xcp82 = PoolSoftware.From(PatchedHostSelectionTests.XcpNg82);
        Assert.Null(xcp82.Xapi);
        Assert.False(xcp82.GuidanceKeepsHostDisabled);
        Assert.False(xcp82.HasAutoEnable);
        Assert.Contains("xapi older than 22.9.0 (no xapi_build)", xcp82.Describe(), StringComparison.Ordinal);
        Assert.Contains("rpm_patch_installation_time", xcp82.Describe(), StringComparison.Ordinal);

        var xcp83 = PoolSoftware.From(new Dictionary<string, string> { ["product_brand"] = "XCP-ng", ["xapi_build"] = "24.19.2" });
        Assert.True(xcp83.GuidanceKeepsHostDisabled);
        Assert.False(xcp83.HasAutoEnable);
        Assert.Contains("no auto_enable before xapi 25.31.0", xcp83.Describe(), StringComparison.Ordinal);

        Assert.Equal(new Version(25, 6, 0), PoolSoftware.From(new Dictionary<string, string> { ["xapi_build"] = "25.6.0-1.xs8" }).Xapi);
        Assert.False(PoolSoftware.Unknown.Known);
        Assert.True(PoolSoftware.Unknown.GuidanceKeepsHostDisabled);
    }
}
