using System.Buffers;
using System.Globalization;
using System.Net;
using System.Net.Http.Headers;
using System.Net.Security;
using System.Net.Sockets;
using System.Security.Authentication;
using System.Text;
using System.Text.Json;
using System.Text.Json.Nodes;
using Polly;
using Polly.Retry;
using RollingReboot.Xapi.Wire;

namespace RollingReboot.Xapi;

/// <summary>
/// A XenAPI session on a pool: JSON-RPC with XML-RPC fallback, HOST_IS_SLAVE followed, SESSION_INVALID
/// answered by logging in again, and the pool's host addresses kept so the master can be found again
/// after it reboots. Thread-safe: calls may run in parallel on one session.
/// </summary>
public sealed class XapiClient : IAsyncDisposable
{
    private static readonly MediaTypeHeaderValue s_json = new("application/json");
    private static readonly MediaTypeHeaderValue s_xml = new("text/xml");

    // How long one master search may go on, and how many retries it gets whatever the clock says.
    private static readonly ResiliencePropertyKey<DateTimeOffset> s_searchDeadline = new("rollreboot.xapi.search-deadline");
    private static readonly ResiliencePropertyKey<int> s_searchMinRetries = new("rollreboot.xapi.search-min-retries");
    private static readonly ResiliencePropertyKey<bool> s_searchGoesOn = new("rollreboot.xapi.search-goes-on");

    /// <summary>
    /// The errors a host gives while it cannot say who the master is, before dispatch: its toolstack starting
    /// (HOST_STILL_BOOTING) or a member in emergency mode, whose error is what its last Pool.hello to the master gave
    /// (ocaml/xapi/xapi.ml wait_for_management_ip_address and attempt_host_status_check_with_coordinator: the codes
    /// below, or INTERNAL_ERROR [exn] when the master could not be reached), raised by api_server.ml callback1 for
    /// every call outside the emergency list, session.login_with_password included (datamodel.ml emergency_calls).
    /// INTERNAL_ERROR is also what a master with a real fault answers: the search then ends at its deadline with it.
    /// </summary>
    private static readonly HashSet<string> s_emergencyModeCodes =
    [
        "HOST_STILL_BOOTING", "HOST_HAS_NO_MANAGEMENT_IP", "HOST_ITS_OWN_SLAVE", "HOST_MASTER_CANNOT_TALK_BACK", "HOST_UNKNOWN_TO_MASTER",
        "HOST_XAPI_VERSION_HIGHER_THAN_COORDINATOR", "HOST_BROKEN", "HOST_IN_EMERGENCY_MODE", "INTERNAL_ERROR",
    ];

    private readonly XapiClientOptions _options;

    /// <summary>The client's clock (the run's, under the lab its scaled one).</summary>
    internal TimeProvider Clock => _options.TimeProvider;

    internal XapiClientOptions Options => _options;

    private readonly HttpClient _http;
    private readonly SemaphoreSlim _loginGate = new(1, 1);
    private readonly HashSet<string> _xmlRpcHosts = new(StringComparer.OrdinalIgnoreCase);
    private readonly List<Uri> _knownHosts = [];
    private readonly Lock _lock = new();
    private Uri _master;
    private string? _session;
    private long _nextId;
    private long _callCount;
    private long _logins;

    /// <summary>When the other hosts last named no master but the one that could not answer (its authority).</summary>
    private (string Failed, DateTimeOffset At)? _noOtherMaster;
    private readonly TaskWatcher _tasks;
    private readonly ResiliencePipeline _search;

