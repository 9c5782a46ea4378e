namespace RollingReboot.Core.Ports;

/// <summary>How a command ended.</summary>
public enum CommandStatus
{
    /// <summary>It ran and exited; <see cref="CommandResult.ExitCode"/> says how.</summary>
    Exited,
    /// <summary>It ran past its time limit and was stopped.</summary>
    TimedOut,
    /// <summary>It could not be started (missing executable, host not reachable over SSH, refused key).</summary>
    CouldNotRun,
}

/// <summary>A command's end: its status, exit code and the last lines it printed (for the log).</summary>
public sealed record CommandResult(CommandStatus Status, int ExitCode, string Output, string Detail)
{
    public bool Succeeded => Status == CommandStatus.Exited && ExitCode == 0;
}

/// <summary>Runs operator-supplied commands on the machine rollreboot runs on (hooks, blocker checks).</summary>
public interface ILocalCommandRunner
{
    /// <summary>Runs <paramref name="command"/> through the shell with these extra environment variables, bounded by <paramref name="timeout"/>.</summary>
    Task<CommandResult> RunAsync(string command, IReadOnlyDictionary<string, string> environment, TimeSpan timeout, CancellationToken cancellationToken = default);
}

/// <summary>Runs a command on a pool host (over SSH, with the same keys and host-key checks as the boot proof).</summary>
public interface IRemoteShell
{
    Task<CommandResult> RunAsync(string hostName, string address, string command, TimeSpan timeout, CancellationToken cancellationToken = default);
}

/// <summary>A message about the run for people (chat, paging): start, each host, failure, finish.</summary>
public sealed record RunNotification(string Event, string Text, string Cluster, string Pool, string RunId, string? Host = null, string? Outcome = null);

/// <summary>Tells people how the run goes. Never throws and never holds the run up: a lost message is only logged.</summary>
public interface IRunNotifier
{
    void Notify(RunNotification notification);
}
