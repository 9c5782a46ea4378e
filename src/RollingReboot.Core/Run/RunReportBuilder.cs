using RollingReboot.Core.Planning;
using RollingReboot.Core.Run.Engine;
using RollingReboot.Core.Run.Journal;

namespace RollingReboot.Core.Run;

/// <summary>The report of one invocation, from the state: the hosts it finished, what it put back, what is left.</summary>
public static class RunReportBuilder
{
    public static RunReport Build(RunContext run, RunOutcome outcome, string message, Plan? plan) =>
        new(run.RunId, run.LastSnapshot?.Name ?? "?", outcome, message,
            run.State.Finished.Skip(run.FinishedBefore).Select(f => ToReport(f, run.State)).ToList(),
            run.Restored.ToList(),
            run.State.OperatorActions.Skip(run.OperatorActionsBefore).ToList(),
            (run.Clock.GetUtcNow() - run.Started).TotalSeconds, plan?.Estimate.TotalSeconds ?? 0, plan)
        {
            Notes = run.Notes.ToList(),
            VmReturns = run.VmReturns,
        };

    public static string Describe(HostResult result) => result switch
    {
        HostResult.SkippedByHook => "skipped by pre hook (exit 70)",
        HostResult.Evacuated => "evacuated; left disabled for maintenance",
        HostResult.Returned => "returned",
        HostResult.Failed => "FAILED",
        HostResult.Updated => "updated in place, not rebooted",
        _ => "rebooted",
    };

    private static HostReport ToReport(HostFinished f, State.RunState state) =>
        new(f.Name ?? f.Host, f.IsMaster, f.Migrations, f.BytesMoved, f.EvacuationSeconds, f.RebootSeconds, f.Retries,
            f.Result == HostResult.Failed && state.Failed.LastOrDefault(x => x.Host == f.Host) is { } failed
                ? $"FAILED ({(failed.Down ? "not back" : "put back")}): {failed.Reason}"
                : Describe(f.Result ?? HostResult.Rebooted));
}
