using System.Diagnostics;
using System.Globalization;
using System.Text.Json.Nodes;

namespace RollingReboot.Bench;

/// <summary>The rollreboot CLI as a child process under <c>/usr/bin/time -v</c>, with the lab's environment.</summary>
public sealed class CliRunner(string cliDll, string workDirectory)
{
    /// <summary>Where the run's files go (logs, state, the lab's audit).</summary>
    public string WorkDirectory => workDirectory;

    public async Task<CliOutcome> RunAsync(IReadOnlyDictionary<string, string> labEnv, IReadOnlyList<string> args, string tag, TimeSpan wallLimit, CancellationToken cancellationToken)
    {
        Directory.CreateDirectory(workDirectory);
        var timeFile = Path.Combine(workDirectory, tag + ".time");
        var stdoutFile = Path.Combine(workDirectory, tag + ".stdout");
        var stderrFile = Path.Combine(workDirectory, tag + ".stderr");
        var stateDir = Path.Combine(workDirectory, tag + ".state");
        var psi = new ProcessStartInfo("/usr/bin/time")
        {
            RedirectStandardOutput = true,
            RedirectStandardError = true,
            UseShellExecute = false,
        };
        foreach (var a in new[] { "-v", "-o", timeFile, "dotnet", cliDll })
        {
            psi.ArgumentList.Add(a);
        }

        foreach (var a in args)
        {
            psi.ArgumentList.Add(a);
        }

        foreach (var (k, v) in labEnv)
        {
            psi.Environment[k] = v;
        }

        psi.Environment["ROLLREBOOT_STATE_DIR"] = stateDir;
        psi.Environment["DOTNET_CLI_TELEMETRY_OPTOUT"] = "1";
        psi.Environment["DOTNET_NOLOGO"] = "1";

        var wall = Stopwatch.StartNew();
        using var process = Process.Start(psi) ?? throw new InvalidOperationException("could not start /usr/bin/time");
        await using (var stdout = File.Create(stdoutFile))
        await using (var stderr = File.Create(stderrFile))
        {
            var copyOut = process.StandardOutput.BaseStream.CopyToAsync(stdout, cancellationToken);
            var copyErr = process.StandardError.BaseStream.CopyToAsync(stderr, cancellationToken);
            using var limit = CancellationTokenSource.CreateLinkedTokenSource(cancellationToken);
            limit.CancelAfter(wallLimit);
            try
            {
                await process.WaitForExitAsync(limit.Token);
            }
            catch (OperationCanceledException)
            {
                // Our own child: end it (and the dotnet under it) and report the run as timed out.
                process.Kill(entireProcessTree: true);
                await process.WaitForExitAsync(CancellationToken.None);
            }

            await Task.WhenAll(copyOut, copyErr);
        }

        wall.Stop();
        var time = File.Exists(timeFile) ? await File.ReadAllLinesAsync(timeFile, cancellationToken) : [];
        double Field(string name) => time.Select(l => l.Trim()).Where(l => l.StartsWith(name, StringComparison.Ordinal))
            .Select(l => double.TryParse(l[(l.LastIndexOf(':') + 1)..].Trim(), NumberStyles.Float, CultureInfo.InvariantCulture, out var v) ? v : double.NaN)
            .FirstOrDefault(double.NaN);
        var stderrText = await File.ReadAllTextAsync(stderrFile, cancellationToken);
        var exit = process.ExitCode;
        return new CliOutcome(
            exit,
            wall.Elapsed.TotalSeconds,
            Field("User time (seconds)") + Field("System time (seconds)"),
            Field("Maximum resident set size (kbytes)") / 1024.0,
            stdoutFile,
            string.Join('\n', stderrText.Split('\n').Where(l => l.Length > 0).TakeLast(8)),
            ReadRunLog(stateDir));
    }

    /// <summary>The run log (CLEF; its SimTime property is the CLI's clock, which is the lab's): phase times from it.</summary>
    private static IReadOnlyList<LogLine> ReadRunLog(string stateDir)
    {
        var dir = Path.Combine(stateDir, "logs");
        if (!Directory.Exists(dir))
        {
            return [];
        }

        var lines = new List<LogLine>();
        foreach (var file in Directory.GetFiles(dir, "*.clef"))
        {
            foreach (var line in File.ReadLines(file))
            {
                try
                {
                    if (JsonNode.Parse(line) is JsonObject o && o["SimTime"]?.GetValue<string>() is { } t &&
                        RollingReboot.Core.Time.IsoMoment.TryParse(t, out var at))
                    {
                        lines.Add(new LogLine(at, o["@mt"]?.GetValue<string>() ?? "", o["Host"]?.ToString() ?? ""));
                    }
                }
                catch (System.Text.Json.JsonException)
                {
                    // A torn last line: skip it.
                }
            }
        }

        return lines;
    }
}

public sealed record LogLine(DateTimeOffset At, string Template, string Host);

public sealed record CliOutcome(int ExitCode, double WallSeconds, double CpuSeconds, double PeakRssMiB, string StdoutFile, string StderrTail, IReadOnlyList<LogLine> Log);
