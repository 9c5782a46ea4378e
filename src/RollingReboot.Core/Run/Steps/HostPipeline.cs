using System.Globalization;
using RollingReboot.Core.Planning;
using RollingReboot.Core.Pool;
using RollingReboot.Core.Ports;
using RollingReboot.Core.Run.Engine;
using RollingReboot.Core.Run.Journal;
using RollingReboot.Core.Run.State;
using static RollingReboot.Core.Run.Engine.StepResult;

namespace RollingReboot.Core.Run.Steps;

/// <summary>One host on its way through the pipeline: what the steps learn and hand on.</summary>
public sealed class HostRun(PoolSnapshot pool, HostState host, PlanStep step)
{
    public PoolSnapshot Pool { get; set; } = pool;

    public HostState Host { get; } = host;

    public PlanStep Step { get; } = step;

    public bool IsMaster => Host.Uuid == Pool.MasterUuid;

    public EvacuationResult Evacuation { get; set; } = EvacuationResult.None;

    public DateTimeOffset EvacuationStarted { get; set; }

    public double EvacuationSeconds { get; set; }

    public DateTimeOffset RebootStarted { get; set; }

    /// <summary>What proves the reboot later, read while the host is evacuated.</summary>
    public Task<RebootContext>? Context { get; set; }

    public HostState? Empty { get; set; }
}

/// <summary>
/// A host's steps, in order: disable, evacuate, verify empty, (evacuate mode: mark and stop here), shut down the VMs that
/// cannot move (--shutdown-pinned-vms), pre hook, reboot, await the proof of the new boot, enable as it was, start those VMs
/// again, post hook. Each returns a <see cref="StepResult"/>; the first that
/// is not Continue ends the host.
/// </summary>
public static class HostPipeline
{
    private delegate Task<StepResult> HostStep(RunContext run, HostRun host, CancellationToken stop, CancellationToken abort);

    private static readonly HostStep[] s_reboot =
        [DisableAsync, EvacuateAsync, VerifyEmptyAsync, PinnedVms.ShutdownAsync, UpdateSteps.ApplyWhileEmptyAsync, PreHookAsync, RebootAsync, AwaitBootAsync, EnableAsync, StartPinnedAsync, FinishAsync, PostHookAsync];

    private static readonly HostStep[] s_evacuate = [DisableAsync, EvacuateAsync, VerifyEmptyAsync, MarkEvacuatedAsync];

    public static async Task<StepResult> RunAsync(RunContext run, PoolSnapshot pool, HostState host, PlanStep step, CancellationToken stop, CancellationToken abort)
    {
        var h = new HostRun(pool, host, step) { EvacuationStarted = run.Clock.GetUtcNow() };
        // What proves the reboot (the host's clock now, its boot id over SSH) is taken while it is evacuated.
        h.Context = run.Options.EvacuateOnly ? null : BootProof.CaptureAsync(run, host, abort);
        try
        {
            foreach (var s in run.Options.EvacuateOnly ? s_evacuate : s_reboot)
            {
                var result = await s(run, h, stop, abort);
                if (result is SkipHost)
                {
                    return await SkipAsync(run, h, abort);
                }

                if (result is Stop { HostOnly: true } failed && run.TryClaimHostFailure(h.IsMaster))
                {
                    return await FailAsync(run, h, failed, abort);
                }

                if (!result.IsContinue)
                {
                    return result;
                }
            }

            return Continue;
        }
        finally
        {
            // An early end leaves the capture unobserved; its failure no longer matters.
            _ = h.Context?.ContinueWith(t => t.Exception, CancellationToken.None, TaskContinuationOptions.OnlyOnFaulted, TaskScheduler.Default);
        }
    }

    private static async Task<StepResult> DisableAsync(RunContext run, HostRun h, CancellationToken stop, CancellationToken abort)
    {
        run.Log.HostPhase(h.Host.Name, h.IsMaster ? "evacuating (master)" : "evacuating");
        // Out for hardware work ('rollreboot evacuate'), a host stays disabled across the reboots that work may need, until
        // 'rollreboot return' enables it (auto_enable=false, xapi 25.31.0+); a rolling reboot wants xapi to enable it.
        Func<CancellationToken, Task> disable = run.Options.EvacuateOnly
            ? ct => run.Pool.DisableHostUntilEnabledAsync(h.Host.Uuid, ct)
            : ct => run.Pool.DisableHostAsync(h.Host.Uuid, ct);
        await run.Executor.DoAsync(new HostDisableIntended(h.Host.Uuid, h.Host.Name), disable, new HostDisabled(h.Host.Uuid), abort);
        if (run.Options.EvacuateOnly && run.LastSnapshot?.Software.HasAutoEnable == true)
        {
            run.Log.Info("{Host}: disabled with auto_enable=false: it stays disabled across reboots until 'rollreboot return'", h.Host.Name);
        }

        return Continue;
    }

