using System.Globalization;
using System.Text.Json;
using System.Text.Json.Nodes;
using RollingReboot.Core.Planning;
using RollingReboot.Core.Pool;
using RollingReboot.Core.Ports;

namespace RollingReboot.Core.Run;

/// <summary>
/// The rolling reboot, executed: lock, record, HA off, unmanage, host by host (master first) evacuate,
/// reboot, prove, enable; then restore exactly what was there. Every exit path restores what it can.
/// </summary>
public sealed class RollingRebootRun
{
    public const string LockKey = "rollreboot-lock";
    public const string RunKey = "rollreboot-run";

    /// <summary>pool.other_config key prefix marking a host emptied by 'rollreboot evacuate' (value: the VMs to bring back).</summary>
    public const string EvacuatedKeyPrefix = "rollreboot-evacuated-";

    private readonly IPoolConnection _pool;
    private readonly ClusterBinding? _cloud;
    private readonly IHostProbe? _probe;
    private readonly RunJournal _journal;
    private readonly IRunLog _log;
    private readonly TimeProvider _clock;
    private readonly RunOptions _options;
    private readonly string _runId;
    private readonly List<HostReport> _hostReports = [];
    private readonly List<string> _restored = [];
    private readonly List<string> _operatorActions = [];
    private readonly HashSet<string> _rebooted = [];
    private readonly HashSet<string> _disabledByRun = [];
    private OriginalState? _original;
    private bool _lockHeld;
    private bool _haDisabledByRun;
    private bool _unmanagedByRun;
    private PoolSnapshot? _lastSnapshot;
    private IReadOnlyDictionary<string, IReadOnlyList<string>>? _antiAffinity;
    private JournalState? _resume;
    private readonly Lock _state = new();
    private readonly string _clusterLabel;
    private Plan? _currentPlan;
    private DateTimeOffset _runStarted;
    private PlanOptions _planOptions;
    private HostCommands? _commands;

    public RollingRebootRun(IPoolConnection pool, ClusterBinding? cloud, IHostProbe? probe, RunJournal journal, IRunLog log, TimeProvider clock, RunOptions options, string runId, string? clusterLabel = null)
    {
        _clusterLabel = clusterLabel ?? cloud?.Cluster.Name ?? "NAME";
        _pool = pool;
        _cloud = cloud;
        _probe = probe;
        _journal = journal;
        _log = log;
        _clock = clock;
        _options = options;
        _runId = runId;
        _planOptions = options.Plan;
    }

    /// <summary>Runs the operator's local hooks and blocker command (needed when any is configured).</summary>
    public ILocalCommandRunner? LocalCommands { get; init; }

    /// <summary>Runs commands on the hosts over SSH (needed for remote hooks and the needs-reboot command).</summary>
    public IRemoteShell? RemoteShell { get; init; }

    /// <summary>Tells people how the run goes (--notify); never holds the run up.</summary>
    public IRunNotifier? Notifier { get; init; }

    private HostCommands Commands => _commands ??= new HostCommands(_options.Hooks, LocalCommands, RemoteShell, _log);

    private bool HasCommands => _options.Hooks.BlockerCommand is not null || _options.Hooks.NeedsRebootCommand is not null || _options.Hooks.Any;

    private void Notify(string eventName, string text, string? host = null, string? outcome = null)
    {
        try
        {
            Notifier?.Notify(new RunNotification(eventName, text, _clusterLabel, _lastSnapshot?.Name ?? _clusterLabel, _runId, host, outcome));
        }
        catch (Exception e) when (e is not OutOfMemoryException)
        {
            // A notification is never worth stopping the run for.
            _log.Warn("Notification {Event} not sent: {Error}", eventName, e.Message);
        }
    }

    /// <summary>
    /// Continues a run from its journal (after a crash or kill -9): the lock, HA and CloudStack state are
    /// taken over, hosts whose boot time shows they were rebooted in that run are not rebooted again.
    /// </summary>
    public void ResumeFrom(JournalState state, PoolSnapshot pool)
    {
        _resume = state;
        _original = state.Original;
        _lockHeld = state.LockHeld;
        _haDisabledByRun = state.HaDisabledByRun;
        _unmanagedByRun = state.UnmanagedByRun;
        _disabledByRun.UnionWith(state.DisabledByRun);
        _rebooted.UnionWith(state.RebootedIn(pool));
        if (state.SkippedByHook.Count > 0)
        {
            // A pre hook said "skip" in this run: asking it again (after evacuating the host again) would be wrong.
            _planOptions = _planOptions with { IgnoreHosts = [.. _planOptions.IgnoreHosts, .. state.SkippedByHook] };
        }
    }

    /// <summary>Only undoes what the journal says the run changed, without continuing it.</summary>
    public async Task<RunReport> RestoreOnlyAsync(JournalState state, PoolSnapshot pool)
    {
        var started = _clock.GetUtcNow();
        ResumeFrom(state, pool);
        _lastSnapshot = pool;
        var ok = await RestoreAsync(CancellationToken.None);
        _journal.Write("run.end", new Dictionary<string, object?> { ["outcome"] = ok ? "Restored" : "NeedsOperator" });
        return Report(ok ? RunOutcome.Done : RunOutcome.NeedsOperator, ok ? "restored what the run had changed" : "restore incomplete: see the operator actions", started, null);
    }

