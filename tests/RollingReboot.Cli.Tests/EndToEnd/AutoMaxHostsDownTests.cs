using System.Text.Json.Nodes;

namespace RollingReboot.Cli.Tests.EndToEnd;

/// <summary>--max-hosts-down auto: the fastest plan the capacity allows, chosen before anything changes.</summary>
public sealed class AutoMaxHostsDownTests
{
    [Fact]
    public async Task Auto_OnAPoolWithHeadroom_PicksSeveralHostsDown_AndIsFasterThanOneAtATime()
    {
        await using var lab = await LabHarness.StartAsync(await File.ReadAllTextAsync(LabHarness.SharedScenario("bench-sixteen-half.json")), timeScale: 100);
        var (code, stdout, stderr) = await lab.RunCliAsync("--clustername", "CLUSTER-HALF", "--format", "json", "--max-hosts-down", "auto");
        Assert.True(code == 0, $"exit {code}\n{stdout}\n{stderr}");
        var auto = JsonNode.Parse(stdout)!;
        (code, stdout, stderr) = await lab.RunCliAsync("--clustername", "CLUSTER-HALF", "--format", "json");
        Assert.True(code == 0, $"exit {code}\n{stdout}\n{stderr}");
        var one = JsonNode.Parse(stdout)!;

        var k = auto["options"]!["maxHostsDown"]!.GetValue<int>();
        Assert.InRange(k, 2, 8);
        Assert.True(auto["estimate"]!["totalSeconds"]!.GetValue<double>() < one["estimate"]!["totalSeconds"]!.GetValue<double>() * 0.8);
        // Waves really hold several hosts; the master still goes alone, first.
        var waves = auto["steps"]!.AsArray().GroupBy(s => s!["wave"]!.GetValue<int>()).ToList();
        Assert.Single(waves[0]);
        Assert.Contains(waves, w => w.Count() > 1);
        Assert.Empty(lab.Audit()["events"]!.AsArray());
    }

    [Theory]
    [InlineData("0")]
    [InlineData("lots")]
    public async Task NotANumberNorAuto_Exit2(string value)
    {
        await using var lab = await LabHarness.StartAsync(LabHarness.FourHosts("AP", "AC", "a"), timeScale: 100);
        var (code, _, stderr) = await lab.RunCliAsync("--clustername", "AC", "--max-hosts-down", value);
        Assert.Equal(2, code);
        Assert.Contains($"--max-hosts-down {value} must be a whole number of at least 1, or 'auto'", stderr, StringComparison.Ordinal);
    }
}
