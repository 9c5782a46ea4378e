using System.Buffers.Text;
using System.Globalization;
using System.Security.Cryptography;
using System.Text;
using System.Text.Json.Nodes;
using Microsoft.AspNetCore.Http;

namespace RollingReboot.Lab.CloudStack;

/// <summary>
/// The simulated CloudStack management server of the lab's pool: one zone, pod and cluster whose hosts are the
/// pool's. Serves <c>/client/api</c> (GET and form POST) with CloudStack's signature check and error bodies, and
/// watches the pool (<see cref="OnPoolChanged"/>): while the cluster is Managed, a host that goes down is marked
/// Alert and its VMs "recovered", which the audit records as a violation. Durations are simulated seconds on the
/// injected clock. Thread-safe.
/// </summary>
public sealed class LabCloudStack : IDisposable
{
    public const string ApiPath = "/client/api";

    public const string Managed = "Managed";
    public const string Unmanaged = "Unmanaged";
    public const string PrepareUnmanaged = "PrepareUnmanaged";
    public const string PrepareUnmanagedError = "PrepareUnmanagedError";

    /// <summary>How long CloudStack takes to disconnect an Up host after updateCluster Unmanaged.</summary>
    public static readonly TimeSpan DisconnectDelay = TimeSpan.FromSeconds(3);

    /// <summary>After updateCluster Managed (or a host coming back): Disconnected/Alert to Connecting.</summary>
    public static readonly TimeSpan ConnectingDelay = TimeSpan.FromSeconds(2);

    /// <summary>Connecting to Up.</summary>
    public static readonly TimeSpan UpDelay = TimeSpan.FromSeconds(3);

    // ResourceManagerImpl.updateCluster: 40 polls, 5 s apart, before PrepareUnmanagedError.
    private static readonly TimeSpan s_unmanagePollInterval = TimeSpan.FromSeconds(5);
    private const int UnmanagePolls = 40;

    private const string Up = "Up";
    private const string Connecting = "Connecting";
    private const string Disconnected = "Disconnected";
    private const string Alert = "Alert";
    private const string Down = "Down";
    private const string AntiAffinity = "host anti-affinity";
    private const string AuthFailure = "unable to verify user credentials and/or request signature";
    private const int CsInvalidParameter = 4350;
    private const int CsCloudRuntime = 4250;
    private const int CsServerApi = 9999;

    private static readonly string[] s_commands =
    [
        "listClusters", "updateCluster", "listHosts", "listVirtualMachines", "listAffinityGroups", "listZones",
        "queryAsyncJobResult", "listAsyncJobs",
    ];

    /// <summary>How long before the lab's start the scenario's jobs were created.</summary>
    private static readonly TimeSpan s_jobAge = TimeSpan.FromMinutes(1);

    private readonly Lock _gate = new();
    private readonly SemaphoreSlim _updateGate = new(1, 1);
    private readonly CancellationTokenSource _lifetime = new();
    private readonly ILabPoolView _pool;
    private readonly ILabAudit _audit;
    private readonly TimeProvider _timeProvider;
    private readonly string _secretKey;
    private readonly bool _unmanageFails;
    private readonly List<HostEntry> _hosts = [];
    private readonly Dictionary<string, ErrorFaultCounter> _errorFaults = new(StringComparer.OrdinalIgnoreCase);
    private readonly Dictionary<string, int> _calls = new(StringComparer.OrdinalIgnoreCase);
    private readonly List<(string Id, LabAsyncJob Job)> _jobs = [];
    private readonly DateTimeOffset _started;
    private string _managedState;
    private string _allocationState = "Enabled";
    private int _disposed;

