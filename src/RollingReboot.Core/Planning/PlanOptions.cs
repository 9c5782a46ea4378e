namespace RollingReboot.Core.Planning;

/// <summary>
/// How live migrations behave, for estimates: the model the lab simulates. MB is 1,000,000 bytes. A migration
/// spends <see cref="SetupSeconds"/> without using the network, then moves memory × (1 + <see cref="DirtyRatio"/>)
/// bytes at min(stream, link / transfers leaving its source, link / transfers arriving at its target).
/// </summary>
public sealed record MigrationModel(
    double StreamMBps = 120,
    double HostLinkMBps = 250,
    double SetupSeconds = 6,
    double DirtyRatio = 0.1)
{
    public const double BytesPerMB = 1_000_000;

    /// <summary>Bytes a live migration of a VM with this much memory puts on the wire (memory plus re-sent dirty pages).</summary>
    public long BytesMoved(long memoryBytes) => (long)Math.Round(memoryBytes * (1 + DirtyRatio));
}

/// <summary>What the operator asked for, and the timing assumptions behind the estimate.</summary>
public sealed record PlanOptions
{
    public static PlanOptions Default { get; } = new();

    /// <summary>Live migrations running at once within one step (or wave).</summary>
    public int Threads { get; init; } = 5;

    public int MaxMigrationsPerSource { get; init; } = 3;

    public int MaxMigrationsPerTarget { get; init; } = 3;

    /// <summary>
    /// Non-master hosts evacuated and rebooted together (a wave). The master always goes alone.
    /// <see cref="AutoMaxHostsDown"/>: preflight picks the number whose plan is estimated fastest.
    /// </summary>
    public int MaxHostsDown { get; init; } = 1;

    /// <summary>MaxHostsDown "auto": the fastest plan the capacity allows, from 1 to half the pool (at most 16).</summary>
    public const int AutoMaxHostsDown = 0;

    /// <summary>When not empty, only these hosts (names or uuids) are rebooted.</summary>
    public IReadOnlyList<string> IncludeHosts { get; init; } = [];

    /// <summary>Hosts (names or uuids) left alone.</summary>
    public IReadOnlyList<string> IgnoreHosts { get; init; } = [];

    /// <summary>Skip hosts with no pending reboot guidance and no update that needs a reboot.</summary>
    public bool OnlyNeedingReboot { get; init; }

    /// <summary>Plan the migration of every moved VM back to its original host at the end.</summary>
    public bool ReturnVms { get; init; }

    public MigrationModel MigrationModel { get; init; } = new();

    /// <summary>Seconds a host stays down once it goes down (assumption for the estimate).</summary>
    public double RebootSeconds { get; init; } = 300;

    /// <summary>Seconds from boot until the toolstack answers and the checks pass.</summary>
    public double HostReadySeconds { get; init; } = 15;

    /// <summary>Seconds from host.reboot until the host is down.</summary>
    public double ShutdownSeconds { get; init; } = 10;
}
