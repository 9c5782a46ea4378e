namespace RollingReboot.Core.Run.Engine;

/// <summary>What a step says happens next (values, as Polly's Outcome, not exceptions for control flow).</summary>
public abstract record StepResult
{
    public static StepResult Continue { get; } = new ContinueResult();

    /// <summary>Go on with the next step.</summary>
    public sealed record ContinueResult : StepResult;

    /// <summary>A pre hook said skip this host; the host pipeline has put it back.</summary>
    public sealed record SkipHost(string Why) : StepResult;

    /// <summary>Stop at a safe point on purpose (canary, window, blocker): restored, resumable.</summary>
    public sealed record Pause(string Why) : StepResult;

    /// <summary>Stop: restored; <paramref name="OperatorAction"/> is what someone must do, when it needs someone.</summary>
    public sealed record Stop(string Why, bool NeedsOperator = false, string? OperatorAction = null) : StepResult
    {
        /// <summary>A member host failed on its own (could not be evacuated, did not come back): with --max-failed-hosts the
        /// run may go on without it.</summary>
        public bool HostOnly { get; init; }
    }

    /// <summary>Stopped before anything changed (preflight blockers, another run's lock).</summary>
    public sealed record Blocked(string Why) : StepResult;

    public bool IsContinue => this is ContinueResult or SkipHost;

    /// <summary>The more serious of two results (for hosts of one wave).</summary>
    public static StepResult Worst(StepResult a, StepResult b) => Rank(b) > Rank(a) ? b : a;

    private static int Rank(StepResult r) => r switch
    {
        Stop { NeedsOperator: true } => 5,
        Stop => 4,
        Blocked => 3,
        Pause => 2,
        SkipHost => 1,
        _ => 0,
    };
}

/// <summary>How a mode's steps ended: the result, the report's message, the plan it worked from.</summary>
public sealed record RunEnding(StepResult Result, string Message, Planning.Plan? Plan);
