using System.Diagnostics;
using System.Text.Json.Nodes;
using RollingReboot.Lab.Scenario;

namespace RollingReboot.Cli.Tests.EndToEnd;

/// <summary>Crash, resume, restore and exclusion, against the lab; assertions from the lab's audit.</summary>
public sealed class RecoveryEndToEndTests
{
    // Four hosts, small VMs: a run takes a few seconds of wall time at this scale.
    private const string FourHosts = """
        {
          "name": "four", "pool": { "name": "P4", "ha": { "enabled": true, "timeoutSeconds": 240, "hostFailuresToTolerate": 1, "allowOvercommit": false, "heartbeatSr": "nfs" } },
          "cloudstack": { "clusterName": "C4" },
          "migration": { "setupSeconds": 4 },
          "hosts": [ { "name": "h1", "master": true, "memoryMiB": 65536, "rebootSeconds": 120 }, { "name": "h2", "memoryMiB": 65536, "rebootSeconds": 120 },
                     { "name": "h3", "memoryMiB": 65536, "rebootSeconds": 120 }, { "name": "h4", "memoryMiB": 65536, "rebootSeconds": 120 } ],
          "srs": [ { "name": "nfs", "shared": true } ],
          "generate": [ { "hosts": ["h1", "h2", "h3", "h4"], "perHost": 6, "memoryMiB": [2048, 4096, 8192], "seed": 3 } ]
        }
        """;

    private static void AssertPoolWhole(JsonObject audit, JsonObject before, bool everyHostOnce)
    {
        Assert.Empty(audit["violations"]!.AsArray());
        Assert.All(audit["vms"]!.AsArray(), v => Assert.Equal("Running", v!["powerState"]!.ToString()));
        Assert.All(audit["hosts"]!.AsArray(), h => Assert.True(h!["enabled"]!.GetValue<bool>(), $"{h["name"]} left disabled"));
        if (everyHostOnce)
        {
            Assert.All(audit["hosts"]!.AsArray(), h => Assert.Equal(1, h!["bootCount"]!.GetValue<int>()));
        }

        var pool = audit["pool"]!.AsObject();
        var poolBefore = before["pool"]!.AsObject();
        foreach (var key in new[] { "haEnabled", "haConfiguration", "haHeartbeatSrs", "haHostFailuresToTolerate", "haAllowOvercommit" })
        {
            Assert.Equal(poolBefore[key]!.ToJsonString(), pool[key]!.ToJsonString());
        }

        Assert.Empty(pool["otherConfig"]!.AsObject());
        Assert.Equal("Managed", audit["cloudstack"]!["managedState"]!.ToString());
    }

    private static Task<Process> StartCliAsync(LabHarness lab, string marker, params string[] args) => lab.StartCliUntilAsync(marker, args);

    [Theory]
    [InlineData("h1: evacuating")]
    [InlineData("h1: rebooting")]
    [InlineData("h2: evacuating")]
    public async Task CtrlC_AtAPhase_StopsAtSafePointRestoresAndExits130(string phase)
    {
        await using var lab = await LabHarness.StartAsync(FourHosts, timeScale: 200);
        var before = lab.Audit();
        using var process = await StartCliAsync(lab, phase, "--clustername", "C4", "--exec");
        using (var kill = Process.Start("kill", ["-INT", process.Id.ToString(System.Globalization.CultureInfo.InvariantCulture)]))
        {
            await kill.WaitForExitAsync();
        }

        await process.WaitForExitAsync().WaitAsync(TimeSpan.FromSeconds(120));
        Assert.Equal(130, process.ExitCode);
        var audit = lab.Audit();
        AssertPoolWhole(audit, before, everyHostOnce: false);
        Assert.All(audit["hosts"]!.AsArray(), h => Assert.InRange(h!["bootCount"]!.GetValue<int>(), 0, 1));
    }

    [Fact]
    public async Task KillDashNine_ThenResume_FinishesWithTheSameGuarantees()
    {
        await using var lab = await LabHarness.StartAsync(FourHosts, timeScale: 200);
        var before = lab.Audit();

        // The real CLI as its own process, killed with SIGKILL once the second host is being evacuated.
        using var process = await StartCliAsync(lab, "h2: evacuating", "--clustername", "C4", "--exec");
        process.Kill(entireProcessTree: true);
        await process.WaitForExitAsync();

        // Mid-run: HA off, cluster unmanaged, the lock held.
        var mid = lab.Audit();
        Assert.False(mid["pool"]!["haEnabled"]!.GetValue<bool>());
        Assert.NotEmpty(mid["pool"]!["otherConfig"]!.AsObject());

        // A second run is refused while the dead run holds the lock; nothing changes.
        var (refused, _, refusedErr) = await lab.RunCliAsync("--clustername", "C4", "--exec");
        Assert.Equal(3, refused);
        Assert.Contains("lock", refusedErr, StringComparison.OrdinalIgnoreCase);

        var (code, stdout, stderr) = await lab.RunCliAsync("resume", "--clustername", "C4");
        Assert.True(code == 0, $"exit {code}\n{stdout}\n{stderr}");
        AssertPoolWhole(lab.Audit(), before, everyHostOnce: true);
    }

    [Fact]
    public async Task Restore_AfterKill_PutsBackHaCloudStackHostsAndLockWithoutRebooting()
    {
        await using var lab = await LabHarness.StartAsync(FourHosts, timeScale: 200);
        var before = lab.Audit();
        using var process = await StartCliAsync(lab, "h1: evacuating", "--clustername", "C4", "--exec");
        process.Kill(entireProcessTree: true);
        await process.WaitForExitAsync();

        var (code, stdout, stderr) = await lab.RunCliAsync("restore", "--clustername", "C4");
        Assert.True(code == 0, $"exit {code}\n{stdout}\n{stderr}");
        var audit = lab.Audit();
        AssertPoolWhole(audit, before, everyHostOnce: false);
        Assert.All(audit["hosts"]!.AsArray(), h => Assert.Equal(0, h!["bootCount"]!.GetValue<int>()));
    }


    // A kill at every moment of a run is swept in memory, at every journal append of every mode
    // (Core.Tests Run/CrashAtEveryAppendTests); these tests keep real kill -9 and Ctrl-C on the real CLI and wire.
}