    public XapiClient(XapiClientOptions options, HttpMessageHandler? handler = null)
    {
        _options = options;
        _master = Normalize(options.Url);
        _knownHosts.Add(_master);
        _http = new HttpClient(handler ?? CreateHandler(options), disposeHandler: true) { Timeout = Timeout.InfiniteTimeSpan };
        _tasks = new TaskWatcher(this);
        // The master search: one attempt asks the believed master, then every other known host; while none can say,
        // it is tried again after 0.5 s, 1 s, 2 s, 4 s, then every 5 s, on the client's clock, until the search's deadline.
        // A host that answers HOST_STILL_BOOTING is up and starting its toolstack (xapi.ml sets it as the emergency error
        // until start-up completes; xapi_host_helpers.ml assert_startup_complete): it is
        // asked again every second, so a restarted master is used as soon as it serves.
        _search = new ResiliencePipelineBuilder { TimeProvider = options.TimeProvider }
            .AddRetry(new RetryStrategyOptions
            {
                ShouldHandle = args => ValueTask.FromResult(args.Outcome.Exception is XapiException e && IsNoAnswerYet(e)
                    && (args.AttemptNumber < args.Context.Properties.GetValue(s_searchMinRetries, 0)
                        || options.TimeProvider.GetUtcNow() < args.Context.Properties.GetValue(s_searchDeadline, DateTimeOffset.MinValue))),
                MaxRetryAttempts = int.MaxValue,
                BackoffType = DelayBackoffType.Exponential,
                Delay = TimeSpan.FromMilliseconds(500),
                MaxDelay = s_searchMaxDelay,
                UseJitter = false,
                // A search that takes up where one that ended without an answer a moment ago left off (the same master,
                // a caller asking again) does not start the back-off over: every 5 s.
                DelayGenerator = args => ValueTask.FromResult<TimeSpan?>(
                    args.Outcome.Exception is XapiException { Code: "HOST_STILL_BOOTING" } ? s_stillBootingRetry
                    : args.Context.Properties.GetValue(s_searchGoesOn, false) ? s_searchMaxDelay : null),
            })
            .Build();
    }

    private static readonly TimeSpan s_stillBootingRetry = TimeSpan.FromSeconds(1);
    private static readonly TimeSpan s_searchMaxDelay = TimeSpan.FromSeconds(5);

    /// <summary>When the last master search ended without an answer, and for which believed master (its authority).</summary>
    private (string Master, DateTimeOffset At)? _searchGaveUp;

    /// <summary>How long the other hosts' "no other master" answer is believed while the master cannot answer.</summary>
    internal static readonly TimeSpan MemberAskInterval = TimeSpan.FromSeconds(30);

    /// <summary>Sessions this client has opened (a new one after SESSION_INVALID, e.g. the master restarted).</summary>
    internal long Logins => Interlocked.Read(ref _logins);

    /// <summary>The host currently believed to be the master.</summary>
    public Uri MasterUrl
    {
        get
        {
            lock (_lock)
            {
                return _master;
            }
        }
    }

    /// <summary>XAPI calls sent so far (for the report and the benchmark).</summary>
    public long CallCount => Interlocked.Read(ref _callCount);

    public bool UsesXmlRpc
    {
        get
        {
            lock (_lock)
            {
                return _xmlRpcHosts.Contains(_master.Authority);
            }
        }
    }

    public static SocketsHttpHandler CreateHandler(XapiClientOptions options) => new()
    {
        ConnectTimeout = options.ConnectTimeout,
        PooledConnectionLifetime = TimeSpan.FromMinutes(5),
        MaxConnectionsPerServer = 32,
        AllowAutoRedirect = false,
        SslOptions = new SslClientAuthenticationOptions
        {
            RemoteCertificateValidationCallback = (sender, certificate, _, errors) =>
                options.Certificates.Validate(sender is SslStream s ? s.TargetHostName : "?", certificate, errors),
        },
    };

    /// <summary>Remembers the pool's host addresses, to find the master again when it stops answering.</summary>
    public void RememberHosts(IEnumerable<string> addresses)
    {
        lock (_lock)
        {
            foreach (var a in addresses)
            {
                if (string.IsNullOrWhiteSpace(a))
                {
                    continue;
                }

                var uri = HostUri(a, _options.Url);
                if (!_knownHosts.Any(k => k.Authority.Equals(uri.Authority, StringComparison.OrdinalIgnoreCase)))
                {
                    _knownHosts.Add(uri);
                }
            }
        }
    }

    public async Task LoginAsync(CancellationToken cancellationToken = default)
    {
        await EnsureSessionAsync(null, cancellationToken);
    }

    /// <summary>Calls <c>method(session, args...)</c> on the master.</summary>
    public Task<JsonNode?> CallAsync(string method, IReadOnlyList<object?> args, CancellationToken cancellationToken = default, TimeSpan? extraTimeout = null) =>
        CallCoreAsync<JsonNode?>(method, args, null, n => n, cancellationToken, extraTimeout);

