using RollingReboot.Core.Planning;
using RollingReboot.Core.Pool;
using RollingReboot.Core.Ports;
using RollingReboot.Core.Run.State;

namespace RollingReboot.Core.Run.Engine;

/// <summary>The adapters a run talks through, composed by the CLI (or a test).</summary>
public sealed record RunServices(IPoolConnection Pool, ClusterBinding? Cloud, IRunLog Log, TimeProvider Clock)
{
    public IHostProbe? Probe { get; init; }

    /// <summary>Runs the operator's local hooks and blocker command (needed when any is configured).</summary>
    public ILocalCommandRunner? LocalCommands { get; init; }

    /// <summary>Runs commands on the hosts over SSH (remote hooks, the needs-reboot command).</summary>
    public IRemoteShell? RemoteShell { get; init; }

    /// <summary>The alert gate (--prometheus-url): a blocker at the start, a reason to wait between hosts.</summary>
    public AlertGate? Alerts { get; init; }

    /// <summary>Tells people how the run goes (--notify); never holds the run up.</summary>
    public IRunNotifier? Notifier { get; init; }

    /// <summary>Is process <c>pid</c> on machine <c>machine</c> a running rollreboot? null when this machine cannot
    /// tell (another machine): then only the heartbeat's age decides.</summary>
    public Func<string, int, bool?>? ProcessAlive { get; init; }
}

/// <summary>
/// What every step sees: the services, the options, the executor (and through it the state), and a few things
/// known only to this invocation that are informational, never needed to resume or restore (the last pool read,
/// the plan for the ETA, what restore put back).
/// </summary>
public sealed class RunContext(RunServices services, RunOptions options, ChangeExecutor executor, string runId, string clusterLabel)
{
    private HostCommands? _commands;

    public RunServices Services { get; } = services;

    public IPoolConnection Pool => Services.Pool;

    public ClusterBinding? Cloud => Services.Cloud;

    public IRunLog Log => Services.Log;

    public TimeProvider Clock => Services.Clock;

    public RunOptions Options { get; } = options;

    public ChangeExecutor Executor { get; } = executor;

    public RunState State => Executor.State;

    public string RunId { get; } = runId;

    public string ClusterLabel { get; } = clusterLabel;

    /// <summary>This process's mark in the lock's heartbeat: tells "still running elsewhere" from "this very run".</summary>
    public string Instance { get; } = Guid.NewGuid().ToString("N")[..12];

    /// <summary>Held while the heartbeat is written or the lock released, so no beat lands after the release.</summary>
    public SemaphoreSlim LockGate { get; } = new(1, 1);

    /// <summary>Set when the lock is being released: no more heartbeats.</summary>
    public bool LockReleasing { get; set; }

    public HostCommands Commands => _commands ??= new HostCommands(Options.Hooks, Services.LocalCommands, Services.RemoteShell, Log);

    public bool HasCommands => Options.Hooks.BlockerCommand is not null || Options.Hooks.NeedsRebootCommand is not null || Options.Hooks.Any;

    public AlertGate? Alerts => Services.Alerts;

    /// <summary>
    /// When this invocation's window ends: --window-end, or the end of the --window opening the run started in when
    /// that is earlier (set by <see cref="Steps.WindowGate"/>); null without either.
    /// </summary>
    public DateTimeOffset? WindowEnd { get; set; } = options.WindowEnd;

    // ---- informational, this invocation only -------------------------------------------------------

    public PoolSnapshot? LastSnapshot { get; set; }

    public IReadOnlyDictionary<string, IReadOnlyList<string>>? AntiAffinity { get; set; }

    /// <summary>CloudStack's placement rules read before the run; later plans of the run keep them.</summary>
    public CloudStackPlacement? Placement { get; set; }

    /// <summary>What the operator should know but need not act on (CloudStack's view after re-manage...), in the report.</summary>
    public List<string> Notes { get; } = [];

    /// <summary>Where each VM ended when the VMs went home (--return-vms, 'rollreboot return'); empty otherwise.</summary>
    public IReadOnlyList<VmReturnReport> VmReturns { get; set; } = [];

    public Plan? CurrentPlan { get; set; }

    public Plan? FirstPlan { get; set; }