    private static async Task<StepResult> EvacuateAsync(RunContext run, HostRun h, CancellationToken stop, CancellationToken abort)
    {
        var step = h.Step;
        var retries = run.Options.HostRetries;
        for (var attempt = 0; ; attempt++)
        {
            var e = await MigrationBatch.EvacuateAsync(run, h.Host, step, abort);
            var sum = h.Evacuation;
            h.Evacuation = new EvacuationResult(sum.Moved + e.Moved, sum.Bytes + e.Bytes, sum.Retries + e.Retries, e.Failures);
            h.EvacuationSeconds = (run.Clock.GetUtcNow() - h.EvacuationStarted).TotalSeconds;
            if (e.Failures.Count == 0)
            {
                return Continue;
            }

            if (attempt >= retries)
            {
                var tries = attempt > 0 ? $" ({attempt + 1} tries)" : "";
                return new Stop($"could not evacuate {h.Host.Name}{tries}: {string.Join(", ", e.Failures)}; stopped before its reboot") { HostOnly = true };
            }

            // --retries: what failed may pass in a while (a backup ending, memory freed); the host is still disabled.
            run.Log.Warn("{Host}: {Count} VM(s) did not move ({Failures}); trying again in {Delay} (--retries: {Attempt} of {Retries})",
                h.Host.Name, e.Failures.Count, string.Join(", ", e.Failures), Units.Duration(run.Options.RetryDelay.TotalSeconds), attempt + 1, retries);
            await Task.Delay(run.Options.RetryDelay, run.Clock, stop);
            var live = await run.Executor.ReadAsync(run.Pool.ReadAsync, abort);
            run.LastSnapshot = live;
            step = step with { Migrations = Remaining(run, live, h, step) };
        }
    }

    /// <summary>The VMs still on the host, each to its planned target if that still has room, else to another.</summary>
    private static List<PlannedMigration> Remaining(RunContext run, PoolSnapshot live, HostRun h, PlanStep step)
    {
        var planned = step.Migrations.ToDictionary(m => m.VmUuid, StringComparer.Ordinal);
        var list = new List<PlannedMigration>();
        var pinned = step.Shutdowns.Select(p => p.VmUuid).ToHashSet(StringComparer.Ordinal);
        foreach (var vm in live.RunningOn(h.Host.Uuid).Where(v => !pinned.Contains(v.Uuid)))
        {
            var m = planned.GetValueOrDefault(vm.Uuid);
            var target = m is not null && live.Hosts.FirstOrDefault(x => x.Uuid == m.ToUuid) is { Live: true, Enabled: true } t && t.MemoryFree >= vm.MemoryBytes
                ? m.ToUuid
                : MigrationBatch.PickAlternative(run, live, vm, h.Host.Uuid, m?.ToUuid ?? "") ?? m?.ToUuid;
            if (target is null)
            {
                continue;
            }

            var name = live.FindHost(target)?.Name ?? target;
            list.Add(m is null
                ? new PlannedMigration(vm.Uuid, vm.Name, h.Host.Uuid, h.Host.Name, target, name, vm.MemoryBytes)
                : m with { ToUuid = target, ToName = name });
        }

        return list;
    }

