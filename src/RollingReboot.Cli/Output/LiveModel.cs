using System.Globalization;
using RollingReboot.Core.Planning;
using RollingReboot.Core.Pool;
using RollingReboot.Core.Run;
using RollingReboot.Core.Run.Journal;
using RollingReboot.Core.Run.State;

namespace RollingReboot.Cli.Output;

/// <summary>
/// What the live view shows, folded from what the run reports and nothing else: its journal lines (the same
/// <see cref="RunState.Apply"/> resume uses), the phase lines of its log, the pools it reads and its migrations'
/// task progress. Thread-safe: the engine's threads feed it while the view reads <see cref="Snapshot"/>.
/// </summary>
internal sealed class LiveModel
{
    private readonly Lock _lock = new();
    private readonly TimeProvider _clock;
    private readonly double _assumedRebootSeconds;
    private readonly double _assumedLinkBytesPerSecond;
    private readonly List<HostDecision> _hosts;
    private readonly Dictionary<string, HostTrack> _tracks = new(StringComparer.Ordinal);
    private readonly Dictionary<string, long> _memory = new(StringComparer.Ordinal);
    private readonly Dictionary<string, string> _source = new(StringComparer.Ordinal);
    private readonly Dictionary<string, double> _inFlight = new(StringComparer.Ordinal);
    private readonly HashSet<string> _planSkips = new(StringComparer.Ordinal);
    private RunState _state = RunState.Empty;
    private PoolSnapshot _pool;
    private DateTimeOffset? _started;
    private string? _outcome;
    private long _sequence;

    public LiveModel(string cluster, PoolSnapshot pool, IReadOnlyList<HostDecision> hosts, TimeProvider clock, double assumedRebootSeconds, double assumedLinkMBps)
    {
        ArgumentNullException.ThrowIfNull(pool);
        Cluster = cluster;
        _pool = pool;
        _hosts = [.. hosts];
        _clock = clock;
        _assumedRebootSeconds = assumedRebootSeconds;
        _assumedLinkBytesPerSecond = assumedLinkMBps * 1e6;
        Remember(pool);
    }

    public string Cluster { get; }

    /// <summary>A journal line: folded like the run folds it.</summary>
    public void Observe(string line)
    {
        if (RunJournal.TryParseLine(line) is not { } e)
        {
            return;
        }

        lock (_lock)
        {
            Apply(e);
        }
    }

    /// <summary>The lines a resumed run's journal already has.</summary>
    public void Load(IEnumerable<string> lines)
    {
        ArgumentNullException.ThrowIfNull(lines);
        foreach (var line in lines.Where(l => !string.IsNullOrWhiteSpace(l)))
        {
            Observe(line);
        }
    }

    /// <summary>A phase line of the run's log ("h1: pre hook"): shown until the journal says more.</summary>
    public void Phase(string hostName, string phase)
    {
        lock (_lock)
        {
            var uuid = _hosts.FirstOrDefault(h => h.Name == hostName)?.Uuid;
            if (uuid is not null)
            {
                var word = phase.Split(" (", 2)[0];
                Track(uuid).LogPhase = (++_sequence, word);
            }
        }
    }

    /// <summary>The pool as the run just read it: which VMs each host still has, and their sizes.</summary>
    public void PoolRead(PoolSnapshot pool)
    {
        lock (_lock)
        {
            _pool = pool;
            Remember(pool);
        }
    }

    /// <summary>A migration's XAPI task progress, 0 to 1.</summary>
    public void MigrationProgress(string vmUuid, double progress)
    {
        lock (_lock)
        {
            if (_source.ContainsKey(vmUuid))
            {
                _inFlight[vmUuid] = Math.Clamp(progress, 0, 1);
            }
        }
    }

    /// <summary>The run is over: its outcome as the report says it.</summary>
    public void Finish(RunReport report)
    {
        ArgumentNullException.ThrowIfNull(report);
        lock (_lock)
        {
            _outcome = report.Outcome switch
            {
                RunOutcome.Done => "done",
                RunOutcome.Blocked => "refused, nothing changed",
                RunOutcome.StoppedRestored => "stopped, restored",
                RunOutcome.Interrupted => "interrupted, restored",
                _ => "stopped, an operator must act",
            };
            if (report.Plan is { } plan)
            {
                // The run's own plan leaves out hosts found needing no reboot (and, on resume, those already done).
                _planSkips.UnionWith(plan.Hosts.Where(h => h.Action != HostAction.Reboot).Select(h => h.Uuid));
            }
        }
    }

