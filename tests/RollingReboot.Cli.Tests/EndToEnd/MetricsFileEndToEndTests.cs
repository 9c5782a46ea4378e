using System.Diagnostics;

namespace RollingReboot.Cli.Tests.EndToEnd;

/// <summary>
/// --metrics-file: Prometheus text format for node_exporter's textfile collector, checked by the real promtool
/// (Debian's prometheus package, installed by .ci/run), through a pause and a resume to the end.
/// </summary>
public sealed class MetricsFileEndToEndTests
{
    private static readonly string FourHosts = LabHarness.FourHosts("MP", "MC", "m");

    private static async Task<string> PromtoolCheckAsync(string path)
    {
        // Not found is a failure, never a skip: the test needs the real checker.
        Assert.True(File.Exists("/usr/bin/promtool"), "promtool is missing: install Debian's prometheus package (.ci/run does)");
        var start = new ProcessStartInfo("/usr/bin/promtool", ["check", "metrics"]) { RedirectStandardInput = true, RedirectStandardOutput = true, RedirectStandardError = true };
        using var p = Process.Start(start)!;
        await p.StandardInput.WriteAsync(await File.ReadAllTextAsync(path));
        p.StandardInput.Close();
        var output = await p.StandardOutput.ReadToEndAsync() + await p.StandardError.ReadToEndAsync();
        await p.WaitForExitAsync();
        Assert.True(p.ExitCode == 0, $"promtool check metrics: exit {p.ExitCode}\n{output}");
        return output;
    }

    private static double Value(string text, string series)
    {
        var line = text.Split('\n').Single(l => l.StartsWith(series + " ", StringComparison.Ordinal));
        return double.Parse(line[(series.Length + 1)..], System.Globalization.CultureInfo.InvariantCulture);
    }

    [Fact]
    public async Task PausedThenResumed_TheFileFollowsTheRun_AndPromtoolAcceptsItEachTime()
    {
        await using var lab = await LabHarness.StartAsync(FourHosts, timeScale: 200);
        var dir = Directory.CreateTempSubdirectory("rollreboot-metrics-").FullName;
        var file = Path.Combine(dir, "rollreboot.prom");
        try
        {
            var (code, stdout, stderr) = await lab.RunCliAsync("--clustername", "MC", "--exec", "--pause-after", "1", "--metrics-file", file);
            Assert.True(code == 4, $"exit {code}\n{stdout}\n{stderr}");
            await PromtoolCheckAsync(file);
            var paused = await File.ReadAllTextAsync(file);
            Assert.Equal(0, Value(paused, "rollreboot_run_state{cluster=\"MC\",state=\"done\"}"));
            Assert.Equal(1, Value(paused, "rollreboot_hosts_done{cluster=\"MC\"}"));
            Assert.Equal(4, Value(paused, "rollreboot_hosts{cluster=\"MC\"}"));
            Assert.Equal(3, paused.Split('\n').Count(l => l.StartsWith("rollreboot_host_reboot_required{", StringComparison.Ordinal) && l.EndsWith(" 1", StringComparison.Ordinal)));
            Assert.DoesNotContain("rollreboot_last_success_timestamp_seconds", paused, StringComparison.Ordinal);
            Assert.Equal([file], Directory.GetFiles(dir));

            (code, stdout, stderr) = await lab.RunCliAsync("resume", "--clustername", "MC", "--metrics-file", file);
            Assert.True(code == 0, $"exit {code}\n{stdout}\n{stderr}");
            await PromtoolCheckAsync(file);
            var done = await File.ReadAllTextAsync(file);
            Assert.Equal(1, Value(done, "rollreboot_run_state{cluster=\"MC\",state=\"done\"}"));
            Assert.Equal(0, Value(done, "rollreboot_run_state{cluster=\"MC\",state=\"running\"}"));
            Assert.Equal(4, Value(done, "rollreboot_hosts_done{cluster=\"MC\"}"));
            Assert.DoesNotContain(done.Split('\n'), l => l.StartsWith("rollreboot_host_reboot_required{", StringComparison.Ordinal) && l.EndsWith(" 1", StringComparison.Ordinal));
            Assert.True(Value(done, "rollreboot_last_success_timestamp_seconds{cluster=\"MC\"}") > 0);
            Assert.True(Value(done, "rollreboot_migrations{cluster=\"MC\"}") > 0);
            Assert.Equal(4, done.Split('\n').Count(l => l.StartsWith("rollreboot_host_phase{", StringComparison.Ordinal) && l.Contains("phase=\"done\"", StringComparison.Ordinal) && l.EndsWith(" 1", StringComparison.Ordinal)));
            Assert.Equal([file], Directory.GetFiles(dir));
            Assert.Empty(lab.Audit()["violations"]!.AsArray());
        }
        finally
        {
            Directory.Delete(dir, recursive: true);
        }
    }

    [Fact]
    public async Task MetricsFileInADirectoryThatDoesNotExist_IsOneLineExit2_NothingChanged()
    {
        await using var lab = await LabHarness.StartAsync(FourHosts, timeScale: 200);
        var (code, stdout, stderr) = await lab.RunCliAsync("--clustername", "MC", "--exec", "--metrics-file", "/nonexistent-dir/rollreboot.prom");
        Assert.True(code == 2, $"exit {code}\n{stdout}\n{stderr}");
        Assert.Contains("--metrics-file /nonexistent-dir/rollreboot.prom: directory /nonexistent-dir does not exist", stderr, StringComparison.Ordinal);
        Assert.DoesNotContain("   at ", stderr, StringComparison.Ordinal);
        Assert.DoesNotContain(lab.Audit()["events"]!.AsArray(), e => e!["type"]!.GetValue<string>() is "host.disable" or "ha.disable" or "lock.acquire");
    }
}
