using System.Diagnostics;
using System.Globalization;
using System.Text.Json;
using System.Text.Json.Nodes;
using RollingReboot.Bench;
using RollingReboot.Core.Planning;
using RollingReboot.Core.Ports;
using RollingReboot.Lab.Scenario;
using RollingReboot.Xapi;
using RollingReboot.Xapi.Tls;

// Full --exec runs of rollreboot and the baselines against lab scenarios, measured from the lab's audit.
// Usage: RollingReboot.Bench --repo DIR [--scenarios a,b] [--methods m,n] [--time-scale 40] [--report-only]
var options = BenchOptions.Parse(args);
var resultsDir = options.ResultsDir ?? Path.Combine(options.Repo, "docs", "benchmarks", "results");
Directory.CreateDirectory(resultsDir);
if (!options.ReportOnly)
{
    var cli = options.Cli ?? Path.Combine(options.Repo, "artifacts", "cli", "rollreboot.dll");
    if (!File.Exists(cli))
    {
        Console.Error.WriteLine($"bench: {cli} is missing; run ./scripts/rollreboot --help once to build it (scripts/bench.sh does)");
        return 2;
    }

    var work = Directory.CreateTempSubdirectory("rollreboot-bench-").FullName;
    Console.WriteLine($"bench: time scale {options.TimeScale.ToString(CultureInfo.InvariantCulture)}, work files in {work}");
    foreach (var scenario in Catalog.Scenarios.Where(s => options.Scenarios is null ? !s.OnlyWhenNamed : options.Scenarios.Contains(s.Id)))
    {
        foreach (var method in scenario.Methods.Where(m => options.Methods is null || options.Methods.Contains(m)))
        {
            var result = await Runner.RunAsync(options, scenario, method, new CliRunner(cli, work));
            await File.WriteAllTextAsync(Path.Combine(resultsDir, $"{scenario.Id}--{method}.json"), JsonSerializer.Serialize(result, RunResult.Json) + "\n");
            Console.WriteLine(Report.OneLine(result));
        }
    }
}

if (options.ResultsDir is null)
{
    Report.Write(options.Repo, resultsDir);
}
return 0;

internal sealed record BenchOptions(string Repo, HashSet<string>? Scenarios, HashSet<string>? Methods, double TimeScale, bool ReportOnly, string? Cli, string Version, string? ResultsDir)
{
    public static BenchOptions Parse(string[] args)
    {
        string repo = ".";
        HashSet<string>? scenarios = null, methods = null;
        double scale = 40;
        var reportOnly = false;
        string? cli = null;
        string? resultsDir = null;
        var version = "";
        for (var i = 0; i < args.Length; i++)
        {
            string Next() => i + 1 < args.Length ? args[++i] : throw new ArgumentException(args[i] + " needs a value");
            switch (args[i])
            {
                case "--repo":
                    repo = Next();
                    break;
                case "--scenarios":
                    scenarios = [.. Next().Split(',', StringSplitOptions.RemoveEmptyEntries | StringSplitOptions.TrimEntries)];
                    break;
                case "--methods":
                    methods = [.. Next().Split(',', StringSplitOptions.RemoveEmptyEntries | StringSplitOptions.TrimEntries)];
                    break;
                case "--time-scale":
                    scale = double.Parse(Next(), CultureInfo.InvariantCulture);
                    break;
                case "--results-dir":
                    resultsDir = Path.GetFullPath(Next());
                    break;
                case "--cli":
                    cli = Next();
                    break;
                case "--version-note":
                    version = Next();
                    break;
                case "--report-only":
                    reportOnly = true;
                    break;
                default:
                    throw new ArgumentException($"unknown option {args[i]}; options: --repo DIR --scenarios {string.Join(',', Catalog.Scenarios.Select(s => s.Id))} --methods {string.Join(',', Catalog.AllMethods)} --time-scale X --report-only --results-dir DIR (results elsewhere, README untouched)");
            }
        }

        foreach (var s in scenarios ?? [])
        {
            if (Catalog.Scenarios.All(c => c.Id != s))
            {
                throw new ArgumentException($"unknown scenario {s}; known: {string.Join(", ", Catalog.Scenarios.Select(c => c.Id))}");
            }
        }

        foreach (var m in methods ?? [])
        {
            if (!Catalog.AllMethods.Contains(m))
            {
                throw new ArgumentException($"unknown method {m}; known: {string.Join(", ", Catalog.AllMethods)}");
            }
        }

        return new BenchOptions(Path.GetFullPath(repo), scenarios, methods, scale, reportOnly, cli, version, resultsDir);
    }
}

