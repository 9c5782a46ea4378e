using RollingReboot.Core.Planning;
using RollingReboot.Core.Pool;
using RollingReboot.Core.Time;

namespace RollingReboot.Core.Run;

/// <summary>How the run behaves; every wait bounded.</summary>
public sealed record RunOptions
{
    public TimeSpan HostTimeout { get; init; } = TimeSpan.FromMinutes(20);

    /// <summary>--apply-updates: how long one host's installation may take (host.apply_updates, updater.py update).</summary>
    public TimeSpan UpdateTimeout { get; init; } = TimeSpan.FromMinutes(60);

    /// <summary>The least a migration is given (its bound is <see cref="MigrationBound"/>: from its size).</summary>
    public TimeSpan MigrationTimeout { get; init; } = TimeSpan.FromMinutes(30);

    /// <summary>
    /// How long one live migration may take before the run gives up on it: three times what the migration model says
    /// it takes when it shares its source's link with every other migration of the step (--threads), never less than
    /// <see cref="MigrationTimeout"/>. A 200 GiB VM gets hours, not a fixed half hour.
    /// </summary>
    public TimeSpan MigrationBound(long memoryBytes)
    {
        var model = Plan.MigrationModel;
        var shared = Math.Min(model.StreamMBps, model.HostLinkMBps / Math.Max(1, Plan.Threads)) * MigrationModel.BytesPerMB;
        var estimate = model.SetupSeconds + (model.BytesMoved(memoryBytes) / shared);
        var bound = TimeSpan.FromSeconds(3 * estimate);
        return bound > MigrationTimeout ? bound : MigrationTimeout;
    }

    /// <summary>The least the run waits for CloudStack to reconnect the cluster's hosts (see <see cref="ReconnectBound"/>).</summary>
    public TimeSpan CloudStackTimeout { get; init; } = TimeSpan.FromMinutes(10);

    /// <summary>
    /// How long CloudStack may take to see every host Up again after Managed, from the work: two agent scans
    /// (direct.agent.scan.interval, 90 s) and each host's connect one after the other (about 30 s each on real pools,
    /// ClusteredAgentManagerImpl loads a pool's hosts serially), never less than <see cref="CloudStackTimeout"/>.
    /// </summary>
    public TimeSpan ReconnectBound(int hosts)
    {
        var bound = TimeSpan.FromSeconds((2 * 90) + (30 * Math.Max(1, hosts)));
        return bound > CloudStackTimeout ? bound : CloudStackTimeout;
    }

    /// <summary>The least a pool.disable_ha / enable_ha task is given (see <see cref="HaBound"/>).</summary>
    public TimeSpan HaTimeout { get; init; } = TimeSpan.FromMinutes(10);

    /// <summary>
    /// How long an HA transition may take, from the work: xapi starts or stops the HA daemon on every host and waits
    /// for the statefile and heartbeats (ocaml/xapi/xapi_ha.ml enable_internal / disable_internal), about half a minute
    /// a host, three times over, never less than <see cref="HaTimeout"/>.
    /// </summary>
    public TimeSpan HaBound(int hosts)
    {
        var bound = TimeSpan.FromSeconds(3 * 30 * Math.Max(1, hosts));
        return bound > HaTimeout ? bound : HaTimeout;
    }

    public int MigrationRetries { get; init; } = 2;

    /// <summary>--retries: how many more times a host's evacuation that left VMs behind is tried, after --retry-delay.</summary>
    public int HostRetries { get; init; }

    /// <summary>--retry-delay: the wait before such a retry (VMs busy, a target briefly short of memory).</summary>
    public TimeSpan RetryDelay { get; init; } = TimeSpan.FromMinutes(1);

    /// <summary>--shutdown-timeout: how long a pinned VM (--shutdown-pinned-vms) gets to shut down cleanly before it is
    /// powered off (VM.hard_shutdown).</summary>
    public TimeSpan ShutdownTimeout { get; init; } = TimeSpan.FromMinutes(5);

