using System.Text.Json;
using RollingReboot.Core.Pool;
using RollingReboot.Lab;
using RollingReboot.Lab.Scenario;

namespace RollingReboot.Xapi.Tests;

/// <summary>
/// The client's side of --migration-network and --compress: PIFs read as xapi_pif_helpers.ml get_primary_address reads them,
/// pool.migration_compression only where the release has it, and VM.pool_migrate's options on the wire.
/// </summary>
public sealed class MigrationRouteTests
{
    private static XapiPifRecord Pif(string json)
    {
        using var doc = JsonDocument.Parse(json);
        return XapiPifRecord.From("OpaqueRef:p", doc.RootElement);
    }

    [Theory]
    [InlineData("""{ "primary_address_type": "IPv4", "IP": "10.1.0.5", "IPv6": [] }""", true)]
    [InlineData("""{ "primary_address_type": "IPv4", "IP": "", "IPv6": ["2001:db8::5/64"] }""", false)]
    [InlineData("""{ "primary_address_type": "IPv6", "IP": "10.1.0.5", "IPv6": ["fe80::216:3eff:fe00:1/64"] }""", false)]
    [InlineData("""{ "primary_address_type": "IPv6", "IP": "", "IPv6": ["fe80::1/64", "2001:db8::5/64"] }""", true)]
    public void Pif_PrimaryAddress_IsReadAsXapiReadsIt(string json, bool hasAddress) =>
        Assert.Equal(hasAddress, Pif(json).HasPrimaryAddress);

    [Fact]
    public void PifMetrics_SpeedAsXmlRpcSendsIt_AndPoolWithoutTheField_ReadsAsUnknown()
    {
        using var metrics = JsonDocument.Parse("""{ "speed": "10000", "carrier": true }""");
        Assert.Equal(10000, XapiPifMetricsRecord.From("OpaqueRef:m", metrics.RootElement).Speed);
        using var old = JsonDocument.Parse("""{ "uuid": "u", "name_label": "p", "master": "OpaqueRef:h" }""");
        Assert.Null(XapiPoolRecord.From("OpaqueRef:p", old.RootElement).MigrationCompression);
        using var current = JsonDocument.Parse("""{ "uuid": "u", "name_label": "p", "master": "OpaqueRef:h", "migration_compression": true }""");
        Assert.True(XapiPoolRecord.From("OpaqueRef:p", current.RootElement).MigrationCompression);
    }

    [Fact]
    public async Task MigrateVm_WithARoute_SendsTheNetworkRefAndCompress_AndWithoutOne_OnlyLive()
    {
        const string scenario = """
            { "pool": { "xapiVersion": "xcp-ng-8.3", "migrationCompression": true },
              "networks": [ { "name": "mig", "linkMBps": 1000 } ],
              "hosts": [ { "name": "a", "master": true, "memoryMiB": 65536 }, { "name": "b", "memoryMiB": 65536 } ],
              "vms": [ { "name": "v1", "host": "a", "memoryMiB": 1024 }, { "name": "v2", "host": "a", "memoryMiB": 1024 } ] }
            """;
        await using var lab = await LabRuntime.StartAsync(ScenarioLoader.Parse(scenario), 200, TextWriter.Null);
        await using var pool = new XapiPoolConnection(LabXapiTests.ClientFor(lab));
        var snapshot = await pool.ReadAsync();
        Assert.True(snapshot.MigrationCompression);
        var mig = (await pool.ReadNetworksAsync()).Single(n => n.Name == "mig");
        var b = snapshot.Hosts.Single(h => h.Name == "b").Uuid;

        await pool.MigrateVmAsync(snapshot.Vms.Single(v => v.Name == "v1").Uuid, b, new MigrationRoute(mig.Uuid, false), null, CancellationToken.None);
        await pool.MigrateVmAsync(snapshot.Vms.Single(v => v.Name == "v2").Uuid, b);

        var starts = lab.AuditJson()["events"]!.AsArray().Where(e => e!["type"]!.GetValue<string>() == "migration.start").ToDictionary(e => e!["vm"]!.GetValue<string>(), e => e!);
        var v1 = starts["v1"]!["options"]!.AsObject();
        Assert.Equal(["compress", "live", "network"], v1.Select(kv => kv.Key).Order(StringComparer.Ordinal));
        Assert.Equal("false", v1["compress"]!.GetValue<string>());
        Assert.StartsWith("OpaqueRef:", v1["network"]!.GetValue<string>(), StringComparison.Ordinal);
        Assert.Equal("mig", starts["v1"]!["network"]!.GetValue<string>());
        Assert.Null(starts["v1"]!["compressed"]);
        // No option: the pool's migration_compression (true) decides, over the management network.
        Assert.Equal(["live"], starts["v2"]!["options"]!.AsObject().Select(kv => kv.Key));
        Assert.True(starts["v2"]!["compressed"]!.GetValue<bool>());
        Assert.Null(starts["v2"]!["network"]);
    }
}
