using RollingReboot.Core.Planning;
using RollingReboot.Core.Pool;
using RollingReboot.Core.Ports;
using RollingReboot.Core.Run.Journal;
using RollingReboot.Core.Run.State;
using static RollingReboot.Core.Run.Engine.StepResult;

namespace RollingReboot.Core.Run.Engine;

/// <summary>What an invocation does with a pool.</summary>
public enum RunMode
{
    /// <summary>The rolling reboot.</summary>
    Run,

    /// <summary>'rollreboot evacuate': empty the planned host(s) and leave them disabled for maintenance.</summary>
    Evacuate,

    /// <summary>'rollreboot return': bring an evacuated host back into service.</summary>
    Return,

    /// <summary>Continue an unfinished run from its journal.</summary>
    Resume,

    /// <summary>Only put back what an unfinished run changed.</summary>
    Restore,
}

/// <summary>
/// Runs a mode's steps, stops at the first result that is not Continue, and always runs the <see cref="Restorer"/>:
/// one outcome mapping for every mode. The state is the journal's fold throughout (<see cref="RunRecorder"/>).
/// </summary>
public sealed class RunEngine(RunServices services, RunOptions options, string clusterLabel)
{
    /// <summary>The state of a journal (for 'resume' and 'restore' to find an unfinished run and check it).</summary>
    public static RunState ReadState(IJournalStore store) => RunState.Fold(RunJournal.Read(store));

    /// <summary>A fresh run, evacuate or return: journals run.start first.</summary>
    public async Task<RunReport> StartAsync(IJournalStore store, string runId, RunMode mode, PoolSnapshot pool, string? hostUuid, CancellationToken stop, CancellationToken abort)
    {
        ArgumentNullException.ThrowIfNull(pool);
        var modeOptions = mode == RunMode.Evacuate
            ? options with { EvacuateOnly = true, Plan = hostUuid is null ? options.Plan : options.Plan with { IncludeHosts = [hostUuid] } }
            : options;
        var run = NewContext(store, RunState.Empty, runId, modeOptions);
        run.LastSnapshot = pool;
        run.Executor.Record(new RunStarted(runId, pool.Uuid, pool.Name, clusterLabel, mode switch
        {
            RunMode.Evacuate => "evacuate",
            RunMode.Return => "return",
            _ => "run",
        }));
        return mode == RunMode.Return
            ? await ExecuteAsync(run, ct => ReturnAsync(run, pool, hostUuid!, stop, ct), stop, abort)
            : await ExecuteAsync(run, ct => RollAsync(run, resumed: false, stop, ct), stop, abort);
    }

    /// <summary>Resume or restore an unfinished run from its journal.</summary>
    public async Task<RunReport> ContinueAsync(IJournalStore store, RunMode mode, CancellationToken stop, CancellationToken abort)
    {
        var state = ReadState(store);
        var run = NewContext(store, state, state.RunId, state.Mode == "evacuate" ? options with { EvacuateOnly = true } : options);
        run.FinishedBefore = state.Finished.Count;
        run.OperatorActionsBefore = state.OperatorActions.Count;
        string? elsewhere;
        try
        {
            elsewhere = await StillRunningElsewhereAsync(run, abort);
        }
        catch (PoolOperationException e)
        {
            // The pool could not even be read: nothing was touched; the journal still holds everything to do.
            run.Started = services.Clock.GetUtcNow();
            var verb = mode == RunMode.Restore ? "restore" : "resume";
            var why = $"the pool could not be read ({e.Code}: {e.Message}); nothing was changed";
            services.Log.Error("Run stopped: {Reason}", why);
            run.OperatorAction(Unrestored(run, e, verb));
            return RunReportBuilder.Build(run, RunOutcome.NeedsOperator, why, null);
        }

        if (elsewhere is not null)
        {
            // Another process is running this very run: neither resume nor restore may touch the pool.
            run.Started = services.Clock.GetUtcNow();
            services.Log.Error("Run stopped: {Reason}", elsewhere);
            return RunReportBuilder.Build(run, RunOutcome.Blocked, elsewhere, null);
        }

        run.Executor.Record(new RunContinued(mode == RunMode.Restore ? "restore" : "resume"));
        if (mode == RunMode.Restore)
        {
            run.Started = services.Clock.GetUtcNow();
            return await FinishAsync(run, new RunEnding(Continue, "", null), restoreOnly: true);
        }

        return await ExecuteAsync(run, ct => RollAsync(run, resumed: true, stop, ct), stop, abort, resumed: true);
    }