    /// <summary>--max-failed-hosts: member hosts that may fail (not evacuated, or not back) while the run goes on without
    /// them; 0: the first failure stops the run.</summary>
    public int MaxFailedHosts { get; init; }

    /// <summary>How long the run rides through XAPI not answering (an outage, the master restarting) before it stops.</summary>
    public TimeSpan OutageTolerance { get; init; } = TimeSpan.FromMinutes(10);

    public bool BreakLock { get; init; }

    public TimeSpan LockTtl { get; init; } = TimeSpan.FromHours(12);

    /// <summary>How long the run waits, before a host, for its VMs busy with another operation (a backup) to finish;
    /// then it stops safely (resumable).</summary>
    public TimeSpan BusyVmTimeout { get; init; } = TimeSpan.FromMinutes(30);

    /// <summary>How often the running run renews its lock's heartbeat: 2 minutes, well inside <see cref="HeartbeatTimeout"/>
    /// (a beat is two XAPI calls, pool.remove_from_other_config then add_to_other_config, as xapi has no call that
    /// replaces one key of a map; a beat the master cannot take is retried until it is back).</summary>
    public TimeSpan HeartbeatInterval { get; init; } = TimeSpan.FromMinutes(2);

    /// <summary>A lock whose heartbeat is older than this belongs to a dead run: resume and restore take it over.</summary>
    public TimeSpan HeartbeatTimeout { get; init; } = TimeSpan.FromMinutes(5);

    public string Operator { get; init; } = "unknown";

    public string Machine { get; init; } = "unknown";

    /// <summary>This process's id, written in the lock's heartbeat so that a run on the same machine can tell a dead
    /// holder at once (see <see cref="Engine.RunServices.ProcessAlive"/>).</summary>
    public int? ProcessId { get; init; }

    public PlanOptions Plan { get; init; } = new();

    public bool UseSshProof { get; init; } = true;

    /// <summary>Canary: stop safely after this many hosts (resume later).</summary>
    public int? PauseAfter { get; init; }

    /// <summary>Never start a host whose estimated evacuate + reboot would end after this moment.</summary>
    public DateTimeOffset? WindowEnd { get; init; }

    /// <summary>
    /// The recurring maintenance window (--window): a run or resume started outside it does not start (or waits, see
    /// <see cref="WaitForWindow"/>); inside it, no host is started that would end after the opening's end (or
    /// <see cref="WindowEnd"/>, when that is earlier).
    /// </summary>
    public MaintenanceWindow? Window { get; init; }

    /// <summary>Outside the window: wait for its next opening when it starts within this long; null: do not wait.</summary>
    public TimeSpan? WaitForWindow { get; init; }

    /// <summary>Wait this long between hosts (waves).</summary>
    public TimeSpan HostDelay { get; init; } = TimeSpan.Zero;

    /// <summary><c>rollreboot evacuate</c>: empty the planned host(s), leave them disabled for maintenance, reboot nothing.</summary>
    public bool EvacuateOnly { get; init; }

    /// <summary>Operator commands around each host and before each wave.</summary>
    public HookOptions Hooks { get; init; } = new();

    /// <summary>Shut each evacuated host down instead of rebooting it, and wait for someone to power it on.</summary>
    public bool Halt { get; init; }

    /// <summary>With <see cref="Halt"/>: how long to wait for a host to be powered on and back.</summary>
    public TimeSpan PowerOnTimeout { get; init; } = TimeSpan.FromHours(4);

    /// <summary>With <see cref="Halt"/>: how long a halted member stays off before the run powers it on with host.power_on
    /// (when its power_on_mode is set); null: never, someone powers it on.</summary>
    public TimeSpan? PowerOnDelay { get; init; } = TimeSpan.Zero;
}