    /// <summary>
    /// Calls <c>method(session, args...)</c> on the master and maps the result straight from the parsed reply with
    /// <paramref name="map"/> (no DOM, no string of the whole reply: for large reads). <paramref name="map"/> must
    /// copy what it keeps; the element is gone when it returns. Retries, re-login and master search as <see cref="CallAsync(string, IReadOnlyList{object?}, CancellationToken, TimeSpan?)"/>.
    /// </summary>
    public Task<T> CallAsync<T>(string method, IReadOnlyList<object?> args, Func<JsonElement, T> map, CancellationToken cancellationToken = default, TimeSpan? extraTimeout = null) =>
        CallCoreAsync(method, args, (bytes, m) => JsonRpc.DecodeResponse(bytes, m, map), n =>
        {
            // XML-RPC replies are decoded to a tree first; map them through a document the same way.
            using var doc = JsonDocument.Parse(n?.ToJsonString() ?? "null");
            return map(doc.RootElement);
        }, cancellationToken, extraTimeout);

    /// <summary>
    /// Calls a method whose result is a map of records (<c>Class.get_all_records</c>) and maps each record as it
    /// arrives (<see cref="JsonRpc.DecodeRecordsAsync{T}"/>): the reply is neither held as a tree nor as a whole. A
    /// result that is not a map is a protocol error.
    /// </summary>
    public Task<List<T>> CallRecordsAsync<T>(string method, IReadOnlyList<object?> args, Func<string, JsonElement, T> map, CancellationToken cancellationToken = default) =>
        CallCoreAsync(method, args, (bytes, m) => JsonRpc.DecodeRecords(bytes, m, map), n =>
        {
            if (n is not JsonObject all)
            {
                throw new XapiException(XapiException.ProtocolError, [method + " did not return a map"], method);
            }

            var list = new List<T>(all.Count);
            foreach (var (r, rec) in all)
            {
                if (rec is JsonObject o)
                {
                    list.Add(Fields.FromNode(r, o, map));
                }
            }

            return list;
        }, cancellationToken, null, (stream, m, ct) => JsonRpc.DecodeRecordsAsync(stream, m, map, ct));

    /// <param name="streamed">Decodes a JSON reply as it arrives (instead of <paramref name="typed"/> on the whole of it).</param>
    private async Task<T> CallCoreAsync<T>(string method, IReadOnlyList<object?> args, Func<ReadOnlyMemory<byte>, string, T>? typed, Func<JsonNode?, T> fromNode, CancellationToken cancellationToken, TimeSpan? extraTimeout,
        Func<Stream, string, CancellationToken, Task<T>>? streamed = null)
    {
        var safe = IsSafeToRetry(method);
        var sessionRetried = false;
        var unreachableRetries = 0;
        var deadline = _options.TimeProvider.GetUtcNow() + _options.MasterSearchTimeout;
        while (true)
        {
            var session = await EnsureSessionAsync(null, cancellationToken);
            var master = MasterUrl;
            try
            {
                var all = new object?[args.Count + 1];
                all[0] = session;
                for (var i = 0; i < args.Count; i++)
                {
                    all[i + 1] = args[i];
                }

                return await SendAsync(master, method, all, cancellationToken, extraTimeout, typed, fromNode, streamed);
            }
            catch (XapiException e) when (e.Code == "SESSION_INVALID" && !sessionRetried)
            {
                // The master's toolstack restarted (or the session expired): log in again, once.
                sessionRetried = true;
                InvalidateSession(session);
            }
            catch (XapiException e) when (e.Code == "HOST_IS_SLAVE" && !sessionRetried)
            {
                sessionRetried = true;
                SwitchMaster(e.Parameters.Count > 0 ? HostUri(e.Parameters[0], master) : master);
                InvalidateSession(session);
            }
            catch (XapiException e) when (e.IsUnreachable && safe && (++unreachableRetries <= 3 || _options.TimeProvider.GetUtcNow() < deadline))
            {
                // Reads are safe to repeat: the next pass logs in again (a few times whatever the clock says: a reset
                // connection needs one more try), through the master search when the master cannot answer. Callers
                // that fail together share that one search under the login gate and the session it ends with, instead
                // of each probing the pool's hosts on its own (a login and a logout per probe, then a login again).
                InvalidateSession(session);
            }
        }
    }

