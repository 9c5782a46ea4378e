using System.Globalization;
using System.Text;
using System.Text.Json;
using Polly;
using Polly.Retry;
using Polly.Timeout;
using RollingReboot.Core.Ports;
using RollingReboot.Core.Run.Engine;

namespace RollingReboot.CloudStack;

/// <summary>
/// The CloudStack API over HTTP, signed with an API key pair: signature version 3 with an <c>expires</c> taken from the
/// wall clock, state-changing commands as a form POST (ApiServlet refuses anything else when
/// <c>enforce.post.requests.and.timestamps</c> is on). Reads are retried on connection failures, timeouts, 429 and
/// 5xx answers that are not CloudStack's own semantic errors (530-537); updateCluster is retried only on 429 (refused
/// before it ran): after any other outcome the cluster is re-read and its state decides. Lists are paged at the
/// server's own page size unless one is configured, and a 431 "Page size can't exceed" is answered by paging at the
/// limit it names. Every call is bounded. Thread-safe.
/// </summary>
public sealed class CloudStackClient : ICloudStack, IDisposable
{
    public const string Managed = "Managed";
    public const string Unmanaged = "Unmanaged";
    public const string PrepareUnmanaged = "PrepareUnmanaged";
    public const string PrepareUnmanagedError = "PrepareUnmanagedError";

    private const int MaxPages = 100_000;

    /// <summary>List pages asked at once once the first page has given the count (the management server serves calls in parallel).</summary>
    private const int PagesAhead = 4;

    /// <summary>ApiServlet.GET_REQUEST_COMMANDS: the commands CloudStack lets through as GET when it enforces POST.</summary>
    private static readonly System.Text.RegularExpressions.Regex s_readCommand = new(
        @"^(get|list|query|find)\w+$", System.Text.RegularExpressions.RegexOptions.CultureInvariant | System.Text.RegularExpressions.RegexOptions.IgnoreCase,
        TimeSpan.FromSeconds(1));

    /// <summary>BaseListCmd.getPageSize: "Page size can't exceed max allowed page size value: N".</summary>
    private static readonly System.Text.RegularExpressions.Regex s_pageSizeLimit = new(
        @"Page size can't exceed max allowed page size value: (\d+)", System.Text.RegularExpressions.RegexOptions.CultureInvariant,
        TimeSpan.FromSeconds(1));

    private readonly CloudStackClientOptions _options;
    private readonly CloudStackSigner _signer;
    private readonly HttpClient _http;
    private readonly TimeProvider _timeProvider;
    private readonly TimeProvider _wallClock;
    private readonly Uri _endpoint;
    private readonly string _displayEndpoint;
    private readonly ResiliencePipeline _readPipeline;
    private readonly ResiliencePipeline _updatePipeline;

    // The page size a 431 taught, when none is configured (0: none learned).
    private int _learnedPageSize;

    // Set once any call passed the signature check: a later 401 then is most likely about that command, not the keys.
    private int _authenticated;

    /// <param name="timeProvider">The clock of every wait and timeout (the run's clock, simulated under the lab).</param>
    /// <param name="wallClock">
    /// The clock <c>expires</c> is set from. CloudStack compares it with its own wall clock (ApiServer.verifyRequest:
    /// <c>new Date(System.currentTimeMillis())</c>), so it is the real time even when <paramref name="timeProvider"/> is
    /// a simulated one.
    /// </param>
    public CloudStackClient(CloudStackClientOptions options, HttpMessageHandler? handler = null, TimeProvider? timeProvider = null, TimeProvider? wallClock = null)
    {
        ArgumentNullException.ThrowIfNull(options);
        options.Validate();
        _options = options;
        _timeProvider = timeProvider ?? TimeProvider.System;
        _wallClock = wallClock ?? TimeProvider.System;
        _signer = new CloudStackSigner(options.ApiKey, options.SecretKey);
        _endpoint = NormalizeEndpoint(options.Endpoint);
        _displayEndpoint = CloudStackCredentials.DisplayUrl(_endpoint);
        // Timeouts come from the pipelines, on the injected clock, so the HttpClient's own wall-clock one is off.
        _http = handler is null
            ? new HttpClient(CreateHandler(options.VerifyCertificate), disposeHandler: true)
            : new HttpClient(handler, disposeHandler: false);
        _http.Timeout = System.Threading.Timeout.InfiniteTimeSpan;

        var read = new ResiliencePipelineBuilder { TimeProvider = _timeProvider };
        if (options.RetryCount > 0)
        {
            read.AddRetry(new RetryStrategyOptions
            {
                MaxRetryAttempts = options.RetryCount,
                Delay = options.RetryDelay,
                BackoffType = DelayBackoffType.Exponential,
                UseJitter = true,
                MaxDelay = TimeSpan.FromSeconds(30),
                ShouldHandle = new PredicateBuilder().Handle<Exception>(IsTransient),
            });
        }

        _readPipeline = read.AddTimeout(options.Timeout).Build();
        var update = new ResiliencePipelineBuilder { TimeProvider = _timeProvider };
        if (options.RetryCount > 0)
        {
            // 429 comes from ApiServer.commandAvailable (RequestLimitException) before the command runs: safe to send again.
            update.AddRetry(new RetryStrategyOptions
            {
                MaxRetryAttempts = options.RetryCount,
                Delay = options.RetryDelay,
                BackoffType = DelayBackoffType.Exponential,
                UseJitter = true,
                MaxDelay = TimeSpan.FromSeconds(30),
                ShouldHandle = new PredicateBuilder().Handle<CloudStackException>(e => e.ErrorCode == ApiLimitExceeded),
            });
        }

        _updatePipeline = update.AddTimeout(options.UpdateClusterTimeout).Build();
    }