    /// <summary>
    /// --max-failed-hosts: a member that could not be evacuated is put back as it was (its VMs that moved stay where they
    /// run); one that did not come back is named for an operator. Both are journaled, left out of later plans, and the run
    /// goes on (a later plan short of capacity still stops it).
    /// </summary>
    private static async Task<StepResult> FailAsync(RunContext run, HostRun h, Stop failed, CancellationToken abort)
    {
        try
        {
            var down = run.State.Host(h.Host.Uuid).Phase is HostPhase.RebootRequested or HostPhase.RebootTaken;
            string phase;
            if (down)
            {
                run.OperatorAction(failed.OperatorAction ?? $"check {h.Host.Name}");
                phase = "FAILED: did not come back; the run goes on without it (--max-failed-hosts)";
            }
            else
            {
                phase = "FAILED: " + await PutBackAsync(run, h, "not evacuated", abort) + "; the run goes on without it (--max-failed-hosts)";
            }

            var e = h.Evacuation;
            run.Executor.Record(new HostFailed(h.Host.Uuid, h.Host.Name, failed.Why, down));
            run.Executor.Record(new HostFinished(h.Host.Uuid, h.Host.Name, h.IsMaster, e.Moved, e.Bytes, h.EvacuationSeconds, 0, e.Retries, HostResult.Failed));
            run.Log.Error("{Host}: {Why}", h.Host.Name, failed.Why);
            run.Log.HostPhase(h.Host.Name, phase);
            run.Notify("host.failed", $"{h.Host.Name} of {run.ClusterLabel} failed: {failed.Why}; the run goes on without it", h.Host.Name);
            return Continue;
        }
        finally
        {
            run.HostFailureRecorded();
        }
    }

    /// <summary>Nothing irreversible happens to a host that still runs a VM.</summary>
    private static async Task<StepResult> VerifyEmptyAsync(RunContext run, HostRun h, CancellationToken stop, CancellationToken abort)
    {
        var after = await run.Executor.ReadAsync(run.Pool.ReadAsync, abort);
        run.LastSnapshot = after;
        h.Pool = after;
        // Only the VMs that stay for the reboot (--shutdown-pinned-vms) may be left; they are shut down next.
        var pinned = h.Step.Shutdowns.Select(p => p.VmUuid).ToHashSet(StringComparer.Ordinal);
        var left = after.RunningOn(h.Host.Uuid).Where(v => !pinned.Contains(v.Uuid)).ToList();
        if (left.Count > 0)
        {
            return new Stop($"{h.Host.Name} still runs {string.Join(", ", left.Select(v => v.Name))} after evacuation; not rebooting it") { HostOnly = true };
        }

        h.Empty = after.Hosts.First(x => x.Uuid == h.Host.Uuid);
        run.Executor.Record(new HostEmptied(h.Host.Uuid));
        return Continue;
    }

    private static async Task<StepResult> PreHookAsync(RunContext run, HostRun h, CancellationToken stop, CancellationToken abort)
    {
        // The last safe point before the reboot: a Ctrl-C now leaves the host untouched.
        stop.ThrowIfCancellationRequested();
        if (run.Options.Hooks.PreHostHook is null && run.Options.Hooks.PreHostCommand is null)
        {
            return Continue;
        }

        // The host is empty and disabled: the moment to patch it.
        var hook = await run.Commands.RunHostHooksAsync("pre", h.Empty!, h.Pool, run.ClusterLabel, run.RunId, abort);
        stop.ThrowIfCancellationRequested();
        return hook.Decision switch
        {
            HookDecision.SkipHost => new SkipHost("pre hook exit 70"),
            HookDecision.Stop => new Stop(hook.Failure!),
            _ => Continue,
        };
    }

    private static async Task<StepResult> RebootAsync(RunContext run, HostRun h, CancellationToken stop, CancellationToken abort)
    {
        h.RebootStarted = run.Clock.GetUtcNow();
        var context = await h.Context!;
        if (context.Failure is { } failure)
        {
            return failure;
        }

        var before = h.Empty!.BootTime;
        var halt = run.Options.Halt;
        run.Log.HostPhase(h.Host.Name, halt ? "shutting down (--halt)" : "rebooting");
        var intent = new RebootIntended(h.Host.Uuid, h.Host.Name, before?.ToUnixTimeMilliseconds(),
            context.ServerTime.ToString("O", CultureInfo.InvariantCulture), context.BootId, halt);
        try
        {
            await run.Executor.DoOnceAsync(intent, ct => PowerCycleAsync(run, h.Host.Uuid, ct), new RebootTaken(h.Host.Uuid), abort);
        }
        catch (PoolOperationException e) when (e.IsTransient)
        {
            // Never repeat a reboot blindly: look whether it was taken (operation running, host down, new boot).
            var check = await run.Executor.ReadAsync(run.Pool.ReadAsync, abort);
            var now = check.Hosts.FirstOrDefault(x => x.Uuid == h.Host.Uuid);
            var taken = now is null || !now.Live || now.CurrentOperations.Count > 0 || now.BootTime != before;
            if (!taken)
            {
                run.Log.Warn("The reboot request for {Host} got no answer and was not taken; asking once more", h.Host.Name);
                await PowerCycleAsync(run, h.Host.Uuid, abort);
            }

            run.Executor.Record(new RebootTaken(h.Host.Uuid));
        }

        if (halt)
        {
            var powerOnBy = run.ClampToWindow(run.Clock.GetUtcNow() + run.Options.PowerOnTimeout);
            if (!h.IsMaster && run.Options.PowerOnDelay is { } delay && h.Empty!.PowerOnMode is { Length: > 0 } mode)
            {
                run.Log.Info("{Host} is shutting down; the pool master powers it on {Delay} after it is down (host.power_on, power_on_mode {Mode}); waiting until {Deadline:u}",
                    h.Host.Name, delay > TimeSpan.Zero ? Units.Duration(delay.TotalSeconds) : "at once", mode, powerOnBy);
                run.Notify("host.halted", $"{h.Host.Name} of {run.ClusterLabel} is shut down; rollreboot powers it on through XAPI ({mode})", h.Host.Name);
            }
            else
            {
                run.Log.Warn("{Host} is shutting down for hardware work: power it on when done (IPMI / iLO / 'xe host-power-on host={Host}'); waiting until {Deadline:u}",
                    h.Host.Name, h.Host.Name, powerOnBy);
                run.Notify("host.halted", $"{h.Host.Name} of {run.ClusterLabel} is shut down for hardware work: power it on when done", h.Host.Name);
            }
        }

        return Continue;
    }