    /// <summary>
    /// Calls a method whose trailing parameters older hosts do not know: on MESSAGE_PARAMETER_COUNT_MISMATCH
    /// the last optional parameter is dropped and the call repeated (the host refused it before doing anything).
    /// </summary>
    public async Task<JsonNode?> CallWithOptionalAsync(string method, IReadOnlyList<object?> required, IReadOnlyList<object?> optional, CancellationToken cancellationToken = default)
    {
        for (var n = optional.Count; ; n--)
        {
            try
            {
                return await CallAsync(method, [.. required, .. optional.Take(n)], cancellationToken);
            }
            catch (XapiException e) when (e.Code == "MESSAGE_PARAMETER_COUNT_MISMATCH" && n > 0)
            {
                // Retry with one optional parameter fewer.
            }
        }
    }

    /// <summary>
    /// Runs <c>Async.method</c>, follows its task through <c>event.from</c> (one watch shared by all tasks in flight), reports progress, and returns the
    /// task's result (a ref or empty). The task is cancelled when <paramref name="cancellationToken"/> fires and
    /// always destroyed.
    /// </summary>
    public async Task<string> RunTaskAsync(string method, IReadOnlyList<object?> args, IProgress<double>? progress = null, CancellationToken cancellationToken = default) =>
        StripValue(await RunTaskRawAsync(method, args, progress, cancellationToken));

    /// <summary>As <see cref="RunTaskAsync"/>, the task's result as xapi keeps it: an XML-RPC value
    /// (<c>&lt;value&gt;...&lt;/value&gt;</c>, xapi/taskHelper.ml), to decode with <see cref="XmlRpc.DecodeValue"/> when it is not a string.</summary>
    public async Task<string> RunTaskRawAsync(string method, IReadOnlyList<object?> args, IProgress<double>? progress = null, CancellationToken cancellationToken = default)
    {
        var taskRef = (await CallAsync("Async." + method, args, cancellationToken))?.ToString()
            ?? throw new XapiException(XapiException.ProtocolError, ["Async call returned no task"], "Async." + method);
        try
        {
            XapiTaskRecord task;
            try
            {
                task = await _tasks.WaitAsync(taskRef, method, progress, cancellationToken);
            }
            catch (OperationCanceledException) when (cancellationToken.IsCancellationRequested)
            {
                await CancelTaskQuietlyAsync(taskRef);
                throw;
            }

            if (task.Status == "success")
            {
                return task.Result;
            }

            var info = task.ErrorInfo;
            throw new XapiException(info.Count > 0 ? info[0] : task.Status == "cancelled" ? "TASK_CANCELLED" : "INTERNAL_ERROR", info.Skip(1).ToList(), method);
        }
        finally
        {
            await DestroyTaskQuietlyAsync(taskRef);
        }
    }

    /// <summary>
    /// GET of one of xapi's HTTP handlers on the master (e.g. /updates: xapi_pool.ml get_updates_handler), authenticated
    /// as xapi_http.ml with_context reads it, by the session_id query parameter; the JSON body parsed. A non-200 answer
    /// is an <see cref="XapiException"/> with code HTTP_&lt;status&gt;; a session xapi no longer knows is logged in again once.
    /// </summary>
    public async Task<JsonDocument> GetJsonAsync(string path, IReadOnlyList<KeyValuePair<string, string>> query, CancellationToken cancellationToken = default)
    {
        for (var attempt = 0; ; attempt++)
        {
            var session = await EnsureSessionAsync(null, cancellationToken);
            var q = string.Join("&", new[] { new KeyValuePair<string, string>("session_id", session) }.Concat(query)
                .Select(kv => Uri.EscapeDataString(kv.Key) + "=" + Uri.EscapeDataString(kv.Value)));
            var uri = new UriBuilder(MasterUrl) { Path = path, Query = q }.Uri;
            Interlocked.Increment(ref _callCount);
            using var timeout = new CancellationTokenSource(_options.CallTimeout, _options.TimeProvider);
            using var linked = CancellationTokenSource.CreateLinkedTokenSource(cancellationToken, timeout.Token);
            HttpResponseMessage response;
            try
            {
                response = await _http.GetAsync(uri, HttpCompletionOption.ResponseHeadersRead, linked.Token);
            }
            catch (HttpRequestException e)
            {
                throw new XapiException(XapiException.TransportError, [e.Message], "GET " + path, e);
            }
            catch (OperationCanceledException e) when (timeout.IsCancellationRequested && !cancellationToken.IsCancellationRequested)
            {
                throw new XapiException(XapiException.TransportError, ["no answer within " + _options.CallTimeout], "GET " + path, e);
            }

            using (response)
            {
                if (response.StatusCode is HttpStatusCode.Unauthorized or HttpStatusCode.Forbidden && attempt == 0)
                {
                    InvalidateSession(session);
                    continue;
                }

                if (response.StatusCode != HttpStatusCode.OK)
                {
                    throw new XapiException("HTTP_" + ((int)response.StatusCode).ToString(CultureInfo.InvariantCulture), [response.ReasonPhrase ?? ""], "GET " + path);
                }

                await using var body = await response.Content.ReadAsStreamAsync(linked.Token);
                try
                {
                    return await JsonDocument.ParseAsync(body, default, linked.Token);
                }
                catch (JsonException e)
                {
                    throw new XapiException(XapiException.ProtocolError, ["GET " + path + " did not answer JSON: " + e.Message], "GET " + path, e);
                }
            }
        }
    }

