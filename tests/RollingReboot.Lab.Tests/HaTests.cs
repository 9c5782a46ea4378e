using System.Text.Json.Nodes;
using RollingReboot.Xapi;

namespace RollingReboot.Lab.Tests;

/// <summary>Pool HA: what blocks enabling it, what the audit keeps of its settings, what it does to evacuation.</summary>
public sealed class HaTests
{
    private const string Pool = """
        { "pool": { "toolstackStartSeconds": 2, "ha": { "enabled": HA, "timeoutSeconds": 180, "hostFailuresToTolerate": 1, "heartbeatSr": "nfs" } },
          "hosts": [ { "name": "m", "memoryMiB": 65536 }, { "name": "b", "memoryMiB": 65536, "rebootSeconds": 400 }, { "name": "c", "memoryMiB": 65536 } ],
          "srs": [ { "name": "iso", "shared": true }, { "name": "nfs" }, { "name": "nfs2" } ],
          "vms": [ { "name": "protected", "host": "m", "memoryMiB": 2048, "haProtected": true, "srs": ["nfs"] },
                   { "name": "unprotected", "host": "m", "memoryMiB": 2048, "srs": ["nfs"] },
                   { "name": "elsewhere", "host": "c", "memoryMiB": 2048, "srs": ["nfs"] } ] }
        """;

    private static async Task<string> RefAsync(XapiClient client, string cls, string name) =>
        (await client.CallAsync(cls + ".get_by_name_label", [name]))!.AsArray()[0]!.GetValue<string>();

    [Fact]
    public async Task EnableHa_WhileAHostIsDown_IsHostOffline_AndWorksOnceItIsBack()
    {
        await using var lab = await Labs.StartAsync(Pool.Replace("HA", "false", StringComparison.Ordinal));
        await using var client = Labs.Client(lab);
        var b = await RefAsync(client, "host", "b");
        var nfs = await RefAsync(client, "SR", "nfs");
        await client.CallAsync("host.disable", [b]);
        await client.CallAsync("host.reboot", [b]);
        await Wait.ForEventAsync(lab, "host.down", "b");

        var e = await Assert.ThrowsAsync<XapiException>(() => client.CallAsync("pool.enable_ha", [new[] { nfs }, new Dictionary<string, string> { ["timeout"] = "180" }]));

        Assert.Equal("HOST_OFFLINE", e.Code);
        Assert.Equal([b], e.Parameters);
        var audit = lab.AuditJson();
        Assert.False(audit["pool"]!["haEnabled"]!.GetValue<bool>());
        Assert.Empty(Audit.Events(audit, "ha.enable"));

        await Wait.ForEventAsync(lab, "host.toolstackReady", "b");
        await client.CallAsync("pool.enable_ha", [new[] { nfs }, new Dictionary<string, string> { ["timeout"] = "180" }]);
        Assert.True(lab.AuditJson()["pool"]!["haEnabled"]!.GetValue<bool>());
    }

