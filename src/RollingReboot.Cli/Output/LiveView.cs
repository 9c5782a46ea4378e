using System.Globalization;
using System.Threading.Channels;
using RollingReboot.Core.Planning;
using Spectre.Console;
using Spectre.Console.Rendering;

namespace RollingReboot.Cli.Output;

/// <summary>
/// The live view on a terminal: a table per host redrawn in place on stderr (Spectre.Console's live display), fed
/// only by <see cref="LiveModel"/>. Log lines are handed to it while it runs and written above the table by the same
/// loop that redraws it, so nothing else writes to the terminal in between and the table is never garbled. Redrawn at
/// each change and at least once a second (wall clock: it is for the eye, not for the run).
/// </summary>
internal sealed class LiveView : IAsyncDisposable
{
    private static readonly TimeSpan s_refresh = TimeSpan.FromSeconds(1);

    private readonly IAnsiConsole _console;
    private readonly TextWriter _terminal;
    private readonly Channel<string?> _inbox = Channel.CreateUnbounded<string?>(new UnboundedChannelOptions { SingleReader = true });
    private readonly Task _loop;
    private bool _stopped;

    private LiveView(IAnsiConsole console, TextWriter terminal, LiveModel model)
    {
        _console = console;
        _terminal = terminal;
        Model = model;
        _loop = RunAsync();
    }

    public LiveModel Model { get; }

    /// <summary>
    /// Whether the view is shown: stderr is a terminal that understands cursor movement (not redirected, TERM set and
    /// not "dumb") and --no-live was not given. Otherwise the log's plain lines, exactly as without the view.
    /// </summary>
    public static bool Wanted(CliEnvironment env, bool noLive) => !noLive && env.ErrorIsTerminal;

    /// <summary>Whether a terminal of this TERM can show it (the part of <see cref="CliEnvironment.ErrorIsTerminal"/> beside redirection).</summary>
    public static bool CapableTerm(string? term) => term is { Length: > 0 } && !term.Equals("dumb", StringComparison.Ordinal);

    /// <summary>Starts the view on <paramref name="terminal"/> (the process's stderr).</summary>
    public static LiveView Start(TextWriter terminal, LiveModel model)
    {
        var console = AnsiConsole.Create(new AnsiConsoleSettings
        {
            Out = new AnsiConsoleOutput(terminal),
            Ansi = AnsiSupport.Yes,
            ColorSystem = ColorSystemSupport.Detect,
            Interactive = InteractionSupport.Yes,
        });
        return new LiveView(console, terminal, model);
    }

    /// <summary>A log line (with its newline) to show above the table; once the view has stopped, straight to the terminal.</summary>
    public void Log(string line)
    {
        if (!_inbox.Writer.TryWrite(line))
        {
            _terminal.Write(line);
            _terminal.Flush();
        }
    }

    /// <summary>Something changed: redraw now rather than at the next tick.</summary>
    public void Changed() => _inbox.Writer.TryWrite(null);

    /// <summary>Draws the last picture, leaves it on the terminal and stops.</summary>
    public async Task StopAsync()
    {
        if (_stopped)
        {
            return;
        }

        _stopped = true;
        _inbox.Writer.TryComplete();
        await _loop;
    }

    public async ValueTask DisposeAsync() => await StopAsync();