    /// <summary>
    /// Runs to the end. <paramref name="stop"/> asks for a stop at the next safe point (Ctrl-C);
    /// <paramref name="abort"/> also stops waiting for work in flight (second Ctrl-C). Restore always runs.
    /// </summary>
    public async Task<RunReport> ExecuteAsync(CancellationToken stop, CancellationToken abort)
    {
        var started = _clock.GetUtcNow();
        Plan? plan = null;
        string message;
        RunOutcome outcome;
        var paused = false;
        try
        {
            if (_resume is not null)
            {
                await FinishRebootsInFlightAsync(_resume, abort);
                await ReenableHostsLeftDisabledAsync(abort);
            }

            _runStarted = _clock.GetUtcNow();
            var pre = await Preflight.RunAsync(_pool, _cloud, _planOptions, _rebooted, abort, commands: HasCommands ? new PreflightCommands(Commands, _clusterLabel, _runId) : null);
            _antiAffinity = pre.AntiAffinity;
            plan = pre.Plan;
            _lastSnapshot = pre.Pool;
            if (_planOptions.MaxHostsDown == PlanOptions.AutoMaxHostsDown)
            {
                // Chosen once, before anything changes; every later plan of the run keeps it.
                _planOptions = _planOptions with { MaxHostsDown = plan.Options.MaxHostsDown };
                _log.Info("--max-hosts-down auto: {K} host(s) at a time is the fastest plan ({Estimate})", plan.Options.MaxHostsDown, Units.Duration(plan.Estimate.TotalSeconds));
            }

            if (pre.NotNeedingReboot.Count > 0)
            {
                // Hosts that need no reboot are left alone for the whole run, as if ignored.
                _planOptions = _planOptions with { IgnoreHosts = [.. _planOptions.IgnoreHosts, .. pre.NotNeedingReboot.Keys] };
                _log.Info("{Count} host(s) need no reboot (--needs-reboot-command): {Hosts}", pre.NotNeedingReboot.Count,
                    string.Join(", ", pre.NotNeedingReboot.Keys.Select(u => pre.Pool.Hosts.FirstOrDefault(h => h.Uuid == u)?.Name ?? u)));
            }

            if (plan.Blockers.Count > 0)
            {
                foreach (var b in plan.Blockers)
                {
                    _log.Error("Blocked: {Message}. Fix: {Fix}", b.Message, b.Fix);
                }

                Notify("failure", $"rollreboot on {_clusterLabel} blocked before it changed anything: {string.Join("; ", plan.Blockers.Select(b => b.Message))}", outcome: RunOutcome.Blocked.ToString());
                return Report(RunOutcome.Blocked, $"preflight found {plan.Blockers.Count} blocker(s); nothing was changed", started, plan);
            }

            if (_resume is null)
            {
                await AcquireLockAsync(pre.Pool, abort);
                RecordOriginals(pre.Pool);
            }
            else
            {
                _log.Info("Resuming run {RunId}: {Done} host(s) already rebooted in it", _resume.RunId, _rebooted.Count);
                if (!_lockHeld)
                {
                    // A paused run released its lock while it waited.
                    await AcquireLockAsync(pre.Pool, abort);
                }
            }

            await PrepareAsync(pre.Pool, abort);
            Notify("start", string.Create(CultureInfo.InvariantCulture,
                $"rollreboot {(_resume is null ? "started" : "resumed")} on {_clusterLabel} (pool {pre.Pool.Name}): {plan.Steps.Count} host(s) to reboot{(_options.Halt ? " (halt for hardware work)" : "")}, about {Units.Duration(plan.Estimate.TotalSeconds)}"));
            await RebootHostsAsync(plan, stop, abort);
            outcome = RunOutcome.Done;
            message = _options.EvacuateOnly
                ? $"{string.Join(", ", _hostReports.Select(h => h.Name))} empty and disabled for maintenance; when the work is done: 'rollreboot return --clustername {_clusterLabel} --host {string.Join(",", _hostReports.Select(h => h.Name))}'"
                : $"all {_rebooted.Count} host(s) rebooted";
            var skipped = _hostReports.Count(h => h.Result.StartsWith("skipped", StringComparison.Ordinal));
            if (skipped > 0)
            {
                message += $"; {skipped} skipped by the pre hook (exit 70)";
            }

            if (_options.Plan.ReturnVms)
            {
                var (back, failed) = await ReturnVmsAsync(plan.Steps.Select(s => s.HostUuid).Reverse().ToList(), stop, abort);
                message += failed.Count == 0
                    ? $"; {back} VM(s) migrated back to their original hosts"
                    : $"; {back} VM(s) migrated back, {failed.Count} left where they are ({string.Join(", ", failed.Take(10))})";
            }
        }
        catch (OperationCanceledException) when (stop.IsCancellationRequested || abort.IsCancellationRequested)
        {
            outcome = RunOutcome.Interrupted;
            message = "interrupted: stopped at a safe point";
            _log.Warn("Interrupted; restoring what the run changed");
        }
        catch (RunPausedException e)
        {
            outcome = RunOutcome.StoppedRestored;
            message = e.Message;
            paused = true;
            _log.Warn("Stopping at a safe point: {Reason}", e.Message);
        }
        catch (RunStoppedException e)
        {
            outcome = e.Blocked ? RunOutcome.Blocked : e.NeedsOperator ? RunOutcome.NeedsOperator : RunOutcome.StoppedRestored;
            message = e.Message;
            _log.Error("Run stopped: {Reason}", e.Message);
            if (e.OperatorAction is not null)
            {
                _operatorActions.Add(e.OperatorAction);
            }
        }
        catch (Exception e) when (e is PoolOperationException or CloudStackException or JournalException)
        {
            outcome = RunOutcome.StoppedRestored;
            message = "stopped: " + e.Message;
            _log.Error("Run stopped: {Reason}", e.Message);
        }
        catch (Exception e) when (e is not OutOfMemoryException)
        {
            // A bug or something unforeseen: still put back what the run changed, and say what it was.
            outcome = RunOutcome.NeedsOperator;
            message = $"stopped by an unexpected error ({e.GetType().Name}: {e.Message}); see the log";
            _log.Error("Run stopped by an unexpected error: {Error}", e.ToString());
        }

        // Restore never takes the interrupt tokens: a Ctrl-C must not cut it short.
        var restoredAll = await RestoreAsync(CancellationToken.None);
        if (!restoredAll && outcome is RunOutcome.Done or RunOutcome.StoppedRestored or RunOutcome.Interrupted)
        {
            // Something could not be put back: an operator must act, whatever stopped the run.
            outcome = RunOutcome.NeedsOperator;
        }

        // A paused run's journal stays open so that 'resume' continues it (in the next window, after the canary).
        _journal.Write(paused && restoredAll ? "run.paused" : "run.end", new Dictionary<string, object?> { ["outcome"] = outcome.ToString(), ["message"] = message });
        if (outcome is RunOutcome.NeedsOperator or RunOutcome.StoppedRestored or RunOutcome.Blocked && !paused)
        {
            Notify("failure", $"rollreboot on {_clusterLabel} stopped: {message}" + (_operatorActions.Count > 0 ? "; operator action needed: " + string.Join("; ", _operatorActions) : ""), outcome: outcome.ToString());
        }

        if (outcome != RunOutcome.Blocked)
        {
            Notify("finish", $"rollreboot on {_clusterLabel} finished: {outcome}: {message} ({_hostReports.Count(h => h.Result == "rebooted")} host(s) rebooted)", outcome: outcome.ToString());
        }

        return Report(outcome, message, started, plan);
    }

    private RunReport Report(RunOutcome outcome, string message, DateTimeOffset started, Plan? plan) =>
        new(_runId, _lastSnapshot?.Name ?? "?", outcome, message, _hostReports.ToList(), _restored.ToList(), _operatorActions.ToList(),
            (_clock.GetUtcNow() - started).TotalSeconds, plan?.Estimate.TotalSeconds ?? 0, plan);

    /// <summary>
    /// A run that died while a host was rebooting: wait for that host to come back and prove it, as the
    /// dead run would have, before planning the rest. A reboot that was never taken is not waited for.
    /// </summary>
    private async Task FinishRebootsInFlightAsync(JournalState state, CancellationToken cancellationToken)
    {
        var snapshot = await ReadPatientlyAsync(cancellationToken);
        foreach (var (hostUuid, bootTimeMs) in state.RebootRequestedBootTime)
        {
            var h = snapshot.Hosts.FirstOrDefault(x => x.Uuid == hostUuid);
            if (h is null || _rebooted.Contains(hostUuid))
            {
                continue;
            }

            var inFlight = state.RebootCalled.Contains(hostUuid) || !h.Live || h.CurrentOperations.Count > 0;
            if (!inFlight)
            {
                continue;
            }

            _log.Info("{Host} was rebooting when the previous run stopped; waiting for it", h.Name);
            var (serverTime, bootId) = state.RebootContext.GetValueOrDefault(hostUuid);
            var previousBoot = bootTimeMs is { } ms ? DateTimeOffset.FromUnixTimeMilliseconds(ms) : DateTimeOffset.MinValue;
            await WaitForHostBackAsync(h, previousBoot, serverTime ?? previousBoot, bootId, hostUuid == snapshot.MasterUuid, cancellationToken);
            _rebooted.Add(hostUuid);
            await EnableAfterRebootAsync(h, _original?.HostEnabled.GetValueOrDefault(hostUuid, true) ?? true, cancellationToken);
            _journal.Write("host.done", new Dictionary<string, object?> { ["host"] = hostUuid, ["name"] = h.Name });
        }
    }

    /// <summary>
    /// A run that died mid-host left that host disabled; it was enabled before the run, so the resumed plan
    /// must see it as the operator had it.
    /// </summary>
    private async Task ReenableHostsLeftDisabledAsync(CancellationToken cancellationToken)
    {
        var snapshot = await _pool.ReadAsync(cancellationToken);
        foreach (var uuid in _disabledByRun.ToList())
        {
            var h = snapshot.Hosts.FirstOrDefault(x => x.Uuid == uuid);
            if (h is { Live: true, Enabled: false } && _original?.HostEnabled.GetValueOrDefault(uuid, true) != false)
            {
                await _pool.EnableHostAsync(uuid, cancellationToken);
                _journal.Write("host.enable.done", new Dictionary<string, object?> { ["host"] = uuid });
                _log.Info("{Host}: enabled again (the interrupted run had disabled it)", h.Name);
            }

            if (h is { Live: true })
            {
                _disabledByRun.Remove(uuid);
            }
        }
    }

    // ---- lock and originals --------------------------------------------------------------------

