using RollingReboot.Core.Pool;

namespace RollingReboot.Core.Ports;

/// <summary>
/// The pool as the run sees it. Implemented over XenAPI; the domain knows no HTTP or RPC.
/// Every call is bounded by the implementation's own timeouts and by <paramref name="cancellationToken"/>.
/// </summary>
public interface IPoolConnection : IAsyncDisposable
{
    Task<PoolSnapshot> ReadAsync(CancellationToken cancellationToken = default);

    /// <summary>One host as the pool sees it now (its record and metrics): the cheap read for waiting on that host.</summary>
    Task<HostState> ReadHostAsync(string hostUuid, CancellationToken cancellationToken = default);

    /// <summary>XAPI's own view: VM uuid to the error XAPI reports for it (code first).</summary>
    Task<IReadOnlyDictionary<string, IReadOnlyList<string>>> GetVmsPreventingEvacuationAsync(string hostUuid, CancellationToken cancellationToken = default);

    /// <summary>XAPI's VM.assert_can_boot_here: null when the VM could run on the host, else XAPI's error (code first).</summary>
    Task<IReadOnlyList<string>?> CanBootHereAsync(string vmUuid, string hostUuid, CancellationToken cancellationToken = default);

    Task<DateTimeOffset> GetServerTimeAsync(string hostUuid, CancellationToken cancellationToken = default);

    Task DisableHaAsync(CancellationToken cancellationToken = default);

    Task EnableHaAsync(IReadOnlyList<string> heartbeatSrUuids, IReadOnlyDictionary<string, string> configuration, CancellationToken cancellationToken = default);

    Task SetHaHostFailuresToTolerateAsync(long value, CancellationToken cancellationToken = default);

    Task SetHaAllowOvercommitAsync(bool value, CancellationToken cancellationToken = default);

    /// <summary>Atomic test-and-set on pool.other_config: false when the key is already there.</summary>
    Task<bool> TryAddPoolOtherConfigAsync(string key, string value, CancellationToken cancellationToken = default);

    Task RemovePoolOtherConfigAsync(string key, CancellationToken cancellationToken = default);

    Task DisableHostAsync(string hostUuid, CancellationToken cancellationToken = default);

    /// <summary>host.disable with auto_enable=false where XAPI has it (xapi 25.31.0+, idl/datamodel_host.ml): the host stays
    /// disabled across its reboots until host.enable (xapi_host.ml enable resets it); on an older xapi a plain host.disable.</summary>
    Task DisableHostUntilEnabledAsync(string hostUuid, CancellationToken cancellationToken = default);

    Task EnableHostAsync(string hostUuid, CancellationToken cancellationToken = default);

    Task RebootHostAsync(string hostUuid, CancellationToken cancellationToken = default);

    /// <summary>Shuts a disabled, empty host down (host.shutdown); someone powers it on again.</summary>
    Task ShutdownHostAsync(string hostUuid, CancellationToken cancellationToken = default);

    /// <summary>host.power_on: the master powers a host that is down on through its power_on_mode (xapi_host.ml power_on,
    /// always run on the master: message_forwarding.ml). Refused while the host is live (HOST_IS_LIVE) or without a mode
    /// (HOST_POWER_ON_MODE_DISABLED).</summary>
    Task PowerOnHostAsync(string hostUuid, CancellationToken cancellationToken = default);

    /// <summary>Live-migrates a running VM within the pool over the management network, the compression left to the pool.</summary>
    Task MigrateVmAsync(string vmUuid, string targetHostUuid, IProgress<double>? progress = null, CancellationToken cancellationToken = default) =>
        MigrateVmAsync(vmUuid, targetHostUuid, MigrationRoute.Default, progress, cancellationToken);

    /// <summary>Live-migrates a running VM within the pool (VM.pool_migrate, live, with the route's network and compress
    /// options) and waits for its task; progress 0..1.</summary>
    Task MigrateVmAsync(string vmUuid, string targetHostUuid, MigrationRoute route, IProgress<double>? progress, CancellationToken cancellationToken);

    /// <summary>VM.clean_shutdown, waiting for its task: the guest is asked to shut down (xapi_vm.ml clean_shutdown; refused
    /// with VM_LACKS_FEATURE when the guest cannot be asked, VM_FAILED_SHUTDOWN_ACKNOWLEDGMENT when it does not answer).
    /// Cancelling the token cancels the task.</summary>
    Task CleanShutdownVmAsync(string vmUuid, CancellationToken cancellationToken = default);

