using System.CommandLine;
using System.Text.RegularExpressions;
using RollingReboot.Cli.Configuration;

namespace RollingReboot.Cli.Tests.Configuration;

/// <summary>The config file: what it takes, how it is refused, and who wins (command line, environment, cluster, defaults).</summary>
public sealed partial class ConfigFileTests : IDisposable
{
    private readonly string _dir = Directory.CreateTempSubdirectory("rollreboot-config-test-").FullName;

    public void Dispose() => Directory.Delete(_dir, recursive: true);

    private static CliEnvironment Env(IReadOnlyDictionary<string, string>? vars = null, TextWriter? error = null) => new()
    {
        GetVariable = n => vars?.GetValueOrDefault(n),
        Out = TextWriter.Null,
        Error = error ?? TextWriter.Null,
    };

    private static UserFacingException Refused(string json) =>
        Assert.Throws<UserFacingException>(() => ConfigFile.Parse(json, "/etc/rr.json"));

    /// <summary>The args after the file's settings were added, for a command line and environment.</summary>
    private string[] Applied(string json, string[] args, IReadOnlyDictionary<string, string>? vars = null)
    {
        var path = Path.Combine(_dir, "c.json");
        File.WriteAllText(path, json);
        var env = Env(vars);
        var root = CliApp.BuildRoot(env);
        var all = args.Concat(["--config", path]).ToArray();
        var before = root.Parse(all);
        var parse = ConfigFile.Apply(root, before, all, env);
        Assert.Empty(parse.Errors);
        return parse.Tokens.Select(t => t.Value).Skip(before.Tokens.Count).ToArray();
    }

    [Fact]
    public void ClusterSectionOverDefaults_CommandLineOverBoth()
    {
        const string Json = """
            { "defaults": { "threads": 8, "hostTimeout": "30m", "maxHostsDown": 1, "onlyNeedingReboot": true },
              "clusters": { "CLUSTER-1": { "maxHostsDown": 2, "onlyNeedingReboot": false, "ignoreHosts": ["xen5", "xen6"] },
                            "CLUSTER-2": { "threads": 2 } } }
            """;

        Assert.Equal(["--threads", "8", "--max-hosts-down", "2", "--ignore-hosts", "xen5,xen6", "--host-timeout", "30m"],
            Applied(Json, ["--clustername", "CLUSTER-1"]));
        Assert.Equal(["--threads", "2", "--max-hosts-down", "1", "--only-needing-reboot", "--host-timeout", "30m"],
            Applied(Json, ["--clustername", "CLUSTER-2"]));
        Assert.Equal(["--max-hosts-down", "2", "--ignore-hosts", "xen5,xen6"],
            Applied(Json, ["--clustername", "CLUSTER-1", "--threads", "3", "--host-timeout=1h"]));
        // A cluster without a section gets the defaults.
        Assert.Equal(["--threads", "8", "--max-hosts-down", "1", "--only-needing-reboot", "--host-timeout", "30m"],
            Applied(Json, ["--clustername", "OTHER"]));
    }

    [Fact]
    public void SeveralClustersNamed_OnlyDefaultsApply_AndStderrSaysSo()
    {
        var path = Path.Combine(_dir, "c.json");
        File.WriteAllText(path, """{ "defaults": { "threads": 8 }, "clusters": { "C1": { "maxHostsDown": 2 } } }""");
        var error = new StringWriter();
        var env = Env(error: error);
        var root = CliApp.BuildRoot(env);
        string[] args = ["--clustername", "C1,C2", "--config", path];
        var before = root.Parse(args);

        var parse = ConfigFile.Apply(root, before, args, env);

        Assert.Equal(["--threads", "8"], parse.Tokens.Skip(before.Tokens.Count).Select(t => t.Value));
        Assert.Contains("the sections of clusters C1 are not applied when several clusters are named", error.ToString(), StringComparison.Ordinal);
    }

