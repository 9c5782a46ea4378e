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
/// Just over 400 lines on purpose: every undo in one file, in the order they run, so what the restore does is read at once.
/// </summary>
public static class Restorer
{
    /// <summary>False when something needs an operator.</summary>
    public static async Task<bool> RestoreAsync(RunContext run, CancellationToken cancellationToken)
    {
        var ok = true;
        var snapshot = await TryReadAsync(run, cancellationToken);
        ok &= await RestoreHostsAsync(run, snapshot, cancellationToken);
        if (!run.State.VmsShutDown.IsEmpty)
        {
            ok &= await StartShutDownVmsAsync(run, cancellationToken);
        }
        ok &= await ClearMarkersAsync(run, cancellationToken);
        if (run.State.HaOff != ChangeState.None && run.State.Original is { } original)
        {
            ok &= await RestoreHaAsync(run, original.Ha, cancellationToken);
        }

        if (run.State.AutoPowerOnOff != ChangeState.None)
        {
            ok &= await RestoreAutoPowerOnAsync(run, cancellationToken);
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

    /// <summary>
    /// --shutdown-pinned-vms: every VM the run shut down (or was about to) and did not start again is started on its host,
    /// once hosts are put back and before HA and CloudStack, so CloudStack finds it Running when it manages the cluster
    /// again. A host not live, or a start XAPI refuses, leaves an operator action naming the VM and the command.
    /// </summary>
    private static async Task<bool> StartShutDownVmsAsync(RunContext run, CancellationToken cancellationToken)
    {
        var snapshot = await TryReadAsync(run, cancellationToken);
        var ok = true;
        foreach (var v in run.State.VmsShutDown.Values.OrderBy(v => v.Name, StringComparer.Ordinal).ToList())
        {
            var host = snapshot?.FindHost(v.Host);
            if (snapshot is null || host is not { Live: true, Enabled: true })
            {
                ok = false;
                run.OperatorAction(Steps.PinnedVms.StartCommand(v, host?.Name) + (host is null ? "" : $" once {host.Name} is back and enabled"));
                continue;
            }

            try
            {
                if (await Steps.PinnedVms.StartOneAsync(run, snapshot, v, cancellationToken) is { } failed)
                {
                    ok = false;
                    run.OperatorAction(Steps.PinnedVms.StartCommand(v, host.Name) + $" (XAPI refused: {failed})");
                }
                else
                {
                    run.Restored.Add($"VM {v.Name ?? v.Vm} running again on {host.Name}");
                }
            }
            catch (PoolOperationException e)
            {
                ok = false;
                run.OperatorAction(Steps.PinnedVms.StartCommand(v, host.Name) + $" ({e.Code})");
            }
        }

        return ok;
    }

    /// <summary>An evacuation that did not finish leaves no marker behind (its host was enabled again above).</summary>
    private static async Task<bool> ClearMarkersAsync(RunContext run, CancellationToken cancellationToken)
    {
        var ok = true;
        foreach (var (host, key) in run.State.Markers.Where(m => run.State.Host(m.Key).Phase != HostPhase.LeftEvacuated).ToList())
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
                // Bounded from the work (every host's HA daemon starts); past it the task is cancelled and HA re-read.
                var haBound = run.Options.HaBound(snapshot.Hosts.Count);
                using (var timer = new CancellationTokenSource(haBound, run.Clock))
                using (var transition = CancellationTokenSource.CreateLinkedTokenSource(cancellationToken, timer.Token))
                {
                    try
                    {
                        await run.Executor.DoOnceAsync(new HaEnableIntended(ha.Configuration, ha.HeartbeatSrUuids), enableHa, null, transition.Token);
                    }
                    catch (OperationCanceledException) when (!cancellationToken.IsCancellationRequested)
                    {
                        if (!(await run.Executor.ReadAsync(run.Pool.ReadAsync, cancellationToken)).Ha.Enabled)
                        {
                            run.OperatorAction($"HA could not be re-enabled: pool.enable_ha did not finish within {Planning.Units.Duration(haBound.TotalSeconds)} (its task was cancelled); run: {command}");
                            return false;
                        }

                        run.Log.Warn("pool.enable_ha did not answer within {Bound}, but HA is on: going on", Planning.Units.Duration(haBound.TotalSeconds));
                    }
                }

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

    private static async Task<bool> RestoreAutoPowerOnAsync(RunContext run, CancellationToken cancellationToken)
    {
        var original = run.State.Original?.AutoPowerOn ?? "true";
        try
        {
            var current = (await run.Executor.ReadAsync(run.Pool.ReadAsync, cancellationToken)).OtherConfig.GetValueOrDefault(PrepareSteps.AutoPowerOnKey);
            await run.Executor.DoAsync(null,
                current == original ? _ => Task.CompletedTask : ct => PrepareSteps.SetPoolOtherConfigAsync(run, PrepareSteps.AutoPowerOnKey, original, ct),
                new AutoPowerOnRestored(), cancellationToken);
            run.Restored.Add($"pool auto_poweron back to {original}");
            return true;
        }
        catch (PoolOperationException e)
        {
            run.OperatorAction($"put pool auto_poweron back: 'xe pool-param-set uuid={run.State.PoolUuid} other-config:auto_poweron={original}' ({e.Code})");
            return false;
        }
    }

    /// <summary>How often CloudStack's hosts are read while it reconnects them: one listHosts of the cluster (a database
    /// read on the management server), often enough that the run ends within a couple of seconds of the last host Up.</summary>
    private static readonly TimeSpan s_reconnectPoll = TimeSpan.FromSeconds(2);

    /// <summary>
    /// CloudStack Managed again, and its hosts Up. updateCluster managedstate=Managed only writes the state: the hosts come
    /// back when the direct-agent scan (direct.agent.scan.interval, 90 s by default) loads them, Disconnected, Connecting,
    /// Up, one at a time per pool, typically 1.5 to 4 minutes; the wait is bounded by <see cref="RunOptions.ReconnectBound"/> (from the cluster's host count)
    /// and its progress logged. XenServerConnectionPool.connect refuses a host XAPI shows disabled (Alert), and every host of
    /// a pool whose master is disabled: those are said before Managed, not waited for, and left as operator actions. Once
    /// the hosts are Up, CloudStack's VM list is compared with XAPI's once.
    /// </summary>
    private static async Task<bool> RestoreCloudStackAsync(RunContext run, CancellationToken cancellationToken)
    {
        var cloud = run.Cloud!;
        var pool = await TryReadAsync(run, cancellationToken);
        if (pool?.Hosts.FirstOrDefault(h => !h.Live) is { } down)
        {
            // Managed with a host down, CloudStack would mark it Alert and start its own recovery: keep hands off.
            run.OperatorAction($"CloudStack cluster {cloud.Cluster.Name} left Unmanaged because host {down.Name} is down; once it is back: 'cmk update cluster id={cloud.Cluster.Id} managedstate=Managed' (or 'rollreboot restore --clustername {cloud.Cluster.Name}')");
            return false;
        }

        var disabled = pool?.Hosts.Where(h => !h.Enabled).ToList() ?? [];
        var master = pool?.Hosts.FirstOrDefault(h => h.Uuid == pool.MasterUuid);
        foreach (var h in disabled)
        {
            run.Log.Warn(h.Uuid == master?.Uuid
                ? "Pool master {Host} is disabled in XAPI: once Managed, CloudStack cannot connect any host of the pool (they go Alert) until 'xe host-enable host={Host}'"
                : "Host {Host} is disabled in XAPI: once Managed, CloudStack cannot connect it (it goes Alert) until 'xe host-enable host={Host}'", h.Name, h.Name);
        }

        try
        {
            var current = (await cloud.Api.GetClusterAsync(cloud.Cluster.Id, cancellationToken)).ManagedState;
            var state = current == CloudStackStates.Managed
                ? current
                : await run.Executor.DoOnceAsync(new ManageIntended(cloud.Cluster.Id), ct => cloud.Api.SetManagedStateAsync(cloud.Cluster.Id, managed: true, ct), _ => null, cancellationToken);
            if (state != CloudStackStates.Managed)
            {
                throw new CloudStackException(0, 0, $"cluster is {state} after updateCluster managedstate=Managed");
            }

            run.Executor.Record(new Managed());
            var since = run.Clock.GetUtcNow();
            if (master is { Enabled: false })
            {
                run.OperatorAction($"CloudStack cluster {cloud.Cluster.Name} is Managed, but pool master {master.Name} is disabled in XAPI, so CloudStack connects no host of the pool (\"Unable to create master connection, due to master Host {master.Address} is not enabled\") and shows them Alert: run 'xe host-enable host={master.Name}' once it should take VMs; CloudStack connects the pool at its next agent scan (every 90 s by default)");
                return false;
            }

            bool IsDisabled(CloudStackHost h) => disabled.Any(d => d.Name.Equals(h.Name, StringComparison.OrdinalIgnoreCase) || d.Address == h.IpAddress);
            var bound = run.Options.ReconnectBound(Math.Max(run.State.Hosts.Count, run.LastSnapshot?.Hosts.Count ?? 0));
            var deadline = since + bound;
            var seen = "";
            while (true)
            {
                var hosts = await cloud.Api.ListHostsAsync(cloud.Cluster.Id, cancellationToken);
                var waiting = hosts.Where(h => h.State != CloudStackStates.Up && !IsDisabled(h)).ToList();
                var elapsed = run.Clock.GetUtcNow() - since;
                var states = string.Join(", ", hosts.Where(h => h.State != CloudStackStates.Up).Select(h => $"{h.Name} {h.State}"));
                if (states != seen && waiting.Count > 0)
                {
                    seen = states;
                    run.Log.Info("CloudStack reconnecting cluster {Cluster}: {Up} of {Count} hosts Up after {Elapsed} ({States})", cloud.Cluster.Name,
                        hosts.Count(h => h.State == CloudStackStates.Up), hosts.Count, Planning.Units.Duration(elapsed.TotalSeconds), states);
                }

                if (waiting.Count == 0)
                {
                    var up = hosts.Count(h => h.State == CloudStackStates.Up);
                    run.Restored.Add($"CloudStack cluster {cloud.Cluster.Name} Managed, {(up == hosts.Count ? $"all {hosts.Count}" : $"{up} of {hosts.Count}")} hosts Up after {Planning.Units.Duration(elapsed.TotalSeconds)}");
                    var ok = true;
                    foreach (var h in hosts.Where(h => h.State != CloudStackStates.Up))
                    {
                        var refused = $"host {h.Name} is disabled in XAPI, so CloudStack cannot connect it (\"Cannot connect this host {h.IpAddress} due to the host is not enabled\") and shows it {h.State}";
                        var d = disabled.FirstOrDefault(d => d.Name.Equals(h.Name, StringComparison.OrdinalIgnoreCase) || d.Address == h.IpAddress);
                        // What enables it: xe host-enable, or, while XAPI refuses that (pending mandatory guidance), applying the guidance.
                        var fix = d is { EnableRefused: true } ? HostEnabling.ApplyFix(d) : $"'xe host-enable host={h.Name}'";
                        if (d is not null && run.State.Host(d.Uuid).Phase == HostPhase.LeftEvacuated)
                        {
                            // Out for maintenance by design ('rollreboot evacuate'): expected until 'rollreboot return' enables it.
                            run.Notes.Add($"{refused} while it is out for maintenance; 'rollreboot return' enables it, and CloudStack connects it at a later agent scan");
                        }
                        else if (d is not null && !run.State.WasEnabled(d.Uuid))
                        {
                            // Disabled before the run and left so, as the operator had it: said, not a failure of the restore.
                            run.Notes.Add($"{refused}, as it was disabled before the run; once it should take VMs: {fix}; CloudStack connects it at a later agent scan");
                        }
                        else
                        {
                            ok = false;
                            run.OperatorAction($"{refused}: once it should take VMs, {fix}; CloudStack connects it at a later agent scan");
                        }
                    }

                    await CompareVmsAsync(run, cloud, cancellationToken);
                    return ok;
                }

                if (run.Clock.GetUtcNow() >= deadline)
                {
                    run.OperatorAction($"CloudStack cluster {cloud.Cluster.Name} is Managed but host(s) {string.Join(", ", waiting.Select(h => h.Name + " " + h.State))} are not Up after {Planning.Units.Duration(bound.TotalSeconds)} (CloudStack loads hosts at its agent scan, every 90 s by default): check them in CloudStack (cmk list hosts clusterid={cloud.Cluster.Id}) and the management server log");
                    return false;
                }

                await Task.Delay(s_reconnectPoll, run.Clock, cancellationToken);
            }
        }
        catch (CloudStackException e)
        {
            run.OperatorAction($"set CloudStack cluster {cloud.Cluster.Name} back to Managed: 'cmk update cluster id={cloud.Cluster.Id} managedstate=Managed' ({e.ErrorText})");
            return false;
        }
    }

    /// <summary>
    /// One look at CloudStack's VMs after re-manage: where it shows a VM on another host than XAPI runs it on, or not running
    /// while XAPI runs it. Reported only: reconnected hosts report their VMs and CloudStack's power-state sync follows
    /// out-of-band migrations itself ("Detected out of band VM migration"), but a difference that stays needs a look.
    /// </summary>
    private static async Task CompareVmsAsync(RunContext run, ClusterBinding cloud, CancellationToken cancellationToken)
    {
        var pool = await TryReadAsync(run, cancellationToken);
        if (pool is null)
        {
            return;
        }

        IReadOnlyList<CloudStackVm> vms;
        try
        {
            vms = await cloud.Api.ListVirtualMachinesAsync(cloud.Cluster.Id, cancellationToken);
        }
        catch (CloudStackException e)
        {
            run.Notes.Add($"CloudStack's VM list could not be compared with XAPI's ({e.ErrorText})");
            return;
        }

        var hostName = pool.Hosts.ToDictionary(h => h.Uuid, h => h.Name, StringComparer.Ordinal);
        var xapi = pool.Vms.Where(v => v.IsRunningGuest && v.ResidentOnUuid is not null && hostName.ContainsKey(v.ResidentOnUuid))
            .GroupBy(v => v.Name, StringComparer.Ordinal)
            .ToDictionary(g => g.Key, g => hostName[g.First().ResidentOnUuid!], StringComparer.Ordinal);
        var differences = new List<string>();
        foreach (var vm in vms.OrderBy(v => v.InstanceName, StringComparer.Ordinal))
        {
            var where = xapi.GetValueOrDefault(vm.InstanceName);
            if (where is null)
            {
                differences.Add($"CloudStack shows VM {vm.InstanceName} {vm.State} on {vm.HostName}, XAPI does not run it in this pool");
            }
            else if (!string.Equals(where, vm.HostName, StringComparison.OrdinalIgnoreCase))
            {
                differences.Add($"CloudStack shows VM {vm.InstanceName} on {vm.HostName}, XAPI runs it on {where}");
            }
            else if (vm.State != "Running")
            {
                differences.Add($"CloudStack shows VM {vm.InstanceName} {vm.State}, XAPI runs it on {where}");
            }
        }

        var listed = vms.Select(v => v.InstanceName).ToHashSet(StringComparer.Ordinal);
        foreach (var (name, host) in xapi.Where(kv => kv.Key.StartsWith("i-", StringComparison.Ordinal) && !listed.Contains(kv.Key)).OrderBy(kv => kv.Key, StringComparer.Ordinal))
        {
            differences.Add($"XAPI runs VM {name} on {host}, CloudStack does not list it on this cluster's hosts");
        }

        if (differences.Count == 0)
        {
            run.Log.Info("CloudStack shows the cluster's {Count} VM(s) where XAPI runs them", vms.Count);
            return;
        }

        run.Log.Warn("CloudStack's view of {Count} VM(s) differs from XAPI's after re-manage: {Differences}", differences.Count, string.Join("; ", differences));
        foreach (var d in differences)
        {
            run.Notes.Add(d + " (CloudStack follows the VM at its next power-state sync; if it stays, check the VM in CloudStack)");
        }
    }

    /// <summary>Removes the lock only if it is this run's (a lock that was only intended may never have been written).</summary>
    private static async Task<bool> ReleaseLockAsync(RunContext run, CancellationToken cancellationToken)
    {
        // Said before waiting for the gate: no heartbeat starts once the release is under way.
        run.LockReleasing = true;
        await run.LockGate.WaitAsync(cancellationToken);
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