    public async Task<IReadOnlyList<CloudStackCluster>> FindClustersAsync(string name, string? zone, CancellationToken cancellationToken = default)
    {
        ArgumentException.ThrowIfNullOrWhiteSpace(name);
        // CloudStack's name filter is not an exact match, and names repeat across zones: filter here.
        var items = await ListAllAsync("listClusters", [new("name", name)], "cluster", cancellationToken);
        return items
            .Select(item => ToCluster(item, "listClusters"))
            .Where(c => string.Equals(c.Name, name, StringComparison.Ordinal))
            .Where(c => zone is null
                || string.Equals(c.ZoneId, zone, StringComparison.OrdinalIgnoreCase)
                || string.Equals(c.ZoneName, zone, StringComparison.OrdinalIgnoreCase))
            .ToList();
    }

    public async Task<IReadOnlyList<CloudStackCluster>> ListClustersAsync(string zone, CancellationToken cancellationToken = default)
    {
        ArgumentException.ThrowIfNullOrWhiteSpace(zone);
        var items = await ListAllAsync("listClusters", [], "cluster", cancellationToken);
        return items
            .Select(item => ToCluster(item, "listClusters"))
            .Where(c => string.Equals(c.ZoneId, zone, StringComparison.OrdinalIgnoreCase) || string.Equals(c.ZoneName, zone, StringComparison.OrdinalIgnoreCase))
            .ToList();
    }

    public async Task<CloudStackCluster> GetClusterAsync(string clusterId, CancellationToken cancellationToken = default)
    {
        ArgumentException.ThrowIfNullOrWhiteSpace(clusterId);
        var items = await ListAllAsync("listClusters", [new("id", clusterId)], "cluster", cancellationToken);
        var clusters = items.Select(item => ToCluster(item, "listClusters")).Where(c => c.Id == clusterId).ToList();
        return clusters.Count == 1
            ? clusters[0]
            : throw new CloudStackException(431, 0, $"CloudStack at {_displayEndpoint} has no cluster with id {clusterId}.");
    }

    public async Task<IReadOnlyList<CloudStackHost>> ListHostsAsync(string clusterId, CancellationToken cancellationToken = default)
    {
        ArgumentException.ThrowIfNullOrWhiteSpace(clusterId);
        var items = await ListAllAsync("listHosts", [new("clusterid", clusterId), new("type", "Routing")], "host", cancellationToken);
        return items
            .Where(item => CloudStackResponse.GetString(item, "clusterid") is not { } id || id == clusterId)
            .Select(item => new CloudStackHost(
                Require(item, "id", "listHosts", "host"),
                Require(item, "name", "listHosts", "host"),
                CloudStackResponse.GetString(item, "state") ?? "",
                CloudStackResponse.GetString(item, "resourcestate") ?? "",
                CloudStackResponse.GetString(item, "ipaddress") ?? "")
            {
                HostTags = SplitTags(CloudStackResponse.GetString(item, "hosttags")),
                HaHost = string.Equals(CloudStackResponse.GetString(item, "hahost"), "true", StringComparison.OrdinalIgnoreCase),
            })
            .ToList();
    }

