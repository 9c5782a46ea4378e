using System.Text.Json.Nodes;
using RollingReboot.Lab;
using RollingReboot.Lab.Scenario;
using RollingReboot.Xapi.Tls;

namespace RollingReboot.Xapi.Tests;

/// <summary>
/// The client reads what says a host needs its reboot and what its xapi is (issue 15 sections 1 and 2): from records
/// written by hand in xapi's shape, and from the lab's profiles over the wire.
/// </summary>
public sealed class PatchStateReadTests
{
    [Fact]
    public void HostRecord_InXapisShape_ReadsGuidanceListsSoftwareAndXenOrchestrasPatchTime()
    {
        // boot_time as OCaml's string_of_float prints it (trailing dot, xapi/dbsync_slave.ml); rpm_patch_installation_time as
        // Xen Orchestra writes it (String(Date.now() / 1000), xo-server src/xapi/mixins/patching.mjs).
        var record = JsonNode.Parse("""
            {
              "uuid": "u1", "name_label": "xs2", "address": "10.0.0.2", "enabled": false, "metrics": "OpaqueRef:m",
              "software_version": { "product_brand": "XenServer", "product_version": "8.4.0", "platform_version": "3.4.0", "xapi": "26.1", "xapi_build": "26.1.4" },
              "other_config": { "boot_time": "1719830000.", "agent_start_time": "1719830040.", "rpm_patch_installation_time": "1732891163.958" },
              "pending_guidances": ["reboot_host"],
              "pending_guidances_recommended": ["reboot_host_on_kernel_livepatch_failure"],
              "pending_guidances_full": [],
              "updates_requiring_reboot": []
            }
            """)!.AsObject();

        var h = XapiHostRecord.From("OpaqueRef:h", record).ToHostState(null);

        Assert.Equal(["reboot_host"], h.PendingGuidances);
        Assert.Equal(["reboot_host_on_kernel_livepatch_failure"], h.PendingGuidancesRecommended);
        Assert.Equal(DateTimeOffset.FromUnixTimeSeconds(1719830000), h.BootTime);
        Assert.Equal(DateTimeOffset.FromUnixTimeMilliseconds(1732891163958), h.RpmPatchInstallationTime);
        Assert.Equal(new Version(26, 1, 4), h.Software.Xapi);
        Assert.Equal("XenServer", h.Software.ProductBrand);
        Assert.True(h.DisabledUntilReboot);
        Assert.True(h.NeedsReboot);
        // XenServer: Xen Orchestra's rpm time is not its signal.
        Assert.False(h.PatchedSinceBoot);
        Assert.Equal(["mandatory guidance: reboot_host", "recommended guidance: reboot_host_on_kernel_livepatch_failure"], h.RebootSignals);
    }

    [Fact]
    public void HostRecord_OfXapi1249_HasNoGuidanceFieldsNorXapiBuild_AndReadsAsOlderThan22_9()
    {
        var record = JsonNode.Parse("""
            {
              "uuid": "u1", "name_label": "x1", "enabled": true,
              "software_version": { "product_brand": "XCP-ng", "product_version": "8.2.1", "platform_version": "3.2.1", "xapi": "1.20" },
              "other_config": { "boot_time": "1719830000.", "rpm_patch_installation_time": "1719900000.5" },
              "updates_requiring_reboot": []
            }
            """)!.AsObject();

        var h = XapiHostRecord.From("OpaqueRef:h", record).ToHostState(null);

        Assert.Empty(h.PendingGuidances);
        Assert.Empty(h.PendingGuidancesRecommended);
        Assert.Null(h.Software.Xapi);
        Assert.False(h.Software.GuidanceKeepsHostDisabled);
        Assert.True(h.PatchedSinceBoot);
        Assert.True(h.NeedsReboot);
    }

    private static XapiPoolConnection Connect(LabRuntime lab) => new(new XapiClient(new XapiClientOptions
    {
        Url = new Uri(lab.Environment["ROLLREBOOT_XAPI_URL"]),
        UserName = lab.Environment["ROLLREBOOT_XAPI_USER"],
        Password = lab.Environment["ROLLREBOOT_XAPI_PASSWORD"],
        Certificates = new XapiCertificatePolicy(lab.Environment["ROLLREBOOT_XAPI_CERT_SHA256"].Split(',')),
        TimeProvider = lab.Clock,
        MasterSearchTimeout = TimeSpan.FromSeconds(120),
    }));

    [Fact]
    public async Task XenServer8Lab_APatchedHost_ReadsDisabledUntilReboot_AndTheMastersSoftware()
    {
        await using var lab = await LabRuntime.StartAsync(ScenarioLoader.Parse("""
            { "pool": { "xapiVersion": "xenserver-8" },
              "hosts": [ { "name": "xs1", "memoryMiB": 65536, "pendingReboot": false }, { "name": "xs2", "memoryMiB": 65536 } ],
              "vms": [ { "name": "v1", "host": "xs1", "memoryMiB": 1024 } ] }
            """), 50, TextWriter.Null);
        await using var pool = Connect(lab);

        var snapshot = await pool.ReadAsync();

        Assert.Equal(new Version(26, 1, 4), snapshot.Software.Xapi);
        Assert.True(snapshot.Software.GuidanceKeepsHostDisabled);
        var xs2 = snapshot.Hosts.Single(h => h.Name == "xs2");
        Assert.True(xs2.DisabledUntilReboot);
        Assert.True(xs2.EnableRefused);
        Assert.Equal(["mandatory guidance: reboot_host"], xs2.RebootSignals);
        Assert.False(snapshot.Hosts.Single(h => h.Name == "xs1").NeedsReboot);
        Assert.Equal(xs2.PendingGuidances, (await pool.ReadHostAsync(xs2.Uuid)).PendingGuidances);

        // What XAPI answers when asked anyway: the singular code, [host].
        var e = await Assert.ThrowsAsync<XapiException>(() => pool.EnableHostAsync(xs2.Uuid));
        Assert.Equal("HOST_PENDING_MANDATORY_GUIDANCE_NOT_EMPTY", e.Code);
        Assert.Equal(Core.Ports.PoolErrorKind.Refused, e.Kind);
    }

    [Fact]
    public async Task XcpNg82Lab_PatchedHostsNeedTheirReboot_ByRpmPatchInstallationTime()
    {
        await using var lab = await LabRuntime.StartAsync(ScenarioLoader.Parse("""
            { "pool": { "xapiVersion": "xcp-ng-8.2" },
              "hosts": [ { "name": "x1", "memoryMiB": 65536 }, { "name": "x2", "memoryMiB": 65536, "pendingReboot": false } ] }
            """), 50, TextWriter.Null);
        await using var pool = Connect(lab);

        var snapshot = await pool.ReadAsync();

        Assert.Null(snapshot.Software.Xapi);
        Assert.Equal("8.2.1", snapshot.Software.ProductVersion);
        Assert.False(snapshot.Software.GuidanceKeepsHostDisabled);
        var x1 = snapshot.Hosts.Single(h => h.Name == "x1");
        Assert.True(x1.Enabled);
        Assert.True(x1.NeedsReboot);
        Assert.StartsWith("patched at ", Assert.Single(x1.RebootSignals), StringComparison.Ordinal);
        Assert.False(snapshot.Hosts.Single(h => h.Name == "x2").NeedsReboot);
    }
}