    /// <summary>What the view draws now.</summary>
    public LiveSnapshot Snapshot()
    {
        lock (_lock)
        {
            var now = _clock.GetUtcNow();
            var rebootEstimate = _state.Finished.Where(f => f.RebootSeconds > 0).Select(f => f.RebootSeconds).DefaultIfEmpty(_assumedRebootSeconds).Average();
            var rate = ObservedRate(now);
            var rows = new List<LiveHostRow>();
            double remainingRun = 0;
            foreach (var h in _hosts)
            {
                var row = Row(h, now, rebootEstimate, rate);
                rows.Add(row);
                remainingRun += row.EtaSeconds ?? 0;
            }

            var rebooting = rows.Count(r => r.Reboots);
            var finished = _hosts.Count(h => _state.Finished.Any(f => f.Host == h.Uuid));
            var elapsed = _started is { } s ? (now - s).TotalSeconds : 0;
            var state = _outcome ?? (_state.Paused ? "paused" : _started is null ? "starting" : "running");
            return new LiveSnapshot(_state.RunId, _pool.Name, Cluster, state, finished, rebooting, elapsed, _outcome is null ? remainingRun : null, rows);
        }
    }

    private LiveHostRow Row(HostDecision h, DateTimeOffset now, double rebootEstimate, double rate)
    {
        var progress = _state.Host(h.Uuid);
        var track = Track(h.Uuid);
        var finished = _state.Finished.LastOrDefault(f => f.Host == h.Uuid);
        var reboots = finished is not null
            || (h.Action == HostAction.Reboot && !(_state.Decisions?.NotNeedingReboot.Contains(h.Uuid) ?? false) && !_planSkips.Contains(h.Uuid));
        var started = track.Started;
        var movedVms = track.Done.ToList();
        var inFlight = _inFlight.Where(kv => _source.GetValueOrDefault(kv.Key) == h.Uuid).ToList();
        // Before the host is empty its VMs are those it has now plus those already asked to leave; after, what left.
        var total = progress.Phase >= HostPhase.Evacuated || finished is not null
            ? track.Intended.Count
            : track.Intended.Union(_pool.RunningOn(h.Uuid).Select(v => v.Uuid)).Count();
        var movedBytes = movedVms.Sum(v => _memory.GetValueOrDefault(v)) + inFlight.Sum(kv => (long)(kv.Value * _memory.GetValueOrDefault(kv.Key)));
        var totalBytes = track.Intended.Union(_pool.RunningOn(h.Uuid).Select(v => v.Uuid)).Distinct().Sum(v => _memory.GetValueOrDefault(v));
        double? elapsed = started is { } s ? ((finished?.At ?? now) - s).TotalSeconds : null;
        double? eta = null;
        if (reboots && finished is null && progress.Phase is not (HostPhase.Skipped or HostPhase.LeftEvacuated))
        {
            eta = progress.Phase switch
            {
                HostPhase.Planned or HostPhase.Disabled => Math.Max(0, totalBytes - movedBytes) / rate + rebootEstimate,
                HostPhase.Evacuated => rebootEstimate,
                HostPhase.RebootRequested or HostPhase.RebootTaken when track.RebootAsked is { } asked => Math.Max(0, rebootEstimate - (now - asked).TotalSeconds),
                HostPhase.RebootRequested or HostPhase.RebootTaken => rebootEstimate,
                _ => 0,
            };
        }

        return new LiveHostRow(
            h.Name, h.IsMaster, reboots, PhaseText(progress, track, reboots, finished),
            movedVms.Count, total, inFlight.Select(kv => kv.Value).ToList(), movedBytes, elapsed, eta);
    }

    private string PhaseText(HostProgress progress, HostTrack track, bool reboots, HostFinished? finished)
    {
        if (!reboots && progress.Phase == HostPhase.Planned)
        {
            return "left alone";
        }

        var journal = finished is not null && progress.Phase is not (HostPhase.Skipped or HostPhase.LeftEvacuated)
            ? "done"
            : progress.Phase switch
            {
                HostPhase.Planned => _started is null ? "planned" : "waiting",
                HostPhase.Disabled => "evacuating",
                HostPhase.Evacuated => "empty",
                HostPhase.RebootRequested or HostPhase.RebootTaken => progress.Proof?.Halt == true ? "shut down, waiting for power-on" : "rebooting",
                HostPhase.Back => "back",
                HostPhase.Enabled => "enabled",
                HostPhase.Done => "done",
                HostPhase.Skipped => "skipped",
                HostPhase.LeftEvacuated => "left evacuated",
                _ => progress.Phase.ToString().ToLowerInvariant(),
            };
        // The log's phase ("pre hook", "post command on the host") when it came after the journal's last word on the host.
        return track.LogPhase is { } log && log.Sequence > track.JournalSequence && journal != "done" ? log.Text : journal;
    }