    /// <summary>
    /// updateCluster managedstate=Managed|Unmanaged, sent once. CloudStack blocks while it disconnects the hosts
    /// and its answer may show the state from before, and a failed or timed-out call may still have taken
    /// effect, so the cluster is re-read (and waited on while PrepareUnmanaged) and that state decides.
    /// </summary>
    /// <returns>The managed state read after the call, equal to the one asked for.</returns>
    /// <exception cref="CloudStackException">The cluster did not reach the state (PrepareUnmanagedError included).</exception>
    public async Task<string> SetManagedStateAsync(string clusterId, bool managed, CancellationToken cancellationToken = default)
    {
        ArgumentException.ThrowIfNullOrWhiteSpace(clusterId);
        var wanted = managed ? Managed : Unmanaged;
        CloudStackException? failure = null;
        try
        {
            await SendAsync("updateCluster", [new("id", clusterId), new("managedstate", wanted)], _updatePipeline, cancellationToken);
        }
        catch (CloudStackException ex)
        {
            failure = ex;
        }

        CloudStackCluster cluster;
        try
        {
            cluster = await GetClusterAsync(clusterId, cancellationToken);
            var deadline = _timeProvider.GetUtcNow() + _options.UpdateClusterTimeout;
            while (cluster.ManagedState == PrepareUnmanaged && _timeProvider.GetUtcNow() < deadline)
            {
                await Task.Delay(_options.PollInterval, _timeProvider, cancellationToken);
                cluster = await GetClusterAsync(clusterId, cancellationToken);
            }
        }
        catch (CloudStackException readFailure) when (failure is not null)
        {
            throw new CloudStackException(failure.ErrorCode, failure.CsErrorCode,
                $"updateCluster managedstate={wanted} for cluster {clusterId} failed ({failure.ErrorText}), " +
                $"and its state could not be re-read ({readFailure.ErrorText}).", failure);
        }

        if (cluster.ManagedState == wanted)
        {
            return cluster.ManagedState;
        }

        if (!managed && cluster.ManagedState == PrepareUnmanagedError)
        {
            throw new CloudStackException(failure?.ErrorCode ?? 530, failure?.CsErrorCode ?? 0,
                $"CloudStack could not unmanage cluster {cluster.Name}: it is now {PrepareUnmanagedError} because some of its hosts " +
                $"did not disconnect (CloudStack said: {failure?.ErrorText ?? "nothing"}). Set it back to {Managed} " +
                $"(updateCluster id={clusterId} managedstate={Managed}) and check the hosts' state in CloudStack.", failure);
        }

        throw new CloudStackException(failure?.ErrorCode ?? 0, failure?.CsErrorCode ?? 0,
            $"updateCluster managedstate={wanted} left cluster {cluster.Name} {cluster.ManagedState}" +
            (failure is null ? "." : $": {failure.ErrorText}"), failure);
    }

    /// <summary>Waits, bounded, until every host of the cluster is Up (e.g. after setting it Managed).</summary>
    /// <exception cref="CloudStackException">Some host is still not Up when <paramref name="timeout"/> passes.</exception>
    public async Task<IReadOnlyList<CloudStackHost>> WaitForHostsUpAsync(string clusterId, TimeSpan timeout, CancellationToken cancellationToken = default)
    {
        var deadline = _timeProvider.GetUtcNow() + timeout;
        while (true)
        {
            var hosts = await ListHostsAsync(clusterId, cancellationToken);
            var notUp = hosts.Where(h => h.State != "Up").ToList();
            if (notUp.Count == 0)
            {
                return hosts;
            }

            if (_timeProvider.GetUtcNow() >= deadline)
            {
                throw new CloudStackException(0, 0,
                    $"CloudStack does not show every host of cluster {clusterId} Up after {timeout}: " +
                    string.Join(", ", notUp.Select(h => $"{h.Name} is {h.State}")) + ".");
            }

            await Task.Delay(_options.PollInterval, _timeProvider, cancellationToken);
        }
    }

