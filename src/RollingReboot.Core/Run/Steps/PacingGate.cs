using System.Globalization;
using RollingReboot.Core.Planning;
using RollingReboot.Core.Run.Engine;
using static RollingReboot.Core.Run.Engine.StepResult;

namespace RollingReboot.Core.Run.Steps;

/// <summary>Between hosts: --pause-after, --host-delay, the blocker command and the alert gate, the end of the window.</summary>
public static class PacingGate
{
    public static async Task<StepResult> BeforeNextAsync(RunContext run, int doneThisRun, IReadOnlyList<string> remaining, CancellationToken stop)
    {
        var o = run.Options;
        if (o.PauseAfter is { } pauseAfter && doneThisRun >= pauseAfter)
        {
            return new Pause($"paused after {doneThisRun} host(s) as asked (--pause-after {pauseAfter}); check them, then continue with 'rollreboot resume --clustername {run.ClusterLabel}'");
        }

        if (doneThisRun > 0 && o.HostDelay > TimeSpan.Zero)
        {
            run.Log.Info("Waiting {Delay} before the next host (--host-delay)", Units.Duration(o.HostDelay.TotalSeconds));
            await Task.Delay(o.HostDelay, run.Clock, stop);
        }

        return doneThisRun > 0 && (o.Hooks.BlockerCommand is not null || run.Alerts is not null) ? await WaitForBlockerAsync(run, remaining, stop) : Continue;
    }

    /// <summary>No host is started whose estimated evacuate + reboot would end after the window.</summary>
    public static StepResult FitsWindow(RunContext run, IReadOnlyList<PlanStep> wave, int doneThisRun)
    {
        if (run.WindowEnd is not { } windowEnd)
        {
            return Continue;
        }

        var longest = wave.Max(w => w.EstimatedSeconds);
        var window = run.Options.Window is { } w && (run.Options.WindowEnd is not { } end || end > windowEnd)
            ? $"the window ({w.Describe()}, this opening until {w.Local(windowEnd)})"
            : string.Create(CultureInfo.InvariantCulture, $"the window ({windowEnd:u})");
        return run.Clock.GetUtcNow() + TimeSpan.FromSeconds(longest) <= windowEnd
            ? Continue
            : new Pause(string.Create(CultureInfo.InvariantCulture,
                $"the next host ({string.Join(", ", wave.Select(w => w.HostName))}, about {Units.Duration(longest)}) would end after {window}; {doneThisRun} host(s) done in this window; resume in the next window with 'rollreboot resume --clustername {run.ClusterLabel}'"));
    }

    /// <summary>
    /// Before each host after the first the blocker command must pass and no alert may hold the run (an alert source
    /// that cannot be asked holds it too). While either holds, the run waits (nothing is in flight), bounded by
    /// --blocker-timeout and the window; then it stops safely, resumable.
    /// </summary>
    private static async Task<StepResult> WaitForBlockerAsync(RunContext run, IReadOnlyList<string> remaining, CancellationToken stop)
    {
        var next = run.HostName(remaining[0]);
        var env = new Dictionary<string, string>(StringComparer.Ordinal)
        {
            [HookVariables.Phase] = "between-hosts",
            [HookVariables.Pool] = run.LastSnapshot?.Name ?? "",
            [HookVariables.Cluster] = run.ClusterLabel,
            [HookVariables.RunId] = run.RunId,
            [HookVariables.NextHost] = next,
        };
        var hooks = run.Options.Hooks;
        var deadline = run.ClampToWindow(run.Clock.GetUtcNow() + hooks.BlockerTimeout);
        while (await HoldingAsync(run, env, stop) is { } blocked)
        {
            if (run.Clock.GetUtcNow() >= deadline)
            {
                return new Pause($"blocked before {next} for {Units.Duration(hooks.BlockerTimeout.TotalSeconds)} ({blocked}); resume when it passes with 'rollreboot resume --clustername {run.ClusterLabel}'");
            }

            run.Log.Warn("Blocked before {Host}: {Reason}; checking again in {Interval}", next, blocked, Units.Duration(hooks.BlockerInterval.TotalSeconds));
            await Task.Delay(hooks.BlockerInterval, run.Clock, stop);
        }

        return Continue;
    }

    /// <summary>The blocker command first, then the alerts: what holds the run now, or null.</summary>
    private static async Task<string?> HoldingAsync(RunContext run, IReadOnlyDictionary<string, string> env, CancellationToken stop) =>
        await run.Commands.CheckBlockerAsync(env, stop)
        ?? (run.Alerts is { } alerts ? (await alerts.CheckAsync(stop))?.Why : null);
}
