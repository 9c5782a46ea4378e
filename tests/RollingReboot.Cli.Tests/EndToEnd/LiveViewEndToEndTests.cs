using System.Diagnostics;
using System.Text.Json.Nodes;
using System.Text.RegularExpressions;

namespace RollingReboot.Cli.Tests.EndToEnd;

/// <summary>
/// The live view in a real terminal (tmux, read with capture-pane while the run goes) and the plain lines in a pipe:
/// the real CLI as its own process against the lab, and after each run the audit shows nothing lost and all restored.
/// </summary>
public sealed partial class LiveViewEndToEndTests
{
    private static readonly string FourHosts = LabHarness.FourHosts("LP", "LC", "l");
    private static readonly string[] s_columns = ["HOST", "PHASE", "MIGRATIONS", "GiB MOVED", "ELAPSED", "ETA"];

    [GeneratedRegex(@"^\d{4}-\d\d-\d\d \d\d:\d\d:\d\d (INF|WRN|ERR|DBG) ")]
    private static partial Regex TimestampedLine();

    private static Regex HostRow(string host, string phase) => new($@"│\s*{host}\*?\s*│\s*{Regex.Escape(phase)}\s*│");

    /// <summary>A tmux server of its own (-L), a 160x50 terminal; the CLI's environment is the lab's.</summary>
    private sealed class Tmux : IAsyncDisposable
    {
        private readonly string _socket = "rollreboot-test-" + Guid.NewGuid().ToString("N")[..8];
        private readonly LabHarness _lab;

        public Tmux(LabHarness lab) => _lab = lab;

        public async Task<string> RunAsync(params string[] args)
        {
            ProcessStartInfo start = new("tmux") { RedirectStandardOutput = true, RedirectStandardError = true, UseShellExecute = false };
            start.ArgumentList.Add("-L");
            start.ArgumentList.Add(_socket);
            foreach (var a in args)
            {
                start.ArgumentList.Add(a);
            }

            // The server started by the first command takes this environment: the lab's addresses, never on a command line.
            foreach (var (k, v) in _lab.Lab.Environment)
            {
                start.Environment[k] = v;
            }

            start.Environment["ROLLREBOOT_STATE_DIR"] = _lab.StateDir;
            start.Environment["TERM"] = "xterm-256color";
            start.Environment["LC_ALL"] = "C.UTF-8";
            var (exit, output, error) = await ExternalTool.RunAsync(start, "to test the live view in a real terminal");
            return exit == 0 ? output : throw new InvalidOperationException($"tmux {string.Join(' ', args)}: exit {exit}: {error}");
        }

        /// <summary>The CLI in a new window; the shell stays a while after it so the last picture can be read.</summary>
        public Task StartAsync(string name, string cliArgs) =>
            RunAsync("new-session", "-d", "-s", name, "-x", "160", "-y", "50",
                $"dotnet '{Path.Combine(AppContext.BaseDirectory, "rollreboot.dll")}' {cliArgs}; echo \"CLI-EXIT=$?\"; sleep 60");

        /// <summary>The whole pane, its scrolled-off history included.</summary>
        public Task<string> CaptureAsync(string name) => RunAsync("capture-pane", "-p", "-J", "-S", "-", "-t", name);

        /// <summary>Captures until <paramref name="done"/> holds or two minutes pass (wall clock: the CLI is a real process); every capture is kept.</summary>
        public async Task<List<string>> WatchAsync(string name, Func<string, bool> done)
        {
            var captures = new List<string>();
            var deadline = Stopwatch.StartNew();
            while (deadline.Elapsed < TimeSpan.FromMinutes(2))
            {
                var screen = await CaptureAsync(name);
                captures.Add(screen);
                if (done(screen))
                {
                    return captures;
                }

                await Task.Delay(TimeSpan.FromMilliseconds(200), TimeProvider.System);
            }

            Assert.Fail($"the run in tmux did not finish in 2 minutes; last screen:\n{captures.LastOrDefault()}");
            return captures;
        }

        public async ValueTask DisposeAsync()
        {
            try
            {
                await RunAsync("kill-server");
            }
            catch (InvalidOperationException)
            {
                // No server left (it was never started).
            }
        }
    }

    private static int ExitOf(string screen) => int.Parse(Regex.Match(screen, @"CLI-EXIT=(\d+)").Groups[1].Value, System.Globalization.CultureInfo.InvariantCulture);

