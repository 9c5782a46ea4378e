using RollingReboot.Core.Ports;

namespace RollingReboot.Core.Tests.Run.Fakes;

/// <summary>A CloudStack management server in memory: one cluster, its managed state, every host Up.</summary>
internal sealed class FakeCloudStack(FakePool pool) : ICloudStack
{
    public string ManagedState { get; set; } = "Managed";

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
        return Task.FromResult<IReadOnlyList<CloudStackHost>>(pool.Hosts.Select(h => new CloudStackHost(h.Uuid, h.Name, h.Live ? "Up" : "Disconnected", "Enabled", "192.0.2." + h.Uuid[1..])).ToList());
    }

    public Task<string> SetManagedStateAsync(string clusterId, bool managed, CancellationToken cancellationToken = default)
    {
        Check();
        ManagedState = managed ? "Managed" : "Unmanaged";
        return Task.FromResult(ManagedState);
    }

    public Task<IReadOnlyList<CloudStackVm>> ListVirtualMachinesAsync(string clusterId, CancellationToken cancellationToken = default) =>
        Task.FromResult<IReadOnlyList<CloudStackVm>>([]);

    public Task<IReadOnlyList<CloudStackAsyncJob>> ListPendingAsyncJobsAsync(CancellationToken cancellationToken = default) =>
        Task.FromResult<IReadOnlyList<CloudStackAsyncJob>>([]);

    private void Check()
    {
        if (pool.Frozen)
        {
            throw new SimulatedCrash();
        }
    }
}