    [Fact]
    public async Task DisableAndEnableHa_TheAuditKeepsEverySetting()
    {
        await using var lab = await Labs.StartAsync(Pool.Replace("HA", "true", StringComparison.Ordinal));
        await using var client = Labs.Client(lab);
        var pool = (await client.CallAsync("pool.get_all", []))!.AsArray()[0]!.GetValue<string>();
        var nfs2 = await RefAsync(client, "SR", "nfs2");
        var before = lab.AuditJson()["pool"]!;
        Assert.True(before["haEnabled"]!.GetValue<bool>());
        Assert.Equal("180", before["haConfiguration"]!["timeout"]!.GetValue<string>());
        Assert.Equal(["nfs"], before["haHeartbeatSrs"]!.AsArray().Select(s => s!.GetValue<string>()));
        Assert.Equal("HA_IS_ENABLED", (await Assert.ThrowsAsync<XapiException>(() => client.CallAsync("pool.enable_ha", [Array.Empty<string>(), new Dictionary<string, string>()]))).Code);

        await client.CallAsync("pool.disable_ha", []);
        var off = lab.AuditJson();
        Assert.Single(Audit.Events(off, "ha.disable"));
        Assert.False(off["pool"]!["haEnabled"]!.GetValue<bool>());
        Assert.Empty(off["pool"]!["haHeartbeatSrs"]!.AsArray());
        Assert.Empty(off["pool"]!["haConfiguration"]!.AsObject());
        Assert.Equal("HA_NOT_ENABLED", (await Assert.ThrowsAsync<XapiException>(() => client.CallAsync("pool.disable_ha", []))).Code);

        await client.CallAsync("pool.set_ha_host_failures_to_tolerate", [pool, 2L]);
        await client.CallAsync("pool.set_ha_allow_overcommit", [pool, false]);
        await client.CallAsync("pool.enable_ha", [new[] { nfs2 }, new Dictionary<string, string> { ["timeout"] = "240" }]);

        var on = lab.AuditJson();
        var enable = Audit.Events(on, "ha.enable").Single();
        Assert.Equal(["nfs2"], enable["heartbeatSrs"]!.AsArray().Select(s => s!.GetValue<string>()));
        Assert.Equal("240", enable["configuration"]!["timeout"]!.GetValue<string>());
        Assert.Equal("240", enable["timeoutSeconds"]!.GetValue<string>());
        Assert.Equal(2, enable["hostFailuresToTolerate"]!.GetValue<long>());
        Assert.False(enable["allowOvercommit"]!.GetValue<bool>());
        Assert.True(on["pool"]!["haEnabled"]!.GetValue<bool>());
        Assert.Equal(["nfs2"], on["pool"]!["haHeartbeatSrs"]!.AsArray().Select(s => s!.GetValue<string>()));
        Assert.Equal(2, on["pool"]!["haHostFailuresToTolerate"]!.GetValue<long>());
        Assert.False(on["pool"]!["haAllowOvercommit"]!.GetValue<bool>());

        // The statefile is a VDI on the heartbeat SR, as XAPI records it.
        var record = (JsonObject)(await client.CallAsync("pool.get_record", [pool]))!;
        var statefile = Assert.Single(record["ha_statefiles"]!.AsArray())!.GetValue<string>();
        Assert.Equal(nfs2, (await client.CallAsync("VDI.get_SR", [statefile]))!.GetValue<string>());
        Assert.Equal("240", record["ha_configuration"]!["timeout"]!.GetValue<string>());

        // Without a timeout XAPI falls back to 60 s: the audit says so, as that is what fences hosts.
        await client.CallAsync("pool.disable_ha", []);
        await client.CallAsync("pool.enable_ha", [Array.Empty<string>(), new Dictionary<string, string>()]);
        var fallback = Audit.Events(lab.AuditJson(), "ha.enable")[1];
        Assert.Equal("60", fallback["timeoutSeconds"]!.GetValue<string>());
        Assert.Empty(fallback["configuration"]!.AsObject());
        Assert.Equal(["nfs"], fallback["heartbeatSrs"]!.AsArray().Select(s => s!.GetValue<string>()));
    }

    [Fact]
    public async Task HaOn_VmsWhichPreventEvacuation_AreTheUnprotectedOnes()
    {
        await using var lab = await Labs.StartAsync(Pool.Replace("HA", "true", StringComparison.Ordinal));
        await using var client = Labs.Client(lab);
        var m = await RefAsync(client, "host", "m");
        var unprotected = await RefAsync(client, "VM", "unprotected");

        var preventing = (JsonObject)(await client.CallAsync("host.get_vms_which_prevent_evacuation", [m]))!;

        var (vm, reason) = Assert.Single(preventing);
        Assert.Equal(unprotected, vm);
        Assert.Equal(["HOST_EVACUATE_VM_NOT_HA_PROTECTED", unprotected], reason!.AsArray().Select(r => r!.GetValue<string>()));
        var e = await Assert.ThrowsAsync<XapiException>(() => client.CallAsync("host.evacuate", [m]));
        Assert.Equal("HOST_EVACUATE_VM_NOT_HA_PROTECTED", e.Code);
        Assert.Equal("CANNOT_EVACUATE_HOST", (await Assert.ThrowsAsync<XapiException>(() => client.CallAsync("host.assert_can_evacuate", [m]))).Code);
        Assert.Empty(Audit.Events(lab.AuditJson(), "migration.start"));

        await client.CallAsync("pool.disable_ha", []);
        Assert.Empty((JsonObject)(await client.CallAsync("host.get_vms_which_prevent_evacuation", [m]))!);
        await client.CallAsync("host.assert_can_evacuate", [m]);
    }
}
