using System.Globalization;
using System.Text.RegularExpressions;
using RollingReboot.Core.Ports;

namespace RollingReboot.Core.Run;

/// <summary>
/// Which active alerts hold the run, as kured decides it (pkg/blockers/prometheus.go, ActiveAlerts and matchesRegex):
/// every pending or firing alert counts, except those whose name the filter finds (an unanchored search); with
/// <see cref="FilterMatchOnly"/> only those it finds count; with <see cref="FiringOnly"/> pending alerts do not count.
/// </summary>
public sealed record AlertOptions
{
    /// <summary>Alert names to leave out (or, with <see cref="FilterMatchOnly"/>, the only ones that count).</summary>
    public Regex? Filter { get; init; }

    public bool FilterMatchOnly { get; init; }

    public bool FiringOnly { get; init; }

    /// <summary>The alert <paramref name="name"/> in state <paramref name="state"/> holds the run.</summary>
    public bool Counts(string name, string state) =>
        (Filter is null || Filter.IsMatch(name) == FilterMatchOnly)
        && (!FiringOnly || string.Equals(state, "firing", StringComparison.Ordinal));
}

/// <summary>What holds the run: active alerts, or a source that could not be asked (<see cref="Unreadable"/>).</summary>
public sealed record AlertHold(string Why, bool Unreadable);

/// <summary>
/// The alert gate: at the start a blocker, before each later host a reason to wait. An alert source that cannot be
/// asked blocks too, as in kured: a monitoring system that is down cannot say the pool is healthy.
/// </summary>
public sealed class AlertGate(IAlertSource source, AlertOptions options)
{
    /// <summary>How many alert names a reason lists before "...".</summary>
    private const int NamesShown = 10;

    public IAlertSource Source { get; } = source;

    public AlertOptions Options { get; } = options;

    /// <summary>Null when nothing holds the run; else why, naming the alerts that count (sorted, each name once).</summary>
    public async Task<AlertHold?> CheckAsync(CancellationToken cancellationToken = default)
    {
        IReadOnlyList<ActiveAlert> alerts;
        try
        {
            alerts = await Source.GetActiveAlertsAsync(cancellationToken);
        }
        catch (AlertSourceException e)
        {
            return new AlertHold($"{Source.Description} could not be asked for alerts ({e.Message})", Unreadable: true);
        }

        var counted = alerts.Where(a => Options.Counts(a.Name, a.State)).ToList();
        var names = counted.Select(a => a.Name).Distinct(StringComparer.Ordinal).Order(StringComparer.Ordinal).ToList();
        if (names.Count == 0)
        {
            return null;
        }

        var states = counted.Select(a => a.State).Distinct(StringComparer.Ordinal).Order(StringComparer.Ordinal);
        var shown = names.Count > NamesShown ? [.. names.Take(NamesShown), "..."] : names;
        return new AlertHold(string.Create(CultureInfo.InvariantCulture,
            $"{names.Count} alert(s) active in {Source.Description} ({string.Join("/", states)}): {string.Join(", ", shown)}"), Unreadable: false);
    }
}
