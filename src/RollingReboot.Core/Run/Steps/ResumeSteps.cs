using System.Collections.Immutable;
using RollingReboot.Core.Pool;
using RollingReboot.Core.Run.Engine;
using RollingReboot.Core.Run.Journal;
using RollingReboot.Core.Run.State;
using static RollingReboot.Core.Run.Engine.StepResult;

namespace RollingReboot.Core.Run.Steps;

/// <summary>What a resumed run does before it plans: the same steps a fresh run would have taken next.</summary>
public static class ResumeSteps
{
    /// <summary>
    /// A run that died while a host was rebooting: wait for that host and prove it, as the dead run would have, then
    /// enable it. A reboot that was asked for but never taken (boot time unchanged, host live and idle) was not.
    /// </summary>
    public static async Task<StepResult> FinishRebootsInFlightAsync(RunContext run, CancellationToken abort)
    {
        foreach (var progress in run.State.RebootsInFlight.ToList())
        {
            var h = await run.Executor.ReadAsync(ct => run.Pool.ReadHostAsync(progress.Uuid, ct), abort);
            var proof = progress.Proof;
            var booted = h.BootTime is { } b && proof?.BootTimeBefore is { } before && b > before;
            var inFlight = booted || progress.Phase == HostPhase.RebootTaken || !h.Live || h.CurrentOperations.Count > 0;
            if (!inFlight)
            {
                run.Log.Info("{Host}: its reboot was asked for but not taken; it is planned again", h.Name);
                continue;
            }

            run.Log.Info("{Host} was rebooting when the previous run stopped; waiting for it", h.Name);
            var snapshot = run.LastSnapshot ?? await run.Executor.ReadAsync(run.Pool.ReadAsync, abort);
            var previousBoot = proof?.BootTimeBefore ?? DateTimeOffset.MinValue;
            var back = await BootProof.AwaitAsync(run, h, previousBoot, proof?.ServerTime ?? previousBoot, proof?.BootId, h.Uuid == snapshot.MasterUuid, abort);
            if (!back.IsContinue)
            {
                return back;
            }

            var enabled = await HostEnabling.AfterRebootAsync(run, h, abort);
            if (!enabled.IsContinue)
            {
                return enabled;
            }

            // --shutdown-pinned-vms: what was shut down for this reboot runs again on it.
            var started = await PinnedVms.StartAsync(run, h.Uuid, abort);
            if (!started.IsContinue)
            {
                return started;
            }

            run.Executor.Record(new HostFinished(h.Uuid, h.Name, h.Uuid == snapshot.MasterUuid, Result: HostResult.Rebooted));
        }

        return Continue;
    }

    /// <summary>
    /// A run that died while migrations it had asked for were running: XAPI carries them on without the client (the
    /// task is the pool's), and until each ends its VM is resident on the source while its memory is already reserved
    /// on the target (message_forwarding.ml pool_migrate: reserve_memory_for_vm sets scheduled_to_be_resident_on, freed
    /// by clear_reservations when the migration ends). A plan read then counts such a VM twice, so the resumed run waits
    /// for them first, each bounded as a migration of its size is (<see cref="RunOptions.MigrationBound"/>), and
    /// journals how each ended. One still running at the bound is left to preflight, which refuses a busy VM.
    /// </summary>
    public static async Task FinishMigrationsInFlightAsync(RunContext run, CancellationToken abort)
    {
        if (run.State.MigrationsInFlight.IsEmpty)
        {
            return;
        }

        var live = await run.Executor.ReadAsync(run.Pool.ReadAsync, abort);
        var asked = run.State.MigrationsInFlight;
        var moving = Moving(live, asked);
        if (moving.Count > 0)
        {
            var bound = moving.Max(v => run.Options.MigrationBound(v.MemoryBytes));
            run.Log.Info("{Count} migration(s) the previous run asked for are still running; waiting for them (at most {Bound})", moving.Count, bound);
            var until = run.Clock.GetUtcNow() + bound;
            while (moving.Count > 0 && run.Clock.GetUtcNow() < until)
            {
                await run.Pool.WaitForChangeAsync(TimeSpan.FromSeconds(10), abort);
                live = await run.Executor.ReadAsync(run.Pool.ReadAsync, abort);
                moving = Moving(live, asked);
            }
        }

        run.LastSnapshot = live;
        foreach (var (vmUuid, target) in asked.OrderBy(kv => kv.Key, StringComparer.Ordinal))
        {
            var vm = live.Vms.FirstOrDefault(v => v.Uuid == vmUuid);
            if (vm is not null && IsMigrating(vm))
            {
                run.Log.Warn("{Vm}: its migration is still running after {Bound}; preflight decides", vm.Name, run.Options.MigrationBound(vm.MemoryBytes));
            }
            else if (vm?.ResidentOnUuid == target)
            {
                run.Executor.Record(new MigrationDone(vmUuid, target));
            }
            else
            {
                run.Executor.Record(new MigrationFailed(vmUuid, target, "it did not land on its target while no run was watching"));
            }
        }
    }

