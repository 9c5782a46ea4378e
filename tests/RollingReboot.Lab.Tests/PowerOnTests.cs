using RollingReboot.Xapi;

namespace RollingReboot.Lab.Tests;

/// <summary>
/// host.power_on as xen-api has it: ocaml/xapi/xapi_host_helpers.ml valid_operations (first error wins: HOST_IS_LIVE
/// [host] while host_metrics.live, then HOST_POWER_ON_MODE_DISABLED [] without a power_on_mode), xapi_host.ml power_on
/// (the plugin must answer "True", else failwith, INTERNAL_ERROR through exnHelper.ml), allowed_operations of a host
/// thought down.
/// </summary>
public sealed class PowerOnTests
{
    private const string Scenario = """
        { "pool": { "toolstackStartSeconds": 2 },
          "hosts": [ { "name": "m", "master": true, "memoryMiB": 65536, "rebootSeconds": 20 },
                     { "name": "ilo", "memoryMiB": 65536, "rebootSeconds": 20, "powerOnMode": "iLO" },
                     { "name": "none", "memoryMiB": 65536, "rebootSeconds": 20 },
                     { "name": "broken", "memoryMiB": 65536, "rebootSeconds": 20, "powerOnMode": "DRAC", "powerOnFails": true } ] }
        """;

    private static async Task<string> HaltAsync(XapiClient client, LabRuntime lab, string name)
    {
        var host = (await client.CallAsync("host.get_by_name_label", [name]))!.AsArray()[0]!.GetValue<string>();
        await client.CallAsync("host.disable", [host]);
        await client.CallAsync("host.shutdown", [host]);
        await Wait.ForEventAsync(lab, "host.down", name);
        return host;
    }

    [Fact]
    public async Task PowerOn_LiveHost_IsHostIsLive_WhateverItsMode()
    {
        await using var lab = await Labs.StartAsync(Scenario);
        await using var client = Labs.Client(lab);
        foreach (var name in new[] { "ilo", "none" })
        {
            var host = (await client.CallAsync("host.get_by_name_label", [name]))!.AsArray()[0]!.GetValue<string>();
            var e = await Assert.ThrowsAsync<XapiException>(() => client.CallAsync("host.power_on", [host]));
            Assert.Equal("HOST_IS_LIVE", e.Code);
            Assert.Equal([host], e.Parameters);
            Assert.DoesNotContain("power_on", (await client.CallAsync("host.get_allowed_operations", [host]))!.AsArray().Select(x => x!.GetValue<string>()));
        }
    }

    [Fact]
    public async Task PowerOn_DownHostWithAMode_BootsIt_AndIsAllowedWhileDown()
    {
        await using var lab = await Labs.StartAsync(Scenario);
        await using var client = Labs.Client(lab);
        var host = await HaltAsync(client, lab, "ilo");
        Assert.Equal("iLO", (await client.CallAsync("host.get_power_on_mode", [host]))!.GetValue<string>());
        Assert.Equal(["power_on"], (await client.CallAsync("host.get_allowed_operations", [host]))!.AsArray().Select(x => x!.GetValue<string>()));

        await client.CallAsync("host.power_on", [host]);
        await Wait.ForEventAsync(lab, "host.up", "ilo");
        Assert.Equal(1, Audit.Host(lab.AuditJson(), "ilo")["bootCount"]!.GetValue<int>());
    }

    [Fact]
    public async Task PowerOn_DownHostWithoutAMode_IsModeDisabled_AndStaysDown()
    {
        await using var lab = await Labs.StartAsync(Scenario);
        await using var client = Labs.Client(lab);
        var host = await HaltAsync(client, lab, "none");
        var e = await Assert.ThrowsAsync<XapiException>(() => client.CallAsync("host.power_on", [host]));
        Assert.Equal("HOST_POWER_ON_MODE_DISABLED", e.Code);
        Assert.Empty(e.Parameters);
        Assert.Empty((await client.CallAsync("host.get_allowed_operations", [host]))!.AsArray());
        Assert.Empty(Audit.Events(lab.AuditJson(), "host.up", "none"));
    }

    [Fact]
    public async Task PowerOn_PluginThatFails_IsInternalError_AsFailwithIsReported()
    {
        await using var lab = await Labs.StartAsync(Scenario);
        await using var client = Labs.Client(lab);
        var host = await HaltAsync(client, lab, "broken");
        var e = await Assert.ThrowsAsync<XapiException>(() => client.CallAsync("host.power_on", [host]));
        Assert.Equal("INTERNAL_ERROR", e.Code);
        Assert.Equal(["Failure(\"The host failed to power on.\")"], e.Parameters);
        Assert.Single(Audit.Events(lab.AuditJson(), "host.powerOn.failed", "broken"));
    }
}
