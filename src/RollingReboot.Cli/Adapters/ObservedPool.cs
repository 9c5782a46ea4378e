using RollingReboot.Core.Pool;
using RollingReboot.Core.Ports;

namespace RollingReboot.Cli.Adapters;

/// <summary>
/// The pool connection as the run uses it, with what the live view needs taken off the wire on the way: each pool the
/// run reads and each migration's XAPI task progress. Every call goes through unchanged; the run does not know it is
/// watched (the Core asks for no progress, so the view supplies its own and passes any given one on).
/// </summary>
internal sealed class ObservedPool(IPoolConnection inner, Action<PoolSnapshot> poolRead, Action<string, double> migrationProgress) : IPoolConnection
{
    public async Task<PoolSnapshot> ReadAsync(CancellationToken cancellationToken = default)
    {
        var pool = await inner.ReadAsync(cancellationToken);
        poolRead(pool);
        return pool;
    }

    public Task MigrateVmAsync(string vmUuid, string targetHostUuid, MigrationRoute route, IProgress<double>? progress, CancellationToken cancellationToken) =>
        inner.MigrateVmAsync(vmUuid, targetHostUuid, route, new Tap(vmUuid, progress, migrationProgress), cancellationToken);

    public Task MigrateVmAsync(string vmUuid, string targetHostUuid, IProgress<double>? progress = null, CancellationToken cancellationToken = default) =>
        MigrateVmAsync(vmUuid, targetHostUuid, MigrationRoute.Default, progress, cancellationToken);

    public Task CleanShutdownVmAsync(string vmUuid, CancellationToken cancellationToken = default) => inner.CleanShutdownVmAsync(vmUuid, cancellationToken);

    public Task HardShutdownVmAsync(string vmUuid, CancellationToken cancellationToken = default) => inner.HardShutdownVmAsync(vmUuid, cancellationToken);

    public Task StartVmOnAsync(string vmUuid, string hostUuid, CancellationToken cancellationToken = default) => inner.StartVmOnAsync(vmUuid, hostUuid, cancellationToken);

    public Task<HostState> ReadHostAsync(string hostUuid, CancellationToken cancellationToken = default) => inner.ReadHostAsync(hostUuid, cancellationToken);

    public Task<IReadOnlyDictionary<string, IReadOnlyList<string>>> GetVmsPreventingEvacuationAsync(string hostUuid, CancellationToken cancellationToken = default) =>
        inner.GetVmsPreventingEvacuationAsync(hostUuid, cancellationToken);

    public Task<IReadOnlyList<string>?> CanBootHereAsync(string vmUuid, string hostUuid, CancellationToken cancellationToken = default) =>
        inner.CanBootHereAsync(vmUuid, hostUuid, cancellationToken);

    public Task<DateTimeOffset> GetServerTimeAsync(string hostUuid, CancellationToken cancellationToken = default) => inner.GetServerTimeAsync(hostUuid, cancellationToken);

    public Task DisableHaAsync(CancellationToken cancellationToken = default) => inner.DisableHaAsync(cancellationToken);

    public Task EnableHaAsync(IReadOnlyList<string> heartbeatSrUuids, IReadOnlyDictionary<string, string> configuration, CancellationToken cancellationToken = default) =>
        inner.EnableHaAsync(heartbeatSrUuids, configuration, cancellationToken);

    public Task SetHaHostFailuresToTolerateAsync(long value, CancellationToken cancellationToken = default) => inner.SetHaHostFailuresToTolerateAsync(value, cancellationToken);

    public Task SetHaAllowOvercommitAsync(bool value, CancellationToken cancellationToken = default) => inner.SetHaAllowOvercommitAsync(value, cancellationToken);

    public Task<bool> TryAddPoolOtherConfigAsync(string key, string value, CancellationToken cancellationToken = default) => inner.TryAddPoolOtherConfigAsync(key, value, cancellationToken);

    public Task RemovePoolOtherConfigAsync(string key, CancellationToken cancellationToken = default) => inner.RemovePoolOtherConfigAsync(key, cancellationToken);

    public Task DisableHostAsync(string hostUuid, CancellationToken cancellationToken = default) => inner.DisableHostAsync(hostUuid, cancellationToken);

    public Task DisableHostUntilEnabledAsync(string hostUuid, CancellationToken cancellationToken = default) => inner.DisableHostUntilEnabledAsync(hostUuid, cancellationToken);

    public Task EnableHostAsync(string hostUuid, CancellationToken cancellationToken = default) => inner.EnableHostAsync(hostUuid, cancellationToken);

    public Task RebootHostAsync(string hostUuid, CancellationToken cancellationToken = default) => inner.RebootHostAsync(hostUuid, cancellationToken);

    public Task ShutdownHostAsync(string hostUuid, CancellationToken cancellationToken = default) => inner.ShutdownHostAsync(hostUuid, cancellationToken);

    public Task PowerOnHostAsync(string hostUuid, CancellationToken cancellationToken = default) => inner.PowerOnHostAsync(hostUuid, cancellationToken);

    public Task<IReadOnlyList<NetworkInfo>> ReadNetworksAsync(CancellationToken cancellationToken = default) => inner.ReadNetworksAsync(cancellationToken);

    public Task<IReadOnlyList<SrLink>> ReadUnpluggedSharedSrsAsync(string hostUuid, CancellationToken cancellationToken = default) => inner.ReadUnpluggedSharedSrsAsync(hostUuid, cancellationToken);

    public Task PlugSrAsync(string hostUuid, string srUuid, CancellationToken cancellationToken = default) => inner.PlugSrAsync(hostUuid, srUuid, cancellationToken);

    public Task WaitForChangeAsync(TimeSpan timeout, CancellationToken cancellationToken = default) => inner.WaitForChangeAsync(timeout, cancellationToken);

    public Task<HostState> WaitForHostChangeAsync(string hostUuid, TimeSpan timeout, CancellationToken cancellationToken = default) => inner.WaitForHostChangeAsync(hostUuid, timeout, cancellationToken);

    public IPoolUpdates? Updates => inner.Updates;

    /// <summary>The session's connection is disposed by the session, not by the view.</summary>
    public ValueTask DisposeAsync() => ValueTask.CompletedTask;

    /// <summary>Reports synchronously (IProgress&lt;T&gt;'s Progress would post to the thread pool and reorder).</summary>
    private sealed class Tap(string vmUuid, IProgress<double>? next, Action<string, double> report) : IProgress<double>
    {
        public void Report(double value)
        {
            report(vmUuid, value);
            next?.Report(value);
        }
    }
}