    [Fact]
    public void Subcommands_TakeWhatTheyHaveAndIgnoreTheRest()
    {
        const string Json = """{ "defaults": { "threads": 8, "hostTimeout": "30m", "zone": "Z1" } }""";

        Assert.Equal(["--zone", "Z1", "--threads", "8", "--host-timeout", "30m"], Applied(Json, ["resume", "--clustername", "C"]));
        // restore has no --threads.
        Assert.Equal(["--zone", "Z1", "--host-timeout", "30m"], Applied(Json, ["restore", "--clustername", "C"]));
    }

    [Fact]
    public void EnvironmentWinsOverTheFile_ForTheKeysItCovers()
    {
        const string Json = """{ "defaults": { "cmkProfile": "prod", "xapiUrl": "https://pool-a/", "xapiCertSha256": ["AA", "BB"], "threads": 6 } }""";

        Assert.Equal(["--threads", "6", "--cmk-profile", "prod", "--xapi-url", "https://pool-a/", "--xapi-cert-sha256", "AA", "--xapi-cert-sha256", "BB"],
            Applied(Json, ["--clustername", "C"]));
        Assert.Equal(["--threads", "6", "--xapi-cert-sha256", "AA", "--xapi-cert-sha256", "BB"],
            Applied(Json, ["--clustername", "C"], new Dictionary<string, string> { ["ROLLREBOOT_CLOUDSTACK_PROFILE"] = "lab", ["ROLLREBOOT_XAPI_URL"] = "https://pool-b/" }));
    }

    [Fact]
    public void HelpAndCommandsWithoutClusterTakeNoConfig()
    {
        var env = Env();
        var root = CliApp.BuildRoot(env);
        string[] help = ["--clustername", "C", "--config", Path.Combine(_dir, "missing.json"), "--help"];
        var parse = root.Parse(help);

        Assert.Same(parse, ConfigFile.Apply(root, parse, help, env));
        Assert.DoesNotContain(root.Subcommands.Single(c => c.Name == "status").Options, o => o.Name == "--config");
        Assert.Contains(root.Subcommands.Single(c => c.Name == "resume").Options, o => o.Name == "--config");
    }

    [Theory]
    [InlineData("""{ "defaults": { "thread": 8 } }""", "\"defaults.thread\" unknown key; known: zone, format, threads")]
    [InlineData("""{ "defaults": { "max-hosts-down": 2 } }""", "\"defaults.max-hosts-down\" unknown key; did you mean \"maxHostsDown\"?")]
    [InlineData("""{ "clusters": { "C1": { "threads": "8" } } }""", "\"clusters.C1.threads\" must be a whole number, not \"8\"")]
    [InlineData("""{ "clusters": { "C1": { "threads": 65 } } }""", "\"clusters.C1.threads\" must be from 1 to 64, not 65")]
    [InlineData("""{ "defaults": { "hostTimeout": "soon" } }""", "\"defaults.hostTimeout\" \"soon\" is not a duration")]
    [InlineData("""{ "defaults": { "hostDelay": 5 } }""", "\"defaults.hostDelay\" must be a duration such as \"30m\"")]
    [InlineData("""{ "defaults": { "windowEnd": "tomorrow-ish" } }""", "\"defaults.windowEnd\" \"tomorrow-ish\" is neither a time")]
    [InlineData("""{ "defaults": { "returnVms": "yes" } }""", "\"defaults.returnVms\" must be true or false, not \"yes\"")]
    [InlineData("""{ "defaults": { "window": "Sat,Sun 01:00-05:00 Mars/Olympus" } }""", "\"defaults.window\" \"Sat,Sun 01:00-05:00 Mars/Olympus\" time zone 'Mars/Olympus' is not known")]
    [InlineData("""{ "defaults": { "window": "weekends" } }""", "\"defaults.window\" \"weekends\" has no time range")]
    [InlineData("""{ "defaults": { "prometheusUrl": "https://ops:s3cret@prom:9090/" } }""", "\"defaults.prometheusUrl\" holds credentials, and secrets are never read from the config file: put the URL in ROLLREBOOT_PROMETHEUS_URL")]
    [InlineData("""{ "defaults": { "prometheusUrl": "prom:9090" } }""", "\"defaults.prometheusUrl\" must be an http(s) URL")]
    [InlineData("""{ "defaults": { "alertFilter": "Watchdog(" } }""", "\"defaults.alertFilter\" \"Watchdog(\" is not a regular expression")]
    [InlineData("""{ "defaults": { "maxWindowWait": "a week" } }""", "\"defaults.maxWindowWait\" \"a week\" is not a duration")]
    [InlineData("""{ "defaults": { "format": "yaml" } }""", "\"defaults.format\" must be one of text, markdown, json, not \"yaml\"")]
    [InlineData("""{ "defaults": { "ignoreHosts": [1, 2] } }""", "\"defaults.ignoreHosts\" must be a list of strings")]
    [InlineData("""{ "defaults": { "exec": true } }""", "\"defaults.exec\" cannot be set in a config file: rollreboot changes nothing unless --exec is given")]
    [InlineData("""{ "defaults": { "insecure": true } }""", "\"defaults.insecure\" cannot be set in a config file")]
    [InlineData("""{ "threads": 8 }""", "\"threads\" unknown key; put it under \"defaults\" or \"clusters\"")]
    [InlineData("""{ "clusters": [] }""", "\"clusters\" must be an object of cluster name to settings")]
    [InlineData("""[1]""", "must be a JSON object")]
    [InlineData("""{ "defaults": { "threads": 8 """, "not valid JSON (line 1)")]
    public void BadFile_OneLineNamingFileAndKey(string json, string expected)
    {
        var e = Refused(json);

        Assert.StartsWith("config file /etc/rr.json: ", e.Message, StringComparison.Ordinal);
        Assert.Contains(expected, e.Message, StringComparison.Ordinal);
        Assert.DoesNotContain('\n', e.Message);
        Assert.Equal(ExitCodes.BadInput, e.ExitCode);
    }