    private async Task AcquireLockAsync(PoolSnapshot pool, CancellationToken cancellationToken)
    {
        var now = _clock.GetUtcNow();
        var value = new JsonObject
        {
            ["runId"] = _runId,
            ["operator"] = _options.Operator,
            ["machine"] = _options.Machine,
            ["started"] = now.ToString("O", CultureInfo.InvariantCulture),
            ["expires"] = (now + _options.LockTtl).ToString("O", CultureInfo.InvariantCulture),
        }.ToJsonString();
        _journal.Write("lock.intent", new Dictionary<string, object?> { ["value"] = value });
        if (!await _pool.TryAddPoolOtherConfigAsync(LockKey, value, cancellationToken))
        {
            var current = (await _pool.ReadAsync(cancellationToken)).OtherConfig.GetValueOrDefault(LockKey) ?? "";
            var owner = DescribeLock(current, out var expired);
            if (!_options.BreakLock)
            {
                throw new RunStoppedException(
                    expired
                        ? $"pool {pool.Name} holds a stale lock from {owner}; if that run is dead, run again with --break-lock (or 'rollreboot restore' to undo its changes)"
                        : $"pool {pool.Name} is locked by another run: {owner}; wait for it to finish (a second run must never touch the pool)",
                    needsOperator: false)
                { Blocked = true };
            }

            _log.Warn("Breaking the lock held by {Owner}, as asked with --break-lock", owner);
            await _pool.RemovePoolOtherConfigAsync(LockKey, cancellationToken);
            if (!await _pool.TryAddPoolOtherConfigAsync(LockKey, value, cancellationToken))
            {
                throw new RunStoppedException($"another run took the lock of pool {pool.Name} while it was being broken", needsOperator: false) { Blocked = true };
            }
        }

        _lockHeld = true;
        _journal.Write("lock.acquired", new Dictionary<string, object?> { ["key"] = LockKey });
        _log.Info("Locked pool {Pool} for run {RunId}", pool.Name, _runId);
    }

    public static string DescribeLock(string value, out bool expired)
    {
        expired = false;
        try
        {
            var o = JsonNode.Parse(value) as JsonObject;
            var expires = Time.IsoMoment.TryParse(o?["expires"]?.ToString(), out var e) ? e : (DateTimeOffset?)null;
            expired = expires is not null && expires < TimeProvider.System.GetUtcNow();
            return $"run {o?["runId"]} by {o?["operator"]} on {o?["machine"]} since {o?["started"]}";
        }
        catch (JsonException)
        {
            return "an unknown owner (" + value + ")";
        }
    }

    private void RecordOriginals(PoolSnapshot pool)
    {
        _original = new OriginalState(
            pool.Ha,
            _cloud?.Cluster.ManagedState,
            pool.Hosts.ToDictionary(h => h.Uuid, h => h.Enabled),
            pool.Vms.Where(v => v.IsRunningGuest).ToDictionary(v => v.Uuid, v => v.ResidentOnUuid),
            pool.OtherConfig.GetValueOrDefault("auto_poweron"));
        _journal.Write("originals", new Dictionary<string, object?>
        {
            ["poolUuid"] = pool.Uuid,
            ["ha"] = new Dictionary<string, object?>
            {
                ["enabled"] = pool.Ha.Enabled,
                ["heartbeatSrs"] = pool.Ha.HeartbeatSrUuids,
                ["configuration"] = pool.Ha.Configuration,
                ["hostFailuresToTolerate"] = pool.Ha.HostFailuresToTolerate,
                ["allowOvercommit"] = pool.Ha.AllowOvercommit,
            },
            ["cloudstackManagedState"] = _original.CloudStackManagedState,
            ["hostEnabled"] = _original.HostEnabled,
            ["vmHost"] = _original.VmHost,
        });
    }

    // ---- HA off, CloudStack unmanaged ----------------------------------------------------------

    private async Task PrepareAsync(PoolSnapshot pool, CancellationToken cancellationToken)
    {
        if (pool.Ha.Enabled)
        {
            _journal.Write("ha.disable.intent");
            await _pool.DisableHaAsync(cancellationToken);
            _haDisabledByRun = true;
            _journal.Write("ha.disable.done");
            _log.Info("HA disabled for the run (timeout {Timeout} s, heartbeat SRs {Srs}, tolerate {Ntol} recorded)", pool.Ha.TimeoutSeconds, pool.Ha.HeartbeatSrUuids.Count, pool.Ha.HostFailuresToTolerate);
        }

        if (_cloud is not null && (await _cloud.Api.GetClusterAsync(_cloud.Cluster.Id, cancellationToken)).ManagedState == "Managed")
        {
            _journal.Write("cloudstack.unmanage.intent", new Dictionary<string, object?> { ["clusterId"] = _cloud.Cluster.Id });
            _unmanagedByRun = true;
            string state;
            try
            {
                state = await _cloud.Api.SetManagedStateAsync(_cloud.Cluster.Id, managed: false, cancellationToken);
            }
            catch (CloudStackException e)
            {
                throw new RunStoppedException($"CloudStack could not unmanage cluster {_cloud.Cluster.Name}: {e.ErrorText}", needsOperator: false);
            }

            if (state != "Unmanaged")
            {
                throw new RunStoppedException($"CloudStack left cluster {_cloud.Cluster.Name} {state} instead of Unmanaged", needsOperator: false);
            }

            _journal.Write("cloudstack.unmanage.done");
            _log.Info("CloudStack cluster {Cluster} is Unmanaged for the run", _cloud.Cluster.Name);
        }
    }

    // ---- hosts ---------------------------------------------------------------------------------

    private async Task RebootHostsAsync(Plan plan, CancellationToken stop, CancellationToken abort)
    {
        var remaining = plan.Steps.Select(s => s.HostUuid).ToList();
        var doneThisRun = 0;
        while (remaining.Count > 0)
        {
            stop.ThrowIfCancellationRequested();
            if (_options.PauseAfter is { } pauseAfter && doneThisRun >= pauseAfter)
            {
                throw new RunPausedException($"paused after {doneThisRun} host(s) as asked (--pause-after {pauseAfter}); check them, then continue with 'rollreboot resume --clustername {_clusterLabel}'");
            }

            if (doneThisRun > 0 && _options.HostDelay > TimeSpan.Zero)
            {
                _log.Info("Waiting {Delay} before the next host (--host-delay)", Units.Duration(_options.HostDelay.TotalSeconds));
                await Task.Delay(_options.HostDelay, _clock, stop);
            }

            // Re-plan against the live pool: VMs may have started, stopped or moved. One host at a time asks
            // XAPI about that host only; with waves every host is asked.
            if (doneThisRun > 0 && _options.Hooks.BlockerCommand is not null)
            {
                await WaitForBlockerAsync(remaining, stop);
            }

            var onlyHost = _planOptions.MaxHostsDown > 1 ? null : remaining[0];
            var pre = await Preflight.RunAsync(_pool, null, _planOptions, RebootedSoFar(), abort, onlyHost, _antiAffinity);
            _lastSnapshot = pre.Pool;
            if (pre.Plan.Blockers.Count > 0)
            {
                var next = pre.Pool.Hosts.FirstOrDefault(h => h.Uuid == remaining[0])?.Name ?? remaining[0];
                throw new RunStoppedException($"before {next}: {string.Join("; ", pre.Plan.Blockers.Select(b => b.Message))}", needsOperator: false);
            }

            foreach (var gone in remaining.Where(r => pre.Plan.Steps.All(s => s.HostUuid != r)).ToList())
            {
                _log.Warn("{Host} no longer needs the run's attention; skipped", pre.Pool.Hosts.FirstOrDefault(h => h.Uuid == gone)?.Name ?? gone);
                remaining.Remove(gone);
            }

            var steps = pre.Plan.Steps.Where(s => remaining.Contains(s.HostUuid)).ToList();
            if (steps.Count == 0)
            {
                break;
            }

            // The live plan's next wave: hosts rebooted together (always one, the master alone, with --max-hosts-down 1).
            var wave = steps.Where(s => s.Wave == steps[0].Wave).ToList();
            if (_options.WindowEnd is { } windowEnd)
            {
                var ends = _clock.GetUtcNow() + TimeSpan.FromSeconds(wave.Max(w => w.EstimatedSeconds));
                if (ends > windowEnd)
                {
                    throw new RunPausedException(string.Create(CultureInfo.InvariantCulture,
                        $"the next host ({string.Join(", ", wave.Select(w => w.HostName))}, about {Units.Duration(wave.Max(w => w.EstimatedSeconds))}) would end after the window ({windowEnd:u}); {doneThisRun} host(s) done in this window; resume in the next window with 'rollreboot resume --clustername {_clusterLabel}'"));
                }
            }

            _currentPlan = pre.Plan;
            if (wave.Count > 1)
            {
                _log.Info("Wave {Wave}: {Hosts} together", wave[0].Wave, string.Join(", ", wave.Select(w => w.HostName)));
            }

            await Task.WhenAll(wave.Select(step => RunHostAsync(pre.Pool, pre.Pool.Hosts.First(h => h.Uuid == step.HostUuid), step, stop, abort)));
            foreach (var step in wave)
            {
                remaining.Remove(step.HostUuid);
            }

            doneThisRun += wave.Count;
        }
    }

