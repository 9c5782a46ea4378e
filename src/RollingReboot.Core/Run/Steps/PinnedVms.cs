using RollingReboot.Core.Planning;
using RollingReboot.Core.Pool;
using RollingReboot.Core.Ports;
using RollingReboot.Core.Run.Engine;
using RollingReboot.Core.Run.Journal;
using static RollingReboot.Core.Run.Engine.StepResult;

namespace RollingReboot.Core.Run.Steps;

/// <summary>
/// --shutdown-pinned-vms: the VMs of a host that cannot be live-migrated stay on it. Right before its reboot they are
/// shut down, cleanly within --shutdown-timeout and else powered off; once the host is proven back and enabled they are
/// started on it again, before the run goes on (and so before CloudStack manages the cluster again). Which VMs were shut
/// down is journaled before the first shutdown is asked: resume and restore start every one still halted.
/// xen-api: ocaml/xapi/message_forwarding.ml (clean_shutdown, hard_shutdown cancels a clean shutdown in progress,
/// start_on), xapi_vm_lifecycle.ml (allowed power states, check_op_for_feature), xapi_vm_helpers.ml assert_can_boot_here.
/// </summary>
public static class PinnedVms
{
    /// <summary>Shuts the step's pinned VMs down; the host must be left running nothing else.</summary>
    public static async Task<StepResult> ShutdownAsync(RunContext run, HostRun h, CancellationToken stop, CancellationToken abort)
    {
        if (h.Step.Shutdowns.Count == 0)
        {
            return Continue;
        }

        // The last moment a Ctrl-C leaves the VMs running.
        stop.ThrowIfCancellationRequested();
        var live = h.Pool;
        var running = h.Step.Shutdowns
            .Where(p => live.Vms.FirstOrDefault(v => v.Uuid == p.VmUuid) is { IsRunningGuest: true } vm && vm.ResidentOnUuid == h.Host.Uuid)
            .ToList();
        if (running.Count == 0)
        {
            return Continue;
        }

        run.Log.HostPhase(h.Host.Name, $"shutting down {running.Count} VM(s) that cannot be live-migrated: {string.Join(", ", running.Select(p => p.VmName))}");
        foreach (var p in running)
        {
            run.Executor.Record(new VmShutdownIntended(p.VmUuid, p.VmName, h.Host.Uuid, h.Host.Name));
        }

        run.Notify("vm.shutdown", $"{h.Host.Name} of {run.ClusterLabel}: shutting down {string.Join(", ", running.Select(p => p.VmName))} for its reboot (they cannot be live-migrated); they start again on it once it is back", h.Host.Name);
        var results = await Task.WhenAll(running.Select(p => ShutdownOneAsync(run, p, abort)));
        var failed = results.Where(r => r is not null).ToList();
        if (failed.Count > 0)
        {
            return new Stop($"could not shut down {string.Join("; ", failed)} on {h.Host.Name}; not rebooting it");
        }

        var after = await run.Executor.ReadAsync(run.Pool.ReadAsync, abort);
        run.LastSnapshot = after;
        h.Pool = after;
        var left = after.RunningOn(h.Host.Uuid).ToList();
        return left.Count > 0
            ? new Stop($"{h.Host.Name} still runs {string.Join(", ", left.Select(v => v.Name))} after its pinned VMs were shut down; not rebooting it")
            : Continue;
    }

    /// <summary>Clean, bounded; then hard. Null when the VM is halted, else why not.</summary>
    private static async Task<string?> ShutdownOneAsync(RunContext run, PinnedVm p, CancellationToken abort)
    {
        string why;
        using (var timeout = new CancellationTokenSource(run.Options.ShutdownTimeout, run.Clock))
        using (var linked = CancellationTokenSource.CreateLinkedTokenSource(abort, timeout.Token))
        {
            try
            {
                await run.Executor.DoOnceAsync(null, ct => run.Pool.CleanShutdownVmAsync(p.VmUuid, ct), new VmShutDown(p.VmUuid, "clean"), linked.Token);
                run.Log.Info("{Vm} on {Host}: shut down cleanly", p.VmName, p.HostName);
                return null;
            }
            catch (PoolOperationException e)
            {
                why = e.Code;
            }
            catch (OperationCanceledException) when (!abort.IsCancellationRequested)
            {
                why = "no clean shutdown within " + Units.Duration(run.Options.ShutdownTimeout.TotalSeconds) + " (--shutdown-timeout)";
            }
        }

        if (await IsHaltedAsync(run, p.VmUuid, abort))
        {
            // The answer was lost, or the guest finished as the bound fired.
            run.Executor.Record(new VmShutDown(p.VmUuid, "clean"));
            return null;
        }

        run.Log.Warn("{Vm} on {Host}: clean shutdown failed ({Why}); powering it off (VM.hard_shutdown)", p.VmName, p.HostName, why);
        try
        {
            await run.Executor.DoAsync(null, ct => run.Pool.HardShutdownVmAsync(p.VmUuid, ct), new VmShutDown(p.VmUuid, "hard"), abort);
            return null;
        }
        catch (PoolOperationException e)
        {
            if (await IsHaltedAsync(run, p.VmUuid, abort))
            {
                run.Executor.Record(new VmShutDown(p.VmUuid, "hard"));
                return null;
            }

            return $"{p.VmName} (clean: {why}; hard: {e.Code})";
        }
    }

