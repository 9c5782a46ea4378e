using System.Text.Json.Nodes;
using RollingReboot.Cli.Tests.EndToEnd;

namespace RollingReboot.Cli.Tests.Commands;

/// <summary><c>rollreboot lab</c> itself: the ready line of a fleet, and a fleet refused.</summary>
public sealed class LabCommandTests
{
    [Fact]
    public async Task RepeatedScenario_StartsAFleet_ReadyLineHasEveryPoolsAudit()
    {
        var stdout = new ReadyWriter();
        var stderr = new StringWriter();
        using var stop = new CancellationTokenSource();
        var env = new CliEnvironment { GetVariable = _ => null, Out = stdout, Error = TextWriter.Synchronized(stderr) };
        var run = CliApp.RunAsync(
            ["lab", "--scenario", LabHarness.SharedScenario("fleet-a-three-hosts.json"), "--scenario", LabHarness.SharedScenario("fleet-b-three-hosts.json"), "--time-scale", "100"],
            env, stop.Token);

        var line = await stdout.Ready.Task.WaitAsync(TimeSpan.FromSeconds(60), TimeProvider.System);
        try
        {
            var ready = JsonNode.Parse(line)!.AsObject();
            Assert.True(ready["ready"]!.GetValue<bool>());
            var audits = ready["audits"]!.AsObject();
            Assert.Equal(["CLUSTER-A", "CLUSTER-B"], audits.Select(kv => kv.Key));
            Assert.Equal(ready["auditUrl"]!.GetValue<string>(), audits["CLUSTER-A"]!.GetValue<string>());
            Assert.Equal(6, ready["env"]!["ROLLREBOOT_XAPI_CERT_SHA256"]!.GetValue<string>().Split(',').Length);
            Assert.NotNull(ready["env"]!["ROLLREBOOT_CLOUDSTACK_URL"]);
            using var http = new HttpClient();
            foreach (var (pool, url) in audits)
            {
                var audit = JsonNode.Parse(await http.GetStringAsync(new Uri(url!.GetValue<string>())))!;
                Assert.Equal(pool, audit["pool"]!["name"]!.GetValue<string>());
                Assert.Equal(pool, audit["cloudstack"]!["clusterName"]!.GetValue<string>());
                Assert.Equal(3, audit["hosts"]!.AsArray().Count);
            }

            Assert.Contains("a fleet of 2 pools is ready", stderr.ToString(), StringComparison.Ordinal);
        }
        finally
        {
            await stop.CancelAsync();
        }

        Assert.Equal(0, await run.WaitAsync(TimeSpan.FromSeconds(30), TimeProvider.System));
        Assert.Equal(1, stdout.Lines);
    }

    [Fact]
    public async Task TwoPoolsAsOneClusterOfAZone_Exit2WithOneLine()
    {
        var dir = Directory.CreateTempSubdirectory("rollreboot-lab-command-");
        try
        {
            // Pool B renamed into cluster CLUSTER-A of ZONE-1, where pool A already is.
            var b = JsonNode.Parse(await File.ReadAllTextAsync(LabHarness.SharedScenario("fleet-b-three-hosts.json")))!;
            b["cloudstack"]!["clusterName"] = "CLUSTER-A";
            var twin = Path.Combine(dir.FullName, "twin.json");
            await File.WriteAllTextAsync(twin, b.ToJsonString());
            var stdout = new StringWriter();
            var stderr = new StringWriter();
            var env = new CliEnvironment { GetVariable = _ => null, Out = stdout, Error = stderr };

            var code = await CliApp.RunAsync(["lab", "--scenario", LabHarness.SharedScenario("fleet-a-three-hosts.json"), "--scenario", twin], env);

            Assert.Equal(2, code);
            Assert.Equal("", stdout.ToString());
            Assert.Equal(
                "rollreboot: invalid fleet: pools CLUSTER-A and CLUSTER-B are both cluster CLUSTER-A in zone ZONE-1: a zone's clusters need distinct names" + Environment.NewLine,
                stderr.ToString());
        }
        finally
        {
            dir.Delete(recursive: true);
        }
    }

    /// <summary>Stdout that hands over its first line as soon as it is written.</summary>
    private sealed class ReadyWriter : StringWriter
    {
        private int _lines;

        public TaskCompletionSource<string> Ready { get; } = new(TaskCreationOptions.RunContinuationsAsynchronously);

        public int Lines => Volatile.Read(ref _lines);

        public override void WriteLine(string? value)
        {
            base.WriteLine(value);
            Interlocked.Increment(ref _lines);
            Ready.TrySetResult(value ?? "");
        }
    }
}