    /// <summary>VM.hard_shutdown, waiting for its task: the VM is powered off (any clean shutdown in progress is cancelled
    /// by xapi, message_forwarding.ml hard_shutdown).</summary>
    Task HardShutdownVmAsync(string vmUuid, CancellationToken cancellationToken = default);

    /// <summary>VM.start_on(vm, host, start_paused=false, force=false), waiting for its task: a halted VM started on this
    /// host (refused on a disabled or not live host: xapi_vm_helpers.ml assert_can_boot_here).</summary>
    Task StartVmOnAsync(string vmUuid, string hostUuid, CancellationToken cancellationToken = default);

    /// <summary>The pool's networks and each one's PIFs (plugged, with an address, link speed): for --migration-network.</summary>
    Task<IReadOnlyList<NetworkInfo>> ReadNetworksAsync(CancellationToken cancellationToken = default);

    /// <summary>The shared SRs this host does not see: its PBD for them is not currently_attached (xapi plugs every PBD at
    /// start, create_storage.ml plug_unplugged_pbds, and a failure leaves it unplugged).</summary>
    Task<IReadOnlyList<SrLink>> ReadUnpluggedSharedSrsAsync(string hostUuid, CancellationToken cancellationToken = default);

    /// <summary>PBD.plug of this host's PBD for the SR (what XenCenter's "Repair storage" does).</summary>
    Task PlugSrAsync(string hostUuid, string srUuid, CancellationToken cancellationToken = default);

    /// <summary>Installing updates (--apply-updates); null where the adapter has no way to.</summary>
    IPoolUpdates? Updates => null;

    /// <summary>Waits until something in the pool changes (hosts, metrics, VMs) or the timeout passes.</summary>
    Task WaitForChangeAsync(TimeSpan timeout, CancellationToken cancellationToken = default);

    /// <summary>Waits as <see cref="WaitForChangeAsync"/> does, then returns one host as of the moment the wait ended: the
    /// read for a loop that waits on that host. An adapter that learns the change with the host's new records (XenAPI's
    /// event.from snapshots) answers from them instead of asking again.</summary>
    async Task<HostState> WaitForHostChangeAsync(string hostUuid, TimeSpan timeout, CancellationToken cancellationToken = default)
    {
        await WaitForChangeAsync(timeout, cancellationToken);
        return await ReadHostAsync(hostUuid, cancellationToken);
    }
}

/// <summary>Raised by adapters for a failure the pool reported; <see cref="Code"/> is XAPI's error code.</summary>
public class PoolOperationException : Exception
{
    public PoolOperationException(string code, IReadOnlyList<string> parameters, string message, Exception? inner = null)
        : base(message, inner)
    {
        Code = code;
        Parameters = parameters;
    }

    public PoolOperationException() : this("INTERNAL_ERROR", [], "pool operation failed") { }

    public PoolOperationException(string message) : this("INTERNAL_ERROR", [], message) { }

    public PoolOperationException(string message, Exception inner) : this("INTERNAL_ERROR", [], message, inner) { }

    public string Code { get; }

    public IReadOnlyList<string> Parameters { get; }

    /// <summary>True when the pool could not be reached at all (network, TLS, master down).</summary>
    public bool IsUnreachable
    {
        get => Kind == PoolErrorKind.Unreachable;
        init => Kind = value ? PoolErrorKind.Unreachable : Kind;
    }

    /// <summary>What the run may do about it; the adapter, which knows the product's error codes, decides.</summary>
    public PoolErrorKind Kind { get; init; }

    /// <summary>Worth asking again after a while (bounded): the pool or its master is away or busy for now.</summary>
    public bool IsTransient => Kind is PoolErrorKind.Transient or PoolErrorKind.Unreachable;
}

/// <summary>The kinds of pool failure the run acts on; which product codes fall in which is the adapter's knowledge.</summary>
public enum PoolErrorKind
{
    /// <summary>The pool said no: asking again will not change the answer.</summary>
    Refused,

    /// <summary>The master is restarting or moving, the session expired: a repeat after a pause can succeed.</summary>
    Transient,

    /// <summary>Nothing answered (network, TLS, the master down).</summary>
    Unreachable,

    /// <summary>The object is busy with another operation: wait for it, then ask again.</summary>
    Busy,
}
