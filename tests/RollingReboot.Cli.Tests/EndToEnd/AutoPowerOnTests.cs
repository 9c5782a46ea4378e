namespace RollingReboot.Cli.Tests.EndToEnd;

/// <summary>
/// A pool with other_config:auto_poweron "true": each host's boot would start the halted VMs marked auto_poweron
/// (xen-api scripts/xapi-autostart-vms) into the room the plan counted on. The run switches it off and back.
/// </summary>
public sealed class AutoPowerOnTests
{
    private const string Scenario = """
        {
          "name": "AP", "pool": { "name": "AP", "ha": { "enabled": true, "heartbeatSr": "nfs" }, "otherConfig": { "auto_poweron": "true" } },
          "cloudstack": { "clusterName": "APC" },
          "migration": { "setupSeconds": 2 },
          "hosts": [ { "name": "ap1", "memoryMiB": 32768, "rebootSeconds": 60 }, { "name": "ap2", "memoryMiB": 32768, "rebootSeconds": 60 },
                     { "name": "ap3", "memoryMiB": 32768, "rebootSeconds": 60 } ],
          "srs": [ { "name": "nfs", "shared": true } ],
          "vms": [ { "name": "parked-1", "host": "ap2", "memoryMiB": 8192, "powerState": "Halted", "srs": ["nfs"], "otherConfig": { "auto_poweron": "true" } },
                   { "name": "parked-2", "host": "ap3", "memoryMiB": 8192, "powerState": "Halted", "srs": ["nfs"], "otherConfig": { "auto_poweron": "true" } } ],
          "generate": [ { "hosts": ["ap1", "ap2", "ap3"], "perHost": 2, "memoryMiB": [4096], "seed": 5 } ]
        }
        """;

    [Fact]
    public async Task Exec_PoolWithAutoPowerOn_NoHaltedVmStartsMidRun_SettingPutBack()
    {
        await using var lab = await LabHarness.StartAsync(Scenario, timeScale: 200);
        var (code, stdout, stderr) = await lab.RunCliAsync("--clustername", "APC", "--exec");
        Assert.True(code == 0, $"exit {code}\n{stdout}\n{stderr}");

        var audit = lab.Audit();
        Assert.Empty(audit["violations"]!.AsArray());
        Assert.All(audit["hosts"]!.AsArray(), h => Assert.Equal(1, h!["bootCount"]!.GetValue<int>()));
        Assert.DoesNotContain(audit["events"]!.AsArray(), e => e!["type"]!.ToString() == "vm.autostart");
        var otherConfig = audit["pool"]!["otherConfig"]!.AsObject();
        Assert.Equal("true", otherConfig["auto_poweron"]!.ToString());
        Assert.Single(otherConfig);
        Assert.Contains("auto_poweron back to true", stdout, StringComparison.Ordinal);
    }
}
