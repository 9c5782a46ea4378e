using System.Buffers.Text;
using System.Globalization;
using System.Security.Cryptography;
using System.Text;
using System.Text.Json.Nodes;
using Microsoft.AspNetCore.Http;

namespace RollingReboot.Lab.CloudStack;

/// <summary>
/// The simulated CloudStack management server of the lab: one cluster per pool (<see cref="LabCloudStackCluster"/>;
/// the first from the constructor, more with <see cref="AddCluster"/> for a fleet), in their zones and pods, one API
/// key pair. Serves <c>/client/api</c> (GET and form POST) with ApiServlet's and ApiServer's checks (POST for
/// state-changing commands and timestamps when enforced, unknown commands, the signature with <c>expires</c> on the wall
/// clock, commands the keys' role may not call) and error bodies, the list commands with BaseListCmd's paging, the
/// project ACL of QueryManagerImpl, and runs the direct-agent scan; it watches each pool (<see cref="OnPoolChanged"/>):
/// while a cluster's hosts are still pinged, a host of its pool that goes down is marked Alert and its VMs "recovered",
/// which that pool's audit records as a violation. Durations are simulated seconds on the injected clock. Thread-safe.
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
    internal static readonly TimeSpan UnmanagePollInterval = TimeSpan.FromSeconds(5);
    internal const int UnmanagePolls = 40;

    internal const string Up = "Up";
    internal const string Connecting = "Connecting";
    internal const string Disconnected = "Disconnected";
    internal const string Alert = "Alert";
    internal const string Down = "Down";
    private const string AntiAffinity = "host anti-affinity";
    private const string ExplicitDedication = "ExplicitDedication";
    private const string AuthFailure = "unable to verify user credentials and/or request signature";
    private const string DefaultOffering = "Small Instance";
    private const int CsInvalidParameter = 4350;
    internal const int CsCloudRuntime = 4250;
    private const int CsServerApi = 9999;

    private static readonly string[] s_commands =
    [
        "listClusters", "updateCluster", "listHosts", "listVirtualMachines", "listAffinityGroups", "listZones",
        "queryAsyncJobResult", "listAsyncJobs", "listServiceOfferings", "listDedicatedHosts",
    ];

    /// <summary>ApiServlet.GET_REQUEST_COMMANDS: what may come as GET when POST is enforced.</summary>
    private static readonly System.Text.RegularExpressions.Regex s_getCommands = new(
        @"^(get|list|query|find)\w+$", System.Text.RegularExpressions.RegexOptions.CultureInvariant, TimeSpan.FromSeconds(1));

    /// <summary>ApiServer.verifyRequest: an <c>expires</c> more than 15 minutes ahead is refused when timestamps are enforced.</summary>
    private static readonly TimeSpan s_maxExpiry = TimeSpan.FromMinutes(15);

    /// <summary>How long before the lab's start the scenario's jobs were created.</summary>
    private static readonly TimeSpan s_jobAge = TimeSpan.FromMinutes(1);

    private readonly Lock _gate = new();
    private readonly CancellationTokenSource _lifetime = new();
    private readonly TimeProvider _timeProvider;
    private readonly TimeProvider _wallClock;
    private readonly LabCloudStackSettings _settings;
    private readonly string _secretKey;
    private readonly List<LabCloudStackCluster> _clusters = [];
    private readonly Dictionary<string, int> _calls = new(StringComparer.OrdinalIgnoreCase);
    private readonly List<(string Id, LabAsyncJob Job, LabCloudStackCluster Cluster)> _jobs = [];
    private readonly DateTimeOffset _started;
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
        IEnumerable<LabAsyncJob>? asyncJobs = null,
        LabCloudStackSettings? settings = null,
        LabCloudStackClusterSpec? spec = null)
    {
        ArgumentException.ThrowIfNullOrWhiteSpace(apiKey);
        ArgumentException.ThrowIfNullOrWhiteSpace(secretKey);
        ArgumentNullException.ThrowIfNull(timeProvider);
        ApiKey = apiKey;
        _secretKey = secretKey;
        _timeProvider = timeProvider;
        _settings = settings ?? new LabCloudStackSettings();
        _wallClock = _settings.WallClock ?? TimeProvider.System;
        _started = timeProvider.GetUtcNow();
        _clusters.Add(new LabCloudStackCluster(this, _gate, clusterName, zone, pod, initialManagedState, pool, audit, timeProvider, faults, qualifyIds: false, _settings, spec));
        AddJobs(_clusters[0], asyncJobs, qualify: false);
        _ = ScanLoopAsync();
    }

    /// <summary>The management server's global settings.</summary>
    public LabCloudStackSettings Settings => _settings;

    /// <summary>ClusteredAgentManagerImpl's DirectAgentScanTimerTask: every scan interval, each cluster's unheld hosts are loaded.</summary>
    private async Task ScanLoopAsync()
    {
        try
        {
            while (true)
            {
                await Task.Delay(_settings.ScanInterval, _timeProvider, _lifetime.Token);
                foreach (var cluster in Clusters)
                {
                    cluster.Scan();
                }
            }
        }
        catch (Exception ex) when (ex is OperationCanceledException or ObjectDisposedException)
        {
            // The lab is shutting down.
        }
    }

    /// <summary>A scenario's pending (or, with a duration, finishing) async jobs, each on one host, VM or the cluster.</summary>
    private void AddJobs(LabCloudStackCluster cluster, IEnumerable<LabAsyncJob>? asyncJobs, bool qualify)
    {
        lock (_gate)
        {
            foreach (var job in asyncJobs ?? [])
            {
                ArgumentException.ThrowIfNullOrWhiteSpace(job.Cmd, nameof(asyncJobs));
                if ((job.Host is null ? 0 : 1) + (job.Vm is null ? 0 : 1) + (job.Cluster ? 1 : 0) != 1)
                {
                    throw new ArgumentException($"Job {job.Cmd} must work on exactly one host, VM or the cluster.", nameof(asyncJobs));
                }

                var key = (qualify ? cluster.ZoneName + "/" + cluster.ClusterName + "/" : "") + _jobs.Count.ToString(CultureInfo.InvariantCulture) + "/" + job.Cmd;
                _jobs.Add((StableId("job", key), job, cluster));
            }
        }
    }

    /// <summary>The first cluster (the one a one-pool lab has).</summary>
    public LabCloudStackCluster FirstCluster => _clusters[0];

    /// <summary>Every cluster, the first one first.</summary>
    public IReadOnlyList<LabCloudStackCluster> Clusters
    {
        get
        {
            lock (_gate)
            {
                return [.. _clusters];
            }
        }
    }

    public string ClusterName => FirstCluster.ClusterName;

    public string ClusterId => FirstCluster.ClusterId;

    public string ZoneName => FirstCluster.ZoneName;

    public string ZoneId => FirstCluster.ZoneId;

    public string PodName => FirstCluster.PodName;

    public string PodId => FirstCluster.PodId;

    public string ApiKey { get; }

    public string ManagedState => FirstCluster.ManagedState;

    /// <summary>A random API key pair shaped like CloudStack's (86 characters of base64url each).</summary>
    public static (string ApiKey, string SecretKey) GenerateKeys() => (RandomKey(), RandomKey());

    /// <summary>
    /// Adds a cluster (another pool of a fleet) to this CloudStack: same API and keys, its own zone and pod (clusters may
    /// share them), state, faults and audit. A cluster of the same name in the same zone is refused.
    /// </summary>
    /// <exception cref="ArgumentException">The zone already has a cluster of that name.</exception>
    public LabCloudStackCluster AddCluster(
        string clusterName, string zone, string pod, string initialManagedState, ILabPoolView pool, ILabAudit audit, IEnumerable<LabCloudStackFault>? faults = null,
        IEnumerable<LabAsyncJob>? asyncJobs = null, LabCloudStackClusterSpec? spec = null)
    {
        lock (_gate)
        {
            if (_clusters.FirstOrDefault(c => c.ClusterName.Equals(clusterName, StringComparison.OrdinalIgnoreCase) && c.ZoneName.Equals(zone, StringComparison.OrdinalIgnoreCase)) is { } twin)
            {
                throw new ArgumentException($"zone {twin.ZoneName} already has a cluster named {twin.ClusterName}", nameof(clusterName));
            }
        }

        var cluster = new LabCloudStackCluster(this, _gate, clusterName, zone, pod, initialManagedState, pool, audit, _timeProvider, faults, qualifyIds: true, _settings, spec);
        lock (_gate)
        {
            _clusters.Add(cluster);
        }

        AddJobs(cluster, asyncJobs, qualify: true);
        return cluster;
    }

    /// <summary>CloudStack's state of a host of the first cluster (Up, Disconnected, Alert, Connecting...), null when unknown.</summary>
    public string? GetHostState(string hostName) => FirstCluster.GetHostState(hostName);

    /// <summary>How many requests of a command passed the signature check.</summary>
    public int CallCount(string command)
    {
        lock (_gate)
        {
            return _calls.GetValueOrDefault(command);
        }
    }

    /// <summary>The first cluster's audit <c>cloudstack</c> object (<see cref="LabCloudStackCluster.AuditSnapshot"/>).</summary>
    public object AuditSnapshot() => FirstCluster.AuditSnapshot();

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
            result = await DispatchAsync(parameters, HttpMethods.IsPost(request.Method), context.RequestAborted);
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

    private async Task<ApiResult> DispatchAsync(ApiParameters parameters, bool post, CancellationToken cancellationToken)
    {
        var command = parameters.Exact("command");
        // ApiServer.s_apiNameCmdClassMap.containsKey: the name as sent, case and all.
        var known = command is not null && s_commands.Contains(command, StringComparer.Ordinal);
        var responseName = known ? command!.ToLowerInvariant() + "response" : "errorresponse";
        if (_settings.EnforcePostRequestsAndTimestamps && !post && !s_getCommands.IsMatch((command ?? "").ToLowerInvariant()))
        {
            // ApiServlet.isStateChangingCommandNotUsingPOST, before the request is verified at all.
            return Error(responseName, 400, CsServerApi, $"State changing command {command} needs to be sent using POST request");
        }

        if (!known)
        {
            // ApiServer.verifyRequest checks that the command exists before the signature, and answers false: the servlet's 401.
            return Error("errorresponse", 401, null, AuthFailure);
        }

        if (Authenticate(parameters, command!) is { } refused)
        {
            return refused;
        }

        lock (_gate)
        {
            _calls[command!] = _calls.GetValueOrDefault(command!) + 1;
            if (Concerned(command!, parameters).Select(c => c.ErrorFaults.GetValueOrDefault(command!)).FirstOrDefault(f => f is { Remaining: > 0 }) is { } fault)
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
            "listServiceOfferings" => ListServiceOfferings(name, parameters),
            "listDedicatedHosts" => ListDedicatedHosts(name, parameters),
            _ => QueryAsyncJobResult(name, parameters),
        };
    }

    /// <summary>
    /// ApiServer.verifyRequest, in its order: signature and apikey present; with signature version 3 an <c>expires</c> that
    /// parses and is not past on the wall clock (nor more than 15 minutes ahead when timestamps are enforced), and without it
    /// a refusal when they are; a known apikey; the command allowed for the keys' role (commandAvailable: a 401 of its own);
    /// then the signature itself. Null when the request passes.
    /// </summary>
    private ApiResult? Authenticate(ApiParameters parameters, string command)
    {
        var responseName = command.ToLowerInvariant() + "response";
        var refused = Error(responseName, 401, null, AuthFailure);
        var apiKey = parameters.IgnoreCase("apikey");
        if (apiKey is null || parameters.IgnoreCase("signature") is null)
        {
            return refused;
        }

        if (parameters.IgnoreCase("signatureversion") == "3")
        {
            var expires = parameters.IgnoreCase("expires");
            var now = _wallClock.GetUtcNow();
            if (expires is null || !LabSignatureVerifier.TryParseExpires(expires, out var expiry) || expiry < now
                || (_settings.EnforcePostRequestsAndTimestamps && expiry > now + s_maxExpiry))
            {
                return refused;
            }
        }
        else if (_settings.EnforcePostRequestsAndTimestamps)
        {
            return refused;
        }

        if (!CryptographicOperations.FixedTimeEquals(Encoding.UTF8.GetBytes(apiKey), Encoding.UTF8.GetBytes(ApiKey)))
        {
            return refused;
        }

        if (_settings.DeniedCommands.Contains(command, StringComparer.OrdinalIgnoreCase))
        {
            return Error(responseName, 401, CsServerApi, $"The given command '{command}' either does not exist, is not available for user.");
        }

        return LabSignatureVerifier.Verify(parameters.Values, _secretKey) ? null : refused;
    }

    private ApiResult ListClusters(string name, ApiParameters p)
    {
        if ((InvalidId(name, p, "id", c => c.ClusterId) ?? InvalidId(name, p, "zoneid", c => c.ZoneId) ?? InvalidId(name, p, "podid", c => c.PodId)) is { } invalid)
        {
            return invalid;
        }

        lock (_gate)
        {
            // CloudStack matches the name with LIKE %name%: callers must filter exactly themselves.
            var clusters = _clusters
                .Where(c => Matches(p.IgnoreCase("id"), c.ClusterId) && Matches(p.IgnoreCase("zoneid"), c.ZoneId) && Matches(p.IgnoreCase("podid"), c.PodId)
                    && Like(p.IgnoreCase("name"), c.ClusterName) && Like(p.IgnoreCase("keyword"), c.ClusterName)
                    && Matches(p.IgnoreCase("hypervisor"), "XenServer")
                    && Matches(p.IgnoreCase("managedstate"), c.ManagedState)
                    && Matches(p.IgnoreCase("allocationstate"), c.AllocationState))
                .Select(c => (JsonNode)c.ClusterJson())
                .ToList();
            return List(name, p, "cluster", clusters);
        }
    }

    private async Task<ApiResult> UpdateClusterAsync(string name, ApiParameters p, CancellationToken cancellationToken)
    {
        if (p.IgnoreCase("id") is not { } clusterId)
        {
            return MissingParameter(name, "id");
        }

        if (Clusters.FirstOrDefault(c => c.ClusterId == clusterId) is not { } cluster)
        {
            return InvalidValue(name, "id", clusterId);
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
            if (allocation is not null)
            {
                cluster.SetAllocationState(allocation);
            }

            // The real answer is built from the cluster object read before the wait: it may show the old state.
            before = cluster.ClusterJson();
        }

        // The change runs on the lab's lifetime, as on the server: a client that gives up does not stop it.
        var work = managed switch
        {
            Unmanaged => cluster.UnmanageAsync(name, _lifetime.Token),
            Managed => cluster.ManageAsync(_lifetime.Token),
            _ => Task.FromResult<ApiResult?>(null),
        };
        var failure = await work.WaitAsync(cancellationToken);
        return failure ?? Ok(name, new JsonObject { ["cluster"] = before });
    }

    /// <summary>
    /// QueryManagerImpl.searchForServersInternal: <c>name</c> LIKE %name%, <c>keyword</c> LIKE on name, state or type,
    /// <c>type</c> LIKE %type, <c>state</c> and <c>resourcestate</c> exact.
    /// </summary>
    private ApiResult ListHosts(string name, ApiParameters p)
    {
        if ((InvalidId(name, p, "clusterid", c => c.ClusterId) ?? InvalidId(name, p, "zoneid", c => c.ZoneId) ?? InvalidId(name, p, "podid", c => c.PodId)) is { } invalid)
        {
            return invalid;
        }

        lock (_gate)
        {
            if (p.IgnoreCase("id") is { } id && _clusters.All(c => c.Hosts.All(h => h.Id != id)))
            {
                return InvalidValue(name, "id", id);
            }

            var keyword = p.IgnoreCase("keyword");
            var hosts = _clusters
                .Where(c => InScope(c, p))
                .SelectMany(c => c.Hosts
                    .Where(h => Matches(p.IgnoreCase("id"), h.Id) && Like(p.IgnoreCase("name"), h.Name)
                        && (p.IgnoreCase("type") is not { } type || "Routing".EndsWith(type, StringComparison.OrdinalIgnoreCase))
                        && Matches(p.IgnoreCase("state"), h.State)
                        && Matches(p.IgnoreCase("resourcestate"), h.ResourceState)
                        && (keyword is null || Like(keyword, h.Name) || Like(keyword, h.State) || Like(keyword, "Routing")))
                    .Select(h => (JsonNode)new JsonObject
                    {
                        ["id"] = h.Id,
                        ["name"] = h.Name,
                        ["state"] = h.State,
                        ["type"] = "Routing",
                        ["resourcestate"] = h.ResourceState,
                        ["ipaddress"] = h.Address,
                        ["hypervisor"] = "XenServer",
                        ["hosttags"] = h.HostTags.Count == 0 ? null : string.Join(',', h.HostTags),
                        ["hahost"] = false,
                        ["clusterid"] = c.ClusterId,
                        ["clustername"] = c.ClusterName,
                        ["clustertype"] = "CloudManaged",
                        ["podid"] = c.PodId,
                        ["podname"] = c.PodName,
                        ["zoneid"] = c.ZoneId,
                        ["zonename"] = c.ZoneName,
                    }))
                .ToList();
            foreach (var host in hosts.OfType<JsonObject>().Where(h => h["hosttags"] is null))
            {
                host.Remove("hosttags");
            }

            return List(name, p, "host", hosts);
        }
    }

    /// <summary>
    /// QueryManagerImpl.searchForUserVMsInternal: the ACL of AccountManagerImpl.buildACLSearchParameters (with no projectid
    /// and no id, project VMs are skipped, and without listall only the caller's own; projectid=-1 lists project VMs only,
    /// as 4.18-4.20 do; a project's id lists that project's), <c>name</c> LIKE %name%, <c>keyword</c> LIKE on display name, name and instance name or equal to the
    /// state, and UserVmJoinDaoImpl's fields for the Full (root admin) view.
    /// </summary>
    private ApiResult ListVirtualMachines(string name, ApiParameters p)
    {
        if ((InvalidId(name, p, "clusterid", c => c.ClusterId) ?? InvalidId(name, p, "zoneid", c => c.ZoneId) ?? InvalidId(name, p, "podid", c => c.PodId)) is { } invalid)
        {
            return invalid;
        }

        var projectFilter = p.IgnoreCase("projectid");
        if (projectFilter is not null and not "-1" && Clusters.SelectMany(c => c.Spec.Vms).All(v => v.Project is null || ProjectId(v.Project) != projectFilter))
        {
            return Error(name + "response", 431, CsInvalidParameter, $"Unable to find project by id {projectFilter}");
        }

        // The pools are read before CloudStack's lock, as everywhere.
        var clusterVms = Clusters.Select(c => (Cluster: c, Vms: c.GuestVms())).ToList();
        lock (_gate)
        {
            if (p.IgnoreCase("hostid") is { } hostId && _clusters.All(c => c.Hosts.All(h => h.Id != hostId)))
            {
                return InvalidValue(name, "hostid", hostId);
            }

            var byId = p.IgnoreCase("id") is not null;
            var listAll = string.Equals(p.IgnoreCase("listall"), "true", StringComparison.OrdinalIgnoreCase);
            var keyword = p.IgnoreCase("keyword");
            var items = new List<JsonNode>();
            foreach (var (cluster, vms) in clusterVms.Where(cv => InScope(cv.Cluster, p)))
            {
                foreach (var vm in vms)
                {
                    var shownOn = cluster.StaleVms.TryGetValue(vm.Name, out var staleHost) ? staleHost : vm.HostName;
                    var running = (vm.PowerState is "Running" or "Paused" || staleHost is not null) && shownOn is not null;
                    var host = running ? cluster.Hosts.FirstOrDefault(h => h.Name == shownOn) : null;
                    var id = StableId("vm", vm.Uuid);
                    var state = running ? "Running" : "Stopped";
                    var owner = cluster.Spec.Vms.FirstOrDefault(v => v.Name == vm.Name);
                    var project = owner?.Project;
                    // Without listall, a root admin sees only its own account's VMs (permittedAccounts = the caller).
                    var inAcl = projectFilter switch
                    {
                        null => byId || (project is null && (listAll || (owner?.Account ?? "admin") == "admin")),
                        "-1" => project is not null,
                        _ => project is not null && ProjectId(project) == projectFilter,
                    };
                    if (!inAcl || !Matches(p.IgnoreCase("id"), id) || !Matches(p.IgnoreCase("state"), state)
                        || !Matches(p.IgnoreCase("hostid"), host?.Id ?? "") || !Like(p.IgnoreCase("name"), id)
                        || (keyword is not null && !Like(keyword, id) && !Like(keyword, vm.Name) && !string.Equals(keyword, state, StringComparison.OrdinalIgnoreCase)))
                    {
                        continue;
                    }

                    var offering = owner?.ServiceOffering ?? DefaultOffering;
                    var item = new JsonObject
                    {
                        ["id"] = id,
                        // Deployed without a name, CloudStack names a VM by its uuid; the XAPI name label is instancename.
                        ["name"] = id,
                        ["displayname"] = id,
                        ["instancename"] = vm.Name,
                        ["state"] = state,
                        ["domainid"] = StableId("domain", "ROOT"),
                        ["domain"] = "ROOT",
                        ["serviceofferingid"] = StableId("serviceoffering", offering),
                        ["serviceofferingname"] = offering,
                        ["zoneid"] = cluster.ZoneId,
                        ["zonename"] = cluster.ZoneName,
                        ["hypervisor"] = "XenServer",
                    };
                    if (project is not null)
                    {
                        // ApiResponseHelper.populateOwner: a project's VM names its project, not the project's account.
                        item["projectid"] = ProjectId(project);
                        item["project"] = project;
                    }
                    else
                    {
                        item["account"] = owner?.Account ?? "admin";
                    }

                    if (host is not null)
                    {
                        item["hostid"] = host.Id;
                        item["hostname"] = host.Name;
                    }

                    item["affinitygroup"] = new JsonArray(GroupsOf(cluster, vm)
                        .Select(g => (JsonNode)new JsonObject { ["id"] = StableId("affinitygroup", g.Name), ["name"] = g.Name, ["type"] = g.Type })
                        .ToArray());
                    items.Add(item);
                }
            }

            return List(name, p, "virtualmachine", items);
        }
    }

    /// <summary>A VM's affinity groups: the scenario's <c>affinityGroup</c> (host anti-affinity) and the cluster's typed groups.</summary>
    private static List<(string Name, string Type)> GroupsOf(LabCloudStackCluster cluster, LabVmView vm)
    {
        var groups = new List<(string Name, string Type)>();
        if (vm.AffinityGroup is { } group)
        {
            groups.Add((group, AntiAffinity));
        }

        groups.AddRange(cluster.Spec.AffinityGroups.Where(g => g.Vms.Contains(vm.Name, StringComparer.Ordinal)).Select(g => (g.Name, g.Type)));
        return groups;
    }

    private static string ProjectId(string project) => StableId("project", project);

    /// <summary>ExplicitDedication group of a host dedicated to an account: DedicatedResourceManagerImpl's DedicatedGrp-ACCOUNT.</summary>
    private static string DedicationGroup(string account) => "DedicatedGrp-" + account;

    private ApiResult ListAffinityGroups(string name, ApiParameters p)
    {
        // An affinity group belongs to the account, not to a cluster: one group may hold VMs of several pools.
        var members = Clusters.SelectMany(c => c.GuestVms().SelectMany(vm => GroupsOf(c, vm).Select(g => (g.Name, g.Type, Vm: (LabVmView?)vm))))
            .Concat(Clusters.SelectMany(c => c.Spec.Hosts.Where(h => h.DedicatedTo is not null)
                .Select(h => (Name: DedicationGroup(h.DedicatedTo!), Type: ExplicitDedication, Vm: (LabVmView?)null))));
        var groups = members
            .GroupBy(x => (x.Name, x.Type))
            .Where(g => Matches(p.IgnoreCase("id"), StableId("affinitygroup", g.Key.Name)) && Like(p.IgnoreCase("name"), g.Key.Name)
                && Matches(p.IgnoreCase("type"), g.Key.Type))
            .Select(g => (JsonNode)new JsonObject
            {
                ["id"] = StableId("affinitygroup", g.Key.Name),
                ["name"] = g.Key.Name,
                ["type"] = g.Key.Type,
                ["account"] = "admin",
                ["domain"] = "ROOT",
                ["virtualmachineIds"] = new JsonArray(g.Where(x => x.Vm is not null).Select(x => (JsonNode)JsonValue.Create(StableId("vm", x.Vm!.Uuid))).Distinct().ToArray()),
            })
            .ToList();
        return List(name, p, "affinitygroup", groups);
    }

    /// <summary>The scenario's service offerings and the default one; <c>hosttags</c> as ServiceOfferingResponse has it.</summary>
    private ApiResult ListServiceOfferings(string name, ApiParameters p)
    {
        var offerings = Clusters.SelectMany(c => c.Spec.ServiceOfferings).Append(new LabServiceOffering(DefaultOffering))
            .DistinctBy(o => o.Name, StringComparer.Ordinal)
            .Where(o => Matches(p.IgnoreCase("id"), StableId("serviceoffering", o.Name)) && Like(p.IgnoreCase("name"), o.Name) && Like(p.IgnoreCase("keyword"), o.Name))
            .Select(o =>
            {
                var item = new JsonObject { ["id"] = StableId("serviceoffering", o.Name), ["name"] = o.Name, ["displaytext"] = o.Name, ["issystem"] = false };
                if (!string.IsNullOrEmpty(o.HostTags))
                {
                    item["hosttags"] = o.HostTags;
                }

                return (JsonNode)item;
            })
            .ToList();
        if (p.IgnoreCase("id") is { } id && offerings.Count == 0)
        {
            return InvalidValue(name, "id", id);
        }

        return List(name, p, "serviceoffering", offerings);
    }

    /// <summary>DedicatedResourceManagerImpl.listDedicatedHosts / createDedicateHostResponse (items <c>dedicatedhost</c>).</summary>
    private ApiResult ListDedicatedHosts(string name, ApiParameters p)
    {
        lock (_gate)
        {
            var hosts = _clusters.SelectMany(c => c.Hosts.Where(h => h.DedicatedTo is not null))
                .Where(h => Matches(p.IgnoreCase("hostid"), h.Id)
                    && Matches(p.IgnoreCase("affinitygroupid"), StableId("affinitygroup", DedicationGroup(h.DedicatedTo!)))
                    && Matches(p.IgnoreCase("account"), h.DedicatedTo!))
                .Select(h => (JsonNode)new JsonObject
                {
                    ["id"] = StableId("dedicatedresource", h.Id),
                    ["hostid"] = h.Id,
                    ["hostname"] = h.Name,
                    ["domainid"] = StableId("domain", "ROOT"),
                    ["accountid"] = StableId("account", h.DedicatedTo!),
                    ["affinitygroupid"] = StableId("affinitygroup", DedicationGroup(h.DedicatedTo!)),
                })
                .ToList();
            return List(name, p, "dedicatedhost", hosts);
        }
    }

    private ApiResult ListZones(string name, ApiParameters p)
    {
        if (InvalidId(name, p, "id", c => c.ZoneId) is { } invalid)
        {
            return invalid;
        }

        var zones = Clusters
            .DistinctBy(c => c.ZoneId)
            .Where(c => Matches(p.IgnoreCase("id"), c.ZoneId) && Matches(p.IgnoreCase("name"), c.ZoneName))
            .Select(c => (JsonNode)new JsonObject { ["id"] = c.ZoneId, ["name"] = c.ZoneName, ["allocationstate"] = "Enabled", ["networktype"] = "Advanced" })
            .ToList();
        return List(name, p, "zone", zones);
    }

    /// <summary>The lab runs no async jobs, so every job id is unknown, as CloudStack reports one.</summary>
    /// <summary>
    /// QueryManagerImpl.searchForAsyncJobs: the caller's jobs, every account's with listall=true (the lab's keys are a
    /// root admin's, account "admin"); <c>keyword</c> matches cmd with LIKE, <c>startdate</c> keeps jobs created since.
    /// Pending and finished jobs alike, oldest first, under <c>asyncjobs</c>; every cluster's.
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
        var vms = Clusters.ToDictionary(c => c, c => c.GuestVms());
        lock (_gate)
        {
            // searchForAsyncJobsInternal passes no projectid to buildACLSearchParameters (ListAsyncJobsCmd has none): a job a
            // project's account owns is skipped (account type NEQ project) whatever the caller asks.
            var items = _jobs
                .Where(j => j.Job.Project is null && (listAll || j.Job.Account == "admin")
                    && (keyword is null || j.Job.Cmd.Contains(keyword, StringComparison.OrdinalIgnoreCase))
                    && (since is null || created >= since))
                .Select(j => (JsonNode)JobJson(j.Id, j.Job, j.Cluster, vms[j.Cluster]))
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

        // The pool is read before the CloudStack lock is taken (the simulation calls in with its own lock held).
        var vms = Clusters.ToDictionary(c => c, c => c.GuestVms());
        lock (_gate)
        {
            var found = _jobs.FirstOrDefault(j => j.Id == jobId);
            return found.Job is null ? InvalidValue(name, "jobid", jobId) : Ok(name, JobJson(found.Id, found.Job, found.Cluster, vms[found.Cluster]));
        }
    }

    /// <summary>AsyncJobJoinDaoImpl.newAsyncJobResponse's fields.</summary>
    private JsonObject JobJson(string id, LabAsyncJob job, LabCloudStackCluster cluster, List<LabVmView> vms)
    {
        var created = _started - s_jobAge;
        var done = job.DurationSeconds is { } seconds && _timeProvider.GetUtcNow() >= _started + TimeSpan.FromSeconds(seconds);
        var (type, instance) = job.Host is { } hostName ? ("Host", cluster.Hosts.FirstOrDefault(h => h.Name == hostName)?.Id ?? StableId("host", hostName))
            : job.Vm is { } vmName ? ("VirtualMachine", vms.FirstOrDefault(v => v.Name == vmName) is { } vm ? StableId("vm", vm.Uuid) : StableId("vm", vmName))
            : ("Cluster", cluster.ClusterId);
        var item = new JsonObject
        {
            ["accountid"] = StableId("account", job.Project is null ? job.Account : "project:" + job.Project),
            ["account"] = job.Project is null ? job.Account : "PrjAcct-" + job.Project,
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

    /// <summary>Every cluster reacts to its pool's changes.</summary>
    private void Reconcile()
    {
        foreach (var cluster in Clusters)
        {
            cluster.Reconcile();
        }
    }

    /// <summary>
    /// The clusters a call is about, for the faults of a fleet's scenarios: those its cluster, host, zone and pod
    /// parameters name (all when it names none). With one cluster, every call is about it.
    /// </summary>
    private IEnumerable<LabCloudStackCluster> Concerned(string command, ApiParameters p)
    {
        if (_clusters.Count == 1)
        {
            return _clusters;
        }

        var hostId = command == "listHosts" ? p.IgnoreCase("id") : p.IgnoreCase("hostid");
        return _clusters.Where(c => InScope(c, p, command is "listClusters" or "updateCluster" ? "id" : "clusterid")
            && (hostId is null || c.Hosts.Any(h => h.Id == hostId)));
    }

    /// <summary>Whether a cluster passes the request's cluster, zone and pod filters.</summary>
    private static bool InScope(LabCloudStackCluster c, ApiParameters p, string clusterParameter = "clusterid") =>
        Matches(p.IgnoreCase(clusterParameter), c.ClusterId) && Matches(p.IgnoreCase("zoneid"), c.ZoneId) && Matches(p.IgnoreCase("podid"), c.PodId);

    internal void RunLater(TimeSpan delay, Action action) => _ = RunLaterAsync(delay, action);

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

    private static bool Matches(string? filter, string value) =>
        filter is null || string.Equals(filter, value, StringComparison.OrdinalIgnoreCase);

    /// <summary>SQL <c>LIKE '%filter%'</c> under MySQL's case-insensitive collation, as CloudStack's name and keyword filters are.</summary>
    private static bool Like(string? filter, string value) =>
        filter is null || value.Contains(filter, StringComparison.OrdinalIgnoreCase);

    /// <summary>
    /// BaseListCmd's paging: page and pagesize go together (validateSpecificParameters), pagesize may not exceed
    /// default.page.size nor be -1 with a page (getPageSize), and without pagesize a page is default.page.size long
    /// (getPageSizeVal); <c>count</c> is the total.
    /// </summary>
    private ApiResult List(string name, ApiParameters p, string itemName, List<JsonNode> items)
    {
        var limit = _settings.DefaultPageSize;
        int? page = null;
        int? pageSize = null;
        if (p.IgnoreCase("page") is { } pageText)
        {
            if (!int.TryParse(pageText, CultureInfo.InvariantCulture, out var parsed))
            {
                return InvalidValue(name, "page", pageText);
            }

            page = parsed;
        }

        if (p.IgnoreCase("pagesize") is { } sizeText)
        {
            if (!int.TryParse(sizeText, CultureInfo.InvariantCulture, out var parsed) || parsed is 0 or < -1)
            {
                return InvalidValue(name, "pagesize", sizeText);
            }

            pageSize = parsed;
        }

        if (page is null && pageSize is { } size && size != -1)
        {
            return Error(name + "response", 431, CsServerApi, "\"page\" parameter is required when \"pagesize\" is specified");
        }

        if (pageSize is null && page is not null)
        {
            return Error(name + "response", 431, CsServerApi, "\"pagesize\" parameter is required when \"page\" is specified");
        }

        if (pageSize is { } asked && limit != -1 && asked > limit)
        {
            return Error(name + "response", 431, CsInvalidParameter, $"Page size can't exceed max allowed page size value: {limit}");
        }

        if (pageSize == -1 && page is not null)
        {
            return Error(name + "response", 431, CsInvalidParameter, "Can't specify page parameter when pagesize is -1 (Unlimited)");
        }

        var length = pageSize ?? limit;
        var inner = new JsonObject();
        if (items.Count > 0)
        {
            var start = length == -1 || page is not > 1 ? 0L : (long)(page.Value - 1) * length;
            var shown = length == -1 ? items : items.Skip((int)Math.Min(int.MaxValue, start)).Take(length);
            inner["count"] = items.Count;
            inner[itemName] = new JsonArray(shown.ToArray());
        }

        return Ok(name, inner);
    }

    private static ApiResult Ok(string name, JsonObject inner) =>
        new(StatusCodes.Status200OK, new JsonObject { [name + "response"] = inner });

    /// <summary>An id parameter that names no cluster's (zone's, pod's) is invalid, as CloudStack finds no entity.</summary>
    private ApiResult? InvalidId(string name, ApiParameters p, string parameter, Func<LabCloudStackCluster, string> idOf) =>
        p.IgnoreCase(parameter) is { } value && Clusters.All(c => idOf(c) != value) ? InvalidValue(name, parameter, value) : null;

    private static ApiResult InvalidValue(string name, string parameter, string value) =>
        Error(name + "response", 431, CsInvalidParameter,
            $"Unable to execute API command {name} due to invalid value. Invalid parameter {parameter} value={value} due to incorrect long value format, " +
            "or entity does not exist or due to incorrect parameter annotation for the field in api cmd class.");

    private static ApiResult MissingParameter(string name, string parameter) =>
        Error(name + "response", 431, CsInvalidParameter, $"Unable to execute API command {name} due to missing parameter {parameter}");

    internal static ApiResult Error(string responseName, int errorCode, int? csErrorCode, string errorText)
    {
        var inner = new JsonObject { ["uuidList"] = new JsonArray(), ["errorcode"] = errorCode };
        if (csErrorCode is { } cs)
        {
            inner["cserrorcode"] = cs;
        }

        inner["errortext"] = errorText;
        return new ApiResult(errorCode, new JsonObject { [responseName] = inner });
    }

    internal static string StableId(string kind, string key)
    {
        var hash = SHA256.HashData(Encoding.UTF8.GetBytes(kind + ":" + key));
        return new Guid(hash.AsSpan(0, 16)).ToString();
    }

    private static string RandomKey() => Base64Url.EncodeToString(RandomNumberGenerator.GetBytes(64));

    internal sealed record ApiResult(int Status, JsonObject Body);

    internal sealed class ErrorFaultCounter(int remaining, int errorCode)
    {
        public int Remaining { get; set; } = remaining;

        public int ErrorCode { get; } = errorCode;
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
