using System.Diagnostics;
using RollingReboot.Cli.Adapters;
using RollingReboot.Core.Ports;

namespace RollingReboot.Cli.Tests.Adapters;

public sealed class LocalCommandRunnerTests
{
    private static readonly Dictionary<string, string> s_env = new() { ["ROLLREBOOT_HOST"] = "xen1" };

    [Fact]
    public async Task ExitCodeOutputAndEnvironment_AreReported()
    {
        var r = await new LocalCommandRunner().RunAsync("echo \"host $ROLLREBOOT_HOST\"; exit 70", s_env, TimeSpan.FromSeconds(30));
        Assert.Equal((CommandStatus.Exited, 70), (r.Status, r.ExitCode));
        Assert.Equal("host xen1", r.Output);
    }

    [Fact]
    public async Task PastItsTimeLimit_IsKilled_TimedOut()
    {
        var watch = Stopwatch.StartNew();
        var r = await new LocalCommandRunner().RunAsync("sleep 30", s_env, TimeSpan.FromMilliseconds(500));
        Assert.Equal(CommandStatus.TimedOut, r.Status);
        Assert.True(watch.Elapsed < TimeSpan.FromSeconds(15), $"took {watch.Elapsed}");
    }

    [Fact]
    public async Task ABackgroundChildHoldingTheOutput_DoesNotHoldTheRun()
    {
        var watch = Stopwatch.StartNew();
        var r = await new LocalCommandRunner().RunAsync("sleep 30 & echo started; exit 0", s_env, TimeSpan.FromMinutes(1));
        Assert.Equal((CommandStatus.Exited, 0), (r.Status, r.ExitCode));
        Assert.True(watch.Elapsed < TimeSpan.FromSeconds(15), $"took {watch.Elapsed}");
    }

    [Theory]
    [InlineData("ROLLREBOOT_XAPI_PASSWORD", true)]
    [InlineData("ROLLREBOOT_CLOUDSTACK_SECRET_KEY", true)]
    [InlineData("ROLLREBOOT_SSH_KEY_PASSPHRASE", true)]
    [InlineData("ROLLREBOOT_NOTIFY_URL", true)]
    [InlineData("ROLLREBOOT_HOST", false)]
    [InlineData("PATH", false)]
    public void SecretsAreRecognised(string name, bool secret) => Assert.Equal(secret, LocalCommandRunner.IsSecret(name));
}