    /// <summary>
    /// Before each host after the first: the blocker command must pass. While it fails the run waits (nothing is
    /// in flight), bounded by --blocker-timeout and the window; then it stops safely, resumable.
    /// </summary>
    private async Task WaitForBlockerAsync(IReadOnlyList<string> remaining, CancellationToken stop)
    {
        var next = _lastSnapshot?.Hosts.FirstOrDefault(h => h.Uuid == remaining[0])?.Name ?? remaining[0];
        var env = new Dictionary<string, string>(StringComparer.Ordinal)
        {
            [HookVariables.Phase] = "between-hosts",
            [HookVariables.Pool] = _lastSnapshot?.Name ?? "",
            [HookVariables.Cluster] = _clusterLabel,
            [HookVariables.RunId] = _runId,
            [HookVariables.NextHost] = next,
        };
        var deadline = _clock.GetUtcNow() + _options.Hooks.BlockerTimeout;
        if (_options.WindowEnd is { } windowEnd && windowEnd < deadline)
        {
            deadline = windowEnd;
        }

        while (await Commands.CheckBlockerAsync(env, stop) is { } blocked)
        {
            if (_clock.GetUtcNow() >= deadline)
            {
                throw new RunPausedException($"blocked before {next} for {Units.Duration(_options.Hooks.BlockerTimeout.TotalSeconds)} ({blocked}); resume when it passes with 'rollreboot resume --clustername {_clusterLabel}'");
            }

            _log.Warn("Blocked before {Host}: {Reason}; checking again in {Interval}", next, blocked, Units.Duration(_options.Hooks.BlockerInterval.TotalSeconds));
            await Task.Delay(_options.Hooks.BlockerInterval, _clock, stop);
        }
    }

    private HashSet<string> RebootedSoFar()
    {
        lock (_state)
        {
            return [.. _rebooted];
        }
    }

    private async Task RunHostAsync(PoolSnapshot pool, HostState host, PlanStep step, CancellationToken stop, CancellationToken abort)
    {
        var isMaster = host.Uuid == pool.MasterUuid;
        var evacuationStart = _clock.GetUtcNow();
        // What proves the reboot later (the host's clock now, its boot id over SSH) is taken while it is evacuated.
        var rebootContext = CaptureRebootContextAsync(host, abort);
        _log.HostPhase(host.Name, isMaster ? "evacuating (master)" : "evacuating");

        _journal.Write("host.disable.intent", new Dictionary<string, object?> { ["host"] = host.Uuid, ["name"] = host.Name });
        lock (_state)
        {
            _disabledByRun.Add(host.Uuid);
        }

        await IdempotentAsync(ct => _pool.DisableHostAsync(host.Uuid, ct), abort);
        _journal.Write("host.disable.done", new Dictionary<string, object?> { ["host"] = host.Uuid });

        var (moved, bytes, retries) = await MigrateAllAsync(pool, host, step, abort);
        var evacuated = (_clock.GetUtcNow() - evacuationStart).TotalSeconds;

        // Verify the host is empty before anything irreversible.
        var after = await ReadPatientlyAsync(abort);
        _lastSnapshot = after;
        var left = after.RunningOn(host.Uuid).ToList();
        if (left.Count > 0)
        {
            throw new RunStoppedException($"{host.Name} still runs {string.Join(", ", left.Select(v => v.Name))} after evacuation; not rebooting it", needsOperator: false);
        }

        if (_options.EvacuateOnly)
        {
            await LeaveEvacuatedAsync(host, isMaster, moved, bytes, evacuated, retries, abort);
            return;
        }

        // The last safe point before the reboot: a Ctrl-C now leaves the host untouched.
        stop.ThrowIfCancellationRequested();
        var hostNow = after.Hosts.First(h => h.Uuid == host.Uuid);
        if (_options.Hooks.PreHostHook is not null || _options.Hooks.PreHostCommand is not null)
        {
            // The host is empty and disabled: the moment to patch it.
            if (await Commands.RunHostHooksAsync("pre", hostNow, after, _clusterLabel, _runId, abort) == HookDecision.SkipHost)
            {
                await SkipHostAsync(host, isMaster, moved, bytes, evacuated, retries, abort);
                return;
            }

            stop.ThrowIfCancellationRequested();
        }

        var rebootStart = _clock.GetUtcNow();
        var (serverTime, bootId) = await rebootContext;

        _journal.Write("host.reboot.intent", new Dictionary<string, object?>
        {
            ["host"] = host.Uuid,
            ["name"] = host.Name,
            ["bootTime"] = hostNow.BootTime?.ToUnixTimeMilliseconds(),
            ["serverTime"] = serverTime.ToString("O", CultureInfo.InvariantCulture),
            ["bootId"] = bootId,
            ["halt"] = _options.Halt,
        });
        _log.HostPhase(host.Name, _options.Halt ? "shutting down (--halt)" : "rebooting");
        try
        {
            await PowerCycleAsync(host.Uuid, abort);
        }
        catch (PoolOperationException e) when (IsTransient(e))
        {
            // Never repeat a reboot blindly: look whether it was taken (operation running, host down, new boot).
            var check = await ReadPatientlyAsync(abort);
            var h = check.Hosts.FirstOrDefault(x => x.Uuid == host.Uuid);
            var taken = h is null || !h.Live || h.CurrentOperations.Count > 0 || h.BootTime != hostNow.BootTime;
            if (!taken)
            {
                _log.Warn("The reboot request for {Host} got no answer and was not taken; asking once more", host.Name);
                await PowerCycleAsync(host.Uuid, abort);
            }
        }

        _journal.Write("host.reboot.done", new Dictionary<string, object?> { ["host"] = host.Uuid });
        if (_options.Halt)
        {
            var powerOnBy = _clock.GetUtcNow() + _options.PowerOnTimeout;
            _log.Warn("{Host} is shutting down for hardware work: power it on when done (IPMI / iLO / 'xe host-power-on host={Host}'); waiting until {Deadline:u}",
                host.Name, host.Name, _options.WindowEnd is { } we && we < powerOnBy ? we : powerOnBy);
            Notify("host.halted", $"{host.Name} of {_clusterLabel} is shut down for hardware work: power it on when done", host.Name);
        }

        await WaitForHostBackAsync(host, hostNow.BootTime ?? serverTime, serverTime, bootId, isMaster, abort);
        lock (_state)
        {
            _rebooted.Add(host.Uuid);
        }


        var wasEnabled = _original!.HostEnabled.GetValueOrDefault(host.Uuid, true);
        await EnableAfterRebootAsync(host, wasEnabled, abort);
        var rebootSeconds = (_clock.GetUtcNow() - rebootStart).TotalSeconds;
        lock (_state)
        {
            _hostReports.Add(new HostReport(host.Name, isMaster, moved, bytes, evacuated, rebootSeconds, retries, "rebooted"));
        }

        _journal.Write("host.done", new Dictionary<string, object?> { ["host"] = host.Uuid, ["name"] = host.Name });
        _log.HostPhase(host.Name, string.Create(CultureInfo.InvariantCulture, $"done ({moved} migrations in {evacuated:0} s, back after {rebootSeconds:0} s)"));
        int doneCount;
        lock (_state)
        {
            doneCount = _rebooted.Count;
        }

        Notify("host.done", string.Create(CultureInfo.InvariantCulture, $"{host.Name} of {_clusterLabel} rebooted and back ({doneCount} done; {moved} VMs moved in {Units.Duration(evacuated)}, back after {Units.Duration(rebootSeconds)})"), host.Name);
        if (_options.Hooks.PostHostHook is not null || _options.Hooks.PostHostCommand is not null)
        {
            var back = await ReadPatientlyAsync(abort);
            await Commands.RunHostHooksAsync("post", back.Hosts.First(h => h.Uuid == host.Uuid), back, _clusterLabel, _runId, abort);
        }
    }

