namespace RollingReboot.Core.Ports;

public sealed record CloudStackCluster(
    string Id, string Name, string ZoneId, string ZoneName, string PodName, string HypervisorType,
    string AllocationState, string ManagedState);

public sealed record CloudStackHost(string Id, string Name, string State, string ResourceState, string IpAddress);

/// <summary>A guest VM as CloudStack knows it: instance name (the XAPI name label) and its affinity groups.</summary>
public sealed record CloudStackVm(string Id, string InstanceName, string? HostName, IReadOnlyList<CloudStackAffinityGroup> AffinityGroups);

public sealed record CloudStackAffinityGroup(string Id, string Name, string Type);

/// <summary>
/// An asynchronous job as listAsyncJobs shows it. <see cref="Command"/> is CloudStack's <c>cmd</c> (the API command's Java
/// class, e.g. <c>org.apache.cloudstack.api.command.admin.vm.MigrateVMCmd</c>); <see cref="InstanceType"/> and
/// <see cref="InstanceId"/> (<c>jobinstancetype</c>, <c>jobinstanceid</c>) name the object it works on (VirtualMachine,
/// Host, DomainRouter...), when it has one. <see cref="Status"/>: 0 pending, 1 succeeded, 2 failed.
/// </summary>
public sealed record CloudStackAsyncJob(
    string JobId, string Command, int Status, string? InstanceType, string? InstanceId, DateTimeOffset? Created, string? Account)
{
    /// <summary>The command's class name without its package (MigrateVMCmd).</summary>
    public string ShortCommand => Command[(Command.LastIndexOf('.') + 1)..];
}

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

    /// <summary>The async jobs of every account that are still pending (jobstatus 0), whatever they work on.</summary>
    Task<IReadOnlyList<CloudStackAsyncJob>> ListPendingAsyncJobsAsync(CancellationToken cancellationToken = default);
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
