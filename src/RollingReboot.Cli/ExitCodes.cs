using RollingReboot.Core.Run;

namespace RollingReboot.Cli;

/// <summary>The exit codes of the lab contract; scripts and cron jobs depend on them.</summary>
public static class ExitCodes
{
    public const int Success = 0;
    public const int BadInput = 2;
    public const int PreflightBlocked = 3;
    public const int StoppedRestored = 4;
    public const int NeedsOperator = 5;
    public const int Interrupted = 130;

    /// <summary>The exit code of a run that ended with <paramref name="outcome"/>.</summary>
    public static int For(RunOutcome outcome) => outcome switch
    {
        RunOutcome.Done => Success,
        RunOutcome.Blocked => PreflightBlocked,
        RunOutcome.StoppedRestored => StoppedRestored,
        RunOutcome.Interrupted => Interrupted,
        _ => NeedsOperator,
    };
}

/// <summary>A failure the user can fix: printed as one line, never with a stack trace.</summary>
public sealed class UserFacingException(string message, int exitCode = ExitCodes.BadInput) : Exception(message)
{
    public UserFacingException() : this("invalid input") { }

    public UserFacingException(string message, Exception inner) : this(message + ": " + inner.Message) { }

    public int ExitCode { get; } = exitCode;
}