    /// <summary>
    /// Guest VMs on the hosts of the cluster, with instance name (the XAPI name label), host, state, owner, affinity groups
    /// and the host tags of their service offering. Asks with clusterid (honoured since CloudStack 4.16) and keeps only VMs
    /// on a host of the cluster, so VMs that run nowhere (stopped) are left out.
    /// </summary>
    /// <remarks>
    /// listall=true alone skips every project's VMs (buildACLSearchParameters: no projectid and no id means
    /// SkipProjectResources), so the list is asked twice, the second time with projectid=-1 (4.18-4.20: project resources
    /// only; main with listall: ListAllIncludingProjectResources), and merged by id.
    /// </remarks>
    public async Task<IReadOnlyList<CloudStackVm>> ListVirtualMachinesAsync(string clusterId, CancellationToken cancellationToken = default)
    {
        ArgumentException.ThrowIfNullOrWhiteSpace(clusterId);
        const string command = "listVirtualMachines";
        // The cluster's hosts (to keep only VMs on them) and the VMs, asked together; a failure of the hosts' list is raised first.
        var hostsAsked = ListHostsAsync(clusterId, cancellationToken);
        var itemsAsked = ListWithProjectsAsync(command, [new("listall", "true"), new("clusterid", clusterId)], "virtualmachine", "id", cancellationToken);
        await Task.WhenAll(hostsAsked.Settled(), itemsAsked.Settled());
        var hosts = await hostsAsked;
        var items = await itemsAsked;
        var hostIds = hosts.Select(h => h.Id).ToHashSet(StringComparer.Ordinal);
        var hostNames = hosts.Select(h => h.Name).ToHashSet(StringComparer.Ordinal);
        var vms = new List<CloudStackVm>();
        foreach (var item in items)
        {
            var hostId = CloudStackResponse.GetString(item, "hostid");
            var hostName = CloudStackResponse.GetString(item, "hostname");
            var onCluster = hostId is not null ? hostIds.Contains(hostId) : hostName is not null && hostNames.Contains(hostName);
            if (!onCluster)
            {
                continue;
            }

            var instanceName = CloudStackResponse.GetString(item, "instancename");
            if (string.IsNullOrEmpty(instanceName))
            {
                throw new CloudStackException(0, 0,
                    $"CloudStack at {_displayEndpoint} lists VMs without 'instancename', which only root administrators see: " +
                    "use the API keys of a root admin user.");
            }

            var groups = CloudStackResponse.Items(item, "affinitygroup", command, _displayEndpoint)
                .Select(g => new CloudStackAffinityGroup(
                    Require(g, "id", command, "affinity group"),
                    CloudStackResponse.GetString(g, "name") ?? "",
                    CloudStackResponse.GetString(g, "type") ?? ""))
                .ToList();
            vms.Add(new CloudStackVm(Require(item, "id", command, "VM"), instanceName, hostName, groups)
            {
                HostId = hostId,
                State = CloudStackResponse.GetString(item, "state") ?? "",
                ProjectId = CloudStackResponse.GetString(item, "projectid"),
                Account = CloudStackResponse.GetString(item, "account"),
                DomainId = CloudStackResponse.GetString(item, "domainid"),
                ServiceOfferingId = CloudStackResponse.GetString(item, "serviceofferingid"),
            });
        }

        var tags = await OfferingHostTagsAsync(vms.Select(v => v.ServiceOfferingId).OfType<string>().Distinct(StringComparer.Ordinal), cancellationToken);
        return vms.Select(v => v.ServiceOfferingId is { } offering && tags.TryGetValue(offering, out var t) && t.Count > 0 ? v with { RequiredHostTags = t } : v).ToList();
    }

    /// <summary>
    /// listAsyncJobs listall=true: every account's jobs CloudStack still keeps (finished ones too, until its cleanup),
    /// of which only the pending ones (jobstatus 0) are returned. Needs a root admin's keys to see other accounts' jobs.
    /// </summary>
    /// <remarks>
    /// Asked again with projectid=-1 and merged by job id, as for VMs. ListAsyncJobsCmd (4.18 up to main) has no projectid,
    /// and QueryManagerImpl.searchForAsyncJobsInternal passes none, so those versions list the same jobs twice (the unknown
    /// parameter is ignored: ParamGenericValidationWorker exempts projectid); jobs users run on project VMs are listed
    /// under the user's own account either way, and are matched through the VM list above, which does hold project VMs.
    /// </remarks>
    public async Task<IReadOnlyList<CloudStackAsyncJob>> ListPendingAsyncJobsAsync(CancellationToken cancellationToken = default)
    {
        const string command = "listAsyncJobs";
        var items = await ListWithProjectsAsync(command, [new("listall", "true")], "asyncjobs", "jobid", cancellationToken);
        return items
            .Select(item => new CloudStackAsyncJob(
                Require(item, "jobid", command, "job"),
                CloudStackResponse.GetString(item, "cmd") ?? "",
                CloudStackResponse.GetInt(item, "jobstatus") ?? throw CloudStackResponse.Malformed(command, _displayEndpoint, $"a job without a numeric 'jobstatus': {CloudStackResponse.Snippet(item.GetRawText())}"),
                CloudStackResponse.GetString(item, "jobinstancetype"),
                CloudStackResponse.GetString(item, "jobinstanceid"),
                CloudStackResponse.GetDate(item, "created"),
                CloudStackResponse.GetString(item, "account")))
            .Where(job => job.Status == 0)
            .ToList();
    }

