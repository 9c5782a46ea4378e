using System.Globalization;
using RollingReboot.Core.Planning;
using RollingReboot.Core.Pool;
using RollingReboot.Core.Ports;
using RollingReboot.Core.Run.Engine;
using RollingReboot.Core.Run.Journal;
using static RollingReboot.Core.Run.Engine.StepResult;

namespace RollingReboot.Core.Run.Steps;

/// <summary>
/// --apply-updates: the pool's updates installed host by host, master first, and only what they ask for done after.
/// A host whose updates ask for a reboot (or an evacuation) is installed while it is empty and disabled, inside its
/// reboot (<see cref="ApplyWhileEmptyAsync"/>). A host whose updates ask for a toolstack restart at most is installed in
/// place (<see cref="InPlaceAsync"/>): disabled, installed, host.restart_agent when asked, enabled as it was. Every
/// installation is journaled before it is asked; a resumed run waits for one still running, reads the host's updates
/// again and installs only what is still missing. xen-api: ocaml/xapi/xapi_host.ml apply_updates (HA must be off, the
/// host disabled), ocaml/xapi/repository.ml apply_updates (hash, guidance, HOST_EVACUATION_IS_REQUIRED); XCP-ng:
/// xcp-ng-xapi-plugins SOURCES/etc/xapi.d/plugins/updater.py; Xen Orchestra xo-server src/xapi/mixins/patching.mjs
/// (_xcpUpdate: master first, one host at a time, rpm_patch_installation_time written after).
/// </summary>
public static class UpdateSteps
{
    /// <summary>The error xapi raises when a host must be evacuated before its updates (repository_helpers.ml
    /// assert_host_evacuation_if_required).</summary>
    public const string EvacuationRequired = "HOST_EVACUATION_IS_REQUIRED";

    /// <summary>The repository was synced again since the hash was read (repository.ml apply_updates).</summary>
    public const string HashMismatch = "UPDATEINFO_HASH_MISMATCH";

    private static IPoolUpdates Source(RunContext run) =>
        run.Pool.Updates ?? throw new InvalidOperationException("--apply-updates needs a pool connection that can install updates");

    /// <summary>A fresh --exec: the repository synced (pool.sync_updates) before the plan reads what there is to install.</summary>
    public static async Task SyncAsync(RunContext run, CancellationToken abort)
    {
        run.Log.Info("Syncing the pool's update repository (pool.sync_updates)");
        // Bounded like an installation, and asked once: a sync that does not answer in time ends the run before anything changed.
        var hash = await run.Executor.DoOnceAsync<string>(null, ct => WithinAsync(run, run.Options.UpdateTimeout, Source(run).SyncAsync, ct), _ => null, abort);
        run.Executor.Record(new UpdatesSynced(hash));
    }

    /// <summary>The update plan, decided once (the first preflight's list); a resumed run keeps what the first decided.</summary>
    public static IReadOnlyDictionary<string, string>? Decide(RunContext run, PoolSnapshot pool)
    {
        var previous = run.State.Decisions?.Updates;
        if (pool.Updates is null)
        {
            return previous;
        }

        var decided = new Dictionary<string, string>(previous ?? new Dictionary<string, string>(), StringComparer.Ordinal);
        foreach (var p in UpdatePlanning.Decide(pool))
        {
            if (!decided.ContainsKey(p.HostUuid))
            {
                decided[p.HostUuid] = p.Action.ToString();
                run.Log.Info("{Host}: {Updates}: {Action} ({Why})", p.HostName, Count(p.Updates), UpdatePlanning.Describe(p.Action), p.Why);
            }
        }

        return decided;
    }

    private static string Count(HostUpdates u) => u.Updates.Count > 0
        ? string.Create(CultureInfo.InvariantCulture, $"{u.Updates.Count} update(s)")
        : string.Create(CultureInfo.InvariantCulture, $"{u.Packages.Count} package(s)");

