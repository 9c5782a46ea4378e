using System.Globalization;
using RollingReboot.Core.Planning;
using RollingReboot.Core.Run.Engine;
using RollingReboot.Core.Run.Journal;
using static RollingReboot.Core.Run.Engine.StepResult;

namespace RollingReboot.Core.Run.Steps;

/// <summary>
/// The rolling reboot (and 'rollreboot evacuate', which stops each host at "empty"), fresh or resumed: preflight,
/// the lock, the originals, HA off, CloudStack Unmanaged, the waves, VMs home. A resumed run first finishes what
/// the dead one had in flight, then takes the same steps with the state its journal folds to.
/// </summary>
public static class RollingSteps
{
    public static async Task<RunEnding> RunAsync(RunContext run, bool resumed, CancellationToken stop, CancellationToken abort)
    {
        if (resumed)
        {
            await ResumeSteps.FinishMigrationsInFlightAsync(run, abort);
            var finished = await ResumeSteps.FinishRebootsInFlightAsync(run, abort);
            if (!finished.IsContinue)
            {
                return new RunEnding(finished, RunEngine.Why(finished), null);
            }

            if (run.ApplyUpdates)
            {
                var settled = await UpdateSteps.FinishInFlightAsync(run, abort);
                if (!settled.IsContinue)
                {
                    return new RunEnding(settled, RunEngine.Why(settled), null);
                }
            }

            await ResumeSteps.ReenableHostsLeftDisabledAsync(run, abort);
        }
        else if (run.ApplyUpdates)
        {
            await UpdateSteps.SyncAsync(run, abort);
        }

        var window = await WindowGate.EnterAsync(run, resumed, stop);
        if (!window.IsContinue)
        {
            return new RunEnding(window, RunEngine.Why(window), null);
        }

        var commands = run.HasCommands || run.Alerts is not null ? new PreflightCommands(run.Commands, run.ClusterLabel, run.RunId) { Alerts = run.Alerts } : null;
        var pre = await Preflight.RunAsync(run.Pool, run.Cloud, run.PlanOptions, run.State.Rebooted, abort, commands: commands);
        run.AntiAffinity = pre.AntiAffinity;
        run.Placement = pre.Placement;
        run.LastSnapshot = pre.Pool;
        run.FirstPlan = pre.Plan;
        var plan = pre.Plan;
        if (run.ApplyUpdates)
        {
            // Resumed: the decisions are kept and the plan does not read the list; it is read here for the hash and what is left.
            run.Updates = pre.Pool.Updates ?? await run.Executor.ReadAsync(ct => run.Pool.Updates!.ReadAsync(null, ct), abort);
        }

        LogSoftware(run, pre.Pool);
        Decide(run, pre);
        if (plan.Blockers.Count > 0)
        {
            foreach (var b in plan.Blockers)
            {
                run.Log.Error("Blocked: {Message}. Fix: {Fix}", b.Message, b.Fix);
            }

            return new RunEnding(new Blocked(string.Join("; ", plan.Blockers.Select(b => b.Message))), $"preflight found {plan.Blockers.Count} blocker(s); nothing was changed", plan);
        }

        if (resumed)
        {
            run.Log.Info("Resuming run {RunId}: {Done} host(s) already rebooted in it", run.RunId, run.State.Rebooted.Count);
        }

        var prepared = await PrepareAsync(run, pre, abort);
        if (!prepared.IsContinue)
        {
            return new RunEnding(prepared, RunEngine.Why(prepared), plan);
        }

        run.Notify("start", string.Create(CultureInfo.InvariantCulture,
            $"rollreboot {(resumed ? "resumed" : "started")} on {run.ClusterLabel} (pool {pre.Pool.Name}): {plan.Steps.Count} host(s) to reboot{(run.Options.Halt ? " (halt for hardware work)" : "")}, about {Units.Duration(plan.Estimate.TotalSeconds)}"));
        var waves = await WaveLoop.RunAsync(run, plan, stop, abort);
        if (!waves.IsContinue)
        {
            return new RunEnding(waves, RunEngine.Why(waves), plan);
        }

        var guidances = await UpdateSteps.VmGuidancesAsync(run, stop, abort);
        if (!guidances.IsContinue)
        {
            return new RunEnding(guidances, RunEngine.Why(guidances), plan);
        }

        return new RunEnding(Continue, await DoneMessageAsync(run, plan, stop, abort), plan);
    }

