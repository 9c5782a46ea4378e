using RollingReboot.Core.Pool;
using RollingReboot.Core.Ports;
using RollingReboot.Core.Run.Engine;
using RollingReboot.Core.Run.Journal;
using RollingReboot.Core.Run.State;
using RollingReboot.Core.Run.Steps;

namespace RollingReboot.Core.Run;

/// <summary>
/// Puts back what the state says the run changed (a change counts from its intent), the same code at the end of every
/// run and for 'rollreboot restore': hosts as they were, evacuation markers of unfinished evacuations, HA with its exact
/// settings, CloudStack Managed with its hosts Up, the lock. Each undo reads the live pool first and is idempotent; what
/// cannot be put back becomes an operator action (journaled, in the report).
/// </summary>
public static class Restorer
{
    /// <summary>False when something needs an operator.</summary>
    public static async Task<bool> RestoreAsync(RunContext run, CancellationToken cancellationToken)
    {
        var ok = true;
        var snapshot = await TryReadAsync(run, cancellationToken);
        ok &= await RestoreHostsAsync(run, snapshot, cancellationToken);
        ok &= await ClearMarkersAsync(run, cancellationToken);
        if (run.State.HaOff != ChangeState.None && run.State.Original is { } original)
        {
            ok &= await RestoreHaAsync(run, original.Ha, cancellationToken);
        }

        if (run.State.ClusterUnmanaged != ChangeState.None && run.Cloud is not null)
        {
            ok &= await RestoreCloudStackAsync(run, cancellationToken);
        }

        if (run.State.Lock != ChangeState.None)
        {
            ok &= await ReleaseLockAsync(run, cancellationToken);
        }

        return ok;
    }

    private static async Task<PoolSnapshot?> TryReadAsync(RunContext run, CancellationToken cancellationToken)
    {
        try
        {
            var s = await run.Executor.ReadAsync(run.Pool.ReadAsync, cancellationToken);
            run.LastSnapshot = s;
            return s;
        }
        catch (PoolOperationException)
        {
            return null;
        }
    }

    private static async Task<bool> RestoreHostsAsync(RunContext run, PoolSnapshot? snapshot, CancellationToken cancellationToken)
    {
        var ok = true;
        var leftDisabled = run.State.LeftDisabled.ToList();
        foreach (var uuid in run.State.Original?.DisabledUntilReboot.Order(StringComparer.Ordinal) ?? Enumerable.Empty<string>())
        {
            // Not touched by the run, not rebooted: it stays disabled until its reboot, as before. Said, never asked of XAPI.
            if (leftDisabled.All(p => p.Uuid != uuid) && snapshot?.Hosts.FirstOrDefault(x => x.Uuid == uuid) is { } h
                && HostEnabling.Decide(run.State, h) is { Action: PutBackAction.UntilReboot, Why: { } why })
            {
                run.Restored.Add(why);
            }
        }

        foreach (var progress in leftDisabled)
        {
            var h = snapshot?.Hosts.FirstOrDefault(x => x.Uuid == progress.Uuid);
            var name = h?.Name ?? progress.Name ?? progress.Uuid;
            if (h is not { Live: true })
            {
                ok = false;
                run.OperatorAction($"host {name} is not live: once it is back, 'xe host-enable host={name}'");
                continue;
            }

            var decision = HostEnabling.Decide(run.State, h);
            try
            {
                switch (decision.Action)
                {
                    case PutBackAction.AsItWas:
                        run.Executor.Record(new HostEnabled(h.Uuid));
                        break;
                    case PutBackAction.UntilReboot:
                        // As it was before the run, and XAPI would refuse host.enable: nothing is asked, the reason is said.
                        run.Executor.Record(new HostEnabled(h.Uuid));
                        run.Restored.Add(decision.Why!);
                        run.Log.Warn("{Why}", decision.Why!);
                        break;
                    case PutBackAction.Refused:
                        ok = false;
                        run.OperatorAction(decision.Why!);
                        break;
                    case PutBackAction.Enable:
                        await run.Executor.DoAsync(new HostEnableIntended(h.Uuid, h.Name), ct => run.Pool.EnableHostAsync(h.Uuid, ct), new HostEnabled(h.Uuid), cancellationToken);
                        run.Restored.Add($"host {h.Name} enabled again");
                        break;
                    default:
                        await run.Executor.DoAsync(null, ct => run.Pool.DisableHostAsync(h.Uuid, ct), new HostEnabled(h.Uuid), cancellationToken);
                        run.Restored.Add($"host {h.Name} disabled again, as it was");
                        break;
                }
            }
            catch (PoolOperationException e)
            {
                ok = false;
                run.OperatorAction($"enable host {h.Name}: 'xe host-enable host={h.Name}' ({e.Code})");
            }
        }

        return ok;
    }

