using System.Text.Json.Nodes;

namespace RollingReboot.Cli.Tests.EndToEnd;

/// <summary>
/// The failure policy against the lab (issue 19): --retries / --retry-delay for an evacuation that left a VM behind,
/// --max-failed-hosts for a member that cannot be evacuated (put back, enabled, untouched) or does not come back (named
/// for an operator), the run going on with the others; the report lists each failed host and why.
/// </summary>
public sealed class FailurePolicyEndToEndTests
{
    private static string FourHosts(string faults) => $$"""
        {
          "name": "policy", "pool": { "name": "PP", "ha": { "enabled": true, "timeoutSeconds": 200, "hostFailuresToTolerate": 1, "heartbeatSr": "nfs" } },
          "cloudstack": { "clusterName": "CP" },
          "migration": { "setupSeconds": 4 },
          "hosts": [ { "name": "p1", "master": true, "memoryMiB": 65536, "rebootSeconds": 120 }, { "name": "p2", "memoryMiB": 65536, "rebootSeconds": 120 },
                     { "name": "p3", "memoryMiB": 65536, "rebootSeconds": 120 }, { "name": "p4", "memoryMiB": 65536, "rebootSeconds": 120 } ],
          "srs": [ { "name": "nfs", "shared": true } ],
          "vms": [ { "name": "i-9-1-VM", "host": "p2", "memoryMiB": 4096 } ],
          "generate": [ { "hosts": ["p1", "p2", "p3", "p4"], "perHost": 4, "memoryMiB": [2048, 4096], "seed": 5 } ],
          "faults": [ {{faults}} ]
        }
        """;

    private static int Boots(JsonObject audit, string host) =>
        audit["hosts"]!.AsArray().Single(h => h!["name"]!.ToString() == host)!["bootCount"]!.GetValue<int>();

    private static void AssertNothingLost(JsonObject audit)
    {
        Assert.Empty(audit["violations"]!.AsArray());
        Assert.All(audit["vms"]!.AsArray(), v => Assert.Equal("Running", v!["powerState"]!.ToString()));
        Assert.All(audit["hosts"]!.AsArray(), h => Assert.InRange(h!["bootCount"]!.GetValue<int>(), 0, 1));
    }

    [Fact]
    public async Task Retries_AMigrationFailingForTwoRounds_TheHostIsRebootedAfterTheDelay_Exit0()
    {
        await using var lab = await LabHarness.StartAsync(FourHosts("""{ "type": "migrationFails", "vm": "i-9-1-VM", "times": 4, "error": ["VM_MIGRATE_FAILED"] }"""), timeScale: 200);
        var (code, stdout, stderr) = await lab.RunCliAsync("--clustername", "CP", "--exec", "--retries", "2", "--retry-delay", "3m");
        Assert.True(code == 0, $"exit {code}\n{stdout}\n{stderr}");
        var audit = lab.Audit();
        AssertNothingLost(audit);
        Assert.All(new[] { "p1", "p2", "p3", "p4" }, h => Assert.Equal(1, Boots(audit, h)));
        Assert.Contains("trying again in", stderr, StringComparison.Ordinal);
        // The second round came after the delay: three simulated minutes or more between two tries of the VM.
        var starts = audit["events"]!.AsArray().Where(e => e!["type"]!.ToString() == "migration.start" && e["vm"]!.ToString() == "i-9-1-VM").Select(e => e!["t"]!.GetValue<double>()).ToList();
        Assert.Equal(5, starts.Count);
        Assert.Contains(starts.Zip(starts.Skip(1)), p => p.Second - p.First >= 180);
        Assert.True(audit["pool"]!["haEnabled"]!.GetValue<bool>());
        Assert.Equal("Managed", audit["cloudstack"]!["managedState"]!.ToString());
    }

