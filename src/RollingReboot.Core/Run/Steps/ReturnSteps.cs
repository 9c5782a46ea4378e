using RollingReboot.Core.Pool;
using RollingReboot.Core.Run.Engine;
using RollingReboot.Core.Run.Journal;
using static RollingReboot.Core.Run.Engine.StepResult;

namespace RollingReboot.Core.Run.Steps;

/// <summary>
/// 'rollreboot return --host H': enables a host emptied by 'rollreboot evacuate', brings its VMs back (a VM that cannot
/// go back stays running where it is) and removes the marker, under the pool's lock.
/// </summary>
public static class ReturnSteps
{
    public static async Task<(StepResult Result, string Message)> ReturnHostAsync(RunContext run, PoolSnapshot pool, string hostUuid, CancellationToken stop, CancellationToken abort)
    {
        var started = run.Clock.GetUtcNow();
        var host = pool.Hosts.First(h => h.Uuid == hostUuid);
        var key = Evacuation.MarkerKey(hostUuid);
        var marker = pool.OtherConfig.GetValueOrDefault(key);
        if (!host.Enabled)
        {
            await run.Executor.DoAsync(new HostEnableIntended(hostUuid, host.Name), ct => run.Pool.EnableHostAsync(hostUuid, ct), new HostEnabled(hostUuid), abort);
            run.Log.HostPhase(host.Name, "enabled again");
        }

        var vms = Evacuation.MarkedVms(marker, out var damaged);
        if (damaged)
        {
            run.Log.Warn("The evacuation marker of {Host} is damaged; no VM is brought back to it", host.Name);
        }

        var homes = vms.ToDictionary(v => v, _ => (string?)hostUuid, StringComparer.Ordinal);
        var (back, failed, ended) = await MigrationBatch.ReturnVmsAsync(run, homes, [hostUuid], stop, abort);
        run.VmReturns = ended;
        if (marker is not null)
        {
            await run.Executor.DoAsync(new EvacuationMarkClearIntended(hostUuid, key), ct => run.Pool.RemovePoolOtherConfigAsync(key, ct), new EvacuationMarkCleared(hostUuid), abort);
        }

        run.Executor.Record(new HostFinished(hostUuid, host.Name, hostUuid == pool.MasterUuid, back, 0, (run.Clock.GetUtcNow() - started).TotalSeconds, Result: HostResult.Returned));
        var message = failed.Count == 0
            ? $"{host.Name} enabled; {back} VM(s) back on it"
            : $"{host.Name} enabled; {back} VM(s) back on it, {failed.Count} left where they run ({string.Join(", ", failed.Take(10))})";
        run.Notify("host.returned", $"{host.Name} of {run.ClusterLabel} is back in service: {message}", host.Name);
        return (Continue, message);
    }
}