    private static Task PowerCycleAsync(RunContext run, string hostUuid, CancellationToken abort) =>
        run.Options.Halt ? run.Pool.ShutdownHostAsync(hostUuid, abort) : run.Pool.RebootHostAsync(hostUuid, abort);

    private static async Task<StepResult> AwaitBootAsync(RunContext run, HostRun h, CancellationToken stop, CancellationToken abort)
    {
        var context = await h.Context!;
        var proof = run.State.Host(h.Host.Uuid).Proof;
        return await BootProof.AwaitAsync(run, h.Host, proof?.BootTimeBefore ?? context.ServerTime, context.ServerTime, context.BootId, h.IsMaster, abort);
    }

    private static Task<StepResult> EnableAsync(RunContext run, HostRun h, CancellationToken stop, CancellationToken abort) =>
        HostEnabling.AfterRebootAsync(run, h.Host, abort);

    private static Task<StepResult> StartPinnedAsync(RunContext run, HostRun h, CancellationToken stop, CancellationToken abort) =>
        PinnedVms.StartAsync(run, h.Host.Uuid, abort);

    private static Task<StepResult> FinishAsync(RunContext run, HostRun h, CancellationToken stop, CancellationToken abort)
    {
        var rebootSeconds = (run.Clock.GetUtcNow() - h.RebootStarted).TotalSeconds;
        var e = h.Evacuation;
        run.Executor.Record(new HostFinished(h.Host.Uuid, h.Host.Name, h.IsMaster, e.Moved, e.Bytes, h.EvacuationSeconds, rebootSeconds, e.Retries, HostResult.Rebooted));
        run.Log.HostPhase(h.Host.Name, string.Create(CultureInfo.InvariantCulture, $"done ({e.Moved} migrations in {h.EvacuationSeconds:0} s, back after {rebootSeconds:0} s)"));
        run.Notify("host.done", string.Create(CultureInfo.InvariantCulture,
            $"{h.Host.Name} of {run.ClusterLabel} rebooted and back ({run.State.Rebooted.Count} done; {e.Moved} VMs moved in {Units.Duration(h.EvacuationSeconds)}, back after {Units.Duration(rebootSeconds)})"), h.Host.Name);
        return Task.FromResult(Continue);
    }

    private static async Task<StepResult> PostHookAsync(RunContext run, HostRun h, CancellationToken stop, CancellationToken abort)
    {
        if (run.Options.Hooks.PostHostHook is null && run.Options.Hooks.PostHostCommand is null)
        {
            return Continue;
        }

        var back = await run.Executor.ReadAsync(run.Pool.ReadAsync, abort);
        var hook = await run.Commands.RunHostHooksAsync("post", back.Hosts.First(x => x.Uuid == h.Host.Uuid), back, run.ClusterLabel, run.RunId, abort);
        return hook.Decision == HookDecision.Stop ? new Stop(hook.Failure!) : Continue;
    }

