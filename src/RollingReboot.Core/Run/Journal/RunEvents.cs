using System.Text.Json.Serialization;

namespace RollingReboot.Core.Run.Journal;

/// <summary>
/// One line of the run's journal. The journal is the run's state: <see cref="State.RunState.Apply"/> folds these, live
/// and on resume/restore alike. Each type has the kind string that journals written before the typed log used, so an
/// old journal still reads. A change is journaled twice, its intent ("may have happened from here on") and its end.
/// </summary>
public abstract record RunEvent
{
    /// <summary>When it was written (the run's clock); set by the journal.</summary>
    [JsonIgnore]
    public DateTimeOffset At { get; init; }

    [JsonIgnore]
    public abstract string Kind { get; }
}

/// <summary>A kind this version does not know (written by a newer one): kept, never acted on.</summary>
public sealed record UnknownEvent(string UnknownKind) : RunEvent
{
    public override string Kind => UnknownKind;
}

// ---- the run itself ---------------------------------------------------------------------------

/// <summary>The first line. Mode: "run" (a rolling reboot), "evacuate" or "return".</summary>
public sealed record RunStarted(string RunId, string Pool, string? PoolName, string? Cluster, string Mode = "run") : RunEvent
{
    public override string Kind => "run.start";
}

/// <summary>A later invocation took the journal over ("resume" or "restore").</summary>
public sealed record RunContinued(string Mode) : RunEvent
{
    public override string Kind => "run." + Mode;
}

/// <summary>What the run will put back: recorded before anything changes.</summary>
public sealed record OriginalsRecorded(
    string? PoolUuid,
    HaRecord Ha,
    string? CloudstackManagedState,
    IReadOnlyDictionary<string, bool> HostEnabled,
    IReadOnlyDictionary<string, string?> VmHost,
    string? AutoPowerOn = null) : RunEvent
{
    public override string Kind => "originals";

    /// <summary>Hosts disabled until their reboot (a mandatory reboot guidance pending, xapi 24.10.0+); absent in older journals.</summary>
    public IReadOnlyList<string>? DisabledUntilReboot { get; init; }
}

public sealed record HaRecord(bool Enabled, IReadOnlyList<string> HeartbeatSrs, IReadOnlyDictionary<string, string> Configuration, long HostFailuresToTolerate, bool AllowOvercommit);

/// <summary>Choices made once, before anything changed, that every later plan of the run keeps (resume too).</summary>
public sealed record PlanDecided(int? MaxHostsDown, IReadOnlyList<string> NotNeedingReboot) : RunEvent
{
    public override string Kind => "plan.decided";

    /// <summary>--apply-updates: host uuid to what its updates ask for (<see cref="Pool.UpdateAction"/> names), decided
    /// once from the update list read before anything changed; absent otherwise and in older journals.</summary>
    public IReadOnlyDictionary<string, string>? Updates { get; init; }
}

/// <summary>Something the run could not put back or finish: an operator must act. Also in the report.</summary>
public sealed record OperatorActionNeeded(string Action) : RunEvent
{
    public override string Kind => "operator.action";
}

/// <summary>Stopped at a safe point on purpose (canary, window, blocker): 'resume' continues.</summary>
public sealed record RunPaused(string Outcome, string? Message) : RunEvent
{
    public override string Kind => "run.paused";
}

public sealed record RunEnded(string Outcome, string? Message = null) : RunEvent
{
    public override string Kind => "run.end";
}

// ---- the pool's lock ---------------------------------------------------------------------------

public sealed record LockIntended(string Value) : RunEvent
{
    public override string Kind => "lock.intent";
}

public sealed record LockAcquired(string Key) : RunEvent
{
    public override string Kind => "lock.acquired";
}

public sealed record LockReleaseIntended : RunEvent
{
    public override string Kind => "lock.release.intent";
}

public sealed record LockReleased : RunEvent
{
    public override string Kind => "lock.released";
}

// ---- HA and CloudStack -------------------------------------------------------------------------

public sealed record HaDisableIntended : RunEvent
{
    public override string Kind => "ha.disable.intent";
}

public sealed record HaDisabled : RunEvent
{
    public override string Kind => "ha.disable.done";
}

public sealed record HaEnableIntended(IReadOnlyDictionary<string, string>? Configuration = null, IReadOnlyList<string>? HeartbeatSrs = null) : RunEvent
{
    public override string Kind => "ha.enable.intent";
}

public sealed record HaEnabled : RunEvent
{
    public override string Kind => "ha.enable.done";
}

public sealed record UnmanageIntended(string? ClusterId = null) : RunEvent
{
    public override string Kind => "cloudstack.unmanage.intent";
}

public sealed record Unmanaged : RunEvent
{
    public override string Kind => "cloudstack.unmanage.done";
}

