using RollingReboot.Core.Time;
using RollingReboot.Core.Run.Engine;
using static RollingReboot.Core.Run.Engine.StepResult;

namespace RollingReboot.Core.Run.Steps;

/// <summary>
/// --window before anything changes (and before preflight, which would read a pool hours before it is touched): inside
/// an opening the run goes on, and its window ends with the opening (or --window-end, when earlier); outside it the run
/// waits for the next opening (--wait-for-window, bounded) or does not start.
/// </summary>
public static class WindowGate
{
    public static async Task<StepResult> EnterAsync(RunContext run, bool resumed, CancellationToken stop)
    {
        ArgumentNullException.ThrowIfNull(run);
        if (run.Options.Window is not { } window)
        {
            return Continue;
        }

        var now = run.Clock.GetUtcNow();
        var opening = window.CurrentOrNext(now);
        if (!opening.Contains(now))
        {
            var wait = opening.Start - now;
            var next = $"next opening {window.Local(opening.Start)} (in {MaintenanceWindow.Span(wait)})";
            if (run.Options.WaitForWindow is not { } most || wait > most)
            {
                var beyond = run.Options.WaitForWindow is { } m ? $", later than --max-window-wait {MaintenanceWindow.Span(m)}" : "";
                var why = $"outside the maintenance window {window.Describe()}: {next}{beyond}; nothing was changed";
                return resumed
                    ? new Pause($"{why}; resume in it with 'rollreboot resume --clustername {run.ClusterLabel}'")
                    : new Blocked($"{why}; start it again then, or add --wait-for-window");
            }

            run.Log.Info("Outside the maintenance window {Window}: waiting for its {Next} (--wait-for-window); nothing is changed meanwhile", window.Describe(), next);
            await Task.Delay(wait, run.Clock, stop);
        }

        var end = run.Options.WindowEnd is { } windowEnd && windowEnd < opening.End ? windowEnd : opening.End;
        run.WindowEnd = end;
        run.Log.Info("In the maintenance window {Window}: no host is started that would end after {End}", window.Describe(), window.Local(end));
        return Continue;
    }
}
