using System.Text.Json.Nodes;
using static RollingReboot.Lab.CloudStack.LabCloudStack;

namespace RollingReboot.Lab.CloudStack;

/// <summary>
/// One cluster of the lab's CloudStack (a XenServer pool): its zone and pod, its managed and allocation state, its hosts'
/// agent and resource states, what CloudStack knows of its VMs, its faults, and the pool and audit it watches. Every state
/// change happens under the owning <see cref="LabCloudStack"/>'s lock.
/// </summary>
/// <remarks>
/// The managed-state lifecycle is ResourceManagerImpl.updateCluster's: Unmanaged goes through PrepareUnmanaged, disconnects
/// every Up host, polls up to 40 × 5 s for no Up and Enabled host, and ends Unmanaged or PrepareUnmanagedError. Managed only
/// writes the state: hosts are loaded by the direct-agent scan (ClusteredAgentManagerImpl.scanDirectAgentToLoad, every
/// <see cref="LabCloudStackSettings.ScanInterval"/>), which takes hosts of Managed clusters with no management server whose
/// last ping is older than the ping timeout, and connects them one at a time per pool (XenServerConnectionPool.connect is
/// synchronized on the pool): Disconnected, Connecting, Up; a host XAPI shows disabled, or any host of a pool whose master
/// is disabled, fails to connect and goes Alert. A host still pinged (Up) that goes down is marked Alert and
/// its VMs "recovered" (a violation) unless the cluster is Unmanaged: in PrepareUnmanaged and PrepareUnmanagedError the
/// hosts that did not disconnect stay in the ping map (AgentManagerImpl.MonitorTask has no managed-state filter).
/// </remarks>
public sealed class LabCloudStackCluster
{
    private readonly LabCloudStack _owner;
    private readonly Lock _gate;
    private readonly SemaphoreSlim _updateGate = new(1, 1);
    private readonly ILabPoolView _pool;
    private readonly ILabAudit _audit;
    private readonly TimeProvider _timeProvider;
    private readonly LabCloudStackSettings _settings;
    private readonly bool _unmanageFails;
    private readonly string _hostKeyPrefix;
    private readonly List<HostEntry> _hosts = [];
    private readonly DateTimeOffset _started;
    private string _managedState;
    private string _allocationState = "Enabled";
    private int _connectGeneration;
    private bool _connecting;

    /// <param name="qualifyIds">
    /// False for the first cluster (ids from its name and its hosts' names, as a one-pool lab has always had); true for
    /// the other clusters of a fleet, whose ids also depend on the zone (cluster) and cluster (hosts), so that clusters of
    /// the same name in two zones, or hosts of the same name in two pools, never share an id.
    /// </param>
    internal LabCloudStackCluster(
        LabCloudStack owner,
        Lock gate,
        string clusterName,
        string zone,
        string pod,
        string initialManagedState,
        ILabPoolView pool,
        ILabAudit audit,
        TimeProvider timeProvider,
        IEnumerable<LabCloudStackFault>? faults,
        bool qualifyIds,
        LabCloudStackSettings settings,
        LabCloudStackClusterSpec? spec)
    {
        ArgumentException.ThrowIfNullOrWhiteSpace(clusterName);
        ArgumentException.ThrowIfNullOrWhiteSpace(zone);
        ArgumentException.ThrowIfNullOrWhiteSpace(pod);
        ArgumentNullException.ThrowIfNull(pool);
        ArgumentNullException.ThrowIfNull(audit);
        _managedState = ParseManagedState(initialManagedState);
        _owner = owner;
        _gate = gate;
        _pool = pool;
        _audit = audit;
        _timeProvider = timeProvider;
        _settings = settings;
        _started = timeProvider.GetUtcNow();
        Spec = spec ?? LabCloudStackClusterSpec.Empty;
        ClusterName = clusterName;
        ZoneName = zone;
        PodName = pod;
        ClusterId = StableId("cluster", qualifyIds ? zone + "/" + clusterName : clusterName);
        ZoneId = StableId("zone", zone);
        PodId = StableId("pod", zone + "/" + pod);
        _hostKeyPrefix = qualifyIds ? ClusterId + "/" : "";
        foreach (var fault in faults ?? [])
        {
            switch (fault)
            {
                case CloudStackErrorFault error:
                    ErrorFaults[error.Command] = new ErrorFaultCounter(error.Times, error.ErrorCode);
                    break;
                case UnmanageFailsFault:
                    _unmanageFails = true;
                    break;
                case CloudStackStaleVmFault stale:
                    StaleVms[stale.Vm] = _pool.Vms.FirstOrDefault(v => v.Name == stale.Vm)?.HostName;
                    break;
                default:
                    throw new ArgumentException($"Unknown CloudStack fault {fault}.", nameof(faults));
            }
        }

        var live = PoolHosts();
        lock (_gate)
        {
            EnsureHosts(live);
        }
    }