    /// <summary>A pre hook said skip (exit 70): the host is not rebooted; it is enabled again as it was, its VMs stay where they went.</summary>
    private static async Task<StepResult> SkipAsync(RunContext run, HostRun h, CancellationToken abort)
    {
        var phase = await PutBackAsync(run, h, "skipped (pre hook exit 70)", abort);
        // Not rebooted: what was shut down for the reboot runs again on it.
        if (await PinnedVms.StartAsync(run, h.Host.Uuid, abort) is Stop notStarted)
        {
            return notStarted;
        }

        var e = h.Evacuation;
        run.Executor.Record(new HostSkipped(h.Host.Uuid, h.Host.Name, "pre hook exit 70"));
        run.Executor.Record(new HostFinished(h.Host.Uuid, h.Host.Name, h.IsMaster, e.Moved, e.Bytes, h.EvacuationSeconds, 0, e.Retries, HostResult.SkippedByHook));
        run.Log.HostPhase(h.Host.Name, phase);
        run.Notify("host.skipped", $"{h.Host.Name} of {run.ClusterLabel} skipped: the pre hook exited 70", h.Host.Name);
        return Continue;
    }

    /// <summary>A host the run disabled and did not reboot, put back as it was; returns the phase to show.</summary>
    private static Task<string> PutBackAsync(RunContext run, HostRun h, string what, CancellationToken abort) => PutBackAsync(run, h.Host, what, abort);

    /// <summary>A host the run disabled and did not reboot, put back as it was; returns the phase to show.</summary>
    internal static async Task<string> PutBackAsync(RunContext run, HostState host, string what, CancellationToken abort)
    {
        // Its live record decides: XAPI refuses host.enable while mandatory guidance is pending (xapi 24.10.0+).
        var now = await run.Executor.ReadAsync(ct => run.Pool.ReadHostAsync(host.Uuid, ct), abort);
        var decision = HostEnabling.Decide(run.State, now);
        switch (decision.Action)
        {
            case PutBackAction.Enable:
                await run.Executor.DoAsync(new HostEnableIntended(host.Uuid, host.Name), ct => run.Pool.EnableHostAsync(host.Uuid, ct), new HostEnabled(host.Uuid), abort);
                return what + "; enabled again";
            case PutBackAction.UntilReboot:
                run.Executor.Record(new HostEnabled(host.Uuid));
                run.Log.Warn("{Why}", decision.Why!);
                return what + "; left disabled until its reboot, as it was";
            case PutBackAction.Refused:
                run.OperatorAction(decision.Why!);
                return what + "; stays disabled: XAPI refuses host.enable while its guidance is pending";
            case PutBackAction.Disable:
                await run.Executor.DoAsync(null, ct => run.Pool.DisableHostAsync(host.Uuid, ct), new HostEnabled(host.Uuid), abort);
                return what + "; disabled, as it was";
            default:
                run.Executor.Record(new HostEnabled(host.Uuid));
                return what + "; left as it was";
        }
    }

    /// <summary>
    /// 'rollreboot evacuate': the host is empty; it stays disabled (not put back by the restore) and a marker in
    /// pool.other_config names the VMs it ran, for 'rollreboot return', from any machine.
    /// </summary>
    private static async Task<StepResult> MarkEvacuatedAsync(RunContext run, HostRun h, CancellationToken stop, CancellationToken abort)
    {
        var key = Evacuation.MarkerKey(h.Host.Uuid);
        var value = Evacuation.MarkerValue(run.RunId, h.Host, run.State.Original!, run.Clock.GetUtcNow());
        run.Executor.Record(new EvacuationMarkIntended(h.Host.Uuid, key));
        await run.Executor.DoAsync(null, ct => run.Pool.RemovePoolOtherConfigAsync(key, ct), null, abort);
        await run.Executor.DoAsync(null, ct => run.Pool.TryAddPoolOtherConfigAsync(key, value, ct), new HostLeftEvacuated(h.Host.Uuid, h.Host.Name), abort);
        var e = h.Evacuation;
        run.Executor.Record(new HostFinished(h.Host.Uuid, h.Host.Name, h.IsMaster, e.Moved, e.Bytes, h.EvacuationSeconds, 0, e.Retries, HostResult.Evacuated));
        run.Log.HostPhase(h.Host.Name, "empty and disabled for maintenance");
        run.Notify("host.evacuated", $"{h.Host.Name} of {run.ClusterLabel} is empty and disabled for maintenance", h.Host.Name);
        return Continue;
    }
}
