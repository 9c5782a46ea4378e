using RollingReboot.Core.Pool;
using RollingReboot.Core.Ports;
using RollingReboot.Core.Run.Engine;
using RollingReboot.Core.Run.Journal;
using RollingReboot.Core.Run.State;
using static RollingReboot.Core.Run.Engine.StepResult;

namespace RollingReboot.Core.Run.Steps;

/// <summary>Before the first host: the pool's lock, what will be put back, HA off, CloudStack Unmanaged.</summary>
public static class PrepareSteps
{
    /// <summary>Takes the pool's lock (an atomic add to pool.other_config), or finds it already this run's (resume: a
    /// lock recognised by run id, its holder dead). A lock whose holder is alive is never taken.</summary>
    public static async Task<StepResult> AcquireLockAsync(RunContext run, PoolSnapshot pool, CancellationToken cancellationToken)
    {
        var holder = PoolLock.Holder(pool.OtherConfig, run.Clock, run.Options.HeartbeatTimeout, run.Services.ProcessAlive);
        if (holder is not null && holder.Lock.IsHeldBy(run.RunId))
        {
            // Ours already (a killed run wrote it, maybe without knowing); ContinueAsync refused it if still alive.
            if (run.State.Lock != ChangeState.Made)
            {
                run.Executor.Record(new LockIntended(holder.Lock.Raw));
                run.Executor.Record(new LockAcquired(PoolLock.Key));
            }

            await BeatAsync(run, cancellationToken);
            return Continue;
        }

        var value = PoolLock.Create(run.RunId, run.Options.Operator, run.Options.Machine, run.Clock.GetUtcNow(), run.Options.LockTtl);
        var added = await run.Executor.DoOnceAsync(
            new LockIntended(value),
            ct => run.Pool.TryAddPoolOtherConfigAsync(PoolLock.Key, value, ct),
            ok => ok ? new LockAcquired(PoolLock.Key) : null,
            cancellationToken);
        if (!added)
        {
            var current = PoolLock.Holder((await run.Executor.ReadAsync(run.Pool.ReadAsync, cancellationToken)).OtherConfig, run.Clock, run.Options.HeartbeatTimeout, run.Services.ProcessAlive);
            if (current is null || current.Lock.IsHeldBy(run.RunId))
            {
                if (current is null)
                {
                    run.Executor.Record(new LockReleased());
                    return new Blocked($"the lock of pool {pool.Name} came and went while it was being taken; run again");
                }

                // The add was taken but its reply lost: it is ours.
                run.Executor.Record(new LockAcquired(PoolLock.Key));
                await BeatAsync(run, cancellationToken);
                return Continue;
            }

            // Not ours: the intent is void (restore must not touch another run's lock).
            run.Executor.Record(new LockReleased());
            var blocked = await BreakOrRefuseAsync(run, pool, current, value, cancellationToken);
            if (blocked is not null)
            {
                return blocked;
            }
        }

        await BeatAsync(run, cancellationToken);
        run.Log.Info("Locked pool {Pool} for run {RunId}", pool.Name, run.RunId);
        return Continue;
    }

    private static async Task<StepResult?> BreakOrRefuseAsync(RunContext run, PoolSnapshot pool, LockHolder current, string value, CancellationToken cancellationToken)
    {
        if (!run.Options.BreakLock)
        {
            var why = current.Alive
                ? $"pool {pool.Name} is locked by another run: {current.Describe()}; wait for it to finish (a second run must never touch the pool)"
                : $"pool {pool.Name} holds a stale lock from {current.Describe()}: that run is dead; continue or undo it with 'rollreboot resume' / 'rollreboot restore' where its journal is, or run again with --break-lock";
            run.Log.Error("Run stopped: {Reason}", why);
            return new Blocked(why);
        }

        run.Log.Warn("Breaking the lock held by {Owner}, as asked with --break-lock", current.Describe());
        await run.Executor.DoAsync(null, ct => run.Pool.RemovePoolOtherConfigAsync(PoolLock.Key, ct), null, cancellationToken);
        var added = await run.Executor.DoOnceAsync(
            new LockIntended(value),
            ct => run.Pool.TryAddPoolOtherConfigAsync(PoolLock.Key, value, ct),
            ok => ok ? new LockAcquired(PoolLock.Key) : new LockReleased(),
            cancellationToken);
        if (added)
        {
            return null;
        }

        var why2 = $"another run took the lock of pool {pool.Name} while it was being broken";
        run.Log.Error("Run stopped: {Reason}", why2);
        return new Blocked(why2);
    }

