namespace RollingReboot.Core.Ports;

/// <summary>
/// A cluster as listClusters shows it. <see cref="ManagedState"/> is one of <see cref="CloudStackStates"/>'s managed states
/// (Managed, PrepareUnmanaged, Unmanaged, PrepareUnmanagedError).
/// </summary>
public sealed record CloudStackCluster(
    string Id, string Name, string ZoneId, string ZoneName, string PodName, string HypervisorType,
    string AllocationState, string ManagedState);

/// <summary>
/// A routing host as listHosts shows it: <see cref="State"/> is the agent status (Up, Disconnected, Alert, Connecting...),
/// <see cref="ResourceState"/> the allocation state (Enabled, Disabled, Maintenance, PrepareForMaintenance, ErrorInMaintenance).
/// </summary>
public sealed record CloudStackHost(string Id, string Name, string State, string ResourceState, string IpAddress)
{
    /// <summary>The host's tags (listHosts <c>hosttags</c>, comma-separated there).</summary>
    public IReadOnlyList<string> HostTags { get; init; } = [];

    /// <summary>listHosts <c>hahost</c>: reserved for VMs that CloudStack's HA restarts.</summary>
    public bool HaHost { get; init; }
}

/// <summary>
/// A guest VM as CloudStack knows it: instance name (the XAPI name label), its host, its affinity groups, its owner and the
/// host tags its service offering asks for.
/// </summary>
public sealed record CloudStackVm(string Id, string InstanceName, string? HostName, IReadOnlyList<CloudStackAffinityGroup> AffinityGroups)
{
    public string? HostId { get; init; }

    /// <summary>CloudStack's VM state (Running, Stopped, Migrating, Starting...).</summary>
    public string State { get; init; } = "";

    /// <summary>The owning project's id when a project owns the VM (then only <c>projectid</c> lists show it).</summary>
    public string? ProjectId { get; init; }

    public string? Account { get; init; }

    public string? DomainId { get; init; }

    public string? ServiceOfferingId { get; init; }

    /// <summary>
    /// The host tags of the VM's service offering (its <c>hosttags</c>, split at commas): CloudStack places the VM only on a
    /// host that has all of them. Empty when the offering has none (or could not be read).
    /// </summary>
    public IReadOnlyList<string> RequiredHostTags { get; init; } = [];
}

/// <summary>An affinity group of a VM; <see cref="Type"/> is one of <see cref="CloudStackAffinityTypes"/>.</summary>
public sealed record CloudStackAffinityGroup(string Id, string Name, string Type);

/// <summary>
/// The affinity group types of CloudStack's affinity processors (plugins/affinity-group-processors/*: the <c>type</c> each
/// processor's spring context gives it).
/// </summary>
public static class CloudStackAffinityTypes
{
    /// <summary>HostAntiAffinityProcessor: the group's VMs never share a host (strict).</summary>
    public const string HostAntiAffinity = "host anti-affinity";

    /// <summary>NonStrictHostAntiAffinityProcessor: hosts of the group's other VMs get a low priority, check() always passes.</summary>
    public const string NonStrictHostAntiAffinity = "non-strict host anti-affinity";

    /// <summary>HostAffinityProcessor: the group's VMs run on one host (check() refuses any other).</summary>
    public const string HostAffinity = "host affinity";

    /// <summary>NonStrictHostAffinityProcessor: the hosts of the group's other VMs are preferred.</summary>
    public const string NonStrictHostAffinity = "non-strict host affinity";

    /// <summary>ExplicitDedicationProcessor: the VM runs only on resources dedicated through this group.</summary>
    public const string ExplicitDedication = "ExplicitDedication";
}

/// <summary>Status and state names CloudStack uses (com.cloud.host.Status, ResourceState, Managed.ManagedState).</summary>
public static class CloudStackStates
{
    public const string Managed = "Managed";
    public const string Unmanaged = "Unmanaged";
    public const string PrepareUnmanaged = "PrepareUnmanaged";
    public const string PrepareUnmanagedError = "PrepareUnmanagedError";

    public const string Up = "Up";
    public const string Enabled = "Enabled";
}

/// <summary>A host dedicated (listDedicatedHosts) to a domain or an account, through an ExplicitDedication affinity group.</summary>
public sealed record CloudStackDedicatedHost(string HostId, string HostName, string DomainId, string? AccountId, string AffinityGroupId);

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

    /// <summary>The guest VMs on the cluster's hosts, the accounts' and the projects' alike.</summary>
    Task<IReadOnlyList<CloudStackVm>> ListVirtualMachinesAsync(string clusterId, CancellationToken cancellationToken = default);

    /// <summary>The async jobs of every account that are still pending (jobstatus 0), whatever they work on.</summary>
    Task<IReadOnlyList<CloudStackAsyncJob>> ListPendingAsyncJobsAsync(CancellationToken cancellationToken = default);

    /// <summary>Every dedicated host (listDedicatedHosts); a failure means CloudStack could not say (the plugin may be off).</summary>
    Task<IReadOnlyList<CloudStackDedicatedHost>> ListDedicatedHostsAsync(CancellationToken cancellationToken = default);
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
