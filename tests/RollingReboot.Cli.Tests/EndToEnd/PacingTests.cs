namespace RollingReboot.Cli.Tests.EndToEnd;

/// <summary>Canary pause, maintenance window and resume: stop safely, restore, continue later.</summary>
public sealed class PacingTests
{
    private static readonly string FourHosts = LabHarness.FourHosts("PP", "PC", "p");

    private static int[] BootCounts(System.Text.Json.Nodes.JsonObject audit) =>
        audit["hosts"]!.AsArray().Select(h => h!["bootCount"]!.GetValue<int>()).ToArray();

    private static void AssertRestored(System.Text.Json.Nodes.JsonObject audit)
    {
        Assert.Empty(audit["violations"]!.AsArray());
        Assert.True(audit["pool"]!["haEnabled"]!.GetValue<bool>());
        Assert.Equal("Managed", audit["cloudstack"]!["managedState"]!.ToString());
        Assert.Empty(audit["pool"]!["otherConfig"]!.AsObject());
        Assert.All(audit["hosts"]!.AsArray(), h => Assert.True(h!["enabled"]!.GetValue<bool>()));
    }

    [Fact]
    public async Task PauseAfterOne_ThenWindowTooShort_ThenResume_EveryHostOnce()
    {
        await using var lab = await LabHarness.StartAsync(FourHosts, timeScale: 200);

        var (code, stdout, stderr) = await lab.RunCliAsync("--clustername", "PC", "--exec", "--pause-after", "1");
        Assert.True(code == 4, $"exit {code}\n{stdout}\n{stderr}");
        Assert.Contains("paused after 1 host", stdout + stderr, StringComparison.Ordinal);
        Assert.Equal(1, BootCounts(lab.Audit()).Sum());
        AssertRestored(lab.Audit());

        // The next window is too short for even one host: nothing is started, all is restored, exit 4.
        (code, stdout, stderr) = await lab.RunCliAsync("resume", "--clustername", "PC", "--window-end", "2m");
        Assert.True(code == 4, $"exit {code}\n{stdout}\n{stderr}");
        Assert.Contains("would end after the window", stdout + stderr, StringComparison.Ordinal);
        Assert.Equal(1, BootCounts(lab.Audit()).Sum());
        AssertRestored(lab.Audit());

        (code, stdout, stderr) = await lab.RunCliAsync("resume", "--clustername", "PC", "--host-delay", "30s");
        Assert.True(code == 0, $"exit {code}\n{stdout}\n{stderr}");
        Assert.All(BootCounts(lab.Audit()), n => Assert.Equal(1, n));
        AssertRestored(lab.Audit());
        Assert.Contains("--host-delay", stderr, StringComparison.Ordinal);
    }
}
