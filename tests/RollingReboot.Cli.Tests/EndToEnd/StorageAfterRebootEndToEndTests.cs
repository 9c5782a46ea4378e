using RollingReboot.Lab.Scenario;

namespace RollingReboot.Cli.Tests.EndToEnd;

/// <summary>
/// Issue 15 §3 (findings §5.9): a rebooted host whose PBD failed to plug is enabled by xapi anyway while HA is off;
/// the run plugs it before sending VMs there, or keeps the host disabled and stops for an operator.
/// </summary>
public sealed class StorageAfterRebootEndToEndTests
{
    private static ScenarioFile Scenario(string? error)
    {
        var scenario = ScenarioLoader.LoadFile(LabHarness.SharedScenario("six-hosts-n-plus-1.json"));
        scenario.Faults.Add(new FaultSpec { Type = "pbdPlugFails", Host = scenario.Hosts[1].Name, Sr = scenario.Srs.First(s => s.Shared).Name, Error = error is null ? null : [error, "", "NFS mount error", ""] });
        return scenario;
    }

    [Fact]
    public async Task Exec_PlugFailedAtBoot_TheRunPlugsItBeforeUsingTheHost_NoVmFails()
    {
        var scenario = Scenario(null);
        await using var lab = await LabHarness.StartAsync(scenario, timeScale: 400);
        var (code, stdout, stderr) = await lab.RunCliAsync("--clustername", scenario.CloudStack!.ClusterName, "--exec");
        Assert.True(code == 0, $"exit {code}\n{stdout}\n{stderr}");

        var audit = lab.Audit();
        Assert.Empty(audit["violations"]!.AsArray());
        Assert.All(audit["hosts"]!.AsArray(), h => Assert.Equal(1, h!["bootCount"]!.GetValue<int>()));
        var events = audit["events"]!.AsArray();
        Assert.Contains(events, e => e!["type"]!.ToString() == "pbd.plug" && e["host"]!.ToString() == scenario.Hosts[1].Name);
        Assert.DoesNotContain(events, e => e!["type"]!.ToString() == "migration.end" && !e["ok"]!.GetValue<bool>());
    }

    [Fact]
    public async Task Exec_StorageUnreachable_HostKeptDisabled_Exit5_NothingLost()
    {
        var scenario = Scenario("SR_BACKEND_FAILURE_73");
        var broken = scenario.Hosts[1].Name;
        await using var lab = await LabHarness.StartAsync(scenario, timeScale: 400);
        var (code, stdout, stderr) = await lab.RunCliAsync("--clustername", scenario.CloudStack!.ClusterName, "--exec");
        Assert.True(code == 5, $"exit {code}\n{stdout}\n{stderr}");
        Assert.Contains($"{broken} came back but cannot see shared SR", stdout + stderr, StringComparison.Ordinal);
        Assert.Contains("SR_BACKEND_FAILURE_73", stdout + stderr, StringComparison.Ordinal);

        var audit = lab.Audit();
        Assert.Empty(audit["violations"]!.AsArray());
        var host = audit["hosts"]!.AsArray().First(h => h!["name"]!.ToString() == broken)!;
        Assert.False(host["enabled"]!.GetValue<bool>());
        Assert.DoesNotContain(audit["vms"]!.AsArray(), v => v!["residentOn"]?.ToString() == broken);
        Assert.All(audit["vms"]!.AsArray().Where(v => v!["name"]!.ToString().StartsWith("i-", StringComparison.Ordinal)), v => Assert.Equal("Running", v!["powerState"]!.ToString()));
        Assert.DoesNotContain(audit["events"]!.AsArray(), e => e!["type"]!.ToString() == "migration.end" && !e["ok"]!.GetValue<bool>());
    }
}
