namespace RollingReboot.Cli.Tests.Commands;

/// <summary>The window and alert gate options: bad input is one line naming the option, exit 2, before any pool is asked.</summary>
public sealed class GateOptionsTests
{
    private static async Task<(int Code, string Err)> RunAsync(params string[] args)
    {
        var stderr = new StringWriter();
        // An XAPI address nobody listens on: the options are checked before anything is asked of it.
        var vars = new Dictionary<string, string> { ["ROLLREBOOT_XAPI_URL"] = "https://127.0.0.1:9/", ["ROLLREBOOT_XAPI_PASSWORD"] = "x", ["ROLLREBOOT_STATE_DIR"] = Path.GetTempPath() };
        var env = new CliEnvironment { GetVariable = n => vars.GetValueOrDefault(n), Out = TextWriter.Null, Error = stderr };
        var code = await CliApp.RunAsync(args, env);
        return (code, stderr.ToString().Trim());
    }

    [Theory]
    [InlineData("--wait-for-window", "rollreboot: --wait-for-window needs --window: the window whose next opening to wait for")]
    [InlineData("--alert-filter", "Watchdog", "rollreboot: --alert-filter, --alert-filter-match-only and --alert-firing-only need --prometheus-url (or ROLLREBOOT_PROMETHEUS_URL): the Prometheus whose alerts to read")]
    [InlineData("--prometheus-url", "prom:9090", "rollreboot: --prometheus-url must be an http(s) URL of a Prometheus server, e.g. http://prometheus:9090")]
    [InlineData("--prometheus-url", "http://prom:9090", "--alert-filter-match-only", "rollreboot: --alert-filter-match-only needs --alert-filter: the alert names that alone count")]
    [InlineData("--window", "Sat 01:00-05:00", "--wait-for-window", "--max-window-wait", "a week", "rollreboot: --max-window-wait 'a week' is not a duration; use e.g. 900s, 20m or 1h")]
    public async Task BadGateOption_IsOneLine_Exit2(params string[] argsAndExpected)
    {
        var (code, err) = await RunAsync(["--clustername", "C", "--exec", .. argsAndExpected[..^1]]);
        Assert.Equal(2, code);
        Assert.Equal(argsAndExpected[^1], err);
    }

    [Fact]
    public async Task BadAlertFilter_NamesTheRegex()
    {
        var (code, err) = await RunAsync("--clustername", "C", "--prometheus-url", "http://prom:9090", "--alert-filter", "Watchdog(");
        Assert.Equal(2, code);
        Assert.StartsWith("rollreboot: --alert-filter 'Watchdog(' is not a regular expression (", err, StringComparison.Ordinal);
        Assert.DoesNotContain("\n", err, StringComparison.Ordinal);
    }
}
