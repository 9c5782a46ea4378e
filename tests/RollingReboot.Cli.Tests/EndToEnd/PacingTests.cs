namespace RollingReboot.Cli.Tests.EndToEnd;

/// <summary>Canary pause, maintenance window and resume: stop safely, restore, continue later.</summary>
public sealed class PacingTests
{
    private static readonly string FourHosts = LabHarness.FourHosts("PP", "PC", "p");

    [Fact]
    public async Task PauseAfterOne_ThenWindowTooShort_ThenResume_EveryHostOnce()
    {
        await using var lab = await LabHarness.StartAsync(FourHosts, timeScale: 200);

        var (code, stdout, stderr) = await lab.RunCliAsync("--clustername", "PC", "--exec", "--pause-after", "1");
        Assert.True(code == 4, $"exit {code}\n{stdout}\n{stderr}");
        Assert.Contains("paused after 1 host", stdout + stderr, StringComparison.Ordinal);
        Assert.Equal(1, AuditAssert.BootCounts(lab.Audit()).Sum());
        AuditAssert.Restored(lab.Audit(), vmsRunning: false);

        // The next window is too short for even one host: nothing is started, all is restored, exit 4.
        (code, stdout, stderr) = await lab.RunCliAsync("resume", "--clustername", "PC", "--window-end", "2m");
        Assert.True(code == 4, $"exit {code}\n{stdout}\n{stderr}");
        Assert.Contains("would end after the window", stdout + stderr, StringComparison.Ordinal);
        Assert.Equal(1, AuditAssert.BootCounts(lab.Audit()).Sum());
        AuditAssert.Restored(lab.Audit(), vmsRunning: false);

        (code, stdout, stderr) = await lab.RunCliAsync("resume", "--clustername", "PC", "--host-delay", "30s");
        Assert.True(code == 0, $"exit {code}\n{stdout}\n{stderr}");
        Assert.All(AuditAssert.BootCounts(lab.Audit()), n => Assert.Equal(1, n));
        AuditAssert.Restored(lab.Audit(), vmsRunning: false);
        Assert.Contains("--host-delay", stderr, StringComparison.Ordinal);
    }
}
