using System.Text.Json.Nodes;
using static RollingReboot.Lab.CloudStack.LabCloudStack;

namespace RollingReboot.Lab.CloudStack;

/// <summary>
/// One cluster of the lab's CloudStack (a XenServer pool): its zone and pod, its managed and allocation state, its
/// hosts' states, its faults, and the pool and audit it watches. While the cluster is Managed, a host of its pool that
/// goes down is marked Alert and its VMs "recovered", which that pool's audit records as a violation. Every state
/// change happens under the owning <see cref="LabCloudStack"/>'s lock.
/// </summary>
public sealed class LabCloudStackCluster
{
    private readonly LabCloudStack _owner;
    private readonly Lock _gate;
    private readonly SemaphoreSlim _updateGate = new(1, 1);
    private readonly ILabPoolView _pool;
    private readonly ILabAudit _audit;
    private readonly TimeProvider _timeProvider;
    private readonly bool _unmanageFails;
    private readonly string _hostKeyPrefix;
    private readonly List<HostEntry> _hosts = [];
    private string _managedState;
    private string _allocationState = "Enabled";

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
        bool qualifyIds)
    {
        ArgumentException.ThrowIfNullOrWhiteSpace(clusterName);
        ArgumentException.ThrowIfNullOrWhiteSpace(zone);
        ArgumentException.ThrowIfNullOrWhiteSpace(pod);
        ArgumentNullException.ThrowIfNull(pool);
        ArgumentNullException.ThrowIfNull(audit);
        _managedState = initialManagedState?.Trim().ToUpperInvariant() switch
        {
            "MANAGED" => Managed,
            "UNMANAGED" => Unmanaged,
            _ => throw new ArgumentException($"The initial managed state must be {Managed} or {Unmanaged}, not '{initialManagedState}'.", nameof(initialManagedState)),
        };
        _owner = owner;
        _gate = gate;
        _pool = pool;
        _audit = audit;
        _timeProvider = timeProvider;
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
                default:
                    throw new ArgumentException($"Unknown CloudStack fault {fault}.", nameof(faults));
            }
        }

        var live = LiveHosts();
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

    internal string AllocationState => _allocationState;

    internal Dictionary<string, ErrorFaultCounter> ErrorFaults { get; } = new(StringComparer.OrdinalIgnoreCase);

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
            var live = LiveHosts();
            lock (_gate)
            {
                EnsureHosts(live);
                if (_managedState == Unmanaged)
                {
                    return null;
                }

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
                    success = _hosts.All(h => h.State is Down or Disconnected or Alert);
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

    internal async Task<ApiResult?> ManageAsync(CancellationToken cancellationToken)
    {
        await _updateGate.WaitAsync(cancellationToken);
        try
        {
            var live = LiveHosts();
            lock (_gate)
            {
                EnsureHosts(live);
                if (_managedState == Managed)
                {
                    return null;
                }

                SetManagedState(Managed);
                foreach (var host in _hosts)
                {
                    var isLive = live.GetValueOrDefault(host.Name);
                    if (!isLive)
                    {
                        // Down when CloudStack takes the cluster back: it cannot reach the host.
                        Invalidate(host);
                        SetHostState(host, Alert);
                    }
                    else if (host.State != Up)
                    {
                        StartReconnect(host);
                    }
                }
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
        var live = LiveHosts();
        var vms = GuestVms();
        lock (_gate)
        {
            EnsureHosts(live);
            if (_managedState != Managed)
            {
                // Unmanaged (or on the way there), CloudStack keeps its hands off the hosts.
                return;
            }

            foreach (var host in _hosts)
            {
                if (!live.TryGetValue(host.Name, out var isLive))
                {
                    continue;
                }

                if (!isLive && host.State is Up or Connecting)
                {
                    Invalidate(host);
                    SetHostState(host, Alert);
                    var recovered = vms.Where(vm => vm.HostName == host.Name && vm.PowerState is "Running" or "Paused").Select(vm => vm.Name).ToList();
                    _audit.Event("cloudstack.haRecovery", new Dictionary<string, object?> { ["host"] = host.Name, ["vms"] = recovered });
                    _audit.Violation(
                        $"CloudStack marked host {host.Name} Alert and started recovering its VMs ({(recovered.Count == 0 ? "none" : string.Join(", ", recovered))}): " +
                        $"host {host.Name} went down while the cluster {ClusterName} was Managed.");
                }
                else if (isLive && host.State is Alert or Disconnected or Down && !host.Reconnecting)
                {
                    StartReconnect(host);
                }
            }
        }
    }

    private void StartReconnect(HostEntry host)
    {
        var generation = Invalidate(host);
        host.Reconnecting = true;
        _owner.RunLater(ConnectingDelay, () => ReconnectStep(host, generation, Connecting));
    }

    private void ReconnectStep(HostEntry host, int generation, string next)
    {
        var isLive = LiveHosts().GetValueOrDefault(host.Name);
        lock (_gate)
        {
            if (generation != host.Generation || _managedState != Managed)
            {
                return;
            }

            if (!isLive)
            {
                host.Reconnecting = false;
                SetHostState(host, Alert);
                return;
            }

            SetHostState(host, next);
            if (next == Connecting)
            {
                _owner.RunLater(UpDelay, () => ReconnectStep(host, generation, Up));
            }
            else
            {
                host.Reconnecting = false;
            }
        }
    }

    private void DisconnectHost(HostEntry host, int generation)
    {
        lock (_gate)
        {
            if (generation == host.Generation && host.State == Up && _managedState == PrepareUnmanaged)
            {
                SetHostState(host, Disconnected);
            }
        }
    }

    private static int Invalidate(HostEntry host)
    {
        host.Reconnecting = false;
        return ++host.Generation;
    }

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

    private void EnsureHosts(Dictionary<string, bool> live)
    {
        foreach (var view in _pool.Hosts)
        {
            if (_hosts.Any(h => h.Name == view.Name))
            {
                continue;
            }

            var state = _managedState == Managed ? (live.GetValueOrDefault(view.Name) ? Up : Alert) : Disconnected;
            _hosts.Add(new HostEntry(view.Name, StableId("host", _hostKeyPrefix + view.Name), view.Address) { State = state });
        }
    }

    private Dictionary<string, bool> LiveHosts()
    {
        var live = new Dictionary<string, bool>(StringComparer.Ordinal);
        foreach (var host in _pool.Hosts)
        {
            live[host.Name] = host.Live;
        }

        return live;
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

        public string ResourceState { get; } = "Enabled";

        /// <summary>Bumped whenever a scheduled change of this host must no longer happen.</summary>
        public int Generation { get; set; }

        public bool Reconnecting { get; set; }
    }
}