    public async ValueTask DisposeAsync()
    {
        var session = _session;
        if (session is not null)
        {
            try
            {
                using var cts = new CancellationTokenSource(TimeSpan.FromSeconds(5));
                await SendAsync(MasterUrl, "session.logout", [session], cts.Token, null);
            }
            catch (Exception e) when (e is XapiException or OperationCanceledException)
            {
                // Best effort: the session expires on its own.
            }
        }

        _http.Dispose();
        _loginGate.Dispose();
    }

    internal static bool IsSafeToRetry(string method)
    {
        var dot = method.LastIndexOf('.');
        var name = dot < 0 ? method : method[(dot + 1)..];
        return !method.StartsWith("Async.", StringComparison.Ordinal) &&
            (name.StartsWith("get_", StringComparison.Ordinal) || method is "event.from" or "system.listMethods" or
                "host.compute_free_memory" or "host.get_servertime" or "host.get_vms_which_prevent_evacuation" or
                "session.login_with_password");
    }

    private async Task<string> EnsureSessionAsync(string? stale, CancellationToken cancellationToken)
    {
        var current = _session;
        if (current is not null && current != stale)
        {
            return current;
        }

        await _loginGate.WaitAsync(cancellationToken);
        try
        {
            if (_session is not null && _session != stale)
            {
                return _session;
            }

            _session = await LoginOnMasterAsync(cancellationToken);
            return _session;
        }
        finally
        {
            _loginGate.Release();
        }
    }

    private void InvalidateSession(string session)
    {
        Interlocked.CompareExchange(ref _session, null, session);
    }

    /// <summary>Whether a host's answer means only "not now, and I cannot tell you who the master is".</summary>
    internal static bool IsNoAnswerYet(XapiException e) => e.IsUnreachable || s_emergencyModeCodes.Contains(e.Code);

    private async Task<T> SearchAsync<T>(Func<CancellationToken, ValueTask<T>> attempt, int minRetries, DateTimeOffset deadline, CancellationToken cancellationToken)
    {
        var context = ResilienceContextPool.Shared.Get(cancellationToken);
        try
        {
            context.Properties.Set(s_searchDeadline, deadline);
            context.Properties.Set(s_searchMinRetries, minRetries);
            var now = _options.TimeProvider.GetUtcNow();
            lock (_lock)
            {
                context.Properties.Set(s_searchGoesOn, _searchGaveUp is { } g && g.Master == _master.Authority && now - g.At < TimeSpan.FromMinutes(1));
            }

            var result = await _search.ExecuteAsync(static (ctx, a) => a(ctx.CancellationToken), context, attempt);
            lock (_lock)
            {
                _searchGaveUp = null;
            }

            return result;
        }
        catch (XapiException e) when (IsNoAnswerYet(e))
        {
            lock (_lock)
            {
                _searchGaveUp = (_master.Authority, _options.TimeProvider.GetUtcNow());
            }

            throw;
        }
        finally
        {
            ResilienceContextPool.Shared.Return(context);
        }
    }

    private async Task<string> LoginOnMasterAsync(CancellationToken cancellationToken)
    {
        // A reset connection or a toolstack restarting needs a few more tries whatever the clock says.
        var session = await SearchAsync(LoginOnceAsync, 3, _options.TimeProvider.GetUtcNow() + _options.MasterSearchTimeout, cancellationToken);
        Interlocked.Increment(ref _logins);
        return session;
    }

