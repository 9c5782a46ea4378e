using System.Diagnostics;
using System.Net;
using System.Net.Sockets;
using System.Text.Json;

namespace RollingReboot.Cli.Tests.EndToEnd;

/// <summary>
/// A real Prometheus server (Debian's prometheus package, /usr/bin/prometheus) on loopback, evaluating the rules it is
/// given every second; its rules are changed by rewriting the file and POST /-/reload (--web.enable-lifecycle).
/// Missing is a failure, never a skip. Killed and its directory removed on dispose.
/// </summary>
internal sealed class PrometheusServer : IAsyncDisposable
{
    public const string Binary = "/usr/bin/prometheus";

    /// <summary>Wall-clock bound of each wait on the server (it evaluates every wall second; the lab's scale does not apply).</summary>
    private static readonly TimeSpan s_wait = TimeSpan.FromSeconds(60);

    private readonly Process _process;
    private readonly string _dir;
    private readonly HttpClient _http = new() { Timeout = TimeSpan.FromSeconds(10) };
    private readonly System.Text.StringBuilder _output = new();

    private PrometheusServer(Process process, string dir, Uri url)
    {
        _process = process;
        _dir = dir;
        Url = url;
    }

    public Uri Url { get; }

    /// <summary>An alert rule that fires at once (for: 0s).</summary>
    public static string Firing(string name) => $"  - alert: {name}\n    expr: vector(1)\n    for: 0s\n";

    /// <summary>An alert rule that stays pending for the whole test (for: 1h).</summary>
    public static string Pending(string name) => $"  - alert: {name}\n    expr: vector(1)\n    for: 1h\n";

    /// <summary>An alert rule that never fires (its expression is empty).</summary>
    public static string Quiet(string name) => $"  - alert: {name}\n    expr: vector(1) == 0\n    for: 0s\n";

    public static async Task<PrometheusServer> StartAsync(params string[] rules)
    {
        Assert.True(File.Exists(Binary), $"{Binary} is missing: install Debian's prometheus package (.ci/run does)");
        var dir = Directory.CreateTempSubdirectory("rollreboot-prometheus-").FullName;
        await File.WriteAllTextAsync(Path.Combine(dir, "prometheus.yml"), "global:\n  evaluation_interval: 1s\nrule_files: [rules.yml]\n");
        await WriteRulesAsync(dir, rules);
        var port = FreePort();
        var start = new ProcessStartInfo(Binary,
            [$"--config.file={Path.Combine(dir, "prometheus.yml")}", $"--storage.tsdb.path={Path.Combine(dir, "data")}", $"--web.listen-address=127.0.0.1:{port}", "--web.enable-lifecycle"])
        {
            RedirectStandardOutput = true,
            RedirectStandardError = true,
            WorkingDirectory = dir,
        };
        var process = Process.Start(start)!;
        var server = new PrometheusServer(process, dir, new Uri($"http://127.0.0.1:{port}/"));
        process.OutputDataReceived += (_, e) => server.Keep(e.Data);
        process.ErrorDataReceived += (_, e) => server.Keep(e.Data);
        process.BeginOutputReadLine();
        process.BeginErrorReadLine();
        try
        {
            await server.WaitAsync(async () => (await server._http.GetAsync(new Uri(server.Url, "-/ready"))).IsSuccessStatusCode, "ready");
            return server;
        }
        catch
        {
            await server.DisposeAsync();
            throw;
        }
    }

    /// <summary>The active alerts as Prometheus lists them: name and state.</summary>
    public async Task<List<(string Name, string State)>> AlertsAsync()
    {
        using var doc = JsonDocument.Parse(await _http.GetStringAsync(new Uri(Url, "api/v1/alerts")));
        return doc.RootElement.GetProperty("data").GetProperty("alerts").EnumerateArray()
            .Select(a => (a.GetProperty("labels").GetProperty("alertname").GetString()!, a.GetProperty("state").GetString()!)).ToList();
    }

    /// <summary>Waits until Prometheus lists exactly these alerts (name/state, in any order).</summary>
    public Task WaitForAlertsAsync(params string[] expected) =>
        WaitAsync(async () => (await AlertsAsync()).Select(a => $"{a.Name}/{a.State}").Order(StringComparer.Ordinal).SequenceEqual(expected.Order(StringComparer.Ordinal)),
            "alerts " + string.Join(", ", expected));

    /// <summary>New rules, applied by POST /-/reload (it answers once the configuration is loaded).</summary>
    public async Task ReloadAsync(params string[] rules)
    {
        await WriteRulesAsync(_dir, rules);
        using var response = await _http.PostAsync(new Uri(Url, "-/reload"), null);
        Assert.True(response.IsSuccessStatusCode, $"prometheus /-/reload: {(int)response.StatusCode} {await response.Content.ReadAsStringAsync()}\n{Output}");
    }

    public string Output
    {
        get
        {
            lock (_output)
            {
                return _output.ToString();
            }
        }
    }

    public async ValueTask DisposeAsync()
    {
        try
        {
            if (!_process.HasExited)
            {
                _process.Kill(entireProcessTree: true);
                await _process.WaitForExitAsync();
            }
        }
        finally
        {
            _process.Dispose();
            _http.Dispose();
            try
            {
                Directory.Delete(_dir, recursive: true);
            }
            catch (IOException)
            {
                // A leftover temp directory is harmless.
            }
        }
    }

    private static Task WriteRulesAsync(string dir, string[] rules) =>
        File.WriteAllTextAsync(Path.Combine(dir, "rules.yml"), "groups:\n- name: rollreboot-test\n  rules:\n" + string.Concat(rules));

    private static int FreePort()
    {
        using var listener = new TcpListener(IPAddress.Loopback, 0);
        listener.Start();
        return ((IPEndPoint)listener.LocalEndpoint).Port;
    }

    private void Keep(string? line)
    {
        if (line is not null)
        {
            lock (_output)
            {
                _output.AppendLine(line);
            }
        }
    }

    private async Task WaitAsync(Func<Task<bool>> done, string what)
    {
        var watch = Stopwatch.StartNew();
        while (true)
        {
            try
            {
                if (await done())
                {
                    return;
                }
            }
            catch (HttpRequestException)
            {
                // Not listening yet.
            }

            if (_process.HasExited)
            {
                Assert.Fail($"prometheus exited ({_process.ExitCode}) before {what}:\n{Output}");
            }

            Assert.True(watch.Elapsed < s_wait, $"prometheus: no {what} within {s_wait.TotalSeconds} s:\n{Output}");
            await Task.Delay(TimeSpan.FromMilliseconds(100), TimeProvider.System);
        }
    }
}