    public string ClusterName { get; }

    public string ClusterId { get; }

    public string ZoneName { get; }

    public string ZoneId { get; }

    public string PodName { get; }

    public string PodId { get; }

    public string ManagedState
    {
        get
        {
            lock (_gate)
            {
                return _managedState;
            }
        }
    }

    internal LabCloudStackClusterSpec Spec { get; }

    internal string AllocationState => _allocationState;

    internal Dictionary<string, ErrorFaultCounter> ErrorFaults { get; } = new(StringComparer.OrdinalIgnoreCase);

    /// <summary>VMs (cloudstackStaleVm faults) CloudStack keeps showing on the host they ran on at the start.</summary>
    internal Dictionary<string, string?> StaleVms { get; } = new(StringComparer.Ordinal);

    /// <summary>CloudStack's hosts of this cluster. Read under the owner's lock.</summary>
    internal IReadOnlyList<HostEntry> Hosts => _hosts;

    /// <summary>CloudStack's state of a host of this cluster (Up, Disconnected, Alert, Connecting...), null when unknown.</summary>
    public string? GetHostState(string hostName)
    {
        lock (_gate)
        {
            return _hosts.FirstOrDefault(h => h.Name == hostName)?.State;
        }
    }

    /// <summary>The audit's <c>cloudstack</c> object: <c>{clusterName, managedState, hosts: [{name, state, resourceState}]}</c>.</summary>
    public object AuditSnapshot()
    {
        lock (_gate)
        {
            return new Dictionary<string, object?>
            {
                ["clusterName"] = ClusterName,
                ["managedState"] = _managedState,
                ["hosts"] = _hosts
                    .Select(h => new Dictionary<string, object?> { ["name"] = h.Name, ["state"] = h.State, ["resourceState"] = h.ResourceState })
                    .ToList(),
            };
        }
    }

    /// <summary>
    /// The pool changed (a host went down or came back): CloudStack reacts as it would. Reads the pool view, so
    /// call it when the pool's own lock is not held.
    /// </summary>
    public void OnPoolChanged() => Reconcile();

    internal static string ParseManagedState(string? state) => state?.Trim().ToUpperInvariant() switch
    {
        "MANAGED" => Managed,
        "UNMANAGED" => Unmanaged,
        "PREPAREUNMANAGED" => PrepareUnmanaged,
        "PREPAREUNMANAGEDERROR" => PrepareUnmanagedError,
        _ => throw new ArgumentException(
            $"The initial managed state must be {Managed}, {Unmanaged}, {PrepareUnmanaged} or {PrepareUnmanagedError}, not '{state}'.", nameof(state)),
    };

    internal void SetAllocationState(string allocation)
    {
        if (allocation != _allocationState)
        {
            _allocationState = allocation;
            _audit.Event("cloudstack.allocationState", new Dictionary<string, object?> { ["value"] = allocation });
        }
    }

