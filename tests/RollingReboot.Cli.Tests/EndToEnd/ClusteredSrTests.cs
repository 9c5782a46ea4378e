using RollingReboot.Lab.Scenario;

namespace RollingReboot.Cli.Tests.EndToEnd;

/// <summary>A GFS2 pool (tests/scenarios/gfs2-pool.json): one host down at a time whatever is asked, each next host only
/// once XAPI allows its reboot again (the SR recovers after each host rejoins).</summary>
public sealed class ClusteredSrTests
{
    [Fact]
    public async Task Gfs2Pool_MaxHostsDown3_PlanSaysOneAtATime_RunWaitsForRecovery_EveryHostOnce()
    {
        var scenario = ScenarioLoader.LoadFile(LabHarness.SharedScenario("gfs2-pool.json"));
        await using var lab = await LabHarness.StartAsync(scenario, timeScale: 300);
        var (plan, planOut, planErr) = await lab.RunCliAsync("--clustername", "CLUSTER-GFS2", "--max-hosts-down", "3", "--format", "json");
        Assert.True(plan == 0, planOut + planErr);
        Assert.Contains("CLUSTERED_SR_ONE_HOST_AT_A_TIME", planOut, StringComparison.Ordinal);

        var (code, stdout, stderr) = await lab.RunCliAsync("--clustername", "CLUSTER-GFS2", "--max-hosts-down", "3", "--exec");
        Assert.True(code == 0, $"exit {code}\n{stdout}\n{stderr}");
        var audit = lab.Audit();
        Assert.Empty(audit["violations"]!.AsArray());
        Assert.All(audit["hosts"]!.AsArray(), h => Assert.Equal(1, h!["bootCount"]!.GetValue<int>()));
        var events = audit["events"]!.AsArray();
        Assert.DoesNotContain(events, e => e!["type"]!.ToString() == "host.reboot" && e["error"] is not null);
        // Never two hosts down at once.
        var down = 0;
        foreach (var e in events.Where(e => e!["type"]!.ToString() is "host.down" or "host.up"))
        {
            down += e!["type"]!.ToString() == "host.down" ? 1 : -1;
            Assert.InRange(down, 0, 1);
        }

        // Whether the run had to wait for the SR's recovery depends on how fast the machine is (the audit above is the check).
        Assert.Empty(audit["pool"]!["otherConfig"]!.AsObject());
    }
}
