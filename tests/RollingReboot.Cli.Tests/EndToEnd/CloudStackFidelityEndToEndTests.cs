using System.Text.Json.Nodes;
using RollingReboot.Lab.Scenario;

namespace RollingReboot.Cli.Tests.EndToEnd;

/// <summary>
/// The real CLI against the lab's CloudStack where it behaves as the real one does and the real one bites: a cluster left
/// PrepareUnmanagedError, project VMs, a small default.page.size, enforced POST and timestamps, a command the keys' role may
/// not call, hosts XAPI shows disabled at re-manage, hosts CloudStack keeps empty, placement rules, a VM CloudStack still
/// shows on its old host. Every verdict is read from the lab's audit or the CLI's own output.
/// </summary>
public sealed class CloudStackFidelityEndToEndTests
{
    private static List<JsonObject> Events(JsonObject audit, string type) =>
        audit["events"]!.AsArray().Select(e => e!.AsObject()).Where(e => e["type"]!.ToString() == type).ToList();

    private static void AssertWhole(JsonObject audit, int hosts)
    {
        Assert.Empty(audit["violations"]!.AsArray());
        Assert.All(audit["vms"]!.AsArray(), v => Assert.Equal("Running", v!["powerState"]!.ToString()));
        Assert.Equal(hosts, audit["hosts"]!.AsArray().Count(h => h!["bootCount"]!.GetValue<int>() == 1));
        Assert.Empty(audit["pool"]!["otherConfig"]!.AsObject());
    }

    private static string Small(string cloudstack, string faults = "") => $$"""
        {
          "name": "cs", "pool": { "name": "PCS" },
          "cloudstack": { "clusterName": "CCS"{{cloudstack}} },
          "migration": { "setupSeconds": 3 },
          "hosts": [ { "name": "c1", "master": true, "memoryMiB": 65536, "rebootSeconds": 90 }, { "name": "c2", "memoryMiB": 65536, "rebootSeconds": 90 },
                     { "name": "c3", "memoryMiB": 65536, "rebootSeconds": 90 }, { "name": "c4", "memoryMiB": 65536, "rebootSeconds": 90 } ],
          "vms": [ { "name": "i-8-1-VM", "host": "c2", "memoryMiB": 4096 } ],
          "generate": [ { "hosts": ["c1", "c2", "c3", "c4"], "perHost": 3, "namePrefix": "i-9-", "memoryMiB": [2048], "seed": 3 } ],
          "faults": [ {{faults}} ]
        }
        """;

    [Fact]
    public async Task PrepareUnmanagedError_PlanSaysSo_RunUnmanagesAgainBeforeAnyReboot_ManagedAtTheEnd()
    {
        var scenario = ScenarioLoader.LoadFile(LabHarness.SharedScenario("cloudstack-prepare-unmanaged-error.json"));
        await using var lab = await LabHarness.StartAsync(scenario, timeScale: 300);

        var (planCode, plan, planErr) = await lab.RunCliAsync("--clustername", "CLUSTER-PUE", "--format", "json");
        var (code, stdout, stderr) = await lab.RunCliAsync("--clustername", "CLUSTER-PUE", "--exec");

        Assert.True(planCode == 0, $"exit {planCode}\n{plan}\n{planErr}");
        var warning = JsonNode.Parse(plan)!["warnings"]!.AsArray().Single(w => w!["code"]!.ToString() == "CLOUDSTACK_PREPARE_UNMANAGED_ERROR")!;
        Assert.Contains("unmanage it again", warning["fix"]!.ToString(), StringComparison.Ordinal);
        Assert.True(code == 0, $"exit {code}\n{stdout}\n{stderr}");
        var audit = lab.Audit();
        AssertWhole(audit, 4);
        var managed = Events(audit, "cloudstack.managedState");
        Assert.Equal(["PrepareUnmanaged", "Unmanaged", "Managed"], managed.Select(e => e["value"]!.ToString()));
        var unmanagedAt = managed[1]["t"]!.GetValue<double>();
        Assert.All(Events(audit, "host.reboot"), r => Assert.True(r["t"]!.GetValue<double>() > unmanagedAt));
        Assert.All(audit["cloudstack"]!["hosts"]!.AsArray(), h => Assert.Equal("Up", h!["state"]!.ToString()));
        // Re-manage waited for CloudStack's agent scan and said how long it took.
        var managedAt = managed[2]["t"]!.GetValue<double>();
        var lastUp = Events(audit, "cloudstack.hostState").Where(e => e["state"]!.ToString() == "Up").Max(e => e["t"]!.GetValue<double>());
        Assert.InRange(lastUp - managedAt, 4 * 10, 90 + 150 + 4 * 10 + 10);
        Assert.Contains("CloudStack cluster CLUSTER-PUE Managed, all 4 hosts Up after ", stdout, StringComparison.Ordinal);
    }