    internal async Task<ApiResult?> UnmanageAsync(string name, CancellationToken cancellationToken)
    {
        await _updateGate.WaitAsync(cancellationToken);
        try
        {
            var live = PoolHosts();
            lock (_gate)
            {
                EnsureHosts(live);
                if (_managedState == Unmanaged)
                {
                    return null;
                }

                // Any load the scan had under way is dropped: the cluster is no longer Managed.
                _connectGeneration++;
                _connecting = false;
                SetManagedState(PrepareUnmanaged);
                var wrong = _hosts.FirstOrDefault(h => h.State is not (Up or Down or Disconnected or Alert));
                if (wrong is not null)
                {
                    SetManagedState(PrepareUnmanagedError);
                    return Error(name + "response", 530, CsCloudRuntime,
                        $"PrepareUnmanaged Failed due to host {wrong.Address} should not be in {wrong.State} status");
                }

                if (!_unmanageFails)
                {
                    var stagger = TimeSpan.Zero;
                    foreach (var host in _hosts.Where(h => h.State == Up))
                    {
                        var generation = Invalidate(host);
                        _owner.RunLater(DisconnectDelay + stagger, () => DisconnectHost(host, generation));
                        stagger += TimeSpan.FromMilliseconds(500);
                    }
                }
            }

            var success = false;
            for (var poll = 0; poll < UnmanagePolls && !success; poll++)
            {
                await Task.Delay(UnmanagePollInterval, _timeProvider, cancellationToken);
                lock (_gate)
                {
                    // listAllUpAndEnabledHosts: a host Up but not resource-state Enabled does not hold the unmanage up.
                    success = !_hosts.Any(h => h.State == Up && h.ResourceState == "Enabled");
                }
            }

            lock (_gate)
            {
                SetManagedState(success ? Unmanaged : PrepareUnmanagedError);
            }

            return success
                ? null
                : Error(name + "response", 530, CsCloudRuntime,
                    "PrepareUnmanaged Failed due to some hosts are still in UP status after 5 Minutes, please try later ");
        }
        finally
        {
            _updateGate.Release();
        }
    }

    /// <summary>updateCluster managedstate=Managed only writes the state; the next scans load the hosts.</summary>
    internal async Task<ApiResult?> ManageAsync(CancellationToken cancellationToken)
    {
        await _updateGate.WaitAsync(cancellationToken);
        try
        {
            var live = PoolHosts();
            lock (_gate)
            {
                EnsureHosts(live);
                SetManagedState(Managed);
            }

            return null;
        }
        finally
        {
            _updateGate.Release();
        }
    }

    internal void Reconcile()
    {
        var live = PoolHosts();
        var vms = GuestVms();
        lock (_gate)
        {
            EnsureHosts(live);
            if (_managedState == Unmanaged)
            {
                // Unmanaged, CloudStack keeps its hands off the hosts.
                return;
            }

            foreach (var host in _hosts)
            {
                // A host being loaded (Connecting) that does not answer fails its connect instead (ConnectNext).
                if (!live.TryGetValue(host.Name, out var view) || view.Live || host.State != Up)
                {
                    continue;
                }

                // Still pinged: the ping fails, the host goes Alert and is investigated; HA restarts its VMs.
                Invalidate(host);
                host.LastPing = Now;
                SetHostState(host, Alert);
                var recovered = vms.Where(vm => vm.HostName == host.Name && vm.PowerState is "Running" or "Paused").Select(vm => vm.Name).ToList();
                _audit.Event("cloudstack.haRecovery", new Dictionary<string, object?> { ["host"] = host.Name, ["vms"] = recovered });
                _audit.Violation(
                    $"CloudStack marked host {host.Name} Alert and started recovering its VMs ({(recovered.Count == 0 ? "none" : string.Join(", ", recovered))}): " +
                    $"host {host.Name} went down while the cluster {ClusterName} was {_managedState}" +
                    (_managedState == Managed ? "." : " (its hosts that never disconnected are still pinged)."));
            }
        }
    }