    /// <summary>
    /// One attempt: log in on the believed master, following HOST_IS_SLAVE; if it cannot answer, ask the other known hosts
    /// who the master is and log in there. What still cannot answer is thrown for the search to retry.
    /// </summary>
    private async ValueTask<string> LoginOnceAsync(CancellationToken cancellationToken)
    {
        var searched = false;
        var hops = 0;
        while (true)
        {
            var target = MasterUrl;
            try
            {
                return await LoginAtAsync(target, cancellationToken);
            }
            catch (XapiException e) when (e.Code == "HOST_IS_SLAVE" && e.Parameters.Count > 0 && hops++ < 5)
            {
                SwitchMaster(HostUri(e.Parameters[0], target));
            }
            catch (XapiException e) when (IsNoAnswerYet(e) && !searched)
            {
                searched = true;
                if (!await TryOtherHostsAsync(target, cancellationToken))
                {
                    throw;
                }
            }
        }
    }

    private async Task<string> LoginAtAsync(Uri host, CancellationToken cancellationToken)
    {
        var result = await SendAsync(host, "session.login_with_password", [_options.UserName, _options.Password, "1.1", _options.Originator], cancellationToken, null);
        if (result?.ToString() is not { Length: > 0 } s)
        {
            throw new XapiException(XapiException.ProtocolError, ["login returned no session"], "session.login_with_password");
        }

        lock (_lock)
        {
            // A master answers again: the next time one cannot, the other hosts are asked at once.
            _noOtherMaster = null;
        }

        return s;
    }

    /// <summary>
    /// Asks every other known host; the first that answers is the master or names it. A host that cannot say (down,
    /// starting, in emergency mode because it restarted while the master was away, or not talking XAPI) is skipped.
    /// </summary>
    private async Task<bool> TryOtherHostsAsync(Uri failed, CancellationToken cancellationToken)
    {
        List<Uri> candidates;
        var now = _options.TimeProvider.GetUtcNow();
        lock (_lock)
        {
            // The other hosts said, a moment ago, that the host that cannot answer is still their master (a rebooting
            // master, one whose toolstack is starting; xapi_session.ml login_with_password on a slave raises HOST_IS_SLAVE
            // with Pool_role.get_master_address): asking them again at every retry can only hear the same. They
            // are asked again once MemberAskInterval has passed (a new master, designated meanwhile, is found then).
            if (_noOtherMaster is { } known && known.Failed == failed.Authority && now - known.At < MemberAskInterval)
            {
                return false;
            }

            candidates = _knownHosts.Where(h => h != failed).ToList();
        }

        foreach (var host in candidates)
        {
            try
            {
                // Probing with a login tells us who is master without side effects beyond a session.
                var session = await LoginAtAsync(host, cancellationToken);
                SwitchMaster(host);
                await LogoutQuietlyAsync(host, session);
                return true;
            }
            catch (XapiException e) when (e.Code == "HOST_IS_SLAVE" && e.Parameters.Count > 0)
            {
                var named = HostUri(e.Parameters[0], host);
                if (named.Authority != failed.Authority)
                {
                    SwitchMaster(named);
                    return true;
                }
            }
            catch (XapiException e) when (IsNoAnswerYet(e) || e.Code == XapiException.ProtocolError)
            {
                // Try the next host.
            }
        }

        lock (_lock)
        {
            _noOtherMaster = (failed.Authority, now);
        }

        return false;
    }

    private async Task LogoutQuietlyAsync(Uri host, string session)
    {
        try
        {
            using var cts = new CancellationTokenSource(TimeSpan.FromSeconds(5));
            await SendAsync(host, "session.logout", [session], cts.Token, null);
        }
        catch (Exception e) when (e is XapiException or OperationCanceledException)
        {
            // Sessions expire on their own.
        }
    }

    private void SwitchMaster(Uri master)
    {
        lock (_lock)
        {
            _master = master;
            if (!_knownHosts.Any(k => k.Authority.Equals(master.Authority, StringComparison.OrdinalIgnoreCase)))
            {
                _knownHosts.Add(master);
            }
        }
    }

    private async Task CancelTaskQuietlyAsync(string taskRef)
    {
        try
        {
            using var cts = new CancellationTokenSource(TimeSpan.FromSeconds(10));
            await CallAsync("task.cancel", [taskRef], cts.Token);
        }
        catch (Exception e) when (e is XapiException or OperationCanceledException)
        {
            // The task may have finished meanwhile.
        }
    }

