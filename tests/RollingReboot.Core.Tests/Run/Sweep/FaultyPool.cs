using RollingReboot.Core.Pool;
using RollingReboot.Core.Ports;

namespace RollingReboot.Core.Tests.Run.Sweep;

/// <summary>The pool with one call struck by the injector; every other call goes straight through.</summary>
internal sealed class FaultyPool(IPoolConnection inner, FaultInjector faults) : IPoolConnection
{
    private async Task<T> Call<T>(string name, Func<Task<T>> call)
    {
        bool lose = faults.Before(name, cloud: false);
        var result = await call();
        return lose ? throw FaultInjector.Lost(name, cloud: false) : result;
    }

    private Task Call(string name, Func<Task> call) => Call(name, async () =>
    {
        await call();
        return true;
    });

    public Task<PoolSnapshot> ReadAsync(CancellationToken cancellationToken = default) => Call("pool.read", () => inner.ReadAsync(cancellationToken));

    public Task<HostState> ReadHostAsync(string hostUuid, CancellationToken cancellationToken = default) => Call("host.read", () => inner.ReadHostAsync(hostUuid, cancellationToken));

    public Task<IReadOnlyDictionary<string, IReadOnlyList<string>>> GetVmsPreventingEvacuationAsync(string hostUuid, CancellationToken cancellationToken = default) =>
        Call("host.get_vms_which_prevent_evacuation", () => inner.GetVmsPreventingEvacuationAsync(hostUuid, cancellationToken));

    public Task<IReadOnlyList<string>?> CanBootHereAsync(string vmUuid, string hostUuid, CancellationToken cancellationToken = default) =>
        Call("VM.assert_can_boot_here", () => inner.CanBootHereAsync(vmUuid, hostUuid, cancellationToken));

    public Task<DateTimeOffset> GetServerTimeAsync(string hostUuid, CancellationToken cancellationToken = default) => Call("host.get_servertime", () => inner.GetServerTimeAsync(hostUuid, cancellationToken));

    public Task DisableHaAsync(CancellationToken cancellationToken = default) => Call("pool.disable_ha", () => inner.DisableHaAsync(cancellationToken));

    public Task EnableHaAsync(IReadOnlyList<string> heartbeatSrUuids, IReadOnlyDictionary<string, string> configuration, CancellationToken cancellationToken = default) =>
        Call("pool.enable_ha", () => inner.EnableHaAsync(heartbeatSrUuids, configuration, cancellationToken));

    public Task SetHaHostFailuresToTolerateAsync(long value, CancellationToken cancellationToken = default) =>
        Call("pool.set_ha_host_failures_to_tolerate", () => inner.SetHaHostFailuresToTolerateAsync(value, cancellationToken));

    public Task SetHaAllowOvercommitAsync(bool value, CancellationToken cancellationToken = default) => Call("pool.set_ha_allow_overcommit", () => inner.SetHaAllowOvercommitAsync(value, cancellationToken));

    public Task<bool> TryAddPoolOtherConfigAsync(string key, string value, CancellationToken cancellationToken = default) =>
        Call("pool.add_to_other_config", () => inner.TryAddPoolOtherConfigAsync(key, value, cancellationToken));

    public Task RemovePoolOtherConfigAsync(string key, CancellationToken cancellationToken = default) => Call("pool.remove_from_other_config", () => inner.RemovePoolOtherConfigAsync(key, cancellationToken));

    public Task DisableHostAsync(string hostUuid, CancellationToken cancellationToken = default) => Call("host.disable", () => inner.DisableHostAsync(hostUuid, cancellationToken));

    public Task DisableHostUntilEnabledAsync(string hostUuid, CancellationToken cancellationToken = default) =>
        Call("host.disable(auto_enable=false)", () => inner.DisableHostUntilEnabledAsync(hostUuid, cancellationToken));

    public Task EnableHostAsync(string hostUuid, CancellationToken cancellationToken = default) => Call("host.enable", () => inner.EnableHostAsync(hostUuid, cancellationToken));

    public Task RebootHostAsync(string hostUuid, CancellationToken cancellationToken = default) => Call("host.reboot", () => inner.RebootHostAsync(hostUuid, cancellationToken));

    public Task ShutdownHostAsync(string hostUuid, CancellationToken cancellationToken = default) => Call("host.shutdown", () => inner.ShutdownHostAsync(hostUuid, cancellationToken));

    public Task PowerOnHostAsync(string hostUuid, CancellationToken cancellationToken = default) => Call("host.power_on", () => inner.PowerOnHostAsync(hostUuid, cancellationToken));

    public Task MigrateVmAsync(string vmUuid, string targetHostUuid, MigrationRoute route, IProgress<double>? progress, CancellationToken cancellationToken) =>
        Call("VM.pool_migrate", () => inner.MigrateVmAsync(vmUuid, targetHostUuid, route, progress, cancellationToken));

    public Task CleanShutdownVmAsync(string vmUuid, CancellationToken cancellationToken = default) =>
        Call("VM.clean_shutdown", () => inner.CleanShutdownVmAsync(vmUuid, cancellationToken));

    public Task HardShutdownVmAsync(string vmUuid, CancellationToken cancellationToken = default) =>
        Call("VM.hard_shutdown", () => inner.HardShutdownVmAsync(vmUuid, cancellationToken));

    public Task StartVmOnAsync(string vmUuid, string hostUuid, CancellationToken cancellationToken = default) =>
        Call("VM.start_on", () => inner.StartVmOnAsync(vmUuid, hostUuid, cancellationToken));

    public Task<IReadOnlyList<NetworkInfo>> ReadNetworksAsync(CancellationToken cancellationToken = default) =>
        Call("network.read", () => inner.ReadNetworksAsync(cancellationToken));

    public Task<IReadOnlyList<SrLink>> ReadUnpluggedSharedSrsAsync(string hostUuid, CancellationToken cancellationToken = default) =>
        Call("host.PBDs.read", () => inner.ReadUnpluggedSharedSrsAsync(hostUuid, cancellationToken));

    public Task PlugSrAsync(string hostUuid, string srUuid, CancellationToken cancellationToken = default) => Call("PBD.plug", () => inner.PlugSrAsync(hostUuid, srUuid, cancellationToken));

    // The run's idle: not a step to strike.
    public Task WaitForChangeAsync(TimeSpan timeout, CancellationToken cancellationToken = default) => inner.WaitForChangeAsync(timeout, cancellationToken);

    public ValueTask DisposeAsync() => ValueTask.CompletedTask;
}