public sealed record ManageIntended(string? ClusterId = null) : RunEvent
{
    public override string Kind => "cloudstack.manage.intent";
}

public sealed record Managed : RunEvent
{
    public override string Kind => "cloudstack.manage.done";
}

/// <summary>pool.other_config:auto_poweron is about to be set "false" for the run (xapi-autostart-vms would start halted
/// VMs on every booted host and eat the capacity the plan counted on).</summary>
public sealed record AutoPowerOnOffIntended(string? Original) : RunEvent
{
    public override string Kind => "pool.autopoweron.off.intent";
}

public sealed record AutoPowerOnOff : RunEvent
{
    public override string Kind => "pool.autopoweron.off.done";
}

/// <summary>pool.other_config:auto_poweron is as it was before the run again.</summary>
public sealed record AutoPowerOnRestored : RunEvent
{
    public override string Kind => "pool.autopoweron.restore.done";
}

// ---- hosts -------------------------------------------------------------------------------------

public sealed record HostDisableIntended(string Host, string? Name = null) : RunEvent
{
    public override string Kind => "host.disable.intent";
}

public sealed record HostDisabled(string Host) : RunEvent
{
    public override string Kind => "host.disable.done";
}

public sealed record HostEnableIntended(string Host, string? Name = null) : RunEvent
{
    public override string Kind => "host.enable.intent";
}

/// <summary>The host's enabled flag is as it was before the run again (enabled, or left disabled as the operator had it).</summary>
public sealed record HostEnabled(string Host) : RunEvent
{
    public override string Kind => "host.enable.done";
}

/// <summary>PBD.plug of a rebooted host's PBD for a shared SR it came back without.</summary>
public sealed record HostSrPlugIntended(string Host, string Sr, string SrName) : RunEvent
{
    public override string Kind => "host.sr.plug.intent";
}

public sealed record HostSrPlugged(string Host, string Sr) : RunEvent
{
    public override string Kind => "host.sr.plug.done";
}

/// <summary>Verified empty after its evacuation: the last state before anything irreversible.</summary>
public sealed record HostEmptied(string Host) : RunEvent
{
    public override string Kind => "host.empty";
}

/// <summary>What proves the reboot later: the boot time before it (ms since the epoch), the host's clock just before
/// the call, its SSH boot id.</summary>
public sealed record RebootIntended(string Host, string? Name, long? BootTime, string? ServerTime, string? BootId, bool Halt = false) : RunEvent
{
    public override string Kind => "host.reboot.intent";
}

/// <summary>host.reboot (or host.shutdown) returned: the reboot was taken.</summary>
public sealed record RebootTaken(string Host) : RunEvent
{
    public override string Kind => "host.reboot.done";
}

/// <summary>--halt: the master is about to power a halted host on through its power_on_mode (host.power_on).</summary>
public sealed record PowerOnIntended(string Host, string? Name, string Mode) : RunEvent
{
    public override string Kind => "host.poweron.intent";
}

/// <summary>host.power_on returned (or answered HOST_IS_LIVE: someone was quicker).</summary>
public sealed record PowerOnDone(string Host) : RunEvent
{
    public override string Kind => "host.poweron.done";
}

/// <summary>Proven back after its reboot: new boot time, toolstack up, live, new SSH boot id.</summary>
public sealed record HostBack(string Host, long? BootTime = null) : RunEvent
{
    public override string Kind => "host.back";
}

/// <summary>How a host ended in the run (absent in journals of older versions: rebooted).</summary>
public enum HostResult
{
    Rebooted,
    SkippedByHook,

    /// <summary>--max-failed-hosts: the host failed and the run went on without it.</summary>
    Failed,
    Evacuated,
    Returned,

    /// <summary>--apply-updates: installed in place (a toolstack restart at most), not rebooted.</summary>
    Updated,
}

/// <summary>A host is finished in this run; the timings feed the report.</summary>
public sealed record HostFinished(
    string Host, string? Name, bool IsMaster = false, int Migrations = 0, long BytesMoved = 0,
    double EvacuationSeconds = 0, double RebootSeconds = 0, int Retries = 0, HostResult? Result = null) : RunEvent
{
    public override string Kind => "host.done";
}

/// <summary>--max-failed-hosts: a member host failed (Down: it did not come back; else it could not be evacuated and was
/// put back as it was); later plans and resume leave it out.</summary>
public sealed record HostFailed(string Host, string? Name, string Reason, bool Down) : RunEvent
{
    public override string Kind => "host.failed";
}

/// <summary>A pre hook said skip (exit 70): not rebooted, enabled again, left alone by later plans and by resume.</summary>
public sealed record HostSkipped(string Host, string? Name, string? Reason) : RunEvent
{
    public override string Kind => "host.skipped";
}

