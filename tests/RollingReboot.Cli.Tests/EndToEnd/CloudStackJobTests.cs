using System.Text.Json.Nodes;

namespace RollingReboot.Cli.Tests.EndToEnd;

/// <summary>A CloudStack job still running on the cluster (a migration, a host into maintenance) blocks the run.</summary>
public sealed class CloudStackJobTests
{
    private const string Migrate = "org.apache.cloudstack.api.command.admin.vm.MigrateVMCmd";

    private static string Scenario(string jobs) => $$"""
        {
          "name": "jobs", "pool": { "name": "PJ" }, "cloudstack": { "clusterName": "CJ", "asyncJobs": [ {{jobs}} ] },
          "migration": { "setupSeconds": 2 },
          "hosts": [ { "name": "j1", "memoryMiB": 65536, "rebootSeconds": 30 }, { "name": "j2", "memoryMiB": 65536, "rebootSeconds": 30 },
                     { "name": "j3", "memoryMiB": 65536, "rebootSeconds": 30 } ],
          "vms": [ { "name": "i-2-1-VM", "host": "j2", "memoryMiB": 2048 }, { "name": "i-2-2-VM", "host": "j3", "memoryMiB": 2048 },
                   { "name": "i-2-3-VM", "host": null, "powerState": "Halted", "memoryMiB": 2048 } ]
        }
        """;

    [Fact]
    public async Task MigrationRunningOnAVmOfTheCluster_Exec_Exit3_NothingChanged()
    {
        await using var lab = await LabHarness.StartAsync(Scenario($$"""{ "cmd": "{{Migrate}}", "vm": "i-2-1-VM", "account": "tenant" }"""), 100);

        var (code, stdout, stderr) = await lab.RunCliAsync("--clustername", "CJ", "--exec");

        Assert.True(code == 3, $"exit {code}\n{stdout}\n{stderr}");
        Assert.Contains("MigrateVMCmd", stdout + stderr, StringComparison.Ordinal);
        Assert.Contains("VM i-2-1-VM on j2", stdout + stderr, StringComparison.Ordinal);
        var audit = lab.Audit();
        Assert.DoesNotContain(audit["events"]!.AsArray(), e => e!["type"]!.ToString() is "host.disable" or "ha.disable" or "pool.otherConfig.add" or "cloudstack.managedState" or "migration.start");
        Assert.Empty(audit["pool"]!["otherConfig"]!.AsObject());
        Assert.Equal("Managed", audit["cloudstack"]!["managedState"]!.ToString());
        Assert.All(audit["hosts"]!.AsArray(), h => Assert.Equal(0, h!["bootCount"]!.GetValue<int>()));
    }

    [Fact]
    public async Task Plan_NamesTheJobsOnTheClusterAndItsHosts_NotAJobOnAVmThatRunsNowhere()
    {
        await using var lab = await LabHarness.StartAsync(Scenario($$"""
            { "cmd": "org.apache.cloudstack.api.command.admin.host.PrepareForMaintenanceCmd", "host": "j3" },
            { "cmd": "org.apache.cloudstack.api.command.user.vm.StartVMCmd", "vm": "i-2-3-VM" }
            """), 100);

        var (code, stdout, stderr) = await lab.RunCliAsync("--clustername", "CJ", "--format", "json");

        Assert.True(code == 3, $"exit {code}\n{stdout}\n{stderr}");
        var blockers = JsonNode.Parse(stdout)!["blockers"]!.AsArray();
        var job = Assert.Single(blockers, b => b!["code"]!.ToString() == "CLOUDSTACK_JOB_RUNNING")!;
        Assert.Equal("j3", job["host"]!.ToString());
        Assert.Contains("(PrepareForMaintenanceCmd) is running on host j3", job["message"]!.ToString(), StringComparison.Ordinal);
        Assert.Contains("cmk query asyncjobresult jobid=", job["fix"]!.ToString(), StringComparison.Ordinal);
    }

    [Fact]
    public async Task NoJobRunning_PlanCanRun()
    {
        // The same pool with a job that has already ended: nothing blocks.
        await using var lab = await LabHarness.StartAsync(Scenario($$"""{ "cmd": "{{Migrate}}", "vm": "i-2-1-VM", "durationSeconds": 0.001 }"""), 100);

        var (code, stdout, stderr) = await lab.RunCliAsync("--clustername", "CJ", "--format", "json");

        Assert.True(code == 0, $"exit {code}\n{stdout}\n{stderr}");
        Assert.Empty(JsonNode.Parse(stdout)!["blockers"]!.AsArray());
    }
}