    [Theory]
    [InlineData("xapiPassword", "ROLLREBOOT_XAPI_PASSWORD_FILE")]
    [InlineData("cloudstackSecretKey", "ROLLREBOOT_CLOUDSTACK_SECRET_KEY_FILE")]
    [InlineData("apiKey", "CloudMonkey profile")]
    [InlineData("sshKeyPassphrase", "ROLLREBOOT_SSH_KEY_PASSPHRASE")]
    [InlineData("password", "ROLLREBOOT_XAPI_PASSWORD_FILE")]
    public void Secrets_AreRefused_NamingTheKeyAndWhereSecretsGo(string key, string advice)
    {
        var inCluster = Refused($$"""{ "clusters": { "C1": { "{{key}}": "hunter2" } } }""");
        var atTop = Refused($$"""{ "{{key}}": "hunter2" }""");

        Assert.Contains($"\"clusters.C1.{key}\" is a secret, and secrets are never read from the config file: use ", inCluster.Message, StringComparison.Ordinal);
        Assert.Contains(advice, inCluster.Message, StringComparison.Ordinal);
        Assert.DoesNotContain("hunter2", inCluster.Message, StringComparison.Ordinal);
        Assert.Contains($"\"{key}\" is a secret", atTop.Message, StringComparison.Ordinal);
    }

    [Fact]
    public void PasswordFilePath_IsNotASecret()
    {
        var config = ConfigFile.Parse("""{ "clusters": { "C1": { "xapiPasswordFile": "/root/.config/rollreboot/xapi-password" } } }""", "x.json");

        Assert.Equal(["--xapi-password-file", "/root/.config/rollreboot/xapi-password"], config.Clusters["C1"]["xapiPasswordFile"].Tokens);
    }

    [Fact]
    public void EveryKeyNamesAnOptionThatExists_AndEveryRunOptionWithAValueIsCoveredOrCommandLineOnly()
    {
        var root = CliApp.BuildRoot(Env());
        var options = Walk(root).SelectMany(c => c.Options).SelectMany(o => o.Aliases.Append(o.Name)).ToHashSet(StringComparer.Ordinal);
        Assert.All(ConfigFile.Keys, k => Assert.True(options.Contains(k.Option), $"config key {k.Key} maps to {k.Option}, which no command has"));
        Assert.Equal(ConfigFile.Keys.Count, ConfigFile.Keys.Select(k => k.Key).Distinct().Count());

        // Options of the plan/run that the file does not take, on purpose.
        string[] commandLineOnly = ["--clustername", "--exec", "--output", "--report", "--report-json", "--break-lock", "--insecure", "--config", "--help", "--version", "--all-clusters", "--notify", "--host"];
        var uncovered = root.Options.Select(o => o.Name)
            .Where(n => n.StartsWith("--", StringComparison.Ordinal) && !commandLineOnly.Contains(n) && ConfigFile.Keys.All(k => k.Option != n))
            .ToList();
        Assert.True(uncovered.Count == 0, "run options without a config key (add them to ConfigFile.Keys or to this list): " + string.Join(", ", uncovered));
    }

