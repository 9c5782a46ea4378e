namespace RollingReboot.Core.Pool;

/// <summary>What a rolling reboot needs to know about a pool at one moment. Identity is by uuid, never by ref.</summary>
public sealed record PoolSnapshot(
    string Uuid,
    string Name,
    string MasterUuid,
    HaSettings Ha,
    IReadOnlyDictionary<string, string> OtherConfig,
    IReadOnlyList<string> CurrentOperations,
    IReadOnlyList<HostState> Hosts,
    IReadOnlyList<VmState> Vms,
    IReadOnlyList<SrInfo> Srs)
{
    public HostState Master => Hosts.First(h => h.Uuid == MasterUuid);

    /// <summary>The pool's networks with their PIFs: read only for --migration-network (empty otherwise).</summary>
    public IReadOnlyList<NetworkInfo> Networks { get; init; } = [];

    /// <summary>pool.migration_compression (xapi 22.33.0+; null when the pool has no such field): whether a migration
    /// without a compress option is compressed (xapi/xapi_vm_migrate.ml use_compression).</summary>
    public bool? MigrationCompression { get; init; }

    /// <summary>--apply-updates: what each host would install (read only then; null otherwise).</summary>
    public PoolUpdates? Updates { get; init; }

    public NetworkInfo? FindNetwork(string uuidOrName) =>
        Networks.FirstOrDefault(n => n.Uuid == uuidOrName) ?? Networks.FirstOrDefault(n => n.Name == uuidOrName);

    /// <summary>What the pool's master runs (host.software_version), and so what the run assumes of xapi.</summary>
    public PoolSoftware Software => Hosts.FirstOrDefault(h => h.Uuid == MasterUuid)?.Software ?? PoolSoftware.Unknown;

    public HostState? FindHost(string uuidOrName) =>
        Hosts.FirstOrDefault(h => h.Uuid == uuidOrName) ?? Hosts.FirstOrDefault(h => h.Name == uuidOrName);

    public IEnumerable<VmState> RunningOn(string hostUuid) =>
        Vms.Where(v => v.ResidentOnUuid == hostUuid && v.IsRunningGuest);
}

/// <summary>The pool's HA settings, recorded before the run and restored exactly after it.</summary>
public sealed record HaSettings(
    bool Enabled,
    IReadOnlyList<string> HeartbeatSrUuids,
    IReadOnlyDictionary<string, string> Configuration,
    long HostFailuresToTolerate,
    bool AllowOvercommit)
{
    public static HaSettings Disabled { get; } = new(false, [], new Dictionary<string, string>(), 0, false);

    /// <summary>The HA timeout in seconds as XAPI will apply it (configuration key, else 60 s default).</summary>
    public int? TimeoutSeconds =>
        Configuration.TryGetValue("timeout", out var t) && int.TryParse(t, System.Globalization.CultureInfo.InvariantCulture, out var s) ? s : null;
}