    /// <summary>Bytes a second the run's migrations have moved so far, else the assumed link.</summary>
    private double ObservedRate(DateTimeOffset now)
    {
        double bytes = 0;
        double seconds = 0;
        foreach (var (uuid, t) in _tracks)
        {
            if (t.Started is not { } s || t.Done.Count == 0)
            {
                continue;
            }

            bytes += t.Done.Sum(v => _memory.GetValueOrDefault(v));
            var end = t.Emptied ?? now;
            seconds += Math.Max(1, (end - s).TotalSeconds);
        }

        return bytes > 0 && seconds > 0 ? bytes / seconds : _assumedLinkBytesPerSecond;
    }

    private void Apply(RunEvent e)
    {
        _state = _state.Apply(e);
        switch (e)
        {
            case RunStarted or RunContinued when _started is null:
                _started = e.At == default ? _clock.GetUtcNow() : e.At;
                break;
            case HostDisableIntended d:
                Touch(d.Host).Started ??= e.At;
                break;
            case HostEmptied em:
                Touch(em.Host).Emptied = e.At;
                break;
            case RebootIntended r:
                Touch(r.Host).RebootAsked = e.At;
                break;
            case MigrationIntended m when m.From is not null:
                _source[m.Vm] = m.From;
                var t = Touch(m.From);
                t.Intended.Add(m.Vm);
                t.Started ??= e.At;
                break;
            case MigrationDone d:
                _inFlight.Remove(d.Vm);
                if (_source.TryGetValue(d.Vm, out var from))
                {
                    Track(from).Done.Add(d.Vm);
                }

                break;
            case MigrationFailed f:
                _inFlight.Remove(f.Vm);
                break;
            case HostBack or HostEnabled or RebootTaken or HostFinished or HostSkipped or HostLeftEvacuated:
                Touch(HostOf(e)!);
                break;
        }
    }

    private static string? HostOf(RunEvent e) => e switch
    {
        HostBack b => b.Host,
        HostEnabled en => en.Host,
        RebootTaken t => t.Host,
        HostFinished f => f.Host,
        HostSkipped s => s.Host,
        HostLeftEvacuated l => l.Host,
        _ => null,
    };

    /// <summary>The host's track, marked as just changed by the journal.</summary>
    private HostTrack Touch(string uuid)
    {
        var t = Track(uuid);
        t.JournalSequence = ++_sequence;
        return t;
    }

    private HostTrack Track(string uuid)
    {
        if (!_tracks.TryGetValue(uuid, out var t))
        {
            _tracks[uuid] = t = new HostTrack();
        }

        return t;
    }

    private void Remember(PoolSnapshot pool)
    {
        foreach (var vm in pool.Vms)
        {
            _memory[vm.Uuid] = vm.MemoryBytes;
        }
    }

    private sealed class HostTrack
    {
        public HashSet<string> Intended { get; } = new(StringComparer.Ordinal);

        public HashSet<string> Done { get; } = new(StringComparer.Ordinal);

        public DateTimeOffset? Started { get; set; }

        public DateTimeOffset? Emptied { get; set; }

        public DateTimeOffset? RebootAsked { get; set; }

        public long JournalSequence { get; set; }

        public (long Sequence, string Text)? LogPhase { get; set; }
    }
}

/// <summary>The view's picture of the run at one moment.</summary>
internal sealed record LiveSnapshot(
    string RunId, string Pool, string Cluster, string State, int HostsDone, int HostsToReboot, double ElapsedSeconds, double? EtaSeconds, IReadOnlyList<LiveHostRow> Hosts);

/// <summary>One host's line: its phase, migrations done of all and those in flight (their task progress), GiB moved.</summary>
internal sealed record LiveHostRow(
    string Name, bool IsMaster, bool Reboots, string Phase, int MigrationsDone, int MigrationsTotal, IReadOnlyList<double> InFlight, long BytesMoved, double? ElapsedSeconds, double? EtaSeconds)
{
    /// <summary>"3/12", with the migrations in flight and their average task progress: "3/12 +2 at 45%".</summary>
    public string Migrations => InFlight.Count == 0
        ? string.Create(CultureInfo.InvariantCulture, $"{MigrationsDone}/{MigrationsTotal}")
        : string.Create(CultureInfo.InvariantCulture, $"{MigrationsDone}/{MigrationsTotal} +{InFlight.Count} at {InFlight.Average() * 100:0}%");
}
