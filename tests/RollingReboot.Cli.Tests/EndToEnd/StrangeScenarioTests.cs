using System.Text.Json.Nodes;

namespace RollingReboot.Cli.Tests.EndToEnd;

/// <summary>Pools that are not the textbook six hosts: the same guarantees must hold.</summary>
public sealed class StrangeScenarioTests
{
    private static async Task<(int Code, string Out, string Err, JsonObject Before, JsonObject After)> RunAsync(string scenario, string cluster, params string[] extra)
    {
        await using var lab = await LabHarness.StartAsync(scenario, timeScale: 200);
        var before = lab.Audit();
        var (code, stdout, stderr) = await lab.RunCliAsync(["--clustername", cluster, "--exec", .. extra]);
        return (code, stdout, stderr, before, lab.Audit());
    }

    private static void AssertWhole(JsonObject before, JsonObject after, IReadOnlyCollection<string> rebooted)
    {
        Assert.Empty(after["violations"]!.AsArray());
        var states = before["vms"]!.AsArray().ToDictionary(v => v!["name"]!.ToString(), v => v!["powerState"]!.ToString());
        Assert.All(after["vms"]!.AsArray(), v => Assert.Equal(states.GetValueOrDefault(v!["name"]!.ToString(), "Running"), v["powerState"]!.ToString()));
        var enabledBefore = before["hosts"]!.AsArray().ToDictionary(h => h!["name"]!.ToString(), h => h!["enabled"]!.GetValue<bool>());
        foreach (var h in after["hosts"]!.AsArray())
        {
            var name = h!["name"]!.ToString();
            Assert.Equal(rebooted.Contains(name) ? 1 : 0, h["bootCount"]!.GetValue<int>());
            Assert.Equal(enabledBefore[name], h["enabled"]!.GetValue<bool>());
        }

        foreach (var key in new[] { "haEnabled", "haConfiguration", "haHeartbeatSrs", "haHostFailuresToTolerate", "haAllowOvercommit" })
        {
            Assert.Equal(before["pool"]![key]!.ToJsonString(), after["pool"]![key]!.ToJsonString());
        }

        Assert.Empty(after["pool"]!["otherConfig"]!.AsObject());
        if (after["cloudstack"] is JsonObject cs)
        {
            Assert.Equal(before["cloudstack"]!["managedState"]!.ToString(), cs["managedState"]!.ToString());
        }
    }

    [Fact]
    public async Task OldXmlRpcOnlyPool_NoCloudStack_MasterLastInList_Completes()
    {
        const string scenario = """
            {
              "name": "old", "pool": { "name": "OLDPOOL", "xapiVersion": "1.250.0", "jsonRpc": false },
              "migration": { "setupSeconds": 3 },
              "hosts": [ { "name": "o1", "memoryMiB": 32768, "rebootSeconds": 60 }, { "name": "o2", "memoryMiB": 32768, "rebootSeconds": 60 },
                         { "name": "o3", "master": true, "memoryMiB": 32768, "rebootSeconds": 60 } ],
              "vms": [ { "name": "halted", "host": null, "powerState": "Halted", "memoryMiB": 1024 } ],
              "generate": [ { "hosts": ["o1", "o2", "o3"], "perHost": 3, "memoryMiB": [1024, 2048], "seed": 2 } ]
            }
            """;
        var (code, stdout, stderr, before, after) = await RunAsync(scenario, "OLDPOOL");
        Assert.True(code == 0, $"exit {code}\n{stdout}\n{stderr}");
        AssertWhole(before, after, ["o1", "o2", "o3"]);
        var reboots = after["events"]!.AsArray().Where(e => e!["type"]!.ToString() == "host.reboot").Select(e => e!["host"]!.ToString()).ToList();
        Assert.Equal("o3", reboots[0]);
    }

