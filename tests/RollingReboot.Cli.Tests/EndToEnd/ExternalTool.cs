using System.Diagnostics;

namespace RollingReboot.Cli.Tests.EndToEnd;

/// <summary>A real program a test needs (tmux, python3): a missing one fails the test, never skips it.</summary>
internal static class ExternalTool
{
    public static async Task<(int ExitCode, string Output, string Error)> RunAsync(ProcessStartInfo start, string neededFor)
    {
        start.RedirectStandardOutput = true;
        start.RedirectStandardError = true;
        start.UseShellExecute = false;
        Process process;
        try
        {
            process = Process.Start(start)!;
        }
        catch (System.ComponentModel.Win32Exception e)
        {
            Assert.Fail($"{start.FileName} is needed {neededFor} (.ci/run installs it): {e.Message}");
            throw;
        }

        using (process)
        {
            var output = process.StandardOutput.ReadToEndAsync();
            var error = process.StandardError.ReadToEndAsync();
            await Task.WhenAll(output, error);
            await process.WaitForExitAsync();
            return (process.ExitCode, output.Result, error.Result);
        }
    }
}
