using System.Collections.Concurrent;
using System.Net;
using System.Text;
using Microsoft.AspNetCore.Builder;
using Microsoft.AspNetCore.Hosting;
using Microsoft.Extensions.Logging;
using RollingReboot.Core.Time;
using RollingReboot.Lab;
using RollingReboot.Lab.CloudStack;

namespace RollingReboot.CloudStack.Tests;

/// <summary>An HTTP handler that answers from a script and records what it was asked.</summary>
internal sealed class ScriptedHandler(Func<HttpRequestMessage, int, CancellationToken, Task<HttpResponseMessage>> respond) : HttpMessageHandler
{
    private int _calls;

    public ScriptedHandler(Func<HttpRequestMessage, int, Task<HttpResponseMessage>> respond)
        : this((request, call, _) => respond(request, call))
    {
    }

    public ConcurrentQueue<(string Method, Uri Uri, string? Body)> Requests { get; } = new();

    public int Calls => _calls;

    public static ScriptedHandler Answer(HttpStatusCode status, string body, string mediaType = "application/json") =>
        new((_, _) => Task.FromResult(Response(status, body, mediaType)));

    public static HttpResponseMessage Response(HttpStatusCode status, string body, string mediaType = "application/json") =>
        new(status) { Content = new StringContent(body, Encoding.UTF8, mediaType) };

    protected override async Task<HttpResponseMessage> SendAsync(HttpRequestMessage request, CancellationToken cancellationToken)
    {
        var body = request.Content is null ? null : await request.Content.ReadAsStringAsync(cancellationToken);
        Requests.Enqueue((request.Method.Method, request.RequestUri!, body));
        var call = Interlocked.Increment(ref _calls);
        return await respond(request, call, cancellationToken);
    }

    /// <summary>The decoded parameters of a recorded request (query or form).</summary>
    public static Dictionary<string, string> Parameters(string query) =>
        query.TrimStart('?').Split('&', StringSplitOptions.RemoveEmptyEntries)
            .Select(pair => pair.Split('=', 2))
            .ToDictionary(kv => Uri.UnescapeDataString(kv[0]), kv => Uri.UnescapeDataString(kv[1].Replace('+', ' ')));

    /// <summary>The command of a request, from its query (GET) or its form body (POST).</summary>
    public static string Command(HttpRequestMessage request) => Parameters(request).GetValueOrDefault("command") ?? "";

    /// <summary>The decoded parameters of a request as it is being answered (query, or form body).</summary>
    public static Dictionary<string, string> Parameters(HttpRequestMessage request) =>
        request.Content is { } content ? Parameters(content.ReadAsStringAsync().GetAwaiter().GetResult()) : Parameters(request.RequestUri!.Query);

    /// <summary>The decoded parameters of a recorded request (query, or form body).</summary>
    public static Dictionary<string, string> Parameters((string Method, Uri Uri, string? Body) request) =>
        request.Body is { } body ? Parameters(body) : Parameters(request.Uri.Query);
}

internal sealed class FakePool : ILabPoolView
{
    private readonly Lock _gate = new();
    private readonly List<LabHostView> _hosts = [];
    private readonly List<LabVmView> _vms = [];

    public IReadOnlyList<LabHostView> Hosts
    {
        get
        {
            lock (_gate)
            {
                return [.. _hosts];
            }
        }
    }

    public IReadOnlyList<LabVmView> Vms
    {
        get
        {
            lock (_gate)
            {
                return [.. _vms];
            }
        }
    }

    public static FakePool ThreeHosts()
    {
        var pool = new FakePool();
        for (var i = 1; i <= 3; i++)
        {
            pool.AddHost($"xen{i}", $"127.0.0.{10 + i}", master: i == 1);
        }

        pool.AddVm("i-2-10-VM", "xen1", "Running", "web");
        pool.AddVm("i-2-11-VM", "xen2", "Running", "web");
        pool.AddVm("i-2-12-VM", "xen3", "Running", null);
        pool.AddVm("i-2-13-VM", null, "Halted", null);
        pool.AddVm("s-1-VM-not-guest", "xen1", "Running", null);
        pool.AddVm("Control domain on xen1", "xen1", "Running", null);
        return pool;
    }

    public void AddHost(string name, string address, bool master = false)
    {
        lock (_gate)
        {
            _hosts.Add(new LabHostView(name, Guid.NewGuid().ToString(), address, true) { IsMaster = master });
        }
    }

    /// <summary>XAPI's host.enabled.</summary>
    public void SetEnabled(string name, bool enabled)
    {
        lock (_gate)
        {
            var index = _hosts.FindIndex(h => h.Name == name);
            _hosts[index] = _hosts[index] with { Enabled = enabled };
        }
    }

    public void AddVm(string name, string? host, string powerState, string? affinityGroup)
    {
        lock (_gate)
        {
            _vms.Add(new LabVmView(name, Guid.NewGuid().ToString(), host, powerState, affinityGroup));
        }
    }

    /// <summary>XAPI moved the VM (a live migration).</summary>
    public void MoveVm(string name, string host)
    {
        lock (_gate)
        {
            var index = _vms.FindIndex(v => v.Name == name);
            _vms[index] = _vms[index] with { HostName = host };
        }
    }

    public void SetLive(string name, bool live)
    {
        lock (_gate)
        {
            var index = _hosts.FindIndex(h => h.Name == name);
            _hosts[index] = _hosts[index] with { Live = live };
        }
    }
}

