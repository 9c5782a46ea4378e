using System.Text.Json.Nodes;

namespace RollingReboot.Cli.Tests.EndToEnd;

/// <summary>
/// --prometheus-url against a real Prometheus server (started here on loopback with rules that fire, stay pending or
/// are quiet) and the lab: what kured's alert gate blocks at the start, what it lets through, and an alert that starts
/// firing mid-run, which holds the run between hosts until it stops safely and 'resume' finishes once it is gone.
/// </summary>
public sealed class AlertGateEndToEndTests
{
    private static readonly string FourHosts = LabHarness.FourHosts("AP", "AC", "a");

    [Fact]
    public async Task AlertsAtTheStart_BlockAsKuredCountsThem_NothingChanged()
    {
        await using var prometheus = await PrometheusServer.StartAsync(PrometheusServer.Firing("PoolOnFire"), PrometheusServer.Pending("DiskSlowlyFilling"));
        await prometheus.WaitForAlertsAsync("PoolOnFire/firing", "DiskSlowlyFilling/pending");
        await using var lab = await LabHarness.StartAsync(FourHosts, timeScale: 200);
        var url = prometheus.Url.ToString();

        // A firing alert: exit 3 before anything changes.
        var (code, stdout, stderr) = await lab.RunCliAsync("--clustername", "AC", "--exec", "--prometheus-url", url);
        Assert.True(code == 3, $"exit {code}\n{stdout}\n{stderr}");
        Assert.Contains("2 alert(s) active in Prometheus at http://127.0.0.1:", stdout + stderr, StringComparison.Ordinal);
        Assert.Contains("DiskSlowlyFilling, PoolOnFire", stdout + stderr, StringComparison.Ordinal);
        AuditAssert.NothingChanged(lab.Audit());

        // The plan shows the blocker; the filter leaves the firing one out, and the pending one still counts...
        (code, stdout, stderr) = await lab.RunCliAsync("--clustername", "AC", "--prometheus-url", url, "--alert-filter", "^PoolOn");
        Assert.True(code == 3, $"exit {code}\n{stdout}\n{stderr}");
        Assert.Contains("[ALERTS_ACTIVE] 1 alert(s) active in Prometheus at http://127.0.0.1:", stdout, StringComparison.Ordinal);
        Assert.Contains("(pending): DiskSlowlyFilling", stdout, StringComparison.Ordinal);
        // ...unless only firing alerts count.
        (code, stdout, stderr) = await lab.RunCliAsync("--clustername", "AC", "--prometheus-url", url, "--alert-filter-regexp", "^PoolOn", "--alert-firing-only");
        Assert.True(code == 0, $"exit {code}\n{stdout}\n{stderr}");
        // Match-only inverts the filter: only the alerts it finds count.
        (code, stdout, stderr) = await lab.RunCliAsync("--clustername", "AC", "--prometheus-url", url, "--alert-filter", "Fire", "--alert-filter-match-only");
        Assert.True(code == 3, $"exit {code}\n{stdout}\n{stderr}");
        Assert.Contains("(firing): PoolOnFire", stdout, StringComparison.Ordinal);
        Assert.DoesNotContain("DiskSlowlyFilling", stdout, StringComparison.Ordinal);
        (code, stdout, stderr) = await lab.RunCliAsync("--clustername", "AC", "--prometheus-url", url, "--alert-filter", "^Nothing", "--alert-filter-match-only");
        Assert.True(code == 0, $"exit {code}\n{stdout}\n{stderr}");
        AuditAssert.NothingChanged(lab.Audit());
    }

    [Fact]
    public async Task UnreachablePrometheus_BlocksTheStart_CredentialsNeverShown()
    {
        await using var lab = await LabHarness.StartAsync(FourHosts, timeScale: 200);
        // A port nothing listens on (a server started and stopped).
        string url;
        await using (var gone = await PrometheusServer.StartAsync(PrometheusServer.Quiet("Nothing")))
        {
            url = gone.Url.ToString();
        }

        var secret = "hunter2-" + Guid.NewGuid().ToString("N")[..8];
        var withCredentials = url.Replace("http://", $"http://rollreboot:{secret}@", StringComparison.Ordinal);
        var env = new Dictionary<string, string> { ["ROLLREBOOT_PROMETHEUS_URL"] = withCredentials };
        var (code, stdout, stderr) = await lab.RunCliAsync(env, "--clustername", "AC", "--exec");
        Assert.True(code == 3, $"exit {code}\n{stdout}\n{stderr}");
        Assert.Contains("could not be asked for alerts", stdout + stderr, StringComparison.Ordinal);
        Assert.DoesNotContain(secret, stdout + stderr, StringComparison.Ordinal);
        foreach (var log in Directory.GetFiles(lab.StateDir, "*", SearchOption.AllDirectories))
        {
            Assert.DoesNotContain(secret, await File.ReadAllTextAsync(log), StringComparison.Ordinal);
        }

        AuditAssert.NothingChanged(lab.Audit());

        // On the command line a URL with credentials is refused, in one line, before anything is asked.
        (code, stdout, stderr) = await lab.RunCliAsync("--clustername", "AC", "--exec", "--prometheus-url", withCredentials);
        Assert.True(code == 2, $"exit {code}\n{stdout}\n{stderr}");
        Assert.Equal("rollreboot: --prometheus-url holds credentials, which never go on the command line: put the URL in ROLLREBOOT_PROMETHEUS_URL instead", stderr.Trim());
        AuditAssert.NothingChanged(lab.Audit());
    }

