namespace RollingReboot.Cli.Adapters;

/// <summary>
/// Whether a rollreboot process named in a lock's heartbeat still runs on this machine (Linux /proc): a run killed
/// with -9 is seen dead at once, so 'resume' and 'restore' need not wait for its heartbeat to age out.
/// </summary>
internal static class LocalProcesses
{
    /// <summary>true / false for a process on this machine; null when this machine cannot tell (another machine, no
    /// /proc, this very process).</summary>
    public static bool? IsRollrebootRunning(string machine, int pid)
    {
        if (!string.Equals(machine, Environment.MachineName, StringComparison.Ordinal) || !OperatingSystem.IsLinux() || pid == Environment.ProcessId)
        {
            return null;
        }

        var cmdline = $"/proc/{pid}/cmdline";
        try
        {
            // A pid reused by another program is not our run.
            return File.Exists(cmdline) && File.ReadAllText(cmdline).Contains("rollreboot", StringComparison.OrdinalIgnoreCase);
        }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException)
        {
            return null;
        }
    }
}
