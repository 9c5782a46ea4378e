namespace RollingReboot.Lab.CloudStack;

/// <summary>
/// The lab management server's global settings (CloudStack's configuration table), from the first scenario's
/// <c>cloudstack</c> section. Durations are simulated seconds, except that <see cref="WallClock"/> is the real clock a
/// request's <c>expires</c> is checked against.
/// </summary>
public sealed record LabCloudStackSettings
{
    /// <summary><c>default.page.size</c>: the page size of a list without <c>pagesize</c>, and the largest one allowed (-1: no limit).</summary>
    public int DefaultPageSize { get; init; } = 500;

    /// <summary>
    /// <c>enforce.post.requests.and.timestamps</c> (ApiServer, 4.21+): state-changing commands only as POST, signature
    /// version 3 with <c>expires</c> at most 15 minutes ahead.
    /// </summary>
    public bool EnforcePostRequestsAndTimestamps { get; init; }

    /// <summary><c>direct.agent.scan.interval</c> (ClusteredAgentManagerImpl, default 90 s): how often disconnected hosts of Managed clusters are loaded.</summary>
    public TimeSpan ScanInterval { get; init; } = TimeSpan.FromSeconds(90);

    /// <summary>
    /// <c>ping.interval</c> × <c>ping.timeout</c> (60 s × 2.5): a host is loaded by a scan only once its last ping is older
    /// (the scan's <c>cutSeconds</c>), and an Alert host is let go after as long.
    /// </summary>
    public TimeSpan PingTimeout { get; init; } = TimeSpan.FromSeconds(150);

    /// <summary>How long one host's connect takes (XAPI login, startup commands, VM report); a pool's hosts connect one at a time.</summary>
    public TimeSpan ConnectTime { get; init; } = TimeSpan.FromSeconds(10);

    /// <summary>Commands the lab keys' role may not call: ApiServer.commandAvailable's 401 "...is not available for user".</summary>
    public IReadOnlyCollection<string> DeniedCommands { get; init; } = [];

    /// <summary>The clock <c>expires</c> is compared with (ApiServer: <c>System.currentTimeMillis()</c>); default the system's.</summary>
    public TimeProvider? WallClock { get; init; }
}

/// <summary>What CloudStack knows of one cluster beyond its pool: per host, per VM, offerings and affinity groups.</summary>
public sealed record LabCloudStackClusterSpec
{
    public static LabCloudStackClusterSpec Empty { get; } = new();

    public IReadOnlyList<LabCsHost> Hosts { get; init; } = [];

    public IReadOnlyList<LabCsVm> Vms { get; init; } = [];

    public IReadOnlyList<LabServiceOffering> ServiceOfferings { get; init; } = [];

    public IReadOnlyList<LabAffinityGroup> AffinityGroups { get; init; } = [];
}

/// <summary>
/// A host's CloudStack side: its <paramref name="ResourceState"/> (Enabled, Disabled, Maintenance, PrepareForMaintenance,
/// ErrorInMaintenance), tags, dedication to an account (through the ExplicitDedication group DedicatedGrp-ACCOUNT, as
/// DedicatedResourceManagerImpl names it), and the agent state it starts in when the cluster starts PrepareUnmanaged(Error).
/// </summary>
public sealed record LabCsHost(string Name, string ResourceState = "Enabled", IReadOnlyList<string>? HostTags = null, string? DedicatedTo = null, string? InitialState = null);

/// <summary>A VM's owner (an account, or a project) and service offering.</summary>
public sealed record LabCsVm(string Name, string? Project = null, string? Account = null, string? ServiceOffering = null);

/// <summary>A service offering; <paramref name="HostTags"/> is CloudStack's comma-separated <c>hosttags</c>.</summary>
public sealed record LabServiceOffering(string Name, string? HostTags = null);

/// <summary>An affinity group of one of CloudStack's types and the VMs (by name) in it.</summary>
public sealed record LabAffinityGroup(string Name, string Type, IReadOnlyList<string> Vms);