    [Fact]
    public async Task FilteredOutAlert_RunsToTheEnd_NothingLost()
    {
        await using var prometheus = await PrometheusServer.StartAsync(PrometheusServer.Firing("Watchdog"), PrometheusServer.Quiet("PoolOnFire"));
        await prometheus.WaitForAlertsAsync("Watchdog/firing");
        await using var lab = await LabHarness.StartAsync(FourHosts, timeScale: 200);
        var (code, stdout, stderr) = await lab.RunCliAsync("--clustername", "AC", "--exec", "--prometheus-url", prometheus.Url.ToString(), "--alert-filter", "^Watchdog$");
        Assert.True(code == 0, $"exit {code}\n{stdout}\n{stderr}");
        Assert.All(AuditAssert.BootCounts(lab.Audit()), n => Assert.Equal(1, n));
        AuditAssert.Restored(lab.Audit());
        Assert.Contains("Alert gate: Prometheus at http://127.0.0.1:", stderr, StringComparison.Ordinal);
    }

    [Fact]
    public async Task AlertFiringAfterTheFirstHost_HoldsTheRun_StopsSafely_ResumeFinishesOnceItIsGone()
    {
        await using var prometheus = await PrometheusServer.StartAsync(PrometheusServer.Quiet("PoolOnFire"));
        await prometheus.WaitForAlertsAsync();
        await using var lab = await LabHarness.StartAsync(FourHosts, timeScale: 200);
        var dir = Directory.CreateTempSubdirectory("rollreboot-alert-hook-").FullName;
        try
        {
            // After the first host the hook says so and waits (bounded) until the alert fires in Prometheus.
            var reached = Path.Combine(dir, "first-host-done");
            var go = Path.Combine(dir, "go");
            var hook = $"[ -e '{reached}' ] && exit 0; touch '{reached}'; i=0; while [ ! -e '{go}' ] && [ $i -lt 600 ]; do sleep 0.1; i=$((i+1)); done";
            var firing = Task.Run(async () =>
            {
                while (!File.Exists(reached))
                {
                    await Task.Delay(TimeSpan.FromMilliseconds(50), TimeProvider.System);
                }

                await prometheus.ReloadAsync(PrometheusServer.Firing("PoolOnFire"));
                await prometheus.WaitForAlertsAsync("PoolOnFire/firing");
                await File.WriteAllTextAsync(go, "");
            });
            var url = prometheus.Url.ToString();
            var run = lab.RunCliAsync("--clustername", "AC", "--exec", "--prometheus-url", url, "--blocker-timeout", "5m", "--post-host-hook", hook);
            await Task.WhenAny(firing, run);
            var (code, stdout, stderr) = await run;
            await firing;
            Assert.True(code == 4, $"exit {code}\n{stdout}\n{stderr}");
            Assert.Contains("blocked before a2", stdout + stderr, StringComparison.Ordinal);
            Assert.Contains("(firing): PoolOnFire", stdout + stderr, StringComparison.Ordinal);
            Assert.Contains("checking again in", stderr, StringComparison.Ordinal);
            Assert.Equal(1, AuditAssert.BootCounts(lab.Audit()).Sum());
            AuditAssert.Restored(lab.Audit());

            // Still firing: resume does not start.
            (code, stdout, stderr) = await lab.RunCliAsync("resume", "--clustername", "AC", "--prometheus-url", url);
            Assert.True(code == 3, $"exit {code}\n{stdout}\n{stderr}");
            Assert.Equal(1, AuditAssert.BootCounts(lab.Audit()).Sum());

            // Gone: resume finishes, every host rebooted once.
            await prometheus.ReloadAsync(PrometheusServer.Quiet("PoolOnFire"));
            await prometheus.WaitForAlertsAsync();
            (code, stdout, stderr) = await lab.RunCliAsync("resume", "--clustername", "AC", "--prometheus-url", url);
            Assert.True(code == 0, $"exit {code}\n{stdout}\n{stderr}");
            Assert.All(AuditAssert.BootCounts(lab.Audit()), n => Assert.Equal(1, n));
            AuditAssert.Restored(lab.Audit());
        }
        finally
        {
            Directory.Delete(dir, recursive: true);
        }
    }
}