    /// <summary>
    /// One run of the direct-agent scan: in a Managed cluster, the hosts no management server holds whose last ping is older
    /// than the ping timeout are loaded, one after another. An Alert host is let go after a ping timeout, for a later scan.
    /// </summary>
    internal void Scan()
    {
        var live = PoolHosts();
        List<HostEntry> load;
        int generation;
        lock (_gate)
        {
            EnsureHosts(live);
            if (_managedState != Managed || _connecting)
            {
                return;
            }

            var now = Now;
            foreach (var host in _hosts.Where(h => h.Owned && h.State == Alert && now - h.LastPing >= _settings.PingTimeout))
            {
                host.Owned = false;
            }

            load = _hosts.Where(h => !h.Owned && h.State != Up && now - h.LastPing >= _settings.PingTimeout).OrderBy(h => h.Name, StringComparer.Ordinal).ToList();
            if (load.Count == 0)
            {
                return;
            }

            _connecting = true;
            generation = ++_connectGeneration;
            foreach (var host in load)
            {
                host.Owned = true;
            }
        }

        _audit.Event("cloudstack.scan", new Dictionary<string, object?> { ["cluster"] = ClusterName, ["hosts"] = load.Select(h => h.Name).ToList() });
        ConnectNext(load, 0, generation);
    }

    /// <summary>Loads <paramref name="queue"/>[<paramref name="index"/>]: Connecting, then Up, or Alert when XAPI refuses it.</summary>
    private void ConnectNext(List<HostEntry> queue, int index, int generation)
    {
        lock (_gate)
        {
            if (generation != _connectGeneration || _managedState != Managed)
            {
                return;
            }

            if (index >= queue.Count)
            {
                _connecting = false;
                return;
            }

            var host = queue[index];
            Invalidate(host);
            SetHostState(host, Connecting);
        }

        _owner.RunLater(_settings.ConnectTime, () =>
        {
            var views = PoolHosts();
            lock (_gate)
            {
                if (generation != _connectGeneration || _managedState != Managed)
                {
                    return;
                }

                var host = queue[index];
                var view = views.GetValueOrDefault(host.Name);
                var master = views.Values.FirstOrDefault(v => v.IsMaster);
                string? failure = view is not { Live: true } ? $"host {host.Address} does not answer"
                    // XenServerConnectionPool.connect: the pool's master connection first, then this host.
                    : master is { Enabled: false } ? $"Unable to create master connection, due to master Host {master.Address} is not enabled"
                    : !view.Enabled ? $"Cannot connect this host {host.Address} due to the host is not enabled"
                    : null;
                host.LastPing = Now;
                if (failure is null)
                {
                    SetHostState(host, Up);
                }
                else
                {
                    SetHostState(host, Alert);
                    _audit.Event("cloudstack.connectFailed", new Dictionary<string, object?> { ["host"] = host.Name, ["reason"] = failure });
                }
            }

            ConnectNext(queue, index + 1, generation);
        });
    }

    private void DisconnectHost(HostEntry host, int generation)
    {
        lock (_gate)
        {
            if (generation == host.Generation && host.State == Up && _managedState == PrepareUnmanaged)
            {
                // disconnectWithoutInvestigation(ShutdownRequested): Disconnected, and the management server id cleared.
                host.Owned = false;
                host.LastPing = Now;
                SetHostState(host, Disconnected);
            }
        }
    }

    private DateTimeOffset Now => _timeProvider.GetUtcNow();

    private static int Invalidate(HostEntry host) => ++host.Generation;

    private void SetManagedState(string value)
    {
        if (_managedState != value)
        {
            _managedState = value;
            _audit.Event("cloudstack.managedState", new Dictionary<string, object?> { ["value"] = value });
        }
    }