    /// <summary>
    /// listDedicatedHosts (the dedicated-resources plugin; DedicatedResourceManagerImpl.createDedicateHostResponse names
    /// each item <c>dedicatedhost</c>): every host dedicated to a domain or account, with its ExplicitDedication group.
    /// </summary>
    public async Task<IReadOnlyList<CloudStackDedicatedHost>> ListDedicatedHostsAsync(CancellationToken cancellationToken = default)
    {
        const string command = "listDedicatedHosts";
        var items = await ListAllAsync(command, [], "dedicatedhost", cancellationToken, idField: "hostid");
        return items
            .Select(item => new CloudStackDedicatedHost(
                Require(item, "hostid", command, "dedicated host"),
                CloudStackResponse.GetString(item, "hostname") ?? "",
                CloudStackResponse.GetString(item, "domainid") ?? "",
                CloudStackResponse.GetString(item, "accountid"),
                CloudStackResponse.GetString(item, "affinitygroupid") ?? ""))
            .ToList();
    }

    /// <summary>
    /// Calls any command and returns the inner object of its answer. Reads (list*, queryAsyncJobResult) are
    /// retried; anything else is sent once, bounded by <see cref="CloudStackClientOptions.UpdateClusterTimeout"/>.
    /// </summary>
    public Task<JsonElement> ExecuteAsync(string command, IReadOnlyDictionary<string, string>? parameters = null, CancellationToken cancellationToken = default)
    {
        ArgumentException.ThrowIfNullOrWhiteSpace(command);
        var list = parameters?.ToList() ?? [];
        return SendAsync(command, list, IsRead(command) ? _readPipeline : _updatePipeline, cancellationToken);
    }

    /// <summary>Sends an async command once, then waits for its job.</summary>
    public async Task<JsonElement> ExecuteAsyncJobAsync(string command, IReadOnlyDictionary<string, string>? parameters = null, CancellationToken cancellationToken = default)
    {
        var inner = await ExecuteAsync(command, parameters, cancellationToken);
        var jobId = CloudStackResponse.GetString(inner, "jobid");
        return jobId is null
            ? throw CloudStackResponse.Malformed(command, _displayEndpoint, "no 'jobid' in the answer of an async command")
            : await WaitForAsyncJobAsync(jobId, cancellationToken);
    }

    /// <summary>
    /// Polls queryAsyncJobResult until the job ends (jobstatus 1: its jobresult; 2: a CloudStackException with the
    /// job's codes), at most <see cref="CloudStackClientOptions.AsyncJobTimeout"/>.
    /// </summary>
    public async Task<JsonElement> WaitForAsyncJobAsync(string jobId, CancellationToken cancellationToken = default)
    {
        ArgumentException.ThrowIfNullOrWhiteSpace(jobId);
        const string command = "queryAsyncJobResult";
        var deadline = _timeProvider.GetUtcNow() + _options.AsyncJobTimeout;
        while (true)
        {
            var inner = await SendAsync(command, [new("jobid", jobId)], _readPipeline, cancellationToken);
            var status = CloudStackResponse.GetInt(inner, "jobstatus");
            var result = inner.TryGetProperty("jobresult", out var r) ? r : default;
            switch (status)
            {
                case 0:
                    break;
                case 1:
                    return result.ValueKind == JsonValueKind.Undefined ? inner : result;
                case 2:
                    var code = CloudStackResponse.GetInt(result, "errorcode") ?? CloudStackResponse.GetInt(inner, "jobresultcode") ?? 0;
                    throw new CloudStackException(code, CloudStackResponse.GetInt(result, "cserrorcode") ?? 0,
                        $"CloudStack job {jobId} ({CloudStackResponse.GetString(inner, "cmd") ?? "async command"}) failed: " +
                        (CloudStackResponse.GetString(result, "errortext") ?? "no error text"));
                default:
                    throw CloudStackResponse.Malformed(command, _displayEndpoint, $"jobstatus is '{CloudStackResponse.GetString(inner, "jobstatus")}'");
            }

            if (_timeProvider.GetUtcNow() >= deadline)
            {
                throw new CloudStackException(0, 0, $"CloudStack job {jobId} is still pending after {_options.AsyncJobTimeout}.");
            }

            await Task.Delay(_options.PollInterval, _timeProvider, cancellationToken);
        }
    }