    /// <summary>An evacuation that did not finish leaves no marker behind (its host was enabled again above).</summary>
    private static async Task<bool> ClearMarkersAsync(RunContext run, CancellationToken cancellationToken)
    {
        var ok = true;
        foreach (var (host, key) in run.State.Markers.Where(m => run.State.Host(m.Key).Phase != HostPhase.LeftEvacuated && run.State.Mode == "evacuate").ToList())
        {
            try
            {
                await run.Executor.DoAsync(new EvacuationMarkClearIntended(host, key), ct => run.Pool.RemovePoolOtherConfigAsync(key, ct), new EvacuationMarkCleared(host), cancellationToken);
            }
            catch (PoolOperationException e)
            {
                ok = false;
                run.OperatorAction($"remove the unfinished evacuation's marker: 'xe pool-param-remove uuid={run.State.PoolUuid} param-name=other-config param-key={key}' ({e.Code})");
            }
        }

        return ok;
    }

    private static async Task<bool> RestoreHaAsync(RunContext run, HaSettings ha, CancellationToken cancellationToken)
    {
        var cfg = string.Join(",", ha.Configuration.Select(kv => $"{kv.Key}={kv.Value}"));
        var command = $"xe pool-ha-enable heartbeat-sr-uuids={string.Join(",", ha.HeartbeatSrUuids)}{string.Join("", ha.Configuration.Select(kv => $" ha-config:{kv.Key}={kv.Value}"))} && xe pool-param-set uuid={run.State.PoolUuid} ha-host-failures-to-tolerate={ha.HostFailuresToTolerate} ha-allow-overcommit={ha.AllowOvercommit.ToString().ToLowerInvariant()}";
        var deadline = run.Clock.GetUtcNow() + run.Options.HostTimeout;
        while (true)
        {
            try
            {
                var snapshot = await run.Pool.ReadAsync(cancellationToken);
                if (snapshot.Hosts.FirstOrDefault(h => !h.Live) is { } offline)
                {
                    if (run.Clock.GetUtcNow() >= deadline || !run.State.Rebooted.Contains(offline.Uuid) && !run.State.Host(offline.Uuid).RebootInFlight)
                    {
                        run.OperatorAction($"HA could not be re-enabled: host {offline.Name} is offline. Once every host is live, run: {command}");
                        return false;
                    }

                    await run.Pool.WaitForChangeAsync(TimeSpan.FromSeconds(30), cancellationToken);
                    continue;
                }

                var enableHa = snapshot.Ha.Enabled
                    ? (Func<CancellationToken, Task>)(_ => Task.CompletedTask)
                    : ct => run.Pool.EnableHaAsync(ha.HeartbeatSrUuids, ha.Configuration, ct);
                await run.Executor.DoOnceAsync(new HaEnableIntended(ha.Configuration, ha.HeartbeatSrUuids), enableHa, null, cancellationToken);
                await run.Executor.DoAsync(null, ct => run.Pool.SetHaHostFailuresToTolerateAsync(ha.HostFailuresToTolerate, ct), null, cancellationToken);
                await run.Executor.DoAsync(null, ct => run.Pool.SetHaAllowOvercommitAsync(ha.AllowOvercommit, ct), new HaEnabled(), cancellationToken);
                run.Restored.Add($"HA enabled again with its settings ({cfg}, tolerate {ha.HostFailuresToTolerate}, overcommit {ha.AllowOvercommit.ToString().ToLowerInvariant()})");
                run.Log.Info("HA restored exactly as recorded ({Config}, tolerate {Ntol})", cfg, ha.HostFailuresToTolerate);
                return true;
            }
            catch (PoolOperationException e) when (run.Clock.GetUtcNow() < deadline && (e.IsTransient || e.Kind == PoolErrorKind.Busy))
            {
                await Task.Delay(TimeSpan.FromSeconds(5), run.Clock, cancellationToken);
            }
            catch (PoolOperationException e)
            {
                run.OperatorAction($"HA could not be re-enabled ({e.Code}); run: {command}");
                return false;
            }
        }
    }