    public LabCloudStack(
        string clusterName,
        string zone,
        string pod,
        string initialManagedState,
        string apiKey,
        string secretKey,
        ILabPoolView pool,
        ILabAudit audit,
        TimeProvider timeProvider,
        IEnumerable<LabCloudStackFault>? faults = null,
        IEnumerable<LabAsyncJob>? asyncJobs = null)
    {
        ArgumentException.ThrowIfNullOrWhiteSpace(clusterName);
        ArgumentException.ThrowIfNullOrWhiteSpace(zone);
        ArgumentException.ThrowIfNullOrWhiteSpace(pod);
        ArgumentException.ThrowIfNullOrWhiteSpace(apiKey);
        ArgumentException.ThrowIfNullOrWhiteSpace(secretKey);
        ArgumentNullException.ThrowIfNull(pool);
        ArgumentNullException.ThrowIfNull(audit);
        ArgumentNullException.ThrowIfNull(timeProvider);
        _managedState = initialManagedState?.Trim().ToUpperInvariant() switch
        {
            "MANAGED" => Managed,
            "UNMANAGED" => Unmanaged,
            _ => throw new ArgumentException($"The initial managed state must be {Managed} or {Unmanaged}, not '{initialManagedState}'.", nameof(initialManagedState)),
        };
        ClusterName = clusterName;
        ZoneName = zone;
        PodName = pod;
        ApiKey = apiKey;
        _secretKey = secretKey;
        _pool = pool;
        _audit = audit;
        _timeProvider = timeProvider;
        ClusterId = StableId("cluster", clusterName);
        ZoneId = StableId("zone", zone);
        PodId = StableId("pod", zone + "/" + pod);
        _started = timeProvider.GetUtcNow();
        foreach (var job in asyncJobs ?? [])
        {
            ArgumentException.ThrowIfNullOrWhiteSpace(job.Cmd, nameof(asyncJobs));
            if ((job.Host is null ? 0 : 1) + (job.Vm is null ? 0 : 1) + (job.Cluster ? 1 : 0) != 1)
            {
                throw new ArgumentException($"Job {job.Cmd} must work on exactly one host, VM or the cluster.", nameof(asyncJobs));
            }

            _jobs.Add((StableId("job", _jobs.Count.ToString(CultureInfo.InvariantCulture) + "/" + job.Cmd), job));
        }
        foreach (var fault in faults ?? [])
        {
            switch (fault)
            {
                case CloudStackErrorFault error:
                    _errorFaults[error.Command] = new ErrorFaultCounter(error.Times, error.ErrorCode);
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

    public string ApiKey { get; }

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

    /// <summary>A random API key pair shaped like CloudStack's (86 characters of base64url each).</summary>
    public static (string ApiKey, string SecretKey) GenerateKeys() => (RandomKey(), RandomKey());

    /// <summary>CloudStack's state of a host (Up, Disconnected, Alert, Connecting...), null when unknown.</summary>
    public string? GetHostState(string hostName)
    {
        lock (_gate)
        {
            return _hosts.FirstOrDefault(h => h.Name == hostName)?.State;
        }
    }

    /// <summary>How many requests of a command passed the signature check.</summary>
    public int CallCount(string command)
    {
        lock (_gate)
        {
            return _calls.GetValueOrDefault(command);
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

    public void OnHostDown(string hostName) => Reconcile();

    public void OnHostUp(string hostName) => Reconcile();

    /// <summary>Serves one request to <c>/client/api</c>.</summary>
    public async Task HandleAsync(HttpContext context)
    {
        ArgumentNullException.ThrowIfNull(context);
        var request = context.Request;
        var path = request.PathBase.Add(request.Path).Value?.TrimEnd('/') ?? "";
        if (!path.EndsWith(ApiPath, StringComparison.OrdinalIgnoreCase))
        {
            context.Response.StatusCode = StatusCodes.Status404NotFound;
            return;
        }

        if (!HttpMethods.IsGet(request.Method) && !HttpMethods.IsPost(request.Method))
        {
            context.Response.StatusCode = StatusCodes.Status405MethodNotAllowed;
            return;
        }

        ApiResult result;
        try
        {
            var parameters = await ReadParametersAsync(request, context.RequestAborted);
            result = await DispatchAsync(parameters, context.Connection.RemoteIpAddress?.ToString() ?? "", context.RequestAborted);
        }
        catch (OperationCanceledException) when (context.RequestAborted.IsCancellationRequested)
        {
            return;
        }
        catch (InvalidDataException ex)
        {
            result = Error("errorresponse", 431, CsInvalidParameter, $"Unable to read the request: {ex.Message}");
        }

        context.Response.StatusCode = result.Status;
        context.Response.ContentType = "application/json; charset=UTF-8";
        await context.Response.WriteAsync(result.Body.ToJsonString(), context.RequestAborted);
    }

    public void Dispose()
    {
        if (Interlocked.Exchange(ref _disposed, 1) == 0)
        {
            // Stops the scheduled host changes and any unmanage still polling. The update gate is left to the
            // GC: a change finishing right now may still release it.
            _lifetime.Cancel();
            _lifetime.Dispose();
        }
    }

    public override string ToString() =>
        $"LabCloudStack(cluster {ClusterName}, {ManagedState}, apikey {ApiKey[..Math.Min(6, ApiKey.Length)]}…, secret key hidden)";

    private static async Task<ApiParameters> ReadParametersAsync(HttpRequest request, CancellationToken cancellationToken)
    {
        var values = new Dictionary<string, string>(StringComparer.Ordinal);
        // Like the servlet: form fields, then the query string's (decoded as UTF-8) on top.
        if (HttpMethods.IsPost(request.Method) && request.HasFormContentType)
        {
            var form = await request.ReadFormAsync(cancellationToken);
            foreach (var (name, value) in form)
            {
                values[name] = value.Count > 0 ? value[0] ?? "" : "";
            }
        }

        foreach (var (name, value) in request.Query)
        {
            values[name] = value.Count > 0 ? value[0] ?? "" : "";
        }

        return new ApiParameters(values);
    }

    private async Task<ApiResult> DispatchAsync(ApiParameters parameters, string remoteAddress, CancellationToken cancellationToken)
    {
        var command = parameters.Exact("command");
        var known = command is not null && s_commands.Contains(command, StringComparer.Ordinal);
        var responseName = known ? command!.ToLowerInvariant() + "response" : "errorresponse";
        if (!Authenticate(parameters))
        {
            return Error(responseName, 401, null, AuthFailure);
        }

        if (!known)
        {
            return Error("errorresponse", 432, CsServerApi,
                $"The given command '{command}' either does not exist, is not available for user, or not available from ip address '{remoteAddress}'.");
        }

        lock (_gate)
        {
            _calls[command!] = _calls.GetValueOrDefault(command!) + 1;
            if (_errorFaults.TryGetValue(command!, out var fault) && fault.Remaining > 0)
            {
                fault.Remaining--;
                return Error(responseName, fault.ErrorCode, fault.ErrorCode == 530 ? CsCloudRuntime : CsServerApi,
                    $"Simulated failure of {command} (lab fault cloudstackError, {fault.Remaining} left)");
            }
        }

        Reconcile();
        var name = command!.ToLowerInvariant();
        return command switch
        {
            "listClusters" => ListClusters(name, parameters),
            "updateCluster" => await UpdateClusterAsync(name, parameters, cancellationToken),
            "listHosts" => ListHosts(name, parameters),
            "listVirtualMachines" => ListVirtualMachines(name, parameters),
            "listAffinityGroups" => ListAffinityGroups(name, parameters),
            "listZones" => ListZones(name, parameters),
            "listAsyncJobs" => ListAsyncJobs(name, parameters),
            _ => QueryAsyncJobResult(name, parameters),
        };
    }

    /// <summary>ApiServer.verifyRequest: apikey known, signature version 3 expiry, then the signature itself.</summary>
    private bool Authenticate(ApiParameters parameters)
    {
        var apiKey = parameters.IgnoreCase("apikey");
        if (apiKey is null || parameters.IgnoreCase("signature") is null
            || !CryptographicOperations.FixedTimeEquals(Encoding.UTF8.GetBytes(apiKey), Encoding.UTF8.GetBytes(ApiKey)))
        {
            return false;
        }

        if (parameters.IgnoreCase("signatureversion") == "3")
        {
            var expires = parameters.IgnoreCase("expires");
            if (expires is null || !LabSignatureVerifier.TryParseExpires(expires, out var expiry) || expiry < _timeProvider.GetUtcNow())
            {
                return false;
            }
        }

        return LabSignatureVerifier.Verify(parameters.Values, _secretKey);
    }

    private ApiResult ListClusters(string name, ApiParameters p)
    {
        if ((InvalidId(name, p, "id", ClusterId) ?? InvalidId(name, p, "zoneid", ZoneId) ?? InvalidId(name, p, "podid", PodId)) is { } invalid)
        {
            return invalid;
        }

        lock (_gate)
        {
            // CloudStack matches the name with LIKE %name%: callers must filter exactly themselves.
            var matches = (p.IgnoreCase("name") is not { } filter || ClusterName.Contains(filter, StringComparison.OrdinalIgnoreCase))
                && Matches(p.IgnoreCase("hypervisor"), "XenServer")
                && Matches(p.IgnoreCase("managedstate"), _managedState)
                && Matches(p.IgnoreCase("allocationstate"), _allocationState);
            return List(name, p, "cluster", matches ? [ClusterJson()] : []);
        }
    }

    private async Task<ApiResult> UpdateClusterAsync(string name, ApiParameters p, CancellationToken cancellationToken)
    {
        if (p.IgnoreCase("id") is null)
        {
            return MissingParameter(name, "id");
        }

        if (InvalidId(name, p, "id", ClusterId) is { } invalid)
        {
            return invalid;
        }

        var allocation = p.IgnoreCase("allocationstate");
        if (allocation is not null and not ("Enabled" or "Disabled"))
        {
            return Error(name + "response", 431, CsInvalidParameter, $"Unable to resolve Allocation State '{allocation}' to a supported state");
        }

        var managed = p.IgnoreCase("managedstate");
        if (managed is not null and not (Managed or Unmanaged or PrepareUnmanaged or PrepareUnmanagedError))
        {
            return Error(name + "response", 431, CsInvalidParameter, $"Unable to resolve Managed State '{managed}' to a supported state");
        }

        JsonObject before;
        lock (_gate)
        {
            if (allocation is not null && allocation != _allocationState)
            {
                _allocationState = allocation;
                _audit.Event("cloudstack.allocationState", new Dictionary<string, object?> { ["value"] = allocation });
            }

            // The real answer is built from the cluster object read before the wait: it may show the old state.
            before = ClusterJson();
        }

        // The change runs on the lab's lifetime, as on the server: a client that gives up does not stop it.
        var work = managed switch
        {
            Unmanaged => UnmanageAsync(name, _lifetime.Token),
            Managed => ManageAsync(_lifetime.Token),
            _ => Task.FromResult<ApiResult?>(null),
        };
        var failure = await work.WaitAsync(cancellationToken);
        return failure ?? Ok(name, new JsonObject { ["cluster"] = before });
    }

    private async Task<ApiResult?> UnmanageAsync(string name, CancellationToken cancellationToken)
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
                        RunLater(DisconnectDelay + stagger, () => DisconnectHost(host, generation));
                        stagger += TimeSpan.FromMilliseconds(500);
                    }
                }
            }

            var success = false;
            for (var poll = 0; poll < UnmanagePolls && !success; poll++)
            {
                await Task.Delay(s_unmanagePollInterval, _timeProvider, cancellationToken);
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

    private async Task<ApiResult?> ManageAsync(CancellationToken cancellationToken)
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

    private ApiResult ListHosts(string name, ApiParameters p)
    {
        if ((InvalidId(name, p, "clusterid", ClusterId) ?? InvalidId(name, p, "zoneid", ZoneId) ?? InvalidId(name, p, "podid", PodId)) is { } invalid)
        {
            return invalid;
        }

        lock (_gate)
        {
            if (p.IgnoreCase("id") is { } id && _hosts.All(h => h.Id != id))
            {
                return InvalidValue(name, "id", id);
            }

            var hosts = _hosts
                .Where(h => Matches(p.IgnoreCase("id"), h.Id) && Matches(p.IgnoreCase("name"), h.Name)
                    && Matches(p.IgnoreCase("type"), "Routing") && Matches(p.IgnoreCase("state"), h.State)
                    && Matches(p.IgnoreCase("resourcestate"), h.ResourceState))
                .Select(h => (JsonNode)new JsonObject
                {
                    ["id"] = h.Id,
                    ["name"] = h.Name,
                    ["state"] = h.State,
                    ["type"] = "Routing",
                    ["resourcestate"] = h.ResourceState,
                    ["ipaddress"] = h.Address,
                    ["hypervisor"] = "XenServer",
                    ["clusterid"] = ClusterId,
                    ["clustername"] = ClusterName,
                    ["clustertype"] = "CloudManaged",
                    ["podid"] = PodId,
                    ["podname"] = PodName,
                    ["zoneid"] = ZoneId,
                    ["zonename"] = ZoneName,
                })
                .ToList();
            return List(name, p, "host", hosts);
        }
    }

    private ApiResult ListVirtualMachines(string name, ApiParameters p)
    {
        if ((InvalidId(name, p, "clusterid", ClusterId) ?? InvalidId(name, p, "zoneid", ZoneId) ?? InvalidId(name, p, "podid", PodId)) is { } invalid)
        {
            return invalid;
        }

        var vms = GuestVms();
        lock (_gate)
        {
            if (p.IgnoreCase("hostid") is { } hostId && _hosts.All(h => h.Id != hostId))
            {
                return InvalidValue(name, "hostid", hostId);
            }

            var items = new List<JsonNode>();
            foreach (var vm in vms)
            {
                var running = vm.PowerState is "Running" or "Paused" && vm.HostName is not null;
                var host = running ? _hosts.FirstOrDefault(h => h.Name == vm.HostName) : null;
                var id = StableId("vm", vm.Uuid);
                var state = running ? "Running" : "Stopped";
                if (!Matches(p.IgnoreCase("id"), id) || !Matches(p.IgnoreCase("state"), state)
                    || !Matches(p.IgnoreCase("hostid"), host?.Id ?? "") || !Matches(p.IgnoreCase("name"), id))
                {
                    continue;
                }

                var item = new JsonObject
                {
                    ["id"] = id,
                    // Deployed without a name, CloudStack names a VM by its uuid; the XAPI name label is instancename.
                    ["name"] = id,
                    ["displayname"] = id,
                    ["instancename"] = vm.Name,
                    ["state"] = state,
                    ["account"] = "admin",
                    ["domain"] = "ROOT",
                    ["zoneid"] = ZoneId,
                    ["zonename"] = ZoneName,
                    ["hypervisor"] = "XenServer",
                };
                if (host is not null)
                {
                    item["hostid"] = host.Id;
                    item["hostname"] = host.Name;
                }

                item["affinitygroup"] = vm.AffinityGroup is { } group
                    ? new JsonArray(new JsonObject { ["id"] = StableId("affinitygroup", group), ["name"] = group, ["type"] = AntiAffinity })
                    : new JsonArray();
                items.Add(item);
            }

            return List(name, p, "virtualmachine", items);
        }
    }

    private ApiResult ListAffinityGroups(string name, ApiParameters p)
    {
        var groups = GuestVms()
            .Where(vm => vm.AffinityGroup is not null)
            .GroupBy(vm => vm.AffinityGroup!, StringComparer.Ordinal)
            .Where(g => Matches(p.IgnoreCase("id"), StableId("affinitygroup", g.Key)) && Matches(p.IgnoreCase("name"), g.Key)
                && Matches(p.IgnoreCase("type"), AntiAffinity))
            .Select(g => (JsonNode)new JsonObject
            {
                ["id"] = StableId("affinitygroup", g.Key),
                ["name"] = g.Key,
                ["type"] = AntiAffinity,
                ["account"] = "admin",
                ["domain"] = "ROOT",
                ["virtualmachineIds"] = new JsonArray(g.Select(vm => (JsonNode)JsonValue.Create(StableId("vm", vm.Uuid))).ToArray()),
            })
            .ToList();
        return List(name, p, "affinitygroup", groups);
    }

    private ApiResult ListZones(string name, ApiParameters p)
    {
        if (InvalidId(name, p, "id", ZoneId) is { } invalid)
        {
            return invalid;
        }

        var matches = Matches(p.IgnoreCase("name"), ZoneName);
        return List(name, p, "zone", matches
            ? [new JsonObject { ["id"] = ZoneId, ["name"] = ZoneName, ["allocationstate"] = "Enabled", ["networktype"] = "Advanced" }]
            : []);
    }

    /// <summary>
    /// QueryManagerImpl.searchForAsyncJobs: the caller's jobs, every account's with listall=true (the lab's keys are a
    /// root admin's, account "admin"); <c>keyword</c> matches cmd with LIKE, <c>startdate</c> keeps jobs created since.
    /// Pending and finished jobs alike, oldest first, under <c>asyncjobs</c>.
    /// </summary>
    private ApiResult ListAsyncJobs(string name, ApiParameters p)
    {
        DateTimeOffset? since = null;
        if (p.IgnoreCase("startdate") is { } startText)
        {
            if (!LabSignatureVerifier.TryParseExpires(startText, out var start))
            {
                return Error(name + "response", 431, CsInvalidParameter, $"Unable to parse date {startText} for command {name}, please pass dates in the format mentioned in the api documentation");
            }

            since = start;
        }

        var listAll = string.Equals(p.IgnoreCase("listall"), "true", StringComparison.OrdinalIgnoreCase);
        var keyword = p.IgnoreCase("keyword");
        var created = _started - s_jobAge;
        var vms = GuestVms();
        lock (_gate)
        {
            var items = _jobs
                .Where(j => (listAll || j.Job.Account == "admin")
                    && (keyword is null || j.Job.Cmd.Contains(keyword, StringComparison.OrdinalIgnoreCase))
                    && (since is null || created >= since))
                .Select(j => (JsonNode)JobJson(j.Id, j.Job, vms))
                .ToList();
            return List(name, p, "asyncjobs", items);
        }
    }

    /// <summary>The scenario's jobs by id; any other job id is unknown, as CloudStack reports one.</summary>
    private ApiResult QueryAsyncJobResult(string name, ApiParameters p)
    {
        if (p.IgnoreCase("jobid") is not { } jobId)
        {
            return MissingParameter(name, "jobid");
        }

        var vms = GuestVms();
        lock (_gate)
        {
            var found = _jobs.FirstOrDefault(j => j.Id == jobId);
            return found.Job is null ? InvalidValue(name, "jobid", jobId) : Ok(name, JobJson(found.Id, found.Job, vms));
        }
    }

    /// <summary>AsyncJobJoinDaoImpl.newAsyncJobResponse's fields.</summary>
    private JsonObject JobJson(string id, LabAsyncJob job, List<LabVmView> vms)
    {
        var created = _started - s_jobAge;
        var done = job.DurationSeconds is { } seconds && _timeProvider.GetUtcNow() >= _started + TimeSpan.FromSeconds(seconds);
        var (type, instance) = job.Host is { } hostName ? ("Host", _hosts.FirstOrDefault(h => h.Name == hostName)?.Id ?? StableId("host", hostName))
            : job.Vm is { } vmName ? ("VirtualMachine", vms.FirstOrDefault(v => v.Name == vmName) is { } vm ? StableId("vm", vm.Uuid) : StableId("vm", vmName))
            : ("Cluster", ClusterId);
        var item = new JsonObject
        {
            ["accountid"] = StableId("account", job.Account),
            ["account"] = job.Account,
            ["domainid"] = StableId("domain", "ROOT"),
            ["domainpath"] = "/",
            ["userid"] = StableId("user", job.Account),
            ["cmd"] = job.Cmd,
            ["jobstatus"] = done ? 1 : 0,
            ["jobprocstatus"] = 0,
            ["jobresultcode"] = 0,
            ["jobinstancetype"] = type,
            ["jobinstanceid"] = instance,
            ["created"] = JavaDate(created),
            ["jobid"] = id,
        };
        if (done)
        {
            item["jobresulttype"] = "object";
            item["jobresult"] = new JsonObject();
            item["completed"] = JavaDate(_started + TimeSpan.FromSeconds(job.DurationSeconds!.Value));
        }

        return item;
    }

    /// <summary>CloudStack's JSON dates: <c>yyyy-MM-dd'T'HH:mm:ssZ</c> (2026-11-22T12:00:00+0000).</summary>
    private static string JavaDate(DateTimeOffset at) =>
        at.ToUniversalTime().ToString("yyyy-MM-dd'T'HH:mm:ss", CultureInfo.InvariantCulture) + "+0000";

    private void Reconcile()
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
        RunLater(ConnectingDelay, () => ReconnectStep(host, generation, Connecting));
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
                RunLater(UpDelay, () => ReconnectStep(host, generation, Up));
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

    private void RunLater(TimeSpan delay, Action action) => _ = RunLaterAsync(delay, action);

    private async Task RunLaterAsync(TimeSpan delay, Action action)
    {
        try
        {
            await Task.Delay(delay, _timeProvider, _lifetime.Token);
            action();
        }
        catch (Exception ex) when (ex is OperationCanceledException or ObjectDisposedException)
        {
            // The lab is shutting down.
        }
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
            _hosts.Add(new HostEntry(view.Name, StableId("host", view.Name), view.Address) { State = state });
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
    private List<LabVmView> GuestVms() => _pool.Vms.Where(vm => vm.Name.StartsWith("i-", StringComparison.Ordinal)).ToList();

    private JsonObject ClusterJson() => new()
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

    private static bool Matches(string? filter, string value) =>
        filter is null || string.Equals(filter, value, StringComparison.OrdinalIgnoreCase);

    private static ApiResult List(string name, ApiParameters p, string itemName, List<JsonNode> items)
    {
        var page = 1;
        var pageSize = 500;
        if (p.IgnoreCase("page") is { } pageText && (!int.TryParse(pageText, CultureInfo.InvariantCulture, out page) || page < 1))
        {
            return InvalidValue(name, "page", pageText);
        }

        if (p.IgnoreCase("pagesize") is { } sizeText && (!int.TryParse(sizeText, CultureInfo.InvariantCulture, out pageSize) || pageSize is 0 or < -1))
        {
            return InvalidValue(name, "pagesize", sizeText);
        }

        var inner = new JsonObject();
        if (items.Count > 0)
        {
            var shown = pageSize == -1 ? items : items.Skip((int)Math.Min(int.MaxValue, (long)(page - 1) * pageSize)).Take(pageSize);
            inner["count"] = items.Count;
            inner[itemName] = new JsonArray(shown.ToArray());
        }

        return Ok(name, inner);
    }

    private static ApiResult Ok(string name, JsonObject inner) =>
        new(StatusCodes.Status200OK, new JsonObject { [name + "response"] = inner });

    private static ApiResult? InvalidId(string name, ApiParameters p, string parameter, string expected) =>
        p.IgnoreCase(parameter) is { } value && value != expected ? InvalidValue(name, parameter, value) : null;

    private static ApiResult InvalidValue(string name, string parameter, string value) =>
        Error(name + "response", 431, CsInvalidParameter,
            $"Unable to execute API command {name} due to invalid value. Invalid parameter {parameter} value={value} due to incorrect long value format, " +
            "or entity does not exist or due to incorrect parameter annotation for the field in api cmd class.");

    private static ApiResult MissingParameter(string name, string parameter) =>
        Error(name + "response", 431, CsInvalidParameter, $"Unable to execute API command {name} due to missing parameter {parameter}");

    private static ApiResult Error(string responseName, int errorCode, int? csErrorCode, string errorText)
    {
        var inner = new JsonObject { ["uuidList"] = new JsonArray(), ["errorcode"] = errorCode };
        if (csErrorCode is { } cs)
        {
            inner["cserrorcode"] = cs;
        }

        inner["errortext"] = errorText;
        return new ApiResult(errorCode, new JsonObject { [responseName] = inner });
    }

    private static string StableId(string kind, string key)
    {
        var hash = SHA256.HashData(Encoding.UTF8.GetBytes(kind + ":" + key));
        return new Guid(hash.AsSpan(0, 16)).ToString();
    }

    private static string RandomKey() => Base64Url.EncodeToString(RandomNumberGenerator.GetBytes(64));

    private sealed record ApiResult(int Status, JsonObject Body);

    private sealed class ErrorFaultCounter(int remaining, int errorCode)
    {
        public int Remaining { get; set; } = remaining;

        public int ErrorCode { get; } = errorCode;
    }

    private sealed class HostEntry(string name, string id, string address)
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

    /// <summary>Decoded request parameters, names as sent.</summary>
    private sealed class ApiParameters(Dictionary<string, string> values)
    {
        public IReadOnlyDictionary<string, string> Values => values;

        public string? Exact(string name) => values.GetValueOrDefault(name);

        public string? IgnoreCase(string name) =>
            values.TryGetValue(name, out var value) ? value
            : values.FirstOrDefault(p => p.Key.Equals(name, StringComparison.OrdinalIgnoreCase)).Value;
    }
}