internal static class Runner
{
    public static async Task<RunResult> RunAsync(BenchOptions options, BenchScenario bench, string method, CliRunner cli)
    {
        var file = Path.Combine(options.Repo, "tests", "scenarios", bench.File);
        var scenario = ScenarioLoader.LoadFile(file);
        var lb = LowerBound.Compute(scenario, bench.Hosts);
        var result = new RunResult
        {
            Scenario = bench.Id,
            Method = method,
            StartedAt = TimeProvider.System.GetUtcNow().ToString("yyyy-MM-dd'T'HH:mm:ss'Z'", CultureInfo.InvariantCulture),
            TimeScale = options.TimeScale,
            Version = options.Version,
            Hosts = bench.Hosts,
            LowerBoundSeconds = lb.TotalSeconds,
            LowerBoundMigrationSeconds = lb.MigrationSeconds,
            LowerBoundMasterAgainSeconds = lb.MasterAgainSeconds,
            LowerBoundRebootSeconds = lb.RebootSeconds,
            HostLinkMBps = scenario.Migration.HostLinkMBps,
            LoadAverageBefore = LoadAverage(),
        };
        Console.WriteLine($"== {bench.Id} / {method}: lower bound {Units.Duration(lb.TotalSeconds)}; starting the lab");
        var wall = Stopwatch.StartNew();
        await using var lab = await LabSession.StartAsync(scenario, options.TimeScale, CancellationToken.None);
        var cluster = scenario.CloudStack?.ClusterName ?? scenario.Pool.Name;
        var common = new List<string> { "--clustername", cluster };
        if (bench.Hosts is not null)
        {
            common.Add("--hosts");
            common.Add(string.Join(',', bench.Hosts));
        }

        if (Catalog.MaxHostsDown(method) is { } maxHostsDown)
        {
            common.AddRange(["--max-hosts-down", maxHostsDown]);
        }

        // Generous wall-clock limit: five times the lower bound, in wall seconds, plus ten minutes.
        var limit = TimeSpan.FromSeconds(lb.TotalSeconds * 5 / options.TimeScale + 600);
        try
        {
            if (Catalog.IsRollreboot(method))
            {
                result.Plan = await PlanAsync(lab, cli, [.. common, "--format", "json"], method, bench.Id);
                lab.ResetCounts();
                var run = await cli.RunAsync(lab.Lab.Environment, [.. common, "--exec"], $"{bench.Id}--{method}", limit, CancellationToken.None);
                result.ExitCode = run.ExitCode;
                result.CpuSeconds = run.CpuSeconds;
                result.PeakRssMiB = run.PeakRssMiB;
                result.Ok = run.ExitCode == 0;
                result.Error = run.ExitCode == 0 ? null : $"exit {run.ExitCode}: {run.StderrTail}";
                result.SshProofAfterXapi = SshProof(run.Log, lab.Lab.TimeOrigin);
            }
            else
            {
                lab.ResetCounts();
                var baseline = new Baseline(lab.Lab, method, bench.Hosts?.ToHashSet(), Console.Out);
                try
                {
                    await baseline.RunAsync(CancellationToken.None);
                    result.Ok = true;
                }
                catch (Exception e) when (e is BaselineFailedException or PoolOperationException or CloudStackException)
                {
                    result.Ok = false;
                    result.Error = e.Message;
                }

                result.XapiCallsClientCount = baseline.ClientCalls;
            }
        }
        finally
        {
            result.WallSeconds = wall.Elapsed.TotalSeconds;
        }

        result.XapiCalls = lab.XapiRequests;
        result.CloudStackCalls = lab.CloudStackRequests;
        var audit = lab.Audit();
        // The whole audit beside the run's logs, to look into a run afterwards (not part of the results).
        await File.WriteAllTextAsync(Path.Combine(cli.WorkDirectory, $"{bench.Id}--{method}.audit.json"), audit.ToJsonString());
        var m = AuditMetrics.From(audit);
        result.MakespanSeconds = m.MakespanSeconds;
        result.HostsPhaseSeconds = m.HostsPhaseSeconds;
        result.Migrations = m.Migrations;
        result.FailedMigrations = m.FailedMigrations;
        result.WireGiB = m.WireBytes / (1024.0 * 1024 * 1024);
        result.MigratingSeconds = m.MigratingSeconds;
        result.RebootOnlySeconds = m.RebootOnlySeconds;
        result.ToolOnlySeconds = m.ToolOnlySeconds;
        result.BackToNextAction = m.BackToNextAction;
        result.UpToNextAction = m.UpToNextAction;
        result.Evacuations = m.Evacuations;
        result.Violations = m.Violations;
        result.HostsRebooted = m.HostsRebooted;
        result.VmsRunning = m.VmsRunning;
        result.VmsTotal = m.VmsTotal;
        result.HaAtEnd = m.HaAtEnd;
        result.CloudStackAtEnd = m.CloudStackAtEnd;
        var expected = bench.Hosts?.Count ?? scenario.Hosts.Count;
        if (result.Ok && (m.Violations.Count > 0 || m.HostsRebooted < expected || m.VmsRunning < m.VmsTotal))
        {
            result.Ok = false;
            result.Error = $"run ended but the audit disagrees: {m.Violations.Count} violation(s), {m.HostsRebooted}/{expected} hosts rebooted, {m.VmsRunning}/{m.VmsTotal} VMs running";
        }

        result.LoadAverageAfter = LoadAverage();
        return result;
    }

