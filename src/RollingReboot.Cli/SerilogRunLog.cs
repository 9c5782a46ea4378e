using RollingReboot.Core.Run;
using Serilog;

namespace RollingReboot.Cli;

/// <summary>The run's voice through Serilog: stderr (timestamped when not a TTY) and the run's JSON log.</summary>
public sealed class SerilogRunLog(ILogger logger) : IRunLog
{
    public void Info(string template, params object?[] values) => logger.Information(template, values);

    public void Warn(string template, params object?[] values) => logger.Warning(template, values);

    public void Error(string template, params object?[] values) => logger.Error(template, values);

    public void HostPhase(string host, string phase) => logger.Information("{Host}: {Phase}", host, phase);
}

public static class Logging
{
    /// <summary>stderr for people, CLEF JSON per run for machines. Secrets are never passed to the logger.</summary>
    /// <param name="cluster">In a fleet, the cluster each line is about (shown in brackets).</param>
    /// <param name="console">Where the stderr lines go: <paramref name="env"/>'s stderr, or the live view while it is shown.</param>
    public static ILogger Create(CliEnvironment env, string? logFile, TimeProvider clock, bool verbose, string? cluster = null, ConsoleLogTarget? console = null)
    {
        var prefix = cluster is null ? "" : "[{Cluster}] ";
        var config = new LoggerConfiguration()
            .MinimumLevel.Is(verbose ? Serilog.Events.LogEventLevel.Debug : Serilog.Events.LogEventLevel.Information)
            .Enrich.With(new ClockEnricher(clock))
            .WriteTo.Sink(new WriterSink(console ?? new ConsoleLogTarget(env.Error), new Serilog.Formatting.Display.MessageTemplateTextFormatter(
                env.IsTerminal ? prefix + "{Message:lj}{NewLine}" : "{SimTime:yyyy-MM-dd HH:mm:ss} {Level:u3} " + prefix + "{Message:lj}{NewLine}", System.Globalization.CultureInfo.InvariantCulture)));
        if (cluster is not null)
        {
            config = config.Enrich.WithProperty("Cluster", cluster);
        }

        if (logFile is not null)
        {
            // logs/ and the state directory above it owner-only, the file 0600 before Serilog appends to it.
            var dir = Path.GetDirectoryName(Path.GetFullPath(logFile))!;
            OwnerOnly.Directory(dir, Path.GetDirectoryName(dir));
            OwnerOnly.File0600(logFile);
            config = config.WriteTo.File(new Serilog.Formatting.Compact.CompactJsonFormatter(), logFile);
        }

        return config.CreateLogger();
    }

    /// <summary>Writes to the console target, one event at a time.</summary>
    private sealed class WriterSink(ConsoleLogTarget target, Serilog.Formatting.ITextFormatter formatter) : Serilog.Core.ILogEventSink
    {
        public void Emit(Serilog.Events.LogEvent logEvent) => target.Emit(logEvent, formatter);
    }

    /// <summary>Stamps each event with the run's clock (the lab's simulated time in rehearsals).</summary>
    private sealed class ClockEnricher(TimeProvider clock) : Serilog.Core.ILogEventEnricher
    {
        public void Enrich(Serilog.Events.LogEvent logEvent, Serilog.Core.ILogEventPropertyFactory propertyFactory) =>
            logEvent.AddPropertyIfAbsent(propertyFactory.CreateProperty("SimTime", clock.GetUtcNow().UtcDateTime));
    }
}

/// <summary>
/// The log's stderr lines: written to the CLI's stderr writer (a test's writer in tests), or, while the live view is
/// shown, handed to it whole so that it writes them above its table (<see cref="Divert"/>).
/// </summary>
public sealed class ConsoleLogTarget(TextWriter writer)
{
    private readonly Lock _lock = new();
    private Action<string>? _divert;

    /// <summary>From now on each line goes to <paramref name="divert"/> (null: back to stderr).</summary>
    public void Divert(Action<string>? divert)
    {
        lock (_lock)
        {
            _divert = divert;
        }
    }

    internal void Emit(Serilog.Events.LogEvent logEvent, Serilog.Formatting.ITextFormatter formatter)
    {
        lock (_lock)
        {
            if (_divert is { } divert)
            {
                using var line = new StringWriter(System.Globalization.CultureInfo.InvariantCulture);
                formatter.Format(logEvent, line);
                divert(line.ToString());
                return;
            }

            formatter.Format(logEvent, writer);
            writer.Flush();
        }
    }
}