    [Fact]
    public async Task ProjectHeavyCloud_ProjectVmsAntiAffinityShapesThePlan_RunKeepsIt_HiddenProjectJobDoesNotBlock()
    {
        var scenario = ScenarioLoader.LoadFile(LabHarness.SharedScenario("cloudstack-projects.json"));
        await using var lab = await LabHarness.StartAsync(scenario, timeScale: 300);

        var (planCode, plan, planErr) = await lab.RunCliAsync("--clustername", "CLUSTER-PRJ", "--format", "json");
        var (code, stdout, stderr) = await lab.RunCliAsync("--clustername", "CLUSTER-PRJ", "--exec");

        Assert.True(planCode == 0, $"exit {planCode}\n{plan}\n{planErr}");
        // prj2 and prj3 have the most room, but each holds a web-tier VM: the master's web VM can only go to prj4.
        var first = JsonNode.Parse(plan)!["steps"]!.AsArray()[0]!;
        Assert.Equal("prj1", first["host"]!.ToString());
        Assert.Equal("prj4", first["migrations"]!.AsArray().Single(m => m!["vm"]!.ToString() == "i-5-1-VM")!["to"]!.ToString());
        Assert.True(code == 0, $"exit {code}\n{stdout}\n{stderr}");
        var audit = lab.Audit();
        AssertWhole(audit, 4);
        // At no moment two web-tier VMs on one host.
        var at = new Dictionary<string, string> { ["i-5-1-VM"] = "prj1", ["i-5-2-VM"] = "prj2", ["i-5-3-VM"] = "prj3" };
        foreach (var e in Events(audit, "migration.end").Where(e => e["ok"]!.GetValue<bool>() && at.ContainsKey(e["vm"]!.ToString())))
        {
            at[e["vm"]!.ToString()] = e["to"]!.ToString();
            Assert.Equal(3, at.Values.Distinct().Count());
        }
    }

    [Fact]
    public async Task ProjectHeavyCloud_AUsersJobOnAProjectVm_IsSeenAndBlocks()
    {
        var scenario = ScenarioLoader.LoadFile(LabHarness.SharedScenario("cloudstack-projects.json"));
        scenario.CloudStack!.AsyncJobs[1].DurationSeconds = null;
        await using var lab = await LabHarness.StartAsync(scenario, timeScale: 300);

        var (code, stdout, stderr) = await lab.RunCliAsync("--clustername", "CLUSTER-PRJ", "--format", "json");

        Assert.True(code == 3, $"exit {code}\n{stdout}\n{stderr}");
        var blocker = Assert.Single(JsonNode.Parse(stdout)!["blockers"]!.AsArray())!;
        Assert.Equal(("CLOUDSTACK_JOB_RUNNING", "i-5-4-VM", "prj4"), (blocker["code"]!.ToString(), blocker["vm"]!.ToString(), blocker["host"]!.ToString()));
        Assert.Contains("by account alice", blocker["message"]!.ToString(), StringComparison.Ordinal);
    }

