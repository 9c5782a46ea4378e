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

    public Task<CommandResult> RunAsync(string command, IReadOnlyDictionary<string, string> environment, TimeSpan timeout, CancellationToken cancellationToken = default) =>
        RunAsync(command, environment, timeout, null, cancellationToken);

    /// <param name="input">What the command reads on stdin (UTF-8; --mail-command's message); none: stdin is closed at once.</param>
    public async Task<CommandResult> RunAsync(string command, IReadOnlyDictionary<string, string> environment, TimeSpan timeout, string? input, CancellationToken cancellationToken = default)
    {
        var start = new ProcessStartInfo("/bin/sh")
        {
            RedirectStandardOutput = true,
            RedirectStandardError = true,
            RedirectStandardInput = true,
            UseShellExecute = false,
            StandardInputEncoding = new UTF8Encoding(encoderShouldEmitUTF8Identifier: false),
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

        using var process = new Process { StartInfo = start, EnableRaisingEvents = true };
        // The process's own end, not the end of its output: a background child may keep the pipes open.
        var exited = new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously);
        process.Exited += (_, _) => exited.TrySetResult();
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

        var outputEnded = new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously);
        var errorEnded = new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously);
        process.OutputDataReceived += (_, e) =>
        {
            Keep(e.Data);
            if (e.Data is null)
            {
                outputEnded.TrySetResult();
            }
        };
        process.ErrorDataReceived += (_, e) =>
        {
            Keep(e.Data);
            if (e.Data is null)
            {
                errorEnded.TrySetResult();
            }
        };
        try
        {
            process.Start();
        }
        catch (System.ComponentModel.Win32Exception e)
        {
            return new CommandResult(CommandStatus.CouldNotRun, -1, "", "cannot start /bin/sh: " + e.Message);
        }

        if (process.HasExited)
        {
            exited.TrySetResult();
        }

        var feeding = Feed(process.StandardInput, input);
        process.BeginOutputReadLine();
        process.BeginErrorReadLine();
        using var limit = new CancellationTokenSource(timeout, TimeProvider.System);
        using var linked = CancellationTokenSource.CreateLinkedTokenSource(limit.Token, cancellationToken);
        try
        {
            await exited.Task.WaitAsync(linked.Token);
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

        // Let the output readers drain, bounded: a hook that leaves a background child holding its output open
        // must not hold the run.
        try
        {
            await Task.WhenAll(outputEnded.Task, errorEnded.Task).WaitAsync(TimeSpan.FromSeconds(5), TimeProvider.System, cancellationToken);
        }
        catch (TimeoutException)
        {
            // Some output may be missing from the message; the exit code is what counts.
        }

        await feeding;
        var code = process.ExitCode;
        return new CommandResult(CommandStatus.Exited, code, Text(output), code == 127 ? $"'{command}': command not found (exit 127)" : $"'{command}' exited {code}");
    }

    /// <summary>Writes the input beside the wait (a command that reads none must not hold us on a full pipe), then closes stdin.</summary>
    private static async Task Feed(StreamWriter stdin, string? input)
    {
        try
        {
            if (input is not null)
            {
                await stdin.WriteAsync(input);
                await stdin.FlushAsync();
            }

            stdin.Close();
        }
        catch (Exception e) when (e is IOException or ObjectDisposedException)
        {
            // The command ended (or was killed) without reading it all: its exit code says how it went.
        }
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