    /// <summary>
    /// 'rollreboot evacuate': the host is empty; it stays disabled (not put back by the restore) and a marker in
    /// pool.other_config names the VMs it ran, for 'rollreboot return' — from any machine.
    /// </summary>
    private async Task LeaveEvacuatedAsync(HostState host, bool isMaster, int moved, long bytes, double evacuated, int retries, CancellationToken abort)
    {
        var key = EvacuatedKeyPrefix + host.Uuid;
        var value = new JsonObject
        {
            ["runId"] = _runId,
            ["host"] = host.Name,
            ["at"] = _clock.GetUtcNow().ToString("O", CultureInfo.InvariantCulture),
            ["vms"] = new JsonArray([.. _original!.VmHost.Where(kv => kv.Value == host.Uuid).Select(kv => kv.Key).Order(StringComparer.Ordinal).Select(k => (JsonNode?)k)]),
        }.ToJsonString();
        _journal.Write("host.evacuated.intent", new Dictionary<string, object?> { ["host"] = host.Uuid, ["key"] = key });
        await IdempotentAsync(ct => _pool.RemovePoolOtherConfigAsync(key, ct), abort);
        await IdempotentAsync(ct => _pool.TryAddPoolOtherConfigAsync(key, value, ct), abort);
        Forget(host.Uuid);
        _journal.Write("host.evacuated", new Dictionary<string, object?> { ["host"] = host.Uuid, ["name"] = host.Name });
        lock (_state)
        {
            _hostReports.Add(new HostReport(host.Name, isMaster, moved, bytes, evacuated, 0, retries, "evacuated; left disabled for maintenance"));
        }

        _log.HostPhase(host.Name, "empty and disabled for maintenance");
        Notify("host.evacuated", $"{host.Name} of {_clusterLabel} is empty and disabled for maintenance", host.Name);
    }

    /// <summary>
    /// 'rollreboot return --host H': enables a host emptied by 'rollreboot evacuate' and brings its VMs back
    /// (bounded tries, a VM that cannot go back stays running where it is), under the pool's lock.
    /// </summary>
    public async Task<RunReport> ReturnHostAsync(PoolSnapshot pool, string hostUuid, CancellationToken stop, CancellationToken abort)
    {
        var started = _clock.GetUtcNow();
        _lastSnapshot = pool;
        var host = pool.Hosts.First(h => h.Uuid == hostUuid);
        var marker = pool.OtherConfig.GetValueOrDefault(EvacuatedKeyPrefix + hostUuid);
        RunOutcome outcome;
        string message;
        try
        {
            await AcquireLockAsync(pool, abort);
            RecordOriginals(pool);
            if (!host.Enabled)
            {
                _journal.Write("host.enable.intent", new Dictionary<string, object?> { ["host"] = hostUuid, ["name"] = host.Name });
                await IdempotentAsync(ct => _pool.EnableHostAsync(hostUuid, ct), abort);
                _journal.Write("host.enable.done", new Dictionary<string, object?> { ["host"] = hostUuid });
                _log.HostPhase(host.Name, "enabled again");
            }

            var vms = marker is null ? [] : (JsonNode.Parse(marker)?["vms"] as JsonArray)?.Select(n => n!.ToString()).ToHashSet(StringComparer.Ordinal) ?? [];
            _original = _original! with { VmHost = vms.ToDictionary(v => v, _ => (string?)hostUuid, StringComparer.Ordinal) };
            var (back, failed) = await ReturnVmsAsync([hostUuid], stop, abort);
            if (marker is not null)
            {
                await IdempotentAsync(ct => _pool.RemovePoolOtherConfigAsync(EvacuatedKeyPrefix + hostUuid, ct), abort);
            }

            _hostReports.Add(new HostReport(host.Name, host.Uuid == pool.MasterUuid, back, 0, (_clock.GetUtcNow() - started).TotalSeconds, 0, 0, "returned"));
            outcome = RunOutcome.Done;
            message = failed.Count == 0
                ? $"{host.Name} enabled; {back} VM(s) back on it"
                : $"{host.Name} enabled; {back} VM(s) back on it, {failed.Count} left where they run ({string.Join(", ", failed.Take(10))})";
            Notify("host.returned", $"{host.Name} of {_clusterLabel} is back in service: {message}", host.Name);
        }
        catch (RunStoppedException e)
        {
            outcome = e.Blocked ? RunOutcome.Blocked : RunOutcome.StoppedRestored;
            message = e.Message;
        }
        catch (OperationCanceledException) when (stop.IsCancellationRequested || abort.IsCancellationRequested)
        {
            outcome = RunOutcome.Interrupted;
            message = "interrupted";
        }
        catch (PoolOperationException e)
        {
            outcome = RunOutcome.StoppedRestored;
            message = "stopped: " + e.Message;
        }

        var ok = await RestoreAsync(CancellationToken.None);
        _journal.Write("run.end", new Dictionary<string, object?> { ["outcome"] = outcome.ToString(), ["message"] = message });
        var final = ok || outcome == RunOutcome.Blocked ? outcome : RunOutcome.NeedsOperator;
        Notify("finish", $"rollreboot return on {_clusterLabel} finished: {final}: {message}", outcome: final.ToString());
        return Report(final, message, started, null);
    }

    /// <summary>
    /// The host's server time and SSH boot id before its reboot. Read concurrently with the evacuation: both
    /// stay true until the reboot (a lower bound for the new boot time; the boot id of this boot).
    /// </summary>
    private async Task<(DateTimeOffset ServerTime, string? BootId)> CaptureRebootContextAsync(HostState host, CancellationToken abort)
    {
        var serverTime = await _pool.GetServerTimeAsync(host.Uuid, abort);
        if (_probe is null || !_options.UseSshProof)
        {
            return (serverTime, null);
        }

        var probe = await _probe.GetBootIdAsync(host.Name, host.Address, abort);
        if (probe.Outcome is ProbeOutcome.AuthFailed or ProbeOutcome.HostKeyRejected)
        {
            throw new RunStoppedException($"SSH to {host.Name} failed before its reboot: {probe.Detail}", needsOperator: false);
        }

        return (serverTime, probe.BootId);
    }

    private Task PowerCycleAsync(string hostUuid, CancellationToken abort) =>
        _options.Halt ? _pool.ShutdownHostAsync(hostUuid, abort) : _pool.RebootHostAsync(hostUuid, abort);

    /// <summary>A pre hook said skip (exit 70): the host is not rebooted; it is enabled again as it was, its VMs stay where they went.</summary>
    private async Task SkipHostAsync(HostState host, bool isMaster, int moved, long bytes, double evacuated, int retries, CancellationToken abort)
    {
        if (_original!.HostEnabled.GetValueOrDefault(host.Uuid, true))
        {
            await IdempotentAsync(ct => _pool.EnableHostAsync(host.Uuid, ct), abort);
            _journal.Write("host.enable.done", new Dictionary<string, object?> { ["host"] = host.Uuid });
        }

        Forget(host.Uuid);
        lock (_state)
        {
            _hostReports.Add(new HostReport(host.Name, isMaster, moved, bytes, evacuated, 0, retries, "skipped by pre hook (exit 70)"));
            // Left alone from now on: later plans treat it as a host that is not rebooted.
            _planOptions = _planOptions with { IgnoreHosts = [.. _planOptions.IgnoreHosts, host.Uuid] };
        }

        _journal.Write("host.skipped", new Dictionary<string, object?> { ["host"] = host.Uuid, ["name"] = host.Name, ["reason"] = "pre hook exit 70" });
        _log.HostPhase(host.Name, "skipped (pre hook exit 70); enabled again");
        Notify("host.skipped", $"{host.Name} of {_clusterLabel} skipped: the pre hook exited 70", host.Name);
    }

