using RollingReboot.Lab.Scenario;

namespace RollingReboot.Cli.Tests.EndToEnd;

/// <summary>
/// Issue 17's report: a 200 GiB VM sharing its host's link needs longer than a fixed 30-minute migration timeout, whose
/// cancellation then escaped as "unexpected error (TaskCanceledException)". The bound now comes from the VM's size.
/// </summary>
public sealed class BigVmTests
{
    [Fact]
    public async Task Exec_200GiBVm_MigratesPastHalfAnHour_EveryHostRebootedOnce_NoUnexpectedError()
    {
        var scenario = ScenarioLoader.LoadFile(LabHarness.SharedScenario("big-vm-200g.json"));
        await using var lab = await LabHarness.StartAsync(scenario, timeScale: 400);
        var (planCode, plan, _) = await lab.RunCliAsync("--clustername", "CLUSTER-BIG", "--format", "json");
        Assert.Equal(0, planCode);
        var bounds = System.Text.Json.Nodes.JsonNode.Parse(plan)!["bounds"]!;
        Assert.Equal("db-200g", bounds["largestMigrationVm"]!.ToString());
        Assert.True(bounds["largestMigrationSeconds"]!.GetValue<double>() > 3 * 1800, "the plan shows the 200 GiB VM's bound, hours, not the 30-minute floor");
        var (code, stdout, stderr) = await lab.RunCliAsync("--clustername", "CLUSTER-BIG", "--exec");
        Assert.True(code == 0, $"exit {code}\n{stdout}\n{stderr}");
        Assert.DoesNotContain("unexpected error", stdout + stderr, StringComparison.Ordinal);
        Assert.DoesNotContain("Exception", stdout + stderr, StringComparison.Ordinal);

        var audit = lab.Audit();
        Assert.Empty(audit["violations"]!.AsArray());
        Assert.All(audit["hosts"]!.AsArray(), h => Assert.Equal(1, h!["bootCount"]!.GetValue<int>()));
        var events = audit["events"]!.AsArray();
        var start = events.First(e => e!["type"]!.ToString() == "migration.start" && e["vm"]?.ToString() == "db-200g")!["t"]!.GetValue<double>();
        var end = events.First(e => e!["type"]!.ToString() == "migration.end" && e["vm"]?.ToString() == "db-200g")!["t"]!.GetValue<double>();
        Assert.True(end - start > 1800, $"the 200 GiB migration took {end - start:0} s: the scenario must make it outlast 30 minutes");
        Assert.Empty(audit["pool"]!["otherConfig"]!.AsObject());
        Assert.True(audit["pool"]!["haEnabled"]!.GetValue<bool>());
    }
}
