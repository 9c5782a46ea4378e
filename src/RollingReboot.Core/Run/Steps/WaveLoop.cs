using RollingReboot.Core.Planning;
using RollingReboot.Core.Run.Engine;
using static RollingReboot.Core.Run.Engine.StepResult;

namespace RollingReboot.Core.Run.Steps;

/// <summary>
/// The hosts, wave by wave (one host at a time unless --max-hosts-down): before each wave the pacing gate, a new plan
/// against the live pool (VMs may have started, stopped or moved), the window check; then each host's pipeline.
/// </summary>
public static class WaveLoop
{
    public static async Task<StepResult> RunAsync(RunContext run, Plan plan, CancellationToken stop, CancellationToken abort)
    {
        var remaining = plan.Steps.Select(s => s.HostUuid).ToList();
        var doneThisRun = 0;
        var inPlaceDone = !run.ApplyUpdates;
        while (true)
        {
            stop.ThrowIfCancellationRequested();
            if (!inPlaceDone && !remaining.Contains(plan.MasterUuid))
            {
                // --apply-updates: the master first (rebooted in the first wave when its updates ask for it), then the
                // hosts updated in place, then the other reboots. A host that turns out to need a reboot joins them.
                inPlaceDone = true;
                var (inPlace, toReboot) = await UpdateSteps.InPlaceAsync(run, stop, abort);
                if (!inPlace.IsContinue)
                {
                    return inPlace;
                }

                remaining.InsertRange(0, toReboot.Where(h => !remaining.Contains(h)));
            }

            if (remaining.Count == 0)
            {
                break;
            }

            var gate = await PacingGate.BeforeNextAsync(run, doneThisRun, remaining, stop);
            if (!gate.IsContinue)
            {
                return gate;
            }

            // One host at a time asks XAPI about that host only; with waves every host is asked.
            var planOptions = run.PlanOptions;
            var onlyHost = planOptions.MaxHostsDown > 1 ? null : remaining[0];
            var (pre, busy) = await PlanWhenNotBusyAsync(run, planOptions, onlyHost, remaining, stop, abort);
            if (busy is not null)
            {
                return busy;
            }

            if (pre.Plan.Blockers.Count > 0)
            {
                return new Stop($"before {run.HostName(remaining[0])}: {string.Join("; ", pre.Plan.Blockers.Select(b => b.Message))}");
            }

            foreach (var gone in remaining.Where(r => pre.Plan.Steps.All(s => s.HostUuid != r)).ToList())
            {
                run.Log.Warn("{Host} no longer needs the run's attention; skipped", run.HostName(gone));
                remaining.Remove(gone);
            }

            var steps = pre.Plan.Steps.Where(s => remaining.Contains(s.HostUuid)).ToList();
            if (steps.Count == 0)
            {
                remaining.Clear();
                continue;
            }

            // The live plan's next wave: hosts rebooted together (always one, the master alone, with --max-hosts-down 1).
            var wave = steps.Where(s => s.Wave == steps[0].Wave).ToList();
            var fits = PacingGate.FitsWindow(run, wave, doneThisRun);
            if (!fits.IsContinue)
            {
                return fits;
            }

            run.CurrentPlan = pre.Plan;
            if (wave.Count > 1)
            {
                run.Log.Info("Wave {Wave}: {Hosts} together", wave[0].Wave, string.Join(", ", wave.Select(w => w.HostName)));
            }

            var results = await Task.WhenAll(wave.Select(step =>
                HostPipeline.RunAsync(run, pre.Pool, pre.Pool.Hosts.First(h => h.Uuid == step.HostUuid), step, stop, abort)));
            var worst = results.Aggregate(Continue, StepResult.Worst);
            if (!worst.IsContinue)
            {
                return worst;
            }

            foreach (var step in wave)
            {
                remaining.Remove(step.HostUuid);
            }

            doneThisRun += wave.Count;
        }

        return Continue;
    }

    /// <summary>
    /// The live plan for the next wave, once no VM of its hosts is busy with another operation (XAPI would refuse to
    /// migrate it: OTHER_OPERATION_IN_PROGRESS). The wait is bounded by <see cref="RunOptions.BusyVmTimeout"/> and the
    /// window; past it the run stops at this safe point, resumable.
    /// </summary>
    private static async Task<(PreflightResult Pre, StepResult? Stop)> PlanWhenNotBusyAsync(
        RunContext run, PlanOptions planOptions, string? onlyHost, IReadOnlyList<string> remaining, CancellationToken stop, CancellationToken abort)
    {
        var deadline = run.ClampToWindow(run.Clock.GetUtcNow() + run.Options.BusyVmTimeout);
        while (true)
        {
            var pre = await run.Executor.ReadAsync(
                ct => Preflight.RunAsync(run.Pool, null, planOptions, run.State.Rebooted, ct, onlyHost, run.AntiAffinity, knownPlacement: run.Placement), abort);
            run.LastSnapshot = pre.Pool;
            var wave = pre.Plan.Steps.Where(s => remaining.Contains(s.HostUuid)).ToList();
            var hosts = wave.Where(s => s.Wave == wave.FirstOrDefault()?.Wave).Select(s => s.HostUuid).ToHashSet(StringComparer.Ordinal);
            var busy = pre.BusyVms.Values.Where(b => hosts.Contains(b.HostUuid)).OrderBy(b => b.VmName, StringComparer.Ordinal)
                .Select(b => $"VM {b.VmName} busy ({b.Operation}) on {run.HostName(b.HostUuid)}").ToList();
            // XAPI's own word on whether the host may reboot now (a GFS2 SR recovering after the last host rejoined).
            var operation = run.Options.Halt ? "shutdown" : "reboot";
            busy.AddRange(pre.Pool.Hosts.Where(h => hosts.Contains(h.Uuid) && h.AllowedOperations is { } ops && !ops.Contains(operation))
                .Select(h => $"XAPI does not allow {operation} on {h.Name} yet (a clustered SR degraded or recovering)"));
            // Backups in the pool are waited for between hosts, like a busy VM, not a reason to stop.
            var backups = pre.Plan.Blockers.Where(b => b.Code == PlanCodes.PoolBackupRunning).ToList();
            busy.AddRange(backups.Select(b => b.Message.TrimEnd('.')));
            if (busy.Count == 0 || pre.Plan.Blockers.Count > backups.Count)
            {
                return (pre, null);
            }

            var what = string.Join("; ", busy);
            if (run.Clock.GetUtcNow() >= deadline)
            {
                return (pre, new Pause($"still busy after {Units.Duration(run.Options.BusyVmTimeout.TotalSeconds)}: {what}; resume when that is over with 'rollreboot resume --clustername {run.ClusterLabel}'"));
            }

            run.Log.Warn("Waiting before the next host (busy VM(s) or reboot not allowed yet): {What}", what);
            stop.ThrowIfCancellationRequested();
            await run.Pool.WaitForChangeAsync(TimeSpan.FromSeconds(30), stop);
            await Task.Delay(TimeSpan.FromSeconds(5), run.Clock, stop);
        }
    }
}