    [Theory]
    [InlineData(null)]
    [InlineData("500")]
    public async Task PageSize100Site_EveryVmRead_ConfiguredLargerPageSizeLowered_RunCompletes(string? pageSize)
    {
        var scenario = ScenarioLoader.LoadFile(LabHarness.SharedScenario("cloudstack-page-size-100.json"));
        await using var lab = await LabHarness.StartAsync(scenario, timeScale: 400);
        var env = pageSize is null ? new Dictionary<string, string>() : new Dictionary<string, string> { ["ROLLREBOOT_CLOUDSTACK_PAGE_SIZE"] = pageSize };

        var (code, stdout, stderr) = await lab.RunCliAsync(env, "--clustername", "CLUSTER-PG", "--exec");

        Assert.True(code == 0, $"exit {code}\n{stdout}\n{stderr}");
        var audit = lab.Audit();
        AssertWhole(audit, 4);
        Assert.Equal(160, audit["vms"]!.AsArray().Count);
    }

    [Fact]
    public async Task PageSize100Site_AJobOnAVmOfTheSecondPage_IsFound()
    {
        var scenario = ScenarioLoader.LoadFile(LabHarness.SharedScenario("cloudstack-page-size-100.json"));
        scenario.CloudStack!.AsyncJobs[0].DurationSeconds = null;
        await using var lab = await LabHarness.StartAsync(scenario, timeScale: 400);

        var (code, stdout, stderr) = await lab.RunCliAsync(new Dictionary<string, string> { ["ROLLREBOOT_CLOUDSTACK_PAGE_SIZE"] = "500" }, "--clustername", "CLUSTER-PG", "--format", "json");

        Assert.True(code == 3, $"exit {code}\n{stdout}\n{stderr}");
        var blocker = Assert.Single(JsonNode.Parse(stdout)!["blockers"]!.AsArray())!;
        Assert.Equal("i-4-150-VM", blocker["vm"]!.ToString());
    }

    [Fact]
    public async Task EnforcedPostAndTimestamps_RunCompletes_AtAFastTimeScale()
    {
        // The lab's clock runs 400 times the wall's; expires is checked against the wall clock, at most 15 minutes ahead.
        await using var lab = await LabHarness.StartAsync(Small(""", "enforcePostRequestsAndTimestamps": true"""), timeScale: 400);

        var (code, stdout, stderr) = await lab.RunCliAsync("--clustername", "CCS", "--exec");

        Assert.True(code == 0, $"exit {code}\n{stdout}\n{stderr}");
        AssertWhole(lab.Audit(), 4);
        Assert.Equal("Managed", lab.Audit()["cloudstack"]!["managedState"]!.ToString());
    }

    [Fact]
    public async Task KeysWhoseRoleMayNotUpdateTheCluster_StopBeforeAnyHost_SayingItIsThePermission()
    {
        await using var lab = await LabHarness.StartAsync(Small(""", "deniedCommands": ["updateCluster"]"""), timeScale: 300);

        var (code, stdout, stderr) = await lab.RunCliAsync("--clustername", "CCS", "--exec");

        Assert.True(code == 4, $"exit {code}\n{stdout}\n{stderr}");
        Assert.Contains("does not allow updateCluster", stdout + stderr, StringComparison.Ordinal);
        Assert.DoesNotContain("secret key is wrong", stdout + stderr, StringComparison.Ordinal);
        var audit = lab.Audit();
        Assert.Empty(Events(audit, "host.reboot"));
        Assert.Equal("Managed", audit["cloudstack"]!["managedState"]!.ToString());
    }

    [Fact]
    public async Task HostCloudStackKeepsDisabled_TakesNoVmsAndIsLeftAlone_OthersRebooted()
    {
        await using var lab = await LabHarness.StartAsync(Small(""", "hosts": [ { "name": "c3", "resourceState": "Disabled" } ]"""), timeScale: 300);

        var (planCode, plan, _) = await lab.RunCliAsync("--clustername", "CCS", "--format", "json");
        var (code, stdout, stderr) = await lab.RunCliAsync("--clustername", "CCS", "--exec");

        Assert.Equal(0, planCode);
        var c3 = JsonNode.Parse(plan)!["hosts"]!.AsArray().Single(h => h!["name"]!.ToString() == "c3")!;
        Assert.Equal("skip", c3["action"]!.ToString());
        Assert.Contains("CloudStack resource state Disabled", c3["reason"]!.ToString(), StringComparison.Ordinal);
        Assert.True(code == 0, $"exit {code}\n{stdout}\n{stderr}");
        var audit = lab.Audit();
        AssertWhole(audit, 3);
        Assert.DoesNotContain(Events(audit, "migration.start"), e => e["to"]!.ToString() == "c3");
    }

