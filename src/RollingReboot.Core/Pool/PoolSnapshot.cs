namespace RollingReboot.Core.Pool;

/// <summary>What a rolling reboot needs to know about a pool at one moment. Identity is by uuid, never by ref.</summary>
public sealed record PoolSnapshot(
    string Uuid,
    string Name,
    string MasterUuid,
    HaSettings Ha,
    IReadOnlyDictionary<string, string> OtherConfig,
    IReadOnlyList<string> CurrentOperations,
    IReadOnlyList<HostState> Hosts,
    IReadOnlyList<VmState> Vms,
    IReadOnlyList<SrInfo> Srs)
{
    public HostState Master => Hosts.First(h => h.Uuid == MasterUuid);

    public HostState? FindHost(string uuidOrName) =>
        Hosts.FirstOrDefault(h => h.Uuid == uuidOrName) ?? Hosts.FirstOrDefault(h => h.Name == uuidOrName);

    public IEnumerable<VmState> RunningOn(string hostUuid) =>
        Vms.Where(v => v.ResidentOnUuid == hostUuid && v.IsRunningGuest);
}

/// <summary>The pool's HA settings, recorded before the run and restored exactly after it.</summary>
public sealed record HaSettings(
    bool Enabled,
    IReadOnlyList<string> HeartbeatSrUuids,
    IReadOnlyDictionary<string, string> Configuration,
    long HostFailuresToTolerate,
    bool AllowOvercommit)
{
    public static HaSettings Disabled { get; } = new(false, [], new Dictionary<string, string>(), 0, false);

    /// <summary>The HA timeout in seconds as XAPI will apply it (configuration key, else 60 s default).</summary>
    public int? TimeoutSeconds =>
        Configuration.TryGetValue("timeout", out var t) && int.TryParse(t, System.Globalization.CultureInfo.InvariantCulture, out var s) ? s : null;
}

public sealed record HostState(
    string Uuid,
    string Name,
    string Address,
    bool Enabled,
    bool Live,
    long MemoryTotal,
    long MemoryFree,
    long MemoryOverhead,
    DateTimeOffset? BootTime,
    DateTimeOffset? AgentStartTime,
    IReadOnlyList<string> PendingGuidances,
    IReadOnlyList<string> UpdatesRequiringReboot,
    IReadOnlyList<string> CurrentOperations)
{
    /// <summary>What XAPI allows on the host now (null: not read). Without "reboot" XAPI would refuse it (for instance
    /// CLUSTERED_SR_DEGRADED while another host of a GFS2 pool is down or its SR recovers).</summary>
    public IReadOnlyList<string>? AllowedOperations { get; init; }

    public bool NeedsReboot =>
        PendingGuidances.Contains("reboot_host") || UpdatesRequiringReboot.Count > 0;
}

public sealed record VmState(
    string Uuid,
    string Name,
    string PowerState,
    string? ResidentOnUuid,
    long MemoryBytes,
    bool PvDrivers,
    IReadOnlyList<string> DiskSrUuids,
    IReadOnlyList<string> CdSrUuids,
    bool HasPci,
    bool HasVgpu,
    bool HasVusb,
    string HaRestartPriority,
    IReadOnlyList<string> CurrentOperations)
{
    /// <summary>A running guest: what a host must be emptied of before it reboots.</summary>
    public bool IsRunningGuest => PowerState is "Running" or "Paused";
}

public sealed record SrInfo(string Uuid, string Name, bool Shared, string? LocalHostUuid)
{
    /// <summary>A clustered (GFS2) SR: only one host of the pool may be down at a time.</summary>
    public bool Clustered { get; init; }
}