/// <summary>
/// Commands the operator plugs into the run. Local hooks run on this machine with the host in environment
/// variables; remote commands run on the host over SSH. A pre hook exiting 70 skips the host.
/// </summary>
public sealed record HookOptions
{
    /// <summary>The exit code with which a pre hook says "skip this host" (CloudStack's rolling-maintenance convention).</summary>
    public const int SkipHostExitCode = 70;

    /// <summary>Local command run when the host is empty and disabled, right before its reboot.</summary>
    public string? PreHostHook { get; init; }

    /// <summary>Local command run when the host is back and enabled.</summary>
    public string? PostHostHook { get; init; }

    /// <summary>Command run on the host over SSH when it is empty, right before its reboot (after the local pre hook).</summary>
    public string? PreHostCommand { get; init; }

    /// <summary>Command run on the host over SSH when it is back (after the local post hook).</summary>
    public string? PostHostCommand { get; init; }

    /// <summary>Command run on each host over SSH before planning: exit 0 means it needs a reboot, any other exit that it does not.</summary>
    public string? NeedsRebootCommand { get; init; }

    /// <summary>Local command that blocks the run while it exits non-zero (e.g. a monitoring check).</summary>
    public string? BlockerCommand { get; init; }

    public TimeSpan HookTimeout { get; init; } = TimeSpan.FromMinutes(30);

    /// <summary>How long the run waits, between hosts, for the blocker command to pass before it stops (resumable).</summary>
    public TimeSpan BlockerTimeout { get; init; } = TimeSpan.FromMinutes(30);

    public TimeSpan BlockerInterval { get; init; } = TimeSpan.FromMinutes(1);

    public bool Any => PreHostHook is not null || PostHostHook is not null || PreHostCommand is not null || PostHostCommand is not null;
}

/// <summary>What the run changed and must put back: recorded before anything changes.</summary>
public sealed record OriginalState(
    HaSettings Ha,
    string? CloudStackManagedState,
    IReadOnlyDictionary<string, bool> HostEnabled,
    IReadOnlyDictionary<string, string?> VmHost,
    string? AutoPowerOn)
{
    /// <summary>Hosts disabled before the run until their reboot (mandatory reboot guidance pending): enabled after it.</summary>
    public IReadOnlySet<string> DisabledUntilReboot { get; init; } = new HashSet<string>(StringComparer.Ordinal);
}

public enum RunOutcome
{
    Done,
    Blocked,
    StoppedRestored,
    NeedsOperator,
    Interrupted,
}

public sealed record HostReport(string Name, bool IsMaster, int Migrations, long BytesMoved, double EvacuationSeconds, double RebootSeconds, int Retries, string Result);

public sealed record RunReport(
    string RunId,
    string PoolName,
    RunOutcome Outcome,
    string Message,
    IReadOnlyList<HostReport> Hosts,
    IReadOnlyList<string> Restored,
    IReadOnlyList<string> OperatorActions,
    double TotalSeconds,
    double EstimatedSeconds,
    Plan? Plan)
{
    /// <summary>What the operator should know but need not act on (e.g. where CloudStack's view of the VMs differs from XAPI's).</summary>
    public IReadOnlyList<string> Notes { get; init; } = [];

    /// <summary>--return-vms (and 'rollreboot return'): where each VM ended against its host from before the run.</summary>
    public IReadOnlyList<VmReturnReport> VmReturns { get; init; } = [];
}

/// <summary>
/// Where a VM ended after the VMs went home: <see cref="Why"/> is null when it is on its original host, else why not
/// (XAPI's code from the last try, its home not live or not enabled, or the VM stopped during the run).
/// </summary>
public sealed record VmReturnReport(string Vm, string HomeHost, string EndedOn, string? Why)
{
    public bool IsHome => Why is null;
}

/// <summary>The run's voice: the CLI turns it into log lines and the live view.</summary>
public interface IRunLog
{
    void Info(string template, params object?[] values);

    void Warn(string template, params object?[] values);

    void Error(string template, params object?[] values);

    void HostPhase(string host, string phase) => Info("{Host}: {Phase}", host, phase);
}