    /// <summary>What the pool runs (host.software_version) and the xapi behaviour the run assumes from it; hosts that differ from the master.</summary>
    private static void LogSoftware(RunContext run, Pool.PoolSnapshot pool)
    {
        run.Log.Info("Pool {Pool} runs {Software}", pool.Name, pool.Software.Describe());
        foreach (var h in pool.Hosts.Where(h => h.Uuid != pool.MasterUuid && h.Software != pool.Software && h.Software.Known))
        {
            run.Log.Info("Host {Host} runs {Software}", h.Name, h.Software.Describe());
        }
    }

    /// <summary>Choices made once before anything changes, kept by every later plan of the run (resume too).</summary>
    private static void Decide(RunContext run, PreflightResult pre)
    {
        var previous = run.State.Decisions;
        int? k = previous?.MaxHostsDown;
        if (k is null && run.Options.Plan.MaxHostsDown == PlanOptions.AutoMaxHostsDown)
        {
            k = pre.Plan.Options.MaxHostsDown;
            run.Log.Info("--max-hosts-down auto: {K} host(s) at a time is the fastest plan ({Estimate})", k, Units.Duration(pre.Plan.Estimate.TotalSeconds));
        }

        var notNeeding = (previous?.NotNeedingReboot ?? []).Union(pre.NotNeedingReboot.Keys.Order(StringComparer.Ordinal)).ToList();
        if (pre.NotNeedingReboot.Count > 0)
        {
            // Hosts that need no reboot are left alone for the whole run, as if ignored.
            run.Log.Info("{Count} host(s) need no reboot (--needs-reboot-command): {Hosts}", pre.NotNeedingReboot.Count,
                string.Join(", ", pre.NotNeedingReboot.Keys.Select(run.HostName)));
        }

        var updates = UpdateSteps.Decide(run, pre.Pool);
        if (k != previous?.MaxHostsDown || notNeeding.Count != (previous?.NotNeedingReboot.Count ?? 0) || (updates?.Count ?? 0) != (previous?.Updates?.Count ?? 0))
        {
            run.Executor.Record(new PlanDecided(k, notNeeding) { Updates = updates });
        }
    }

    private static async Task<StepResult> PrepareAsync(RunContext run, PreflightResult pre, CancellationToken abort)
    {
        var locked = await PrepareSteps.AcquireLockAsync(run, pre.Pool, abort);
        if (!locked.IsContinue)
        {
            return locked;
        }

        PrepareSteps.RecordOriginals(run, pre.Pool);
        var ha = await PrepareSteps.DisableHaAsync(run, pre.Pool, abort);
        if (!ha.IsContinue)
        {
            return ha;
        }

        var autostart = await PrepareSteps.DisableAutoPowerOnAsync(run, pre.Pool, abort);
        return autostart.IsContinue ? await PrepareSteps.UnmanageClusterAsync(run, abort) : autostart;
    }

    private static async Task<string> DoneMessageAsync(RunContext run, Plan plan, CancellationToken stop, CancellationToken abort)
    {
        var finished = run.State.Finished.Skip(run.FinishedBefore).ToList();
        var message = run.Options.EvacuateOnly
            ? $"{string.Join(", ", finished.Select(h => h.Name))} empty and disabled for maintenance; when the work is done: 'rollreboot return --clustername {run.ClusterLabel} --host {string.Join(",", finished.Select(h => h.Name))}'"
            : $"all {run.State.Rebooted.Count} host(s) rebooted";
        var failedHosts = run.State.Failed;
        if (failedHosts.Count > 0)
        {
            message = run.Options.EvacuateOnly ? message : $"{run.State.Rebooted.Count} host(s) rebooted";
            message += $"; {failedHosts.Count} host(s) FAILED and left out (--max-failed-hosts): {string.Join("; ", failedHosts.Select(f => $"{f.Name ?? f.Host}: {f.Reason}"))}";
        }

        var skipped = finished.Count(h => h.Result == HostResult.SkippedByHook);
        if (skipped > 0)
        {
            message += $"; {skipped} skipped by the pre hook (exit 70)";
        }

        if (run.Options.Plan.ReturnVms)
        {
            var (back, failed, vms) = await MigrationBatch.ReturnVmsAsync(run, run.State.Original!.VmHost, plan.Steps.Select(s => s.HostUuid).Reverse().ToList(), stop, abort);
            run.VmReturns = vms;
            message += failed.Count == 0
                ? $"; {back} VM(s) migrated back to their original hosts"
                : $"; {back} VM(s) migrated back, {failed.Count} left where they are ({string.Join(", ", failed.Take(10))})";
        }

        return message;
    }
}