    /// <summary>
    /// A resumed run: installations the dead run asked for are waited for and looked at before anything else, so the
    /// hosts they left disabled are put back, planned and finished from what the pool says now.
    /// </summary>
    public static async Task<StepResult> FinishInFlightAsync(RunContext run, CancellationToken abort)
    {
        foreach (var u in run.State.UpdatesInFlight.Values.OrderBy(u => u.Host, StringComparer.Ordinal).ToList())
        {
            var host = await run.Executor.ReadAsync(ct => run.Pool.ReadHostAsync(u.Host, ct), abort);
            var settled = await SettleAsync(run, host, abort);
            if (!settled.IsContinue)
            {
                return settled;
            }
        }

        return Continue;
    }

    /// <summary>
    /// An installation asked for whose end was not seen: wait (bounded) until none runs on the host, read its updates
    /// again; none left: installed (journaled as applied); some left: not installed (journaled as failed, so it is
    /// asked again at its place in the run).
    /// </summary>
    private static async Task<StepResult> SettleAsync(RunContext run, HostState host, CancellationToken abort)
    {
        var src = Source(run);
        var deadline = run.Clock.GetUtcNow() + run.Options.UpdateTimeout;
        run.Log.Info("{Host}: its updates were being installed when the previous run stopped; waiting for that installation to end", host.Name);
        while (await run.Executor.ReadAsync(ct => src.IsApplyingAsync(host.Uuid, ct), abort))
        {
            if (run.Clock.GetUtcNow() >= deadline)
            {
                return new Pause($"{host.Name} is still installing updates after {Units.Duration(run.Options.UpdateTimeout.TotalSeconds)}; nothing more was done to it: look at its update (xe task-list), then 'rollreboot resume --clustername {run.ClusterLabel}'");
            }

            await Task.Delay(TimeSpan.FromSeconds(10), run.Clock, abort);
        }

        var now = await run.Executor.ReadAsync(ct => src.ReadAsync([host.Uuid], ct), abort);
        Merge(run, now);
        if (now.For(host.Uuid).Any)
        {
            run.Log.Warn("{Host}: the interrupted installation did not complete ({Left} still to install); it is installed again at its place in the run", host.Name, Count(now.For(host.Uuid)));
            run.Executor.Record(new UpdateFailed(host.Uuid, "interrupted"));
            return Continue;
        }

        await AppliedAsync(run, host, now.IsXcpNg, new UpdateApplyResult([]), abort);
        run.Log.Info("{Host}: the interrupted installation completed; not installed again", host.Name);
        return Continue;
    }

    /// <summary>The call cancelled after <paramref name="bound"/> on the run's clock; the executor reports that as TIMEOUT.</summary>
    private static async Task<T> WithinAsync<T>(RunContext run, TimeSpan bound, Func<CancellationToken, Task<T>> call, CancellationToken cancellationToken)
    {
        using var timeout = new CancellationTokenSource(bound, run.Clock);
        using var linked = CancellationTokenSource.CreateLinkedTokenSource(cancellationToken, timeout.Token);
        return await call(linked.Token);
    }

    private static async Task WithinAsync(RunContext run, TimeSpan bound, Func<CancellationToken, Task> call, CancellationToken cancellationToken) =>
        await WithinAsync<bool>(run, bound, async ct =>
        {
            await call(ct);
            return true;
        }, cancellationToken);

    private static void Merge(RunContext run, PoolUpdates now)
    {
        var hosts = new Dictionary<string, HostUpdates>(run.Updates?.Hosts ?? new Dictionary<string, HostUpdates>(), StringComparer.Ordinal);
        foreach (var (k, v) in now.Hosts)
        {
            hosts[k] = v;
        }

        run.Updates = new PoolUpdates(now.Hash, now.IsXcpNg, hosts) { Summaries = run.Updates?.Summaries ?? now.Summaries };
    }

    /// <summary>In the reboot pipeline: the host is empty and disabled; its updates are installed before its reboot.</summary>
    public static async Task<StepResult> ApplyWhileEmptyAsync(RunContext run, HostRun h, CancellationToken stop, CancellationToken abort)
    {
        if (!run.ApplyUpdates || run.State.UpdatesApplied.Contains(h.Host.Uuid))
        {
            return Continue;
        }

        // The last moment a Ctrl-C leaves the host as it was (VMs moved, nothing installed).
        stop.ThrowIfCancellationRequested();
        var result = await ApplyAsync(run, h.Host, abort);
        if (result is EvacuationNeeded)
        {
            // Verified empty a moment ago: something started on it since.
            result = new Stop($"xapi says {h.Host.Name} must be evacuated before its updates ({EvacuationRequired}), though it was emptied; not updated, not rebooted");
        }

        if (result is Stop or Pause)
        {
            var phase = await HostPipeline.PutBackAsync(run, h.Host, "not updated, not rebooted", abort);
            run.Log.HostPhase(h.Host.Name, phase);
            return result;
        }

        return result;
    }

