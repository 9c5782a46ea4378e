using RollingReboot.Core.Planning;
using RollingReboot.Core.Pool;

namespace RollingReboot.Core.Run;

/// <summary>How the run behaves; every wait bounded.</summary>
public sealed record RunOptions
{
    public TimeSpan HostTimeout { get; init; } = TimeSpan.FromMinutes(20);

    public TimeSpan MigrationTimeout { get; init; } = TimeSpan.FromMinutes(30);

    public TimeSpan CloudStackTimeout { get; init; } = TimeSpan.FromMinutes(10);

    public int MigrationRetries { get; init; } = 2;

    /// <summary>How long the run rides through XAPI not answering (an outage, the master restarting) before it stops.</summary>
    public TimeSpan OutageTolerance { get; init; } = TimeSpan.FromMinutes(10);

    public bool BreakLock { get; init; }

    public TimeSpan LockTtl { get; init; } = TimeSpan.FromHours(12);

    public string Operator { get; init; } = "unknown";

    public string Machine { get; init; } = "unknown";

    public PlanOptions Plan { get; init; } = new();

    public bool UseSshProof { get; init; } = true;

    /// <summary>Canary: stop safely after this many hosts (resume later).</summary>
    public int? PauseAfter { get; init; }

    /// <summary>Never start a host whose estimated evacuate + reboot would end after this moment.</summary>
    public DateTimeOffset? WindowEnd { get; init; }

    /// <summary>Wait this long between hosts (waves).</summary>
    public TimeSpan HostDelay { get; init; } = TimeSpan.Zero;
}

/// <summary>What the run changed and must put back: recorded before anything changes.</summary>
public sealed record OriginalState(
    HaSettings Ha,
    string? CloudStackManagedState,
    IReadOnlyDictionary<string, bool> HostEnabled,
    IReadOnlyDictionary<string, string?> VmHost,
    string? AutoPowerOn);

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
    Plan? Plan);

/// <summary>The run's voice: the CLI turns it into log lines and the live view.</summary>
public interface IRunLog
{
    void Info(string template, params object?[] values);

    void Warn(string template, params object?[] values);

    void Error(string template, params object?[] values);

    void HostPhase(string host, string phase) => Info("{Host}: {Phase}", host, phase);
}