    public void Dispose() => _http.Dispose();

    public override string ToString() => $"CloudStackClient({_options})";

    /// <summary>A command CloudStack treats as a read (ApiServlet.GET_REQUEST_COMMANDS); any other changes state and is POSTed.</summary>
    public static bool IsRead(string command) => s_readCommand.IsMatch(command);

    private const int ApiLimitExceeded = 429;

    /// <summary>
    /// Worth another try: the transport failed or timed out, CloudStack's API limit (429, ApiErrorCode.API_LIMIT_EXCEED)
    /// refused the call, or a 5xx that is not one of CloudStack's own error codes (a proxy's 502/503). CloudStack's 530
    /// (INTERNAL_ERROR) to 537 say what the command found, and say it again on a retry.
    /// </summary>
    internal static bool IsTransient(Exception ex) => ex switch
    {
        OperationCanceledException => false,
        HttpRequestException or IOException or TimeoutRejectedException => true,
        CloudStackException cs => cs.ErrorCode == ApiLimitExceeded || (cs.ErrorCode is >= 500 and < 600 && cs.ErrorCode is not (>= 530 and <= 537)),
        _ => false,
    };

    private static IReadOnlyList<string> SplitTags(string? tags) =>
        string.IsNullOrWhiteSpace(tags) ? [] : tags.Split(',', StringSplitOptions.RemoveEmptyEntries | StringSplitOptions.TrimEntries);

    /// <summary>
    /// The host tags of each service offering (listServiceOfferings id=..., its <c>hosttags</c>). An offering CloudStack no
    /// longer lists (removed, 431) has no tags to honour.
    /// </summary>
    private async Task<Dictionary<string, IReadOnlyList<string>>> OfferingHostTagsAsync(IEnumerable<string> offeringIds, CancellationToken cancellationToken)
    {
        var tags = new Dictionary<string, IReadOnlyList<string>>(StringComparer.Ordinal);
        foreach (var id in offeringIds)
        {
            try
            {
                var items = await ListAllAsync("listServiceOfferings", [new("id", id)], "serviceoffering", cancellationToken);
                tags[id] = items.Where(o => CloudStackResponse.GetString(o, "id") == id).Select(o => SplitTags(CloudStackResponse.GetString(o, "hosttags"))).FirstOrDefault() ?? [];
            }
            catch (CloudStackException e) when (e.ErrorCode == 431)
            {
                tags[id] = [];
            }
        }

        return tags;
    }

    /// <summary>A list asked without and with projectid=-1, merged by <paramref name="idField"/> (see ListVirtualMachinesAsync).</summary>
    private async Task<IReadOnlyList<JsonElement>> ListWithProjectsAsync(
        string command, List<KeyValuePair<string, string>> parameters, string itemName, string idField, CancellationToken cancellationToken)
    {
        // Asked together; both always end before the merge (a failure of either is raised, the own list's first).
        var ownAsked = ListAllAsync(command, parameters, itemName, cancellationToken, idField);
        var projectsAsked = ListAllAsync(command, [.. parameters, new("projectid", "-1")], itemName, cancellationToken, idField);
        await Task.WhenAll(ownAsked.Settled(), projectsAsked.Settled());
        var own = await ownAsked;
        var projects = await projectsAsked;
        var seen = own.Select(i => CloudStackResponse.GetString(i, idField)).OfType<string>().ToHashSet(StringComparer.Ordinal);
        return [.. own, .. projects.Where(i => CloudStackResponse.GetString(i, idField) is not { } id || seen.Add(id))];
    }

    private static SocketsHttpHandler CreateHandler(bool verifyCertificate)
    {
        var handler = new SocketsHttpHandler { PooledConnectionLifetime = TimeSpan.FromMinutes(5) };
        if (!verifyCertificate)
        {
            // The user turned verification off in their CloudMonkey profile (self-signed management server).
            handler.SslOptions.RemoteCertificateValidationCallback = static (_, _, _, _) => true;
        }

        return handler;
    }

