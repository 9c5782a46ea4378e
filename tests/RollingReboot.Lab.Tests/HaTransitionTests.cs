using RollingReboot.Xapi;

namespace RollingReboot.Lab.Tests;

/// <summary>HA transitions that take time, as on real pools (ocaml/xapi/xapi_ha.ml waits on every host's HA daemon).</summary>
public sealed class HaTransitionTests
{
    private const string Scenario = """
        { "pool": { "ha": { "enabled": true, "heartbeatSr": "nfs", "transitionSeconds": 120 } },
          "hosts": [ { "name": "t1", "memoryMiB": 65536 }, { "name": "t2", "memoryMiB": 65536 } ],
          "srs": [ { "name": "nfs", "shared": true } ] }
        """;

    [Fact]
    public async Task AsyncDisableHa_TakesTheScenariosTime_ASecondHaCallIsRefusedMeanwhile()
    {
        await using var lab = await Labs.StartAsync(Scenario);
        await using var client = Labs.Client(lab);
        var pool = (await client.CallAsync("pool.get_all", []))!.AsArray()[0]!.GetValue<string>();
        var task = (await client.CallAsync("Async.pool.disable_ha", []))!.GetValue<string>();
        var started = Audit.Now(lab.AuditJson());

        Assert.Equal("pending", (await client.CallAsync("task.get_status", [task]))!.GetValue<string>());
        Assert.Equal("ha_disable", (await client.CallAsync("pool.get_current_operations", [pool]))!.AsObject().Single().Value!.GetValue<string>());
        var e = await Assert.ThrowsAsync<XapiException>(() => client.CallAsync("pool.disable_ha", []));
        Assert.Equal("HA_DISABLE_IN_PROGRESS", e.Code);
        Assert.True((await client.CallAsync("pool.get_ha_enabled", [pool]))!.GetValue<bool>());

        await Wait.ForEventAsync(lab, "ha.disable");
        var done = Audit.Events(lab.AuditJson(), "ha.disable").Single();
        Assert.InRange(Audit.T(done) - started, 110, 130);
        Assert.False((await client.CallAsync("pool.get_ha_enabled", [pool]))!.GetValue<bool>());
        await Wait.UntilAsync(async () => (await client.CallAsync("task.get_status", [task]))!.GetValue<string>() == "success", "the task succeeds");
    }
}