/// <summary>'rollreboot evacuate' is about to write the marker that keeps a host out for maintenance.</summary>
public sealed record EvacuationMarkIntended(string Host, string Key) : RunEvent
{
    public override string Kind => "host.evacuated.intent";
}

/// <summary>The host is empty, disabled and marked: it stays so (restore does not enable it) until 'rollreboot return'.</summary>
public sealed record HostLeftEvacuated(string Host, string? Name) : RunEvent
{
    public override string Kind => "host.evacuated";
}

/// <summary>'rollreboot return' is about to remove a host's evacuation marker.</summary>
public sealed record EvacuationMarkClearIntended(string Host, string Key) : RunEvent
{
    public override string Kind => "host.evacuated.clear.intent";
}

public sealed record EvacuationMarkCleared(string Host) : RunEvent
{
    public override string Kind => "host.evacuated.cleared";
}

// ---- VMs ---------------------------------------------------------------------------------------

public sealed record MigrationIntended(string Vm, string? Name, string? From, string To) : RunEvent
{
    public override string Kind => "vm.migrate.intent";
}

public sealed record MigrationDone(string Vm, string? To) : RunEvent
{
    public override string Kind => "vm.migrate.done";
}

public sealed record MigrationFailed(string Vm, string? To, string? Error) : RunEvent
{
    public override string Kind => "vm.migrate.failed";
}

public sealed record ReturnIntended(string Vm, string? Name, string To) : RunEvent
{
    public override string Kind => "vm.return.intent";
}

public sealed record ReturnDone(string Vm) : RunEvent
{
    public override string Kind => "vm.return.done";
}

/// <summary>
/// --shutdown-pinned-vms: a VM that cannot be live-migrated is about to be shut down for its host's reboot. Written before
/// the shutdown is asked, so a crash, resume or restore always knows to start it again on that host.
/// </summary>
public sealed record VmShutdownIntended(string Vm, string? Name, string Host, string? HostName) : RunEvent
{
    public override string Kind => "vm.shutdown.intent";
}

/// <summary>The pinned VM is halted; How: "clean" (VM.clean_shutdown) or "hard" (VM.hard_shutdown).</summary>
public sealed record VmShutDown(string Vm, string How) : RunEvent
{
    public override string Kind => "vm.shutdown.done";
}

/// <summary>A VM the run shut down runs again (started on its host by the run, or found running).</summary>
public sealed record VmStarted(string Vm, string? Host) : RunEvent
{
    public override string Kind => "vm.start.done";
}

// ---- updates (--apply-updates) -----------------------------------------------------------------

/// <summary>pool.sync_updates returned: the repository's metadata as of now, and the hash host.apply_updates needs.</summary>
public sealed record UpdatesSynced(string Hash) : RunEvent
{
    public override string Kind => "updates.synced";
}

/// <summary>
/// The host's updates are about to be installed (host.apply_updates, or updater.py update on XCP-ng). From here they may
/// be installed: a resumed run waits for any installation still running, reads the host's updates again, and installs
/// only what is still missing, so nothing is installed twice or skipped.
/// </summary>
public sealed record UpdateIntended(string Host, string? Name, string Hash, IReadOnlyList<string> Updates) : RunEvent
{
    public override string Kind => "host.update.intent";
}

/// <summary>The host's updates are installed; Guidances: what xapi left pending on it (mandatory and recommended).</summary>
public sealed record UpdateApplied(string Host, IReadOnlyList<string> Guidances, IReadOnlyList<string>? FailedLivepatches = null) : RunEvent
{
    public override string Kind => "host.update.done";
}

/// <summary>Installing the host's updates failed (xapi's error): the run stops, the host is put back as it was.</summary>
public sealed record UpdateFailed(string Host, string Error) : RunEvent
{
    public override string Kind => "host.update.failed";
}

/// <summary>host.restart_agent is about to be asked; AgentStartTime (Unix ms) before it proves the restart.</summary>
public sealed record ToolstackRestartIntended(string Host, string? Name, long? AgentStartTime) : RunEvent
{
    public override string Kind => "host.toolstack.intent";
}

public sealed record ToolstackRestarted(string Host) : RunEvent
{
    public override string Kind => "host.toolstack.done";
}

/// <summary>--apply-vm-guidances: a VM guidance (restart_vm, restart_device_model) is about to be applied.</summary>
public sealed record VmGuidanceIntended(string Vm, string? Name, string Guidance) : RunEvent
{
    public override string Kind => "vm.guidance.intent";
}

public sealed record VmGuidanceApplied(string Vm, string Guidance) : RunEvent
{
    public override string Kind => "vm.guidance.done";
}
