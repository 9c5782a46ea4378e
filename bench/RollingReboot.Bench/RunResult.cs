using System.Text.Json;
using System.Text.Json.Serialization;

namespace RollingReboot.Bench;

/// <summary>One (scenario, method) run as stored under docs/benchmarks/results.</summary>
public sealed class RunResult
{
    public string Scenario { get; set; } = "";

    public string Method { get; set; } = "";

    public string StartedAt { get; set; } = "";

    public double TimeScale { get; set; }

    /// <summary>The commit the CLI was built from (and whether its sources had uncommitted changes).</summary>
    public string Version { get; set; } = "";

    public IReadOnlyList<string>? Hosts { get; set; }

    public bool Ok { get; set; }

    public string? Error { get; set; }

    public int? ExitCode { get; set; }

    public double LowerBoundSeconds { get; set; }

    public double LowerBoundMigrationSeconds { get; set; }

    public double LowerBoundMasterAgainSeconds { get; set; }

    public double LowerBoundRebootSeconds { get; set; }

    /// <summary>The scenario's migration.hostLinkMBps (MB = 10^6 bytes) at the time of the run; 0 in results stored before it was kept.</summary>
    public double HostLinkMBps { get; set; }

    public double MakespanSeconds { get; set; }

    public double HostsPhaseSeconds { get; set; }

    public int Migrations { get; set; }

    public int FailedMigrations { get; set; }

    public double WireGiB { get; set; }

    public double MigratingSeconds { get; set; }

    public double RebootOnlySeconds { get; set; }

    public double ToolOnlySeconds { get; set; }

    public IReadOnlyList<HostGap> BackToNextAction { get; set; } = [];

    public IReadOnlyList<HostGap> UpToNextAction { get; set; } = [];

    public IReadOnlyList<Evacuation> Evacuations { get; set; } = [];

    /// <summary>Per host, from the CLI's own log: back in XAPI to SSH confirming the new boot id (simulated s).</summary>
    public IReadOnlyList<HostGap> SshProofAfterXapi { get; set; } = [];

    public long XapiCalls { get; set; }

    public long? XapiCallsClientCount { get; set; }

    public long CloudStackCalls { get; set; }

    public double? CpuSeconds { get; set; }

    public double? PeakRssMiB { get; set; }

    public double WallSeconds { get; set; }

    public IReadOnlyList<string> Violations { get; set; } = [];

    public int HostsRebooted { get; set; }

    public int VmsRunning { get; set; }

    public int VmsTotal { get; set; }

    public string HaAtEnd { get; set; } = "";

    public string CloudStackAtEnd { get; set; } = "";

    public PlanSummary? Plan { get; set; }

    public string LoadAverageBefore { get; set; } = "";

    public string LoadAverageAfter { get; set; } = "";

    public static readonly JsonSerializerOptions Json = new()
    {
        WriteIndented = true,
        PropertyNamingPolicy = JsonNamingPolicy.CamelCase,
        DefaultIgnoreCondition = JsonIgnoreCondition.WhenWritingNull,
        NumberHandling = JsonNumberHandling.AllowNamedFloatingPointLiterals,
    };
}

/// <summary>The dry run before an exec run: the plan, and what planning cost.</summary>
public sealed class PlanSummary
{
    public double EstimateSeconds { get; set; }

    public int Migrations { get; set; }

    public int Steps { get; set; }

    public int Waves { get; set; }

    public int Blockers { get; set; }

    /// <summary>The whole dry run as a process: start, login, read, preflight, plan, print.</summary>
    public double DryRunWallSeconds { get; set; }

    public double? DryRunCpuSeconds { get; set; }

    public double? DryRunPeakRssMiB { get; set; }

    /// <summary>EvacuationPlanner.Plan alone on the lab's pool (read once, best of 3, in the bench process).</summary>
    public double PlannerMilliseconds { get; set; }

    public int PoolHosts { get; set; }

    public int PoolVms { get; set; }
}