    [Fact]
    public async Task Terminal_LiveTableRedrawnInPlace_PauseThenResume_HostsReachDone_PoolRestored()
    {
        await using var lab = await LabHarness.StartAsync(FourHosts, timeScale: 200);
        await using var tmux = new Tmux(lab);

        await tmux.StartAsync("run", "--clustername LC --exec --pause-after 2");
        var captures = await tmux.WatchAsync("run", s => s.Contains("CLI-EXIT=", StringComparison.Ordinal));
        var last = captures[^1];
        Assert.True(ExitOf(last) == 4, last);
        // While it ran: the header and the table with a host being worked on.
        Assert.Contains(captures, c => s_columns.All(col => c.Contains(col, StringComparison.Ordinal)) && c.Contains("rollreboot run ", StringComparison.Ordinal));
        Assert.Contains(captures, c => HostRow("l1", "evacuating").IsMatch(c) || HostRow("l1", "rebooting").IsMatch(c) || HostRow("l2", "evacuating").IsMatch(c));
        // At the end: the canary's two hosts done, the others waiting; the table drawn once (redrawn in place, never
        // scrolled away as copies), the log's lines above it, the report below it.
        Assert.Matches(HostRow("l1", "done"), last);
        Assert.Matches(HostRow("l2", "done"), last);
        Assert.Matches(HostRow("l3", "waiting"), last);
        Assert.Single(last.Split('\n'), l => l.Contains("│ HOST", StringComparison.Ordinal));
        var lines = last.Split('\n').ToList();
        var tableAt = lines.FindIndex(l => l.Contains("│ HOST", StringComparison.Ordinal));
        Assert.True(lines.FindIndex(l => l.StartsWith("Locked pool LP", StringComparison.Ordinal)) is var locked && locked >= 0 && locked < tableAt, last);
        Assert.True(lines.FindIndex(l => l.StartsWith("Run ", StringComparison.Ordinal) && l.Contains("on pool LP:", StringComparison.Ordinal)) > tableAt, last);
        Assert.Equal(2, AuditAssert.BootCounts(lab.Audit()).Sum());
        AuditAssert.Restored(lab.Audit());

        // resume: the view starts from the journal (the two hosts already done) and follows the rest.
        await tmux.StartAsync("resume", "resume --clustername LC");
        captures = await tmux.WatchAsync("resume", s => s.Contains("CLI-EXIT=", StringComparison.Ordinal));
        last = captures[^1];
        Assert.True(ExitOf(last) == 0, last);
        Assert.Contains(captures, c => HostRow("l1", "done").IsMatch(c) && (HostRow("l3", "evacuating").IsMatch(c) || HostRow("l3", "rebooting").IsMatch(c) || HostRow("l3", "waiting").IsMatch(c)));
        foreach (var host in new[] { "l1", "l2", "l3", "l4" })
        {
            Assert.Matches(HostRow(host, "done"), last);
        }

        Assert.True(last.Contains("4/4 hosts done", StringComparison.Ordinal), last);
        Assert.Single(last.Split('\n'), l => l.Contains("│ HOST", StringComparison.Ordinal));
        Assert.All(AuditAssert.BootCounts(lab.Audit()), n => Assert.Equal(1, n));
        AuditAssert.Restored(lab.Audit());
    }

    [Fact]
    public async Task Terminal_NoLive_PlainLines()
    {
        await using var lab = await LabHarness.StartAsync(FourHosts, timeScale: 200);
        await using var tmux = new Tmux(lab);
        await tmux.StartAsync("plain", "--clustername LC --exec --no-live --pause-after 1");
        var last = (await tmux.WatchAsync("plain", s => s.Contains("CLI-EXIT=", StringComparison.Ordinal)))[^1];
        Assert.True(ExitOf(last) == 4, last);
        Assert.DoesNotContain("│", last, StringComparison.Ordinal);
        Assert.Contains("l1: evacuating (master)", last, StringComparison.Ordinal);
        Assert.Contains("l1: rebooting", last, StringComparison.Ordinal);
        AuditAssert.Restored(lab.Audit());
    }

    [Fact]
    public async Task Pipe_TimestampedLinesWithoutEscapes_AsWithoutTheView()
    {
        await using var lab = await LabHarness.StartAsync(FourHosts, timeScale: 200);
        ProcessStartInfo start = new("dotnet") { RedirectStandardError = true, RedirectStandardOutput = true, UseShellExecute = false };
        start.ArgumentList.Add(Path.Combine(AppContext.BaseDirectory, "rollreboot.dll"));
        foreach (var a in new[] { "--clustername", "LC", "--exec", "--pause-after", "1" })
        {
            start.ArgumentList.Add(a);
        }

        foreach (var (k, v) in lab.Lab.Environment)
        {
            start.Environment[k] = v;
        }

        start.Environment["ROLLREBOOT_STATE_DIR"] = lab.StateDir;
        // A capable TERM: it is stderr being a pipe that keeps the lines plain.
        start.Environment["TERM"] = "xterm-256color";
        using var process = Process.Start(start)!;
        var stdout = process.StandardOutput.ReadToEndAsync();
        var stderr = await process.StandardError.ReadToEndAsync();
        await process.WaitForExitAsync().WaitAsync(TimeSpan.FromMinutes(2));
        Assert.True(process.ExitCode == 4, $"exit {process.ExitCode}\n{await stdout}\n{stderr}");
        Assert.DoesNotContain('\u001b', stderr);
        Assert.DoesNotContain('\u001b', await stdout);
        var lines = stderr.Split('\n', StringSplitOptions.RemoveEmptyEntries);
        Assert.Contains(lines, l => l.EndsWith("INF l1: evacuating (master)", StringComparison.Ordinal));
        Assert.All(lines.Where(l => !l.StartsWith("rollreboot: ", StringComparison.Ordinal)), l => Assert.Matches(TimestampedLine(), l));
        Assert.StartsWith("Run ", await stdout, StringComparison.Ordinal);
        AuditAssert.Restored(lab.Audit());
    }
}
