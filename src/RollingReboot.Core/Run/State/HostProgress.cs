namespace RollingReboot.Core.Run.State;

/// <summary>Where one host is in the run, as its journal lines say (in the spirit of Polly's CircuitState).</summary>
public enum HostPhase
{
    /// <summary>Nothing done to it yet in this run.</summary>
    Planned,

    /// <summary>Its disable was asked for: it may be disabled, and may have VMs leaving it.</summary>
    Disabled,

    /// <summary>Empty: every VM left it (verified), nothing irreversible done yet.</summary>
    Evacuated,

    /// <summary>host.reboot (or shutdown) may have been called: what proves it is in <see cref="HostProgress.Proof"/>.</summary>
    RebootRequested,

    /// <summary>host.reboot returned: the reboot was taken.</summary>
    RebootTaken,

    /// <summary>Proven back after its reboot.</summary>
    Back,

    /// <summary>Back and enabled (or left disabled) as it was before the run.</summary>
    Enabled,

    /// <summary>Finished in this run (rebooted, back and enabled as it was).</summary>
    Done,

    /// <summary>A pre hook said skip: enabled again, not rebooted, left alone.</summary>
    Skipped,
    Failed,

    /// <summary>'rollreboot evacuate' left it empty, disabled and marked for maintenance.</summary>
    LeftEvacuated,
}

/// <summary>What was recorded before a reboot, to tell the new boot from the old one.</summary>
public sealed record RebootProof(DateTimeOffset? BootTimeBefore, DateTimeOffset? ServerTime, string? BootId, bool Halt);

/// <summary>One host's progress. <see cref="DisabledByRun"/>: the run may have disabled it and has not enabled it again.</summary>
public sealed record HostProgress(string Uuid, string? Name, HostPhase Phase, bool DisabledByRun, RebootProof? Proof)
{
    public static HostProgress New(string uuid, string? name) => new(uuid, name, HostPhase.Planned, false, null);

    /// <summary>The reboot may have happened in this run (intent written): never ask for another one blindly.</summary>
    public bool RebootInFlight => Phase is HostPhase.RebootRequested or HostPhase.RebootTaken;
}
