namespace RollingReboot.Cli.Tests.EndToEnd;

/// <summary>A pool whose HA transitions take minutes (real pools do): the run follows pool.disable_ha / enable_ha as tasks.</summary>
public sealed class SlowHaTests
{
    private const string Scenario = """
        {
          "name": "SH", "pool": { "name": "SH", "ha": { "enabled": true, "heartbeatSr": "nfs", "transitionSeconds": 240, "hostFailuresToTolerate": 1 } },
          "cloudstack": { "clusterName": "SHC" },
          "migration": { "setupSeconds": 2 },
          "hosts": [ { "name": "sh1", "memoryMiB": 32768, "rebootSeconds": 60 }, { "name": "sh2", "memoryMiB": 32768, "rebootSeconds": 60 },
                     { "name": "sh3", "memoryMiB": 32768, "rebootSeconds": 60 } ],
          "srs": [ { "name": "nfs", "shared": true } ],
          "generate": [ { "hosts": ["sh1", "sh2", "sh3"], "perHost": 2, "memoryMiB": [2048], "seed": 4 } ]
        }
        """;

    [Fact]
    public async Task Exec_HaTakesFourMinutesEachWay_RunFollowsTheTasks_HaBackWithItsSettings()
    {
        await using var lab = await LabHarness.StartAsync(Scenario, timeScale: 200);
        var before = lab.Audit();
        var (code, stdout, stderr) = await lab.RunCliAsync("--clustername", "SHC", "--exec");
        Assert.True(code == 0, $"exit {code}\n{stdout}\n{stderr}");
        var audit = lab.Audit();
        Assert.Empty(audit["violations"]!.AsArray());
        Assert.All(audit["hosts"]!.AsArray(), h => Assert.Equal(1, h!["bootCount"]!.GetValue<int>()));
        foreach (var key in new[] { "haEnabled", "haConfiguration", "haHeartbeatSrs", "haHostFailuresToTolerate", "haAllowOvercommit" })
        {
            Assert.Equal(before["pool"]![key]!.ToJsonString(), audit["pool"]![key]!.ToJsonString());
        }

        // No host went down while HA was still on: the first reboot came after HA was off.
        var events = audit["events"]!.AsArray();
        var off = events.First(e => e!["type"]!.ToString() == "ha.disable")!["t"]!.GetValue<double>();
        var firstDown = events.First(e => e!["type"]!.ToString() == "host.down")!["t"]!.GetValue<double>();
        Assert.True(firstDown > off);
    }
}
