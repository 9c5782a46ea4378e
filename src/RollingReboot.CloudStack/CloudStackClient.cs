using System.Globalization;
using System.Text;
using System.Text.Json;
using Polly;
using Polly.Retry;
using Polly.Timeout;
using RollingReboot.Core.Ports;

namespace RollingReboot.CloudStack;

/// <summary>
/// The CloudStack API over HTTP, signed with an API key pair. Reads are retried on connection failures,
/// timeouts and 5xx answers; updateCluster is never retried blindly: after any outcome the cluster is re-read
/// and its state decides. Every call is bounded. Thread-safe.
/// </summary>
public sealed class CloudStackClient : ICloudStack, IDisposable
{
    public const string Managed = "Managed";
    public const string Unmanaged = "Unmanaged";
    public const string PrepareUnmanaged = "PrepareUnmanaged";
    public const string PrepareUnmanagedError = "PrepareUnmanagedError";

    private const int MaxPages = 1000;

    private readonly CloudStackClientOptions _options;
    private readonly CloudStackSigner _signer;
    private readonly HttpClient _http;
    private readonly TimeProvider _timeProvider;
    private readonly Uri _endpoint;
    private readonly string _displayEndpoint;
    private readonly ResiliencePipeline _readPipeline;
    private readonly ResiliencePipeline _updatePipeline;

    public CloudStackClient(CloudStackClientOptions options, HttpMessageHandler? handler = null, TimeProvider? timeProvider = null)
    {
        ArgumentNullException.ThrowIfNull(options);
        options.Validate();
        _options = options;
        _timeProvider = timeProvider ?? TimeProvider.System;
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
        _updatePipeline = new ResiliencePipelineBuilder { TimeProvider = _timeProvider }
            .AddTimeout(options.UpdateClusterTimeout)
            .Build();
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
                CloudStackResponse.GetString(item, "ipaddress") ?? ""))
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
    /// Guest VMs on the hosts of the cluster, with instance name (the XAPI name label), host and affinity groups.
    /// Asks with clusterid (honoured since CloudStack 4.16) and keeps only VMs on a host of the cluster, so VMs
    /// that run nowhere (stopped) are left out.
    /// </summary>
    public async Task<IReadOnlyList<CloudStackVm>> ListVirtualMachinesAsync(string clusterId, CancellationToken cancellationToken = default)
    {
        ArgumentException.ThrowIfNullOrWhiteSpace(clusterId);
        var hosts = await ListHostsAsync(clusterId, cancellationToken);
        var hostIds = hosts.Select(h => h.Id).ToHashSet(StringComparer.Ordinal);
        var hostNames = hosts.Select(h => h.Name).ToHashSet(StringComparer.Ordinal);
        var items = await ListAllAsync("listVirtualMachines", [new("listall", "true"), new("clusterid", clusterId)], "virtualmachine", cancellationToken);
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

            var groups = CloudStackResponse.Items(item, "affinitygroup", "listVirtualMachines", _displayEndpoint)
                .Select(g => new CloudStackAffinityGroup(
                    Require(g, "id", "listVirtualMachines", "affinity group"),
                    CloudStackResponse.GetString(g, "name") ?? "",
                    CloudStackResponse.GetString(g, "type") ?? ""))
                .ToList();
            vms.Add(new CloudStackVm(Require(item, "id", "listVirtualMachines", "VM"), instanceName, hostName, groups));
        }

        return vms;
    }

    /// <summary>
    /// listAsyncJobs listall=true: every account's jobs CloudStack still keeps (finished ones too, until its cleanup),
    /// of which only the pending ones (jobstatus 0) are returned. Needs a root admin's keys to see other accounts' jobs.
    /// </summary>
    public async Task<IReadOnlyList<CloudStackAsyncJob>> ListPendingAsyncJobsAsync(CancellationToken cancellationToken = default)
    {
        const string command = "listAsyncJobs";
        var items = await ListAllAsync(command, [new("listall", "true")], "asyncjobs", cancellationToken, idField: "jobid");
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

    private static bool IsRead(string command) =>
        command.StartsWith("list", StringComparison.OrdinalIgnoreCase)
        || string.Equals(command, "queryAsyncJobResult", StringComparison.OrdinalIgnoreCase);

    private static bool IsTransient(Exception ex) => ex switch
    {
        OperationCanceledException => false,
        HttpRequestException or IOException or TimeoutRejectedException => true,
        CloudStackException cs => cs.ErrorCode is >= 500 and < 600,
        _ => false,
    };

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

    /// <summary>Every page of a list command, de-duplicated by id (for servers that ignore paging).</summary>
    private async Task<IReadOnlyList<JsonElement>> ListAllAsync(
        string command, List<KeyValuePair<string, string>> parameters, string itemName, CancellationToken cancellationToken, string idField = "id")
    {
        var all = new List<JsonElement>();
        var seen = new HashSet<string>(StringComparer.Ordinal);
        var pageSize = _options.PageSize.ToString(CultureInfo.InvariantCulture);
        for (var page = 1; page <= MaxPages; page++)
        {
            var paged = new List<KeyValuePair<string, string>>(parameters)
            {
                new("page", page.ToString(CultureInfo.InvariantCulture)),
                new("pagesize", pageSize),
            };
            var inner = await SendAsync(command, paged, _readPipeline, cancellationToken);
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
            if (items.Count < _options.PageSize || added == 0 || (count is { } total && all.Count >= total))
            {
                break;
            }
        }

        return all;
    }

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
        // Signed per attempt, so a retry carries a fresh expiry.
        DateTimeOffset? expires = _options.UseSignatureVersion3 ? _timeProvider.GetUtcNow() + _options.Expiry : null;
        var query = _signer.Sign(all, expires);
        using var request = _options.UsePost
            ? new HttpRequestMessage(HttpMethod.Post, _endpoint)
            {
                // The query is ASCII, but servers decode its %XX bytes in the declared charset: declare UTF-8.
                Content = new StringContent(query, Encoding.UTF8, "application/x-www-form-urlencoded"),
            }
            : new HttpRequestMessage(HttpMethod.Get, WithQuery(_endpoint, query));
        using var response = await _http.SendAsync(request, HttpCompletionOption.ResponseContentRead, cancellationToken);
        var body = await response.Content.ReadAsStringAsync(cancellationToken);
        return CloudStackResponse.Parse(command, response.StatusCode, response.ReasonPhrase, body, _displayEndpoint);
    }

    private static Uri WithQuery(Uri endpoint, string query)
    {
        var builder = new UriBuilder(endpoint);
        builder.Query = string.IsNullOrEmpty(builder.Query) || builder.Query == "?" ? query : builder.Query.TrimStart('?') + "&" + query;
        return builder.Uri;
    }
}