    [Fact]
    public async Task MaxFailedHosts_AMemberThatCannotBeEvacuated_IsPutBack_TheOthersRebooted_Exit5NamingIt()
    {
        await using var lab = await LabHarness.StartAsync(FourHosts("""{ "type": "migrationFails", "vm": "i-9-1-VM", "times": 100, "error": ["VM_MIGRATE_FAILED"] }"""), timeScale: 200);
        var reportJson = Path.Combine(lab.StateDir, "report.json");
        var (code, stdout, stderr) = await lab.RunCliAsync("--clustername", "CP", "--exec", "--retries", "1", "--retry-delay", "1m", "--max-failed-hosts", "1", "--report-json", reportJson);
        Assert.True(code == 5, $"exit {code}\n{stdout}\n{stderr}");
        var audit = lab.Audit();
        AssertNothingLost(audit);
        Assert.Equal(0, Boots(audit, "p2"));
        Assert.All(new[] { "p1", "p3", "p4" }, h => Assert.Equal(1, Boots(audit, h)));
        // Everything put back: p2 enabled and running its VM, HA on, CloudStack Managed, no lock.
        Assert.All(audit["hosts"]!.AsArray(), h => Assert.True(h!["enabled"]!.GetValue<bool>()));
        Assert.Equal("p2", audit["vms"]!.AsArray().Single(v => v!["name"]!.ToString() == "i-9-1-VM")!["residentOn"]!.ToString());
        Assert.True(audit["pool"]!["haEnabled"]!.GetValue<bool>());
        Assert.Equal("Managed", audit["cloudstack"]!["managedState"]!.ToString());
        Assert.Empty(audit["pool"]!["otherConfig"]!.AsObject());

        var report = JsonNode.Parse(File.ReadAllText(reportJson))!;
        var p2 = report["hosts"]!.AsArray().Single(h => h!["name"]!.ToString() == "p2")!;
        Assert.StartsWith("FAILED (put back): could not evacuate p2 (2 tries): i-9-1-VM: VM_MIGRATE_FAILED", p2["result"]!.ToString(), StringComparison.Ordinal);
        Assert.Contains("1 host(s) FAILED", report["message"]!.ToString(), StringComparison.Ordinal);
    }

    [Fact]
    public async Task MaxFailedHosts_AMemberThatDoesNotComeBack_TheRunGoesOnWithTheOthers_Exit5()
    {
        await using var lab = await LabHarness.StartAsync(FourHosts("""{ "type": "hostDoesNotReturn", "host": "p2" }"""), timeScale: 200);
        var (code, stdout, stderr) = await lab.RunCliAsync("--clustername", "CP", "--exec", "--max-failed-hosts", "1", "--host-timeout", "15m");
        Assert.True(code == 5, $"exit {code}\n{stdout}\n{stderr}");
        var audit = lab.Audit();
        AssertNothingLost(audit);
        Assert.All(new[] { "p1", "p3", "p4" }, h => Assert.Equal(1, Boots(audit, h)));
        Assert.Contains("p2 did not come back", stdout + stderr, StringComparison.Ordinal);
        Assert.Contains("OPERATOR ACTION NEEDED", stdout, StringComparison.Ordinal);
        // No VM was sent to the dead host after it failed.
        var failedAt = audit["events"]!.AsArray().First(e => e!["type"]!.ToString() == "host.down" && e["host"]!.ToString() == "p2")!["t"]!.GetValue<double>();
        Assert.DoesNotContain(audit["events"]!.AsArray(), e => e!["type"]!.ToString() == "migration.start" && e["to"]?.ToString() == "p2" && e["t"]!.GetValue<double>() > failedAt);
    }

    [Theory]
    [InlineData("--retries", "11")]
    [InlineData("--max-failed-hosts", "-1")]
    [InlineData("--retry-delay", "soon")]
    public async Task BadValues_AreExit2_NothingChanged(string option, string value)
    {
        await using var lab = await LabHarness.StartAsync(FourHosts(""), timeScale: 200);
        var (code, stdout, stderr) = await lab.RunCliAsync("--clustername", "CP", "--exec", option, value);
        Assert.True(code == 2, $"exit {code}\n{stdout}\n{stderr}");
        Assert.Contains(option, stderr, StringComparison.Ordinal);
        Assert.DoesNotContain(lab.Audit()["events"]!.AsArray(), e => e!["type"]!.ToString() is "host.disable" or "ha.disable");
    }
}