    private async Task<(int Moved, long Bytes, int Retries)> MigrateAllAsync(PoolSnapshot pool, HostState host, PlanStep step, CancellationToken abort)
    {
        var threads = Math.Max(1, _options.Plan.Threads);
        var perTarget = Math.Max(1, _options.Plan.MaxMigrationsPerTarget);
        using var gate = new SemaphoreSlim(threads);
        var targetGates = step.Migrations.Select(m => m.ToUuid).Distinct().ToDictionary(t => t, _ => new SemaphoreSlim(perTarget));
        var moved = 0;
        long bytes = 0;
        var retries = 0;
        var failures = new List<string>();
        var tasks = step.Migrations.OrderByDescending(m => m.MemoryBytes).Select(async m =>
        {
            await gate.WaitAsync(abort);
            try
            {
                var target = m.ToUuid;
                for (var attempt = 0; ; attempt++)
                {
                    var tgate = targetGates.GetValueOrDefault(target);
                    if (tgate is not null)
                    {
                        await tgate.WaitAsync(abort);
                    }

                    try
                    {
                        _journal.Write("vm.migrate.intent", new Dictionary<string, object?> { ["vm"] = m.VmUuid, ["name"] = m.VmName, ["from"] = host.Uuid, ["to"] = target });
                        using var timeout = CancellationTokenSource.CreateLinkedTokenSource(abort);
                        timeout.CancelAfter(_clock.ToWallSpan(_options.MigrationTimeout));
                        await _pool.MigrateVmAsync(m.VmUuid, target, null, timeout.Token);
                        _journal.Write("vm.migrate.done", new Dictionary<string, object?> { ["vm"] = m.VmUuid, ["to"] = target });
                        var n = Interlocked.Increment(ref moved);
                        Interlocked.Add(ref bytes, m.MemoryBytes);
                        ReportProgress(host, step, n);
                        return;
                    }
                    catch (PoolOperationException e) when (attempt < _options.MigrationRetries)
                    {
                        Interlocked.Increment(ref retries);
                        _journal.Write("vm.migrate.failed", new Dictionary<string, object?> { ["vm"] = m.VmUuid, ["to"] = target, ["error"] = e.Code });
                        var live = await ReadPatientlyAsync(abort);
                        var vm = live.Vms.FirstOrDefault(v => v.Uuid == m.VmUuid);
                        var settle = _clock.GetUtcNow() + _options.MigrationTimeout;
                        while (vm is { CurrentOperations.Count: > 0 } && _clock.GetUtcNow() < settle)
                        {
                            // A lost reply: the migration may be running after all. Let it finish, then decide.
                            await _pool.WaitForChangeAsync(TimeSpan.FromSeconds(10), abort);
                            live = await ReadPatientlyAsync(abort);
                            vm = live.Vms.FirstOrDefault(v => v.Uuid == m.VmUuid);
                        }

                        if (vm is null || !vm.IsRunningGuest || vm.ResidentOnUuid != host.Uuid)
                        {
                            // It moved after all (a lost reply), or stopped: nothing left to do for it.
                            return;
                        }

                        target = PickAlternative(live, vm, host.Uuid, target) ?? target;
                        _log.Warn("Migration of {Vm} failed ({Error}); retrying to {Target}", m.VmName, e.Code, live.FindHost(target)?.Name ?? target);
                    }
                    catch (PoolOperationException e)
                    {
                        lock (failures)
                        {
                            failures.Add($"{m.VmName}: {e.Code}");
                        }

                        return;
                    }
                    finally
                    {
                        tgate?.Release();
                    }
                }
            }
            finally
            {
                gate.Release();
            }
        }).ToList();
        await Task.WhenAll(tasks);
        foreach (var g in targetGates.Values)
        {
            g.Dispose();
        }

        if (failures.Count > 0)
        {
            throw new RunStoppedException($"could not evacuate {host.Name}: {string.Join(", ", failures)}; stopped before its reboot", needsOperator: false);
        }

        return (moved, bytes, retries);
    }

    /// <summary>
    /// <c>--return-vms</c>: each VM back to the host it ran on before the run, hosts in reverse order, a
    /// bounded number of tries, failures reported but not fatal (the VM is running, just elsewhere).
    /// </summary>
    private async Task<(int Back, List<string> Failed)> ReturnVmsAsync(List<string> order, CancellationToken stop, CancellationToken abort)
    {
        var back = 0;
        var failed = new List<string>();
        var pending = new List<VmState>();
        for (var pass = 0; pass < 2; pass++)
        {
            var pool = await ReadPatientlyAsync(abort);
            var wanted = pool.Vms.Where(v => v.IsRunningGuest && _original!.VmHost.TryGetValue(v.Uuid, out var home) && home is not null && home != v.ResidentOnUuid)
                .OrderBy(v => order.IndexOf(_original!.VmHost[v.Uuid]!) is var i && i < 0 ? int.MaxValue : i).ThenBy(v => v.Name, StringComparer.Ordinal).ToList();
            if (wanted.Count == 0)
            {
                break;
            }

            _log.Info("Returning {Count} VM(s) to their original hosts (pass {Pass})", wanted.Count, pass + 1);
            using var gate = new SemaphoreSlim(Math.Max(1, _options.Plan.Threads));
            pending.Clear();
            var tasks = wanted.Select(async vm =>
            {
                stop.ThrowIfCancellationRequested();
                await gate.WaitAsync(abort);
                try
                {
                    var home = _original!.VmHost[vm.Uuid]!;
                    _journal.Write("vm.return.intent", new Dictionary<string, object?> { ["vm"] = vm.Uuid, ["name"] = vm.Name, ["to"] = home });
                    using var timeout = CancellationTokenSource.CreateLinkedTokenSource(abort);
                    timeout.CancelAfter(_clock.ToWallSpan(_options.MigrationTimeout));
                    await _pool.MigrateVmAsync(vm.Uuid, home, null, timeout.Token);
                    _journal.Write("vm.return.done", new Dictionary<string, object?> { ["vm"] = vm.Uuid });
                    Interlocked.Increment(ref back);
                }
                catch (PoolOperationException e)
                {
                    // Memory may free up once other VMs have gone home: one more pass.
                    lock (pending)
                    {
                        pending.Add(vm);
                    }

                    _log.Warn("Could not return {Vm} yet: {Error}", vm.Name, e.Code);
                }
                finally
                {
                    gate.Release();
                }
            }).ToList();
            await Task.WhenAll(tasks);
            if (pending.Count == 0)
            {
                break;
            }
        }

        failed.AddRange(pending.Select(v => v.Name).Order(StringComparer.Ordinal));
        return (back, failed);
    }

    /// <summary>Progress a person can follow: a line at each quarter of a host's migrations, with the run's ETA.</summary>
    private void ReportProgress(HostState host, PlanStep step, int done)
    {
        var total = step.Migrations.Count;
        var quarter = Math.Max(1, total / 4);
        if (done % quarter != 0 && done != total)
        {
            return;
        }

        var elapsed = _clock.GetUtcNow() - _runStarted;
        // The plan made just before this host starts with this host: its total is what is left.
        var remaining = _currentPlan is null ? 0 : _currentPlan.Estimate.TotalSeconds - (step.EvacuationSeconds * done / total);
        _log.Info("{Host}: {Done}/{Total} migrations; run elapsed {Elapsed}, about {Eta} to go",
            host.Name, done, total, Units.Duration(elapsed.TotalSeconds), Units.Duration(remaining));
    }

    /// <summary>Another rebooted (or never-rebooting) live enabled host with room for the VM.</summary>
    private string? PickAlternative(PoolSnapshot live, VmState vm, string sourceUuid, string failedTarget)
    {
        var allowed = RebootedSoFar();
        var nothingRebooted = allowed.Count == 0;
        allowed.UnionWith(live.Hosts.Where(h => !_original!.HostEnabled.ContainsKey(h.Uuid)).Select(h => h.Uuid));
        return live.Hosts
            .Where(h => h.Uuid != sourceUuid && h.Uuid != failedTarget && h.Live && h.Enabled && h.MemoryFree >= vm.MemoryBytes && (allowed.Contains(h.Uuid) || nothingRebooted))
            .OrderByDescending(h => h.MemoryFree).ThenBy(h => h.Name, StringComparer.Ordinal)
            .Select(h => h.Uuid).FirstOrDefault();
    }