    private static Uri NormalizeEndpoint(Uri endpoint) =>
        endpoint.AbsolutePath is "" or "/" ? new Uri(endpoint, "/client/api") : endpoint;

    private string Require(JsonElement item, string name, string command, string what) =>
        CloudStackResponse.Require(item, name, command, what, _displayEndpoint);

    private CloudStackCluster ToCluster(JsonElement item, string command) => new(
        Require(item, "id", command, "cluster"),
        Require(item, "name", command, "cluster"),
        CloudStackResponse.GetString(item, "zoneid") ?? "",
        CloudStackResponse.GetString(item, "zonename") ?? "",
        CloudStackResponse.GetString(item, "podname") ?? "",
        CloudStackResponse.GetString(item, "hypervisortype") ?? "",
        CloudStackResponse.GetString(item, "allocationstate") ?? "",
        CloudStackResponse.GetString(item, "managedstate") ?? "");

    /// <summary>
    /// Every page of a list command, de-duplicated by id (for servers that ignore paging). With no page size configured the
    /// first request names none, so CloudStack answers with its own default.page.size (BaseListCmd.getPageSizeVal) and
    /// <c>count</c>, the total; the rest is asked at the size that first page had. A configured size larger than the
    /// server allows gets 431 "Page size can't exceed max allowed page size value: N", and the page is asked again at N.
    /// Once the first page has said how many there are, the pages that count needs are asked together, at most
    /// <see cref="PagesAhead"/> at a time, and read in order as if asked one by one: a list that ends early (a page short or
    /// adding nothing) stops there and the pages still in flight are cancelled.
    /// </summary>
    private async Task<IReadOnlyList<JsonElement>> ListAllAsync(
        string command, List<KeyValuePair<string, string>> parameters, string itemName, CancellationToken cancellationToken, string idField = "id")
    {
        var all = new List<JsonElement>();
        var seen = new HashSet<string>(StringComparer.Ordinal);
        var learned = Volatile.Read(ref _learnedPageSize);
        var pageSize = _options.PageSize is { } configured ? Math.Min(configured, learned > 0 ? learned : int.MaxValue) : (int?)null;
        using var aheadStop = CancellationTokenSource.CreateLinkedTokenSource(cancellationToken);
        using var aheadGate = new SemaphoreSlim(PagesAhead);
        Dictionary<int, Task<JsonElement>>? ahead = null;
        try
        {
            for (var page = 1; page <= MaxPages; page++)
            {
                JsonElement inner;
                try
                {
                    inner = ahead is not null && ahead.Remove(page, out var asked)
                        ? await asked
                        : await SendAsync(command, Paged(parameters, page, pageSize), _readPipeline, cancellationToken);
                }
                catch (CloudStackException e) when (pageSize is not null && e.ErrorCode == 431 && PageSizeLimit(e.ErrorText) is { } limit && limit < pageSize)
                {
                    // Asked again from the start: the pages asked so far had another size.
                    Interlocked.Exchange(ref _learnedPageSize, limit);
                    pageSize = limit;
                    page = 0;
                    all.Clear();
                    seen.Clear();
                    continue;
                }

                var items = CloudStackResponse.Items(inner, itemName, command, _displayEndpoint);
                var added = 0;
                foreach (var item in items)
                {
                    if (seen.Add(CloudStackResponse.GetString(item, idField) ?? $"#{all.Count}"))
                    {
                        all.Add(item);
                        added++;
                    }
                }

                var count = CloudStackResponse.GetInt(inner, "count");
                if (pageSize is null)
                {
                    // The server's own first page: its length is the server's page size.
                    if (items.Count == 0 || count is not { } firstTotal || all.Count >= firstTotal)
                    {
                        break;
                    }

                    pageSize = items.Count;
                }
                else if (items.Count < pageSize || added == 0 || (count is { } total && all.Count >= total))
                {
                    break;
                }

                if (ahead is null && count is { } known && pageSize is { } size)
                {
                    var last = (int)Math.Min(MaxPages, ((long)known + size - 1) / size);
                    ahead = [];
                    for (var next = page + 1; next <= last; next++)
                    {
                        ahead[next] = AskAheadAsync(command, Paged(parameters, next, size), aheadGate, aheadStop.Token);
                    }
                }
            }
        }
        finally
        {
            if (ahead is { Count: > 0 })
            {
                await aheadStop.CancelAsync();
                await Task.WhenAll(ahead.Values.Select(t => t.Settled()));
            }
        }

        return all;
    }

