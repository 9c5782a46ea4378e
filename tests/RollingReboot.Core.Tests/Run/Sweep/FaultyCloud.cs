using RollingReboot.Core.Ports;

namespace RollingReboot.Core.Tests.Run.Sweep;

/// <summary>CloudStack with one call struck by the injector.</summary>
internal sealed class FaultyCloud(ICloudStack inner, FaultInjector faults) : ICloudStack
{
    private async Task<T> Call<T>(string name, Func<Task<T>> call)
    {
        bool lose = faults.Before(name, cloud: true);
        var result = await call();
        return lose ? throw FaultInjector.Lost(name, cloud: true) : result;
    }

    public Task<IReadOnlyList<CloudStackCluster>> FindClustersAsync(string name, string? zone, CancellationToken cancellationToken = default) =>
        Call("listClusters", () => inner.FindClustersAsync(name, zone, cancellationToken));

    public Task<CloudStackCluster> GetClusterAsync(string clusterId, CancellationToken cancellationToken = default) => Call("listClusters(id)", () => inner.GetClusterAsync(clusterId, cancellationToken));

    public Task<IReadOnlyList<CloudStackCluster>> ListClustersAsync(string zone, CancellationToken cancellationToken = default) => Call("listClusters(zone)", () => inner.ListClustersAsync(zone, cancellationToken));

    public Task<IReadOnlyList<CloudStackHost>> ListHostsAsync(string clusterId, CancellationToken cancellationToken = default) => Call("listHosts", () => inner.ListHostsAsync(clusterId, cancellationToken));

    public Task<string> SetManagedStateAsync(string clusterId, bool managed, CancellationToken cancellationToken = default) =>
        Call(managed ? "updateCluster(Managed)" : "updateCluster(Unmanaged)", () => inner.SetManagedStateAsync(clusterId, managed, cancellationToken));

    public Task<IReadOnlyList<CloudStackVm>> ListVirtualMachinesAsync(string clusterId, CancellationToken cancellationToken = default) =>
        Call("listVirtualMachines", () => inner.ListVirtualMachinesAsync(clusterId, cancellationToken));

    public Task<IReadOnlyList<CloudStackAsyncJob>> ListPendingAsyncJobsAsync(CancellationToken cancellationToken = default) => Call("listAsyncJobs", () => inner.ListPendingAsyncJobsAsync(cancellationToken));

    public Task<IReadOnlyList<CloudStackDedicatedHost>> ListDedicatedHostsAsync(CancellationToken cancellationToken = default) => Call("listDedicatedHosts", () => inner.ListDedicatedHostsAsync(cancellationToken));
}