    private async Task WaitForHostBackAsync(HostState host, DateTimeOffset previousBoot, DateTimeOffset requestedAt, string? previousBootId, bool isMaster, CancellationToken abort)
    {
        var now = _clock.GetUtcNow();
        var deadline = now + _options.HostTimeout;
        if (_options.Halt)
        {
            // Someone has to power it on: wait up to --power-on-timeout, not past the window (but always a host timeout).
            deadline = now + _options.PowerOnTimeout;
            if (_options.WindowEnd is { } windowEnd && windowEnd < deadline)
            {
                deadline = windowEnd > now + _options.HostTimeout ? windowEnd : now + _options.HostTimeout;
            }
        }

        var sawDown = false;
        var xapiBack = false;
        while (true)
        {
            abort.ThrowIfCancellationRequested();
            var remaining = deadline - _clock.GetUtcNow();
            if (remaining <= TimeSpan.Zero)
            {
                throw new RunStoppedException(
                    _options.Halt
                        ? $"{host.Name} was not powered on and back by {deadline:u} (--halt)"
                        : $"{host.Name} did not come back within {_options.HostTimeout.TotalMinutes:0} min of its reboot",
                    needsOperator: true,
                    $"check {host.Name} (console / IPMI{(_options.Halt ? "; power it on" : "")}); once it is back run 'rollreboot resume --clustername {_clusterLabel}' to finish, or 'rollreboot restore --clustername {_clusterLabel}'");
            }

            try
            {
                // Only this host is read while waiting for it: two small calls, not the whole pool.
                var h = await _pool.ReadHostAsync(host.Uuid, abort);
                if (!h.Live)
                {
                    sawDown = true;
                }

                var newBoot = h.BootTime is { } b && b > previousBoot && b >= requestedAt.AddSeconds(-1);
                var agentNew = h.AgentStartTime is { } a && a >= requestedAt.AddSeconds(-1);
                if (newBoot && agentNew && h.Live)
                {
                    if (!xapiBack)
                    {
                        xapiBack = true;
                        _log.Info("{Host} is back in XAPI (boot time {Boot:u})", host.Name, h.BootTime);
                    }

                    if (await SshConfirmsAsync(host, previousBootId, abort))
                    {
                        return;
                    }
                }

                if (xapiBack)
                {
                    // XAPI has it back but sshd does not answer yet: nothing in XAPI will change, so poll SSH.
                    await Task.Delay(Min(remaining, TimeSpan.FromSeconds(1)), _clock, abort);
                }
                else
                {
                    // Wait for the next change (event.from), bounded.
                    await _pool.WaitForChangeAsync(Min(remaining, TimeSpan.FromSeconds(30)), abort);
                }
            }
            catch (PoolOperationException e) when (e.IsUnreachable || e.Code is "SESSION_INVALID" or "HOST_STILL_BOOTING" or "HOST_IS_SLAVE" or "HOST_OFFLINE")
            {
                // The master is rebooting (or its toolstack is starting): keep asking, bounded.
                if (!isMaster && !sawDown)
                {
                    _log.Warn("Pool unreachable while waiting for {Host}: {Error}", host.Name, e.Message);
                }

                await Task.Delay(TimeSpan.FromSeconds(2), _clock, abort);
            }
        }
    }

    private async Task<bool> SshConfirmsAsync(HostState host, string? previousBootId, CancellationToken abort)
    {
        if (_probe is null || !_options.UseSshProof)
        {
            return true;
        }

        var result = await _probe.GetBootIdAsync(host.Name, host.Address, abort);
        switch (result.Outcome)
        {
            case ProbeOutcome.Answered when result.BootId is { Length: > 0 } id && id != previousBootId:
                _log.Info("{Host} answers over SSH with a new boot id", host.Name);
                return true;
            case ProbeOutcome.Answered:
                throw new RunStoppedException($"{host.Name} answers over SSH with the boot id it had before the reboot: it did not reboot", needsOperator: true,
                    $"check {host.Name}; then 'rollreboot resume --clustername ...'");
            case ProbeOutcome.AuthFailed or ProbeOutcome.HostKeyRejected:
                throw new RunStoppedException($"SSH to {host.Name} after its reboot: {result.Detail}", needsOperator: true,
                    $"fix SSH access to {host.Name} (key or known_hosts), then 'rollreboot resume --clustername ...'");
            default:
                return false;
        }
    }

    private async Task EnableAfterRebootAsync(HostState host, bool wasEnabled, CancellationToken abort)
    {
        var deadline = _clock.GetUtcNow() + _options.HostTimeout;
        while (true)
        {
            var h = await _pool.ReadHostAsync(host.Uuid, abort);
            if (!wasEnabled)
            {
                if (h.Enabled)
                {
                    // It was disabled by the operator before the run: leave it as it was.
                    _journal.Write("host.disable.intent", new Dictionary<string, object?> { ["host"] = host.Uuid, ["name"] = host.Name });
                    await _pool.DisableHostAsync(host.Uuid, abort);
                }

                Forget(host.Uuid);
                return;
            }

            if (h.Enabled)
            {
                Forget(host.Uuid);
                _journal.Write("host.enable.done", new Dictionary<string, object?> { ["host"] = host.Uuid });
                return;
            }

            try
            {
                await _pool.EnableHostAsync(host.Uuid, abort);
                Forget(host.Uuid);
                _journal.Write("host.enable.done", new Dictionary<string, object?> { ["host"] = host.Uuid });
                return;
            }
            catch (PoolOperationException e) when (e.Code == "HOST_PENDING_MANDATORY_GUIDANCES_NOT_EMPTY")
            {
                throw new RunStoppedException($"{host.Name} came back disabled with mandatory guidance pending ({string.Join(", ", e.Parameters.Skip(1))})", needsOperator: true,
                    $"apply the pending guidance on {host.Name} (e.g. another reboot or toolstack restart), 'xe host-enable host={host.Name}', then 'rollreboot resume --clustername ...'");
            }
            catch (PoolOperationException e) when (e.Code is "HOST_STILL_BOOTING" or "OTHER_OPERATION_IN_PROGRESS" && _clock.GetUtcNow() < deadline)
            {
                await _pool.WaitForChangeAsync(TimeSpan.FromSeconds(10), abort);
            }
        }
    }

    private void Forget(string disabledHost)
    {
        lock (_state)
        {
            _disabledByRun.Remove(disabledHost);
        }
    }

    // ---- restore -------------------------------------------------------------------------------

    /// <summary>Puts back what the run changed. Returns false when something needs an operator.</summary>
    private async Task<bool> RestoreAsync(CancellationToken cancellationToken)
    {
        var ok = true;
        var snapshot = await TryReadAsync(cancellationToken);

        foreach (var hostUuid in _disabledByRun.ToList())
        {
            var h = snapshot?.Hosts.FirstOrDefault(x => x.Uuid == hostUuid);
            if (h is { Live: true })
            {
                try
                {
                    await IdempotentAsync(ct => _pool.EnableHostAsync(hostUuid, ct), cancellationToken);
                    _disabledByRun.Remove(hostUuid);
                    _restored.Add($"host {h.Name} enabled again");
                    _journal.Write("host.enable.done", new Dictionary<string, object?> { ["host"] = hostUuid });
                }
                catch (PoolOperationException e)
                {
                    ok = false;
                    _operatorActions.Add($"enable host {h.Name}: 'xe host-enable host={h.Name}' ({e.Code})");
                }
            }
            else
            {
                ok = false;
                _operatorActions.Add($"host {h?.Name ?? hostUuid} is not live: once it is back, 'xe host-enable host={h?.Name ?? hostUuid}'");
            }
        }

        if (_haDisabledByRun && _original is not null)
        {
            ok &= await RestoreHaAsync(_original.Ha, cancellationToken);
        }

        if (_unmanagedByRun && _cloud is not null)
        {
            ok &= await RestoreCloudStackAsync(cancellationToken);
        }

        if (_lockHeld)
        {
            try
            {
                await IdempotentAsync(ct => _pool.RemovePoolOtherConfigAsync(LockKey, ct), cancellationToken);
                _lockHeld = false;
                _journal.Write("lock.released");
                _restored.Add("pool lock released");
            }
            catch (PoolOperationException e)
            {
                ok = false;
                _operatorActions.Add($"remove the run's lock: 'xe pool-param-remove uuid={_lastSnapshot?.Uuid} param-name=other-config param-key={LockKey}' ({e.Code})");
            }
        }

        return ok;
    }

    private async Task<PoolSnapshot?> TryReadAsync(CancellationToken cancellationToken)
    {
        try
        {
            return await ReadPatientlyAsync(cancellationToken);
        }
        catch (PoolOperationException)
        {
            return null;
        }
    }