    private void SetHostState(HostEntry host, string state)
    {
        if (host.State != state)
        {
            host.State = state;
            _audit.Event("cloudstack.hostState", new Dictionary<string, object?> { ["host"] = host.Name, ["state"] = state });
        }
    }

    /// <summary>
    /// Adds the pool's hosts CloudStack does not know yet, from <paramref name="live"/> (read before <c>_gate</c> is taken):
    /// called under <c>_gate</c>, it must not read the pool, whose lock the simulation holds while it calls
    /// <see cref="Reconcile"/> (which takes <c>_gate</c>): reading it here deadlocked a scan against a host coming up.
    /// </summary>
    private void EnsureHosts(Dictionary<string, LabHostView> live)
    {
        foreach (var view in live.Values)
        {
            if (_hosts.Any(h => h.Name == view.Name))
            {
                continue;
            }

            var spec = Spec.Hosts.FirstOrDefault(h => h.Name == view.Name);
            var isLive = view.Live;
            var state = _managedState switch
            {
                Managed => isLive ? Up : Alert,
                // Left over from an unmanage that did not finish: the hosts it did not disconnect are still connected.
                PrepareUnmanaged or PrepareUnmanagedError => spec?.InitialState ?? (isLive ? Up : Alert),
                _ => Disconnected,
            };
            _hosts.Add(new HostEntry(view.Name, StableId("host", _hostKeyPrefix + view.Name), view.Address)
            {
                State = state,
                ResourceState = spec?.ResourceState ?? "Enabled",
                HostTags = spec?.HostTags ?? [],
                DedicatedTo = spec?.DedicatedTo,
                Owned = state != Disconnected,
                // Long unmanaged: its last ping is far behind, so the first scan after Managed takes it.
                LastPing = state == Disconnected ? _started - TimeSpan.FromHours(1) : _started,
            });
        }
    }

    private Dictionary<string, LabHostView> PoolHosts()
    {
        var views = new Dictionary<string, LabHostView>(StringComparer.Ordinal);
        foreach (var host in _pool.Hosts)
        {
            views[host.Name] = host;
        }

        return views;
    }

    /// <summary>CloudStack's guest VMs: the pool's VMs named like CloudStack instances (<c>i-...</c>).</summary>
    internal List<LabVmView> GuestVms() => _pool.Vms.Where(vm => vm.Name.StartsWith("i-", StringComparison.Ordinal)).ToList();

    internal JsonObject ClusterJson() => new()
    {
        ["id"] = ClusterId,
        ["name"] = ClusterName,
        ["podid"] = PodId,
        ["podname"] = PodName,
        ["zoneid"] = ZoneId,
        ["zonename"] = ZoneName,
        ["hypervisortype"] = "XenServer",
        ["clustertype"] = "CloudManaged",
        ["allocationstate"] = _allocationState,
        ["managedstate"] = _managedState,
    };

    public override string ToString() => $"LabCloudStackCluster({ClusterName} in {ZoneName}, {ManagedState})";

    internal sealed class HostEntry(string name, string id, string address)
    {
        public string Name { get; } = name;

        public string Id { get; } = id;

        public string Address { get; } = address;

        public string State { get; set; } = Disconnected;

        public string ResourceState { get; init; } = "Enabled";

        public IReadOnlyList<string> HostTags { get; init; } = [];

        /// <summary>The account the host is dedicated to (its ExplicitDedication group is DedicatedGrp-ACCOUNT), or null.</summary>
        public string? DedicatedTo { get; init; }

        /// <summary>A management server holds the host (host.mgmt_server_id set): the scan leaves it alone.</summary>
        public bool Owned { get; set; }

        /// <summary>host.last_ping; an Up host is pinged all the time, so it matters only once the host is not Up.</summary>
        public DateTimeOffset LastPing { get; set; }

        /// <summary>Bumped whenever a scheduled disconnect of this host must no longer happen.</summary>
        public int Generation { get; set; }
    }
}
