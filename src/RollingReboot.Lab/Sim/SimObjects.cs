namespace RollingReboot.Lab.Sim;

public sealed class XapiError(string code, params string[] parameters) : Exception(code)
{
    public XapiError() : this("INTERNAL_ERROR") { }

    public XapiError(string code, Exception inner) : this(code, inner.Message) { }

    public string Code { get; } = code;

    public IReadOnlyList<string> Parameters { get; } = parameters;
}

internal enum HostPower
{
    Up,
    ShuttingDown,
    Down,
}

internal sealed class SimHost
{
    public required string Ref { get; init; }
    public required string Uuid { get; init; }
    public required string Name { get; init; }
    public required string Address { get; init; }
    public required string MetricsRef { get; init; }
    public required string MetricsUuid { get; init; }
    public long MemoryTotal { get; init; }
    public long Dom0Memory { get; init; }
    public double RebootSeconds { get; set; }
    public bool Enabled { get; set; } = true;
    public bool Live { get; set; } = true;
    public HostPower Power { get; set; } = HostPower.Up;
    public double ToolstackReadyAt { get; set; }
    public DateTimeOffset BootTime { get; set; }
    public DateTimeOffset AgentStartTime { get; set; }
    public string BootId { get; set; } = Guid.NewGuid().ToString();

    /// <summary>The boot id of the boot under way while the host is down and coming back (its sshd answers it early).</summary>
    public string? NextBootId { get; set; }
    public List<string> PendingGuidances { get; } = [];
    public List<string> PendingGuidancesRecommended { get; } = [];
    public List<string> PendingGuidancesFull { get; } = [];

    /// <summary>other_config.rpm_patch_installation_time, as Xen Orchestra writes it after patching an XCP-ng host.</summary>
    public DateTimeOffset? RpmPatchInstallationTime { get; set; }

    /// <summary>The host's localdb host_auto_enable (xapi 25.31.0+): false after host.disable auto_enable=false.</summary>
    public bool AutoEnable { get; set; } = true;
    public List<string> UpdatesRequiringReboot { get; } = [];
    public Dictionary<string, string> CurrentOperations { get; } = [];
    public int BootCount { get; set; }
    public string? ControlDomainRef { get; set; }
    public bool NeverReturns { get; set; }
    public string PowerOnMode { get; set; } = "";
    public bool PowerOnFails { get; set; }
    public string? GuidanceOnReturn { get; set; }

    /// <summary>While set, the host's xapi is in emergency mode and answers every non-emergency call with this error
    /// (code, then parameters) before dispatch (api_server.ml callback1, Xapi_globs.emergency_mode_error).</summary>
    public string[]? EmergencyError { get; set; }
    public DateTimeOffset MetricsUpdated { get; set; }

    /// <summary>Ids of the scenario's pool.updates pending on the host, in the scenario's order.</summary>
    public List<string> PendingUpdates { get; } = [];

    /// <summary>Ids installed on the host by the lab (host.apply_updates or updater.py update), in the order installed.</summary>
    public List<string> InstalledUpdates { get; } = [];

    /// <summary>host.last_software_update (null: a day before the boot the lab starts with).</summary>
    public DateTimeOffset? LastSoftwareUpdate { get; set; }

    /// <summary>host.latest_synced_updates_applied (23.18.0+): unknown, yes or no.</summary>
    public string LatestSyncedUpdatesApplied { get; set; } = "unknown";

    /// <summary>host.last_update_hash (24.10.0+).</summary>
    public string LastUpdateHash { get; set; } = "";

    /// <summary>Per livepatched component (kernel, xen): the version-release running after the livepatch.</summary>
    public Dictionary<string, string> LiveVersions { get; } = [];

    /// <summary>The updater.py operation holding the plugin's lock on this host (XCP-ng), or null.</summary>
    public string? UpdaterOperation { get; set; }

    /// <summary>other_config keys a client wrote (host.add_to_other_config / set_other_config).</summary>
    public Dictionary<string, string> OtherConfig { get; } = [];
}

internal sealed class SimVm
{
    public required string Ref { get; init; }
    public required string Uuid { get; init; }
    public required string Name { get; init; }
    public string PowerState { get; set; } = "Halted";
    public SimHost? ResidentOn { get; set; }
    public long MemoryMiB { get; init; }
    public bool IsControlDomain { get; init; }
    public bool PvDrivers { get; init; }
    public bool Pci { get; init; }
    public bool Vgpu { get; init; }
    public bool Vusb { get; init; }
    /// <summary>The vGPU is NVIDIA with migration support (xapi_vm_lifecycle.ml check_vgpu is_suspendable).</summary>
    public bool VgpuSuspendable { get; init; }
    /// <summary>VM_metrics.current_domain_type: hvm, pv, pvh (a PV-booted guest migrates without PV drivers).</summary>
    public string DomainType { get; init; } = "hvm";
    /// <summary>The guest agent advertises feature-suspend=1 in VM_guest_metrics.other without full PV drivers.</summary>
    public bool FeatureSuspend { get; init; }
    /// <summary>VM_guest_metrics.other data-cant-suspend-reason (VM_NON_SUSPENDABLE).</summary>
    public string? CantSuspendReason { get; init; }
    /// <summary>platform:nomigrate (VM_metrics.nomigrate).</summary>
    public bool Nomigrate { get; init; }
    /// <summary>platform:nested-virt (VM_metrics.nested_virt).</summary>
    public bool NestedVirt { get; init; }
    /// <summary>Lab extension featureShutdown: the agent advertises feature-shutdown=1 without full PV drivers.</summary>
    public bool FeatureShutdown { get; init; }
    /// <summary>Lab extension shutdownSeconds: how long the guest takes to shut down when asked.</summary>
    public double ShutdownSeconds { get; init; } = 20;
    /// <summary>Lab extension ignoresShutdown: the guest never acknowledges a clean shutdown request.</summary>
    public bool IgnoresShutdown { get; init; }
    /// <summary>VM.start_on in progress: scheduled_to_be_resident_on, its memory reserved there.</summary>
    public SimHost? StartingOn { get; set; }
    public string HaRestartPriority { get; set; } = "";
    public bool HaAlwaysRun { get; set; }
    public string? AffinityGroup { get; init; }
    public required string MetricsRef { get; init; }
    public string? GuestMetricsRef { get; init; }
    public List<string> VbdRefs { get; } = [];
    public int Migrations { get; set; }
    public Dictionary<string, string> CurrentOperations { get; } = [];
    public Dictionary<string, string> OtherConfig { get; } = [];