    private async Task<bool> RestoreHaAsync(HaSettings ha, CancellationToken cancellationToken)
    {
        var cfg = string.Join(",", ha.Configuration.Select(kv => $"{kv.Key}={kv.Value}"));
        var command = $"xe pool-ha-enable heartbeat-sr-uuids={string.Join(",", ha.HeartbeatSrUuids)}{string.Join("", ha.Configuration.Select(kv => $" ha-config:{kv.Key}={kv.Value}"))} && xe pool-param-set uuid={_lastSnapshot?.Uuid} ha-host-failures-to-tolerate={ha.HostFailuresToTolerate} ha-allow-overcommit={ha.AllowOvercommit.ToString().ToLowerInvariant()}";
        var deadline = _clock.GetUtcNow() + _options.HostTimeout;
        while (true)
        {
            try
            {
                var snapshot = await _pool.ReadAsync(cancellationToken);
                if (snapshot.Hosts.FirstOrDefault(h => !h.Live) is { } offline)
                {
                    if (_clock.GetUtcNow() >= deadline || !_rebooted.Contains(offline.Uuid))
                    {
                        _operatorActions.Add($"HA could not be re-enabled: host {offline.Name} is offline. Once every host is live, run: {command}");
                        return false;
                    }

                    await _pool.WaitForChangeAsync(TimeSpan.FromSeconds(30), cancellationToken);
                    continue;
                }

                _journal.Write("ha.enable.intent", new Dictionary<string, object?> { ["configuration"] = ha.Configuration, ["heartbeatSrs"] = ha.HeartbeatSrUuids });
                if (!snapshot.Ha.Enabled)
                {
                    await _pool.EnableHaAsync(ha.HeartbeatSrUuids, ha.Configuration, cancellationToken);
                }

                await IdempotentAsync(ct => _pool.SetHaHostFailuresToTolerateAsync(ha.HostFailuresToTolerate, ct), cancellationToken);
                await IdempotentAsync(ct => _pool.SetHaAllowOvercommitAsync(ha.AllowOvercommit, ct), cancellationToken);
                _journal.Write("ha.enable.done");
                _haDisabledByRun = false;
                _restored.Add($"HA enabled again with its settings ({cfg}, tolerate {ha.HostFailuresToTolerate}, overcommit {ha.AllowOvercommit.ToString().ToLowerInvariant()})");
                _log.Info("HA restored exactly as recorded ({Config}, tolerate {Ntol})", cfg, ha.HostFailuresToTolerate);
                return true;
            }
            catch (PoolOperationException e) when (_clock.GetUtcNow() < deadline && (e.IsUnreachable || e.Code is "HOST_OFFLINE" or "HA_ENABLE_IN_PROGRESS" or "SESSION_INVALID"))
            {
                await Task.Delay(TimeSpan.FromSeconds(5), _clock, cancellationToken);
            }
            catch (PoolOperationException e)
            {
                _operatorActions.Add($"HA could not be re-enabled ({e.Code}); run: {command}");
                return false;
            }
        }
    }

    private async Task<bool> RestoreCloudStackAsync(CancellationToken cancellationToken)
    {
        var cloud = _cloud!;
        var deadline = _clock.GetUtcNow() + _options.CloudStackTimeout;
        var pool = await TryReadAsync(cancellationToken);
        if (pool?.Hosts.FirstOrDefault(h => !h.Live) is { } down)
        {
            // Managed with a host down, CloudStack would mark it Alert and start its own recovery: keep hands off.
            _operatorActions.Add($"CloudStack cluster {cloud.Cluster.Name} left Unmanaged because host {down.Name} is down; once it is back: 'cmk update cluster id={cloud.Cluster.Id} managedstate=Managed' (or 'rollreboot restore --clustername {cloud.Cluster.Name}')");
            return false;
        }

        try
        {
            _journal.Write("cloudstack.manage.intent", new Dictionary<string, object?> { ["clusterId"] = cloud.Cluster.Id });
            var state = await cloud.Api.SetManagedStateAsync(cloud.Cluster.Id, managed: true, cancellationToken);
            if (state != "Managed")
            {
                throw new CloudStackException(0, 0, $"cluster is {state} after updateCluster managedstate=Managed");
            }

            _unmanagedByRun = false;
            _journal.Write("cloudstack.manage.done");
            while (true)
            {
                var hosts = await cloud.Api.ListHostsAsync(cloud.Cluster.Id, cancellationToken);
                var notUp = hosts.Where(h => h.State != "Up").ToList();
                if (notUp.Count == 0)
                {
                    _restored.Add($"CloudStack cluster {cloud.Cluster.Name} Managed, all {hosts.Count} hosts Up");
                    return true;
                }

                if (_clock.GetUtcNow() >= deadline)
                {
                    _operatorActions.Add($"CloudStack cluster {cloud.Cluster.Name} is Managed but host(s) {string.Join(", ", notUp.Select(h => h.Name + " " + h.State))} are not Up after {_options.CloudStackTimeout.TotalMinutes:0} min: check them in CloudStack");
                    return false;
                }

                await Task.Delay(TimeSpan.FromSeconds(2), _clock, cancellationToken);
            }
        }
        catch (CloudStackException e)
        {
            _operatorActions.Add($"set CloudStack cluster {cloud.Cluster.Name} back to Managed: 'cmk update cluster id={cloud.Cluster.Id} managedstate=Managed' ({e.ErrorText})");
            return false;
        }
    }

    private static TimeSpan Min(TimeSpan a, TimeSpan b) => a < b ? a : b;

    private static bool IsTransient(PoolOperationException e) =>
        e.IsUnreachable || e.Code is "SESSION_INVALID" or "HOST_STILL_BOOTING" or "HOST_IS_SLAVE";

    /// <summary>Reads ride through a XAPI outage or a master restart, bounded by the outage tolerance.</summary>
    private async Task<PoolSnapshot> ReadPatientlyAsync(CancellationToken cancellationToken)
    {
        var deadline = _clock.GetUtcNow() + _options.OutageTolerance;
        while (true)
        {
            try
            {
                return await _pool.ReadAsync(cancellationToken);
            }
            catch (PoolOperationException e) when (IsTransient(e) && _clock.GetUtcNow() < deadline)
            {
                _log.Warn("XAPI not answering ({Error}); retrying the read", e.Code);
                await Task.Delay(TimeSpan.FromSeconds(5), _clock, cancellationToken);
            }
        }
    }

    /// <summary>
    /// A call that may safely be repeated (setting a state that is then simply set): retried while XAPI
    /// is unreachable, bounded. A lost reply to such a call is harmless to repeat.
    /// </summary>
    private async Task IdempotentAsync(Func<CancellationToken, Task> call, CancellationToken cancellationToken)
    {
        var deadline = _clock.GetUtcNow() + _options.OutageTolerance;
        while (true)
        {
            try
            {
                await call(cancellationToken);
                return;
            }
            catch (PoolOperationException e) when (IsTransient(e) && _clock.GetUtcNow() < deadline)
            {
                _log.Warn("XAPI not answering ({Error}); repeating an idempotent call", e.Code);
                await Task.Delay(TimeSpan.FromSeconds(5), _clock, cancellationToken);
            }
        }
    }
}

/// <summary>The run stopped at a safe point for a reason the operator is told.</summary>
/// <summary>The run stops at a safe point on purpose (canary pause, end of the window); resumable.</summary>
public sealed class RunPausedException(string message) : Exception(message)
{
    public RunPausedException() : this("paused") { }

    public RunPausedException(string message, Exception inner) : this(message + ": " + inner.Message) { }
}

public sealed class RunStoppedException : Exception
{
    public RunStoppedException(string message, bool needsOperator, string? operatorAction = null) : base(message)
    {
        NeedsOperator = needsOperator;
        OperatorAction = operatorAction;
    }

    public RunStoppedException() : this("run stopped", false) { }

    public RunStoppedException(string message) : this(message, false) { }

    public RunStoppedException(string message, Exception inner) : base(message, inner) { }

    public bool NeedsOperator { get; }

    public string? OperatorAction { get; }

    /// <summary>Stopped before anything changed (a lock held by another run).</summary>
    public bool Blocked { get; init; }
}

internal static class ClockExtensions
{
    /// <summary>A simulated span as the wall-clock span CancelAfter needs.</summary>
    public static TimeSpan ToWallSpan(this TimeProvider clock, TimeSpan span) =>
        clock is Time.ScaledTimeProvider s ? s.ToWall(span) : span;
}
