namespace RollingReboot.Cli.Tests.EndToEnd;

/// <summary>With no pool configured the CLI runs against its embedded lab, and says so.</summary>
public sealed class EmbeddedLabTests
{
    [Fact]
    public async Task NoPoolConfigured_DryRunUsesEmbeddedLabAndSaysItIsSimulated()
    {
        var stdout = new StringWriter();
        var stderr = new StringWriter();
        var state = Directory.CreateTempSubdirectory("rollreboot-embedded-test-").FullName;
        var env = new CliEnvironment
        {
            GetVariable = n => n is "HOME" ? state : null,
            Out = stdout,
            Error = TextWriter.Synchronized(stderr),
        };

        var code = await CliApp.RunAsync(["--clustername", "CLUSTER-1", "--format", "json"], env);

        Assert.True(code == 0, stderr.ToString());
        Assert.Contains("embedded lab", stderr.ToString(), StringComparison.Ordinal);
        Assert.Contains("SIMULATED", stderr.ToString(), StringComparison.Ordinal);
        var plan = System.Text.Json.Nodes.JsonNode.Parse(stdout.ToString())!;
        Assert.Equal("xen1", plan["hosts"]![0]!["name"]!.ToString());
        Assert.Equal(6, plan["steps"]!.AsArray().Count);
        Directory.Delete(state, recursive: true);
    }
}
