using System.Globalization;
using System.Text;
using System.Text.Json.Nodes;
using RollingReboot.Core.Planning;
using RollingReboot.Core.Run;
using RollingReboot.Core.Run.Journal;
using RollingReboot.Core.Run.State;

namespace RollingReboot.Cli.Output;

/// <summary>
/// --metrics-file: the run in Prometheus' text exposition format (version 0.0.4) for node_exporter's textfile collector,
/// rewritten after every journal line and at the end. Written to a temporary file in the same directory and renamed over
/// the target, so the collector never reads half a file (node_exporter's textfile collector docs ask exactly that).
/// The last successful run's time is carried over from the file as it was.
/// </summary>
internal sealed class MetricsFile
{
    private static readonly string[] s_runStates = ["running", "paused", "done", "stopped_restored", "needs_operator", "interrupted", "blocked"];
    private static readonly HostPhase[] s_phases = Enum.GetValues<HostPhase>();

    private readonly string _path;
    private readonly string _cluster;
    private IReadOnlyList<HostDecision> _hosts;
    private readonly TimeProvider _clock;
    private readonly Lock _lock = new();
    private readonly Dictionary<string, string> _migrationSource = new(StringComparer.Ordinal);
    private readonly Dictionary<string, int> _migrationsDone = new(StringComparer.Ordinal);
    private RunState _state = RunState.Empty;
    private DateTimeOffset? _started;
    private string? _outcome;
    private double? _lastSuccess;
    private bool _broken;

    public MetricsFile(string path, string cluster, IReadOnlyList<HostDecision> hosts, TimeProvider clock)
    {
        _path = Path.GetFullPath(path);
        _cluster = cluster;
        _hosts = hosts;
        _clock = clock;
        _lastSuccess = ReadLastSuccess(_path, cluster);
    }

    /// <summary>The lines a resumed run's journal already has (folded in, not written).</summary>
    public void Load(IEnumerable<string> lines)
    {
        lock (_lock)
        {
            foreach (var line in lines.Where(l => !string.IsNullOrWhiteSpace(l)))
            {
                if (RunJournal.TryParseLine(line) is { } e)
                {
                    Apply(e, line);
                }
            }
        }
    }

    /// <summary>A journal line was written: fold it in and write the file. Never throws into the run.</summary>
    public void Observe(string line)
    {
        lock (_lock)
        {
            try
            {
                if (RunJournal.TryParseLine(line) is { } e)
                {
                    Apply(e, line);
                }

                Write();
            }
            catch (Exception e) when (e is not OutOfMemoryException)
            {
                Broken(e);
            }
        }
    }

    /// <summary>The run's end as the report has it.</summary>
    public void Finish(RunReport report)
    {
        ArgumentNullException.ThrowIfNull(report);
        lock (_lock)
        {
            _outcome = StateOf(report.Outcome);
            if (report.Plan is { } plan)
            {
                // The run's own plan (hosts --only-needing-reboot or a needs-reboot command left out) replaces the guess.
                _hosts = plan.Hosts;
            }

            if (report.Outcome == RunOutcome.Done)
            {
                _lastSuccess = _clock.GetUtcNow().ToUnixTimeMilliseconds() / 1000.0;
            }

            Write();
        }
    }

    private void Apply(RunEvent e, string line)
    {
        _state = _state.Apply(e);
        switch (e)
        {
            case RunStarted or RunContinued when _started is null:
                _started = JsonNode.Parse(line)?["t"]?.GetValue<string>() is { } t && DateTimeOffset.TryParseExact(t, "O", CultureInfo.InvariantCulture, DateTimeStyles.None, out var at) ? at : _clock.GetUtcNow();
                break;
            case MigrationIntended m when m.From is not null:
                _migrationSource[m.Vm] = m.From;
                break;
            case MigrationDone d when _migrationSource.TryGetValue(d.Vm, out var from):
                _migrationsDone[from] = _migrationsDone.GetValueOrDefault(from) + 1;
                break;
            case RunEnded ended:
                _outcome = ended.Outcome.ToUpperInvariant() switch { "DONE" => "done", _ => _outcome ?? "stopped_restored" };
                break;
        }
    }

