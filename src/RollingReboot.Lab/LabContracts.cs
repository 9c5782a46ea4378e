namespace RollingReboot.Lab;

/// <summary>Where the lab's parts record what happened (the audit endpoint serves it).</summary>
public interface ILabAudit
{
    /// <summary>The lab's clock, in simulated seconds since the lab started.</summary>
    double SimulatedSeconds { get; }

    void Event(string type, IReadOnlyDictionary<string, object?> fields);

    void Violation(string text);
}

/// <summary>A read-only view of the simulated pool for the lab's other endpoints (CloudStack, SSH).</summary>
public interface ILabPoolView
{
    IReadOnlyList<LabHostView> Hosts { get; }

    IReadOnlyList<LabVmView> Vms { get; }
}

/// <summary>A host as the lab's other endpoints see it: <see cref="Enabled"/> is XAPI's host.enabled.</summary>
public sealed record LabHostView(string Name, string Uuid, string Address, bool Live)
{
    public bool Enabled { get; init; } = true;

    public bool IsMaster { get; init; }
}

public sealed record LabVmView(string Name, string Uuid, string? HostName, string PowerState, string? AffinityGroup);
