using System.Text.Json.Nodes;
using RollingReboot.Core.Pool;
using RollingReboot.Xapi;

namespace RollingReboot.Lab.Tests;

/// <summary>
/// A dedicated migration network and stream compression, as xapi has them: VM.pool_migrate's <c>network</c> option sends the
/// stream to the destination's address on that network, after assert_valid_ip_configuration_on_network_for_host
/// (xapi/xapi_vm_migrate.ml pool_migrate, xapi/xapi_network_attach_helpers.ml: PIF_NOT_PRESENT [host; network],
/// REQUIRED_PIF_IS_UNPLUGGED [pif], INTERFACE_HAS_NO_IP [pif]); host.evacuate checks every destination of its plan first
/// (xapi/xapi_host.ml evacuate assert_valid_networks). <c>compress</c> (true/on/1, false/off/0) else
/// pool.migration_compression decides (use_compression). The lab gives each network its own link per host.
/// </summary>
public sealed class MigrationNetworkTests
{
    private const double MB = 1e6;
    private const double MiB = 1024 * 1024;
    private const double Tolerance = 0.01;

    private static string Scenario(string version = "24.19.0", bool poolCompression = false) => $$"""
        { "pool": { "xapiVersion": "{{version}}", "migrationCompression": {{(poolCompression ? "true" : "false")}} },
          "migration": { "streamMBps": 400, "hostLinkMBps": 100, "setupSeconds": 2, "dirtyRatio": 0.1, "compressionRatio": 0.25, "compressMBps": 200 },
          "networks": [ { "name": "mig", "linkMBps": 300 },
                        { "name": "partial", "linkMBps": 300, "hosts": ["a", "b", "c"], "unplugged": ["b"], "noIp": ["c"] } ],
          "hosts": [ { "name": "a", "master": true, "memoryMiB": 65536 }, { "name": "b", "memoryMiB": 65536 },
                     { "name": "c", "memoryMiB": 65536 }, { "name": "d", "memoryMiB": 65536 } ],
          "vms": [ { "name": "v1", "host": "a", "memoryMiB": 1000 }, { "name": "v2", "host": "a", "memoryMiB": 1000 } ] }
        """;

    private static async Task<string> RefAsync(XapiClient c, string cls, string name) =>
        (await c.CallAsync(cls + ".get_by_name_label", [name]))!.AsArray()[0]!.GetValue<string>();

    private static double Duration(JsonObject audit, string vm) =>
        Audit.T(Audit.Events(audit, "migration.end", vm: vm)[0]) - Audit.T(Audit.Events(audit, "migration.start", vm: vm)[0]);

    [Fact]
    public async Task Networks_PifsAndMetrics_AreRecordsAsXapiHasThem()
    {
        await using var lab = await Labs.StartAsync(Scenario());
        await using var pool = new XapiPoolConnection(Labs.Client(lab));
        var snapshot = await pool.ReadAsync();
        var networks = await pool.ReadNetworksAsync();

        Assert.Equal(["Pool-wide network associated with eth0", "mig", "partial"], networks.Select(n => n.Name));
        Assert.Equal(["xenbr0", "xenbr1", "xenbr2"], networks.Select(n => n.Bridge));
        var host = (string name) => snapshot.Hosts.Single(h => h.Name == name).Uuid;
        var mig = networks.Single(n => n.Name == "mig");
        Assert.Equal(4, mig.Ports.Count);
        Assert.All(mig.Ports, p => Assert.True(p.Attached && p.HasAddress));
        Assert.Equal(2400, mig.SlowestSpeedMbps);
        var partial = networks.Single(n => n.Name == "partial");
        Assert.Null(partial.ProblemOn(host("a")));
        Assert.Equal(NetworkPort.Unplugged, partial.ProblemOn(host("b")));
        Assert.Equal(NetworkPort.NoAddress, partial.ProblemOn(host("c")));
        Assert.Equal(NetworkPort.NotPresent, partial.ProblemOn(host("d")));
        Assert.All(networks[0].Ports, p => Assert.True(p.HasAddress));

        // The same through the generic getters a real client uses.
        var c = pool.Client;
        var a = await RefAsync(c, "host", "a");
        var pifs = (await c.CallAsync("host.get_PIFs", [a]))!.AsArray();
        Assert.Equal(3, pifs.Count);
        var record = (await c.CallAsync("PIF.get_record", [pifs[1]!.GetValue<string>()]))!.AsObject();
        Assert.Equal("eth1", record["device"]!.GetValue<string>());
        Assert.Equal("IPv4", record["primary_address_type"]!.GetValue<string>());
        Assert.True(record["currently_attached"]!.GetValue<bool>());
        var metrics = (await c.CallAsync("PIF_metrics.get_record", [record["metrics"]!.GetValue<string>()]))!.AsObject();
        Assert.Equal(2400, metrics["speed"]!.GetValue<long>());
    }