    private async Task DestroyTaskQuietlyAsync(string taskRef)
    {
        try
        {
            using var cts = new CancellationTokenSource(TimeSpan.FromSeconds(10));
            await CallAsync("task.destroy", [taskRef], cts.Token);
        }
        catch (Exception e) when (e is XapiException or OperationCanceledException)
        {
            // A task outlives a master restart only in name; nothing left to clean.
        }
    }

    private Task<JsonNode?> SendAsync(Uri host, string method, IReadOnlyList<object?> args, CancellationToken cancellationToken, TimeSpan? extraTimeout) =>
        SendAsync<JsonNode?>(host, method, args, cancellationToken, extraTimeout, null, n => n);

    private async Task<T> SendAsync<T>(Uri host, string method, IReadOnlyList<object?> args, CancellationToken cancellationToken, TimeSpan? extraTimeout,
        Func<ReadOnlyMemory<byte>, string, T>? typed, Func<JsonNode?, T> fromNode, Func<Stream, string, CancellationToken, Task<T>>? streamed = null)
    {
        Interlocked.Increment(ref _callCount);
        bool xml;
        lock (_lock)
        {
            xml = _xmlRpcHosts.Contains(host.Authority);
        }

        using var timeout = CancellationTokenSource.CreateLinkedTokenSource(cancellationToken);
        timeout.CancelAfter(_options.CallTimeout + (extraTimeout ?? TimeSpan.Zero));
        for (var attempt = 0; ; attempt++)
        {
            using var request = xml
                ? new HttpRequestMessage(HttpMethod.Post, new Uri(host, "/")) { Content = new StringContent(XmlRpc.EncodeCall(method, args), Encoding.UTF8, s_xml) }
                : new HttpRequestMessage(HttpMethod.Post, new Uri(host, "/jsonrpc")) { Content = new StringContent(JsonRpc.EncodeCall(method, args, Interlocked.Increment(ref _nextId)), Encoding.UTF8, s_json) };
            HttpResponseMessage? response = null;
            byte[] body;
            int length;
            try
            {
                response = await _http.SendAsync(request, HttpCompletionOption.ResponseHeadersRead, timeout.Token);
                if (streamed is not null && (response.Content.Headers.ContentType?.MediaType ?? "").Contains("json", StringComparison.OrdinalIgnoreCase))
                {
                    // Decoded as it arrives; transport failures meanwhile are reported as below.
                    using (response)
                    {
                        await using var stream = await response.Content.ReadAsStreamAsync(timeout.Token);
                        return await streamed(stream, method, timeout.Token);
                    }
                }

                (body, length) = await ReadPooledAsync(response.Content, timeout.Token);
            }
            catch (OperationCanceledException e) when (!cancellationToken.IsCancellationRequested)
            {
                response?.Dispose();
                throw XapiException.Unreachable($"no answer from {host.Host} within {_options.CallTimeout.TotalSeconds:0} s", method, e);
            }
            catch (HttpRequestException e)
            {
                response?.Dispose();
                throw MapTransport(host, method, e);
            }
            catch (IOException e)
            {
                // The connection broke while the reply was coming in.
                response?.Dispose();
                throw XapiException.Unreachable($"{host.Host}:{host.Port}: reply cut off: {e.Message}", method, e);
            }

            try
            {
                var reply = WithoutBom(body.AsMemory(0, length));
                var mediaType = response.Content.Headers.ContentType?.MediaType ?? "";
                if (mediaType.Contains("json", StringComparison.OrdinalIgnoreCase))
                {
                    return typed is not null ? typed(reply, method) : fromNode(JsonRpc.DecodeResponse(Text(reply), method));
                }

                if (mediaType.Contains("xml", StringComparison.OrdinalIgnoreCase))
                {
                    if (!xml && attempt == 0 && Text(reply).Contains("<methodResponse", StringComparison.Ordinal))
                    {
                        // A host before xapi 1.9.0 has no /jsonrpc: its longest path prefix for it is /json, an XML-RPC
                        // endpoint, which answers a JSON body with an XML-RPC fault "Failed to parse supplied XML"
                        // (api_server.ml callback, xen-api commit cc8f80e4^). Every later host answers /jsonrpc with
                        // application/json or an HTML error page. So: XML-RPC on / from now on, and this call again.
                        lock (_lock)
                        {
                            _xmlRpcHosts.Add(host.Authority);
                        }

                        xml = true;
                        continue;
                    }

                    return fromNode(XmlRpc.DecodeResponse(Text(reply), method));
                }

                throw new XapiException(XapiException.ProtocolError, [$"HTTP {(int)response.StatusCode} from {host.Host} with {(mediaType.Length == 0 ? "no content type" : mediaType)}: {Summarize(Text(reply))}"], method);
            }
            finally
            {
                response.Dispose();
                ArrayPool<byte>.Shared.Return(body);
            }
        }
    }