    /// <summary>BaseListCmd.validateSpecificParameters: page and pagesize go together, or neither.</summary>
    private static List<KeyValuePair<string, string>> Paged(List<KeyValuePair<string, string>> parameters, int page, int? pageSize)
    {
        var paged = new List<KeyValuePair<string, string>>(parameters);
        if (pageSize is { } size)
        {
            paged.Add(new("page", page.ToString(CultureInfo.InvariantCulture)));
            paged.Add(new("pagesize", size.ToString(CultureInfo.InvariantCulture)));
        }

        return paged;
    }

    private async Task<JsonElement> AskAheadAsync(string command, List<KeyValuePair<string, string>> parameters, SemaphoreSlim gate, CancellationToken cancellationToken)
    {
        await gate.WaitAsync(cancellationToken);
        try
        {
            return await SendAsync(command, parameters, _readPipeline, cancellationToken);
        }
        finally
        {
            gate.Release();
        }
    }

    private static int? PageSizeLimit(string errorText) =>
        s_pageSizeLimit.Match(errorText) is { Success: true } m && int.TryParse(m.Groups[1].Value, NumberStyles.Integer, CultureInfo.InvariantCulture, out var limit) && limit > 0
            ? limit
            : null;

    private async Task<JsonElement> SendAsync(
        string command, List<KeyValuePair<string, string>> parameters, ResiliencePipeline pipeline, CancellationToken cancellationToken)
    {
        try
        {
            return await pipeline.ExecuteAsync(
                static async (state, token) => await state.Client.SendOnceAsync(state.Command, state.Parameters, token),
                (Client: this, Command: command, Parameters: parameters),
                cancellationToken);
        }
        catch (OperationCanceledException) when (cancellationToken.IsCancellationRequested)
        {
            throw;
        }
        catch (CloudStackException)
        {
            throw;
        }
        catch (TimeoutRejectedException ex)
        {
            throw new CloudStackException(0, 0, $"CloudStack at {_displayEndpoint} did not answer {command} within {ex.Timeout}.", ex);
        }
        catch (Exception ex) when (ex is HttpRequestException or IOException or OperationCanceledException)
        {
            throw new CloudStackException(0, 0, $"Cannot reach CloudStack at {_displayEndpoint} for {command}: {ex.Message}", ex);
        }
    }

    private async ValueTask<JsonElement> SendOnceAsync(string command, List<KeyValuePair<string, string>> parameters, CancellationToken cancellationToken)
    {
        var all = new List<KeyValuePair<string, string>>(parameters.Count + 2) { new("command", command), new("response", "json") };
        all.AddRange(parameters);
        // Signed per attempt, so a retry carries a fresh expiry; on the wall clock, as the server checks it.
        DateTimeOffset? expires = _options.UseSignatureVersion3 ? _wallClock.GetUtcNow() + _options.Expiry : null;
        var query = _signer.Sign(all, expires);
        using var request = _options.UsePost || !IsRead(command)
            ? new HttpRequestMessage(HttpMethod.Post, _endpoint)
            {
                // The query is ASCII, but servers decode its %XX bytes in the declared charset: declare UTF-8.
                Content = new StringContent(query, Encoding.UTF8, "application/x-www-form-urlencoded"),
            }
            : new HttpRequestMessage(HttpMethod.Get, WithQuery(_endpoint, query));
        using var response = await _http.SendAsync(request, HttpCompletionOption.ResponseContentRead, cancellationToken);
        var body = await response.Content.ReadAsStringAsync(cancellationToken);
        try
        {
            var inner = CloudStackResponse.Parse(command, response.StatusCode, response.ReasonPhrase, body, _displayEndpoint, Volatile.Read(ref _authenticated) != 0);
            Interlocked.Exchange(ref _authenticated, 1);
            return inner;
        }
        catch (CloudStackException e) when (e.ErrorCode is >= 430 and not 432 && e.CsErrorCode != 0)
        {
            // A parameter or command error comes after the signature check (ApiServer.handleRequest): the keys work.
            Interlocked.Exchange(ref _authenticated, 1);
            throw;
        }
    }

    private static Uri WithQuery(Uri endpoint, string query)
    {
        var builder = new UriBuilder(endpoint);
        builder.Query = string.IsNullOrEmpty(builder.Query) || builder.Query == "?" ? query : builder.Query.TrimStart('?') + "&" + query;
        return builder.Uri;
    }
}