    [Fact]
    public async Task TwoHostPoolWithHa_Completes()
    {
        const string scenario = """
            {
              "name": "two", "pool": { "name": "TWO", "ha": { "enabled": true, "timeoutSeconds": 90, "hostFailuresToTolerate": 0, "allowOvercommit": false, "heartbeatSr": "nfs" } },
              "cloudstack": { "clusterName": "TWO-C" },
              "migration": { "setupSeconds": 3 },
              "hosts": [ { "name": "t1", "memoryMiB": 32768, "rebootSeconds": 60 }, { "name": "t2", "memoryMiB": 32768, "rebootSeconds": 60 } ],
              "srs": [ { "name": "nfs", "shared": true } ],
              "generate": [ { "hosts": ["t1", "t2"], "perHost": 3, "memoryMiB": [2048], "seed": 2 } ]
            }
            """;
        var (code, stdout, stderr, before, after) = await RunAsync(scenario, "TWO-C");
        Assert.True(code == 0, $"exit {code}\n{stdout}\n{stderr}");
        AssertWhole(before, after, ["t1", "t2"]);
    }

    [Fact]
    public async Task OperatorDisabledHost_SkippedAndLeftDisabled_OthersRebooted()
    {
        const string scenario = """
            {
              "name": "disabled", "pool": { "name": "DIS" }, "cloudstack": { "clusterName": "DIS-C" },
              "migration": { "setupSeconds": 3 },
              "hosts": [ { "name": "d1", "master": true, "memoryMiB": 32768, "rebootSeconds": 60 }, { "name": "d2", "memoryMiB": 32768, "rebootSeconds": 60, "enabled": false },
                         { "name": "d3", "memoryMiB": 32768, "rebootSeconds": 60 }, { "name": "d4", "memoryMiB": 32768, "rebootSeconds": 60 } ],
              "generate": [ { "hosts": ["d1", "d3", "d4"], "perHost": 3, "memoryMiB": [2048], "seed": 4 } ]
            }
            """;
        var (code, stdout, stderr, before, after) = await RunAsync(scenario, "DIS-C");
        // Everything else put back; CloudStack cannot connect a host XAPI shows disabled once the cluster is Managed again
        // (XenServerConnectionPool.connect): d2 is Alert there. It was disabled before the run and is left so: the report
        // says so and what would connect it ('xe host-enable host=d2'), as a note, not a failure of the restore.
        Assert.True(code == 0, $"exit {code}\n{stdout}\n{stderr}");
        Assert.Contains("as it was disabled before the run", stdout, StringComparison.Ordinal);
        AssertWhole(before, after, ["d1", "d3", "d4"]);
        Assert.Contains("xe host-enable host=d2", stdout, StringComparison.Ordinal);
        var hosts = after["cloudstack"]!["hosts"]!.AsArray().ToDictionary(h => h!["name"]!.ToString(), h => h!["state"]!.ToString());
        Assert.Equal("Alert", hosts["d2"]);
        Assert.All(new[] { "d1", "d3", "d4" }, h => Assert.Equal("Up", hosts[h]));
    }

    [Fact]
    public async Task OnlyNeedingReboot_HostsWithoutPendingRebootUntouched()
    {
        const string scenario = """
            {
              "name": "needing", "pool": { "name": "NEED" },
              "migration": { "setupSeconds": 3 },
              "hosts": [ { "name": "n1", "master": true, "memoryMiB": 32768, "rebootSeconds": 60, "pendingReboot": false }, { "name": "n2", "memoryMiB": 32768, "rebootSeconds": 60 },
                         { "name": "n3", "memoryMiB": 32768, "rebootSeconds": 60, "pendingReboot": false }, { "name": "n4", "memoryMiB": 32768, "rebootSeconds": 60 } ],
              "generate": [ { "hosts": ["n1", "n2", "n3", "n4"], "perHost": 2, "memoryMiB": [2048], "seed": 4 } ]
            }
            """;
        var (code, stdout, stderr, before, after) = await RunAsync(scenario, "NEED", "--only-needing-reboot");
        Assert.True(code == 0, $"exit {code}\n{stdout}\n{stderr}");
        AssertWhole(before, after, ["n2", "n4"]);
    }

