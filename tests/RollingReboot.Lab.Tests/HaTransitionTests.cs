using RollingReboot.Xapi;
using RollingReboot.Xapi.Wire;

namespace RollingReboot.Lab.Tests;

/// <summary>HA transitions that take time, as on real pools (ocaml/xapi/xapi_ha.ml waits on every host's HA daemon).</summary>
public sealed class HaTransitionTests
{
    private static string Scenario(double transitionSeconds) => $$"""
        { "pool": { "ha": { "enabled": true, "heartbeatSr": "nfs", "transitionSeconds": {{transitionSeconds.ToString(System.Globalization.CultureInfo.InvariantCulture)}} } },
          "hosts": [ { "name": "t1", "memoryMiB": 65536 }, { "name": "t2", "memoryMiB": 65536 } ],
          "srs": [ { "name": "nfs", "shared": true } ] }
        """;

    [Fact]
    public async Task AsyncDisableHa_WhileInProgress_PendingTaskAndOperation_ASecondHaCallIsRefused()
    {
        // A transition far longer than the test (a million simulated seconds): whatever the machine's speed, it is under way.
        await using var lab = await Labs.StartAsync(Scenario(1_000_000));
        await using var client = Labs.Client(lab);
        var pool = (await client.CallAsync("pool.get_all", []))!.AsArray()[0]!.GetValue<string>();
        var task = (await client.CallAsync("Async.pool.disable_ha", []))!.GetValue<string>();

        Assert.Equal("pending", (await client.CallAsync("task.get_status", [task]))!.GetValue<string>());
        Assert.Equal("ha_disable", (await client.CallAsync("pool.get_current_operations", [pool]))!.AsObject().Single().Value!.GetValue<string>());
        var e = await Assert.ThrowsAsync<XapiException>(() => client.CallAsync("pool.disable_ha", []));
        Assert.Equal("HA_DISABLE_IN_PROGRESS", e.Code);
        Assert.True((await client.CallAsync("pool.get_ha_enabled", [pool]))!.GetValue<bool>());
        Assert.Empty(Audit.Events(lab.AuditJson(), "ha.disable"));
    }

    [Fact]
    public async Task AsyncDisableHa_TakesTheScenariosTime_InSimulatedSeconds()
    {
        await using var lab = await Labs.StartAsync(Scenario(120));
        await using var client = Labs.Client(lab);
        var pool = (await client.CallAsync("pool.get_all", []))!.AsArray()[0]!.GetValue<string>();
        var task = (await client.CallAsync("Async.pool.disable_ha", []))!.GetValue<string>();

        await Wait.UntilAsync(async () => (await client.CallAsync("task.get_status", [task]))!.GetValue<string>() == "success", "the task succeeds");

        // From the task's creation (the call, on the lab's simulated clock, to the second) to the transition's audit event
        // (stamped at its exact simulated moment): the scenario's 120 s, not the wall time the test took.
        Assert.True(XapiDateTime.TryParse((await client.CallAsync("task.get_created", [task]))!.GetValue<string>(), out var created));
        var done = Audit.T(Audit.Events(lab.AuditJson(), "ha.disable").Single());
        Assert.InRange(done - (created - lab.TimeOrigin).TotalSeconds, 119, 121);
        Assert.Single(Audit.Events(lab.AuditJson(), "ha.disable"));
        Assert.False((await client.CallAsync("pool.get_ha_enabled", [pool]))!.GetValue<bool>());
    }
}