    /// <summary>Installs the host's updates (journaled); Stop when they fail, naming the host.</summary>
    internal static async Task<StepResult> ApplyAsync(RunContext run, HostState host, CancellationToken abort)
    {
        var src = Source(run);
        if (run.State.UpdatesInFlight.ContainsKey(host.Uuid))
        {
            var settled = await SettleAsync(run, host, abort);
            if (!settled.IsContinue || run.State.UpdatesApplied.Contains(host.Uuid))
            {
                return settled;
            }
        }

        var updates = run.Updates?.For(host.Uuid);
        if (updates is null || !updates.Any)
        {
            return Continue;
        }

        var hash = run.Updates!.Hash;
        var ids = updates.Updates.Count > 0 ? updates.Updates : updates.Packages;
        run.Log.HostPhase(host.Name, $"installing {Count(updates)}: {string.Join(", ", ids.Take(8))}{(ids.Count > 8 ? ", ..." : "")}");
        UpdateApplyResult result;
        try
        {
            using var bound = new CancellationTokenSource(run.Options.UpdateTimeout, run.Clock);
            using var linked = CancellationTokenSource.CreateLinkedTokenSource(abort, bound.Token);
            try
            {
                result = await run.Executor.DoOnceAsync(new UpdateIntended(host.Uuid, host.Name, hash, ids), ct => src.ApplyAsync(host.Uuid, hash, ct), _ => null, linked.Token);
            }
            catch (OperationCanceledException) when (bound.IsCancellationRequested && !abort.IsCancellationRequested)
            {
                return new Pause($"{host.Name} did not finish installing its updates within {Units.Duration(run.Options.UpdateTimeout.TotalSeconds)}; it was not rebooted: look at its update (xe task-list), then 'rollreboot resume --clustername {run.ClusterLabel}', which waits for the installation and never installs twice");
            }
        }
        catch (PoolOperationException e) when (e.IsTransient)
        {
            // No answer: whether it was installed is read from the pool, never guessed.
            var settled = await SettleAsync(run, host, abort);
            if (!settled.IsContinue || run.State.UpdatesApplied.Contains(host.Uuid))
            {
                return settled;
            }

            return new Pause($"installing the updates of {host.Name} got no answer and they are not installed; 'rollreboot resume --clustername {run.ClusterLabel}' installs them");
        }
        catch (PoolOperationException e) when (e.Code == EvacuationRequired)
        {
            run.Executor.Record(new UpdateFailed(host.Uuid, e.Code));
            return new EvacuationNeeded(host.Name);
        }
        catch (PoolOperationException e)
        {
            run.Executor.Record(new UpdateFailed(host.Uuid, e.Code));
            var detail = e.Parameters.Count > 0 ? $" ({string.Join(", ", e.Parameters.Take(2))})" : "";
            var what = e.Code == HashMismatch
                ? "the pool's update repository was synced again since the plan was made"
                : $"XAPI answered {e.Code}{detail}";
            run.Log.Error("{Host}: installing its updates failed: {What}", host.Name, what);
            run.Notify("host.update.failed", $"{host.Name} of {run.ClusterLabel}: installing its updates failed ({e.Code}); the run stops", host.Name);
            // A safe point: the host is put back, the run restored and resumable once the cause is fixed.
            return new Pause($"installing the updates of {host.Name} failed: {what}; {host.Name} was not rebooted, the run stopped there: look at why ({e.Code}; /var/log/xensource.log, /var/log/yum.log on the host), fix it, then 'rollreboot resume --clustername {run.ClusterLabel}' installs them again");
        }

        await AppliedAsync(run, host, run.Updates.IsXcpNg, result, abort);
        lock (run.Notes)
        {
            run.Notes.Add($"{host.Name}: installed {string.Join(", ", ids)}{(result.FailedLivepatches.Count > 0 ? string.Create(CultureInfo.InvariantCulture, $" ({result.FailedLivepatches.Count} livepatch(es) failed: rebooted instead)") : "")}");
        }

        return Continue;
    }

