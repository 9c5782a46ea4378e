using System.Text.Json.Nodes;

namespace RollingReboot.Cli.Tests.EndToEnd;

/// <summary>
/// Faults injected by the lab at different phases: the run completes correctly or stops with the documented
/// exit code, and afterwards the audit shows no violation and every VM that was running still running.
/// </summary>
public sealed class FaultEndToEndTests
{
    private static string FourHosts(string faults, string? ha = null) => $$"""
        {
          "name": "faulty", "pool": { "name": "PF", "ha": {{ha ?? """{ "enabled": true, "timeoutSeconds": 200, "hostFailuresToTolerate": 1, "heartbeatSr": "nfs" }"""}} },
          "cloudstack": { "clusterName": "CF" },
          "migration": { "setupSeconds": 4 },
          "hosts": [ { "name": "f1", "master": true, "memoryMiB": 65536, "rebootSeconds": 120 }, { "name": "f2", "memoryMiB": 65536, "rebootSeconds": 120 },
                     { "name": "f3", "memoryMiB": 65536, "rebootSeconds": 120 }, { "name": "f4", "memoryMiB": 65536, "rebootSeconds": 120 } ],
          "srs": [ { "name": "nfs", "shared": true } ],
          "vms": [ { "name": "i-9-1-VM", "host": "f2", "memoryMiB": 4096 } ],
          "generate": [ { "hosts": ["f1", "f2", "f3", "f4"], "perHost": 5, "memoryMiB": [2048, 4096, 8192], "seed": 5 } ],
          "faults": [ {{faults}} ]
        }
        """;

    private static void AssertNothingLost(JsonObject audit)
    {
        Assert.Empty(audit["violations"]!.AsArray());
        Assert.All(audit["vms"]!.AsArray(), v => Assert.Equal("Running", v!["powerState"]!.ToString()));
        Assert.All(audit["hosts"]!.AsArray(), h => Assert.InRange(h!["bootCount"]!.GetValue<int>(), 0, 1));
    }

    private static async Task<(int Code, string Out, string Err, JsonObject Audit)> RunAsync(string scenario, params string[] extra)
    {
        await using var lab = await LabHarness.StartAsync(scenario, timeScale: 200);
        var (code, stdout, stderr) = await lab.RunCliAsync(["--clustername", "CF", "--exec", .. extra]);
        return (code, stdout, stderr, lab.Audit());
    }

    [Fact]
    public async Task MigrationFailsTransiently_RetriedOnAnotherTarget_RunCompletes()
    {
        var (code, stdout, stderr, audit) = await RunAsync(FourHosts("""{ "type": "migrationFails", "vm": "i-9-1-VM", "times": 1, "error": ["VM_MIGRATE_FAILED"] }"""));
        Assert.True(code == 0, $"exit {code}\n{stdout}\n{stderr}");
        AssertNothingLost(audit);
        Assert.All(audit["hosts"]!.AsArray(), h => Assert.Equal(1, h!["bootCount"]!.GetValue<int>()));
        Assert.Contains(audit["events"]!.AsArray(), e => e!["type"]!.ToString() == "migration.end" && e["vm"]!.ToString() == "i-9-1-VM" && !e["ok"]!.GetValue<bool>());
    }

    [Fact]
    public async Task MigrationFailsPermanently_StopsBeforeThatHostsReboot_Exit4AndRestored()
    {
        var (code, stdout, stderr, audit) = await RunAsync(FourHosts("""{ "type": "migrationFails", "vm": "i-9-1-VM", "times": 10, "error": ["VM_MIGRATE_FAILED"] }"""));
        Assert.True(code == 4, $"exit {code}\n{stdout}\n{stderr}");
        Assert.Contains("i-9-1-VM", stderr + stdout, StringComparison.Ordinal);
        AssertNothingLost(audit);
        Assert.Equal(0, audit["hosts"]!.AsArray().Single(h => h!["name"]!.ToString() == "f2")!["bootCount"]!.GetValue<int>());
        Assert.True(audit["pool"]!["haEnabled"]!.GetValue<bool>());
        Assert.Equal("Managed", audit["cloudstack"]!["managedState"]!.ToString());
        Assert.All(audit["hosts"]!.AsArray(), h => Assert.True(h!["enabled"]!.GetValue<bool>()));
        Assert.Empty(audit["pool"]!["otherConfig"]!.AsObject());
    }

    [Fact]
    public async Task HostNeverReturns_Exit5SayingWhatToDo_NothingLost()
    {
        var (code, stdout, stderr, audit) = await RunAsync(FourHosts("""{ "type": "hostDoesNotReturn", "host": "f3" }"""), "--host-timeout", "15m");
        Assert.True(code == 5, $"exit {code}\n{stdout}\n{stderr}");
        Assert.Contains("f3 did not come back", stderr + stdout, StringComparison.Ordinal);
        Assert.Contains("OPERATOR ACTION NEEDED", stdout, StringComparison.Ordinal);
        AssertNothingLost(audit);
        // CloudStack is not handed a cluster with a host down; HA cannot be enabled with a host offline.
        Assert.Equal("Unmanaged", audit["cloudstack"]!["managedState"]!.ToString());
        Assert.False(audit["pool"]!["haEnabled"]!.GetValue<bool>());
    }

