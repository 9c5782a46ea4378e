using System.Diagnostics;
using System.Text;
using RollingReboot.Core.Ports;

namespace RollingReboot.Cli.Adapters;

/// <summary>
/// Runs the operator's hooks and checks with /bin/sh -c on this machine. The child gets this process's
/// environment without rollreboot's secrets, plus the hook variables; it is killed (with its children) at
/// the time limit. Time limits are wall-clock: a hook is real work even when the pool is the lab.
/// </summary>
internal sealed class LocalCommandRunner : ILocalCommandRunner
{
    private const int KeepOutputChars = 4000;

    public async Task<CommandResult> RunAsync(string command, IReadOnlyDictionary<string, string> environment, TimeSpan timeout, CancellationToken cancellationToken = default)
    {
        var start = new ProcessStartInfo("/bin/sh")
        {
            RedirectStandardOutput = true,
            RedirectStandardError = true,
            RedirectStandardInput = true,
            UseShellExecute = false,
        };
        start.ArgumentList.Add("-c");
        start.ArgumentList.Add(command);
        foreach (var name in start.Environment.Keys.Where(IsSecret).ToList())
        {
            start.Environment.Remove(name);
        }

        foreach (var (k, v) in environment)
        {
            start.Environment[k] = v;
        }

        using var process = new Process { StartInfo = start };
        var output = new StringBuilder();
        void Keep(string? line)
        {
            if (line is null)
            {
                return;
            }

            lock (output)
            {
                output.AppendLine(line);
                if (output.Length > KeepOutputChars * 2)
                {
                    output.Remove(0, output.Length - KeepOutputChars);
                }
            }
        }

        process.OutputDataReceived += (_, e) => Keep(e.Data);
        process.ErrorDataReceived += (_, e) => Keep(e.Data);
        try
        {
            process.Start();
        }
        catch (System.ComponentModel.Win32Exception e)
        {
            return new CommandResult(CommandStatus.CouldNotRun, -1, "", "cannot start /bin/sh: " + e.Message);
        }

        process.StandardInput.Close();
        process.BeginOutputReadLine();
        process.BeginErrorReadLine();
        using var limit = new CancellationTokenSource(timeout, TimeProvider.System);
        using var linked = CancellationTokenSource.CreateLinkedTokenSource(limit.Token, cancellationToken);
        try
        {
            await process.WaitForExitAsync(linked.Token);
        }
        catch (OperationCanceledException)
        {
            try
            {
                process.Kill(entireProcessTree: true);
            }
            catch (InvalidOperationException)
            {
                // It ended on its own meanwhile.
            }

            cancellationToken.ThrowIfCancellationRequested();
            return new CommandResult(CommandStatus.TimedOut, -1, Text(output), $"'{command}' did not finish within {timeout}");
        }

        // Let the output readers drain.
        process.WaitForExit();
        var code = process.ExitCode;
        return new CommandResult(CommandStatus.Exited, code, Text(output), code == 127 ? $"'{command}': command not found (exit 127)" : $"'{command}' exited {code}");
    }

    private static string Text(StringBuilder output)
    {
        lock (output)
        {
            return output.ToString().Trim();
        }
    }

    /// <summary>rollreboot's own secrets never reach a hook.</summary>
    internal static bool IsSecret(string name) =>
        name.StartsWith("ROLLREBOOT_", StringComparison.Ordinal)
        && (name.Contains("PASSWORD", StringComparison.Ordinal) || name.Contains("SECRET", StringComparison.Ordinal)
            || name.Contains("PASSPHRASE", StringComparison.Ordinal) || name.Contains("API_KEY", StringComparison.Ordinal)
            || name.Contains("NOTIFY_URL", StringComparison.Ordinal));
}
