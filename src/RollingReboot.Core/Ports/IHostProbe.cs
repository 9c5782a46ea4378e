namespace RollingReboot.Core.Ports;

public enum ProbeOutcome
{
    /// <summary>Connected, authenticated, the command answered.</summary>
    Answered,
    /// <summary>Nothing listens (connection refused or timed out).</summary>
    HostDown,
    /// <summary>The port is open but the SSH service is not ready.</summary>
    NotReady,
    /// <summary>Authentication failed: retrying will not help.</summary>
    AuthFailed,
    /// <summary>The host key is unknown or changed: refused.</summary>
    HostKeyRejected,
}

public sealed record ProbeResult(ProbeOutcome Outcome, string? BootId, string Detail);

/// <summary>Proves a host is back by asking it, over SSH, which boot it is in.</summary>
public interface IHostProbe
{
    Task<ProbeResult> GetBootIdAsync(string hostName, string address, CancellationToken cancellationToken = default);
}
