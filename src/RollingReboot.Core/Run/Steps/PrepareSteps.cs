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
    /// <summary>Takes the pool's lock (an atomic add to pool.other_config), or finds it already ours (resume).</summary>
    public static async Task<StepResult> AcquireLockAsync(RunContext run, PoolSnapshot pool, CancellationToken cancellationToken)
    {
        var state = run.State;
        if (state.Lock != ChangeState.None && pool.OtherConfig.GetValueOrDefault(PoolLock.Key) is { } held && PoolLock.Parse(held).IsHeldBy(run.RunId))
        {
            // Ours already (a killed run wrote it, maybe without knowing): recognised by run id, not refused.
            if (state.Lock == ChangeState.Intended)
            {
                run.Executor.Record(new LockAcquired(PoolLock.Key));
            }

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
            var current = (await run.Executor.ReadAsync(run.Pool.ReadAsync, cancellationToken)).OtherConfig.GetValueOrDefault(PoolLock.Key) ?? "";
            var owner = PoolLock.Parse(current);
            if (owner.IsHeldBy(run.RunId))
            {
                // The add was taken but its reply lost: it is ours.
                run.Executor.Record(new LockAcquired(PoolLock.Key));
                return Continue;
            }

            // Not ours: the intent is void (restore must not touch another run's lock).
            run.Executor.Record(new LockReleased());
            if (!run.Options.BreakLock)
            {
                var why = owner.IsExpired(run.Clock)
                    ? $"pool {pool.Name} holds a stale lock from {owner.Owner}; if that run is dead, run again with --break-lock (or 'rollreboot restore' to undo its changes)"
                    : $"pool {pool.Name} is locked by another run: {owner.Owner}; wait for it to finish (a second run must never touch the pool)";
                run.Log.Error("Run stopped: {Reason}", why);
                return new Blocked(why);
            }

            run.Log.Warn("Breaking the lock held by {Owner}, as asked with --break-lock", owner.Owner);
            await run.Executor.DoAsync(null, ct => run.Pool.RemovePoolOtherConfigAsync(PoolLock.Key, ct), null, cancellationToken);
            added = await run.Executor.DoOnceAsync(
                new LockIntended(value),
                ct => run.Pool.TryAddPoolOtherConfigAsync(PoolLock.Key, value, ct),
                ok => ok ? new LockAcquired(PoolLock.Key) : new LockReleased(),
                cancellationToken);
            if (!added)
            {
                run.Log.Error("Run stopped: {Reason}", $"another run took the lock of pool {pool.Name} while it was being broken");
                return new Blocked($"another run took the lock of pool {pool.Name} while it was being broken");
            }
        }

        run.Log.Info("Locked pool {Pool} for run {RunId}", pool.Name, run.RunId);
        return Continue;
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

        await run.Executor.DoAsync(new HaDisableIntended(), run.Pool.DisableHaAsync, new HaDisabled(), cancellationToken);
        run.Log.Info("HA disabled for the run (timeout {Timeout} s, heartbeat SRs {Srs}, tolerate {Ntol} recorded)", pool.Ha.TimeoutSeconds, pool.Ha.HeartbeatSrUuids.Count, pool.Ha.HostFailuresToTolerate);
        return Continue;
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