    [Theory]
    [InlineData("b", "REQUIRED_PIF_IS_UNPLUGGED")]
    [InlineData("c", "INTERFACE_HAS_NO_IP")]
    [InlineData("d", "PIF_NOT_PRESENT")]
    public async Task PoolMigrate_OverANetworkTheTargetCannotUse_IsRefusedAsXapiRefusesIt(string target, string code)
    {
        await using var lab = await Labs.StartAsync(Scenario());
        await using var c = Labs.Client(lab);
        var vm = await RefAsync(c, "VM", "v1");
        var host = await RefAsync(c, "host", target);
        var network = await RefAsync(c, "network", "partial");

        var e = await Assert.ThrowsAsync<XapiException>(() => c.CallAsync("VM.pool_migrate", [vm, host, new JsonObject { ["live"] = "true", ["network"] = network }]));
        Assert.Equal(code, e.Code);
        if (code == "PIF_NOT_PRESENT")
        {
            Assert.Equal([host, network], e.Parameters);
        }
        else
        {
            Assert.StartsWith("OpaqueRef:", Assert.Single(e.Parameters), StringComparison.Ordinal);
        }

        Assert.Empty(Audit.Events(lab.AuditJson(), "migration.start"));
    }

    [Fact]
    public async Task PoolMigrate_OverTheMigrationNetwork_UsesItsOwnLink_NotTheManagementOne()
    {
        await using var lab = await Labs.StartAsync(Scenario());
        await using var c = Labs.Client(lab);
        var b = await RefAsync(c, "host", "b");
        var network = await RefAsync(c, "network", "mig");
        await Task.WhenAll(
            c.CallAsync("VM.pool_migrate", [await RefAsync(c, "VM", "v1"), b, new JsonObject { ["live"] = "true", ["network"] = network }]),
            c.CallAsync("VM.pool_migrate", [await RefAsync(c, "VM", "v2"), b, new JsonObject { ["live"] = "true" }]));

        var audit = lab.AuditJson();
        var bytes = 1000 * MiB * 1.1;
        // v1 alone on the 300 MB/s migration link (stream 400); v2 alone on the 100 MB/s management link.
        Assert.Equal(2 + (bytes / (300 * MB)), Duration(audit, "v1"), Tolerance);
        Assert.Equal(2 + (bytes / (100 * MB)), Duration(audit, "v2"), Tolerance);
        Assert.Equal("mig", Audit.Events(audit, "migration.start", vm: "v1")[0]["network"]!.GetValue<string>());
        Assert.Null(Audit.Events(audit, "migration.start", vm: "v2")[0]["network"]);
    }