    /// <summary>The run's lock with a live heartbeat from another process: that run is not dead. A stopped heartbeat is
    /// taken over, and said so.</summary>
    private async Task<string?> StillRunningElsewhereAsync(RunContext run, CancellationToken cancellationToken)
    {
        var pool = await run.Executor.ReadAsync(run.Pool.ReadAsync, cancellationToken);
        run.LastSnapshot = pool;
        var holder = Steps.PoolLock.Holder(pool.OtherConfig, services.Clock, options.HeartbeatTimeout, services.ProcessAlive);
        if (holder is null || !holder.Lock.IsHeldBy(run.RunId))
        {
            return null;
        }

        if (holder.Alive && holder.Heartbeat is not null && holder.Instance != run.Instance)
        {
            return $"run {run.RunId} is still running (its lock's heartbeat is {(services.Clock.GetUtcNow() - holder.Heartbeat.Value).TotalSeconds:0} s old, renewed every {options.HeartbeatInterval.TotalSeconds:0} s): stop that process first, or wait {options.HeartbeatTimeout.TotalMinutes:0} min after it died";
        }

        services.Log.Warn("Taking over the lock of run {RunId}: {Holder}, no heartbeat since", run.RunId, holder.Describe());
        return null;
    }

    /// <summary>Renews the lock's heartbeat while the steps run (only while the lock is the run's).</summary>
    private static async Task HeartbeatAsync(RunContext run, CancellationToken cancellationToken)
    {
        try
        {
            while (true)
            {
                await Task.Delay(run.Options.HeartbeatInterval, run.Clock, cancellationToken);
                if (run.State.Lock == ChangeState.Made)
                {
                    try
                    {
                        await Steps.PrepareSteps.BeatAsync(run, cancellationToken);
                    }
                    catch (Exception e) when (e is not OperationCanceledException && e is not OutOfMemoryException)
                    {
                        // A missed beat is no reason to stop the run; a reader sees the lock alive for minutes more.
                        run.Log.Warn("Lock heartbeat not renewed: {Error}", e.Message);
                    }
                }
            }
        }
        catch (OperationCanceledException) when (cancellationToken.IsCancellationRequested)
        {
        }
    }

    private RunContext NewContext(IJournalStore store, RunState state, string runId, RunOptions runOptions)
    {
        var recorder = new RunRecorder(store, services.Clock, state);
        var executor = new ChangeExecutor(recorder, services.Clock, options.OutageTolerance, services.Log);
        return new RunContext(services, runOptions, executor, runId, clusterLabel);
    }