public sealed record HostState(
    string Uuid,
    string Name,
    string Address,
    bool Enabled,
    bool Live,
    long MemoryTotal,
    long MemoryFree,
    long MemoryOverhead,
    DateTimeOffset? BootTime,
    DateTimeOffset? AgentStartTime,
    IReadOnlyList<string> PendingGuidances,
    IReadOnlyList<string> UpdatesRequiringReboot,
    IReadOnlyList<string> CurrentOperations)
{
    /// <summary>What XAPI allows on the host now (null: not read). Without "reboot" XAPI would refuse it (for instance
    /// CLUSTERED_SR_DEGRADED while another host of a GFS2 pool is down or its SR recovers).</summary>
    public IReadOnlyList<string>? AllowedOperations { get; init; }

    /// <summary>Shared SRs whose PBD on this host is not plugged (read with the whole pool; empty in a single host's
    /// read). Such a host is no target for VMs on them (VM_REQUIRES_SR, xapi_vm_helpers.ml assert_can_see_SRs).</summary>
    public IReadOnlyList<SrLink> UnpluggedSharedSrs { get; init; } = [];

    /// <summary>host.pending_guidances_recommended (xapi 24.10.0+): where xapi puts livepatch failures (xapi/repository_helpers.ml update_livepatch_failure_guidance).</summary>
    public IReadOnlyList<string> PendingGuidancesRecommended { get; init; } = [];

    /// <summary>host.pending_guidances_full (xapi 24.10.0+).</summary>
    public IReadOnlyList<string> PendingGuidancesFull { get; init; } = [];

    /// <summary>other_config.rpm_patch_installation_time: when Xen Orchestra last patched this XCP-ng host (Unix seconds).</summary>
    public DateTimeOffset? RpmPatchInstallationTime { get; init; }

    /// <summary>host.power_on_mode ("" = disabled; "wake-on-lan", "iLO", "DRAC" or a custom plugin): with it set the master can
    /// power the host on (xapi_host_helpers.ml: power_on needs a mode, and the host not live).</summary>
    public string PowerOnMode { get; init; } = "";

    /// <summary>This host's own software_version, read as <see cref="PoolSoftware"/>.</summary>
    public PoolSoftware Software { get; init; } = PoolSoftware.Unknown;

    /// <summary>
    /// The guidances a reboot applies: every host start clears them (xapi/dbsync_slave.ml remove_pending_guidances, at a
    /// boot) and each asks for one (idl/datamodel_common.ml update_guidances; the kernel and xen livepatch ones from 24.10.0).
    /// </summary>
    public static bool IsRebootGuidance(string guidance) =>
        guidance is "reboot_host" or "reboot_host_on_livepatch_failure" or "reboot_host_on_kernel_livepatch_failure" or "reboot_host_on_xen_livepatch_failure";

    /// <summary>A mandatory guidance that only a reboot applies is pending.</summary>
    public bool RebootGuidancePending => PendingGuidances.Any(IsRebootGuidance);

    /// <summary>
    /// XAPI will refuse host.enable on this host now: it is disabled with mandatory guidance pending and its xapi holds
    /// such a host disabled (24.10.0+, <see cref="PoolSoftware.GuidanceKeepsHostDisabled"/>).
    /// </summary>
    public bool EnableRefused => !Enabled && PendingGuidances.Count > 0 && Software.GuidanceKeepsHostDisabled;

    /// <summary>
    /// Disabled, and XAPI keeps it so until it reboots: a mandatory reboot guidance is pending (host.apply_updates leaves a
    /// XenServer 8 host so) on a xapi that refuses host.enable for it (24.10.0+). The run reboots it and enables it after.
    /// </summary>
    public bool DisabledUntilReboot => !Enabled && RebootGuidancePending && Software.GuidanceKeepsHostDisabled;

    /// <summary>Patched by Xen Orchestra after its last boot: XO's own "reboot required" for XCP-ng (xo-server src/xapi-object-to-xo.mjs).</summary>
    public bool PatchedSinceBoot =>
        Software.MayBeXcpNg && RpmPatchInstallationTime is { } patched && BootTime is { } boot && boot < patched;

    /// <summary>
    /// Every signal that the host needs a reboot: a reboot guidance in any of the three lists (mandatory, recommended,
    /// full), a legacy update in updates_requiring_reboot, or (XCP-ng, which has no guidances) patches installed after the
    /// last boot. Each as the operator reads it.
    /// </summary>
    public IReadOnlyList<string> RebootSignals
    {
        get
        {
            var signals = new List<string>();
            void Guidances(string list, IReadOnlyList<string> guidances)
            {
                var reboot = guidances.Where(IsRebootGuidance).Order(StringComparer.Ordinal).ToList();
                if (reboot.Count > 0)
                {
                    signals.Add($"{list} guidance: {string.Join(", ", reboot)}");
                }
            }

            Guidances("mandatory", PendingGuidances);
            Guidances("recommended", PendingGuidancesRecommended);
            Guidances("full", PendingGuidancesFull);
            if (UpdatesRequiringReboot.Count > 0)
            {
                signals.Add(string.Create(System.Globalization.CultureInfo.InvariantCulture, $"{UpdatesRequiringReboot.Count} update(s) need a reboot"));
            }

            if (PatchedSinceBoot)
            {
                signals.Add(string.Create(System.Globalization.CultureInfo.InvariantCulture,
                    $"patched at {RpmPatchInstallationTime!.Value.UtcDateTime:yyyy-MM-dd HH:mm:ss}Z, after its boot (rpm_patch_installation_time)"));
            }

            return signals;
        }
    }

    public bool NeedsReboot =>
        PendingGuidances.Any(IsRebootGuidance) || PendingGuidancesRecommended.Any(IsRebootGuidance) || PendingGuidancesFull.Any(IsRebootGuidance)
        || UpdatesRequiringReboot.Count > 0 || PatchedSinceBoot;
}

public sealed record VmState(
    string Uuid,
    string Name,
    string PowerState,
    string? ResidentOnUuid,
    long MemoryBytes,
    string? MigrationRefusal,
    IReadOnlyList<string> DiskSrUuids,
    IReadOnlyList<string> CdSrUuids,
    string HaRestartPriority,
    IReadOnlyList<string> CurrentOperations)
{
    // MigrationRefusal: the error XAPI gives VM.pool_migrate for this VM wherever it goes (VM_LACKS_FEATURE,
    // VM_HAS_PCI_ATTACHED, VM_HAS_VGPU, VM_IS_IMMOBILE, ...), from XAPI's own allowed_operations; null when XAPI
    // allows it or the VM is only busy. Target-dependent rules (SRs, memory) are checked separately.

    /// <summary>A running guest: what a host must be emptied of before it reboots.</summary>
    public bool IsRunningGuest => PowerState is "Running" or "Paused";

    /// <summary>VM.pending_guidances and pending_guidances_recommended (xapi 1.303.0 / 24.10.0+): restart_device_model,
    /// restart_vm, set by host.apply_updates (xen-api ocaml/xapi/repository_helpers.ml set_pending_guidances).</summary>
    public IReadOnlyList<string> PendingGuidances { get; init; } = [];
}

/// <summary>An SR as a host links to it (by its PBD).</summary>
public sealed record SrLink(string Uuid, string Name);

public sealed record SrInfo(string Uuid, string Name, bool Shared, string? LocalHostUuid)
{
    /// <summary>A clustered (GFS2) SR: only one host of the pool may be down at a time.</summary>
    public bool Clustered { get; init; }
}