    /// <summary>The file's text: every metric with HELP and TYPE, labels escaped as the format asks.</summary>
    internal string Render()
    {
        var sb = new StringBuilder();
        var c = $"cluster=\"{Escape(_cluster)}\"";
        var state = _outcome ?? (_state.Paused ? "paused" : "running");
        Family(sb, "rollreboot_run_info", "The run this file describes (1).");
        sb.Append(CultureInfo.InvariantCulture, $"rollreboot_run_info{{{c},run_id=\"{Escape(_state.RunId)}\",mode=\"{Escape(_state.Mode)}\"}} 1\n");
        Family(sb, "rollreboot_run_state", "1 for the run's current state, 0 for the others.");
        foreach (var s in s_runStates)
        {
            sb.Append(CultureInfo.InvariantCulture, $"rollreboot_run_state{{{c},state=\"{s}\"}} {(s == state ? 1 : 0)}\n");
        }

        if (_started is { } started)
        {
            Family(sb, "rollreboot_run_start_timestamp_seconds", "When the run started (Unix time).");
            sb.Append(CultureInfo.InvariantCulture, $"rollreboot_run_start_timestamp_seconds{{{c}}} {Number(started.ToUnixTimeMilliseconds() / 1000.0)}\n");
            Family(sb, "rollreboot_run_duration_seconds", "How long the run has taken so far.");
            sb.Append(CultureInfo.InvariantCulture, $"rollreboot_run_duration_seconds{{{c}}} {Number(Math.Max(0, (_clock.GetUtcNow() - started).TotalSeconds))}\n");
        }

        if (_lastSuccess is { } success)
        {
            Family(sb, "rollreboot_last_success_timestamp_seconds", "When a run of this cluster last finished with every host done (Unix time).");
            sb.Append(CultureInfo.InvariantCulture, $"rollreboot_last_success_timestamp_seconds{{{c}}} {Number(success)}\n");
        }

        var rebooting = _hosts.Where(Reboots).ToList();
        Family(sb, "rollreboot_hosts", "Hosts the run reboots.");
        sb.Append(CultureInfo.InvariantCulture, $"rollreboot_hosts{{{c}}} {rebooting.Count}\n");
        Family(sb, "rollreboot_hosts_done", "Hosts finished in this run.");
        sb.Append(CultureInfo.InvariantCulture, $"rollreboot_hosts_done{{{c}}} {_state.Finished.Count}\n");
        Family(sb, "rollreboot_migrations", "Live migrations done in this run.");
        sb.Append(CultureInfo.InvariantCulture, $"rollreboot_migrations{{{c}}} {_migrationsDone.Values.Sum()}\n");

        Family(sb, "rollreboot_host_reboot_required", "1 while the host still has to be rebooted by this run.");
        foreach (var h in _hosts)
        {
            var done = _state.Rebooted.Contains(h.Uuid) || _state.Finished.Any(f => f.Host == h.Uuid);
            sb.Append(CultureInfo.InvariantCulture, $"rollreboot_host_reboot_required{{{c},host=\"{Escape(h.Name)}\"}} {(Reboots(h) && !done ? 1 : 0)}\n");
        }

        Family(sb, "rollreboot_host_phase", "1 for the phase each host is in, 0 for the others.");
        foreach (var h in _hosts)
        {
            var phase = _state.Host(h.Uuid).Phase;
            foreach (var p in s_phases)
            {
                sb.Append(CultureInfo.InvariantCulture, $"rollreboot_host_phase{{{c},host=\"{Escape(h.Name)}\",phase=\"{p.ToString().ToLowerInvariant()}\"}} {(p == phase ? 1 : 0)}\n");
            }
        }

        Family(sb, "rollreboot_host_migrations", "Live migrations off each host done in this run.");
        foreach (var h in _hosts)
        {
            sb.Append(CultureInfo.InvariantCulture, $"rollreboot_host_migrations{{{c},host=\"{Escape(h.Name)}\"}} {_migrationsDone.GetValueOrDefault(h.Uuid)}\n");
        }

        var finished = _state.Finished.Where(f => _hosts.Any(h => h.Uuid == f.Host)).ToList();
        if (finished.Count > 0)
        {
            Family(sb, "rollreboot_host_duration_seconds", "Evacuation plus reboot of each finished host.");
            foreach (var f in finished)
            {
                var name = _hosts.First(h => h.Uuid == f.Host).Name;
                sb.Append(CultureInfo.InvariantCulture, $"rollreboot_host_duration_seconds{{{c},host=\"{Escape(name)}\"}} {Number(f.EvacuationSeconds + f.RebootSeconds)}\n");
            }
        }

        return sb.ToString();
    }