    /// <summary>The dry run (timed as a process), then the planner alone on the same pool, in this process.</summary>
    private static async Task<PlanSummary> PlanAsync(LabSession lab, CliRunner cli, List<string> args, string method, string id)
    {
        var dry = await cli.RunAsync(lab.Lab.Environment, args, $"{id}--{method}--plan", TimeSpan.FromMinutes(10), CancellationToken.None);
        var summary = new PlanSummary { DryRunWallSeconds = dry.WallSeconds, DryRunCpuSeconds = dry.CpuSeconds, DryRunPeakRssMiB = dry.PeakRssMiB };
        try
        {
            var plan = JsonNode.Parse(await File.ReadAllTextAsync(dry.StdoutFile)) as JsonObject;
            summary.EstimateSeconds = plan?["estimate"]?["totalSeconds"]?.GetValue<double>() ?? 0;
            summary.Migrations = plan?["estimate"]?["migrations"]?.GetValue<int>() ?? 0;
            var steps = plan?["steps"] as JsonArray ?? [];
            summary.Steps = steps.Count;
            summary.Waves = steps.Select(s => s?["wave"]?.GetValue<int>() ?? 0).DefaultIfEmpty(0).Max();
            summary.Blockers = (plan?["blockers"] as JsonArray)?.Count ?? 0;
        }
        catch (JsonException)
        {
            summary.Blockers = -1;
        }

        var env = lab.Lab.Environment;
        await using var pool = new XapiPoolConnection(new XapiClient(new XapiClientOptions
        {
            Url = new Uri(env["ROLLREBOOT_XAPI_URL"]),
            UserName = env["ROLLREBOOT_XAPI_USER"],
            Password = env["ROLLREBOOT_XAPI_PASSWORD"],
            Certificates = new XapiCertificatePolicy(env["ROLLREBOOT_XAPI_CERT_SHA256"].Split(',')),
            TimeProvider = lab.Lab.Clock,
        }));
        var snapshot = await pool.ReadAsync();
        summary.PoolHosts = snapshot.Hosts.Count;
        summary.PoolVms = snapshot.Vms.Count;
        var best = double.MaxValue;
        for (var i = 0; i < 3; i++)
        {
            var sw = Stopwatch.StartNew();
            _ = EvacuationPlanner.Plan(snapshot, PlanOptions.Default, PlanConstraints.None);
            best = Math.Min(best, sw.Elapsed.TotalMilliseconds);
        }

        summary.PlannerMilliseconds = best;
        return summary;
    }

    /// <summary>From the CLI's log: each host's "back in XAPI" to "answers over SSH", in simulated seconds; 0 when SSH had
    /// answered with the new boot id first (the proof already in hand when XAPI shows the host back).</summary>
    private static List<HostGap> SshProof(IReadOnlyList<LogLine> log, DateTimeOffset origin)
    {
        var gaps = new List<HostGap>();
        var back = new Dictionary<string, DateTimeOffset>();
        var ssh = new Dictionary<string, DateTimeOffset>();
        foreach (var line in log.OrderBy(l => l.At))
        {
            if (line.Template.Contains("is back in XAPI", StringComparison.Ordinal))
            {
                if (ssh.Remove(line.Host))
                {
                    gaps.Add(new HostGap(line.Host, (line.At - origin).TotalSeconds, 0));
                }
                else
                {
                    back[line.Host] = line.At;
                }
            }
            else if (line.Template.Contains("answers over SSH with a new boot id", StringComparison.Ordinal))
            {
                if (back.Remove(line.Host, out var b))
                {
                    gaps.Add(new HostGap(line.Host, (b - origin).TotalSeconds, (line.At - b).TotalSeconds));
                }
                else
                {
                    ssh[line.Host] = line.At;
                }
            }
        }

        return gaps;
    }

    private static string LoadAverage()
    {
        try
        {
            return string.Join(' ', File.ReadAllText("/proc/loadavg").Split(' ').Take(3));
        }
        catch (IOException)
        {
            return "?";
        }
    }
}