    private static async Task<bool> IsHaltedAsync(RunContext run, string vmUuid, CancellationToken abort)
    {
        var live = await run.Executor.ReadAsync(run.Pool.ReadAsync, abort);
        run.LastSnapshot = live;
        return live.Vms.FirstOrDefault(v => v.Uuid == vmUuid) is not { IsRunningGuest: true };
    }

    /// <summary>
    /// Starts on this host every VM the run shut down there and has not started again (the host is back and enabled).
    /// A VM found running already counts as started. A VM that does not start stops the run: the restore tries again and
    /// names it for an operator when it still does not.
    /// </summary>
    public static async Task<StepResult> StartAsync(RunContext run, string hostUuid, CancellationToken abort)
    {
        var shut = run.State.VmsShutDown.Values.Where(v => v.Host == hostUuid).OrderBy(v => v.Name, StringComparer.Ordinal).ToList();
        if (shut.Count == 0)
        {
            return Continue;
        }

        var live = await run.Executor.ReadAsync(run.Pool.ReadAsync, abort);
        run.LastSnapshot = live;
        var hostName = live.FindHost(hostUuid)?.Name ?? shut[0].HostName ?? hostUuid;
        run.Log.HostPhase(hostName, $"starting {string.Join(", ", shut.Select(v => v.Name ?? v.Vm))} on it again");
        var failures = await Task.WhenAll(shut.Select(v => StartOneAsync(run, live, v, abort)));
        var failed = failures.Where(f => f is not null).ToList();
        var back = shut.Where((_, i) => failures[i] is null).Select(v => v.Name ?? v.Vm).ToList();
        if (back.Count > 0)
        {
            lock (run.Notes)
            {
                run.Notes.Add($"{hostName}: {string.Join(", ", back)} shut down for its reboot (they cannot be live-migrated) and running on it again");
            }
        }

        return failed.Count == 0
            ? Continue
            : new Stop($"could not start {string.Join("; ", failed)} on {hostName} again", NeedsOperator: true,
                OperatorAction: string.Join("; ", shut.Where((_, i) => failures[i] is not null).Select(v => StartCommand(v, hostName))));
    }

    /// <summary>Null when the VM runs (started now or found running), else "name (code)".</summary>
    internal static async Task<string?> StartOneAsync(RunContext run, PoolSnapshot live, VmShutdownIntended v, CancellationToken abort)
    {
        var name = v.Name ?? v.Vm;
        var vm = live.Vms.FirstOrDefault(x => x.Uuid == v.Vm);
        if (vm is null)
        {
            // Destroyed meanwhile by someone: nothing to start.
            run.Executor.Record(new VmStarted(v.Vm, null));
            return null;
        }

        if (vm.IsRunningGuest)
        {
            run.Executor.Record(new VmStarted(v.Vm, vm.ResidentOnUuid));
            return null;
        }

        try
        {
            await run.Executor.DoAsync(null, ct => run.Pool.StartVmOnAsync(v.Vm, v.Host, ct), new VmStarted(v.Vm, v.Host), abort);
            run.Log.Info("{Vm}: started on {Host} again", name, v.HostName ?? v.Host);
            return null;
        }
        catch (PoolOperationException e)
        {
            var again = await run.Executor.ReadAsync(run.Pool.ReadAsync, abort);
            if (again.Vms.FirstOrDefault(x => x.Uuid == v.Vm) is { IsRunningGuest: true } running)
            {
                run.Executor.Record(new VmStarted(v.Vm, running.ResidentOnUuid));
                return null;
            }

            run.Log.Error("{Vm}: could not be started on {Host} ({Code})", name, v.HostName ?? v.Host, e.Code);
            return $"{name} ({e.Code})";
        }
    }

    internal static string StartCommand(VmShutdownIntended v, string? hostName) =>
        $"start VM {v.Name ?? v.Vm} on {hostName ?? v.HostName ?? v.Host}: 'xe vm-start uuid={v.Vm} on={hostName ?? v.HostName ?? v.Host}'";
}
