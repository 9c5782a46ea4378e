using System.Text.Json.Nodes;

namespace RollingReboot.Cli.Tests.EndToEnd;

/// <summary>Several clusters in one invocation: each its own pool (found through CloudStack), lock, journal; one report.</summary>
public sealed class FleetRunTests
{
    private static void AssertRebootedOnceAndRestored(JsonObject audit)
    {
        Assert.Empty(audit["violations"]!.AsArray());
        Assert.All(audit["hosts"]!.AsArray(), h => Assert.Equal(1, h!["bootCount"]!.GetValue<int>()));
        Assert.All(audit["hosts"]!.AsArray(), h => Assert.True(h!["enabled"]!.GetValue<bool>()));
        Assert.All(audit["vms"]!.AsArray(), v => Assert.Equal("Running", v!["powerState"]!.ToString()));
        Assert.Equal("Managed", audit["cloudstack"]!["managedState"]!.ToString());
        Assert.Empty(audit["pool"]!["otherConfig"]!.AsObject());
    }

    [Fact]
    public async Task TwoClustersInOneInvocation_PlannedThenRunInParallel_EachRestored_OneReport()
    {
        await using var lab = await LabHarness.StartFleetFromFilesAsync(300, "fleet-a-three-hosts.json", "fleet-b-three-hosts.json", "fleet-c-three-hosts.json");
        var haBefore = lab.Audit("CLUSTER-B")["pool"]!["haConfiguration"]!.ToJsonString();

        // The zone's clusters, planned: A and B (ZONE-1), not C (ZONE-2).
        var (code, stdout, stderr) = await lab.RunCliAsync("--zone", "ZONE-1", "--all-clusters", "--format", "json");
        Assert.True(code == 0, $"exit {code}\n{stdout}\n{stderr}");
        var plans = JsonNode.Parse(stdout)!["clusters"]!.AsArray();
        Assert.Equal(["CLUSTER-A", "CLUSTER-B"], plans.Select(p => p!["cluster"]!.ToString()));
        Assert.Equal(["CLUSTER-A", "CLUSTER-B"], plans.Select(p => p!["pool"]!["name"]!.ToString()));

        var reportJson = Path.Combine(lab.StateDir, "fleet.json");
        (code, stdout, stderr) = await lab.RunCliAsync("--clustername", "CLUSTER-A,CLUSTER-B", "--exec", "--parallel-clusters", "2", "--report-json", reportJson);
        Assert.True(code == 0, $"exit {code}\n{stdout}\n{stderr}");
        AssertRebootedOnceAndRestored(lab.Audit("CLUSTER-A"));
        AssertRebootedOnceAndRestored(lab.Audit("CLUSTER-B"));
        Assert.Equal(haBefore, lab.Audit("CLUSTER-B")["pool"]!["haConfiguration"]!.ToJsonString());
        Assert.Empty(lab.Audit("CLUSTER-C")["events"]!.AsArray());
        Assert.Contains("[CLUSTER-A]", stderr, StringComparison.Ordinal);
        Assert.Contains("[CLUSTER-B]", stderr, StringComparison.Ordinal);
        Assert.Matches(@"CLUSTER-A\s+exit 0", stdout);
        Assert.Matches(@"CLUSTER-B\s+exit 0", stdout);

        // The two ran at the same time: B's first reboot came before A's last.
        var aReboots = lab.Audit("CLUSTER-A")["events"]!.AsArray().Where(e => e!["type"]!.ToString() == "host.reboot").Select(e => e!["t"]!.GetValue<double>()).ToList();
        var bReboots = lab.Audit("CLUSTER-B")["events"]!.AsArray().Where(e => e!["type"]!.ToString() == "host.reboot").Select(e => e!["t"]!.GetValue<double>()).ToList();
        Assert.True(bReboots.Min() < aReboots.Max() && aReboots.Min() < bReboots.Max(), "the clusters did not overlap");

        var report = JsonNode.Parse(await File.ReadAllTextAsync(reportJson))!;
        Assert.Equal(2, report["clusters"]!.AsArray().Count);
        Assert.Empty(report["notRun"]!.AsArray());
        // Each cluster has its own journal.
        Assert.Equal(2, Directory.GetFiles(Path.Combine(lab.StateDir, "journals"), "*.jsonl").Length);
    }

    [Fact]
    public async Task AClusterThatStops_NoFurtherClusterIsStarted_WorstExitCode()
    {
        await using var lab = await LabHarness.StartFleetFromFilesAsync(300, "fleet-a-three-hosts.json", "fleet-b-three-hosts.json");
        // A's first host's pre hook fails: A stops restored (4); B is never started.
        var (code, stdout, stderr) = await lab.RunCliAsync("--clustername", "CLUSTER-A", "--clustername", "CLUSTER-B", "--exec",
            "--pre-host-hook", "[ \"$ROLLREBOOT_CLUSTER\" != CLUSTER-A ]");
        Assert.True(code == 4, $"exit {code}\n{stdout}\n{stderr}");
        Assert.Matches(@"CLUSTER-B\s+exit -\s+not started", stdout);
        Assert.Empty(lab.Audit("CLUSTER-B")["events"]!.AsArray());
        Assert.Empty(lab.Audit("CLUSTER-A")["violations"]!.AsArray());
        Assert.Equal("Managed", lab.Audit("CLUSTER-A")["cloudstack"]!["managedState"]!.ToString());
    }
}