    private static async Task AppliedAsync(RunContext run, HostState host, bool xcpNg, UpdateApplyResult result, CancellationToken abort)
    {
        if (xcpNg)
        {
            // What Xen Orchestra writes after its update (patching.mjs _xcpUpdate), and what tells a reboot is due.
            await run.Executor.DoAsync(null, ct => Source(run).MarkPatchedAsync(host.Uuid, ct), null, abort);
        }

        var after = await run.Executor.ReadAsync(ct => run.Pool.ReadHostAsync(host.Uuid, ct), abort);
        var left = after.PendingGuidances.Concat(after.PendingGuidancesRecommended).Distinct(StringComparer.Ordinal).Order(StringComparer.Ordinal).ToList();
        run.Executor.Record(new UpdateApplied(host.Uuid, left, result.FailedLivepatches.Count > 0 ? result.FailedLivepatches : null));
        if (result.FailedLivepatches.Count > 0)
        {
            run.Log.Warn("{Host}: {Count} livepatch(es) failed to apply: a reboot is needed instead", host.Name, result.FailedLivepatches.Count);
        }

        run.Log.HostPhase(host.Name, left.Count > 0 ? $"updates installed; pending guidance: {string.Join(", ", left)}" : "updates installed; no guidance pending");
    }

    /// <summary>Raised inside <see cref="ApplyAsync"/> when xapi wants the host evacuated first: it goes through a reboot.</summary>
    internal sealed record EvacuationNeeded(string Host) : StepResult;

    /// <summary>
    /// The hosts updated in place, master first, one at a time: disabled, installed, toolstack restarted when asked,
    /// enabled as it was. A host whose installation turns out to need a reboot (xapi asks for an evacuation, a livepatch
    /// failed) is put back and returned, to be rebooted at its place in the waves.
    /// </summary>
    public static async Task<(StepResult Result, IReadOnlyList<string> ToReboot)> InPlaceAsync(RunContext run, CancellationToken stop, CancellationToken abort)
    {
        var toReboot = new List<string>();
        var decided = run.State.Decisions?.Updates;
        if (!run.ApplyUpdates || decided is null)
        {
            return (Continue, toReboot);
        }

        var pool = await run.Executor.ReadAsync(run.Pool.ReadAsync, abort);
        run.LastSnapshot = pool;
        var hosts = pool.Hosts
            .Where(h => run.State.UpdateActionOf(h.Uuid) is UpdateAction.InPlace or UpdateAction.RestartToolstack)
            .Where(h => run.State.Host(h.Uuid).Phase is not (State.HostPhase.Done or State.HostPhase.Failed or State.HostPhase.Skipped))
            .OrderBy(h => h.Uuid == pool.MasterUuid ? 0 : 1)
            .ThenBy(h => h.Name, NaturalNameComparer.Instance)
            .ToList();
        foreach (var host in hosts)
        {
            // Between hosts: a Ctrl-C stops here, nothing half done.
            stop.ThrowIfCancellationRequested();
            var result = await OneInPlaceAsync(run, host, host.Uuid == pool.MasterUuid, abort);
            if (result is EvacuationNeeded)
            {
                toReboot.Add(host.Uuid);
                continue;
            }

            if (!result.IsContinue)
            {
                return (result, toReboot);
            }
        }

        if (toReboot.Count > 0)
        {
            var d = run.State.Decisions!;
            var updates = new Dictionary<string, string>(d.Updates!, StringComparer.Ordinal);
            foreach (var h in toReboot)
            {
                updates[h] = nameof(UpdateAction.Reboot);
            }

            run.Executor.Record(d with { Updates = updates });
        }

        return (Continue, toReboot);
    }