    /// <param name="resumed">A resume: refused by a blocker (an alert firing, a blocker command, the window), its run
    /// stays open for the next resume, as after a pause; a fresh run refused has done nothing worth keeping.</param>
    private async Task<RunReport> ExecuteAsync(RunContext run, Func<CancellationToken, Task<RunEnding>> steps, CancellationToken stop, CancellationToken abort, bool resumed = false)
    {
        run.Started = services.Clock.GetUtcNow();
        RunEnding ending;
        var interrupted = false;
        using var beating = new CancellationTokenSource();
        var heartbeat = HeartbeatAsync(run, beating.Token);
        try
        {
            ending = await steps(abort);
        }
        catch (OperationCanceledException) when (stop.IsCancellationRequested || abort.IsCancellationRequested)
        {
            services.Log.Warn("Interrupted; restoring what the run changed");
            interrupted = true;
            ending = new RunEnding(new Stop("interrupted: stopped at a safe point"), "interrupted: stopped at a safe point", run.FirstPlan);
        }
        catch (Exception e) when (e is PoolOperationException or CloudStackException or JournalException)
        {
            ending = new RunEnding(new Stop("stopped: " + e.Message), "stopped: " + e.Message, run.FirstPlan);
        }
        catch (Exception e) when (e is TimeoutException or OperationCanceledException)
        {
            // An adapter's own timeout (an HTTP call to XAPI or CloudStack that got no answer): a stop at a safe point,
            // never an "unexpected error".
            var why = $"stopped: XAPI or CloudStack did not answer in time ({e.Message})";
            ending = new RunEnding(new Stop(why), why, run.FirstPlan);
        }
        catch (Exception e) when (e is not OutOfMemoryException)
        {
            // A bug or something unforeseen: still put back what the run changed, and say what it was.
            services.Log.Error("Run stopped by an unexpected error: {Error}", e.ToString());
            var why = $"stopped by an unexpected error ({e.GetType().Name}: {e.Message}); see the log";
            ending = new RunEnding(new Stop(why, NeedsOperator: true), why, run.FirstPlan);
        }

        finally
        {
            await beating.CancelAsync();
            await heartbeat;
        }

        return await FinishAsync(run, ending, restoreOnly: false, interrupted, keepOpenWhenBlocked: resumed);
    }

    private async Task<RunReport> FinishAsync(RunContext run, RunEnding ending, bool restoreOnly, bool interrupted = false, bool keepOpenWhenBlocked = false)
    {
        var result = ending.Result;
        switch (result)
        {
            case Pause p:
                services.Log.Warn("Stopping at a safe point: {Reason}", p.Why);
                break;
            case Stop s when !interrupted:
                services.Log.Error("Run stopped: {Reason}", s.Why);
                break;
        }

        if (result is Stop { OperatorAction: { } action })
        {
            run.OperatorAction(action);
        }

        // Restore never takes the interrupt tokens: a Ctrl-C must not cut it short. The lock stays alive meanwhile.
        bool restoredAll;
        using (var beating = new CancellationTokenSource())
        {
            var heartbeat = HeartbeatAsync(run, beating.Token);
            try
            {
                restoredAll = await RestoreSafelyAsync(run);
            }
            finally
            {
                // Whatever ends the restore (even a journal that can no longer be written), the heartbeat stops with it:
                // a beat after the lock's release would leave a heartbeat without its lock.
                await beating.CancelAsync();
                await heartbeat;
            }
        }

        var outcome = interrupted ? RunOutcome.Interrupted : Outcome(result);
        if (outcome == RunOutcome.Done && run.State.Failed.Count > 0 && !restoreOnly)
        {
            // --max-failed-hosts: the others are done, but a failed host is someone's to look at.
            outcome = RunOutcome.NeedsOperator;
        }
        if (!restoredAll && outcome is RunOutcome.Done or RunOutcome.StoppedRestored or RunOutcome.Interrupted)
        {
            // Something could not be put back: an operator must act, whatever stopped the run.
            outcome = RunOutcome.NeedsOperator;
        }

        var message = restoreOnly
            ? restoredAll ? "restored what the run had changed" : "restore incomplete: see the operator actions"
            : ending.Message;
        var paused = (result is Pause || (result is Blocked && keepOpenWhenBlocked)) && restoredAll;
        Journal(run, paused ? new RunPaused(outcome.ToString(), message) : new RunEnded(restoreOnly ? (restoredAll ? "Restored" : "NeedsOperator") : outcome.ToString(), message));
        if (!restoreOnly)
        {
            NotifyEnd(run, outcome, message, paused);
        }

        return RunReportBuilder.Build(run, outcome, message, ending.Plan);
    }

    private async Task<bool> RestoreSafelyAsync(RunContext run)
    {
        try
        {
            return await Restorer.RestoreAsync(run, CancellationToken.None);
        }
        catch (Exception e) when (e is not OutOfMemoryException)
        {
            services.Log.Error("Restore stopped by an error: {Error}", e.ToString());
            try
            {
                run.OperatorAction(Unrestored(run, e));
            }
            catch (Exception journal) when (journal is IOException or JournalException or UnauthorizedAccessException)
            {
                services.Log.Error("Could not journal the operator action ({Error})", journal.Message);
            }

            return false;
        }
    }