    /// <summary>How this run's migrations travel: from the latest plan (each wave's preflight re-reads the networks).</summary>
    public MigrationRoute Route => (CurrentPlan ?? FirstPlan)?.Route ?? MigrationRoute.Default;

    public DateTimeOffset Started { get; set; }

    /// <summary>--apply-updates given, or decided by the run this one resumes (its journal says so).</summary>
    public bool ApplyUpdates => Options.Plan.ApplyUpdates || State.Decisions?.Updates is not null;

    /// <summary>--apply-updates: the pool's updates as last read (the hash host.apply_updates is given comes from here).</summary>
    public PoolUpdates? Updates { get; set; }

    /// <summary>What the restore put back, in the operator's words.</summary>
    public List<string> Restored { get; } = [];

    /// <summary>How many hosts had finished before this invocation (its report shows only its own).</summary>
    public int FinishedBefore { get; set; }

    /// <summary>How many operator actions earlier invocations journaled (the report shows this one's).</summary>
    public int OperatorActionsBefore { get; set; }

    /// <summary>The plan options as the run's decisions shape them: K chosen once, hosts needing no reboot, hosts a pre
    /// hook skipped. Derived from the state, so a resumed run plans as the first one did.</summary>
    public PlanOptions PlanOptions
    {
        get
        {
            var state = State;
            var plan = Options.Plan;
            if (state.Decisions is { } d)
            {
                plan = plan with
                {
                    MaxHostsDown = d.MaxHostsDown ?? plan.MaxHostsDown,
                    IgnoreHosts = [.. plan.IgnoreHosts, .. d.NotNeedingReboot],
                };
                if (d.Updates is { } updates)
                {
                    // --apply-updates decided: the hosts updated in place are out of the reboot order for good, and later
                    // plans need not read the update list again.
                    plan = plan with
                    {
                        ApplyUpdates = false,
                        IgnoreHosts = [.. plan.IgnoreHosts, .. updates.Where(u => u.Value != nameof(UpdateAction.Reboot)).Select(u => u.Key).Order(StringComparer.Ordinal)],
                    };
                }
            }

            // Hosts a pre hook skipped, and hosts that failed (--max-failed-hosts), are left out of every later plan.
            var left = state.Skipped.Concat(state.Failed.Select(f => f.Host)).Distinct(StringComparer.Ordinal).Order(StringComparer.Ordinal).ToList();
            return left.Count == 0 ? plan : plan with { IgnoreHosts = [.. plan.IgnoreHosts, .. left] };
        }
    }

    private readonly Lock _failures = new();
    private int _failuresClaimed;

    /// <summary>
    /// --max-failed-hosts: may this host fail and the run go on? Never the master (everything after it depends on it),
    /// never past the limit (counted over the whole run, resumed invocations too). A yes is a claim on one of the places.
    /// </summary>
    public bool TryClaimHostFailure(bool isMaster)
    {
        if (isMaster)
        {
            return false;
        }

        lock (_failures)
        {
            if (State.Failed.Count + _failuresClaimed >= Options.MaxFailedHosts)
            {
                return false;
            }

            _failuresClaimed++;
            return true;
        }
    }

    /// <summary>The claim is journaled (HostFailed is in the state now).</summary>
    public void HostFailureRecorded()
    {
        lock (_failures)
        {
            _failuresClaimed--;
        }
    }

    public string HostName(string uuid) =>
        LastSnapshot?.Hosts.FirstOrDefault(h => h.Uuid == uuid)?.Name ?? State.Host(uuid).Name ?? uuid;

    public void OperatorAction(string action) => Executor.Record(new Journal.OperatorActionNeeded(action));

    public void Notify(string eventName, string text, string? host = null, string? outcome = null)
    {
        try
        {
            Services.Notifier?.Notify(new RunNotification(eventName, text, ClusterLabel, LastSnapshot?.Name ?? ClusterLabel, RunId, host, outcome));
        }
        catch (Exception e) when (e is not OutOfMemoryException)
        {
            // A notification is never worth stopping the run for.
            Log.Warn("Notification {Event} not sent: {Error}", eventName, e.Message);
        }
    }

    /// <summary>The earlier of a deadline and the end of the maintenance window.</summary>
    public DateTimeOffset ClampToWindow(DateTimeOffset deadline) =>
        WindowEnd is { } end && end < deadline ? end : deadline;
}
