using RollingReboot.Core.Ports;

namespace RollingReboot.Core.Tests.Run.Fakes;

/// <summary>
/// A CloudStack management server in memory: one cluster, its managed state, every host Up unless told otherwise (a host
/// state, a resource state, tags), the VMs and dedicated hosts it lists, and the updateCluster calls it got.
/// </summary>
internal sealed class FakeCloudStack(FakePool pool) : ICloudStack
{
    public string ManagedState { get; set; } = "Managed";

    /// <summary>Host name to the state listHosts shows (default Up while live, Disconnected otherwise).</summary>
    public Dictionary<string, string> HostStates { get; } = [];

    /// <summary>Host name to its resource state (default Enabled).</summary>
    public Dictionary<string, string> ResourceStates { get; } = [];

    public Dictionary<string, IReadOnlyList<string>> HostTags { get; } = [];

    /// <summary>The VMs listVirtualMachines shows; when empty, the pool's running VMs where XAPI runs them (but see <see cref="StaleHosts"/>).</summary>
    public List<CloudStackVm> Vms { get; } = [];

    /// <summary>VM name to the host CloudStack keeps showing it on, whatever XAPI says (a lost power report).</summary>
    public Dictionary<string, string> StaleHosts { get; } = [];

    public List<CloudStackDedicatedHost> Dedicated { get; } = [];

    /// <summary>When set, listDedicatedHosts fails with this code (the plugin off, say).</summary>
    public int? DedicatedFails { get; set; }

    /// <summary>The managed states updateCluster was asked for, in order.</summary>
    public List<string> Updates { get; } = [];

    /// <summary>What updateCluster managedstate=Unmanaged leaves (default Unmanaged).</summary>
    public string UnmanageResult { get; set; } = "Unmanaged";

    /// <summary>How many listHosts calls after Managed the hosts take to come Up (CloudStack's agent scan).</summary>
    public int ReconnectReads { get; set; }

    // Counted from the last updateCluster managedstate=Managed only.
    private int _readsSinceManaged = int.MaxValue / 2;

    public CloudStackCluster Cluster => new("c1", "C", "z1", "Z", "pod", "XenServer", "Enabled", ManagedState);

    public Task<IReadOnlyList<CloudStackCluster>> FindClustersAsync(string name, string? zone, CancellationToken cancellationToken = default) =>
        Task.FromResult<IReadOnlyList<CloudStackCluster>>([Cluster]);

    public Task<CloudStackCluster> GetClusterAsync(string clusterId, CancellationToken cancellationToken = default)
    {
        Check();
        return Task.FromResult(Cluster);
    }

    public Task<IReadOnlyList<CloudStackCluster>> ListClustersAsync(string zone, CancellationToken cancellationToken = default) =>
        Task.FromResult<IReadOnlyList<CloudStackCluster>>([Cluster]);

    public Task<IReadOnlyList<CloudStackHost>> ListHostsAsync(string clusterId, CancellationToken cancellationToken = default)
    {
        Check();
        var reconnecting = ManagedState == "Managed" && _readsSinceManaged++ < ReconnectReads;
        return Task.FromResult<IReadOnlyList<CloudStackHost>>(pool.Hosts.Select(h => new CloudStackHost(
            h.Uuid, h.Name,
            HostStates.GetValueOrDefault(h.Name) ?? (reconnecting ? "Disconnected" : h.Live && ManagedState != "Unmanaged" ? "Up" : "Disconnected"),
            ResourceStates.GetValueOrDefault(h.Name) ?? "Enabled",
            "192.0.2." + h.Uuid[1..])
        {
            HostTags = HostTags.GetValueOrDefault(h.Name) ?? [],
        }).ToList());
    }

    public Task<string> SetManagedStateAsync(string clusterId, bool managed, CancellationToken cancellationToken = default)
    {
        Check();
        Updates.Add(managed ? "Managed" : "Unmanaged");
        ManagedState = managed ? "Managed" : UnmanageResult;
        _readsSinceManaged = managed ? 0 : int.MaxValue / 2;
        return Task.FromResult(ManagedState);
    }

    public Task<IReadOnlyList<CloudStackVm>> ListVirtualMachinesAsync(string clusterId, CancellationToken cancellationToken = default)
    {
        Check();
        if (Vms.Count > 0)
        {
            return Task.FromResult<IReadOnlyList<CloudStackVm>>([.. Vms]);
        }

        return Task.FromResult<IReadOnlyList<CloudStackVm>>(pool.Vms.Where(v => v.Running).Select(v =>
        {
            var host = StaleHosts.GetValueOrDefault(v.Name) ?? pool.H(v.Host).Name;
            return new CloudStackVm("cs-" + v.Uuid, v.Name, host, []) { State = "Running", HostId = pool.Hosts.First(h => h.Name == host).Uuid };
        }).ToList());
    }

    public Task<IReadOnlyList<CloudStackAsyncJob>> ListPendingAsyncJobsAsync(CancellationToken cancellationToken = default) =>
        Task.FromResult<IReadOnlyList<CloudStackAsyncJob>>([]);

    public Task<IReadOnlyList<CloudStackDedicatedHost>> ListDedicatedHostsAsync(CancellationToken cancellationToken = default) =>
        DedicatedFails is { } code
            ? throw new CloudStackException(code, 0, "The given command 'listDedicatedHosts' either does not exist, is not available for user.")
            : Task.FromResult<IReadOnlyList<CloudStackDedicatedHost>>([.. Dedicated]);

    private void Check()
    {
        if (pool.Frozen)
        {
            throw new SimulatedCrash();
        }
    }
}