internal sealed class FakeAudit(TimeProvider clock) : ILabAudit
{
    private readonly DateTimeOffset _start = clock.GetUtcNow();

    /// <summary>Each event with the simulated second it happened at (the lab's clock, not the client's polling).</summary>
    public ConcurrentQueue<(string Type, IReadOnlyDictionary<string, object?> Fields, double At)> Events { get; } = new();

    public ConcurrentQueue<string> Violations { get; } = new();

    public double SimulatedSeconds => (clock.GetUtcNow() - _start).TotalSeconds;

    public void Event(string type, IReadOnlyDictionary<string, object?> fields) => Events.Enqueue((type, fields, SimulatedSeconds));

    public void Violation(string text) => Violations.Enqueue(text);

    public IReadOnlyList<string?> Values(string type, string field) =>
        Events.Where(e => e.Type == type).Select(e => e.Fields.GetValueOrDefault(field)?.ToString()).ToList();
}

/// <summary>A <see cref="LabCloudStack"/> served by Kestrel on 127.0.0.1, on a fast simulated clock.</summary>
internal sealed class LabServer : IAsyncDisposable
{
    public const string ClusterName = "CLUSTER-1";
    public const string Zone = "ZONE-1";

    /// <summary>Simulated seconds per wall second: the ~200 s of a failing unmanage take 2 s.</summary>
    public const double Scale = 100;

    private readonly WebApplication _app;

    private LabServer(WebApplication app, LabCloudStack cloudStack, FakePool pool, FakeAudit audit, TimeProvider clock,
        string apiKey, string secretKey, Uri endpoint)
    {
        _app = app;
        CloudStack = cloudStack;
        Pool = pool;
        Audit = audit;
        Clock = clock;
        ApiKey = apiKey;
        SecretKey = secretKey;
        Endpoint = endpoint;
    }

    public LabCloudStack CloudStack { get; }

    public FakePool Pool { get; }

    public FakeAudit Audit { get; }

    /// <summary>The lab's clock: <see cref="Scale"/> times the wall's, or the test's own (a FakeTimeProvider it advances).</summary>
    public TimeProvider Clock { get; }

    public string ApiKey { get; }

    public string SecretKey { get; }

    public Uri Endpoint { get; }

    /// <summary>
    /// The lab CloudStack on a clock <see cref="Scale"/> times the wall's, whose simulated time starts far from the wall's (a
    /// client that set <c>expires</c> from it would be refused): a short scan interval unless <paramref name="settings"/> say otherwise.
    /// A test that asserts on how long the lab's own schedule took passes <paramref name="clock"/> (a FakeTimeProvider it
    /// advances itself), so that a loaded machine's late timers cannot stretch simulated time.
    /// </summary>
    public static async Task<LabServer> StartAsync(
        string managedState = "Managed", IEnumerable<LabCloudStackFault>? faults = null, string? apiKey = null, string? secretKey = null,
        IEnumerable<LabAsyncJob>? asyncJobs = null, LabCloudStackSettings? settings = null, LabCloudStackClusterSpec? spec = null, FakePool? pool = null,
        TimeProvider? clock = null)
    {
        clock ??= new ScaledTimeProvider(Scale, new DateTimeOffset(2031, 11, 22, 12, 0, 0, TimeSpan.Zero), TimeProvider.System.GetUtcNow());
        pool ??= FakePool.ThreeHosts();
        var audit = new FakeAudit(clock);
        var keys = LabCloudStack.GenerateKeys();
        apiKey ??= keys.ApiKey;
        secretKey ??= keys.SecretKey;
        var cloudStack = new LabCloudStack(ClusterName, Zone, "POD-1", managedState, apiKey, secretKey, pool, audit, clock, faults, asyncJobs, settings, spec);

        var builder = WebApplication.CreateSlimBuilder();
        builder.Logging.ClearProviders();
        builder.WebHost.UseKestrel(options => options.Listen(IPAddress.Loopback, 0));
        var app = builder.Build();
        app.Run(cloudStack.HandleAsync);
        await app.StartAsync();
        var address = app.Urls.Single();
        return new LabServer(app, cloudStack, pool, audit, clock, apiKey, secretKey, new Uri(new Uri(address), LabCloudStack.ApiPath));
    }

    /// <summary>
    /// A client on the lab's clock, as the CLI runs under the lab (every duration is simulated); <c>expires</c> still comes
    /// from the wall clock, as the client always sets it.
    /// </summary>
    public CloudStackClient Client(bool post = false, bool signatureVersion3 = true, string? secretKey = null, int? pageSize = null) =>
        new(new CloudStackClientOptions
        {
            Endpoint = Endpoint,
            ApiKey = ApiKey,
            SecretKey = secretKey ?? SecretKey,
            UsePost = post,
            UseSignatureVersion3 = signatureVersion3,
            Timeout = TimeSpan.FromMinutes(10),
            UpdateClusterTimeout = TimeSpan.FromMinutes(15),
            RetryDelay = TimeSpan.FromSeconds(1),
            PollInterval = TimeSpan.FromSeconds(1),
            PageSize = pageSize,
        }, timeProvider: Clock);

    public async ValueTask DisposeAsync()
    {
        await _app.StopAsync();
        await _app.DisposeAsync();
        CloudStack.Dispose();
    }
}
