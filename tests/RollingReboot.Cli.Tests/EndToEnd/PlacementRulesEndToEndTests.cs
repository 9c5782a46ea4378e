using System.Text.Json.Nodes;
using RollingReboot.Lab.Scenario;

namespace RollingReboot.Cli.Tests.EndToEnd;

/// <summary>
/// Issue 16: the plan follows CloudStack's placement rules (tests/scenarios/cloudstack-placement-rules.json): host tags,
/// dedicated hosts, a host affinity group and a non-strict anti-affinity group, each migration naming the rule that
/// shaped it; the run keeps them at every step.
/// </summary>
public sealed class PlacementRulesEndToEndTests
{
    private static readonly string[] s_acme = ["i-3-20-VM", "i-3-21-VM", "i-3-22-VM"];

    [Fact]
    public async Task Exec_EveryMigrationKeepsCloudStacksRules_ThePlanNamesThem()
    {
        var scenario = ScenarioLoader.LoadFile(LabHarness.SharedScenario("cloudstack-placement-rules.json"));
        await using var lab = await LabHarness.StartAsync(scenario, timeScale: 400);

        var (planCode, plan, planErr) = await lab.RunCliAsync("--clustername", "CLUSTER-RULES", "--format", "json");
        Assert.True(planCode == 0, $"exit {planCode}\n{plan}\n{planErr}");
        var planned = JsonNode.Parse(plan)!["steps"]!.AsArray().SelectMany(s => s!["migrations"]!.AsArray()).ToList();
        string? RuleOf(string vm) => planned.FirstOrDefault(m => m!["vm"]!.ToString() == vm)?["rule"]?.ToString();
        Assert.Contains("its service offering asks for host tag(s) ssd", RuleOf("i-2-10-VM"), StringComparison.Ordinal);
        Assert.Contains("is explicitly dedicated (DedicatedGrp-acme)", RuleOf("i-3-21-VM"), StringComparison.Ordinal);
        Assert.Contains("host affinity db-pair: moves with i-2-31-VM", RuleOf("i-2-30-VM"), StringComparison.Ordinal);
        Assert.Contains("non-strict host anti-affinity web", RuleOf("i-2-40-VM"), StringComparison.Ordinal);

        var (code, stdout, stderr) = await lab.RunCliAsync("--clustername", "CLUSTER-RULES", "--exec");
        Assert.True(code == 0, $"exit {code}\n{stdout}\n{stderr}");
        var audit = lab.Audit();
        Assert.Empty(audit["violations"]!.AsArray());
        Assert.All(audit["hosts"]!.AsArray(), h => Assert.Equal(1, h!["bootCount"]!.GetValue<int>()));

        var moves = audit["events"]!.AsArray().Where(e => e!["type"]!.ToString() == "migration.start").Select(e => (Vm: e!["vm"]!.ToString(), To: e["to"]!.ToString())).ToList();
        Assert.NotEmpty(moves);
        foreach (var (vm, to) in moves)
        {
            if (vm is "i-2-10-VM" or "i-2-11-VM")
            {
                Assert.True(to is "cr01" or "cr02" or "cr03", $"{vm} (host tag ssd) went to {to}");
            }
            else if (s_acme.Contains(vm))
            {
                Assert.True(to is "cr04" or "cr05", $"{vm} (dedicated to acme) went to {to}");
            }
            else
            {
                Assert.False(to is "cr04" or "cr05", $"{vm} went to {to}, dedicated to acme");
            }
        }

        // The host affinity pair always goes to the same host, and ends on one.
        Assert.Equal(moves.Where(m => m.Vm == "i-2-30-VM").Select(m => m.To), moves.Where(m => m.Vm == "i-2-31-VM").Select(m => m.To));
        var at = audit["vms"]!.AsArray().ToDictionary(v => v!["name"]!.ToString(), v => v!["residentOn"]?.ToString());
        Assert.Equal(at["i-2-30-VM"], at["i-2-31-VM"]);
    }
}
