using RollingReboot.Core.Planning;
using RollingReboot.Core.Pool;
using RollingReboot.Core.Ports;
using RollingReboot.Core.Run.Engine;
using RollingReboot.Core.Run.Journal;

namespace RollingReboot.Core.Run.Steps;

public sealed record EvacuationResult(int Moved, long Bytes, int Retries, IReadOnlyList<string> Failures)
{
    public static EvacuationResult None { get; } = new(0, 0, 0, []);
}

/// <summary>
/// Live migrations in parallel, scheduled to keep the source's link full: at most --threads at a time, at most
/// <see cref="PlanOptions.MaxMigrationsPerTarget"/> into one host, largest first, and each slot refilled as soon as a
/// migration ends with the largest one left whose target has room (a migration waiting for a full target never holds a
/// slot another could use). XAPI's own host.evacuate runs up to 10 at once from one host (xapi_globs.ml
/// evacuation_batch_size): several streams are needed to fill a link, since one stream is capped well below it and
/// spends its first seconds in setup moving nothing.
/// A migration is never repeated blindly: after a failure the VM is re-read (a lost reply may hide a migration that
/// ran) and only a VM still on its source is tried again, elsewhere if another host fits.
/// </summary>
public static class MigrationBatch
{
    public static async Task<EvacuationResult> EvacuateAsync(RunContext run, HostState host, PlanStep step, CancellationToken abort)
    {
        var threads = Math.Max(1, run.Options.Plan.Threads);
        var perTarget = Math.Max(1, run.Options.Plan.EffectiveMaxMigrationsPerTarget);
        var targetGates = new Dictionary<string, SemaphoreSlim>(StringComparer.Ordinal);
        foreach (var t in step.Migrations.Select(m => m.ToUuid).Distinct())
        {
            targetGates[t] = new SemaphoreSlim(perTarget);
        }

        var pending = new LinkedList<PlannedMigration>(step.Migrations.OrderByDescending(m => m.MemoryBytes));
        // Completed (and replaced) whenever a migration ends: what a slot waiting for room awaits.
        var ended = new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously);
        // Completed once every migration is taken: a slot not open yet has nothing left to wait for.
        var allTaken = new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously);
        var moved = 0;
        long bytes = 0;
        var retries = 0;
        var failures = new List<string>();
        // Cancelled when a slot fails (the run aborted, the process dying): no slot takes another migration, none waits on;
        // migrations in flight end as they would.
        using var stopTaking = CancellationTokenSource.CreateLinkedTokenSource(abort);
        try
        {
            // The slots open SetupSeconds / threads apart: migrations of equal size started together would set up, move and
            // end together, and the link would idle while all of them set up again (the estimate staggers them the same way).
            var stagger = TimeSpan.FromSeconds(PlanEstimator.StaggerSeconds(run.Options.Plan));
            await Task.WhenAll(Enumerable.Range(0, Math.Min(threads, pending.Count)).Select(async i =>
            {
                try
                {
                    await WorkerAsync(stagger * i);
                }
                catch (OperationCanceledException) when (stopTaking.IsCancellationRequested && !abort.IsCancellationRequested)
                {
                    // A sibling failed: this slot stops taking work; the sibling's failure is what the batch reports.
                }
                catch
                {
                    await stopTaking.CancelAsync();
                    throw;
                }
            }));
        }
        finally
        {
            foreach (var g in targetGates.Values)
            {
                g.Dispose();
            }
        }

        return new EvacuationResult(moved, bytes, retries, failures);

        // One slot: takes the largest migration whose target has room, runs it, and takes the next, until none is left.
        async Task WorkerAsync(TimeSpan opensAfter)
        {
            if (opensAfter > TimeSpan.Zero)
            {
                using var opened = CancellationTokenSource.CreateLinkedTokenSource(stopTaking.Token);
                var delay = Task.Delay(opensAfter, run.Clock, opened.Token);
                if (await Task.WhenAny(delay, allTaken.Task) != delay)
                {
                    await opened.CancelAsync();
                    return;
                }

                await delay;
            }

            while (true)
            {
                stopTaking.Token.ThrowIfCancellationRequested();
                PlannedMigration? m;
                while (!TryTake(out m, out var roomLater))
                {
                    if (roomLater is null)
                    {
                        return;
                    }

                    // Every target with work left is full: wait for a migration to end, then look again.
                    await roomLater.WaitAsync(stopTaking.Token);
                }

                try
                {
                    var outcome = await MigrateOneAsync(run, host, m!, targetGates, abort);
                    if (outcome.Retries > 0)
                    {
                        Interlocked.Add(ref retries, outcome.Retries);
                    }

                    if (outcome.Failure is { } failure)
                    {
                        lock (failures)
                        {
                            failures.Add(failure);
                        }
                    }
                    else if (outcome.Moved)
                    {
                        var n = Interlocked.Increment(ref moved);
                        Interlocked.Add(ref bytes, m!.MemoryBytes);
                        ReportProgress(run, host, step, n);
                    }
                }
                finally
                {
                    // Wake every slot waiting for room: any of them may now take a migration to the freed target.
                    TaskCompletionSource wake;
                    lock (pending)
                    {
                        wake = ended;
                        ended = new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously);
                    }

                    wake.TrySetResult();
                }
            }
        }

        // The largest migration left whose target has room; else null, with what to await (null: nothing left).
        bool TryTake(out PlannedMigration? taken, out Task? roomLater)
        {
            lock (pending)
            {
                for (var node = pending.First; node is not null; node = node.Next)
                {
                    if (targetGates[node.Value.ToUuid].Wait(0))
                    {
                        taken = node.Value;
                        pending.Remove(node);
                        if (pending.Count == 0)
                        {
                            allTaken.TrySetResult();
                        }

                        roomLater = null;
                        return true;
                    }
                }

                taken = null;
                roomLater = pending.Count == 0 ? null : ended.Task;
                return false;
            }
        }
    }

    private sealed record MigrationOutcome(bool Moved, int Retries, string? Failure);

    private static async Task<MigrationOutcome> MigrateOneAsync(RunContext run, HostState host, PlannedMigration m, Dictionary<string, SemaphoreSlim> targetGates, CancellationToken abort)
    {
        var target = m.ToUuid;
        for (var attempt = 0; ; attempt++)
        {
            // The first attempt was admitted by the scheduler (its target's slot taken); a retry, maybe elsewhere, asks again.
            var tgate = targetGates.GetValueOrDefault(target);
            if (tgate is not null && attempt > 0)
            {
                await tgate.WaitAsync(abort);
            }

            string error;
            try
            {
                await MigrateBoundedAsync(run, new MigrationIntended(m.VmUuid, m.VmName, host.Uuid, target), m.VmUuid, target, new MigrationDone(m.VmUuid, target), m.MemoryBytes, abort);
                return new MigrationOutcome(true, attempt, null);
            }
            catch (PoolOperationException e)
            {
                error = e.Code;
            }
            catch (OperationCanceledException) when (!abort.IsCancellationRequested)
            {
                // The bound fired: XAPI's task was cancelled by the client; the VM is looked at before anything else.
                error = "timed out after " + Units.Duration(run.Options.MigrationBound(m.MemoryBytes).TotalSeconds);
            }
            finally
            {
                tgate?.Release();
            }

            run.Executor.Record(new MigrationFailed(m.VmUuid, target, error));
            if (attempt >= run.Options.MigrationRetries)
            {
                return new MigrationOutcome(false, attempt, $"{m.VmName}: {error}");
            }

            var (live, vm) = await SettleAsync(run, m.VmUuid, run.Options.MigrationBound(m.MemoryBytes), abort);
            if (vm is null || !vm.IsRunningGuest || vm.ResidentOnUuid != host.Uuid)
            {
                // It moved after all (a lost reply), or stopped: nothing left to do for it.
                return new MigrationOutcome(false, attempt + 1, null);
            }

            target = PickAlternative(run, live, vm, host.Uuid, target) ?? target;
            run.Log.Warn("Migration of {Vm} failed ({Error}); retrying to {Target}", m.VmName, error, live.FindHost(target)?.Name ?? target);
        }
    }

    /// <summary>One migration, bounded by <see cref="RunOptions.MigrationBound"/> (from its size) on the run's clock.</summary>
    private static async Task MigrateBoundedAsync(RunContext run, RunEvent intent, string vmUuid, string target, RunEvent done, long memoryBytes, CancellationToken abort)
    {
        using var timeout = new CancellationTokenSource(run.Options.MigrationBound(memoryBytes), run.Clock);
        using var linked = CancellationTokenSource.CreateLinkedTokenSource(abort, timeout.Token);
        await run.Executor.DoOnceAsync(intent, ct => run.Pool.MigrateVmAsync(vmUuid, target, run.Route, null, ct), done, linked.Token);
    }

    /// <summary>A lost reply: the migration may be running after all. Let it finish (bounded), then decide.</summary>
    private static async Task<(PoolSnapshot Live, VmState? Vm)> SettleAsync(RunContext run, string vmUuid, TimeSpan bound, CancellationToken abort)
    {
        var live = await run.Executor.ReadAsync(run.Pool.ReadAsync, abort);
        var vm = live.Vms.FirstOrDefault(v => v.Uuid == vmUuid);
        var settle = run.Clock.GetUtcNow() + bound;
        while (vm is { CurrentOperations.Count: > 0 } && run.Clock.GetUtcNow() < settle)
        {
            await run.Pool.WaitForChangeAsync(TimeSpan.FromSeconds(10), abort);
            live = await run.Executor.ReadAsync(run.Pool.ReadAsync, abort);
            vm = live.Vms.FirstOrDefault(v => v.Uuid == vmUuid);
        }

        return (live, vm);
    }

    /// <summary>What going home gave: VMs moved back, the names of those not home, and where each VM ended.</summary>
    public sealed record ReturnOutcome(int Back, IReadOnlyList<string> Failed, IReadOnlyList<VmReturnReport> Vms);

    /// <summary>
    /// <c>--return-vms</c> and 'rollreboot return': each VM back to its host from before the run, hosts in the given order,
    /// in passes while a pass brings at least one VM home (memory frees up as others go home); a VM that cannot go back
    /// stays running where it is. Never throws for a pool that refuses: a run that is done stays done, and the outcome
    /// says where each VM ended and why it is not home.
    /// </summary>
    public static async Task<ReturnOutcome> ReturnVmsAsync(RunContext run, IReadOnlyDictionary<string, string?> homes, IReadOnlyList<string> order, CancellationToken stop, CancellationToken abort)
    {
        var back = 0;
        var why = new Dictionary<string, string>(StringComparer.Ordinal);
        var rank = order.Select((host, i) => (host, i)).DistinctBy(x => x.host).ToDictionary(x => x.host, x => x.i, StringComparer.Ordinal);
        PoolSnapshot? pool = null;
        // Each pass but the last brings a VM home, so there are at most as many passes as VMs (+1 to see no progress).
        var maxPasses = homes.Count + 1;
        // Whether VMs were sent since the pool was last read (then where they ended is read once more at the end).
        var sent = false;
        try
        {
            for (var pass = 0; pass < maxPasses; pass++)
            {
                pool = await run.Executor.ReadAsync(run.Pool.ReadAsync, abort);
                sent = false;
                var away = pool.Vms.Where(v => v.IsRunningGuest && homes.TryGetValue(v.Uuid, out var home) && home is not null && home != v.ResidentOnUuid).ToList();
                var wanted = new List<VmState>();
                foreach (var vm in away)
                {
                    var home = pool.Hosts.FirstOrDefault(h => h.Uuid == homes[vm.Uuid]);
                    if (home is null || !home.Live || !home.Enabled)
                    {
                        why[vm.Uuid] = home is null ? "its host is no longer in the pool" : $"{home.Name} is {(home.Live ? "disabled" : "not live")}";
                    }
                    else
                    {
                        wanted.Add(vm);
                    }
                }

                wanted = wanted.OrderBy(v => rank.GetValueOrDefault(homes[v.Uuid]!, int.MaxValue)).ThenBy(v => v.Name, StringComparer.Ordinal).ToList();
                if (wanted.Count == 0)
                {
                    break;
                }

                run.Log.Info("Returning {Count} VM(s) to their original hosts (pass {Pass})", wanted.Count, pass + 1);
                var movedThisPass = 0;
                sent = true;
                using var gate = new SemaphoreSlim(Math.Max(1, run.Options.Plan.Threads));
                await Task.WhenAll(wanted.Select(async vm =>
                {
                    stop.ThrowIfCancellationRequested();
                    await gate.WaitAsync(abort);
                    try
                    {
                        var home = homes[vm.Uuid]!;
                        await MigrateBoundedAsync(run, new ReturnIntended(vm.Uuid, vm.Name, home), vm.Uuid, home, new ReturnDone(vm.Uuid), vm.MemoryBytes, abort);
                        Interlocked.Increment(ref back);
                        Interlocked.Increment(ref movedThisPass);
                        lock (why)
                        {
                            why.Remove(vm.Uuid);
                        }
                    }
                    catch (Exception e) when (e is PoolOperationException || e is OperationCanceledException && !abort.IsCancellationRequested)
                    {
                        var error = (e as PoolOperationException)?.Code ?? "timed out after " + Units.Duration(run.Options.MigrationBound(vm.MemoryBytes).TotalSeconds);
                        lock (why)
                        {
                            why[vm.Uuid] = error;
                        }

                        run.Log.Warn("Could not return {Vm} yet: {Error}", vm.Name, error);
                    }
                    finally
                    {
                        gate.Release();
                    }
                }));
                if (movedThisPass == 0)
                {
                    // No progress: another pass would meet the same refusals.
                    break;
                }
            }

            if (sent)
            {
                pool = await run.Executor.ReadAsync(run.Pool.ReadAsync, abort);
            }
        }
        catch (PoolOperationException e)
        {
            // The pool stopped answering while VMs went home: the run's work is done; say what is known.
            run.Log.Warn("Returning VMs stopped: {Error}; VMs stay where they run", e.Message);
            foreach (var uuid in homes.Keys.Where(u => !why.ContainsKey(u)))
            {
                why[uuid] = "not tried: " + e.Code;
            }
        }

        var vms = EndedWhere(pool, homes, why);
        return new ReturnOutcome(back, vms.Where(v => !v.IsHome && v.EndedOn != NotRunning).Select(v => v.Vm).Order(StringComparer.Ordinal).ToList(), vms);
    }

    private const string NotRunning = "(not running)";

    /// <summary>Each VM with a home, where the last read of the pool has it.</summary>
    private static List<VmReturnReport> EndedWhere(PoolSnapshot? pool, IReadOnlyDictionary<string, string?> homes, Dictionary<string, string> why)
    {
        var list = new List<VmReturnReport>();
        if (pool is null)
        {
            return list;
        }

        var byUuid = pool.Vms.ToDictionary(v => v.Uuid, StringComparer.Ordinal);
        string HostName(string? uuid) => uuid is null ? "?" : pool.Hosts.FirstOrDefault(h => h.Uuid == uuid)?.Name ?? uuid;
        foreach (var (uuid, home) in homes)
        {
            if (home is null)
            {
                continue;
            }

            if (!byUuid.TryGetValue(uuid, out var vm) || !vm.IsRunningGuest)
            {
                list.Add(new VmReturnReport(vm?.Name ?? uuid, HostName(home), NotRunning, "stopped or removed during the run"));
                continue;
            }

            var isHome = vm.ResidentOnUuid == home;
            list.Add(new VmReturnReport(vm.Name, HostName(home), HostName(vm.ResidentOnUuid), isHome ? null : why.GetValueOrDefault(uuid) ?? "moved away again meanwhile"));
        }

        return list.OrderBy(v => v.IsHome).ThenBy(v => v.Vm, StringComparer.Ordinal).ToList();
    }

    /// <summary>Progress a person can follow: a line at each quarter of a host's migrations, with the run's ETA.</summary>
    private static void ReportProgress(RunContext run, HostState host, PlanStep step, int done)
    {
        var total = step.Migrations.Count;
        var quarter = Math.Max(1, total / 4);
        if (done % quarter != 0 && done != total)
        {
            return;
        }

        var elapsed = run.Clock.GetUtcNow() - run.Started;
        // The plan made just before this host starts with this host: its total is what is left.
        var remaining = run.CurrentPlan is null ? 0 : run.CurrentPlan.Estimate.TotalSeconds - (step.EvacuationSeconds * done / total);
        run.Log.Info("{Host}: {Done}/{Total} migrations; run elapsed {Elapsed}, about {Eta} to go",
            host.Name, done, total, Units.Duration(elapsed.TotalSeconds), Units.Duration(remaining));
    }

    /// <summary>Another rebooted (or never-rebooting) live enabled host with room for the VM.</summary>
    internal static string? PickAlternative(RunContext run, PoolSnapshot live, VmState vm, string sourceUuid, string failedTarget)
    {
        var allowed = run.State.Rebooted.ToHashSet(StringComparer.Ordinal);
        var nothingRebooted = allowed.Count == 0;
        var original = run.State.Original!;
        allowed.UnionWith(live.Hosts.Where(h => !original.HostEnabled.ContainsKey(h.Uuid)).Select(h => h.Uuid));
        return live.Hosts
            .Where(h => h.Uuid != sourceUuid && h.Uuid != failedTarget && h.Live && h.Enabled && h.MemoryFree >= vm.MemoryBytes && (allowed.Contains(h.Uuid) || nothingRebooted))
            .OrderByDescending(h => h.MemoryFree).ThenBy(h => h.Name, StringComparer.Ordinal)
            .Select(h => h.Uuid).FirstOrDefault();
    }
}