    /// <summary>
    /// The whole reply into a pooled buffer (grown by doubling): a pool's VM records are megabytes, and a fresh
    /// array per read would land on the large object heap every time. Decoders copy what they keep.
    /// </summary>
    private static async Task<(byte[] Buffer, int Length)> ReadPooledAsync(HttpContent content, CancellationToken cancellationToken)
    {
        var expected = content.Headers.ContentLength is long n && n > 0 && n < 1 << 30 ? (int)n + 1 : 16 * 1024;
        var buffer = ArrayPool<byte>.Shared.Rent(expected);
        var length = 0;
        try
        {
            await using var stream = await content.ReadAsStreamAsync(cancellationToken);
            while (true)
            {
                if (length == buffer.Length)
                {
                    var bigger = ArrayPool<byte>.Shared.Rent(buffer.Length * 2);
                    buffer.AsSpan(0, length).CopyTo(bigger);
                    ArrayPool<byte>.Shared.Return(buffer);
                    buffer = bigger;
                }

                var read = await stream.ReadAsync(buffer.AsMemory(length), cancellationToken);
                if (read == 0)
                {
                    return (buffer, length);
                }

                length += read;
            }
        }
        catch
        {
            ArrayPool<byte>.Shared.Return(buffer);
            throw;
        }
    }

    private XapiException MapTransport(Uri host, string method, HttpRequestException e)
    {
        if (e.InnerException is AuthenticationException || e.HttpRequestError == HttpRequestError.SecureConnectionError)
        {
            var reason = _options.Certificates.RejectionFor(host.Host) ?? $"TLS handshake with {host.Host} failed: {e.Message}";
            return new XapiException(XapiException.CertificateRejected, [reason], method, e);
        }

        var detail = e.InnerException is SocketException se
            ? $"{host.Host}:{host.Port}: {se.SocketErrorCode}"
            : $"{host.Host}:{host.Port}: {e.Message}";
        return XapiException.Unreachable(detail, method, e);
    }

    private static string Text(ReadOnlyMemory<byte> utf8) => Encoding.UTF8.GetString(utf8.Span);

    private static ReadOnlyMemory<byte> WithoutBom(ReadOnlyMemory<byte> utf8) =>
        utf8.Span.StartsWith((ReadOnlySpan<byte>)[0xEF, 0xBB, 0xBF]) ? utf8[3..] : utf8;

    private static string Summarize(string body)
    {
        var text = System.Text.RegularExpressions.Regex.Replace(body, "<[^>]*>", " ");
        text = System.Text.RegularExpressions.Regex.Replace(text, @"\s+", " ").Trim();
        return text.Length > 160 ? text[..160] + "..." : text;
    }

    private static string StripValue(string result)
    {
        var s = result.Trim();
        if (s.StartsWith("<value>", StringComparison.Ordinal) && s.EndsWith("</value>", StringComparison.Ordinal))
        {
            s = s[7..^8];
        }

        return WebUtility.HtmlDecode(s);
    }

    private static Uri Normalize(Uri url) => new UriBuilder(url) { Path = "/", Query = "" }.Uri;

    /// <summary>An address XAPI named (IPv4, IPv6 or name) as a URL on the same scheme and port.</summary>
    internal static Uri HostUri(string address, Uri like)
    {
        var a = address.Trim();
        if (a.StartsWith("http", StringComparison.OrdinalIgnoreCase) && Uri.TryCreate(a, UriKind.Absolute, out var full))
        {
            return Normalize(full);
        }

        if (IPAddress.TryParse(a.Trim('[', ']'), out var ip) && ip.AddressFamily == AddressFamily.InterNetworkV6)
        {
            a = "[" + a.Trim('[', ']') + "]";
        }

        return new UriBuilder(like.Scheme, a.Trim('[', ']') == a ? a : a, like.Port, "/").Uri;
    }
}