    /// <summary>The holder's sign of life (not journaled: it changes nothing the run must put back).</summary>
    public static async Task BeatAsync(RunContext run, CancellationToken cancellationToken)
    {
        await run.LockGate.WaitAsync(cancellationToken);
        try
        {
            if (run.LockReleasing || run.State.Lock == ChangeState.None)
            {
                // Released, or being released: a beat now would leave a heartbeat without its lock.
                return;
            }

            var value = PoolLock.HeartbeatValue(run.RunId, run.Instance, run.Clock.GetUtcNow(), run.Options.Machine, run.Options.ProcessId);
            await run.Executor.DoAsync(null, async ct =>
            {
                await run.Pool.RemovePoolOtherConfigAsync(PoolLock.HeartbeatKey, ct);
                await run.Pool.TryAddPoolOtherConfigAsync(PoolLock.HeartbeatKey, value, ct);
            }, null, cancellationToken);
        }
        finally
        {
            run.LockGate.Release();
        }
    }

    public static StepResult RecordOriginals(RunContext run, PoolSnapshot pool)
    {
        if (run.State.Original is null)
        {
            run.Executor.Record(RunState.Record(pool, run.Cloud?.Cluster.ManagedState));
        }

        return Continue;
    }

    public static async Task<StepResult> DisableHaAsync(RunContext run, PoolSnapshot pool, CancellationToken cancellationToken)
    {
        if (!pool.Ha.Enabled)
        {
            return Continue;
        }

        // Bounded from the work (xapi stops the HA daemon on every host): past it the task is cancelled and HA re-read.
        var bound = run.Options.HaBound(pool.Hosts.Count);
        using var timer = new CancellationTokenSource(bound, run.Clock);
        using var transition = CancellationTokenSource.CreateLinkedTokenSource(cancellationToken, timer.Token);
        try
        {
            await run.Executor.DoOnceAsync(new HaDisableIntended(), run.Pool.DisableHaAsync, new HaDisabled(), transition.Token);
        }
        catch (Exception e) when (e is Ports.PoolOperationException || e is OperationCanceledException && !cancellationToken.IsCancellationRequested)
        {
            // The call failed or its reply was lost: what matters is whether HA is off now. The intent is journaled
            // either way, so the restore puts HA back whatever happened.
            var now = await run.Executor.ReadAsync(run.Pool.ReadAsync, cancellationToken);
            if (now.Ha.Enabled)
            {
                return new Stop($"HA could not be disabled ({(e as Ports.PoolOperationException)?.Code ?? $"no answer within {Planning.Units.Duration(bound.TotalSeconds)}"}); nothing else was changed");
            }

            run.Log.Warn("pool.disable_ha reported {Error}, but HA is off: going on", (e as Ports.PoolOperationException)?.Code ?? e.GetType().Name);
            run.Executor.Record(new HaDisabled());
        }

        run.Log.Info("HA disabled for the run (timeout {Timeout} s, heartbeat SRs {Srs}, tolerate {Ntol} recorded)", pool.Ha.TimeoutSeconds, pool.Ha.HeartbeatSrUuids.Count, pool.Ha.HostFailuresToTolerate);
        return Continue;
    }

    /// <summary>Key of pool.other_config read by xen-api scripts/xapi-autostart-vms at every host boot.</summary>
    public const string AutoPowerOnKey = "auto_poweron";

    /// <summary>
    /// With pool.other_config:auto_poweron "true", each host's boot starts every halted VM marked auto_poweron (xen-api
    /// scripts/xapi-autostart-vms), in the middle of the run and into the room the plan counted on: off for the run,
    /// put back by the restore (Xen Orchestra does the same, xo-server pool.mjs rollingReboot).
    /// </summary>
    public static async Task<StepResult> DisableAutoPowerOnAsync(RunContext run, PoolSnapshot pool, CancellationToken cancellationToken)
    {
        if (pool.OtherConfig.GetValueOrDefault(AutoPowerOnKey) is not { } value || !value.Equals("true", StringComparison.OrdinalIgnoreCase))
        {
            return Continue;
        }

        await run.Executor.DoAsync(new AutoPowerOnOffIntended(value), ct => SetPoolOtherConfigAsync(run, AutoPowerOnKey, "false", ct), new AutoPowerOnOff(), cancellationToken);
        run.Log.Info("pool auto_poweron off for the run (booted hosts would start halted VMs); put back at the end");
        return Continue;
    }