    /// <summary>VM.pending_guidances (restart_device_model, restart_vm), _recommended and _full.</summary>
    public List<string> PendingGuidances { get; } = [];
    public List<string> PendingGuidancesRecommended { get; } = [];
    public List<string> PendingGuidancesFull { get; } = [];
    public long MemoryBytes => MemoryMiB * Scenario.LabMemory.MiB;
    public long OverheadBytes => IsControlDomain ? 0 : Scenario.LabMemory.OverheadMiB(MemoryMiB) * Scenario.LabMemory.MiB;
    public long NeededBytes => MemoryBytes + OverheadBytes;
    public bool IsRunning => PowerState is "Running" or "Paused";
}

internal sealed class SimSr
{
    public required string Ref { get; init; }
    public required string Uuid { get; init; }
    public required string Name { get; init; }
    public bool Shared { get; init; }
    public SimHost? Host { get; init; }
    public string ContentType { get; init; } = "user";
    public bool Clustered { get; init; }
    public double RecoverySeconds { get; init; }
    public double? RecoveringUntil { get; set; }
    public List<string> PbdRefs { get; } = [];
    public List<string> VdiRefs { get; } = [];
}

internal sealed record SimVdi(string Ref, string Uuid, string Name, SimSr Sr, string Type);

internal sealed record SimVbd(string Ref, string Uuid, SimVm Vm, SimVdi? Vdi, string Type, string Device);

internal sealed record SimPbd(string Ref, string Uuid, SimHost Host, SimSr Sr)
{
    /// <summary>PBD.currently_attached: false from a boot until the toolstack plugs it (create_storage.ml plug_unplugged_pbds).</summary>
    public bool CurrentlyAttached { get; set; } = true;
}

internal sealed class SimTask
{
    public required string Ref { get; init; }
    public required string Uuid { get; init; }
    public required string NameLabel { get; init; }
    public DateTimeOffset Created { get; init; }
    public DateTimeOffset Finished { get; set; }
    public string Status { get; set; } = "pending";
    public double Progress { get; set; }
    public string Result { get; set; } = "";
    public List<string> ErrorInfo { get; set; } = [];
    public SimMigration? Migration { get; set; }
    /// <summary>What task.cancel does for a cancellable operation other than a migration (a clean shutdown).</summary>
    public Action? Cancel { get; set; }
    public string? SessionRef { get; init; }
}

/// <summary>A network: the management one (no link of its own: the hosts' migration link) or a scenario's.</summary>
internal sealed class SimNetwork
{
    public required string Ref { get; init; }
    public required string Uuid { get; init; }
    public required string Name { get; init; }
    public required string Bridge { get; init; }

    /// <summary>Null: the management network, whose link is migration.hostLinkMBps.</summary>
    public double? LinkMBps { get; init; }
    public List<SimPif> Pifs { get; } = [];
}

/// <summary>A host's PIF on a network: xapi_network_attach_helpers.ml checks currently_attached and the primary address.</summary>
internal sealed class SimPif
{
    public required string Ref { get; init; }
    public required string Uuid { get; init; }
    public required string MetricsRef { get; init; }
    public required string MetricsUuid { get; init; }
    public required SimHost Host { get; init; }
    public required SimNetwork Network { get; init; }
    public required string Device { get; init; }
    public bool Management { get; init; }
    public bool Attached { get; set; } = true;
    public string Ip { get; set; } = "";
    public long SpeedMbps { get; init; }
}

internal sealed class SimMigration
{
    /// <summary>The network the stream goes over (VM.pool_migrate's network option), null for the management network.</summary>
    public SimNetwork? Network { get; init; }
    public bool Compressed { get; init; }
    public required SimVm Vm { get; init; }
    public required SimHost From { get; init; }
    public required SimHost To { get; init; }
    public double StartedAt { get; init; }
    public double SetupEndsAt { get; init; }
    public double TotalBytes { get; init; }
    public double RemainingBytes { get; set; }
    public double Rate { get; set; }
    public bool Transferring { get; set; }
    public IReadOnlyList<string>? FailWith { get; init; }
    public TaskCompletionSource<string> Done { get; } = new(TaskCreationOptions.RunContinuationsAsynchronously);
    public SimTask? Task { get; set; }
    public bool Cancelled { get; set; }
    public double Progress => TotalBytes <= 0 ? 1 : Math.Clamp(1 - (RemainingBytes / TotalBytes), 0, 1);
}

internal sealed record SimSession(string Ref, string Uuid, string User, string Originator, double CreatedAt);
