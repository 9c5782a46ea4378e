namespace RollingReboot.Core.Ports;

public sealed record CloudStackCluster(
    string Id, string Name, string ZoneId, string ZoneName, string PodName, string HypervisorType,
    string AllocationState, string ManagedState);

public sealed record CloudStackHost(string Id, string Name, string State, string ResourceState, string IpAddress);

/// <summary>A guest VM as CloudStack knows it: instance name (the XAPI name label) and its affinity groups.</summary>
public sealed record CloudStackVm(string Id, string InstanceName, string? HostName, IReadOnlyList<CloudStackAffinityGroup> AffinityGroups);

public sealed record CloudStackAffinityGroup(string Id, string Name, string Type);

/// <summary>The CloudStack management server, as far as a rolling reboot needs it.</summary>
public interface ICloudStack
{
    Task<IReadOnlyList<CloudStackCluster>> FindClustersAsync(string name, string? zone, CancellationToken cancellationToken = default);

    Task<CloudStackCluster> GetClusterAsync(string clusterId, CancellationToken cancellationToken = default);

    /// <summary>Every cluster of a zone (name or id), for a fleet run.</summary>
    Task<IReadOnlyList<CloudStackCluster>> ListClustersAsync(string zone, CancellationToken cancellationToken = default);

    Task<IReadOnlyList<CloudStackHost>> ListHostsAsync(string clusterId, CancellationToken cancellationToken = default);

    /// <summary>Blocking updateCluster managedstate=...; returns the state re-read afterwards.</summary>
    Task<string> SetManagedStateAsync(string clusterId, bool managed, CancellationToken cancellationToken = default);

    Task<IReadOnlyList<CloudStackVm>> ListVirtualMachinesAsync(string clusterId, CancellationToken cancellationToken = default);
}

/// <summary>A CloudStack failure with CloudStack's own codes.</summary>
public class CloudStackException : Exception
{
    public CloudStackException(int errorCode, int csErrorCode, string errorText, Exception? inner = null)
        : base($"CloudStack error {errorCode}: {errorText}", inner)
    {
        ErrorCode = errorCode;
        CsErrorCode = csErrorCode;
        ErrorText = errorText;
    }

    public CloudStackException() : this(0, 0, "CloudStack call failed") { }

    public CloudStackException(string message) : this(0, 0, message) { }

    public CloudStackException(string message, Exception inner) : this(0, 0, message, inner) { }

    public int ErrorCode { get; }

    public int CsErrorCode { get; }

    public string ErrorText { get; }
}