    /// <summary>What a restore cut short by an error leaves, from the journal's state, and how to finish it.</summary>
    private string Unrestored(RunContext run, Exception e, string verb = "restore")
    {
        var state = run.State;
        var left = new List<string>();
        if (state.HaOff != ChangeState.None)
        {
            left.Add("HA (still off)");
        }

        if (state.ClusterUnmanaged != ChangeState.None)
        {
            left.Add("the CloudStack cluster's managed state (Managed)");
        }

        if (state.AutoPowerOnOff != ChangeState.None)
        {
            left.Add("pool auto_poweron");
        }

        var disabled = state.LeftDisabled.Select(h => h.Name ?? h.Uuid).ToList();
        if (disabled.Count > 0)
        {
            left.Add($"host(s) {string.Join(", ", disabled)} disabled");
        }

        if (state.Lock != ChangeState.None)
        {
            left.Add("the pool lock");
        }

        var what = left.Count == 0 ? "" : $" still to put back: {string.Join("; ", left)};";
        return $"{verb} stopped by an error ({(e as PoolOperationException)?.Code ?? e.GetType().Name}: {e.Message});{what} run 'rollreboot {verb} --clustername {clusterLabel}' once XAPI and CloudStack answer";
    }

    private void Journal(RunContext run, RunEvent e)
    {
        try
        {
            run.Executor.Record(e);
        }
        catch (Exception ex) when (ex is IOException or JournalException or UnauthorizedAccessException)
        {
            services.Log.Error("Could not write the journal's last line ({Error}); 'rollreboot restore' will find the run unfinished", ex.Message);
        }
    }

    private static RunOutcome Outcome(StepResult result) => result switch
    {
        Blocked => RunOutcome.Blocked,
        Stop { NeedsOperator: true } => RunOutcome.NeedsOperator,
        Stop or Pause => RunOutcome.StoppedRestored,
        _ => RunOutcome.Done,
    };

    private void NotifyEnd(RunContext run, RunOutcome outcome, string message, bool paused)
    {
        var actions = run.State.OperatorActions.Skip(run.OperatorActionsBefore).ToList();
        if (outcome is RunOutcome.Blocked || (outcome is RunOutcome.NeedsOperator or RunOutcome.StoppedRestored && !paused))
        {
            run.Notify("failure", $"rollreboot on {clusterLabel} stopped: {message}" + (actions.Count > 0 ? "; operator action needed: " + string.Join("; ", actions) : ""), outcome: outcome.ToString());
        }

        if (outcome != RunOutcome.Blocked)
        {
            var rebooted = run.State.Finished.Skip(run.FinishedBefore).Count(f => (f.Result ?? HostResult.Rebooted) == HostResult.Rebooted);
            run.Notify("finish", $"rollreboot on {clusterLabel} finished: {outcome}: {message} ({rebooted} host(s) rebooted)", outcome: outcome.ToString());
        }
    }

    private static async Task<RunEnding> ReturnAsync(RunContext run, PoolSnapshot pool, string hostUuid, CancellationToken stop, CancellationToken abort)
    {
        var locked = await Steps.PrepareSteps.AcquireLockAsync(run, pool, abort);
        if (!locked.IsContinue)
        {
            return new RunEnding(locked, Why(locked), null);
        }

        Steps.PrepareSteps.RecordOriginals(run, pool);
        var (result, message) = await Steps.ReturnSteps.ReturnHostAsync(run, pool, hostUuid, stop, abort);
        return new RunEnding(result, message, null);
    }

    private static Task<RunEnding> RollAsync(RunContext run, bool resumed, CancellationToken stop, CancellationToken abort) =>
        Steps.RollingSteps.RunAsync(run, resumed, stop, abort);

    internal static string Why(StepResult r) => r switch
    {
        Pause p => p.Why,
        Stop s => s.Why,
        Blocked b => b.Why,
        SkipHost s => s.Why,
        _ => "",
    };
}