    [Fact]
    public async Task PoolMigrate_Compressed_PutsTheRatioOnTheWire_AtTheCompressorsPace()
    {
        await using var lab = await Labs.StartAsync(Scenario());
        await using var c = Labs.Client(lab);
        await c.CallAsync("VM.pool_migrate", [await RefAsync(c, "VM", "v1"), await RefAsync(c, "host", "b"), new JsonObject { ["live"] = "true", ["compress"] = "on" }]);

        var audit = lab.AuditJson();
        var wire = 1000 * MiB * 1.1 * 0.25;
        var start = Audit.Events(audit, "migration.start", vm: "v1")[0];
        Assert.True(start["compressed"]!.GetValue<bool>());
        Assert.Equal((long)wire, start["bytes"]!.GetValue<long>());
        // min(stream 400, compressor 200 x 0.25 = 50, link 100) = 50 MB/s on the wire.
        Assert.Equal(2 + (wire / (50 * MB)), Duration(audit, "v1"), Tolerance);
    }

    [Theory]
    [InlineData(true, null, true)]
    [InlineData(true, "false", false)]
    [InlineData(true, "nonsense", true)]
    [InlineData(false, null, false)]
    [InlineData(false, "1", true)]
    public async Task PoolMigrate_WithoutACompressOption_ThePoolsDefaultDecides(bool poolDefault, string? option, bool compressed)
    {
        await using var lab = await Labs.StartAsync(Scenario(poolCompression: poolDefault));
        await using var c = Labs.Client(lab);
        var pool = (await c.CallAsync("pool.get_all", []))!.AsArray()[0]!.GetValue<string>();
        Assert.Equal(poolDefault, (await c.CallAsync("pool.get_migration_compression", [pool]))!.GetValue<bool>());
        var options = new JsonObject { ["live"] = "true" };
        if (option is not null)
        {
            options["compress"] = option;
        }

        await c.CallAsync("VM.pool_migrate", [await RefAsync(c, "VM", "v1"), await RefAsync(c, "host", "b"), options]);
        Assert.Equal(compressed, Audit.Events(lab.AuditJson(), "migration.start", vm: "v1")[0]["compressed"]?.GetValue<bool>() ?? false);
    }

    [Fact]
    public async Task OnXcpNg82_TheOptionsAreIgnored_AndThePoolHasNoMigrationCompression()
    {
        await using var lab = await Labs.StartAsync(Scenario("xcp-ng-8.2", poolCompression: true));
        await using var pool = new XapiPoolConnection(Labs.Client(lab));
        var snapshot = await pool.ReadAsync();
        Assert.Null(snapshot.MigrationCompression);
        var c = pool.Client;
        // xapi 1.249 looks at neither option: the stream goes over the management link, uncompressed, even to d (no PIF).
        await c.CallAsync("VM.pool_migrate", [await RefAsync(c, "VM", "v1"), await RefAsync(c, "host", "d"),
            new JsonObject { ["live"] = "true", ["network"] = await RefAsync(c, "network", "partial"), ["compress"] = "true" }]);
        var start = Audit.Events(lab.AuditJson(), "migration.start", vm: "v1")[0];
        Assert.Null(start["network"]);
        Assert.Null(start["compressed"]);
        Assert.Equal(2 + (1000 * MiB * 1.1 / (100 * MB)), Duration(lab.AuditJson(), "v1"), Tolerance);
    }

    [Fact]
    public async Task HostEvacuate_WithANetwork_ChecksEveryDestinationBeforeAnyVmMoves()
    {
        await using var lab = await Labs.StartAsync(Scenario());
        await using var c = Labs.Client(lab);
        var a = await RefAsync(c, "host", "a");
        var partial = await RefAsync(c, "network", "partial");
        var e = await Assert.ThrowsAsync<XapiException>(() => c.CallAsync("host.evacuate", [a, partial, 10L]));
        Assert.Equal("REQUIRED_PIF_IS_UNPLUGGED", e.Code);
        Assert.Empty(Audit.Events(lab.AuditJson(), "migration.start"));

        await c.CallAsync("host.evacuate", [a, await RefAsync(c, "network", "mig"), 10L]);
        Assert.All(Audit.Events(lab.AuditJson(), "migration.start"), s => Assert.Equal("mig", s["network"]!.GetValue<string>()));
    }
}