    /// <summary>Sets a key of pool.other_config (remove, then add: XAPI has no update of one key).</summary>
    public static async Task SetPoolOtherConfigAsync(RunContext run, string key, string value, CancellationToken cancellationToken)
    {
        await run.Pool.RemovePoolOtherConfigAsync(key, cancellationToken);
        if (!await run.Pool.TryAddPoolOtherConfigAsync(key, value, cancellationToken))
        {
            // Someone set it between the two calls; ours is the value the run needs.
            await run.Pool.RemovePoolOtherConfigAsync(key, cancellationToken);
            await run.Pool.TryAddPoolOtherConfigAsync(key, value, cancellationToken);
        }
    }

    /// <summary>How long a PrepareUnmanaged cluster is given to end on its own: ResourceManagerImpl polls 40 × 5 s, then writes Unmanaged or PrepareUnmanagedError.</summary>
    internal static readonly TimeSpan PrepareUnmanagedWait = TimeSpan.FromMinutes(5);

    /// <summary>
    /// CloudStack Unmanaged for the run. Managed, PrepareUnmanagedError and a PrepareUnmanaged that does not end are not
    /// unmanaged: the hosts that never disconnected are still pinged, and a reboot would send them to Alert and CloudStack's
    /// HA. updateCluster managedstate=Unmanaged is sent (ResourceManagerImpl.updateCluster accepts it from any of them: the
    /// old state differs from the new), and the run goes on only once the cluster reads Unmanaged.
    /// </summary>
    public static async Task<StepResult> UnmanageClusterAsync(RunContext run, CancellationToken cancellationToken)
    {
        if (run.Cloud is not { } cloud)
        {
            return Continue;
        }

        var current = (await cloud.Api.GetClusterAsync(cloud.Cluster.Id, cancellationToken)).ManagedState;
        if (current == CloudStackStates.PrepareUnmanaged)
        {
            run.Log.Warn("CloudStack cluster {Cluster} is PrepareUnmanaged (an unmanage under way, or cut off): waiting up to {Wait} for it to end", cloud.Cluster.Name, PrepareUnmanagedWait);
            var deadline = run.Clock.GetUtcNow() + PrepareUnmanagedWait;
            while (current == CloudStackStates.PrepareUnmanaged && run.Clock.GetUtcNow() < deadline)
            {
                await Task.Delay(TimeSpan.FromSeconds(10), run.Clock, cancellationToken);
                current = (await cloud.Api.GetClusterAsync(cloud.Cluster.Id, cancellationToken)).ManagedState;
            }

            if (current == CloudStackStates.PrepareUnmanaged)
            {
                run.Log.Warn("CloudStack cluster {Cluster} is still PrepareUnmanaged: asking for Unmanaged again", cloud.Cluster.Name);
            }
        }

        if (current == CloudStackStates.Unmanaged)
        {
            return Continue;
        }

        if (current == CloudStackStates.PrepareUnmanagedError)
        {
            run.Log.Warn("CloudStack cluster {Cluster} is PrepareUnmanagedError (an earlier unmanage did not finish): asking for Unmanaged again", cloud.Cluster.Name);
        }

        string state;
        try
        {
            state = await run.Executor.DoOnceAsync(
                new UnmanageIntended(cloud.Cluster.Id),
                ct => cloud.Api.SetManagedStateAsync(cloud.Cluster.Id, managed: false, ct),
                s => s == CloudStackStates.Unmanaged ? new Unmanaged() : null,
                cancellationToken);
        }
        catch (Ports.CloudStackException e)
        {
            return new Stop($"CloudStack could not unmanage cluster {cloud.Cluster.Name}: {e.ErrorText}");
        }

        if (state != CloudStackStates.Unmanaged)
        {
            return new Stop($"CloudStack left cluster {cloud.Cluster.Name} {state} instead of Unmanaged");
        }

        run.Log.Info("CloudStack cluster {Cluster} is Unmanaged for the run", cloud.Cluster.Name);
        return Continue;
    }
}