    private async Task RunAsync()
    {
        // Started from a task of its own: the caller goes on with the run.
        await Task.Yield();
        try
        {
            await _console.Live(Render(Model.Snapshot())).AutoClear(false).Overflow(VerticalOverflow.Ellipsis).Cropping(VerticalOverflowCropping.Top).StartAsync(async ctx =>
            {
                var reader = _inbox.Reader;
                while (true)
                {
                    using var tick = new CancellationTokenSource(s_refresh, TimeProvider.System);
                    bool more;
                    try
                    {
                        more = await reader.WaitToReadAsync(tick.Token);
                    }
                    catch (OperationCanceledException)
                    {
                        more = true;
                    }

                    var lines = new System.Text.StringBuilder();
                    while (reader.TryRead(out var line))
                    {
                        lines.Append(line);
                    }

                    if (lines.Length > 0)
                    {
                        // Above the table, in one write: Spectre's live display puts the cursor where its picture began,
                        // the old picture is erased (lines shorter than its rows leave nothing behind), then redrawn below.
                        _console.Write(new Erased(new Text(lines.ToString()), before: true));
                    }

                    ctx.UpdateTarget(Render(Model.Snapshot()));
                    ctx.Refresh();
                    if (!more)
                    {
                        return;
                    }
                }
            });
        }
        catch (Exception e) when (e is IOException or InvalidOperationException)
        {
            // A terminal gone away (closed ssh session): the run goes on; its log file keeps everything.
        }
    }

    /// <summary>The picture: a header line (run, pool, hosts done, elapsed, ETA) over one row per host.</summary>
    internal static IRenderable Render(LiveSnapshot s)
    {
        var table = new Table().Border(TableBorder.Rounded).Expand();
        table.AddColumn("HOST");
        table.AddColumn("PHASE");
        table.AddColumn(new TableColumn("MIGRATIONS").RightAligned());
        table.AddColumn(new TableColumn("GiB MOVED").RightAligned());
        table.AddColumn(new TableColumn("ELAPSED").RightAligned());
        table.AddColumn(new TableColumn("ETA").RightAligned());
        foreach (var h in s.Hosts)
        {
            var phase = Markup.Escape(h.Phase);
            var styled = h.Phase switch
            {
                "done" => $"[green]{phase}[/]",
                "evacuating" => $"[yellow]{phase}[/]",
                "rebooting" or "shut down, waiting for power-on" => $"[blue]{phase}[/]",
                "left alone" or "waiting" or "planned" => $"[grey]{phase}[/]",
                _ => phase,
            };
            table.AddRow(
                new Markup(Markup.Escape(h.Name + (h.IsMaster ? "*" : ""))),
                new Markup(styled),
                new Text(h.Reboots ? h.Migrations : "-"),
                new Text(h.BytesMoved > 0 ? (h.BytesMoved / (double)(1L << 30)).ToString("0.0", CultureInfo.InvariantCulture) : "-"),
                new Text(h.ElapsedSeconds is { } e ? Units.Duration(e) : "-"),
                new Text(h.EtaSeconds is { } eta && eta > 0 ? "~" + Units.Duration(eta) : "-"));
        }

        var header = string.Create(CultureInfo.InvariantCulture,
            $"rollreboot run {s.RunId} · pool {s.Pool} (cluster {s.Cluster}) · {s.State} · {s.HostsDone}/{s.HostsToReboot} hosts done · elapsed {Units.Duration(s.ElapsedSeconds)}");
        if (s.EtaSeconds is { } runEta && runEta > 0)
        {
            header += " · about " + Units.Duration(runEta) + " to go";
        }

        table.Caption(new TableTitle("* master; ETA estimated from the migrations so far and the reboots seen"));
        // The header's line erased to its end: a shorter header than the last leaves nothing of it.
        return new Rows(new Erased(new Markup("[bold]" + Markup.Escape(header) + "[/]"), before: false), table);
    }

    /// <summary>A renderable with an erase: the screen below the cursor before it (ED), or the rest of its line after it (EL).</summary>
    private sealed class Erased(IRenderable inner, bool before) : IRenderable
    {
        public Measurement Measure(RenderOptions options, int maxWidth) => inner.Measure(options, maxWidth);

        public IEnumerable<Segment> Render(RenderOptions options, int maxWidth)
        {
            if (before)
            {
                yield return Segment.Control("\u001b[0J");
            }

            foreach (var segment in inner.Render(options, maxWidth))
            {
                yield return segment;
            }

            if (!before)
            {
                yield return Segment.Control("\u001b[0K");
            }
        }
    }
}
