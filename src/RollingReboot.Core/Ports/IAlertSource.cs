namespace RollingReboot.Core.Ports;

/// <summary>An alert the monitoring system has active: its name (the <c>alertname</c> label) and state (pending or firing).</summary>
public sealed record ActiveAlert(string Name, string State);

/// <summary>The monitoring system could not be asked, or gave an answer that is not a list of alerts.</summary>
public sealed class AlertSourceException : Exception
{
    public AlertSourceException()
    {
    }

    public AlertSourceException(string message) : base(message)
    {
    }

    public AlertSourceException(string message, Exception inner) : base(message, inner)
    {
    }
}

/// <summary>Where the run reads the active alerts that hold it (Prometheus' <c>/api/v1/alerts</c> in the CLI).</summary>
public interface IAlertSource
{
    /// <summary>The source as it may be logged: never its credentials (e.g. "Prometheus at https://prom:9090").</summary>
    string Description { get; }

    /// <summary>Every active alert (pending or firing).</summary>
    /// <exception cref="AlertSourceException">The source did not answer, or not with alerts.</exception>
    Task<IReadOnlyList<ActiveAlert>> GetActiveAlertsAsync(CancellationToken cancellationToken = default);
}