    [Fact]
    public async Task PlacementRules_ADedicatedHostTakesNoneOfTheOthersVms_ThePlanNamesTheRule_TheRunCompletes()
    {
        // c4 dedicated to account ops, and no VM of the pool is explicitly dedicated: CloudStack would place none of them
        // there (DeploymentPlanningManagerImpl.checkForNonDedicatedResources), so neither does the plan.
        await using var lab = await LabHarness.StartAsync(Small(""", "hosts": [ { "name": "c4", "dedicatedTo": "ops" } ]"""), timeScale: 300);

        var (planCode, plan, planErr) = await lab.RunCliAsync("--clustername", "CCS", "--format", "json");
        var (code, stdout, stderr) = await lab.RunCliAsync("--clustername", "CCS", "--exec");

        Assert.True(planCode == 0, $"exit {planCode}\n{plan}\n{planErr}");
        var migrations = JsonNode.Parse(plan)!["steps"]!.AsArray().SelectMany(st => st!["migrations"]!.AsArray()).ToList();
        Assert.NotEmpty(migrations);
        Assert.DoesNotContain(migrations, m => m!["to"]!.ToString() == "c4");
        Assert.All(migrations, m => Assert.Contains("not on c4: c4 is dedicated (through dedication group ", m!["rule"]!.ToString(), StringComparison.Ordinal));
        Assert.True(code == 0, $"exit {code}\n{stdout}\n{stderr}");
        var audit = lab.Audit();
        AssertWhole(audit, 4);
        Assert.DoesNotContain(Events(audit, "migration.start"), e => e["to"]!.ToString() == "c4");
    }

    [Fact]
    public async Task OperatorDisabledMaster_OthersRebooted_ReManageSaysThePoolCannotConnect_Exit5()
    {
        var scenario = Small("").Replace(
            """{ "name": "c1", "master": true, "memoryMiB": 65536, "rebootSeconds": 90 }""",
            """{ "name": "c1", "master": true, "memoryMiB": 65536, "rebootSeconds": 90, "enabled": false }""",
            StringComparison.Ordinal);
        await using var lab = await LabHarness.StartAsync(scenario, timeScale: 300);

        var (code, stdout, stderr) = await lab.RunCliAsync("--clustername", "CCS", "--exec", "--ignore-hosts", "c4");

        Assert.True(code == 5, $"exit {code}\n{stdout}\n{stderr}");
        Assert.Contains("pool master c1 is disabled in XAPI", stdout, StringComparison.Ordinal);
        Assert.Contains("xe host-enable host=c1", stdout, StringComparison.Ordinal);
        var audit = lab.Audit();
        Assert.Empty(audit["violations"]!.AsArray());
        Assert.Equal("Managed", audit["cloudstack"]!["managedState"]!.ToString());
        Assert.Equal([0, 1, 1, 0], audit["hosts"]!.AsArray().Select(h => h!["bootCount"]!.GetValue<int>()));
    }

    [Fact]
    public async Task AfterReManage_AVmCloudStackStillShowsOnItsOldHost_IsReported()
    {
        await using var lab = await LabHarness.StartAsync(Small("", faults: """{ "type": "cloudstackStaleVm", "vm": "i-8-1-VM" }"""), timeScale: 300);

        var (code, stdout, stderr) = await lab.RunCliAsync("--clustername", "CCS", "--exec");

        Assert.True(code == 0, $"exit {code}\n{stdout}\n{stderr}");
        var audit = lab.Audit();
        AssertWhole(audit, 4);
        var now = audit["vms"]!.AsArray().Single(v => v!["name"]!.ToString() == "i-8-1-VM")!["residentOn"]!.ToString();
        Assert.NotEqual("c2", now);
        Assert.Contains($"note: CloudStack shows VM i-8-1-VM on c2, XAPI runs it on {now}", stdout, StringComparison.Ordinal);
    }
}