    private static async Task<StepResult> OneInPlaceAsync(RunContext run, HostState host, bool isMaster, CancellationToken abort)
    {
        var started = run.Clock.GetUtcNow();
        if (!host.Live)
        {
            return new Stop($"{host.Name} is not live; its updates were not installed");
        }

        if (!run.State.UpdatesApplied.Contains(host.Uuid))
        {
            run.Log.HostPhase(host.Name, isMaster ? "updating in place (master)" : "updating in place");
            // xapi disables the host it installs on anyway (xapi_host.ml apply_updates, 24.10.0+): done by the run, journaled,
            // so every exit path enables it again.
            if (host.Enabled)
            {
                await run.Executor.DoAsync(new HostDisableIntended(host.Uuid, host.Name), ct => run.Pool.DisableHostAsync(host.Uuid, ct), new Journal.HostDisabled(host.Uuid), abort);
            }

            var applied = await ApplyAsync(run, host, abort);
            if (applied is EvacuationNeeded)
            {
                var phase = await HostPipeline.PutBackAsync(run, host, "xapi wants it evacuated for its updates (HOST_EVACUATION_IS_REQUIRED)", abort);
                run.Log.HostPhase(host.Name, phase + "; it is rebooted in the waves instead");
                return applied;
            }

            if (!applied.IsContinue)
            {
                var phase = await HostPipeline.PutBackAsync(run, host, "not updated", abort);
                run.Log.HostPhase(host.Name, phase);
                return applied;
            }
        }

        var after = await run.Executor.ReadAsync(ct => run.Pool.ReadHostAsync(host.Uuid, ct), abort);
        var acted = after.PendingGuidances.Concat(after.PendingGuidancesRecommended).ToList();
        if (acted.Any(HostState.IsRebootGuidance))
        {
            // A livepatch failed (reboot_host_on_*_livepatch_failure) or xapi asks more than planned: a reboot, with its VMs moved first.
            var phase = await HostPipeline.PutBackAsync(run, host, $"its updates now ask for {string.Join(", ", acted.Where(HostState.IsRebootGuidance))}", abort);
            run.Log.HostPhase(host.Name, phase + "; it is rebooted in the waves");
            return new EvacuationNeeded(host.Name);
        }

        if (acted.Contains("restart_toolstack") || run.State.ToolstackRestarts.ContainsKey(host.Uuid))
        {
            var restarted = await RestartToolstackAsync(run, after, abort);
            if (!restarted.IsContinue)
            {
                return restarted;
            }
        }

        var enabled = await HostEnabling.AfterRebootAsync(run, host, abort);
        if (!enabled.IsContinue)
        {
            return enabled;
        }

        var seconds = (run.Clock.GetUtcNow() - started).TotalSeconds;
        run.Executor.Record(new HostFinished(host.Uuid, host.Name, isMaster, Result: HostResult.Updated));
        run.Log.HostPhase(host.Name, string.Create(CultureInfo.InvariantCulture, $"updated in place, not rebooted ({seconds:0} s)"));
        run.Notify("host.updated", $"{host.Name} of {run.ClusterLabel} updated in place, not rebooted", host.Name);
        return Continue;
    }

    /// <summary>host.restart_agent, proven by a newer agent_start_time and the host live again (bounded by --host-timeout).</summary>
    private static async Task<StepResult> RestartToolstackAsync(RunContext run, HostState host, CancellationToken abort)
    {
        var before = run.State.ToolstackRestarts.TryGetValue(host.Uuid, out var earlier) && earlier is { } ms
            ? DateTimeOffset.FromUnixTimeMilliseconds(ms)
            : host.AgentStartTime;
        if (!run.State.ToolstackRestarts.ContainsKey(host.Uuid) || !Restarted(host, before))
        {
            run.Log.HostPhase(host.Name, "restarting its toolstack (host.restart_agent)");
            await run.Executor.DoOnceAsync(new ToolstackRestartIntended(host.Uuid, host.Name, before?.ToUnixTimeMilliseconds()),
                ct => Source(run).RestartToolstackAsync(host.Uuid, ct), null, abort);
        }

        var deadline = run.Clock.GetUtcNow() + run.Options.HostTimeout;
        while (true)
        {
            HostState? now = null;
            try
            {
                now = await run.Pool.ReadHostAsync(host.Uuid, abort);
            }
            catch (PoolOperationException e) when (e.IsTransient || e.Kind == PoolErrorKind.Busy)
            {
                // The toolstack is restarting (the master's own: nothing answers for a while).
            }

            if (now is not null && Restarted(now, before))
            {
                run.Executor.Record(new ToolstackRestarted(host.Uuid));
                run.Log.HostPhase(host.Name, string.Create(CultureInfo.InvariantCulture, $"toolstack restarted (agent_start_time {now.AgentStartTime:u})"));
                return Continue;
            }

            if (run.Clock.GetUtcNow() >= deadline)
            {
                return new Stop($"{host.Name}'s toolstack did not come back within {Units.Duration(run.Options.HostTimeout.TotalSeconds)} of host.restart_agent",
                    NeedsOperator: true, OperatorAction: $"check xapi on {host.Name} ('xe-toolstack-restart' on the host), then 'rollreboot resume --clustername {run.ClusterLabel}'");
            }

            await Task.Delay(TimeSpan.FromSeconds(2), run.Clock, abort);
        }
    }

