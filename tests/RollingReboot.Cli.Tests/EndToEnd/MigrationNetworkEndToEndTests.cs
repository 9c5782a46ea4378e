using System.Text.Json.Nodes;
using RollingReboot.Lab.Scenario;

namespace RollingReboot.Cli.Tests.EndToEnd;

/// <summary>
/// --migration-network and --compress end to end: VM.pool_migrate's network and compress options (xapi/xapi_vm_migrate.ml
/// pool_migrate, use_compression), every migration over the named network's own link, and the plan refusing a network
/// some host cannot use (xapi_network_attach_helpers.ml assert_valid_ip_configuration_on_network_for_host).
/// </summary>
public sealed class MigrationNetworkEndToEndTests
{
    private static List<JsonObject> Starts(JsonObject audit) =>
        [.. audit["events"]!.AsArray().Select(e => e!.AsObject()).Where(e => e["type"]!.GetValue<string>() == "migration.start")];

    [Fact]
    public async Task Exec_OverTheMigrationNetwork_Compressed_EveryMigrationGoesThatWay_NothingLost_HaBack()
    {
        var scenario = ScenarioLoader.LoadFile(LabHarness.SharedScenario("migration-network.json"));
        await using var lab = await LabHarness.StartAsync(scenario, timeScale: 400);
        var (plan, planOut, planErr) = await lab.RunCliAsync("--clustername", "CLUSTER-MIG", "--migration-network", "migration", "--compress", "--format", "json");
        Assert.True(plan == 0, $"exit {plan}\n{planOut}\n{planErr}");
        var options = JsonNode.Parse(planOut)!["options"]!;
        Assert.Equal("migration", options["migrationNetwork"]!["name"]!.GetValue<string>());
        Assert.True(options["compressOption"]!.GetValue<bool>());
        Assert.True(options["migrationModel"]!["compressed"]!.GetValue<bool>());
        Assert.Equal(1000, options["migrationModel"]!["hostLinkMBps"]!.GetValue<double>());

        var (code, stdout, stderr) = await lab.RunCliAsync("--clustername", "CLUSTER-MIG", "--migration-network", "migration", "--compress", "--exec");
        Assert.True(code == 0, $"exit {code}\n{stdout}\n{stderr}");

        var audit = lab.Audit();
        Assert.Empty(audit["violations"]!.AsArray());
        Assert.All(audit["hosts"]!.AsArray(), h => Assert.Equal(1, h!["bootCount"]!.GetValue<int>()));
        Assert.All(audit["vms"]!.AsArray(), v => Assert.Equal("Running", v!["powerState"]!.ToString()));
        var starts = Starts(audit);
        Assert.NotEmpty(starts);
        Assert.All(starts, s =>
        {
            Assert.Equal("migration", s["network"]!.GetValue<string>());
            Assert.True(s["compressed"]!.GetValue<bool>());
            Assert.Equal("true", s["options"]!["compress"]!.GetValue<string>());
        });
        Assert.True(audit["pool"]!["haEnabled"]!.GetValue<bool>());
    }

    [Fact]
    public async Task Plan_ANetworkSomeHostsCannotUse_Blocks_NamingEachHostAndXapisCode_AndExecChangesNothing()
    {
        var scenario = ScenarioLoader.LoadFile(LabHarness.SharedScenario("migration-network.json"));
        await using var lab = await LabHarness.StartAsync(scenario, timeScale: 400);
        var (code, stdout, stderr) = await lab.RunCliAsync("--clustername", "CLUSTER-MIG", "--migration-network", "storage", "--exec");
        Assert.True(code == 3, $"exit {code}\n{stdout}\n{stderr}");
        var output = stdout + stderr;
        Assert.Contains("INTERFACE_HAS_NO_IP", output, StringComparison.Ordinal);
        Assert.Contains("Host mg02's PIF on network storage has no IP address", output, StringComparison.Ordinal);
        Assert.Contains("PIF_NOT_PRESENT", output, StringComparison.Ordinal);
        Assert.Contains("Host mg04 has no PIF on network storage", output, StringComparison.Ordinal);
        var audit = lab.Audit();
        Assert.Empty(Starts(audit));
        Assert.DoesNotContain(audit["events"]!.AsArray(), e => e!["type"]!.GetValue<string>() is "host.disable" or "ha.disable");
    }

    [Fact]
    public async Task Plan_OnXcpNg82_AMigrationNetworkIsABlocker_AndCompressionAWarning()
    {
        var scenario = ScenarioLoader.LoadFile(LabHarness.SharedScenario("migration-network.json"));
        scenario.Pool.XapiVersion = XapiProfile.XcpNg82;
        await using var lab = await LabHarness.StartAsync(scenario, timeScale: 400);
        var (code, stdout, stderr) = await lab.RunCliAsync("--clustername", "CLUSTER-MIG", "--migration-network", "migration", "--compress");
        Assert.True(code == 3, $"exit {code}\n{stdout}\n{stderr}");
        Assert.Contains("[MIGRATION_NETWORK_UNSUPPORTED]", stdout, StringComparison.Ordinal);
        Assert.Contains("COMPRESSION_UNSUPPORTED", stdout, StringComparison.Ordinal);
    }
}
