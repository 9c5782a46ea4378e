namespace RollingReboot.Cli.Tests.EndToEnd;

/// <summary>No secret (XAPI password, CloudStack secret key, SSH key passphrase) in any output, log, journal or report.</summary>
public sealed class SecretsTests
{
    private const string Scenario = """
        {
          "name": "secrets", "pool": { "name": "PS", "ha": { "enabled": true, "heartbeatSr": "nfs" } }, "cloudstack": { "clusterName": "CS1" },
          "migration": { "setupSeconds": 2 },
          "hosts": [ { "name": "s1", "memoryMiB": 32768, "rebootSeconds": 60 }, { "name": "s2", "memoryMiB": 32768, "rebootSeconds": 60 }, { "name": "s3", "memoryMiB": 32768, "rebootSeconds": 60 } ],
          "srs": [ { "name": "nfs", "shared": true } ],
          "generate": [ { "hosts": ["s1", "s2", "s3"], "perHost": 2, "memoryMiB": [2048], "seed": 1 } ]
        }
        """;

    [Fact]
    public async Task ExecWithVerboseLogsAndReport_NoSecretAnywhere()
    {
        await using var lab = await LabHarness.StartAsync(Scenario, timeScale: 200);
        var secrets = new[] { lab.Lab.Environment["ROLLREBOOT_XAPI_PASSWORD"], lab.Lab.Environment["ROLLREBOOT_CLOUDSTACK_SECRET_KEY"], "pass-phrase-never-shown" };
        var report = Path.Combine(lab.StateDir, "report.md");
        var outputs = new List<string>();

        var dry = await lab.RunCliAsync(new Dictionary<string, string> { ["ROLLREBOOT_SSH_KEY_PASSPHRASE"] = secrets[2] }, "--clustername", "CS1", "--verbose");
        outputs.Add(dry.Out + dry.Err);
        var status = await lab.RunCliAsync("status", "--format", "json");
        outputs.Add(status.Out + status.Err);
        var run = await lab.RunCliAsync("--clustername", "CS1", "--exec", "--verbose", "--report", report);
        Assert.True(run.ExitCode == 0, run.Err);
        outputs.Add(run.Out + run.Err);
        var bad = await lab.RunCliAsync(new Dictionary<string, string> { ["ROLLREBOOT_XAPI_PASSWORD"] = secrets[0] + "x" }, "--clustername", "CS1");
        outputs.Add(bad.Out + bad.Err);

        var files = Directory.GetFiles(lab.StateDir, "*", SearchOption.AllDirectories);
        Assert.Contains(files, f => f.EndsWith(".jsonl", StringComparison.Ordinal));
        Assert.Contains(files, f => f.EndsWith(".clef", StringComparison.Ordinal));
        outputs.AddRange(files.Select(File.ReadAllText));
        foreach (var text in outputs)
        {
            foreach (var secret in secrets)
            {
                Assert.DoesNotContain(secret, text, StringComparison.Ordinal);
            }
        }
    }

    [Fact]
    [System.Runtime.Versioning.UnsupportedOSPlatform("windows")]
    public async Task Exec_StateDirectoryJournalAndLog_AreOwnerOnly()
    {
        await using var lab = await LabHarness.StartAsync(Scenario, timeScale: 200);
        // An older version (or a umask) left the state directory readable by others: the run tightens it.
        File.SetUnixFileMode(lab.StateDir, (UnixFileMode)0b111_101_101);
        var run = await lab.RunCliAsync("--clustername", "CS1", "--exec");
        Assert.True(run.ExitCode == 0, run.Err);

        const UnixFileMode dir = UnixFileMode.UserRead | UnixFileMode.UserWrite | UnixFileMode.UserExecute;
        const UnixFileMode file = UnixFileMode.UserRead | UnixFileMode.UserWrite;
        Assert.Equal(dir, File.GetUnixFileMode(lab.StateDir));
        Assert.Equal(dir, File.GetUnixFileMode(Path.Combine(lab.StateDir, "journals")));
        Assert.Equal(dir, File.GetUnixFileMode(Path.Combine(lab.StateDir, "logs")));
        var written = Directory.GetFiles(lab.StateDir, "*", SearchOption.AllDirectories).Where(f => f.EndsWith(".jsonl", StringComparison.Ordinal) || f.EndsWith(".clef", StringComparison.Ordinal)).ToList();
        Assert.Equal(2, written.Count);
        Assert.All(written, f => Assert.Equal(file, File.GetUnixFileMode(f)));
    }

    [Fact]
    [System.Runtime.Versioning.UnsupportedOSPlatform("windows")]
    public async Task PasswordFileReadableByOthers_Refused()
    {
        await using var lab = await LabHarness.StartAsync(Scenario, timeScale: 100);
        var file = Path.Combine(lab.StateDir, "pw");
        await File.WriteAllTextAsync(file, lab.Lab.Environment["ROLLREBOOT_XAPI_PASSWORD"]);
        File.SetUnixFileMode(file, UnixFileMode.UserRead | UnixFileMode.UserWrite | UnixFileMode.OtherRead);
        var (code, _, err) = await lab.RunCliAsync(new Dictionary<string, string> { ["ROLLREBOOT_XAPI_PASSWORD"] = "", ["ROLLREBOOT_XAPI_PASSWORD_FILE"] = file }, "status");
        Assert.Equal(2, code);
        Assert.Contains("chmod 600", err, StringComparison.Ordinal);

        File.SetUnixFileMode(file, UnixFileMode.UserRead | UnixFileMode.UserWrite);
        (code, _, err) = await lab.RunCliAsync(new Dictionary<string, string> { ["ROLLREBOOT_XAPI_PASSWORD"] = "", ["ROLLREBOOT_XAPI_PASSWORD_FILE"] = file }, "status");
        Assert.True(code == 0, err);
    }

    [Fact]
    public async Task PasswordOnCommandLine_IsNotAnOption()
    {
        await using var lab = await LabHarness.StartAsync(Scenario, timeScale: 100);
        var (code, _, err) = await lab.RunCliAsync("--clustername", "CS1", "--xapi-password", "x");
        Assert.Equal(2, code);
        Assert.DoesNotContain("   at ", err, StringComparison.Ordinal);
    }
}