    [Fact]
    public async Task HostReturnsWithMandatoryGuidance_Exit5_HaAndCloudStackRestored()
    {
        var (code, stdout, stderr, audit) = await RunAsync(FourHosts("""{ "type": "pendingGuidance", "host": "f2", "guidance": "restart_toolstack" }"""));
        Assert.True(code == 5, $"exit {code}\n{stdout}\n{stderr}");
        Assert.Contains("guidance", stderr + stdout, StringComparison.OrdinalIgnoreCase);
        AssertNothingLost(audit);
        Assert.True(audit["pool"]!["haEnabled"]!.GetValue<bool>());
        Assert.Equal("Managed", audit["cloudstack"]!["managedState"]!.ToString());
    }

    [Fact]
    public async Task SlowRebootPastTimeout_Exit5()
    {
        var (code, stdout, stderr, audit) = await RunAsync(FourHosts("""{ "type": "slowReboot", "host": "f4", "rebootSeconds": 3000 }"""), "--host-timeout", "20m");
        Assert.True(code == 5, $"exit {code}\n{stdout}\n{stderr}");
        AssertNothingLost(audit);
    }

    [Fact]
    public async Task UnmanageFails_StopsBeforeAnyHost_Exit4AndRestored()
    {
        var (code, stdout, stderr, audit) = await RunAsync(FourHosts("""{ "type": "unmanageFails" }"""));
        Assert.True(code == 4, $"exit {code}\n{stdout}\n{stderr}");
        Assert.Contains("unmanage", stderr, StringComparison.OrdinalIgnoreCase);
        AssertNothingLost(audit);
        Assert.All(audit["hosts"]!.AsArray(), h => Assert.Equal(0, h!["bootCount"]!.GetValue<int>()));
        Assert.True(audit["pool"]!["haEnabled"]!.GetValue<bool>());
        Assert.Empty(audit["pool"]!["otherConfig"]!.AsObject());
    }

    [Fact]
    public async Task CloudStack429And503OnReads_Retried_RunCompletes()
    {
        var (code, stdout, stderr, audit) = await RunAsync(FourHosts("""{ "type": "cloudstackError", "command": "listClusters", "times": 2, "errorCode": 429 }, { "type": "cloudstackError", "command": "listHosts", "times": 1, "errorCode": 503 }"""));
        Assert.True(code == 0, $"exit {code}\n{stdout}\n{stderr}");
        AssertNothingLost(audit);
    }

    [Fact]
    public async Task CloudStack530OnRead_NotRetried_NothingChanged()
    {
        // 530 is CloudStack's INTERNAL_ERROR: what the command found, not a passing fault.
        var (code, stdout, stderr, audit) = await RunAsync(FourHosts("""{ "type": "cloudstackError", "command": "listClusters", "times": 1, "errorCode": 530 }"""));
        Assert.True(code == 2, $"exit {code}\n{stdout}\n{stderr}");
        Assert.Contains("530", stderr, StringComparison.Ordinal);
        Assert.DoesNotContain(audit["events"]!.AsArray(), e => e!["type"]!.ToString() is "ha.disable" or "host.disable" or "cloudstack.managedState");
    }

    [Fact]
    public async Task XapiOutageMidEvacuation_RidesThrough_RunCompletes()
    {
        var (code, stdout, stderr, audit) = await RunAsync(FourHosts("""{ "type": "xapiOutage", "atSeconds": 60, "durationSeconds": 90 }"""));
        Assert.True(code == 0, $"exit {code}\n{stdout}\n{stderr}");
        AssertNothingLost(audit);
        Assert.All(audit["hosts"]!.AsArray(), h => Assert.Equal(1, h!["bootCount"]!.GetValue<int>()));
    }

    [Fact]
    public async Task SessionInvalidAtRandomCalls_RunCompletes()
    {
        var (code, stdout, stderr, audit) = await RunAsync(FourHosts("""{ "type": "sessionInvalid", "times": 6, "probability": 0.05, "seed": 11 }"""));
        Assert.True(code == 0, $"exit {code}\n{stdout}\n{stderr}");
        AssertNothingLost(audit);
    }

    [Fact]
    public async Task VmStartsMidRun_ReplannedAndMoved_RunCompletes()
    {
        var (code, stdout, stderr, audit) = await RunAsync(FourHosts("""{ "type": "vmStarts", "atSeconds": 30, "vm": { "name": "i-9-99-VM", "host": "f4", "memoryMiB": 8192 } }"""));
        Assert.True(code == 0, $"exit {code}\n{stdout}\n{stderr}");
        AssertNothingLost(audit);
        Assert.Contains(audit["vms"]!.AsArray(), v => v!["name"]!.ToString() == "i-9-99-VM");
    }

    [Theory]
    [InlineData("sshHostKeyChanged", "host key")]
    [InlineData("sshAuthFails", "auth")]
    public async Task SshProofFailsAfterReboot_Exit5NamingTheSshProblem_NothingLost(string fault, string expected)
    {
        var (code, stdout, stderr, audit) = await RunAsync(FourHosts($$"""{ "type": "{{fault}}", "host": "f2" }"""));
        Assert.True(code == 5, $"exit {code}\n{stdout}\n{stderr}");
        Assert.Contains(expected, stderr + stdout, StringComparison.OrdinalIgnoreCase);
        Assert.Contains("f2", stderr, StringComparison.Ordinal);
        AssertNothingLost(audit);
        Assert.All(audit["hosts"]!.AsArray(), h => Assert.True(h!["enabled"]!.GetValue<bool>()));
        Assert.True(audit["pool"]!["haEnabled"]!.GetValue<bool>());
        Assert.Equal("Managed", audit["cloudstack"]!["managedState"]!.ToString());
    }
}