    private static async Task<bool> RestoreCloudStackAsync(RunContext run, CancellationToken cancellationToken)
    {
        var cloud = run.Cloud!;
        var deadline = run.Clock.GetUtcNow() + run.Options.CloudStackTimeout;
        var pool = await TryReadAsync(run, cancellationToken);
        if (pool?.Hosts.FirstOrDefault(h => !h.Live) is { } down)
        {
            // Managed with a host down, CloudStack would mark it Alert and start its own recovery: keep hands off.
            run.OperatorAction($"CloudStack cluster {cloud.Cluster.Name} left Unmanaged because host {down.Name} is down; once it is back: 'cmk update cluster id={cloud.Cluster.Id} managedstate=Managed' (or 'rollreboot restore --clustername {cloud.Cluster.Name}')");
            return false;
        }

        try
        {
            var current = (await cloud.Api.GetClusterAsync(cloud.Cluster.Id, cancellationToken)).ManagedState;
            var state = current == "Managed"
                ? current
                : await run.Executor.DoOnceAsync(new ManageIntended(cloud.Cluster.Id), ct => cloud.Api.SetManagedStateAsync(cloud.Cluster.Id, managed: true, ct), _ => null, cancellationToken);
            if (state != "Managed")
            {
                throw new CloudStackException(0, 0, $"cluster is {state} after updateCluster managedstate=Managed");
            }

            run.Executor.Record(new Managed());
            while (true)
            {
                var hosts = await cloud.Api.ListHostsAsync(cloud.Cluster.Id, cancellationToken);
                var notUp = hosts.Where(h => h.State != "Up").ToList();
                if (notUp.Count == 0)
                {
                    run.Restored.Add($"CloudStack cluster {cloud.Cluster.Name} Managed, all {hosts.Count} hosts Up");
                    return true;
                }

                if (run.Clock.GetUtcNow() >= deadline)
                {
                    run.OperatorAction($"CloudStack cluster {cloud.Cluster.Name} is Managed but host(s) {string.Join(", ", notUp.Select(h => h.Name + " " + h.State))} are not Up after {run.Options.CloudStackTimeout.TotalMinutes:0} min: check them in CloudStack");
                    return false;
                }

                await Task.Delay(TimeSpan.FromSeconds(2), run.Clock, cancellationToken);
            }
        }
        catch (CloudStackException e)
        {
            run.OperatorAction($"set CloudStack cluster {cloud.Cluster.Name} back to Managed: 'cmk update cluster id={cloud.Cluster.Id} managedstate=Managed' ({e.ErrorText})");
            return false;
        }
    }

    /// <summary>Removes the lock only if it is this run's (a lock that was only intended may never have been written).</summary>
    private static async Task<bool> ReleaseLockAsync(RunContext run, CancellationToken cancellationToken)
    {
        await run.LockGate.WaitAsync(cancellationToken);
        run.LockReleasing = true;
        try
        {
            var config = (await run.Executor.ReadAsync(run.Pool.ReadAsync, cancellationToken)).OtherConfig;
            var ours = config.GetValueOrDefault(PoolLock.Key) is { } current && PoolLock.Parse(current).IsHeldBy(run.RunId);
            await run.Executor.DoAsync(new LockReleaseIntended(), async ct =>
            {
                if (ours)
                {
                    // The heartbeat first: a lock without one would look alive to a reader until it expires.
                    await run.Pool.RemovePoolOtherConfigAsync(PoolLock.HeartbeatKey, ct);
                    await run.Pool.RemovePoolOtherConfigAsync(PoolLock.Key, ct);
                }
            }, new LockReleased(), cancellationToken);
            if (ours)
            {
                run.Restored.Add("pool lock released");
            }

            return true;
        }
        catch (PoolOperationException e)
        {
            run.OperatorAction($"remove the run's lock: 'xe pool-param-remove uuid={run.State.PoolUuid} param-name=other-config param-key={PoolLock.Key}' and param-key={PoolLock.HeartbeatKey} ({e.Code})");
            return false;
        }
        finally
        {
            run.LockGate.Release();
        }
    }
}
