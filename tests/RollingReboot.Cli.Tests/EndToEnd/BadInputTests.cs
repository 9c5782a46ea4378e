namespace RollingReboot.Cli.Tests.EndToEnd;

/// <summary>Bad input: one line naming what is wrong, the documented exit code, nothing changed in the pool.</summary>
public sealed class BadInputTests : IAsyncLifetime
{
    private const string Pool = """
        {
          "name": "bad", "pool": { "name": "PB" }, "cloudstack": { "clusterName": "CB" },
          "hosts": [ { "name": "b1", "memoryMiB": 65536 }, { "name": "b2", "memoryMiB": 65536 }, { "name": "b3", "memoryMiB": 65536 } ],
          "vms": [ { "name": "i-1-1-VM", "host": "b1", "memoryMiB": 2048 } ]
        }
        """;

    private LabHarness _lab = null!;

    public async Task InitializeAsync() => _lab = await LabHarness.StartAsync(Pool, 100);

    public async Task DisposeAsync() => await _lab.DisposeAsync();

    private async Task AssertRefusedAsync(int expectedExit, string expectedText, IReadOnlyDictionary<string, string>? env, params string[] args)
    {
        var (code, stdout, stderr) = await _lab.RunCliAsync(env, args);
        Assert.True(code == expectedExit, $"exit {code}\nstdout:{stdout}\nstderr:{stderr}");
        var lines = stderr.Split('\n', StringSplitOptions.RemoveEmptyEntries);
        Assert.Single(lines, l => l.StartsWith("rollreboot: ", StringComparison.Ordinal));
        Assert.Contains(expectedText, stderr, StringComparison.OrdinalIgnoreCase);
        Assert.DoesNotContain("   at ", stderr, StringComparison.Ordinal);
        var audit = _lab.Audit();
        Assert.DoesNotContain(audit["events"]!.AsArray(), e => e!["type"]!.ToString() is "host.disable" or "ha.disable" or "pool.otherConfig.add" or "cloudstack.managedState");
    }

    [Fact]
    public Task UnknownCluster_Exit2() => AssertRefusedAsync(2, "no cluster named 'NOPE'", null, "--clustername", "NOPE", "--exec");

    /// <summary>The XAPI login runs beside CloudStack's cluster lookup; CloudStack's answer is still the one reported.</summary>
    [Fact]
    public Task UnknownCluster_AndAWrongXapiPassword_NamesTheCluster_Exit2() =>
        AssertRefusedAsync(2, "no cluster named 'NOPE'", new Dictionary<string, string> { ["ROLLREBOOT_XAPI_PASSWORD"] = "wrong" }, "--clustername", "NOPE");

    [Fact]
    public Task WrongXapiPassword_DryRun_Exit2() => AssertRefusedAsync(2, "wrong user name or password", new Dictionary<string, string> { ["ROLLREBOOT_XAPI_PASSWORD"] = "wrong" }, "--clustername", "CB");

    [Fact]
    public Task WrongXapiPassword_Exit2() => AssertRefusedAsync(2, "wrong user name or password", new Dictionary<string, string> { ["ROLLREBOOT_XAPI_PASSWORD"] = "wrong" }, "--clustername", "CB", "--exec");

    [Fact]
    public Task PinMismatch_Exit2() => AssertRefusedAsync(2, "does not match the pinned fingerprint", new Dictionary<string, string> { ["ROLLREBOOT_XAPI_CERT_SHA256"] = new string('0', 64) }, "--clustername", "CB", "--exec");

    [Fact]
    public Task UnreachableXapi_Exit2() => AssertRefusedAsync(2, "cannot reach XAPI", new Dictionary<string, string> { ["ROLLREBOOT_XAPI_URL"] = "https://127.0.0.1:1/" }, "--clustername", "CB");

    [Fact]
    public Task WrongCloudStackSecret_Exit2() => AssertRefusedAsync(2, "refused", new Dictionary<string, string> { ["ROLLREBOOT_CLOUDSTACK_SECRET_KEY"] = "AAAA" }, "--clustername", "CB", "--exec");

    [Fact]
    public Task ThreadsZero_Exit2() => AssertRefusedAsync(2, "--threads 0", null, "--clustername", "CB", "--threads", "0");

    [Fact]
    public Task MaxHostsDownLargerThanPool_Exit2() => AssertRefusedAsync(2, "--max-hosts-down 5", null, "--clustername", "CB", "--max-hosts-down", "5");

    [Fact]
    public Task HostsNamingNoHost_Exit2() => AssertRefusedAsync(2, "host 'zz' is not in pool", null, "--clustername", "CB", "--hosts", "zz");

    [Fact]
    public Task BadHostTimeout_Exit2() => AssertRefusedAsync(2, "--host-timeout", null, "--clustername", "CB", "--host-timeout", "soon");

    [Fact]
    public Task NoPassword_Exit2() => AssertRefusedAsync(2, "no XAPI password", new Dictionary<string, string> { ["ROLLREBOOT_XAPI_PASSWORD"] = "" }, "--clustername", "CB");

    [Fact]
    public Task PlainHttpXapi_Exit2() => AssertRefusedAsync(2, "plain HTTP", new Dictionary<string, string> { ["ROLLREBOOT_XAPI_URL"] = "http://127.0.0.2/" }, "--clustername", "CB");
}
