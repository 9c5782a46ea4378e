using System.Text.Json.Nodes;
using RollingReboot.Lab;
using RollingReboot.Lab.Scenario;

namespace RollingReboot.Cli.Tests.EndToEnd;

/// <summary>A lab started in-process and the real CLI run against it with the lab's environment.</summary>
internal sealed class LabHarness : IAsyncDisposable
{
    private readonly string _stateDir;

    private LabHarness(LabRuntime lab, string stateDir)
    {
        Lab = lab;
        _stateDir = stateDir;
    }

    public LabRuntime Lab { get; }

    public string StateDir => _stateDir;

    public static string SharedScenario(string name)
    {
        var dir = AppContext.BaseDirectory;
        while (dir is not null && !Directory.Exists(Path.Combine(dir, "shared", "scenarios")) && !File.Exists(Path.Combine(dir, "RollingReboot.sln")))
        {
            dir = Path.GetDirectoryName(dir);
        }

        // shared/ sits beside the checkout (../shared); tests/scenarios holds copies for a lone clone.
        var candidates = new[]
        {
            Path.Combine(dir ?? ".", "..", "shared", "scenarios", name),
            Path.Combine(dir ?? ".", "tests", "scenarios", name),
        };
        return candidates.FirstOrDefault(File.Exists) ?? throw new FileNotFoundException("scenario not found: " + name);
    }

    public static async Task<LabHarness> StartAsync(ScenarioFile scenario, double timeScale)
    {
        var lab = await LabRuntime.StartAsync(scenario, timeScale, TextWriter.Null);
        return new LabHarness(lab, Directory.CreateTempSubdirectory("rollreboot-test-state-").FullName);
    }

    /// <summary>
    /// A small pool the run tests share: four 32 GiB hosts (the first the master, 100 s reboots), three 2 GiB VMs
    /// each, HA on (timeout 240 s), managed by CloudStack. Hosts are named prefix1..prefix4.
    /// </summary>
    public static string FourHosts(string pool, string cluster, string prefix) => $$"""
        {
          "name": "{{pool}}", "pool": { "name": "{{pool}}", "ha": { "enabled": true, "timeoutSeconds": 240, "heartbeatSr": "nfs" } },
          "cloudstack": { "clusterName": "{{cluster}}" },
          "migration": { "setupSeconds": 3 },
          "hosts": [ { "name": "{{prefix}}1", "master": true, "memoryMiB": 32768, "rebootSeconds": 100 }, { "name": "{{prefix}}2", "memoryMiB": 32768, "rebootSeconds": 100 },
                     { "name": "{{prefix}}3", "memoryMiB": 32768, "rebootSeconds": 100 }, { "name": "{{prefix}}4", "memoryMiB": 32768, "rebootSeconds": 100 } ],
          "srs": [ { "name": "nfs", "shared": true } ],
          "generate": [ { "hosts": ["{{prefix}}1", "{{prefix}}2", "{{prefix}}3", "{{prefix}}4"], "perHost": 3, "memoryMiB": [2048], "seed": 3 } ]
        }
        """;

    public static Task<LabHarness> StartAsync(string scenarioJson, double timeScale) =>
        StartAsync(ScenarioLoader.Parse(scenarioJson), timeScale);

    /// <summary>
    /// A fleet lab: one pool per scenario (the first one's master is <c>ROLLREBOOT_XAPI_URL</c>), one CloudStack listing
    /// every cluster, one clock. Read each pool's audit with <see cref="Audit(string)"/>.
    /// </summary>
    public static async Task<LabHarness> StartFleetAsync(IReadOnlyList<ScenarioFile> scenarios, double timeScale)
    {
        var lab = await LabRuntime.StartAsync(scenarios, timeScale, TextWriter.Null);
        return new LabHarness(lab, Directory.CreateTempSubdirectory("rollreboot-test-state-").FullName);
    }

    /// <summary>A fleet lab from scenario files by name (<see cref="SharedScenario"/>), e.g. <c>fleet-a-three-hosts.json</c>.</summary>
    public static Task<LabHarness> StartFleetFromFilesAsync(double timeScale, params string[] scenarioFileNames) =>
        StartFleetAsync(scenarioFileNames.Select(n => ScenarioLoader.LoadFile(SharedScenario(n))).ToList(), timeScale);

    public async Task<(int ExitCode, string Out, string Err)> RunCliAsync(params string[] args) => await RunCliAsync(null, args);

    public async Task<(int ExitCode, string Out, string Err)> RunCliAsync(IReadOnlyDictionary<string, string>? extraEnv, params string[] args)
    {
        var stdout = new StringWriter();
        var stderr = new StringWriter();
        var vars = new Dictionary<string, string>(Lab.Environment) { ["ROLLREBOOT_STATE_DIR"] = _stateDir, ["HOME"] = _stateDir };
        foreach (var (k, v) in extraEnv ?? new Dictionary<string, string>())
        {
            vars[k] = v;
        }

        var env = new CliEnvironment
        {
            GetVariable = n => vars.GetValueOrDefault(n),
            Out = stdout,
            Error = TextWriter.Synchronized(stderr),
            IsTerminal = false,
        };
        var code = await CliApp.RunAsync(args, env);
        return (code, stdout.ToString(), stderr.ToString());
    }

    /// <summary>Starts the real CLI as its own process against the lab; returns when stderr shows <paramref name="marker"/>.</summary>
    public async Task<System.Diagnostics.Process> StartCliUntilAsync(string marker, params string[] args)
    {
        var psi = new System.Diagnostics.ProcessStartInfo("dotnet") { RedirectStandardError = true, RedirectStandardOutput = true, UseShellExecute = false };
        psi.ArgumentList.Add(Path.Combine(AppContext.BaseDirectory, "rollreboot.dll"));
        foreach (var a in args)
        {
            psi.ArgumentList.Add(a);
        }

        foreach (var (k, v) in Lab.Environment)
        {
            psi.Environment[k] = v;
        }

        psi.Environment["ROLLREBOOT_STATE_DIR"] = StateDir;
        var process = System.Diagnostics.Process.Start(psi)!;
        var seen = new TaskCompletionSource();
        process.ErrorDataReceived += (_, e) =>
        {
            if (e.Data?.Contains(marker, StringComparison.Ordinal) == true)
            {
                seen.TrySetResult();
            }
        };
        process.BeginErrorReadLine();
        process.BeginOutputReadLine();
        await seen.Task.WaitAsync(TimeSpan.FromSeconds(90));
        return process;
    }

    public JsonObject Audit() => Lab.AuditJson();

    /// <summary>The audit of the pool named <paramref name="poolName"/> (a fleet's; the first pool's is <see cref="Audit()"/>).</summary>
    public JsonObject Audit(string poolName) => Lab.Pool(poolName).AuditJson();

    /// <summary>Every pool's audit by pool name.</summary>
    public IReadOnlyDictionary<string, JsonObject> Audits() => Lab.Pools.ToDictionary(p => p.Name, p => p.AuditJson());

    public async ValueTask DisposeAsync()
    {
        await Lab.DisposeAsync();
        try
        {
            Directory.Delete(_stateDir, recursive: true);
        }
        catch (IOException)
        {
            // Leftover temp files are harmless.
        }
    }
}
