namespace RollingReboot.Core.Planning;

/// <summary>
/// How live migrations behave, for estimates: the model the lab simulates. MB is 1,000,000 bytes. A migration
/// spends <see cref="SetupSeconds"/> without using the network, then moves memory × (1 + <see cref="DirtyRatio"/>)
/// bytes at min(stream, link / transfers leaving its source, link / transfers arriving at its target).
/// </summary>
public sealed record MigrationModel(
    double StreamMBps = 120,
    double HostLinkMBps = 250,
    double SetupSeconds = 6,
    double DirtyRatio = 0.1)
{
    public const double BytesPerMB = 1_000_000;

    /// <summary>The stream is compressed (VM.pool_migrate compress, or pool.migration_compression): the estimate then
    /// counts <see cref="CompressionRatio"/> of the bytes on the wire, and a stream no faster than its compressor.</summary>
    public bool Compressed { get; init; }

    /// <summary>Bytes on the wire per byte of the stream when compressed (an assumption: it depends on the guests' memory).</summary>
    public double CompressionRatio { get; init; } = 0.5;

    /// <summary>Stream bytes (before compression) one migration's compressor handles per second, in MB/s: a CPU bound.</summary>
    public double CompressMBps { get; init; } = 300;

    /// <summary>Bytes a live migration of a VM with this much memory streams (memory plus re-sent dirty pages).</summary>
    public long BytesMoved(long memoryBytes) => (long)Math.Round(memoryBytes * (1 + DirtyRatio));

    /// <summary>Bytes that migration puts on the wire: <see cref="BytesMoved"/>, or that compressed.</summary>
    public long WireBytes(long memoryBytes) =>
        Compressed ? (long)Math.Round(memoryBytes * (1 + DirtyRatio) * CompressionRatio) : BytesMoved(memoryBytes);

    /// <summary>The fastest one migration puts bytes on the wire, in MB/s: the stream, or its compressor's output.</summary>
    public double StreamWireMBps => Compressed ? Math.Min(StreamMBps, CompressMBps * CompressionRatio) : StreamMBps;
}

/// <summary>What the operator asked for, and the timing assumptions behind the estimate.</summary>
public sealed record PlanOptions
{
    public static PlanOptions Default { get; } = new();

    /// <summary>Live migrations running at once out of one host being emptied. 10 is XAPI's own host.evacuate batch
    /// (xen-api ocaml/xapi/xapi_globs.ml evacuation_batch_size): enough streams that the link stays full while some set up.</summary>
    public int Threads { get; init; } = 10;

    /// <summary>Migrations out of one host at once; 0 (the default): as many as <see cref="Threads"/>. Several streams fill
    /// a link (one stream is capped below it and spends its setup moving nothing); XAPI's own host.evacuate runs up to 10
    /// from one host (xapi_globs.ml evacuation_batch_size).</summary>
    public int MaxMigrationsPerSource { get; init; }

    /// <summary>Migrations into one host at once; 0 (the default): as many as <see cref="Threads"/>.</summary>
    public int MaxMigrationsPerTarget { get; init; }

    /// <summary>Whether the first migrations of a batch start <see cref="PlanEstimator.StaggerSeconds"/> apart: equal VMs
    /// started together set up, move and end together, and the link idles while all of them set up again.</summary>
    public bool StaggerStarts { get; init; } = true;

    public int EffectiveMaxMigrationsPerSource => MaxMigrationsPerSource > 0 ? MaxMigrationsPerSource : Math.Max(1, Threads);

    public int EffectiveMaxMigrationsPerTarget => MaxMigrationsPerTarget > 0 ? MaxMigrationsPerTarget : Math.Max(1, Threads);

    /// <summary>
    /// Non-master hosts evacuated and rebooted together (a wave). The master always goes alone.
    /// <see cref="AutoMaxHostsDown"/>: preflight picks the number whose plan is estimated fastest.
    /// </summary>
    public int MaxHostsDown { get; init; } = 1;

    /// <summary>MaxHostsDown "auto": the fastest plan the capacity allows, from 1 to half the pool (at most 16).</summary>
    public const int AutoMaxHostsDown = 0;

    /// <summary>When not empty, only these hosts (names or uuids) are rebooted.</summary>
    public IReadOnlyList<string> IncludeHosts { get; init; } = [];

    /// <summary>Hosts (names or uuids) left alone.</summary>
    public IReadOnlyList<string> IgnoreHosts { get; init; } = [];

    /// <summary>--ignore-running-tasks: start (and go on between hosts) while VMs of the pool are being backed up or copied.</summary>
    public bool IgnoreRunningTasks { get; init; }

    /// <summary>Skip hosts with no pending reboot guidance and no update that needs a reboot.</summary>
    public bool OnlyNeedingReboot { get; init; }

    /// <summary>
    /// --apply-updates: install the pool's updates host by host, master first, and let the guidance they leave decide:
    /// a reboot (evacuated first), a toolstack restart in place, or nothing. Hosts with nothing to install are left alone.
    /// </summary>
    public bool ApplyUpdates { get; init; }

    /// <summary>--apply-vm-guidances: after the hosts, restart_vm (VM.clean_reboot) and restart_device_model
    /// (VM.restart_device_models) applied to the VMs that have them; without it they are only listed.</summary>
    public bool ApplyVmGuidances { get; init; }

    /// <summary>Plan the migration of every moved VM back to its original host at the end.</summary>
    public bool ReturnVms { get; init; }

    /// <summary>
    /// --shutdown-pinned-vms: a VM that cannot be live-migrated (PCI, vGPU, USB, local disks or ISOs, no PV drivers,
    /// immobile, or XAPI says it cannot be evacuated) no longer blocks the run: it stays on its host, is shut down right
    /// before that host's reboot and started on it again once the host is proven back. Its memory stays reserved there.
    /// </summary>
    public bool ShutdownPinnedVms { get; init; }

    public MigrationModel MigrationModel { get; init; } = new();

    /// <summary>--migration-network: the network (name label or uuid) live migrations go over; null: the management network.</summary>
    public string? MigrationNetwork { get; init; }

    /// <summary>--compress: true or false as VM.pool_migrate's compress option; null leaves it to pool.migration_compression.</summary>
    public bool? Compress { get; init; }

    /// <summary>--assume-link-mbps was given: the estimate keeps it rather than the migration network's PIF speed.</summary>
    public bool LinkAssumed { get; init; }

    /// <summary>Seconds a host stays down once it goes down (assumption for the estimate).</summary>
    public double RebootSeconds { get; init; } = 300;

    /// <summary>Seconds from boot until the toolstack answers and the checks pass.</summary>
    public double HostReadySeconds { get; init; } = 15;

    /// <summary>Seconds from host.reboot until the host is down.</summary>
    public double ShutdownSeconds { get; init; } = 10;
}