    /// <summary>The host is the run's to reboot: planned so, and not found needing none when the run decided.</summary>
    private bool Reboots(HostDecision h) =>
        h.Action == HostAction.Reboot && !(_state.Decisions?.NotNeedingReboot.Contains(h.Uuid) ?? false);

    /// <summary>Before the run's plan: the pool's hosts as --hosts and --ignore-hosts select them.</summary>
    public static IReadOnlyList<HostDecision> Guess(Core.Pool.PoolSnapshot pool, PlanOptions options)
    {
        ArgumentNullException.ThrowIfNull(pool);
        ArgumentNullException.ThrowIfNull(options);
        bool Named(IReadOnlyList<string> names, Core.Pool.HostState h) => names.Contains(h.Name) || names.Contains(h.Uuid);
        return [.. pool.Hosts.OrderBy(h => h.Uuid != pool.MasterUuid).ThenBy(h => h.Name, StringComparer.Ordinal).Select(h => new HostDecision(
            h.Uuid, h.Name, h.Uuid == pool.MasterUuid,
            (options.IncludeHosts.Count == 0 || Named(options.IncludeHosts, h)) && !Named(options.IgnoreHosts, h) ? HostAction.Reboot : HostAction.Skip, ""))];
    }

    private void Write()
    {
        if (_broken)
        {
            return;
        }

        try
        {
            var dir = Path.GetDirectoryName(_path)!;
            var temp = Path.Combine(dir, $".{Path.GetFileName(_path)}.{Environment.ProcessId}.tmp");
            using (var stream = new FileStream(temp, FileMode.Create, FileAccess.Write, FileShare.None))
            {
                // No fsync: the rename alone keeps a reader from seeing half a file, and this runs after every journal line.
                stream.Write(Encoding.UTF8.GetBytes(Render()));
            }

            File.Move(temp, _path, overwrite: true);
        }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException)
        {
            Broken(e);
        }
    }

    /// <summary>Monitoring is never worth stopping a run for (the path was checked before it started): say so once, stop writing.</summary>
    private void Broken(Exception e)
    {
        if (!_broken)
        {
            _broken = true;
            Console.Error.WriteLine($"rollreboot: --metrics-file {_path} could not be written ({e.Message}); no more metrics this run");
        }
    }

    /// <summary>Checks before the run that the file can be written where it is to go (one line and exit 2 otherwise).</summary>
    public static void CheckWritable(string path)
    {
        var full = Path.GetFullPath(path);
        var dir = Path.GetDirectoryName(full);
        if (dir is null || !Directory.Exists(dir))
        {
            throw new UserFacingException($"--metrics-file {path}: directory {dir} does not exist; create it (node_exporter's --collector.textfile.directory) or name another");
        }

        if (Directory.Exists(full))
        {
            throw new UserFacingException($"--metrics-file {path} is a directory; name a file such as {Path.Combine(full, "rollreboot.prom")}");
        }
    }

    private static double? ReadLastSuccess(string path, string cluster)
    {
        if (!File.Exists(path))
        {
            return null;
        }

        var prefix = $"rollreboot_last_success_timestamp_seconds{{cluster=\"{Escape(cluster)}\"}} ";
        foreach (var line in File.ReadLines(path))
        {
            if (line.StartsWith(prefix, StringComparison.Ordinal) && double.TryParse(line.AsSpan(prefix.Length), NumberStyles.Float, CultureInfo.InvariantCulture, out var v))
            {
                return v;
            }
        }

        return null;
    }

    private static string StateOf(RunOutcome outcome) => outcome switch
    {
        RunOutcome.Done => "done",
        RunOutcome.Blocked => "blocked",
        RunOutcome.StoppedRestored => "stopped_restored",
        RunOutcome.NeedsOperator => "needs_operator",
        _ => "interrupted",
    };

    private static void Family(StringBuilder sb, string name, string help) =>
        sb.Append(CultureInfo.InvariantCulture, $"# HELP {name} {help}\n# TYPE {name} gauge\n");

    private static string Number(double v) => v.ToString("0.###", CultureInfo.InvariantCulture);

    /// <summary>Label values: backslash, double quote and line feed escaped (exposition format 0.0.4).</summary>
    private static string Escape(string? v) =>
        (v ?? "").Replace("\\", "\\\\", StringComparison.Ordinal).Replace("\"", "\\\"", StringComparison.Ordinal).Replace("\n", "\\n", StringComparison.Ordinal);
}
