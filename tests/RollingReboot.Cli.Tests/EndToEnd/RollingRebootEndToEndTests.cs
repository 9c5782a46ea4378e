using System.Text.Json.Nodes;
using RollingReboot.Lab.Scenario;

namespace RollingReboot.Cli.Tests.EndToEnd;

/// <summary>The real CLI against the lab over real sockets; every assertion is read from the lab's audit.</summary>
public sealed class RollingRebootEndToEndTests
{
    [Fact]
    public async Task Exec_SixHostPool_RebootsEveryHostOnceMasterFirstAndRestoresEverything()
    {
        var scenario = ScenarioLoader.LoadFile(LabHarness.SharedScenario("six-hosts-n-plus-1.json"));
        await using var lab = await LabHarness.StartAsync(scenario, timeScale: 400);
        var before = lab.Audit();

        var (code, stdout, stderr) = await lab.RunCliAsync("--clustername", "CLUSTER-1", "--exec");

        Assert.True(code == 0, $"exit {code}\nstdout:\n{stdout}\nstderr:\n{stderr}");
        var audit = lab.Audit();
        Assert.Empty(audit["violations"]!.AsArray());
        var hosts = audit["hosts"]!.AsArray();
        Assert.All(hosts, h => Assert.Equal(1, h!["bootCount"]!.GetValue<int>()));
        Assert.All(hosts, h => Assert.True(h!["enabled"]!.GetValue<bool>()));

        var events = audit["events"]!.AsArray().Select(e => e!.AsObject()).ToList();
        var reboots = events.Where(e => e["type"]!.ToString() == "host.reboot").Select(e => e["host"]!.ToString()).ToList();
        Assert.Equal(6, reboots.Count);
        Assert.Equal("xen1", reboots[0]);
        Assert.All(events.Where(e => e["type"]!.ToString() == "host.reboot"), e => Assert.Equal(0, e["residentVms"]!.GetValue<int>()));

        // Each non-master VM moved exactly once, the master's at most twice.
        var masterVms = before["vms"]!.AsArray().Where(v => v!["residentOn"]!.ToString() == "xen1").Select(v => v!["name"]!.ToString()).ToHashSet();
        foreach (var vm in audit["vms"]!.AsArray())
        {
            var name = vm!["name"]!.ToString();
            Assert.Equal("Running", vm["powerState"]!.ToString());
            var moves = vm["migrations"]!.GetValue<int>();
            if (masterVms.Contains(name))
            {
                Assert.InRange(moves, 1, 2);
            }
            else
            {
                Assert.Equal(1, moves);
            }
        }

        // HA back exactly as it was; CloudStack Managed with every host Up; the lock gone.
        var pool = audit["pool"]!.AsObject();
        var poolBefore = before["pool"]!.AsObject();
        Assert.True(pool["haEnabled"]!.GetValue<bool>());
        Assert.Equal(poolBefore["haConfiguration"]!.ToJsonString(), pool["haConfiguration"]!.ToJsonString());
        Assert.Equal(poolBefore["haHeartbeatSrs"]!.ToJsonString(), pool["haHeartbeatSrs"]!.ToJsonString());
        Assert.Equal(poolBefore["haHostFailuresToTolerate"]!.ToJsonString(), pool["haHostFailuresToTolerate"]!.ToJsonString());
        Assert.Equal(poolBefore["haAllowOvercommit"]!.ToJsonString(), pool["haAllowOvercommit"]!.ToJsonString());
        Assert.Empty(pool["otherConfig"]!.AsObject());
        var cs = audit["cloudstack"]!.AsObject();
        Assert.Equal("Managed", cs["managedState"]!.ToString());
        Assert.All(cs["hosts"]!.AsArray(), h => Assert.Equal("Up", h!["state"]!.ToString()));
    }

    [Fact]
    public async Task DryRun_BlockersScenario_Exits3ListingEveryBlockerAndChangesNothing()
    {
        var scenario = ScenarioLoader.LoadFile(LabHarness.SharedScenario("three-hosts-with-blockers.json"));
        await using var lab = await LabHarness.StartAsync(scenario, timeScale: 100);

        var (code, stdout, stderr) = await lab.RunCliAsync("--clustername", "POOL-B", "--format", "json");

        Assert.True(code == 3, $"exit {code}\nstdout:\n{stdout}\nstderr:\n{stderr}");
        var plan = JsonNode.Parse(stdout)!.AsObject();
        var blockedVms = plan["blockers"]!.AsArray().Select(b => b!["vm"]?.ToString()).ToHashSet();
        Assert.Contains("db-local", blockedVms);
        Assert.Contains("legacy-hvm", blockedVms);
        Assert.Contains("web-1", blockedVms);
        var audit = lab.Audit();
        Assert.DoesNotContain(audit["events"]!.AsArray(), e => e!["type"]!.ToString() is "host.disable" or "host.reboot" or "ha.disable" or "migration.start" or "pool.otherConfig.add");
    }

    [Fact]
    public async Task Exec_ReturnVms_EveryVmBackOnItsOriginalHost()
    {
        const string scenario = """
            {
              "name": "return", "pool": { "name": "PR" },
              "migration": { "setupSeconds": 3 },
              "hosts": [ { "name": "r1", "master": true, "memoryMiB": 65536, "rebootSeconds": 60 }, { "name": "r2", "memoryMiB": 65536, "rebootSeconds": 60 },
                         { "name": "r3", "memoryMiB": 65536, "rebootSeconds": 60 } ],
              "generate": [ { "hosts": ["r1", "r2", "r3"], "perHost": 4, "memoryMiB": [2048, 4096], "seed": 9 } ]
            }
            """;
        await using var lab = await LabHarness.StartAsync(scenario, timeScale: 200);
        var before = lab.Audit()["vms"]!.AsArray().ToDictionary(v => v!["name"]!.ToString(), v => v!["residentOn"]!.ToString());

        var reportJson = Path.Combine(lab.StateDir, "report.json");
        var reportMd = Path.Combine(lab.StateDir, "report.md");
        var (code, stdout, stderr) = await lab.RunCliAsync("--clustername", "PR", "--exec", "--return-vms", "--report", reportMd, "--report-json", reportJson);

        Assert.True(code == 0, $"exit {code}\n{stdout}\n{stderr}");
        var audit = lab.Audit();
        Assert.Empty(audit["violations"]!.AsArray());
        foreach (var vm in audit["vms"]!.AsArray())
        {
            Assert.Equal(before[vm!["name"]!.ToString()], vm["residentOn"]!.ToString());
        }

        Assert.Contains("migrated back", stdout, StringComparison.Ordinal);
        var report = JsonNode.Parse(File.ReadAllText(reportJson))!;
        Assert.Equal("Done", report["outcome"]!.ToString());
        Assert.Equal(3, report["hosts"]!.AsArray().Count);
        Assert.Contains("gantt", File.ReadAllText(reportMd), StringComparison.Ordinal);
        // Where each VM ended: all twelve on their original hosts, as the audit shows.
        var returns = report["vmReturns"]!.AsArray();
        Assert.Equal(before.Count, returns.Count);
        Assert.All(returns, v => Assert.True(v!["home"]!.GetValue<bool>()));
        Assert.All(returns, v => Assert.Equal(before[v!["vm"]!.ToString()], v["endedOn"]!.ToString()));
        Assert.Contains($"VMs on their original hosts: {before.Count} of {before.Count}", stdout, StringComparison.Ordinal);
    }
}