    [Fact]
    public async Task AntiAffinityGroups_RespectedAtTheEnd_AndNoVmsOnEmptyHosts()
    {
        const string scenario = """
            {
              "name": "affinity", "pool": { "name": "AFF" }, "cloudstack": { "clusterName": "AFF-C" },
              "migration": { "setupSeconds": 3 },
              "hosts": [ { "name": "a1", "master": true, "memoryMiB": 32768, "rebootSeconds": 60 }, { "name": "a2", "memoryMiB": 32768, "rebootSeconds": 60 },
                         { "name": "a3", "memoryMiB": 32768, "rebootSeconds": 60 }, { "name": "a4", "memoryMiB": 32768, "rebootSeconds": 60 } ],
              "vms": [ { "name": "i-5-1-VM", "host": "a1", "memoryMiB": 2048, "affinityGroup": "web" }, { "name": "i-5-2-VM", "host": "a2", "memoryMiB": 2048, "affinityGroup": "web" },
                       { "name": "i-5-3-VM", "host": "a3", "memoryMiB": 2048, "affinityGroup": "web" } ]
            }
            """;
        var (code, stdout, stderr, before, after) = await RunAsync(scenario, "AFF-C");
        Assert.True(code == 0, $"exit {code}\n{stdout}\n{stderr}");
        AssertWhole(before, after, ["a1", "a2", "a3", "a4"]);
        var webHosts = after["vms"]!.AsArray().Select(v => v!["residentOn"]!.ToString()).ToList();
        Assert.Equal(webHosts.Count, webHosts.Distinct().Count());
    }

    [Fact]
    public async Task ConnectionsResetAfterCallsRan_LostRepliesResolved_Completes()
    {
        const string scenario = """
            {
              "name": "reset", "pool": { "name": "RST", "ha": { "enabled": true, "heartbeatSr": "nfs" } },
              "migration": { "setupSeconds": 3 },
              "hosts": [ { "name": "x1", "master": true, "memoryMiB": 32768, "rebootSeconds": 60 }, { "name": "x2", "memoryMiB": 32768, "rebootSeconds": 60 },
                         { "name": "x3", "memoryMiB": 32768, "rebootSeconds": 60 } ],
              "srs": [ { "name": "nfs", "shared": true } ],
              "generate": [ { "hosts": ["x1", "x2", "x3"], "perHost": 3, "memoryMiB": [2048], "seed": 6 } ],
              "faults": [ { "type": "connectionReset", "times": 6, "probability": 0.03, "seed": 21 } ]
            }
            """;
        var (code, stdout, stderr, before, after) = await RunAsync(scenario, "RST");
        Assert.True(code == 0, $"exit {code}\n{stdout}\n{stderr}");
        AssertWhole(before, after, ["x1", "x2", "x3"]);
    }

    [Fact]
    public async Task MaxHostsDownTwo_HalfFullPool_RebootsInWavesFasterThanOneAtATime()
    {
        const string scenario = """
            {
              "name": "waves", "pool": { "name": "WAVE" },
              "migration": { "setupSeconds": 3 },
              "hosts": [ { "name": "w1", "master": true, "memoryMiB": 65536, "rebootSeconds": 200 }, { "name": "w2", "memoryMiB": 65536, "rebootSeconds": 200 },
                         { "name": "w3", "memoryMiB": 65536, "rebootSeconds": 200 }, { "name": "w4", "memoryMiB": 65536, "rebootSeconds": 200 },
                         { "name": "w5", "memoryMiB": 65536, "rebootSeconds": 200 } ],
              "generate": [ { "hosts": ["w1", "w2", "w3", "w4", "w5"], "perHost": 4, "memoryMiB": [2048, 4096], "seed": 8 } ]
            }
            """;
        var (code, stdout, stderr, before, after) = await RunAsync(scenario, "WAVE", "--max-hosts-down", "2");
        Assert.True(code == 0, $"exit {code}\n{stdout}\n{stderr}");
        AssertWhole(before, after, ["w1", "w2", "w3", "w4", "w5"]);

        // Two members were down at the same time at least once, and never the master with another host.
        var down = new HashSet<string>();
        var maxDown = 0;
        foreach (var e in after["events"]!.AsArray())
        {
            var type = e!["type"]!.ToString();
            if (type == "host.down")
            {
                down.Add(e["host"]!.ToString());
                Assert.False(down.Contains("w1") && down.Count > 1, "the master went down with another host");
                maxDown = Math.Max(maxDown, down.Count);
            }
            else if (type == "host.up")
            {
                down.Remove(e["host"]!.ToString());
            }
        }

        Assert.Equal(2, maxDown);
        Assert.Contains("Wave", stderr, StringComparison.Ordinal);
    }
}