    [Fact]
    public async Task MissingExplicitFile_Exit2_OneLine()
    {
        var error = new StringWriter();
        var code = await CliApp.RunAsync(["--clustername", "C", "--config", Path.Combine(_dir, "nope.json")], Env(error: error));

        Assert.Equal(2, code);
        var line = Assert.Single(error.ToString().Split('\n', StringSplitOptions.RemoveEmptyEntries));
        Assert.StartsWith($"rollreboot: config file {Path.Combine(_dir, "nope.json")}: cannot be read", line, StringComparison.Ordinal);
    }

    [Fact]
    public async Task DefaultFile_UnderXdgConfigHome_ElseHome_IsRead()
    {
        var xdg = Path.Combine(_dir, "xdg");
        var home = Path.Combine(_dir, "home");
        Directory.CreateDirectory(Path.Combine(xdg, "rollreboot"));
        Directory.CreateDirectory(Path.Combine(home, ".config", "rollreboot"));
        await File.WriteAllTextAsync(Path.Combine(xdg, "rollreboot", "config.json"), """{ "defaults": { "threads": "x" } }""");
        await File.WriteAllTextAsync(Path.Combine(home, ".config", "rollreboot", "config.json"), """{ "defaults": { "verbose": 1 } }""");

        var viaXdg = new StringWriter();
        var viaHome = new StringWriter();
        var codeXdg = await CliApp.RunAsync(["--clustername", "C"], Env(new Dictionary<string, string> { ["XDG_CONFIG_HOME"] = xdg, ["HOME"] = home }, viaXdg));
        var codeHome = await CliApp.RunAsync(["resume", "--clustername", "C"], Env(new Dictionary<string, string> { ["HOME"] = home }, viaHome));

        Assert.Equal((2, 2), (codeXdg, codeHome));
        Assert.Contains($"{Path.Combine(xdg, "rollreboot", "config.json")}: \"defaults.threads\" must be a whole number", viaXdg.ToString(), StringComparison.Ordinal);
        Assert.Contains($"{Path.Combine(home, ".config", "rollreboot", "config.json")}: \"defaults.verbose\" must be true or false", viaHome.ToString(), StringComparison.Ordinal);
    }

    [Fact]
    public void OperationsDocExample_IsAValidFile_AndDoesWhatTheDocSays()
    {
        var doc = File.ReadAllText(Path.Combine(RepoRoot(), "docs", "operations.md"));
        var section = doc[doc.IndexOf("## Configuration file", StringComparison.Ordinal)..];
        var json = JsonBlock().Match(section).Groups[1].Value;

        var config = ConfigFile.Parse(json, "docs/operations.md");

        Assert.Equal(["--threads", "8", "--max-hosts-down", "2", "--host-timeout", "30m", "--window-end", "05:30"],
            Applied(json, ["--clustername", "CLUSTER-1"]));
        Assert.Contains("CLUSTER-2", config.Clusters.Keys);
    }

    private static IEnumerable<Command> Walk(Command c) => new[] { c }.Concat(c.Subcommands.SelectMany(Walk));

    internal static string RepoRoot()
    {
        for (var dir = new DirectoryInfo(AppContext.BaseDirectory); dir is not null; dir = dir.Parent)
        {
            if (File.Exists(Path.Combine(dir.FullName, "RollingReboot.sln")))
            {
                return dir.FullName;
            }
        }

        throw new InvalidOperationException("no RollingReboot.sln above " + AppContext.BaseDirectory);
    }

    [GeneratedRegex("```json\\n(.*?)```", RegexOptions.Singleline)]
    private static partial Regex JsonBlock();
}