    private static bool IsMigrating(VmState vm) => vm.CurrentOperations.Any(op => op is "pool_migrate" or "migrate_send");

    private static List<VmState> Moving(PoolSnapshot live, ImmutableDictionary<string, string> asked) =>
        [.. live.Vms.Where(v => asked.ContainsKey(v.Uuid) && IsMigrating(v))];

    /// <summary>A run that died mid-host left it disabled; it was enabled before the run, so the new plan must see it so.</summary>
    public static async Task<StepResult> ReenableHostsLeftDisabledAsync(RunContext run, CancellationToken abort)
    {
        var snapshot = await run.Executor.ReadAsync(run.Pool.ReadAsync, abort);
        run.LastSnapshot = snapshot;
        foreach (var progress in run.State.LeftDisabled.ToList())
        {
            var h = snapshot.Hosts.FirstOrDefault(x => x.Uuid == progress.Uuid);
            if (h is not { Live: true })
            {
                continue;
            }

            var decision = HostEnabling.Decide(run.State, h);
            switch (decision.Action)
            {
                case PutBackAction.Enable:
                    await run.Executor.DoAsync(new HostEnableIntended(h.Uuid, h.Name), ct => run.Pool.EnableHostAsync(h.Uuid, ct), new HostEnabled(h.Uuid), abort);
                    run.Log.Info("{Host}: enabled again (the interrupted run had disabled it)", h.Name);
                    break;
                case PutBackAction.Refused:
                    // Not asked: XAPI would refuse. The host stays the run's to put back; the plan sees it as it is.
                    run.Log.Warn("{Why}", decision.Why!);
                    break;
                case PutBackAction.UntilReboot:
                    run.Log.Info("{Why}; it is planned again", decision.Why!);
                    run.Executor.Record(new HostEnabled(h.Uuid));
                    break;
                default:
                    // As it was, or disabled as the operator had it: left for the plan (a rebooted host is not rebooted again).
                    run.Executor.Record(new HostEnabled(h.Uuid));
                    break;
            }
        }

        // A run that died after shutting pinned VMs down and before the reboot: the host was not rebooted, so they run
        // again on it (the new plan shuts them down again for its reboot).
        foreach (var host in run.State.VmsShutDown.Values.Select(v => v.Host).Distinct(StringComparer.Ordinal).Order(StringComparer.Ordinal).ToList())
        {
            if (snapshot.Hosts.FirstOrDefault(x => x.Uuid == host) is { Live: true, Enabled: true } && !run.State.Host(host).RebootInFlight)
            {
                var started = await PinnedVms.StartAsync(run, host, abort);
                if (!started.IsContinue)
                {
                    return started;
                }
            }
        }

        return Continue;
    }
}