    private static bool Restarted(HostState h, DateTimeOffset? before) =>
        h.Live && h.AgentStartTime is { } t && (before is null || t > before) && !h.PendingGuidances.Contains("restart_toolstack");

    /// <summary>
    /// After the hosts: the VM guidances the updates left (restart_vm, restart_device_model). With --apply-vm-guidances
    /// each VM gets what it asks for (VM.clean_reboot covers restart_device_model, as xapi's precedence has it:
    /// repository_helpers.ml); without, they are listed in the report for the VMs' owners.
    /// </summary>
    public static async Task<StepResult> VmGuidancesAsync(RunContext run, CancellationToken stop, CancellationToken abort)
    {
        if (!run.ApplyUpdates)
        {
            return Continue;
        }

        var pool = await run.Executor.ReadAsync(run.Pool.ReadAsync, abort);
        run.LastSnapshot = pool;
        var pending = pool.Vms.Where(v => v.IsRunningGuest && v.PendingGuidances.Any(g => g is "restart_vm" or "restart_device_model"))
            .OrderBy(v => v.Name, StringComparer.Ordinal).ToList();
        if (pending.Count == 0)
        {
            return Continue;
        }

        string Wanted(VmState v) => v.PendingGuidances.Contains("restart_vm") ? "restart_vm" : "restart_device_model";
        if (!run.Options.Plan.ApplyVmGuidances)
        {
            var list = string.Join(", ", pending.Take(20).Select(v => $"{v.Name} ({Wanted(v)})")) + (pending.Count > 20 ? ", ..." : "");
            lock (run.Notes)
            {
                run.Notes.Add($"{pending.Count} VM(s) have update guidance pending, not applied (--apply-vm-guidances applies it): {list}");
            }

            run.Log.Warn("{Count} VM(s) have update guidance pending: {List}; --apply-vm-guidances applies it", pending.Count, list);
            return Continue;
        }

        var failed = new List<string>();
        using var gate = new SemaphoreSlim(Math.Max(1, run.Options.Plan.Threads));
        await Task.WhenAll(pending.Select(async v =>
        {
            await gate.WaitAsync(abort);
            try
            {
                stop.ThrowIfCancellationRequested();
                var g = Wanted(v);
                // Each bounded by --host-timeout: a VM that does not come back in time is named, not waited for.
                Func<CancellationToken, Task> call = g == "restart_vm"
                    ? ct => WithinAsync(run, run.Options.HostTimeout, c => Source(run).RestartVmAsync(v.Uuid, c), ct)
                    : ct => WithinAsync(run, run.Options.HostTimeout, c => Source(run).RestartDeviceModelsAsync(v.Uuid, c), ct);
                await run.Executor.DoOnceAsync(new VmGuidanceIntended(v.Uuid, v.Name, g), call, new VmGuidanceApplied(v.Uuid, g), abort);
                run.Log.Info("{Vm}: {Guidance} applied", v.Name, g);
            }
            catch (PoolOperationException e)
            {
                lock (failed)
                {
                    failed.Add($"{v.Name} ({e.Code})");
                }
            }
            finally
            {
                gate.Release();
            }
        }));
        lock (run.Notes)
        {
            run.Notes.Add($"VM guidance applied to {pending.Count - failed.Count} VM(s){(failed.Count > 0 ? "; not to " + string.Join(", ", failed) : "")}");
        }

        if (failed.Count > 0)
        {
            run.OperatorAction($"apply the pending guidance of {string.Join(", ", failed)} (reboot the VM, or 'xe vm-restart-device-models')");
        }

        return Continue;
    }
}
