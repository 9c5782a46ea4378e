using System.Text.Json.Nodes;

namespace RollingReboot.Cli.Tests.EndToEnd;

/// <summary>The real CLI against the lab with a config file: its settings change the plan; the command line still wins.</summary>
public sealed class ConfigFileEndToEndTests : IAsyncLifetime
{
    private const string Pool = """
        {
          "name": "cfg", "pool": { "name": "PC" }, "cloudstack": { "clusterName": "CC" },
          "hosts": [ { "name": "c1", "memoryMiB": 65536 }, { "name": "c2", "memoryMiB": 65536 }, { "name": "c3", "memoryMiB": 65536 },
                     { "name": "c4", "memoryMiB": 65536 }, { "name": "c5", "memoryMiB": 65536 } ],
          "generate": [ { "hosts": ["c1", "c2", "c3", "c4", "c5"], "perHost": 2, "memoryMiB": [2048], "seed": 3 } ]
        }
        """;

    private LabHarness _lab = null!;

    public async Task InitializeAsync() => _lab = await LabHarness.StartAsync(Pool, 100);

    public async Task DisposeAsync() => await _lab.DisposeAsync();

    /// <summary>The harness sets HOME to its state directory: this is the default config file's place.</summary>
    private string DefaultConfigPath => Path.Combine(_lab.StateDir, ".config", "rollreboot", "config.json");

    private async Task WriteConfigAsync(string path, string json)
    {
        Directory.CreateDirectory(Path.GetDirectoryName(path)!);
        await File.WriteAllTextAsync(path, json);
    }

    private static (List<int> Waves, Dictionary<string, string> Actions) Plan(string stdout)
    {
        var plan = JsonNode.Parse(stdout)!;
        return (plan["steps"]!.AsArray().Select(s => s!["wave"]!.GetValue<int>()).ToList(),
            plan["hosts"]!.AsArray().ToDictionary(h => h!["name"]!.ToString(), h => h!["action"]!.ToString()));
    }

    [Fact]
    public async Task DefaultConfigFile_ClusterSection_ChangesThePlan_CommandLineWins()
    {
        await WriteConfigAsync(DefaultConfigPath, """
            { "defaults": { "maxHostsDown": 1, "threads": 4 },
              "clusters": { "CC": { "maxHostsDown": 2, "ignoreHosts": ["c5"] }, "OTHER": { "maxHostsDown": 3 } } }
            """);

        var (code, stdout, stderr) = await _lab.RunCliAsync("--clustername", "CC", "--format", "json");
        var (codeCli, stdoutCli, stderrCli) = await _lab.RunCliAsync("--clustername", "CC", "--format", "json", "--max-hosts-down", "1");

        Assert.True(code == 0, $"exit {code}\n{stdout}\n{stderr}");
        Assert.True(codeCli == 0, $"exit {codeCli}\n{stdoutCli}\n{stderrCli}");
        Assert.Contains($"rollreboot: using {DefaultConfigPath} (defaults, cluster CC): --threads 4 --max-hosts-down 2 --ignore-hosts c5", stderr, StringComparison.Ordinal);
        var (waves, actions) = Plan(stdout);
        Assert.Equal("skip", actions["c5"]);
        Assert.Equal(4, waves.Count);
        Assert.True(waves.Distinct().Count() < waves.Count, "with maxHostsDown 2 from the file, members share waves: " + string.Join(",", waves));
        Assert.True(waves.GroupBy(w => w).All(g => g.Count() <= 2));

        var (wavesCli, actionsCli) = Plan(stdoutCli);
        Assert.Equal(wavesCli.Count, wavesCli.Distinct().Count());
        Assert.Equal("skip", actionsCli["c5"]);
        Assert.Contains("--threads 4 --ignore-hosts c5", stderrCli, StringComparison.Ordinal);
        Assert.DoesNotContain("--max-hosts-down", stderrCli, StringComparison.Ordinal);
    }

    [Fact]
    public async Task ExplicitConfig_WithASecret_Exit2_OneLine_NothingTouched()
    {
        var path = Path.Combine(_lab.StateDir, "with-secret.json");
        await WriteConfigAsync(path, """{ "clusters": { "CC": { "threads": 4, "cloudstackSecretKey": "abc" } } }""");

        var (code, stdout, stderr) = await _lab.RunCliAsync("--clustername", "CC", "--exec", "--config", path);

        Assert.True(code == 2, $"exit {code}\n{stdout}\n{stderr}");
        var line = Assert.Single(stderr.Split('\n', StringSplitOptions.RemoveEmptyEntries));
        Assert.Equal($"rollreboot: config file {path}: \"clusters.CC.cloudstackSecretKey\" is a secret, and secrets are never read from the config file: " +
            "use ROLLREBOOT_CLOUDSTACK_SECRET_KEY_FILE (an owner-only file) and ROLLREBOOT_CLOUDSTACK_API_KEY, or a CloudMonkey profile (\"cmkProfile\" here)", line);
        Assert.Empty(stdout);
        Assert.DoesNotContain(_lab.Audit()["events"]!.AsArray(), e => e!["type"]!.ToString() is "host.disable" or "ha.disable" or "pool.otherConfig.add" or "cloudstack.managedState");
    }

    [Fact]
    public async Task ConfigWithABadDuration_Exec_Exit2_NothingTouched()
    {
        await WriteConfigAsync(DefaultConfigPath, """{ "defaults": { "hostTimeout": "20 minutes" } }""");

        var (code, _, stderr) = await _lab.RunCliAsync("--clustername", "CC", "--exec");

        Assert.Equal(2, code);
        Assert.Contains("\"defaults.hostTimeout\" \"20 minutes\" is not a duration", stderr, StringComparison.Ordinal);
        Assert.DoesNotContain(_lab.Audit()["events"]!.AsArray(), e => e!["type"]!.ToString() is "host.disable" or "ha.disable" or "pool.otherConfig.add" or "cloudstack.managedState");
    }
}
